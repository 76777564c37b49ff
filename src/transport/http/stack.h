// ServerStack: the control plane's HTTP side, assembled in one place — the device API, the
// operator API (with streamed artifact uploads), /metrics, the health check and the API
// description, each on its service — for `drover serve` and the network twin
// (`drover sim --network`), so that the twin runs the wiring production runs.
//
// The caller owns what outlives a server: the store, the rollout engine, the device service
// and the clock. The stack owns the rest: the operator tokens, artifact, site and rollout-query
// services, device authentication, the per-source limits, the metrics and the server.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "base/clock.h"
#include "base/result.h"
#include "fleet/artifact_service.h"
#include "fleet/audit_log.h"
#include "fleet/command_queue.h"
#include "fleet/device_auth.h"
#include "fleet/device_service.h"
#include "fleet/operator_tokens.h"
#include "fleet/prediction.h"
#include "fleet/profile_service.h"
#include "fleet/update_repository.h"
#include "health/remediator.h"
#include "rollout/engine.h"
#include "rollout/event_log.h"
#include "store/group_commit.h"
#include "store/store.h"
#include "telemetry/telemetry_service.h"
#include "transport/http/console.h"
#include "transport/http/rate_limit.h"
#include "transport/http/server.h"

namespace drover::http {

struct StackOptions {
  // Where and how to listen. Its access_log, when set, is called for every answered request
  // after /metrics has counted it.
  ServerOptions server;
  std::string artifact_dir;  // uploaded artifacts (and their incoming spool)
  std::string token_secret;  // signs device tokens: at least 32 random bytes
  AuthOptions auth;
  // Per source address, loopback exempt (`drover serve` sets them from its flags): enrollments
  // without a token (each may create a pending record), and logins.
  RateLimit enroll_limit;
  RateLimit login_limit;
  uint64_t max_artifact_bytes = uint64_t{1} << 30;
  Duration upload_timeout = minutes(30);
  std::string_view openapi_document;  // GET /api/openapi.json, when not empty
  // Telemetry ingest and queries, and device profiles, when given (telemetry_api.h).
  telemetry::TelemetryService* telemetry = nullptr;
  // Signed update metadata, when given: served under /tuf/, and every artifact change is
  // published to it (the caller owns it and refreshes it on a timer).
  UpdateRepository* repository = nullptr;
  // The audit log, when given: every operator request that may change something is recorded
  // before it runs (audit_api.h), and the log is served under /api/v1/audit.
  AuditLog* audit = nullptr;
  // The engine's recent events, when given: served as GET /api/v1/rollouts/{id}/events (the
  // caller fills it from the engine's listener).
  const RolloutEventLog* events = nullptr;
  // The web console's files, when given: served under /console/ (console.h); an empty span
  // serves the page that says this drover was built without them.
  std::optional<std::span<const ConsoleFile>> console;
  // The digital twin's prediction of a plan on the live fleet, when given: served as POST
  // /api/v1/rollouts/predict (operator_api.h).
  RolloutPredictor predict;
  // Remote commands, when given: the operator and device endpoints of command_api.h. The
  // caller attaches the same queue to the device service, so check-ins carry them.
  CommandQueue* commands = nullptr;
  // The remediation rules at work, when given: their alerts under /api/v1/alerts
  // (alert_api.h). The caller ticks it.
  health::Remediator* remediator = nullptr;
  // Device configuration, when given: config_api.h's endpoints, and profile writes checked
  // against the newest documents. The caller attaches it to the device service too.
  ConfigService* configs = nullptr;
};

class ServerStack {
 public:
  // Builds the services and routes, removes what a crash left in the artifact directory,
  // and starts listening. `durable` is the group commit the store's writes go through: each
  // answer then waits for its writes to be durable (durable.h). Null when the store's writes
  // are durable once apply() returns (the simulator's stores).
  static Result<std::unique_ptr<ServerStack>> start(Store& store, GroupCommitStore* durable,
                                                    RolloutEngine& engine, DeviceService& devices,
                                                    Clock& clock, StackOptions options);
  ~ServerStack();  // stops
  ServerStack(const ServerStack&) = delete;
  ServerStack& operator=(const ServerStack&) = delete;

  uint16_t port() const;
  // Stops listening; requests in flight finish (within the drain timeout).
  void stop();

  ArtifactService& artifacts();
  OperatorTokens& tokens();
  // What start() removed from the artifact directory.
  ArtifactService::Swept swept() const;

 private:
  struct Parts;
  explicit ServerStack(std::unique_ptr<Parts> parts);
  std::unique_ptr<Parts> p_;
};

}  // namespace drover::http
