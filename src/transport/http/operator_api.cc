#include "transport/http/operator_api.h"

#include <algorithm>
#include <charconv>
#include <limits>
#include <map>
#include <optional>
#include <tuple>

#include "base/try_assign.h"
#include "base/units.h"
#include "model/codec_json.h"
#include "rollout/planner.h"
#include "transport/http/errors.h"
#include "transport/http/json_body.h"
#include "transport/http/operator_access.h"

namespace drover::http {
namespace {

using nlohmann::json;

constexpr size_t kMaxPage = 1000;

int64_t ms(Timestamp t) { return t.time_since_epoch().count(); }

Result<size_t> page_limit(const Query& q) {
  DROVER_TRY_ASSIGN(const uint64_t n, q.number("limit", 100, 1, kMaxPage));
  return static_cast<size_t>(n);
}

Result<std::optional<bool>> optional_bool(const Query& q, std::string_view key) {
  if (!q.has(key)) return std::optional<bool>();
  if (q.get(key) == "true") return std::optional<bool>(true);
  if (q.get(key) == "false") return std::optional<bool>(false);
  return invalid_argument(std::string(key) + " must be true or false");
}

json counts_json(const StateCounts& c) {
  json out = json::object();
  for (size_t i = 0; i < kDeploymentStateCount; ++i) {
    if (c.n[i] > 0) out[to_string(static_cast<DeploymentState>(i))] = c.n[i];
  }
  return out;
}

json token_json(const ApiToken& t) {
  json j = {{"id", t.id},
            {"name", t.name},
            {"role", to_string(t.role)},
            {"created_at", ms(t.created_at)}};
  j["expires_at"] = t.expires_at == Timestamp{} ? json(nullptr) : json(ms(t.expires_at));
  j["revoked_at"] = t.revoked_at == Timestamp{} ? json(nullptr) : json(ms(t.revoked_at));
  return j;
}

json enrollment_token_json(const EnrollmentToken& t) {
  const auto optional_ms = [](Timestamp at) {
    return at == Timestamp{} ? json(nullptr) : json(ms(at));
  };
  return {{"id", t.id},
          {"name", t.name},
          {"device_types", t.device_types},
          {"hardware_revisions", t.hardware_revisions},
          {"sites", t.sites},
          {"max_uses", t.max_uses == 0 ? json(nullptr) : json(t.max_uses)},
          {"uses", t.uses},
          {"created_at", ms(t.created_at)},
          {"created_by", t.created_by},
          {"expires_at", optional_ms(t.expires_at)},
          {"revoked_at", optional_ms(t.revoked_at)}};
}

json rollout_summary_json(const Rollout& r) {
  return {{"id", r.id},
          {"name", r.plan.name},
          {"artifact", r.plan.artifact_name + "@" + r.plan.artifact_version},
          {"state", to_string(r.state)},
          {"stage", r.stages.empty() ? json(nullptr) : json(r.plan.stages[r.stage].name)},
          {"targets", r.targets},
          {"created_at", ms(r.created_at)}};
}

// The rollout's record with its live progress, stage by stage and stratum by stratum.
Response rollout_status(RolloutEngine& engine, const std::string& id) {
  auto r = engine.get(id);
  if (!r.ok()) return error_response(r.error());
  json out = rollout_json(*r);
  auto progress = engine.progress(id);
  if (!progress.ok()) {
    // Not loaded: a rollout that ended long ago; its record is all there is.
    out["progress"] = nullptr;
    return ok_json(out);
  }
  json stages = json::array();
  for (size_t i = 0; i < progress->per_stage.size(); ++i) {
    const StateCounts& c = progress->per_stage[i];
    stages.push_back({{"name", r->plan.stages[i].name},
                      {"devices", c.total()},
                      {"finished", c.finished()},
                      {"in_flight", c.in_flight()},
                      {"states", counts_json(c)}});
  }
  json strata = json::array();
  for (const StratumProgress& s : progress->strata) {
    strata.push_back({{"key", s.key},
                      {"hardware_revision", s.hardware_revision},
                      {"site", s.site},
                      {"connectivity", s.connectivity},
                      {"halted", s.halted},
                      {"successes", s.successes},
                      {"failures", s.failures},
                      {"devices", s.counts.total()},
                      {"states", counts_json(s.counts)}});
  }
  json health = json::array();
  for (const HealthGateStatus& h : progress->health) {
    const HealthMetric& m = r->plan.gate.health[h.metric];
    health.push_back({{"group", h.group},
                      {"metric", m.metric},
                      {"measure", to_string(m.measure)},
                      {"pairs", h.tally.informative + h.tally.ties},
                      {"worse", h.tally.worse},
                      {"ties", h.tally.ties},
                      {"evidence", h.log_evidence},
                      {"threshold", h.threshold},
                      {"halted", h.halted}});
  }
  out["progress"] = {{"devices", progress->total.total()},
                     {"finished", progress->total.finished()},
                     {"in_flight", progress->total.in_flight()},
                     {"states", counts_json(progress->total)},
                     {"stages", stages},
                     {"strata", strata},
                     {"health", health},
                     {"health_waiting", progress->health_waiting},
                     {"outcome", outcome_json(progress->outcome)}};
  return ok_json(out);
}

json rollback_json(const RolloutPlan& plan, const RollbackPreview& r) {
  json gaps = json::array();
  for (const RevertGap& g : r.gaps) {
    gaps.push_back(
        {{"ran", g.version.empty() ? json(nullptr) : json(g.version)},
         {"devices", g.devices},
         {"examples", g.examples},
         {"reason", g.reason()},
         {"missing_artifact",
          g.version.empty() ? json(nullptr) : json(plan.artifact_name + "@" + g.version)}});
  }
  return {{"switch_back", r.switch_back},
          {"download", r.download},
          {"not_revertible", r.not_revertible},
          {"gaps", gaps}};
}

json preview_json(const RolloutPlan& plan, const PlanPreview& p) {
  json stages = json::array();
  for (const StagePreview& s : p.stages) {
    stages.push_back({{"name", s.name},
                      {"adds", s.adds},
                      {"cumulative", s.cumulative},
                      {"asked", s.asked},
                      {"why", s.why}});
  }
  json strata = json::array();
  for (const auto& [key, n] : p.strata) strata.push_back({{"key", key}, {"devices", n}});
  json excluded = json::array();
  for (const ExcludedDevice& e : p.excluded) {
    if (excluded.size() == 100) break;
    excluded.push_back({{"device_id", e.device_id}, {"reason", e.reason}});
  }
  return {{"targets", p.targets},
          {"already_current", p.already_current},
          {"excluded_count", p.excluded.size()},
          {"excluded", excluded},
          {"stages", stages},
          {"strata", strata},
          {"rollback", rollback_json(plan, p.rollback)}};
}

json step_list_json(const std::vector<DeploymentStep>& steps) {
  json out = json::array();
  for (const DeploymentStep& s : steps) {
    out.push_back({{"at", ms(s.at)},
                   {"event", s.event},
                   {"state", to_string(s.state)},
                   {"message", s.message}});
  }
  return out;
}

// A device's record as the API shows it: the record, and when it last checked in and was
// told to come back (null: not since the server started).
json device_view(const Device& d, const std::optional<CheckInTimes>& times) {
  json j = device_json(d);
  const CheckInTimes t = times.value_or(CheckInTimes{});
  j["last_seen"] = t.last ? json(ms(*t.last)) : json(nullptr);
  j["next_checkin"] = t.next ? json(ms(*t.next)) : json(nullptr);
  return j;
}

json device_view(const DeviceService& devices, const Device& d) {
  return device_view(d, devices.check_in_times(d.id));
}

// The fields an operator sets on a device; the rest (key, enrollment, inventory, state) is
// the device's own business. Each is optional in a PATCH: absent, unchanged.
struct DeviceChange {
  std::optional<std::string> id;  // POST only
  std::optional<std::string> device_type, hardware_revision, site, connectivity;
  std::optional<std::vector<std::string>> tags;
  std::vector<std::string> add_tags, remove_tags;  // PATCH only
  std::optional<std::vector<MaintenanceWindow>> quiet_hours;
};

enum class DeviceWrite : uint8_t { kCreate, kReplace, kPatch };

Result<DeviceChange> read_device_change(const Request& req, DeviceWrite how) {
  return parse_body<DeviceChange>(req, [how](const JsonReader& r) {
    if (how == DeviceWrite::kPatch) {
      r.allow_only({"device_type", "hardware_revision", "site", "connectivity", "tags", "add_tags",
                    "remove_tags", "quiet_hours"});
    } else if (how == DeviceWrite::kCreate) {
      r.allow_only({"id", "device_type", "hardware_revision", "site", "connectivity", "tags",
                    "quiet_hours"});
    } else {
      r.allow_only(
          {"device_type", "hardware_revision", "site", "connectivity", "tags", "quiet_hours"});
    }
    const bool patch = how == DeviceWrite::kPatch;
    auto text = [&](const char* key) -> std::optional<std::string> {
      if (patch && !r.has(key)) return std::nullopt;
      return r.str_or(key, "");
    };
    DeviceChange c;
    if (how == DeviceWrite::kCreate) c.id = r.str("id");
    // Type and revision are what a rollout matches on: a new record must name them.
    c.device_type = patch ? text("device_type") : r.str("device_type");
    c.hardware_revision = patch ? text("hardware_revision") : r.str("hardware_revision");
    c.site = text("site");
    c.connectivity = text("connectivity");
    if (!patch || r.has("tags")) c.tags = r.strings_or_empty("tags");
    c.add_tags = r.strings_or_empty("add_tags");
    c.remove_tags = r.strings_or_empty("remove_tags");
    if (r.has("quiet_hours")) {
      c.quiet_hours.emplace();
      for (const auto& w : r.array("quiet_hours")) c.quiet_hours->push_back(read_window(w));
    }
    return c;
  });
}

// Applies `c` to `d`. An enrolled device's identity (type, revision) is what it proved when
// it enrolled: it does not change here. A malformed value is refused before that is judged.
Status apply_device_change(const DeviceChange& c, Device& d) {
  const Device before = d;
  if (c.device_type) d.device_type = *c.device_type;
  if (c.hardware_revision) d.hardware_revision = *c.hardware_revision;
  if (c.site) d.site = *c.site;
  if (c.connectivity) d.connectivity = *c.connectivity;
  if (c.tags) d.tags = *c.tags;
  for (const std::string& t : c.add_tags) {
    if (std::find(d.tags.begin(), d.tags.end(), t) == d.tags.end()) d.tags.push_back(t);
  }
  std::erase_if(d.tags, [&c](const std::string& t) {
    return std::find(c.remove_tags.begin(), c.remove_tags.end(), t) != c.remove_tags.end();
  });
  if (c.quiet_hours) d.quiet_hours = *c.quiet_hours;
  DROVER_TRY(validate(d));
  if (before.public_key.empty()) return ok_status();
  for (auto [was, now, name] :
       {std::tuple{&before.device_type, &d.device_type, "device_type"},
        std::tuple{&before.hardware_revision, &d.hardware_revision, "hardware_revision"}}) {
    if (*was == *now) continue;
    return conflict("device '" + d.id + "' enrolled as " + name + " '" + *was +
                    "': its identity is fixed at enrollment (decommission it and enroll the "
                    "device under a new id to change it)");
  }
  return ok_status();
}

// A device is placed at a site that exists (its maintenance windows and time zone apply to
// it); a record already at an unknown site may keep it.
Status check_site(SiteService& sites, const DeviceChange& c, std::string_view current) {
  if (!c.site || c.site->empty() || *c.site == current) return ok_status();
  auto all = sites.list();
  if (!all.ok()) return all.error();
  for (const Site& site : *all) {
    if (site.name == *c.site) return ok_status();
  }
  return invalid_argument("unknown site '" + *c.site + "' (drover site put creates it)");
}

// POST creates, PUT creates or replaces, PATCH changes the fields it names.
Response write_device(OperatorServices s, const Request& req, std::string id, DeviceWrite how) {
  auto change = read_device_change(req, how);
  if (!change.ok()) return error_response(change.error());
  if (change->id) id = *change->id;
  const std::optional<Device> before = s.devices.device(id);
  if (before && how == DeviceWrite::kCreate) {
    return error_response(Error{ErrorCode::kAlreadyExists,
                                "device '" + id +
                                    "' exists (PATCH /api/v1/devices/{id} or drover device "
                                    "tag|untag|set changes it)"});
  }
  if (auto st = check_site(s.sites, *change, before ? before->site : ""); !st.ok())
    return error_response(st.error());
  bool created = false;
  auto changed = s.devices.update(
      id,
      [&](Device& d) {
        // Enrolled meanwhile: a POST does not take it over (update() sets `created` first).
        if (how == DeviceWrite::kCreate && !created)
          return Status(Error{ErrorCode::kAlreadyExists, "device '" + id + "' exists"});
        return apply_device_change(*change, d);
      },
      how == DeviceWrite::kPatch ? nullptr : &created);
  if (!changed.ok()) return error_response(changed.error());
  return json_response(created ? 201 : 200, device_view(s.devices, *changed));
}

void add_devices(Router& router, OperatorServices s) {
  router.add(
      "GET", "/api/v1/devices",
      guarded(s.tokens, Role::kViewer, [s](const Request& req, const Params&, const ApiToken&) {
        auto q = query_of(req, {"device_type", "hardware_revision", "site", "connectivity", "tag",
                                "enrollment", "decommissioned", "after", "limit"});
        if (!q.ok()) return error_response(q.error());
        DeviceQuery query;
        query.filter.device_types = q->all("device_type");
        query.filter.hardware_revisions = q->all("hardware_revision");
        query.filter.sites = q->all("site");
        query.filter.connectivity = q->all("connectivity");
        query.filter.tags = q->all("tag");
        if (q->has("enrollment")) {
          auto e = parse_enrollment(q->get("enrollment"));
          if (!e.ok()) return error_response(e.error());
          query.enrollment = *e;
        }
        auto decommissioned = optional_bool(*q, "decommissioned");
        if (!decommissioned.ok()) return error_response(decommissioned.error());
        query.decommissioned = *decommissioned;
        query.after = std::string(q->get("after"));
        auto limit = page_limit(*q);
        if (!limit.ok()) return error_response(limit.error());
        query.limit = *limit;
        const DevicePage page = s.devices.list(query);
        json devices = json::array();
        for (size_t i = 0; i < page.devices.size(); ++i)
          devices.push_back(device_view(page.devices[i], page.check_ins[i]));
        return ok_json({{"devices", devices},
                        {"matched", page.matched},
                        {"next", page.next.empty() ? json(nullptr) : json(page.next)}});
      }));

  router.add(
      "GET", "/api/v1/devices/{id}",
      guarded(s.tokens, Role::kViewer, [s](const Request&, const Params& p, const ApiToken&) {
        auto d = s.devices.device(p.get("id"));
        if (!d) {
          return error_response(not_found("unknown device '" + std::string(p.get("id")) + "'"));
        }
        return ok_json(device_view(s.devices, *d));
      }));

  // The device's update story: its deployment in each rollout, newest first, every step.
  // A store read per rollout: on a worker, not an I/O thread.
  router.add("GET", "/api/v1/devices/{id}/deployments",
             offloaded(guarded(s.tokens, Role::kViewer,
                               [s](const Request& req, const Params& p, const ApiToken&) {
                                 auto q = query_of(req, {"limit"});
                                 if (!q.ok()) return error_response(q.error());
                                 auto limit = page_limit(*q);
                                 if (!limit.ok()) return error_response(limit.error());
                                 const std::string id(p.get("id"));
                                 if (!s.devices.device(id))
                                   return error_response(not_found("unknown device '" + id + "'"));
                                 auto history = s.rollouts.device_history(id, *limit);
                                 if (!history.ok()) return error_response(history.error());
                                 json out = json::array();
                                 for (const auto& [rollout, detail] : *history) {
                                   json d = deployment_json(detail.deployment);
                                   d["rollout"] = rollout_summary_json(rollout);
                                   d["history"] = step_list_json(detail.history);
                                   out.push_back(std::move(d));
                                 }
                                 return ok_json({{"device_id", id}, {"deployments", out}});
                               })));

  router.add(
      "POST", "/api/v1/devices",
      guarded(s.tokens, Role::kOperator, [s](const Request& req, const Params&, const ApiToken&) {
        return write_device(s, req, "", DeviceWrite::kCreate);
      }));
  router.add(
      "PUT", "/api/v1/devices/{id}",
      guarded(s.tokens, Role::kOperator, [s](const Request& req, const Params& p, const ApiToken&) {
        return write_device(s, req, std::string(p.get("id")), DeviceWrite::kReplace);
      }));
  router.add(
      "PATCH", "/api/v1/devices/{id}",
      guarded(s.tokens, Role::kOperator, [s](const Request& req, const Params& p, const ApiToken&) {
        return write_device(s, req, std::string(p.get("id")), DeviceWrite::kPatch);
      }));

  auto decision = [s](Status (DeviceAuth::*decide)(std::string_view)) {
    return guarded(s.tokens, Role::kOperator,
                   [s, decide](const Request&, const Params& p, const ApiToken&) {
                     if (auto st = (s.auth.*decide)(p.get("id")); !st.ok())
                       return error_response(st.error());
                     return ok_json(device_view(s.devices, *s.devices.device(p.get("id"))));
                   });
  };
  router.add("POST", "/api/v1/devices/{id}/accept", decision(&DeviceAuth::accept));
  router.add("POST", "/api/v1/devices/{id}/reject", decision(&DeviceAuth::reject));
  // Undoing a rejection is an admin's: it lets a refused key back into the queue.
  router.add("POST", "/api/v1/devices/{id}/unreject",
             guarded(s.tokens, Role::kAdmin, [s](const Request&, const Params& p, const ApiToken&) {
               if (auto st = s.auth.unreject(p.get("id")); !st.ok()) {
                 return error_response(st.error());
               }
               return ok_json(device_view(s.devices, *s.devices.device(p.get("id"))));
             }));
  router.add(
      "POST", "/api/v1/devices/{id}/decommission",
      guarded(s.tokens, Role::kOperator, [s](const Request&, const Params& p, const ApiToken&) {
        auto d = s.devices.decommission(p.get("id"));
        if (!d.ok()) return error_response(d.error());
        return ok_json(device_view(s.devices, *d));
      }));
}

void add_sites(Router& router, OperatorServices s) {
  router.add("GET", "/api/v1/sites",
             guarded(s.tokens, Role::kViewer, [s](const Request&, const Params&, const ApiToken&) {
               auto sites = s.sites.list();
               if (!sites.ok()) return error_response(sites.error());
               json out = json::array();
               for (const Site& site : *sites) out.push_back(site_json(site));
               return ok_json({{"sites", out}});
             }));
  router.add(
      "PUT", "/api/v1/sites/{name}",
      guarded(s.tokens, Role::kOperator, [s](const Request& req, const Params& p, const ApiToken&) {
        auto site = parse_body<Site>(req, [&p](const JsonReader& r) {
          Site out = read_site(r);
          if (out.name != p.get("name")) r.fail("name", "must match the path");
          return out;
        });
        if (!site.ok()) return error_response(site.error());
        auto stored = s.sites.put(std::move(*site));
        if (!stored.ok()) return error_response(stored.error());
        return ok_json(site_json(*stored));
      }));
}

// PUT /api/v1/artifacts/{name}/{version}?device_type=..&hardware_revision=..&depends=c:>=1.2
// [&sha256=..] with the content as the body: the metadata, and the hash the content must have.
struct Upload {
  Artifact meta;
  std::string expected_sha256;
};
Result<Upload> upload_request(const Request& req, const Params& p) {
  auto q = query_of(req, {"device_type", "hardware_revision", "depends", "sha256"});
  if (!q.ok()) return q.error();
  Upload u;
  u.expected_sha256 = std::string(q->get("sha256"));
  Artifact& a = u.meta;
  a.name = std::string(p.get("name"));
  a.version = std::string(p.get("version"));
  a.device_types = q->all("device_type");
  a.hardware_revisions = q->all("hardware_revision");
  for (const std::string& dep : q->all("depends")) {
    const size_t colon = dep.find(':');
    if (colon == std::string::npos || colon == 0) {
      return invalid_argument("depends must be COMPONENT:CONSTRAINT, got '" + dep + "'");
    }
    a.depends.push_back({dep.substr(0, colon), dep.substr(colon + 1)});
  }
  return u;
}

// An artifact as the operator API shows it: with signed update metadata on, "signed" says
// whether the signed targets list it (only then is it offered).
json shown(const ArtifactService& artifacts, const Artifact& a) {
  json out = artifact_json(a);
  if (const auto is_signed = artifacts.is_signed(a)) out["signed"] = *is_signed;
  return out;
}

void add_artifacts(Router& router, OperatorServices s) {
  router.add("GET", "/api/v1/artifacts",
             guarded(s.tokens, Role::kViewer, [s](const Request&, const Params&, const ApiToken&) {
               auto all = s.artifacts.list();
               if (!all.ok()) return error_response(all.error());
               json out = json::array();
               for (const Artifact& a : *all) out.push_back(shown(s.artifacts, a));
               return ok_json({{"artifacts", out}});
             }));
  router.add(
      "GET", "/api/v1/artifacts/{name}/{version}",
      guarded(s.tokens, Role::kViewer, [s](const Request&, const Params& p, const ApiToken&) {
        auto a = s.artifacts.get(p.get("name"), p.get("version"));
        if (!a.ok()) return error_response(a.error());
        return ok_json(shown(s.artifacts, *a));
      }));
  router.add(
      "PUT", "/api/v1/artifacts/{name}/{version}",
      offloaded(guarded(
          s.tokens, Role::kOperator, [s](const Request& req, const Params& p, const ApiToken&) {
            auto upload = upload_request(req, p);
            if (!upload.ok()) return error_response(upload.error());
            auto stored = req.spooled
                              ? s.artifacts.upload_file(std::move(upload->meta), req.spooled->path,
                                                        req.spooled->size, req.spooled->sha256,
                                                        upload->expected_sha256)
                              : s.artifacts.upload(std::move(upload->meta), req.body,
                                                   upload->expected_sha256);
            if (!stored.ok()) return error_response(stored.error());
            return json_response(201, shown(s.artifacts, *stored));
          })));
  router.add("DELETE", "/api/v1/artifacts/{name}/{version}",
             offloaded(guarded(
                 s.tokens, Role::kOperator, [s](const Request&, const Params& p, const ApiToken&) {
                   if (auto st = s.artifacts.remove(p.get("name"), p.get("version")); !st.ok())
                     return error_response(st.error());
                   return Response::json(204, "");
                 })));
}

}  // namespace

ServerOptions::LargeBody artifact_upload_body(OperatorServices s, size_t max_bytes,
                                              Duration timeout) {
  ServerOptions::LargeBody large;
  large.method = "PUT";
  large.path_prefix = "/api/v1/artifacts/";
  large.max_bytes = max_bytes;
  large.timeout = timeout;
  large.spool_directory = s.artifacts.incoming_directory();
  large.admit = [s](Request& head) -> std::optional<Response> {
    if (auto token = authorize(s.tokens, head, Role::kOperator); !token.ok())
      return error_response(token.error());
    const std::string_view length = head.header("Content-Length");
    uint64_t bytes = 0;
    auto [end, ec] = std::from_chars(length.data(), length.data() + length.size(), bytes);
    if (length.empty() || ec != std::errc() || end != length.data() + length.size()) {
      return Response::error(411, "length_required",
                             "an artifact upload must declare its Content-Length, so that it is "
                             "refused before it is sent when it does not fit");
    }
    auto room = s.artifacts.admit(bytes);
    if (!room.ok()) return error_response(room.error());
    head.admission = std::move(*room);  // promised until the upload is stored or fails
    return std::nullopt;
  };
  return large;
}

namespace {

void add_rollouts(Router& router, OperatorServices s) {
  router.add("GET", "/api/v1/rollouts",
             guarded(s.tokens, Role::kViewer, [s](const Request&, const Params&, const ApiToken&) {
               auto all = s.rollouts.list();
               if (!all.ok()) return error_response(all.error());
               json out = json::array();
               for (const Rollout& r : *all) out.push_back(rollout_summary_json(r));
               return ok_json({{"rollouts", out}});
             }));
  router.add(
      "POST", "/api/v1/rollouts",
      offloaded(guarded(
          s.tokens, Role::kOperator, [s](const Request& req, const Params&, const ApiToken& me) {
            auto plan =
                parse_body<RolloutPlan>(req, [](const JsonReader& r) { return read_plan(r); });
            if (!plan.ok()) return error_response(plan.error());
            if (plan->allow_downgrade && me.role < Role::kAdmin) {
              return error_response({ErrorCode::kPermissionDenied,
                                     "a downgrade (allow_downgrade) needs the admin role; token '" +
                                         me.name + "' is " + to_string(me.role)});
            }
            auto created = s.engine.create(*plan, me.name);
            if (!created.ok()) return error_response(created.error());
            json out = rollout_json(*created);
            // Said before it starts: the targets a rollback could not send back.
            if (auto rollback = s.rollouts.rollback_preview(*plan); rollback.ok())
              out["rollback"] = rollback_json(*plan, *rollback);
            return json_response(201, out);
          })));
  // Changes nothing, so a viewer may ask.
  router.add("POST", "/api/v1/rollouts/plan",
             offloaded(guarded(s.tokens, Role::kViewer,
                               [s](const Request& req, const Params&, const ApiToken&) {
                                 auto plan = parse_body<RolloutPlan>(
                                     req, [](const JsonReader& r) { return read_plan(r); });
                                 if (!plan.ok()) return error_response(plan.error());
                                 auto preview = s.rollouts.preview(*plan);
                                 if (!preview.ok()) return error_response(preview.error());
                                 return ok_json(preview_json(*plan, *preview));
                               })));
  router.add(
      "GET", "/api/v1/rollouts/{id}",
      guarded(s.tokens, Role::kViewer, [s](const Request&, const Params& p, const ApiToken&) {
        return rollout_status(s.engine, std::string(p.get("id")));
      }));
  // The rollout's deployments, one row per device, optionally of one state.
  router.add(
      "GET", "/api/v1/rollouts/{id}/devices",
      guarded(s.tokens, Role::kViewer, [s](const Request& req, const Params& p, const ApiToken&) {
        auto q = query_of(req, {"state", "after", "limit"});
        if (!q.ok()) return error_response(q.error());
        auto limit = page_limit(*q);
        if (!limit.ok()) return error_response(limit.error());
        std::optional<DeploymentState> state;
        if (q->has("state")) {
          auto parsed = parse_deployment_state(q->get("state"));
          if (!parsed.ok()) return error_response(parsed.error());
          state = *parsed;
        }
        auto page =
            s.rollouts.deployments(std::string(p.get("id")), state, q->get("after"), *limit);
        if (!page.ok()) return error_response(page.error());
        json rows = json::array();
        for (const Deployment& d : page->rows) rows.push_back(deployment_json(d));
        const json next =
            page->more && !page->rows.empty() ? json(page->rows.back().device_id) : json(nullptr);
        return ok_json({{"deployments", rows}, {"matched", page->matched}, {"next", next}});
      }));
  // One device's deployment in the rollout, with its history.
  router.add(
      "GET", "/api/v1/rollouts/{id}/devices/{device_id}",
      guarded(s.tokens, Role::kViewer, [s](const Request&, const Params& p, const ApiToken&) {
        auto d = s.rollouts.deployment(std::string(p.get("id")), std::string(p.get("device_id")));
        if (!d.ok()) return error_response(d.error());
        json out = deployment_json(d->deployment);
        out["history"] = step_list_json(d->history);
        return ok_json(out);
      }));
  using Action = Status (RolloutEngine::*)(const std::string&);
  const std::pair<const char*, Action> actions[] = {
      {"start", &RolloutEngine::start},       {"pause", &RolloutEngine::pause},
      {"resume", &RolloutEngine::resume},     {"abort", &RolloutEngine::abort},
      {"rollback", &RolloutEngine::rollback},
  };
  for (const auto& [verb, action] : actions) {
    Router::RouteHandler handler =
        guarded(s.tokens, Role::kOperator,
                [s, action = action](const Request&, const Params& p, const ApiToken&) {
                  const std::string id(p.get("id"));
                  if (auto st = (s.engine.*action)(id); !st.ok()) return error_response(st.error());
                  return rollout_status(s.engine, id);
                });
    // Start and rollback plan over the whole fleet: on a worker. Pause, resume and abort are
    // quick and must not queue behind such work (an abort is how a bad rollout is stopped).
    const bool slow = std::string_view(verb) == "start" || std::string_view(verb) == "rollback";
    router.add("POST", std::string("/api/v1/rollouts/{id}/") + verb,
               slow ? offloaded(std::move(handler)) : std::move(handler));
  }
}

void add_tokens(Router& router, OperatorServices s) {
  router.add(
      "GET", "/api/v1/whoami",
      guarded(s.tokens, Role::kViewer, [](const Request&, const Params&, const ApiToken& me) {
        return ok_json(token_json(me));
      }));
  router.add("GET", "/api/v1/tokens",
             guarded(s.tokens, Role::kAdmin, [s](const Request&, const Params&, const ApiToken&) {
               auto all = s.tokens.list();
               if (!all.ok()) return error_response(all.error());
               json out = json::array();
               for (const ApiToken& t : *all) out.push_back(token_json(t));
               return ok_json({{"tokens", out}});
             }));
  struct NewToken {
    std::string name;
    Role role;
    Duration lifetime;
  };
  router.add(
      "POST", "/api/v1/tokens",
      guarded(s.tokens, Role::kAdmin, [s](const Request& req, const Params&, const ApiToken&) {
        auto body = parse_body<NewToken>(req, [](const JsonReader& r) {
          r.allow_only({"name", "role", "lifetime"});
          NewToken t{r.str("name"), r.take("role", parse_role(r.str("role"))), Duration(0)};
          if (r.has("lifetime")) {
            t.lifetime = r.duration("lifetime");
            // Zero means "never expires": a lifetime that rounds to it must not mean that.
            if (t.lifetime < seconds(1)) r.fail("lifetime", "must be at least 1s");
          }
          return t;
        });
        if (!body.ok()) return error_response(body.error());
        auto created = s.tokens.create(body->name, body->role, body->lifetime);
        if (!created.ok()) return error_response(created.error());
        json out = token_json(created->record);
        out["token"] = created->text;
        return json_response(201, out);
      }));
  router.add("POST", "/api/v1/tokens/{id}/revoke",
             guarded(s.tokens, Role::kAdmin, [s](const Request&, const Params& p, const ApiToken&) {
               auto t = s.tokens.revoke(p.get("id"));
               if (!t.ok()) return error_response(t.error());
               return ok_json(token_json(*t));
             }));
}

// Scoped enrollment tokens: anyone may see them (no secret is kept), an admin makes and
// revokes them (each admits devices into the fleet).
void add_enrollment_tokens(Router& router, OperatorServices s) {
  router.add("GET", "/api/v1/enrollment-tokens",
             guarded(s.tokens, Role::kViewer, [s](const Request&, const Params&, const ApiToken&) {
               auto all = s.auth.enrollment_tokens();
               if (!all.ok()) return error_response(all.error());
               json out = json::array();
               for (const EnrollmentToken& t : *all) out.push_back(enrollment_token_json(t));
               return ok_json({{"enrollment_tokens", out}});
             }));
  router.add(
      "POST", "/api/v1/enrollment-tokens",
      guarded(s.tokens, Role::kAdmin, [s](const Request& req, const Params&, const ApiToken& me) {
        auto spec = parse_body<EnrollmentTokenSpec>(req, [](const JsonReader& r) {
          r.allow_only(
              {"name", "device_types", "hardware_revisions", "sites", "max_uses", "lifetime"});
          EnrollmentTokenSpec t;
          t.name = r.str("name");
          t.device_types = r.strings_or_empty("device_types");
          t.hardware_revisions = r.strings_or_empty("hardware_revisions");
          t.sites = r.strings_or_empty("sites");
          t.max_uses = r.uint_or("max_uses", 0, UINT32_MAX);
          if (r.has("lifetime")) {
            t.lifetime = r.duration("lifetime");
            if (t.lifetime < seconds(1)) r.fail("lifetime", "must be at least 1s");
          }
          return t;
        });
        if (!spec.ok()) return error_response(spec.error());
        spec->created_by = "token:" + me.id + " (" + me.name + ")";
        auto created = s.auth.create_enrollment_token(std::move(*spec));
        if (!created.ok()) return error_response(created.error());
        json out = enrollment_token_json(created->record);
        out["token"] = created->text;
        return json_response(201, out);
      }));
  router.add("POST", "/api/v1/enrollment-tokens/{id}/revoke",
             guarded(s.tokens, Role::kAdmin, [s](const Request&, const Params& p, const ApiToken&) {
               auto t = s.auth.revoke_enrollment_token(p.get("id"));
               if (!t.ok()) return error_response(t.error());
               return ok_json(enrollment_token_json(*t));
             }));
}

}  // namespace

void add_rollout_events(Router& router, OperatorServices s, const RolloutEventLog& events) {
  router.add(
      "GET", "/api/v1/rollouts/{id}/events",
      guarded(
          s.tokens, Role::kViewer,
          [s, &events](const Request& req, const Params& p, const ApiToken&) {
            auto q = query_of(req, {"after", "limit"});
            if (!q.ok()) return error_response(q.error());
            auto after = q->number("after", 0, 0, UINT64_MAX);
            if (!after.ok()) return error_response(after.error());
            auto limit = page_limit(*q);
            if (!limit.ok()) return error_response(limit.error());
            const std::string id(p.get("id"));
            if (auto r = s.engine.get(id); !r.ok()) return error_response(r.error());
            const RolloutEventLog::Page page = events.since(id, *after, *limit);
            json out = json::array();
            for (const RolloutEventLog::Entry& e : page.events) {
              out.push_back({{"seq", e.seq},
                             {"at", ms(e.event.at)},
                             {"event", to_string(e.event.kind)},
                             {"text", e.event.text}});
            }
            return ok_json({{"events", out}, {"last", page.last}, {"truncated", page.truncated}});
          }));
}

void add_operator_api(Router& router, OperatorServices services) {
  add_devices(router, services);
  add_sites(router, services);
  add_artifacts(router, services);
  add_rollouts(router, services);
  add_tokens(router, services);
  add_enrollment_tokens(router, services);
}

}  // namespace drover::http
