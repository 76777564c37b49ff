#include "model/codec.h"

#include <cmath>
#include <limits>

#include "base/units.h"
#include "model/codec_fields.h"
#include "model/codec_json.h"
#include "protocol/device_config_json.h"

namespace drover {

using codec::enum_at;
using codec::ms;
using codec::timestamp_at;
using nlohmann::json;

// ---------------------------------------------------------------- encoders

json device_json(const Device& d) {
  json installed = json::object();
  for (const auto& c : d.installed) installed[c.component] = c.version;
  json j{{"id", d.id},
         {"device_type", d.device_type},
         {"hardware_revision", d.hardware_revision},
         {"site", d.site},
         {"connectivity", d.connectivity},
         {"tags", d.tags},
         {"installed", installed},
         {"update_state", to_string(d.update_state)}};
  if (d.decommissioned) j["decommissioned"] = true;
  if (!d.public_key.empty()) j["public_key"] = d.public_key;
  if (d.enrollment != Enrollment::kAccepted) j["enrollment"] = to_string(d.enrollment);
  if (!d.attributes.empty()) {
    json attributes = json::object();
    for (const auto& a : d.attributes) attributes[a.key] = a.value;
    j["attributes"] = attributes;
  }
  if (!d.quiet_hours.empty()) {
    json quiet = json::array();
    for (const auto& w : d.quiet_hours) quiet.push_back(window_json(w));
    j["quiet_hours"] = quiet;
  }
  if (d.keeps_previous) j["keeps_previous"] = true;
  if (d.enrolled_at != Timestamp{}) j["enrolled_at"] = ms(d.enrolled_at);
  if (!d.enrolled_by.empty()) j["enrolled_by"] = d.enrolled_by;
  if (!d.config_sha256.empty()) j["config_sha256"] = d.config_sha256;
  if (!d.config_error.empty()) j["config_error"] = d.config_error;
  return j;
}

json window_json(const MaintenanceWindow& w) {
  return {{"days", format_weekdays(w.days)},
          {"start", format_time_of_day(w.start_minute)},
          {"length", format_duration(minutes(w.length_minutes))}};
}

json site_json(const Site& s) {
  json windows = json::array();
  for (const auto& w : s.windows) windows.push_back(window_json(w));
  return {{"name", s.name}, {"time_zone", s.time_zone}, {"maintenance_windows", windows}};
}

json profile_json(const DeviceProfile& p) {
  const TelemetryContract& t = p.telemetry;
  json metrics = json::array();
  for (const MetricRule& m : p.metrics) {
    json rule{{"metric", m.metric}};
    if (!m.raw()) {
      json functions = json::array();
      for (auto f : m.functions) functions.push_back(to_string(f));
      rule["every"] = format_duration(m.interval);
      rule["aggregates"] = functions;
    }
    metrics.push_back(rule);
  }
  json telemetry{{"report_every", format_duration(t.report_every)},
                 {"late_after", format_duration(t.late_after)},
                 {"stale_after", format_duration(t.effective_stale_after())}};
  json out{{"device_type", p.device_type}, {"telemetry", telemetry}, {"metrics", metrics}};
  if (!p.health.empty()) {
    json checks = json::array();
    for (const MetricCheck& c : p.health) {
      json check{{"metric", c.metric}};
      if (c.above) check["above"] = *c.above;
      if (c.below) check["below"] = *c.below;
      if (c.frozen_after > Duration(0)) check["frozen_after"] = format_duration(c.frozen_after);
      if (c.tolerance > 0) check["tolerance"] = c.tolerance;
      if (c.drift) check["drift"] = true;
      checks.push_back(check);
    }
    out["health"] = checks;
  }
  if (!p.config.empty()) out["config"] = protocol::config_envelope_json(p.config);
  return out;
}

json artifact_json(const Artifact& a) {
  json deps = json::object();
  for (const auto& d : a.depends) deps[d.component] = d.constraint;
  return {{"name", a.name},
          {"version", a.version},
          {"device_types", a.device_types},
          {"hardware_revisions", a.hardware_revisions},
          {"depends", deps},
          {"size", a.size_bytes},
          {"sha256", a.sha256}};
}

json api_token_json(const ApiToken& t) {
  return {{"id", t.id},
          {"name", t.name},
          {"role", to_string(t.role)},
          {"secret_sha256", t.secret_sha256},
          {"created_at", ms(t.created_at)},
          {"expires_at", ms(t.expires_at)},
          {"revoked_at", ms(t.revoked_at)}};
}

json enrollment_token_json(const EnrollmentToken& t) {
  json j{{"id", t.id},
         {"name", t.name},
         {"secret_sha256", t.secret_sha256},
         {"device_types", t.device_types},
         {"hardware_revisions", t.hardware_revisions},
         {"sites", t.sites},
         {"max_uses", t.max_uses},
         {"uses", t.uses},
         {"created_at", ms(t.created_at)},
         {"expires_at", ms(t.expires_at)},
         {"revoked_at", ms(t.revoked_at)}};
  if (!t.created_by.empty()) j["created_by"] = t.created_by;
  return j;
}

json command_json(const Command& c) {
  json j{{"id", c.id},
         {"device_id", c.device_id},
         {"action", to_string(c.action)},
         {"state", to_string(c.state)},
         {"created_at", ms(c.created_at)},
         {"expires_at", ms(c.expires_at)}};
  if (!c.argument.empty()) j["argument"] = c.argument;
  if (!c.requested_by.empty()) j["requested_by"] = c.requested_by;
  if (!c.reason.empty()) j["reason"] = c.reason;
  if (c.sent_at != Timestamp{}) j["sent_at"] = ms(c.sent_at);
  if (c.finished_at != Timestamp{}) j["finished_at"] = ms(c.finished_at);
  if (c.exit_code != -1) j["exit_code"] = c.exit_code;
  if (!c.output.empty()) j["output"] = c.output;
  if (!c.cancelled_by.empty()) j["cancelled_by"] = c.cancelled_by;
  if (c.reported) j["reported"] = true;
  return j;
}

json alert_json(const Alert& a) {
  json j{{"id", a.id},
         {"device_id", a.device_id},
         {"rule", a.rule},
         {"condition", a.condition},
         {"state", to_string(a.state)},
         {"opened_at", ms(a.opened_at)},
         {"updated_at", ms(a.updated_at)},
         {"version", a.version}};
  if (a.notified_version != 0) j["notified_version"] = a.notified_version;
  if (!a.summary.empty()) j["summary"] = a.summary;
  if (a.escalated) j["escalated"] = true;
  if (!a.escalation.empty()) j["escalation"] = a.escalation;
  if (!a.resolution.empty()) j["resolution"] = a.resolution;
  if (!a.commands.empty()) j["commands"] = a.commands;
  if (a.acknowledged_at != Timestamp{}) j["acknowledged_at"] = ms(a.acknowledged_at);
  if (!a.acknowledged_by.empty()) j["acknowledged_by"] = a.acknowledged_by;
  if (a.resolved_at != Timestamp{}) j["resolved_at"] = ms(a.resolved_at);
  if (!a.resolved_by.empty()) j["resolved_by"] = a.resolved_by;
  return j;
}

std::string to_json(const Device& d) { return device_json(d).dump(); }
std::string to_json(const Site& s) { return site_json(s).dump(); }
std::string to_json(const DeviceProfile& p) { return profile_json(p).dump(); }
std::string to_json(const Artifact& a) { return artifact_json(a).dump(); }
std::string to_json(const ApiToken& t) { return api_token_json(t).dump(); }
std::string to_json(const EnrollmentToken& t) { return enrollment_token_json(t).dump(); }
// Texts from devices: valid UTF-8 by validation, replaced rather than thrown on regardless.
std::string to_json(const Command& c) {
  return command_json(c).dump(-1, ' ', false, json::error_handler_t::replace);
}
std::string to_json(const Alert& a) {
  return alert_json(a).dump(-1, ' ', false, json::error_handler_t::replace);
}
json config_document_json(const ConfigDocument& d) {
  json j{{"device_type", d.device_type},
         {"version", d.version},
         {"sha256", d.sha256},
         {"values", protocol::config_values_json(d.values)},
         {"created_at", ms(d.created_at)}};
  if (!d.author.empty()) j["author"] = d.author;
  if (!d.note.empty()) j["note"] = d.note;
  return j;
}
std::string to_json(const ConfigDocument& d) {
  return config_document_json(d).dump(-1, ' ', false, json::error_handler_t::replace);
}

// ---------------------------------------------------------------- decoders

std::vector<InstalledComponent> read_installed(const JsonReader& r) {
  std::vector<InstalledComponent> out;
  if (!r.has("installed")) return out;
  const auto& inst = r.raw().at("installed");
  if (!inst.is_object()) r.fail("installed", "must be an object of component: version");
  for (const auto& item : inst.items()) {
    if (!item.value().is_string()) r.fail("installed", "versions must be strings");
    out.push_back({item.key(), item.value().get<std::string>()});
  }
  return out;
}

std::vector<DeviceAttribute> read_attributes(const JsonReader& r) {
  std::vector<DeviceAttribute> out;
  if (!r.has("attributes")) return out;
  const auto& attrs = r.raw().at("attributes");
  if (!attrs.is_object()) r.fail("attributes", "must be an object of name: text");
  for (const auto& item : attrs.items()) {
    if (!item.value().is_string()) r.fail("attributes", "values must be strings");
    out.push_back({item.key(), item.value().get<std::string>()});
  }
  return out;
}

Device read_device(const JsonReader& r) {
  r.allow_only({"id", "device_type", "hardware_revision", "site", "connectivity", "tags",
                "installed", "update_state", "decommissioned", "public_key", "enrollment",
                "attributes", "quiet_hours", "keeps_previous", "enrolled_at", "enrolled_by",
                "config_sha256", "config_error"});
  Device d;
  d.id = r.str("id");
  d.device_type = r.str("device_type");
  d.hardware_revision = r.str("hardware_revision");
  d.site = r.str_or("site", "");
  d.connectivity = r.str_or("connectivity", "");
  d.tags = r.strings_or_empty("tags");
  d.installed = read_installed(r);
  if (r.has("update_state")) d.update_state = enum_at(r, "update_state", &parse_update_state);
  d.decommissioned = r.boolean_or("decommissioned", false);
  d.public_key = r.str_or("public_key", "");
  if (r.has("enrollment")) d.enrollment = enum_at(r, "enrollment", &parse_enrollment);
  d.attributes = read_attributes(r);
  if (r.has("quiet_hours")) {
    for (const auto& w : r.array("quiet_hours")) d.quiet_hours.push_back(read_window(w));
  }
  d.keeps_previous = r.boolean_or("keeps_previous", false);
  d.enrolled_at = timestamp_at(r, "enrolled_at");
  d.enrolled_by = r.str_or("enrolled_by", "");
  d.config_sha256 = r.str_or("config_sha256", "");
  d.config_error = r.str_or("config_error", "");
  if (auto st = validate(d); !st.ok()) r.fail("", st.error().message);
  return d;
}

MaintenanceWindow read_window(const JsonReader& r) {
  r.allow_only({"days", "start", "length", "end"});
  MaintenanceWindow w;
  w.days = r.take("days", parse_weekdays(r.str_or("days", "daily")));
  w.start_minute = r.take("start", parse_time_of_day(r.str("start")));
  if (r.has("end") == r.has("length")) r.fail("", "give exactly one of length and end");
  if (r.has("length")) {
    const Duration length = r.duration("length");
    if (length <= Duration(0) || length > days(7) || length.count() % 60'000 != 0) {
      r.fail("length", "must be whole minutes, from 1m to 7d");
    }
    w.length_minutes = static_cast<int>(length.count() / 60'000);
  } else {
    const int end = r.take("end", parse_time_of_day(r.str("end")));
    w.length_minutes = end > w.start_minute ? end - w.start_minute : end + 24 * 60 - w.start_minute;
  }
  return w;
}

Site read_site(const JsonReader& r) {
  r.allow_only({"name", "time_zone", "maintenance_windows"});
  Site s;
  s.name = r.str("name");
  s.time_zone = r.str_or("time_zone", "UTC");
  for (const auto& w : r.array("maintenance_windows")) s.windows.push_back(read_window(w));
  if (auto st = validate(s); !st.ok()) r.fail("", st.error().message);
  return s;
}

DeviceProfile read_profile(const JsonReader& r) {
  r.allow_only({"device_type", "telemetry", "metrics", "health", "config"});
  DeviceProfile p;
  p.device_type = r.str("device_type");
  if (r.has("telemetry")) {
    JsonReader t = r.child("telemetry");
    t.allow_only({"report_every", "late_after", "stale_after"});
    p.telemetry.report_every = t.duration_or("report_every", Duration(0));
    p.telemetry.late_after = t.duration_or("late_after", Duration(0));
    p.telemetry.stale_after = t.duration_or("stale_after", Duration(0));
    // A stale_after equal to the default is written out for people to read; read back, it
    // is the default again (so a changed report_every moves it).
    if (p.telemetry.stale_after == 3 * p.telemetry.report_every + p.telemetry.late_after) {
      p.telemetry.stale_after = Duration(0);
    }
  }
  for (const auto& m : r.array("metrics")) {
    m.allow_only({"metric", "every", "aggregates"});
    MetricRule rule;
    rule.metric = m.str("metric");
    rule.interval = m.duration_or("every", Duration(0));
    for (const std::string& f : m.strings_or_empty("aggregates")) {
      rule.functions.push_back(m.take("aggregates", parse_aggregate_function(f)));
    }
    p.metrics.push_back(std::move(rule));
  }
  for (const auto& h : r.array("health")) {
    h.allow_only({"metric", "above", "below", "frozen_after", "tolerance", "drift"});
    MetricCheck check;
    check.metric = h.str("metric");
    if (h.has("above")) check.above = h.number("above");
    if (h.has("below")) check.below = h.number("below");
    check.frozen_after = h.duration_or("frozen_after", Duration(0));
    check.tolerance = h.number_or("tolerance", 0);
    check.drift = h.boolean_or("drift", false);
    p.health.push_back(std::move(check));
  }
  if (r.has("config")) p.config = protocol::read_config_envelope(r.child("config"));
  if (auto st = validate(p); !st.ok()) r.fail("", st.error().message);
  return p;
}

Artifact read_artifact(const JsonReader& r) {
  r.allow_only(
      {"name", "version", "device_types", "hardware_revisions", "depends", "size", "sha256"});
  Artifact a;
  a.name = r.str("name");
  a.version = r.str("version");
  a.device_types = r.strings_or_empty("device_types");
  a.hardware_revisions = r.strings_or_empty("hardware_revisions");
  if (r.has("depends")) {
    const auto& deps = r.raw().at("depends");
    if (!deps.is_object()) r.fail("depends", "must be an object of component: constraint");
    for (const auto& item : deps.items()) {
      if (!item.value().is_string()) r.fail("depends", "constraints must be strings");
      a.depends.push_back({item.key(), item.value().get<std::string>()});
    }
  }
  a.size_bytes = r.bytes("size");
  a.sha256 = r.str("sha256");
  if (auto st = validate(a); !st.ok()) r.fail("", st.error().message);
  return a;
}

ApiToken read_api_token(const JsonReader& r) {
  r.allow_only({"id", "name", "role", "secret_sha256", "created_at", "expires_at", "revoked_at"});
  ApiToken t;
  t.id = r.str("id");
  t.name = r.str("name");
  t.role = enum_at(r, "role", &parse_role);
  t.secret_sha256 = r.str("secret_sha256");
  t.created_at = timestamp_at(r, "created_at");
  t.expires_at = timestamp_at(r, "expires_at");
  t.revoked_at = timestamp_at(r, "revoked_at");
  if (auto st = validate(t); !st.ok()) r.fail("", st.error().message);
  return t;
}

EnrollmentToken read_enrollment_token(const JsonReader& r) {
  r.allow_only({"id", "name", "secret_sha256", "device_types", "hardware_revisions", "sites",
                "max_uses", "uses", "created_at", "expires_at", "revoked_at", "created_by"});
  EnrollmentToken t;
  t.id = r.str("id");
  t.name = r.str("name");
  t.secret_sha256 = r.str("secret_sha256");
  t.device_types = r.strings_or_empty("device_types");
  t.hardware_revisions = r.strings_or_empty("hardware_revisions");
  t.sites = r.strings_or_empty("sites");
  t.max_uses = r.uint_or("max_uses", 0, UINT64_MAX);
  t.uses = r.uint_or("uses", 0, UINT64_MAX);
  t.created_at = timestamp_at(r, "created_at");
  t.expires_at = timestamp_at(r, "expires_at");
  t.revoked_at = timestamp_at(r, "revoked_at");
  t.created_by = r.str_or("created_by", "");
  if (auto st = validate(t); !st.ok()) r.fail("", st.error().message);
  return t;
}

Command read_command(const JsonReader& r) {
  r.allow_only({"id", "device_id", "action", "argument", "requested_by", "reason", "state",
                "created_at", "expires_at", "sent_at", "finished_at", "exit_code", "output",
                "cancelled_by", "reported"});
  Command c;
  c.id = r.str("id");
  c.device_id = r.str("device_id");
  c.action = enum_at(r, "action", &protocol::parse_command_action);
  c.argument = r.str_or("argument", "");
  c.requested_by = r.str_or("requested_by", "");
  c.reason = r.str_or("reason", "");
  c.state = enum_at(r, "state", &parse_command_state);
  c.created_at = timestamp_at(r, "created_at");
  c.expires_at = timestamp_at(r, "expires_at");
  c.sent_at = timestamp_at(r, "sent_at");
  c.finished_at = timestamp_at(r, "finished_at");
  if (r.has("exit_code")) {
    const auto& v = r.raw().at("exit_code");
    if (!v.is_number_integer() || v.get<int64_t>() < INT32_MIN || v.get<int64_t>() > INT32_MAX)
      r.fail("exit_code", "must be a 32-bit integer");
    c.exit_code = static_cast<int>(v.get<int64_t>());
  }
  c.output = r.str_or("output", "");
  c.cancelled_by = r.str_or("cancelled_by", "");
  c.reported = r.boolean_or("reported", false);
  if (auto st = validate(c); !st.ok()) r.fail("", st.error().message);
  return c;
}

Alert read_alert(const JsonReader& r) {
  r.allow_only({"id", "device_id", "rule", "condition", "state", "summary", "escalated",
                "escalation", "resolution", "commands", "opened_at", "updated_at",
                "acknowledged_at", "acknowledged_by", "resolved_at", "resolved_by", "version",
                "notified_version"});
  Alert a;
  a.id = r.str("id");
  a.device_id = r.str("device_id");
  a.rule = r.str("rule");
  a.condition = r.str("condition");
  a.state = enum_at(r, "state", &parse_alert_state);
  a.summary = r.str_or("summary", "");
  a.escalated = r.boolean_or("escalated", false);
  a.escalation = r.str_or("escalation", "");
  a.resolution = r.str_or("resolution", "");
  a.commands = r.strings_or_empty("commands");
  a.opened_at = timestamp_at(r, "opened_at");
  a.updated_at = timestamp_at(r, "updated_at");
  a.acknowledged_at = timestamp_at(r, "acknowledged_at");
  a.acknowledged_by = r.str_or("acknowledged_by", "");
  a.resolved_at = timestamp_at(r, "resolved_at");
  a.resolved_by = r.str_or("resolved_by", "");
  a.version = r.uint_or("version", 0, UINT64_MAX);
  a.notified_version = r.uint_or("notified_version", 0, UINT64_MAX);
  if (auto st = validate(a); !st.ok()) r.fail("", st.error().message);
  return a;
}

Result<Device> device_from_json(std::string_view text) {
  return parse_json_document<Device>(text, "device",
                                     [](const JsonReader& r) { return read_device(r); });
}
Result<Site> site_from_json(std::string_view text) {
  return parse_json_document<Site>(text, "site", [](const JsonReader& r) { return read_site(r); });
}
Result<DeviceProfile> profile_from_json(std::string_view text) {
  return parse_json_document<DeviceProfile>(text, "profile",
                                            [](const JsonReader& r) { return read_profile(r); });
}
Result<Artifact> artifact_from_json(std::string_view text) {
  return parse_json_document<Artifact>(text, "artifact",
                                       [](const JsonReader& r) { return read_artifact(r); });
}

Result<ApiToken> api_token_from_json(std::string_view text) {
  return parse_json_document<ApiToken>(text, "api token",
                                       [](const JsonReader& r) { return read_api_token(r); });
}

Result<EnrollmentToken> enrollment_token_from_json(std::string_view text) {
  return parse_json_document<EnrollmentToken>(
      text, "enrollment token", [](const JsonReader& r) { return read_enrollment_token(r); });
}

Result<Command> command_from_json(std::string_view text) {
  return parse_json_document<Command>(text, "command",
                                      [](const JsonReader& r) { return read_command(r); });
}

Result<Alert> alert_from_json(std::string_view text) {
  return parse_json_document<Alert>(text, "alert",
                                    [](const JsonReader& r) { return read_alert(r); });
}

Result<ConfigDocument> config_document_from_json(std::string_view text) {
  return parse_json_document<ConfigDocument>(text, "config", [](const JsonReader& r) {
    r.allow_only({"device_type", "version", "sha256", "values", "created_at", "author", "note"});
    ConfigDocument d;
    d.device_type = r.str("device_type");
    d.version = r.uint_or("version", 0, UINT64_MAX);
    d.sha256 = r.str("sha256");
    if (!r.has("values")) r.fail("values", "required");
    d.values = r.take("values", protocol::config_values_stored(r.raw().at("values")));
    d.created_at = timestamp_at(r, "created_at");
    d.author = r.str_or("author", "");
    d.note = r.str_or("note", "");
    if (auto st = validate(d); !st.ok()) r.fail("", st.error().message);
    return d;
  });
}

}  // namespace drover
