// Target set and stratified cohorts of a rollout.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "model/artifact.h"
#include "model/device.h"
#include "model/rollout.h"

namespace drover {

// The stratum a device falls in: its values of the plan's stratify_by dimensions joined by
// '|', e.g. "rev-b|bldg-017|lte"; "all" when the plan does not stratify.
std::string stratum_key(const RolloutPlan& plan, const Device& d);

struct ExcludedDevice {
  std::string device_id;
  std::string reason;
};

struct TargetSet {
  std::vector<Deployment> deployments;   // kPending, ordered by device id
  std::vector<uint32_t> stage_sizes;     // new devices each stage adds
  std::vector<ExcludedDevice> excluded;  // matched the filter but will not be offered
  uint32_t already_current = 0;          // matched and already run this version or newer
};

// Chooses the devices of a rollout and assigns each to a stage.
//
// A device is a target when it is not decommissioned, is accepted into the fleet (not
// pending or rejected: those are listed as excluded), matches the plan's filter, is
// compatible with the artifact (type, revision, depends) and runs an older version of the
// component (or none). Within each stratum devices are ordered by a hash of (rollout id,
// device id) — reproducible, and unrelated to names or sites — and stage k takes the first
// ceil(n * share_k) of them, where share_k is the stage percent (or count / targets). The
// first stage takes at least min(plan.min_per_stratum, n) from every stratum, so even a 1%
// canary samples every stratum.
TargetSet plan_targets(const RolloutPlan& plan, const Artifact& artifact,
                       const std::vector<Device>& devices, std::string_view rollout_id);

}  // namespace drover
