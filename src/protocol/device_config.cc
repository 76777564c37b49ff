#include "protocol/device_config.h"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "base/json_reader.h"
#include "protocol/device_config_json.h"
#include "security/crypto.h"

namespace drover::protocol {
namespace {

using json = nlohmann::json;

constexpr size_t kMaxFields = 256;
constexpr size_t kMaxValues = 64;      // a string field's allowed values
constexpr size_t kMaxTextValue = 256;  // bytes of a string value (or an allowed one)
constexpr double kMaxExactInteger = 9007199254740992.0;  // 2^53
constexpr int64_t kMaxExact = int64_t{1} << 53;
// Within ±2^53: every such integer is a double exactly.
bool exact(int64_t v) { return v >= -kMaxExact && v <= kMaxExact; }

bool is_config_name(std::string_view s) {
  if (s.empty() || s.size() > 64 || s[0] < 'a' || s[0] > 'z') return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
  });
}

bool numeric(ConfigKind k) { return k == ConfigKind::kNumber || k == ConfigKind::kInteger; }

std::string format_number(double v) { return json(v).dump(); }

Error bad(const std::string& why) { return invalid_argument(why); }

double as_double(const ConfigValue& v) {
  if (const auto* i = std::get_if<int64_t>(&v)) return static_cast<double>(*i);
  return std::get<double>(v);
}

// One value from the document, in its field's kind.
Result<ConfigValue> read_value(const ConfigField& f, const json& j) {
  const std::string& name = f.name;
  switch (f.kind) {
    case ConfigKind::kBoolean:
      if (!j.is_boolean()) return bad(name + ": a boolean (true or false)");
      return ConfigValue(j.get<bool>());
    case ConfigKind::kString: {
      if (!j.is_string()) return bad(name + ": a string");
      std::string s = j.get<std::string>();
      if (s.size() > kMaxTextValue) return bad(name + ": at most 256 bytes");
      return ConfigValue(std::move(s));
    }
    case ConfigKind::kInteger: {
      // Whole numbers within ±2^53, so every comparison in doubles (ranges, orders) is exact.
      if (j.is_number_integer()) {
        if (j.is_number_unsigned() ? j.get<uint64_t>() > static_cast<uint64_t>(kMaxExact)
                                   : !exact(j.get<int64_t>()))
          return bad(name + ": too large (at most 2^53 either way)");
        return ConfigValue(j.get<int64_t>());
      }
      if (!j.is_number_float()) return bad(name + ": a whole number");
      const double d = j.get<double>();
      if (!std::isfinite(d) || d != std::floor(d) || std::fabs(d) > kMaxExactInteger)
        return bad(name + ": a whole number, not " + j.dump());
      return ConfigValue(static_cast<int64_t>(d));
    }
    case ConfigKind::kNumber: {
      if (!j.is_number()) return bad(name + ": a number");
      const double d = j.get<double>();
      if (!std::isfinite(d)) return bad(name + ": a finite number");
      return ConfigValue(d);
    }
  }
  return bad(name + ": unknown kind");
}

