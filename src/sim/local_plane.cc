#include "sim/local_plane.h"

#include <filesystem>

#include "fleet/repository_keys.h"
#include "sim/network_fleet.h"

namespace drover::sim {

Result<std::unique_ptr<LocalControlPlane>> LocalControlPlane::create(
    Clock& clock, LocalPlaneOptions options, std::function<void(const EngineEvent&)> listener) {
  std::unique_ptr<Store> store;
  if (options.store == "memory") {
    store = make_memory_store();
  } else if (options.store.starts_with("sqlite:")) {
    const std::string path = options.store.substr(7);
    if (std::filesystem::exists(path))
      return invalid_argument("sqlite store '" + path + "' already exists");
    SqliteOptions so;
    so.synchronous_full = false;  // the twin needs crash safety, not power-loss safety
    auto s = open_sqlite_store(path, so);
    if (!s.ok()) return s.error();
    store = std::move(*s);
  } else {
    return invalid_argument("unknown store '" + options.store + "' (use memory or sqlite:PATH)");
  }
  return std::unique_ptr<LocalControlPlane>(
      new LocalControlPlane(clock, std::move(options), std::move(listener), std::move(store)));
}

LocalControlPlane::LocalControlPlane(Clock& clock, LocalPlaneOptions options,
                                     std::function<void(const EngineEvent&)> listener,
                                     std::unique_ptr<Store> store)
    : clock_(clock),
      options_(std::move(options)),
      listener_(std::move(listener)),
      store_(std::move(store)) {}

LocalControlPlane::~LocalControlPlane() {
  if (repository_) clock_.cancel(refresh_timer_);  // server_ goes next (declared last)
}

Status LocalControlPlane::set_up(const std::vector<Site>& sites,
                                 const std::vector<Artifact>& artifacts,
                                 std::vector<Device> fleet) {
  const bool serves = !options_.server_dir.empty();
  WriteBatch batch;
  batch.sites = sites;
  if (!serves) batch.artifacts = artifacts;  // a network run uploads real content
  DROVER_TRY(store_->apply(batch));

  EngineOptions engine_options;
  engine_options.tick_interval = options_.engine_tick;
  engine_options.history = options_.history;
  engine_options.health = options_.health;
  if (serves) {
    // Beside the artifacts: <net dir>/server/tuf, its root keys in <net dir>/server/root-keys.
    const std::filesystem::path server = std::filesystem::path(options_.server_dir).parent_path();
    const std::string tuf = (server / "tuf").string();
    std::error_code ec;
    std::filesystem::create_directories(server, ec);
    if (ec) return io_error("cannot create " + server.string() + ": " + ec.message());
    auto made = create_repository(real_file_system(), tuf, (server / "root-keys").string(), {},
                                  clock_.now());
    if (!made.ok()) return made.error();
    auto opened = UpdateRepository::open(real_file_system(), tuf, clock_);
    if (!opened.ok()) return opened.error();
    repository_ = std::move(*opened);
    initial_root_ = tuf + "/metadata/1.root.json";
    engine_options.offerable = [r = repository_.get()](const Artifact& a) {
      return r->is_signed(a);
    };
    schedule_refresh();
  }
  engine_ = std::make_unique<RolloutEngine>(*store_, clock_, engine_options);
  engine_->set_listener(listener_);
  DROVER_TRY(engine_->load());
  service_ = std::make_unique<DeviceService>(*store_, *engine_);
  if (serves) {
    auto server = start_loopback_server(*store_, *engine_, *service_, clock_, options_.server_dir,
                                        options_.enrollment_token, repository_.get());
    if (!server.ok()) return server.error();
    server_ = std::move(*server);
    for (const Artifact& a : artifacts) {
      auto uploaded = server_->artifacts().upload(a, options_.content(a));
      if (!uploaded.ok()) return uploaded.error();
    }
  }
  return service_->provision(std::move(fleet));
}

AgentAccess LocalControlPlane::agent_access() const {
  if (!server_) return {};
  return {loopback_url(*server_), options_.enrollment_token, "", initial_root_};
}

void LocalControlPlane::schedule_refresh() {
  refresh_timer_ = clock_.schedule_after(hours(1), [this] {
    if (Status st = repository_->refresh(); !st.ok() && listener_) {
      EngineEvent e;
      e.kind = EngineEvent::Kind::kTickFailed;
      e.at = clock_.now();
      e.text = "signing update metadata failed: " + st.error().to_string();
      listener_(e);
    }
    schedule_refresh();
  });
}

Result<std::string> LocalControlPlane::start_rollout(const RolloutPlan& plan) {
  auto created = engine_->create(plan);
  if (!created.ok()) return created.error();
  DROVER_TRY(engine_->start(created->id));
  return created->id;
}

Result<RolloutSummary> LocalControlPlane::summary(const std::string& rollout_id) {
  return engine_->summary(rollout_id);
}

Result<RolloutProgress> LocalControlPlane::progress(const std::string& rollout_id) {
  return engine_->progress(rollout_id);
}

Result<std::vector<StageInsight>> LocalControlPlane::stage_insights(const std::string& rollout_id) {
  return engine_->stage_insights(rollout_id);
}

std::optional<Result<std::vector<Deployment>>> LocalControlPlane::deployments(
    const std::string& rollout_id) {
  return store_->list_deployments(rollout_id);
}

Result<std::vector<DeploymentStep>> LocalControlPlane::history(const std::string& rollout_id,
                                                               const std::string& device_id) {
  return store_->list_deployment_steps(rollout_id, device_id);
}

}  // namespace drover::sim
