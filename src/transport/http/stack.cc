#include "transport/http/stack.h"

#include <atomic>

#include "fleet/site_service.h"
#include "rollout/queries.h"
#include "security/crypto.h"
#include "transport/http/alert_api.h"
#include "transport/http/audit_api.h"
#include "transport/http/command_api.h"
#include "transport/http/config_api.h"
#include "transport/http/device_api.h"
#include "transport/http/durable.h"
#include "transport/http/etag.h"
#include "transport/http/health_api.h"
#include "transport/http/metrics.h"
#include "transport/http/operator_api.h"
#include "transport/http/router.h"
#include "transport/http/telemetry_api.h"

namespace drover::http {

struct ServerStack::Parts {
  Parts(Store& store, GroupCommitStore* durable, RolloutEngine& engine, DeviceService& devices,
        Clock& clock, security::TokenSigner signer, const StackOptions& options)
      : tokens(store, clock),
        artifacts(store, engine, options.artifact_dir),
        sites(store, engine),
        profiles(store),
        rollouts(store, engine),
        auth(devices, clock, std::move(signer), options.auth),
        enroll_limit(clock, options.enroll_limit),
        login_limit(clock, options.login_limit),
        metrics({durable,
                 [this] {
                   HttpServer* s = running.load();
                   return s == nullptr ? size_t{0} : s->connections();
                 },
                 &devices, &engine}) {}

  OperatorTokens tokens;
  ArtifactService artifacts;
  SiteService sites;
  ProfileService profiles;
  RolloutQueries rollouts;
  DeviceAuth auth;
  SourceRateLimiter enroll_limit;
  SourceRateLimiter login_limit;
  std::atomic<HttpServer*> running{nullptr};
  Metrics metrics;
  Router router;
  ArtifactService::Swept swept;
  std::unique_ptr<health::HealthView> health;  // with telemetry: device health, the fleet view
  std::unique_ptr<HttpServer> server;          // declared last: stopped and gone before the rest
};

ServerStack::ServerStack(std::unique_ptr<Parts> parts) : p_(std::move(parts)) {}

ServerStack::~ServerStack() { stop(); }

Result<std::unique_ptr<ServerStack>> ServerStack::start(Store& store, GroupCommitStore* durable,
                                                        RolloutEngine& engine,
                                                        DeviceService& devices, Clock& clock,
                                                        StackOptions options) {
  auto signer = security::TokenSigner::create(options.token_secret);
  if (!signer.ok()) return signer.error();
  auto parts =
      std::make_unique<Parts>(store, durable, engine, devices, clock, std::move(*signer), options);
  Parts& p = *parts;
  Router& router = p.router;
  router.add("GET", "/api/v1/health", [&devices, &engine](const Request&, const Params&) {
    return Response::json(
        200, "{\"status\":\"ok\",\"devices\":" + std::to_string(devices.device_count()) +
                 ",\"rollouts\":" + std::to_string(engine.loaded_rollouts().size()) + "}");
  });
  add_device_api(router, p.auth, devices, &p.artifacts, {&p.enroll_limit, &p.login_limit});
  if (!options.openapi_document.empty()) {
    router.add("GET", "/api/openapi.json",
               [document = options.openapi_document](const Request&, const Params&) {
                 return Response::json(200, std::string(document));
               });
  }
  const OperatorServices services{p.tokens, devices,    p.auth, p.artifacts,
                                  p.sites,  p.rollouts, engine};
  add_operator_api(router, services);
  if (options.events != nullptr) add_rollout_events(router, services, *options.events);
  if (options.commands != nullptr)
    add_command_api(router, p.tokens, p.auth, devices, *options.commands);
  if (options.remediator != nullptr) add_alert_api(router, p.tokens, *options.remediator);
  if (options.configs != nullptr) {
    add_config_api(router, p.tokens, p.auth, devices, *options.configs);
    p.profiles.attach_configs(options.configs);
  }
  add_fleet_summary(router, services, clock);
  add_rollout_timeline(router, services, clock);
  if (options.predict) add_rollout_prediction(router, services, clock, options.predict);
  if (options.telemetry != nullptr) {
    add_telemetry_device_api(router, p.auth, *options.telemetry);
    add_telemetry_operator_api(router, p.tokens, *options.telemetry, p.profiles, clock);
    p.health = std::make_unique<health::HealthView>(*options.telemetry, options.remediator, clock);
    add_health_api(router, p.tokens, *p.health);
  }
  add_metrics_route(router, p.metrics, p.tokens);
  if (options.console) add_console(router, *options.console);
  if (options.audit != nullptr) add_audit_api(router, p.tokens, *options.audit);
  if (options.repository != nullptr) {
    add_update_metadata(router, *options.repository, p.auth, devices, p.artifacts);
    p.artifacts.publish_to(options.repository);
  }

  // Before serving: what a crash left in the artifact directory (partial uploads, content no
  // record names) goes.
  auto swept = p.artifacts.sweep();
  if (!swept.ok()) return swept.error();
  p.swept = *swept;
  // The artifacts as signed targets, before a device can ask. A failure stops the start
  // (the timestamp and snapshot keys missing, say): said at once, not at the first offer.
  if (options.repository != nullptr) DROVER_TRY(p.artifacts.publish());

  ServerOptions server_options = std::move(options.server);
  server_options.large_bodies.push_back(
      artifact_upload_body(services, options.max_artifact_bytes, options.upload_timeout));
  server_options.access_log = [&p,
                               log = std::move(server_options.access_log)](const AccessRecord& r) {
    p.metrics.observe(r);
    if (log) log(r);
  };
  Handler handler = with_etags([&router](const Request& r) { return router(r); });
  if (options.audit != nullptr) {
    handler = with_audit(*options.audit, p.tokens, router, std::move(handler));
  }
  if (durable != nullptr) handler = with_durable_answers(*durable, std::move(handler));
  auto server = HttpServer::start(std::move(server_options), std::move(handler));
  if (!server.ok()) return server.error();
  p.server = std::move(*server);
  p.running = p.server.get();
  return std::unique_ptr<ServerStack>(new ServerStack(std::move(parts)));
}

uint16_t ServerStack::port() const { return p_->server->port(); }

void ServerStack::stop() {
  if (p_ && p_->server) p_->server->stop();
}

ArtifactService& ServerStack::artifacts() { return p_->artifacts; }
OperatorTokens& ServerStack::tokens() { return p_->tokens; }
ArtifactService::Swept ServerStack::swept() const { return p_->swept; }

}  // namespace drover::http
