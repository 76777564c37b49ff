// LocalControlPlane: the control plane in this process, on the twin's clock (control_plane.h).
// The real store (in memory, or SQLite for a run that keeps its records), rollout engine and
// device service; with a server directory, also the real server stack on loopback, which the
// artifacts are uploaded through and the agents of a network run log in to.
#pragma once

#include <memory>
#include <string>

#include "fleet/update_repository.h"
#include "rollout/health_gate.h"
#include "sim/control_plane.h"
#include "store/store.h"
#include "transport/http/stack.h"

namespace drover::sim {

struct LocalPlaneOptions {
  std::string store = "memory";  // or "sqlite:PATH" (a new file)
  Duration engine_tick = seconds(60);
  bool history = true;  // deployments keep their history (EngineOptions::history)
  // A network run: the server's artifact directory and the agents' enrollment token; the
  // artifacts carry content(a) over the wire. Empty: no server, artifacts as records only.
  std::string server_dir;
  std::string enrollment_token;
  std::function<std::string(const Artifact&)> content;
  // Health data for the rollout's health gates (EngineOptions::health); outlives the plane.
  HealthSource* health = nullptr;
};

class LocalControlPlane final : public ControlPlane {
 public:
  // Opens the store. kInvalidArgument for an unknown store or an existing SQLite file.
  // `listener` hears the engine's events (in a network run possibly on the server's threads).
  static Result<std::unique_ptr<LocalControlPlane>> create(
      Clock& clock, LocalPlaneOptions options, std::function<void(const EngineEvent&)> listener);
  ~LocalControlPlane() override;

  Status set_up(const std::vector<Site>& sites, const std::vector<Artifact>& artifacts,
                std::vector<Device> fleet) override;
  AgentAccess agent_access() const override;
  DeviceService* devices() override { return service_.get(); }
  Store& store() { return *store_; }
  Result<std::string> start_rollout(const RolloutPlan& plan) override;
  Result<RolloutSummary> summary(const std::string& rollout_id) override;
  Result<RolloutProgress> progress(const std::string& rollout_id) override;
  Result<std::vector<StageInsight>> stage_insights(const std::string& rollout_id) override;
  std::optional<Result<std::vector<Deployment>>> deployments(
      const std::string& rollout_id) override;
  bool history_kept() const override { return options_.history; }
  Result<std::vector<DeploymentStep>> history(const std::string& rollout_id,
                                              const std::string& device_id) override;
  // Simulated time: a look every simulated minute, the drain checked every ten; answers on
  // loopback in this process never take long, and a timeout would let the clock move while
  // a request is still being served.
  Timestamp now() const override { return clock_.now(); }
  Duration watch_every() const override { return minutes(1); }
  int watches_per_drain_check() const override { return 10; }
  Duration answer_timeout() const override { return minutes(10); }
  void keep_pace(Timestamp) override {}

 private:
  LocalControlPlane(Clock& clock, LocalPlaneOptions options,
                    std::function<void(const EngineEvent&)> listener, std::unique_ptr<Store> store);

  Clock& clock_;
  LocalPlaneOptions options_;
  std::function<void(const EngineEvent&)> listener_;
  void schedule_refresh();
  Clock::TimerId refresh_timer_{};
  std::unique_ptr<Store> store_;
  std::unique_ptr<RolloutEngine> engine_;
  std::unique_ptr<DeviceService> service_;
  // Signed update metadata, when the plane serves agents: every uploaded artifact signed,
  // refreshed hourly on the twin's clock as drover serve's timer does.
  std::unique_ptr<UpdateRepository> repository_;
  std::string initial_root_;
  std::unique_ptr<http::ServerStack> server_;  // declared last: stopped before the rest
};

}  // namespace drover::sim
