#include "base/json_reader.h"

#include <algorithm>
#include <cmath>
#include <unordered_set>

#include "base/units.h"

namespace drover {

std::string JsonReader::key_path(const std::string& key) const {
  if (key.empty()) return path_;
  return path_.empty() ? key : path_ + "." + key;
}

void JsonReader::fail(const std::string& key, const std::string& why) const {
  throw JsonError{key_path(key) + ": " + why};
}

void JsonReader::allow_only(std::initializer_list<const char*> allowed) const {
  if (!j_.is_object()) fail("", "must be an object");
  for (const auto& item : j_.items()) {
    const bool known =
        std::any_of(allowed.begin(), allowed.end(), [&](const char* k) { return item.key() == k; });
    if (!known) {
      std::string names;
      for (const char* k : allowed) names += (names.empty() ? "" : ", ") + std::string(k);
      fail(item.key(), "unknown field (expected one of: " + names + ")");
    }
  }
}

const nlohmann::json& JsonReader::at(const char* key) const {
  if (!j_.is_object()) fail("", "must be an object");
  auto it = j_.find(key);
  if (it == j_.end()) fail(key, "is required");
  return *it;
}

JsonReader JsonReader::child(const char* key) const {
  const auto& v = at(key);
  if (!v.is_object()) fail(key, "must be an object");
  return JsonReader(v, key_path(key));
}

std::vector<JsonReader> JsonReader::array(const char* key) const {
  std::vector<JsonReader> out;
  if (!has(key)) return out;
  const auto& v = j_.at(key);
  if (!v.is_array()) fail(key, "must be an array");
  out.reserve(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    out.emplace_back(v[i], key_path(key) + "[" + std::to_string(i) + "]");
  }
  return out;
}

std::string JsonReader::str(const char* key) const {
  const auto& v = at(key);
  if (!v.is_string()) fail(key, "must be a string");
  return v.get<std::string>();
}

std::string JsonReader::str_or(const char* key, std::string fallback) const {
  return has(key) ? str(key) : std::move(fallback);
}

double JsonReader::number(const char* key) const {
  const auto& v = at(key);
  if (!v.is_number()) fail(key, "must be a number");
  const double d = v.get<double>();
  if (!std::isfinite(d)) fail(key, "must be finite");
  return d;
}

double JsonReader::number_or(const char* key, double fallback) const {
  return has(key) ? number(key) : fallback;
}

uint64_t JsonReader::uint_or(const char* key, uint64_t fallback, uint64_t max) const {
  if (!has(key)) return fallback;
  const auto& v = j_.at(key);
  if (!v.is_number_unsigned() && !(v.is_number_integer() && v.get<int64_t>() >= 0)) {
    fail(key, "must be a non-negative integer");
  }
  const uint64_t n = v.get<uint64_t>();
  if (n > max) fail(key, "must be at most " + std::to_string(max));
  return n;
}

bool JsonReader::boolean_or(const char* key, bool fallback) const {
  if (!has(key)) return fallback;
  const auto& v = j_.at(key);
  if (!v.is_boolean()) fail(key, "must be true or false");
  return v.get<bool>();
}

std::vector<std::string> JsonReader::strings_or_empty(const char* key) const {
  std::vector<std::string> out;
  if (!has(key)) return out;
  const auto& v = j_.at(key);
  if (!v.is_array()) fail(key, "must be an array of strings");
  for (const auto& e : v) {
    if (!e.is_string()) fail(key, "must be an array of strings");
    out.push_back(e.get<std::string>());
  }
  return out;
}

Duration JsonReader::duration(const char* key) const {
  const auto& v = at(key);
  if (v.is_number()) {
    const double s = v.get<double>();
    if (!std::isfinite(s) || s < 0 || s > 1e12)
      fail(key, "must be a non-negative number of seconds");
    return Duration(static_cast<int64_t>(s * 1000));
  }
  if (!v.is_string()) fail(key, "must be a duration such as \"15m\" or a number of seconds");
  return take(key, parse_duration(v.get<std::string>()));
}

Duration JsonReader::duration_or(const char* key, Duration fallback) const {
  return has(key) ? duration(key) : fallback;
}

uint64_t JsonReader::bytes(const char* key) const {
  const auto& v = at(key);
  if (v.is_number_unsigned()) return v.get<uint64_t>();
  if (!v.is_string()) fail(key, "must be a size such as \"48MB\" or a number of bytes");
  return take(key, parse_bytes(v.get<std::string>()));
}

namespace {

// Thrown by the parse callback on a key seen twice in one object.
struct DuplicateKey {
  std::string key;
};

}  // namespace

Result<nlohmann::json> parse_strict_json(std::string_view text, const std::string& root) {
  using Event = nlohmann::json::parse_event_t;
  // The keys of each open object (an array pushes an empty set that is never searched).
  std::vector<std::unordered_set<std::string>> open;
  auto check = [&open](int, Event event, nlohmann::json& parsed) {
    switch (event) {
      case Event::object_start:
      case Event::array_start:
        open.emplace_back();
        break;
      case Event::object_end:
      case Event::array_end:
        if (!open.empty()) open.pop_back();
        break;
      case Event::key: {
        const std::string& key = parsed.get_ref<const std::string&>();
        if (!open.back().insert(key).second) throw DuplicateKey{key};
        break;
      }
      case Event::value:
        break;
    }
    return true;
  };
  try {
    return nlohmann::json::parse(text.begin(), text.end(), check, true, true);
  } catch (const DuplicateKey& d) {
    return invalid_argument(root + ": the key '" + d.key + "' appears twice in one object");
  } catch (const nlohmann::json::exception& e) {
    // parse_error, and also out_of_range for a number too large for a double ("1e999"),
    // which escaped as an uncaught exception before (found by fuzz/fuzz_codec).
    return invalid_argument(root + ": not valid JSON: " + e.what());
  }
}

}  // namespace drover
