#include "sim/remote_plane.h"

#include <nlohmann/json.hpp>

#include "agent/device_answers.h"
#include "model/codec.h"
#include "model/codec_json.h"
#include "transport/http/client.h"

namespace drover::sim {
namespace {

using nlohmann::json;

StateCounts counts_from(const json& states) {
  StateCounts c;
  if (!states.is_object()) return c;
  for (const auto& [name, n] : states.items()) {
    auto s = parse_deployment_state(name);
    if (s.ok() && n.is_number_unsigned()) c[*s] = n.get<uint32_t>();
  }
  return c;
}

// The operator API's progress document as the engine's own type. Throws json::exception for a
// document of the wrong shape.
RolloutProgress progress_from(Rollout rollout, const json& progress) {
  RolloutProgress out;
  out.rollout = std::move(rollout);
  out.total = counts_from(progress.value("states", json()));
  for (const json& s : progress.value("stages", json::array()))
    out.per_stage.push_back(counts_from(s.value("states", json())));
  for (const json& s : progress.value("strata", json::array())) {
    StratumProgress sp;
    sp.key = s.value("key", "");
    sp.hardware_revision = s.value("hardware_revision", "");
    sp.site = s.value("site", "");
    sp.connectivity = s.value("connectivity", "");
    sp.halted = s.value("halted", false);
    sp.successes = s.value("successes", 0u);
    sp.failures = s.value("failures", 0u);
    sp.counts = counts_from(s.value("states", json()));
    out.strata.push_back(std::move(sp));
  }
  if (progress.contains("outcome")) {
    out.outcome = read_outcome(JsonReader(progress["outcome"], "progress.outcome"));
  }
  return out;
}

}  // namespace

RemoteControlPlane::RemoteControlPlane(std::unique_ptr<http::HttpClient> client,
                                       RemotePlaneOptions options, LineSink say)
    : client_(std::move(client)), options_(std::move(options)), say_(std::move(say)) {}

RemoteControlPlane::~RemoteControlPlane() = default;

Result<std::unique_ptr<RemoteControlPlane>> RemoteControlPlane::create(RemotePlaneOptions options,
                                                                       LineSink say) {
  if (options.token.empty())
    return invalid_argument("--server needs an operator API token (--token)");
  http::ClientOptions client_options;
  client_options.ca_file = options.ca_file;
  client_options.request_timeout = minutes(5);  // an artifact upload
  auto client = http::HttpClient::create(options.server, client_options);
  if (!client.ok()) return client.error();
  return std::unique_ptr<RemoteControlPlane>(
      new RemoteControlPlane(std::move(*client), std::move(options), std::move(say)));
}

Status RemoteControlPlane::set_up(const std::vector<Site>& sites,
                                  const std::vector<Artifact>& artifacts,
                                  std::vector<Device> fleet) {
  if (!fleet.empty()) DROVER_TRY(check_absent(fleet.front().id));
  for (const Site& site : sites) DROVER_TRY(put_site(site));
  for (const Artifact& a : artifacts) {
    auto uploaded = upload(a, options_.content(a));
    if (!uploaded.ok()) return uploaded.error();
  }
  for (const Device& d : fleet) DROVER_TRY(register_device(d));
  say_("[network] " + std::to_string(fleet.size()) + " devices, " + std::to_string(sites.size()) +
       " sites and " + std::to_string(artifacts.size()) + " artifacts set up on " +
       options_.server);
  return ok_status();
}

AgentAccess RemoteControlPlane::agent_access() const {
  // With the server's root the agents require signed update metadata, as devices do.
  return {options_.server, options_.enrollment_token, options_.ca_file, options_.initial_root};
}

void RemoteControlPlane::keep_pace(Timestamp t) { sleep_until(*options_.server_clock, t); }

Result<std::vector<StageInsight>> RemoteControlPlane::stage_insights(const std::string&) {
  return not_found("a server elsewhere does not tell why its stages grew as they did");
}

Result<std::vector<DeploymentStep>> RemoteControlPlane::history(const std::string&,
                                                                const std::string&) {
  return not_found("a server elsewhere keeps the deployments' history to itself here");
}

Result<RolloutSummary> RemoteControlPlane::summary(const std::string& rollout_id) {
  auto p = progress(rollout_id);
  if (!p.ok()) return p.error();
  return summarize(*p);
}

Result<RolloutProgress> RemoteControlPlane::progress(const std::string& rollout_id) {
  auto p = read_progress(rollout_id);
  if (!p.ok()) {
    if (!seen_) return p.error();
    stale_ = p.error().to_string();  // a blip: what was last read
    return *seen_;
  }
  stale_.reset();
  narrate(*p);
  seen_ = *p;
  return p;
}

// The engine's decisions as the server's record shows them change.
void RemoteControlPlane::narrate(const RolloutProgress& now) {
  const Rollout& r = now.rollout;
  const Rollout* was = seen_ ? &seen_->rollout : nullptr;
  for (size_t i = was ? was->stages.size() : 0; i < r.stages.size(); ++i)
    say_("[stage_started] stage " + r.stages[i].name + ": " + std::to_string(r.stages[i].devices) +
         " devices");
  for (size_t i = was ? was->halted.size() : 0; i < r.halted.size(); ++i)
    say_("[halted] " + r.halted[i].key + ": " + r.halted[i].reason);
  if (was == nullptr || was->state != r.state)
    say_(std::string("[state] rollout ") + r.id + " is " + to_string(r.state));
}

Result<std::string> RemoteControlPlane::call(std::string_view method, const std::string& target,
                                             std::string_view body, int expect, int also,
                                             std::string_view content_type) {
  http::Headers headers = {{"Authorization", "Bearer " + options_.token}};
  if (!body.empty()) headers.emplace_back("Content-Type", content_type);
  auto r = client_->request(method, target, body, headers);
  if (!r.ok()) return r.error();
  if (r->status == expect || (also != 0 && r->status == also)) return std::move(r->body);
  // Both APIs answer errors with the same document.
  return agent::answer_error(r->status, r->body,
                             std::string(method) + " " + target.substr(0, target.find('?')));
}

Status RemoteControlPlane::check_absent(std::string_view device_id) {
  auto r = call("GET", "/api/v1/devices/" + http::url_encode(device_id), {}, 200);
  if (r.ok()) {
    return Error{ErrorCode::kAlreadyExists,
                 "the server already has device " + std::string(device_id) +
                     " (a fleet from an earlier run?): use a server with a fresh data directory"};
  }
  if (r.error().code == ErrorCode::kNotFound) return ok_status();
  return r.error();
}

Status RemoteControlPlane::put_site(const Site& site) {
  auto r = call("PUT", "/api/v1/sites/" + http::url_encode(site.name), to_json(site), 200, 201);
  return r.ok() ? ok_status() : Status(r.error());
}

Result<Artifact> RemoteControlPlane::upload(const Artifact& meta, std::string_view content) {
  std::string target =
      "/api/v1/artifacts/" + http::url_encode(meta.name) + "/" + http::url_encode(meta.version);
  char sep = '?';
  auto param = [&](const char* name, const std::string& value) {
    target += sep + std::string(name) + "=" + http::url_encode(value);
    sep = '&';
  };
  for (const auto& t : meta.device_types) param("device_type", t);
  for (const auto& r : meta.hardware_revisions) param("hardware_revision", r);
  for (const auto& d : meta.depends) param("depends", d.component + ":" + d.constraint);
  auto body = call("PUT", target, content, 201, 200, "application/octet-stream");
  if (!body.ok()) return body.error();
  // With signed update metadata on, the API says whether the server signed it.
  json shown = json::parse(*body, nullptr, false);
  if (!shown.is_object()) return invalid_argument("the server's answer is not an artifact");
  const json signed_field = shown.value("signed", json());
  if (!options_.initial_root.empty() && signed_field != json(true)) {
    return Error{ErrorCode::kFailedPrecondition,
                 "the server did not sign " + meta.name + "@" + meta.version +
                     (signed_field.is_null()
                          ? " (it has no signed update metadata: drover keys gen)"
                          : " (its targets keys, or those of the role delegated its name, are "
                            "offline)") +
                     ": agents trusting --initial-root would refuse it"};
  }
  shown.erase("signed");
  return artifact_from_json(shown.dump());
}

Status RemoteControlPlane::register_device(const Device& device) {
  json quiet = json::array();
  for (const MaintenanceWindow& w : device.quiet_hours) quiet.push_back(window_json(w));
  const json body = {{"device_type", device.device_type},
                     {"hardware_revision", device.hardware_revision},
                     {"site", device.site},
                     {"connectivity", device.connectivity},
                     {"tags", device.tags},
                     {"quiet_hours", quiet}};
  auto r = call("PUT", "/api/v1/devices/" + http::url_encode(device.id), body.dump(), 201, 200);
  return r.ok() ? ok_status() : Status(r.error());
}

Result<std::string> RemoteControlPlane::start_rollout(const RolloutPlan& plan) {
  auto created = call("POST", "/api/v1/rollouts", to_json(plan), 201);
  if (!created.ok()) return created.error();
  const json doc = json::parse(*created, nullptr, false);
  if (!doc.is_object() || !doc.contains("id") || !doc["id"].is_string())
    return io_error("POST /api/v1/rollouts: the answer has no rollout id");
  const std::string id = doc["id"].get<std::string>();
  auto started = call("POST", "/api/v1/rollouts/" + http::url_encode(id) + "/start", "", 200);
  if (!started.ok()) return started.error();
  say_("[started] rollout " + id + " (" + plan.name + ")");
  return id;
}

Result<RolloutProgress> RemoteControlPlane::read_progress(const std::string& rollout_id) {
  auto body = call("GET", "/api/v1/rollouts/" + http::url_encode(rollout_id), {}, 200);
  if (!body.ok()) return body.error();
  json doc = json::parse(*body, nullptr, false);
  if (!doc.is_object()) return io_error("GET /api/v1/rollouts/" + rollout_id + ": not JSON");
  json progress = doc.contains("progress") ? doc["progress"] : json();
  doc.erase("progress");
  auto rollout = rollout_from_json(doc.dump());
  if (!rollout.ok()) return rollout.error();
  if (!progress.is_object())
    return not_found("the server no longer has rollout " + rollout_id + "'s progress loaded");
  try {
    return progress_from(std::move(*rollout), progress);
  } catch (const json::exception& e) {
    return io_error("GET /api/v1/rollouts/" + rollout_id +
                    ": the progress is not what the operator API promises: " + e.what());
  } catch (const JsonError& e) {
    return io_error("GET /api/v1/rollouts/" + rollout_id +
                    ": the progress is not what the operator API promises: " + e.message);
  }
}

RolloutSummary summarize(const RolloutProgress& p) {
  RolloutSummary s{p.rollout.state, p.rollout.targets, p.total, {}};
  for (const StratumProgress& st : p.strata)
    if (!st.halted) s.live.add(st.counts);
  return s;
}

}  // namespace drover::sim
