#include "model/codec.h"

#include <cmath>
#include <limits>

#include "base/units.h"
#include "model/codec_json.h"

namespace drover {
namespace {

using nlohmann::json;

int64_t ms(Timestamp t) { return t.time_since_epoch().count(); }
Timestamp timestamp_at(const JsonReader& r, const char* key) {
  if (!r.has(key)) return Timestamp{};
  const auto& v = r.raw().at(key);
  if (!v.is_number_integer()) r.fail(key, "must be an integer (milliseconds since the epoch)");
  return Timestamp(Duration(v.get<int64_t>()));
}

template <typename E>
E enum_at(const JsonReader& r, const char* key, Result<E> (*parse)(std::string_view)) {
  return r.take(key, parse(r.str(key)));
}

}  // namespace

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
  return {{"device_type", p.device_type}, {"telemetry", telemetry}, {"metrics", metrics}};
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

json plan_json(const RolloutPlan& p) {
  json stages = json::array();
  for (const auto& s : p.stages) {
    json st{{"name", s.name}, {"soak", format_duration(s.soak)}};
    if (s.count > 0) {
      st["count"] = s.count;
    } else {
      st["percent"] = s.percent;
    }
    stages.push_back(st);
  }
  json dims = json::array();
  for (auto d : p.stratify_by) dims.push_back(to_string(d));
  const auto& c = p.constraints;
  json by_class = json::array();
  for (const auto& k : p.contract.by_connectivity) {
    by_class.push_back(
        {{"connectivity", k.connectivity}, {"max_silence", format_duration(k.max_silence)}});
  }
  const json contract = {{"max_silence", format_duration(p.contract.max_silence)},
                         {"by_connectivity", by_class}};
  json health = json::array();
  for (const HealthMetric& m : p.gate.health) {
    health.push_back(
        {{"metric", m.metric}, {"measure", to_string(m.measure)}, {"worse", to_string(m.worse)}});
  }
  return {{"name", p.name},
          {"artifact", {{"name", p.artifact_name}, {"version", p.artifact_version}}},
          {"filter",
           {{"device_types", p.filter.device_types},
            {"hardware_revisions", p.filter.hardware_revisions},
            {"sites", p.filter.sites},
            {"connectivity", p.filter.connectivity},
            {"tags", p.filter.tags}}},
          {"stratify_by", dims},
          {"stages", stages},
          {"gate",
           {{"max_failure_rate", p.gate.max_failure_rate},
            {"acceptable_failure_rate", p.gate.acceptable_failure_rate},
            {"confidence", p.gate.confidence},
            {"min_sample", p.gate.min_sample},
            {"health", health},
            {"health_window", format_duration(p.gate.health_window)}}},
          {"on_failure", to_string(p.on_failure)},
          {"constraints",
           {{"respect_windows", c.respect_windows},
            {"download_in_window", c.download_in_window},
            {"download_ahead", format_duration(c.download_ahead)},
            {"max_per_minute", c.max_per_minute},
            {"ramp_from_per_minute", c.ramp_from_per_minute},
            {"ramp_over", format_duration(c.ramp_over)},
            {"max_in_flight", c.max_in_flight}}},
          {"settle_fraction", p.settle_fraction},
          {"min_per_stratum", p.min_per_stratum},
          {"watch", format_duration(p.watch)},
          {"allow_downgrade", p.allow_downgrade},
          {"contract", contract}};
}

json rollout_json(const Rollout& r) {
  json stages = json::array();
  for (const auto& s : r.stages) {
    stages.push_back({{"name", s.name},
                      {"started_at", ms(s.started_at)},
                      {"settled_at", ms(s.settled_at)},
                      {"finished_at", ms(s.finished_at)},
                      {"devices", s.devices}});
  }
  json halted = json::array();
  for (const auto& h : r.halted) {
    halted.push_back({{"key", h.key},
                      {"hardware_revision", h.hardware_revision},
                      {"site", h.site},
                      {"connectivity", h.connectivity},
                      {"reason", h.reason},
                      {"policy", to_string(h.policy)},
                      {"halted_at", ms(h.halted_at)},
                      {"unexplained", h.unexplained}});
  }
  return {{"id", r.id},
          {"plan", plan_json(r.plan)},
          {"state", to_string(r.state)},
          {"stage", r.stage},
          {"created_at", ms(r.created_at)},
          {"started_at", ms(r.started_at)},
          {"finished_at", ms(r.finished_at)},
          {"stages", stages},
          {"halted", halted},
          {"targets", r.targets},
          {"gates_from", ms(r.gates_from)},
          {"watch_until", ms(r.watch_until)},
          {"created_by", r.created_by}};
}

json deployment_json(const Deployment& d) {
  json out = {{"rollout_id", d.rollout_id},
              {"device_id", d.device_id},
              {"stage", d.stage},
              {"stratum", d.stratum},
              {"state", to_string(d.state)},
              {"from_version", d.from_version},
              {"updated_at", ms(d.updated_at)},
              {"offered_at", ms(d.offered_at)},
              {"offers", d.offers},
              {"error", d.error},
              {"switch_back", d.switch_back}};
  if (d.health.empty()) return out;
  // NaN (no data on a side) is written as null.
  auto value = [](double v) { return std::isfinite(v) ? json(v) : json(nullptr); };
  json pairs = json::array();
  for (const HealthPair& h : d.health)
    pairs.push_back(json::array({value(h.updated), value(h.control)}));
  out["health_partner"] = d.health_partner;
  out["health"] = std::move(pairs);
  return out;
}

json step_json(const DeploymentStep& s) {
  return {{"rollout_id", s.rollout_id}, {"device_id", s.device_id},    {"at", ms(s.at)},
          {"event", s.event},           {"state", to_string(s.state)}, {"message", s.message}};
}

json outcome_json(const RolloutOutcome& o) {
  json halted = json::array();
  for (const auto& h : o.halted) {
    halted.push_back({{"group", h.group},
                      {"reason", h.reason},
                      {"devices", h.devices},
                      {"never_offered", h.never_offered},
                      {"not_reverted", h.not_reverted}});
  }
  json why = json::array();
  for (const auto& w : o.never_offered_why)
    why.push_back({{"reason", w.reason}, {"devices", w.devices}});
  return {{"targets", o.targets},
          {"updated", o.updated},
          {"failed", o.failed()},
          {"install_failed", o.install_failed},
          {"fell_back", o.fell_back},
          {"unhealthy", o.unhealthy},
          {"unhealthy_reverted", o.unhealthy_reverted},
          {"reverted", o.reverted},
          {"reverting", o.reverting},
          {"revert_failed", o.revert_failed},
          {"skipped", o.skipped},
          {"never_offered", o.never_offered},
          {"pending", o.pending},
          {"in_flight", o.in_flight},
          {"silent", o.silent},
          {"went_silent", o.went_silent},
          {"failed_in_revert", o.failed_in_revert},
          {"never_offered_why", why},
          {"halted", halted}};
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
std::string to_json(const RolloutPlan& p) { return plan_json(p).dump(); }
std::string to_json(const Rollout& r) { return rollout_json(r).dump(); }
std::string to_json(const Deployment& d) { return deployment_json(d).dump(); }
std::string to_json(const DeploymentStep& s) { return step_json(s).dump(); }
std::string to_json(const ApiToken& t) { return api_token_json(t).dump(); }
std::string to_json(const RolloutOutcome& o) { return outcome_json(o).dump(); }
std::string to_json(const EnrollmentToken& t) { return enrollment_token_json(t).dump(); }
// Texts from devices: valid UTF-8 by validation, replaced rather than thrown on regardless.
std::string to_json(const Command& c) {
  return command_json(c).dump(-1, ' ', false, json::error_handler_t::replace);
}
std::string to_json(const Alert& a) {
  return alert_json(a).dump(-1, ' ', false, json::error_handler_t::replace);
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
                "attributes", "quiet_hours", "keeps_previous", "enrolled_at", "enrolled_by"});
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
  r.allow_only({"device_type", "telemetry", "metrics"});
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

RolloutPlan read_plan(const JsonReader& r) {
  r.allow_only({"name", "artifact", "filter", "stratify_by", "stages", "gate", "on_failure",
                "constraints", "settle_fraction", "min_per_stratum", "watch", "allow_downgrade",
                "contract"});
  RolloutPlan p;
  p.name = r.str("name");
  const JsonReader art = r.child("artifact");
  art.allow_only({"name", "version"});
  p.artifact_name = art.str("name");
  p.artifact_version = art.str("version");
  if (r.has("filter")) {
    const JsonReader f = r.child("filter");
    f.allow_only({"device_types", "hardware_revisions", "sites", "connectivity", "tags"});
    p.filter.device_types = f.strings_or_empty("device_types");
    p.filter.hardware_revisions = f.strings_or_empty("hardware_revisions");
    p.filter.sites = f.strings_or_empty("sites");
    p.filter.connectivity = f.strings_or_empty("connectivity");
    p.filter.tags = f.strings_or_empty("tags");
  }
  if (r.has("stratify_by")) {
    p.stratify_by.clear();
    for (const auto& s : r.strings_or_empty("stratify_by")) {
      p.stratify_by.push_back(r.take("stratify_by", parse_stratum_dimension(s)));
    }
  }
  for (const auto& s : r.array("stages")) {
    s.allow_only({"name", "percent", "count", "soak"});
    StageSpec st;
    st.name = s.str("name");
    st.percent = s.number_or("percent", 0);
    st.count = static_cast<uint32_t>(s.uint_or("count", 0));
    if (s.has("percent") == s.has("count")) s.fail("", "give exactly one of percent and count");
    st.soak = s.duration_or("soak", Duration(0));
    p.stages.push_back(st);
  }
  if (r.has("gate")) {
    const JsonReader g = r.child("gate");
    g.allow_only({"max_failure_rate", "acceptable_failure_rate", "confidence", "min_sample",
                  "health", "health_window"});
    p.gate.max_failure_rate = g.number_or("max_failure_rate", p.gate.max_failure_rate);
    p.gate.acceptable_failure_rate =
        g.number_or("acceptable_failure_rate", p.gate.acceptable_failure_rate);
    p.gate.confidence = g.number_or("confidence", p.gate.confidence);
    p.gate.min_sample = static_cast<uint32_t>(g.uint_or("min_sample", p.gate.min_sample));
    if (g.has("health")) {
      for (const auto& h : g.array("health")) {
        h.allow_only({"metric", "measure", "worse"});
        HealthMetric m;
        m.metric = h.str("metric");
        if (h.has("measure")) m.measure = enum_at(h, "measure", &parse_health_measure);
        if (h.has("worse")) m.worse = enum_at(h, "worse", &parse_health_direction);
        p.gate.health.push_back(std::move(m));
      }
    }
    p.gate.health_window = g.duration_or("health_window", p.gate.health_window);
  }
  if (r.has("on_failure")) p.on_failure = enum_at(r, "on_failure", &parse_failure_policy);
  if (r.has("constraints")) {
    const JsonReader c = r.child("constraints");
    c.allow_only({"respect_windows", "download_in_window", "download_ahead", "max_per_minute",
                  "ramp_from_per_minute", "ramp_over", "max_in_flight"});
    auto& k = p.constraints;
    k.respect_windows = c.boolean_or("respect_windows", k.respect_windows);
    k.download_in_window = c.boolean_or("download_in_window", k.download_in_window);
    k.download_ahead = c.duration_or("download_ahead", k.download_ahead);
    k.max_per_minute = c.number_or("max_per_minute", k.max_per_minute);
    k.ramp_from_per_minute = c.number_or("ramp_from_per_minute", k.ramp_from_per_minute);
    k.ramp_over = c.duration_or("ramp_over", k.ramp_over);
    k.max_in_flight = static_cast<uint32_t>(c.uint_or("max_in_flight", k.max_in_flight));
  }
  p.settle_fraction = r.number_or("settle_fraction", p.settle_fraction);
  p.min_per_stratum = static_cast<uint32_t>(r.uint_or("min_per_stratum", p.min_per_stratum));
  p.watch = r.duration_or("watch", p.watch);
  p.allow_downgrade = r.boolean_or("allow_downgrade", false);
  if (r.has("contract")) {
    const JsonReader c = r.child("contract");
    c.allow_only({"max_silence", "by_connectivity"});
    p.contract.max_silence = c.duration_or("max_silence", p.contract.max_silence);
    for (const auto& k : c.array("by_connectivity")) {
      k.allow_only({"connectivity", "max_silence"});
      p.contract.by_connectivity.push_back({k.str("connectivity"), k.duration("max_silence")});
    }
  }
  if (auto st = validate(p); !st.ok()) r.fail("", st.error().message);
  return p;
}

Rollout read_rollout(const JsonReader& r) {
  r.allow_only({"id", "plan", "state", "stage", "created_at", "started_at", "finished_at", "stages",
                "halted", "targets", "gates_from", "watch_until", "created_by"});
  Rollout out;
  out.id = r.str("id");
  if (!is_valid_name(out.id)) r.fail("id", "bad rollout id");
  out.plan = read_plan(r.child("plan"));
  // Written before check-in contracts existed: its devices were never promised one, so none
  // is judged silent (a rollout in its watch must not count them as lost on an upgrade).
  if (!r.child("plan").has("contract")) out.plan.contract = CheckInContract{Duration(0), {}};
  out.state = enum_at(r, "state", &parse_rollout_state);
  out.stage = static_cast<uint32_t>(r.uint_or("stage", 0));
  out.created_at = timestamp_at(r, "created_at");
  out.started_at = timestamp_at(r, "started_at");
  out.finished_at = timestamp_at(r, "finished_at");
  for (const auto& s : r.array("stages")) {
    s.allow_only({"name", "started_at", "settled_at", "finished_at", "devices"});
    out.stages.push_back({s.str("name"), timestamp_at(s, "started_at"),
                          timestamp_at(s, "settled_at"), timestamp_at(s, "finished_at"),
                          static_cast<uint32_t>(s.uint_or("devices", 0))});
  }
  for (const auto& h : r.array("halted")) {
    h.allow_only({"key", "hardware_revision", "site", "connectivity", "reason", "policy",
                  "halted_at", "unexplained"});
    out.halted.push_back({h.str("key"), h.str_or("hardware_revision", ""), h.str_or("site", ""),
                          h.str_or("connectivity", ""), h.str_or("reason", ""),
                          enum_at(h, "policy", &parse_failure_policy), timestamp_at(h, "halted_at"),
                          h.boolean_or("unexplained", false)});
  }
  out.targets = static_cast<uint32_t>(r.uint_or("targets", 0));
  out.gates_from = timestamp_at(r, "gates_from");
  out.watch_until = timestamp_at(r, "watch_until");
  out.created_by = r.str_or("created_by", "");
  if (out.stage >= out.plan.stages.size()) r.fail("stage", "beyond the plan's last stage");
  return out;
}

namespace {

// [updated, control], each a number or null (no data).
HealthPair read_health_pair(const JsonReader& r) {
  const json& j = r.raw();
  if (!j.is_array() || j.size() != 2) r.fail("", "a health pair is [updated, control]");
  auto side = [&](size_t k) {
    const json& v = j[k];
    if (v.is_null()) return std::numeric_limits<double>::quiet_NaN();
    if (!v.is_number() || !std::isfinite(v.get<double>()))
      r.fail("", "a health pair's values are numbers or null");
    return v.get<double>();
  };
  return {side(0), side(1)};
}

}  // namespace

Deployment read_deployment(const JsonReader& r) {
  r.allow_only({"rollout_id", "device_id", "stage", "stratum", "state", "from_version",
                "updated_at", "offered_at", "offers", "error", "switch_back", "health_partner",
                "health"});
  Deployment d;
  d.rollout_id = r.str("rollout_id");
  d.device_id = r.str("device_id");
  d.stage = static_cast<uint32_t>(r.uint_or("stage", 0));
  d.stratum = r.str_or("stratum", "");
  d.state = enum_at(r, "state", &parse_deployment_state);
  d.from_version = r.str_or("from_version", "");
  d.updated_at = timestamp_at(r, "updated_at");
  d.offered_at = timestamp_at(r, "offered_at");
  d.offers = static_cast<uint32_t>(r.uint_or("offers", 0));
  d.error = r.str_or("error", "");
  d.switch_back = r.boolean_or("switch_back", false);
  d.health_partner = r.str_or("health_partner", "");
  if (r.has("health")) {
    for (const auto& pair : r.array("health")) d.health.push_back(read_health_pair(pair));
    if (d.health.size() > kMaxHealthMetrics) r.fail("health", "more pairs than a plan has metrics");
  }
  return d;
}

DeploymentStep read_step(const JsonReader& r) {
  r.allow_only({"rollout_id", "device_id", "at", "event", "state", "message"});
  DeploymentStep s;
  s.rollout_id = r.str("rollout_id");
  s.device_id = r.str("device_id");
  s.at = timestamp_at(r, "at");
  s.event = r.str("event");
  s.state = enum_at(r, "state", &parse_deployment_state);
  s.message = r.str_or("message", "");
  return s;
}

RolloutOutcome read_outcome(const JsonReader& r) {
  r.allow_only({"targets", "updated", "failed", "install_failed", "fell_back", "unhealthy",
                "unhealthy_reverted", "reverted", "reverting", "revert_failed", "skipped",
                "never_offered", "pending", "in_flight", "silent", "went_silent",
                "failed_in_revert", "never_offered_why", "halted"});
  RolloutOutcome o;
  auto n = [&](const char* key) { return static_cast<uint32_t>(r.uint_or(key, 0, UINT32_MAX)); };
  o.targets = n("targets");
  o.updated = n("updated");
  o.install_failed = n("install_failed");
  o.fell_back = n("fell_back");
  o.unhealthy = n("unhealthy");
  o.unhealthy_reverted = n("unhealthy_reverted");
  o.reverted = n("reverted");
  o.reverting = n("reverting");
  o.revert_failed = n("revert_failed");
  o.skipped = n("skipped");
  o.never_offered = n("never_offered");
  o.pending = n("pending");
  o.in_flight = n("in_flight");
  o.silent = n("silent");
  o.went_silent = n("went_silent");
  o.failed_in_revert = n("failed_in_revert");
  for (const auto& w : r.array("never_offered_why")) {
    w.allow_only({"reason", "devices"});
    o.never_offered_why.push_back(
        {w.str("reason"), static_cast<uint32_t>(w.uint_or("devices", 0, UINT32_MAX))});
  }
  for (const auto& h : r.array("halted")) {
    h.allow_only({"group", "reason", "devices", "never_offered", "not_reverted"});
    o.halted.push_back({h.str("group"), h.str_or("reason", ""),
                        static_cast<uint32_t>(h.uint_or("devices", 0, UINT32_MAX)),
                        static_cast<uint32_t>(h.uint_or("never_offered", 0, UINT32_MAX)),
                        static_cast<uint32_t>(h.uint_or("not_reverted", 0, UINT32_MAX))});
  }
  return o;
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
Result<RolloutPlan> plan_from_json(std::string_view text) {
  return parse_json_document<RolloutPlan>(text, "plan",
                                          [](const JsonReader& r) { return read_plan(r); });
}
Result<Rollout> rollout_from_json(std::string_view text) {
  return parse_json_document<Rollout>(text, "rollout",
                                      [](const JsonReader& r) { return read_rollout(r); });
}
Result<Deployment> deployment_from_json(std::string_view text) {
  return parse_json_document<Deployment>(text, "deployment",
                                         [](const JsonReader& r) { return read_deployment(r); });
}

Result<DeploymentStep> step_from_json(std::string_view text) {
  return parse_json_document<DeploymentStep>(text, "deployment step",
                                             [](const JsonReader& r) { return read_step(r); });
}

Result<RolloutOutcome> outcome_from_json(std::string_view text) {
  return parse_json_document<RolloutOutcome>(text, "rollout outcome",
                                             [](const JsonReader& r) { return read_outcome(r); });
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

}  // namespace drover
