// The twin on the live fleet: `drover rollout plan`'s pre-flight, run on the fleet a server
// has now rather than on one drawn from a scenario's shares (POST /api/v1/rollouts/predict,
// the web console's new-rollout form). Every accepted device in service takes part as it
// is — its type, revision, site, connectivity class, what it runs, its quiet hours, whether
// it keeps its previous image — and checks in first when the server told it to; the sites
// keep their windows, and the server's poll interval and engine tick pace the run.
//
// What the twin cannot know is assumed and said in the answer: install and reboot times,
// link speed, no defects (a pre-flight), and no other rollout in the way.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "base/result.h"
#include "fleet/prediction.h"
#include "sim/scenario.h"

namespace drover::sim {

struct LiveScenario {
  Scenario scenario;
  uint32_t dark = 0;     // long overdue: taken as gone for the prediction
  uint32_t unknown = 0;  // not heard from since the server started: first check-in drawn
  // Pending, rejected or decommissioned (given, or left out already: LiveFleet::excluded):
  // not in the fleet a plan reaches.
  uint32_t excluded = 0;
};

// The scenario of `plan` on the fleet. A device is taken as dark when it is overdue by more
// than a poll interval past the check-in it was told to make. kInvalidArgument for more
// than kMaxPredictedDevices (fleet/prediction.h) devices in service.
Result<LiveScenario> live_scenario(const RolloutPlan& plan, LiveFleet fleet,
                                   const PredictionAssumptions& assume);

// Runs the pre-flight of `plan` on the fleet: the answer of POST /api/v1/rollouts/predict
// as JSON text (docs/api/operator.md): the assumptions, the fleet as the twin saw it, and
// the twin's report; kFailedPrecondition also when the machine has not the memory the run
// needs (estimate_memory_bytes).
Result<std::string> predict_on_live_fleet(const RolloutPlan& plan, LiveFleet fleet,
                                          const PredictionAssumptions& assume);

}  // namespace drover::sim