Status check_value(const ConfigField& f, const ConfigValue& v) {
  switch (f.kind) {
    case ConfigKind::kBoolean:
      if (!std::holds_alternative<bool>(v)) return bad(f.name + ": a boolean");
      return ok_status();
    case ConfigKind::kString: {
      const auto* s = std::get_if<std::string>(&v);
      if (s == nullptr) return bad(f.name + ": a string");
      if (s->size() > kMaxTextValue) return bad(f.name + ": at most 256 bytes");
      if (!f.values.empty() && std::find(f.values.begin(), f.values.end(), *s) == f.values.end()) {
        std::string allowed;
        for (const std::string& a : f.values) allowed += (allowed.empty() ? "" : ", ") + a;
        return bad(f.name + ": \"" + *s + "\" is not one of the envelope's values (" + allowed +
                   ")");
      }
      return ok_status();
    }
    case ConfigKind::kInteger:
    case ConfigKind::kNumber: {
      // Values already read keep their kind (the canonical form, and its hash, depend on
      // it): an envelope that changes a field's kind refuses a document holding the other.
      if (f.kind == ConfigKind::kInteger ? !std::holds_alternative<int64_t>(v)
                                         : !std::holds_alternative<double>(v)) {
        return bad(f.name + ": " + format_config_value(v) + " is not of the envelope's kind, " +
                   to_string(f.kind) + " (write the document again with the new kind)");
      }
      const double d = as_double(v);
      if (!std::isfinite(d)) return bad(f.name + ": a finite number");
      if (f.min && d < *f.min) {
        return bad(f.name + ": " + format_config_value(v) + " is below the envelope's minimum " +
                   format_number(*f.min));
      }
      if (f.max && d > *f.max) {
        return bad(f.name + ": " + format_config_value(v) + " is above the envelope's maximum " +
                   format_number(*f.max));
      }
      return ok_status();
    }
  }
  return bad(f.name + ": unknown kind");
}

json value_json(const ConfigValue& v) {
  return std::visit([](const auto& x) { return json(x); }, v);
}

}  // namespace

const char* to_string(ConfigKind k) {
  switch (k) {
    case ConfigKind::kNumber:
      return "number";
    case ConfigKind::kInteger:
      return "integer";
    case ConfigKind::kBoolean:
      return "boolean";
    case ConfigKind::kString:
      return "string";
  }
  return "?";
}

Result<ConfigKind> parse_config_kind(std::string_view s) {
  for (ConfigKind k :
       {ConfigKind::kNumber, ConfigKind::kInteger, ConfigKind::kBoolean, ConfigKind::kString}) {
    if (s == to_string(k)) return k;
  }
  return invalid_argument("kind '" + std::string(s) +
                          "' is not one of number, integer, boolean, string");
}

const ConfigField* ConfigEnvelope::field(std::string_view name) const {
  auto it = std::lower_bound(fields.begin(), fields.end(), name,
                             [](const ConfigField& f, std::string_view n) { return f.name < n; });
  return it != fields.end() && it->name == name ? &*it : nullptr;
}

Status validate(ConfigEnvelope& e) {
  if (e.fields.size() > kMaxFields) return bad("an envelope has at most 256 fields");
  for (const ConfigField& f : e.fields) {
    if (!is_config_name(f.name)) {
      return bad("field '" + f.name +
                 "': a name is 1-64 of a-z, 0-9, '_', '.', '-', starting with a letter");
    }
    const bool num = numeric(f.kind);
    if (!num && (f.min || f.max)) return bad(f.name + ": min and max are for numbers");
    for (const auto& bound : {f.min, f.max}) {
      if (bound && (!std::isfinite(*bound) || std::fabs(*bound) > 1e15))
        return bad(f.name + ": a bound is a finite number within 1e15");
    }
    if (f.min && f.max && *f.min > *f.max) return bad(f.name + ": min is above max");
    if (f.kind == ConfigKind::kInteger) {
      if ((f.min && *f.min != std::floor(*f.min)) || (f.max && *f.max != std::floor(*f.max)))
        return bad(f.name + ": an integer's bounds are whole numbers");
    }
    if (f.kind != ConfigKind::kString && !f.values.empty())
      return bad(f.name + ": values are for strings");
    if (f.values.size() > kMaxValues) return bad(f.name + ": at most 64 values");
    for (const std::string& v : f.values) {
      if (v.empty() || v.size() > kMaxTextValue) return bad(f.name + ": a value is 1-256 bytes");
    }
  }
  std::sort(e.fields.begin(), e.fields.end(),
            [](const ConfigField& a, const ConfigField& b) { return a.name < b.name; });
  for (size_t i = 1; i < e.fields.size(); ++i) {
    if (e.fields[i].name == e.fields[i - 1].name)
      return bad("field '" + e.fields[i].name + "' is named twice");
  }
  for (ConfigField& f : e.fields) {
    std::sort(f.values.begin(), f.values.end());
    if (std::adjacent_find(f.values.begin(), f.values.end()) != f.values.end())
      return bad(f.name + ": a value is listed twice");
  }
  if (e.orders.size() > kMaxFields) return bad("an envelope has at most 256 orders");
  for (const ConfigOrder& o : e.orders) {
    const std::string what = "order " + o.lower + " < " + o.upper;
    const ConfigField* lo = e.field(o.lower);
    const ConfigField* hi = e.field(o.upper);
    if (lo == nullptr || hi == nullptr) return bad(what + ": both fields must be in the envelope");
    if (!numeric(lo->kind) || !numeric(hi->kind)) return bad(what + ": both fields are numbers");
    if (o.lower == o.upper) return bad(what + ": two different fields");
    if (!std::isfinite(o.gap) || o.gap < 0 || o.gap > 1e15)
      return bad(what + ": the gap is a finite number >= 0");
  }
  return ok_status();
}

