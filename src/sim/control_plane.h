// The control plane a simulation runs against, as the simulator sees it. Two implementations:
//  - LocalControlPlane (local_plane.h): the real store, rollout engine and device service in
//    this process, on the twin's clock: the plain twin, whose devices call the device service
//    directly; a network run puts the real server stack in front of them, on loopback, for
//    its agents.
//  - RemoteControlPlane (remote_plane.h): a `drover serve` elsewhere, through its operator API,
//    on the server's own clock.
// The simulator asks only this about the rollout, so the kinds of run differ in where the
// answers come from, not in the simulator's code.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "base/clock.h"
#include "base/result.h"
#include "fleet/device_service.h"
#include "model/artifact.h"
#include "model/device.h"
#include "model/rollout.h"
#include "model/site.h"
#include "rollout/engine.h"

namespace drover::sim {

// Where the agents of a network run log in.
struct AgentAccess {
  std::string url;  // empty: the plane serves no agents
  std::string enrollment_token;
  std::string ca_file;
  // The root the agents trust first when the plane publishes signed update metadata (they
  // then take only offers it signs); empty: off.
  std::string initial_root;
};

// What a plane says of its own accord (the remote one narrates what it reads): one line of
// the timeline, stamped by the narrator.
using LineSink = std::function<void(const std::string&)>;

class ControlPlane {
 public:
  virtual ~ControlPlane() = default;

  // The scenario's sites and artifacts and the fleet, before the run starts. Errors as the
  // plane's services answer them (kAlreadyExists: a server elsewhere has the fleet already).
  virtual Status set_up(const std::vector<Site>& sites, const std::vector<Artifact>& artifacts,
                        std::vector<Device> fleet) = 0;
  virtual AgentAccess agent_access() const = 0;
  // The device side in this process, for the simulator's own device model; nullptr when the
  // devices are agents on the other side of a wire.
  virtual DeviceService* devices() = 0;

  // Creates and starts the rollout; its id.
  virtual Result<std::string> start_rollout(const RolloutPlan& plan) = 0;
  virtual Result<RolloutSummary> summary(const std::string& rollout_id) = 0;
  virtual Result<RolloutProgress> progress(const std::string& rollout_id) = 0;
  // Why the last progress() answered an earlier read instead (the plane could not read it
  // now); std::nullopt when it was current.
  virtual std::optional<std::string> stale() const { return std::nullopt; }
  // Why each stage grew as it did; kNotFound where the plane does not tell.
  virtual Result<std::vector<StageInsight>> stage_insights(const std::string& rollout_id) = 0;
  // The rollout's deployments; std::nullopt where the plane does not show them.
  virtual std::optional<Result<std::vector<Deployment>>> deployments(
      const std::string& rollout_id) = 0;
  // Whether deployments keep their history (and history() reads it).
  virtual bool history_kept() const = 0;
  virtual Result<std::vector<DeploymentStep>> history(const std::string& rollout_id,
                                                      const std::string& device_id) = 0;

  // The pace of a run. The plane's clock, how often the simulator looks at the rollout, how
  // many looks apart (at least 1) it checks whether a draining fleet is done, how long an
  // agent waits for an answer, and a wait until the plane's clock reaches `t` (none for a
  // plane on the twin's own clock).
  virtual Timestamp now() const = 0;  // the plane's clock
  virtual Duration watch_every() const = 0;
  virtual int watches_per_drain_check() const = 0;
  virtual Duration answer_timeout() const = 0;
  virtual void keep_pace(Timestamp t) = 0;
};

}  // namespace drover::sim
