// A control plane elsewhere (`drover sim --network --server URL`): what the simulator asks of
// a running `drover serve`, through its operator API (docs/api/operator.md) with an operator
// token — sites, artifacts and devices set up, the rollout created and started, its progress
// read back in the engine's own terms.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "model/artifact.h"
#include "model/device.h"
#include "model/rollout.h"
#include "model/site.h"
#include "rollout/engine.h"
#include "sim/control_plane.h"

namespace drover::http {
class HttpClient;
}

namespace drover::sim {

struct RemotePlaneOptions {
  std::string server;             // the base URL
  std::string token;              // an operator API token
  std::string enrollment_token;   // the server's, for the agents
  std::string ca_file;            // to trust for https ("" for the system's)
  std::string initial_root;       // the agents' first trusted root ("": unsigned offers)
  Clock* server_clock = nullptr;  // the server's clock, which the run keeps pace with
  std::function<std::string(const Artifact&)> content;  // what an artifact carries
};

class RemoteControlPlane final : public ControlPlane {
 public:
  // kInvalidArgument for a bad URL or TLS file, or no token; nothing is sent yet. `say`
  // narrates what the server's record shows changing.
  static Result<std::unique_ptr<RemoteControlPlane>> create(RemotePlaneOptions options,
                                                            LineSink say);
  ~RemoteControlPlane() override;

  // Checks that the server does not know the fleet's first device (a fleet from an earlier
  // run: kAlreadyExists), then puts the sites, uploads the artifacts and registers the devices
  // (type, revision, site, connectivity, tags, quiet hours).
  Status set_up(const std::vector<Site>& sites, const std::vector<Artifact>& artifacts,
                std::vector<Device> fleet) override;
  AgentAccess agent_access() const override;
  DeviceService* devices() override { return nullptr; }
  Result<std::string> start_rollout(const RolloutPlan& plan) override;
  // Summed up from progress(), as the engine's summary() would.
  Result<RolloutSummary> summary(const std::string& rollout_id) override;
  // The rollout's record and progress, as the engine reports them; narrates what changed
  // since the last read (the final read included). A read that fails after one succeeded
  // answers what was last read (stale() says why).
  Result<RolloutProgress> progress(const std::string& rollout_id) override;
  std::optional<std::string> stale() const override { return stale_; }
  Result<std::vector<StageInsight>> stage_insights(const std::string& rollout_id) override;
  std::optional<Result<std::vector<Deployment>>> deployments(const std::string&) override {
    return std::nullopt;
  }
  bool history_kept() const override { return false; }
  Result<std::vector<DeploymentStep>> history(const std::string& rollout_id,
                                              const std::string& device_id) override;
  // Real time: a look every two seconds, the drain checked at each; an answer may take a
  // while over a real network; the fleet keeps the pace of the server's clock.
  Timestamp now() const override { return options_.server_clock->now(); }
  Duration watch_every() const override { return seconds(2); }
  int watches_per_drain_check() const override { return 1; }
  Duration answer_timeout() const override { return seconds(30); }
  void keep_pace(Timestamp t) override;

 private:
  RemoteControlPlane(std::unique_ptr<http::HttpClient> client, RemotePlaneOptions options,
                     LineSink say);
  // The request, with the token; the answer's body when its status is `expect` (or `also`),
  // otherwise an error carrying the server's message.
  Result<std::string> call(std::string_view method, const std::string& target,
                           std::string_view body, int expect, int also = 0,
                           std::string_view content_type = "application/json");
  // kOk when the server does not know the device; kAlreadyExists when it does.
  Status check_absent(std::string_view device_id);
  Status put_site(const Site& site);
  // The artifact with `content`; the server computes size and sha256.
  Result<Artifact> upload(const Artifact& meta, std::string_view content);
  Status register_device(const Device& device);
  Result<RolloutProgress> read_progress(const std::string& rollout_id);
  void narrate(const RolloutProgress& now);

  std::unique_ptr<http::HttpClient> client_;
  RemotePlaneOptions options_;
  LineSink say_;
  std::optional<RolloutProgress> seen_;  // the rollout as last read
  std::optional<std::string> stale_;     // why the last progress() answered seen_
};

// What check_done needs: the progress summed up as the engine's summary() would.
RolloutSummary summarize(const RolloutProgress& p);

}  // namespace drover::sim