std::string format_config_value(const ConfigValue& v) { return value_json(v).dump(); }

Status check_config_values(const ConfigValues& values, const ConfigEnvelope& envelope) {
  for (const auto& [name, value] : values) {
    const ConfigField* f = envelope.field(name);
    if (f == nullptr) return bad(name + ": not a field of the envelope");
    DROVER_TRY(check_value(*f, value));
  }
  for (const ConfigField& f : envelope.fields) {
    if (f.required && values.count(f.name) == 0) return bad(f.name + ": required");
  }
  for (const ConfigOrder& o : envelope.orders) {
    auto lo = values.find(o.lower);
    auto hi = values.find(o.upper);
    if (lo == values.end() || hi == values.end()) continue;
    if (as_double(lo->second) + o.gap > as_double(hi->second)) {
      return bad(o.lower + " (" + format_config_value(lo->second) + ") must be at least " +
                 format_number(o.gap) + " below " + o.upper + " (" +
                 format_config_value(hi->second) + ")");
    }
  }
  return ok_status();
}

Result<ConfigValues> config_values_from(const json& j, const ConfigEnvelope& envelope) {
  if (!j.is_object()) return bad("a configuration is an object of field: value");
  ConfigValues values;
  for (const auto& [name, value] : j.items()) {
    const ConfigField* f = envelope.field(name);
    if (f == nullptr) return bad(name + ": not a field of the envelope");
    auto v = read_value(*f, value);
    if (!v.ok()) return v.error();
    values.emplace(name, std::move(*v));
  }
  DROVER_TRY(check_config_values(values, envelope));
  return values;
}

Result<ConfigValues> config_values_stored(const json& j) {
  if (!j.is_object()) return bad("a configuration is an object of field: value");
  ConfigValues values;
  for (const auto& [name, value] : j.items()) {
    if (!is_config_name(name)) return bad("'" + name + "' is not a field name");
    if (value.is_boolean()) {
      values.emplace(name, value.get<bool>());
    } else if (value.is_number_integer() && !value.is_number_unsigned() &&
               exact(value.get<int64_t>())) {
      values.emplace(name, value.get<int64_t>());
    } else if (value.is_number_unsigned() &&
               value.get<uint64_t>() <= static_cast<uint64_t>(kMaxExact)) {
      values.emplace(name, static_cast<int64_t>(value.get<uint64_t>()));
    } else if (value.is_number_float() && std::isfinite(value.get<double>())) {
      values.emplace(name, value.get<double>());
    } else if (value.is_string() && value.get_ref<const std::string&>().size() <= kMaxTextValue) {
      values.emplace(name, value.get<std::string>());
    } else {
      return bad(name + ": not a configuration value");
    }
  }
  return values;
}

Result<ConfigValues> decode_config_values(std::string_view text, const ConfigEnvelope& envelope) {
  auto j = parse_strict_json(text, "configuration");
  if (!j.ok()) return j.error();
  return config_values_from(*j, envelope);
}

