// Target set and stratified cohorts of a rollout.
#pragma once

#include <functional>
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

// How a stage's size came about.
struct StageNote {
  uint32_t asked = 0;    // devices the plan asked for, cumulative (percent or count)
  uint32_t planned = 0;  // devices it holds, cumulative
  // The canary: some first-dimension group got more than its share so that its gate can
  // catch a failure rate of twice the limit (canary_minimum), at most this many per group.
  bool gate_minimum = false;
  uint32_t gate_minimum_per_group = 0;
  bool min_per_stratum = false;  // the plan's min_per_stratum raised some stratum
};

// Targets grouped by the version of the component they run now: what a fleet revert would
// send them back to.
struct PreviousVersion {
  std::string version;  // "" for targets that run no version of the component
  uint32_t devices = 0;
  uint32_t keep_image = 0;            // of those, keep the image they ran in another slot (A/B)
  std::vector<std::string> examples;  // up to kRevertExamples ids of the others
};
inline constexpr size_t kRevertExamples = 10;

// Targets a fleet revert could not send back, by the version they run: those that keep no
// previous image, when that version is not uploaded (or they run none).
struct RevertGap {
  std::string version;  // "" = they run no version of the component: nothing to go back to
  uint32_t devices = 0;
  std::vector<std::string> examples;
  std::string reason() const;  // "ran 1.4.0, which is not uploaded", ...
};
std::vector<RevertGap> revert_gaps(const std::vector<PreviousVersion>& previous,
                                   const std::function<bool(const std::string&)>& uploaded);

struct TargetSet {
  std::vector<Deployment> deployments;    // kPending, ordered by device id
  std::vector<uint32_t> stage_sizes;      // new devices each stage adds
  std::vector<StageNote> stage_notes;     // per stage: asked, planned, and why they differ
  std::vector<ExcludedDevice> excluded;   // matched the filter but will not be offered
  uint32_t already_current = 0;           // matched and already run this version or newer
  std::vector<PreviousVersion> previous;  // by version
};

// A canary must be able to stop a bad build: the fewest devices a first-level group of
// `group_size` needs in the canary so that, were its true failure rate kCanaryDetects times
// the limit, its gate (false-halt share `alpha`) would halt it once they all reported with
// probability at least kCanaryPower. At least min_sample; at most the group.
inline constexpr double kCanaryDetects = 2;
inline constexpr double kCanaryPower = 0.95;
uint32_t canary_minimum(const GatePolicy& gate, double alpha, uint32_t group_size);

// How many of each stratum (keys[j], sizes[j] devices) each stage holds, cumulative.
struct StageSizing {
  std::vector<std::vector<uint32_t>> cumulative;  // [stage][stratum]
  std::vector<StageNote> notes;
};
// A stage of N% holds about N% of each group of the first dimension (the proportional
// share, rounded up), the canary at least canary_minimum of each (min_sample for a group
// that would need more than half its devices for it), split over the group's
// strata in proportion to their sizes (fractions settled by systematic sampling, salted, so
// small strata share places instead of each taking one), never fewer of a stratum than the
// stage before, and the last stage everything.
StageSizing size_stages(const RolloutPlan& plan, const std::vector<std::string>& keys,
                        const std::vector<uint32_t>& sizes, uint64_t salt);

// Why a stage holds more than it asked for ("the gate needs 168 per hardware_revision"),
// or "" when it does not.
std::string describe_sizing(const RolloutPlan& plan, const StageNote& note);

// Chooses the devices of a rollout and assigns each to a stage.
//
// A device is a target when it is not decommissioned, is accepted into the fleet (not
// pending or rejected: those are listed as excluded), matches the plan's filter, is
// compatible with the artifact (type, revision, depends) and runs an older version of the
// component (or none). Within each stratum devices are ordered by a hash of (rollout id,
// device id) — reproducible, and unrelated to names or sites — and stage k takes the first
// of them as size_stages() apportions.
TargetSet plan_targets(const RolloutPlan& plan, const Artifact& artifact,
                       const std::vector<Device>& devices, std::string_view rollout_id);

}  // namespace drover
