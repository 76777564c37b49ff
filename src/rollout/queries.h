// RolloutQueries: what an operator reads about rollouts — the list, one rollout's
// deployments a page at a time, one device's deployment with its history — and the preview
// of a plan: what starting it now would do, computed as start() computes it, writing nothing.
// Everything here only reads: from the store and the engine's public answers, never under
// the engine's lock, so a preview of a million-device fleet does not hold up check-ins.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "model/rollout.h"
#include "rollout/engine.h"
#include "rollout/planner.h"
#include "store/store.h"

namespace drover {

// What a fleet rollback of the plan's targets could do, said before anything starts.
struct RollbackPreview {
  uint32_t switch_back = 0;     // keep their previous image in another slot (A/B)
  uint32_t download = 0;        // would download the version they ran, which is uploaded
  uint32_t not_revertible = 0;  // neither: the devices of `gaps`
  std::vector<RevertGap> gaps;
};

struct StagePreview {
  std::string name;
  uint32_t adds = 0;        // devices the stage adds
  uint32_t cumulative = 0;  // devices offered once it has run
  uint32_t asked = 0;       // devices the plan asked for, cumulative
  std::string why;          // why it holds more than it asked (describe_sizing), or ""
};

struct PlanPreview {
  size_t targets = 0;
  uint32_t already_current = 0;
  std::vector<ExcludedDevice> excluded;
  std::vector<StagePreview> stages;
  std::map<std::string, uint32_t> strata;  // devices per stratum key
  RollbackPreview rollback;
};

// How a rollout's devices got where they are, over time (GET /rollouts/{id}/timeline, the
// console's chart): at evenly spaced times from its start to its end (or now), how many had
// been offered the update, had it, had failed with it, and had been sent back by a rollback.
// Built from the deployments as stored — each one's first offer and its last change — so
// it survives a restart and a newly opened page sees the whole rollout; an outcome later
// undone (an update reverted) counts as it stands now, from when it last changed.
struct Timeline {
  struct Series {
    std::string name;  // "all", "stage:<name>" or "stratum:<key>"
    std::vector<uint32_t> offered, succeeded, failed, reverted;  // one per point of `at`
  };
  std::vector<Timestamp> at;
  std::vector<Series> series;
  std::map<std::string, uint32_t> strata;  // devices per stratum key (to pick one from)
};

struct DeploymentDetail {
  Deployment deployment;
  std::vector<DeploymentStep> history;  // oldest first
};

class RolloutQueries {
 public:
  RolloutQueries(Store& store, RolloutEngine& engine) : store_(store), engine_(engine) {}

  Result<std::vector<Rollout>> list();
  // A page of the rollout's deployments (optionally of one state) after device id `after`,
  // ordered by device id. A page costs the page, not the rollout. kNotFound: no such rollout.
  Result<Store::DeploymentPage> deployments(const std::string& rollout_id,
                                            std::optional<DeploymentState> state,
                                            std::string_view after, size_t limit);
  // kNotFound: the device is not in the rollout.
  Result<DeploymentDetail> deployment(const std::string& rollout_id, const std::string& device_id);

  // A device's deployments in every rollout that has one, newest rollout first, at most
  // `limit` of them, each with its history: the device's own update story. A point lookup
  // per rollout. An unknown device has none.
  struct DeviceDeployment {
    Rollout rollout;
    DeploymentDetail detail;
  };
  Result<std::vector<DeviceDeployment>> device_history(const std::string& device_id, size_t limit);

  // The rollout's timeline at `points` times (2..1000): the whole rollout and each of its
  // stages, or, with `stratum` given, that stratum alone. kNotFound: no such rollout or
  // stratum; kFailedPrecondition: not started.
  static constexpr size_t kMaxTimelinePoints = 1000;
  Result<Timeline> timeline(const std::string& rollout_id, const std::string& stratum,
                            size_t points, Timestamp now);

  // What starting `plan` now would do. kInvalidArgument: the plan is invalid;
  // kFailedPrecondition: its artifact is not uploaded.
  Result<PlanPreview> preview(const RolloutPlan& plan);
  // The rollback part of the preview alone (a created rollout's answer carries it).
  Result<RollbackPreview> rollback_preview(const RolloutPlan& plan);

 private:
  // The plan's targets over the fleet as it is now; the rollout id only shuffles who goes
  // first, not the stage sizes or strata.
  Result<TargetSet> targets(const RolloutPlan& plan);
  Result<RollbackPreview> rollback_of(const RolloutPlan& plan, const TargetSet& t);

  Store& store_;
  RolloutEngine& engine_;
};

}  // namespace drover
