// The model codec's rollout records (codec.h): plans, rollouts, deployments and their
// steps, outcomes.
#include <cmath>
#include <limits>

#include "base/units.h"
#include "model/codec.h"
#include "model/codec_fields.h"
#include "model/codec_json.h"

namespace drover {

using codec::enum_at;
using codec::ms;
using codec::timestamp_at;
using nlohmann::json;

// ---------------------------------------------------------------- encoders

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

std::string to_json(const RolloutPlan& p) { return plan_json(p).dump(); }
std::string to_json(const Rollout& r) { return rollout_json(r).dump(); }
std::string to_json(const Deployment& d) { return deployment_json(d).dump(); }
std::string to_json(const DeploymentStep& s) { return step_json(s).dump(); }
std::string to_json(const RolloutOutcome& o) { return outcome_json(o).dump(); }

// ---------------------------------------------------------------- decoders

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

}  // namespace drover