json config_values_json(const ConfigValues& values) {
  json out = json::object();
  for (const auto& [name, value] : values) out[name] = value_json(value);
  return out;
}

std::string encode_config_values(const ConfigValues& values) {
  return config_values_json(values).dump();
}

bool is_sha256_hex(std::string_view s) {
  return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

std::string config_sha256_of(std::string_view bytes) {
  return security::to_hex(security::sha256(bytes));
}

std::string config_sha256(const ConfigValues& values) {
  return config_sha256_of(encode_config_values(values));
}

json config_envelope_json(const ConfigEnvelope& e) {
  json fields = json::array();
  for (const ConfigField& f : e.fields) {
    json field{{"name", f.name}, {"kind", to_string(f.kind)}};
    if (f.min) field["min"] = *f.min;
    if (f.max) field["max"] = *f.max;
    if (!f.values.empty()) field["values"] = f.values;
    if (f.required) field["required"] = true;
    fields.push_back(std::move(field));
  }
  json out{{"fields", fields}};
  if (!e.orders.empty()) {
    json orders = json::array();
    for (const ConfigOrder& o : e.orders) {
      json order{{"lower", o.lower}, {"upper", o.upper}};
      if (o.gap > 0) order["gap"] = o.gap;
      orders.push_back(std::move(order));
    }
    out["orders"] = orders;
  }
  return out;
}

ConfigEnvelope read_config_envelope(const JsonReader& r) {
  r.allow_only({"fields", "orders"});
  ConfigEnvelope e;
  for (const JsonReader& f : r.array("fields")) {
    f.allow_only({"name", "kind", "min", "max", "values", "required"});
    ConfigField field;
    field.name = f.str("name");
    field.kind = f.take("kind", parse_config_kind(f.str_or("kind", "number")));
    if (f.has("min")) field.min = f.number("min");
    if (f.has("max")) field.max = f.number("max");
    field.values = f.strings_or_empty("values");
    field.required = f.boolean_or("required", false);
    e.fields.push_back(std::move(field));
  }
  for (const JsonReader& o : r.array("orders")) {
    o.allow_only({"lower", "upper", "gap"});
    e.orders.push_back({o.str("lower"), o.str("upper"), o.number_or("gap", 0)});
  }
  if (Status st = validate(e); !st.ok()) r.fail("", st.error().message);
  return e;
}

std::string encode_config_envelope(const ConfigEnvelope& envelope) {
  return config_envelope_json(envelope).dump();
}

Result<ConfigEnvelope> decode_config_envelope(std::string_view text) {
  return parse_json_document<ConfigEnvelope>(
      text, "envelope", [](const JsonReader& r) { return read_config_envelope(r); });
}

std::string encode_device_config(const DeviceConfig& c) {
  return json{{"device_type", c.device_type},
              {"version", c.version},
              {"sha256", c.sha256},
              {"values", config_values_json(c.values)},
              {"envelope", config_envelope_json(c.envelope)}}
      .dump();
}

Result<DeviceConfig> decode_device_config(std::string_view text) {
  return parse_json_document<DeviceConfig>(text, "config", [](const JsonReader& r) {
    r.allow_only({"device_type", "version", "sha256", "values", "envelope"});
    DeviceConfig c;
    c.device_type = r.str("device_type");
    c.version = r.uint_or("version", 0, UINT64_MAX);
    c.sha256 = r.str("sha256");
    c.envelope = read_config_envelope(r.child("envelope"));
    if (!r.has("values")) r.fail("values", "required");
    auto values = config_values_from(r.raw().at("values"), c.envelope);
    if (!values.ok()) r.fail("values", values.error().message);
    c.values = std::move(*values);
    if (config_sha256(c.values) != c.sha256)
      r.fail("sha256", "does not match the values (a document changed on its way?)");
    return c;
  });
}

}  // namespace drover::protocol
