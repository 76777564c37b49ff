// A rollout's prediction on the live fleet: what the server hands the digital twin (the
// fleet as its records stand, and what it assumes where records say nothing) and the
// function that runs it. The twin's side is sim/live_fleet.h; the route, POST
// /api/v1/rollouts/predict, is the operator API's (operator_api.h), given the function by
// the program that links the twin (drover serve).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "base/clock.h"
#include "base/result.h"
#include "fleet/device_service.h"
#include "model/artifact.h"
#include "model/device.h"
#include "model/rollout.h"
#include "model/site.h"

namespace drover {

// The server's records as they stand: devices with their check-in times (parallel), sites
// and artifacts.
struct LiveFleet {
  Timestamp now{};
  std::vector<Device> devices;
  std::vector<CheckInTimes> check_ins;
  std::vector<Site> sites;
  std::vector<Artifact> artifacts;
  size_t excluded = 0;  // records left out: pending, rejected or decommissioned devices
};

// The most devices a prediction runs: the twin keeps every deployment's history up to this
// many, and a larger fleet's prediction would hold a worker thread for minutes and
// gigabytes (`drover rollout plan` runs any size on a scenario).
inline constexpr size_t kMaxPredictedDevices = 200'000;

// What the twin takes for what the records do not say.
struct PredictionAssumptions {
  Duration poll_interval = minutes(30);  // the server's (drover serve --poll-interval)
  Duration engine_tick = seconds(60);    // the server's (--tick-interval)
  Duration horizon = days(14);           // the prediction looks this far ahead at most
  Duration install_time = minutes(2);
  Duration reboot_time = seconds(90);
  uint64_t bandwidth_bps = 10'000'000;
};

// Runs the prediction of a plan: the answer's JSON text, or an error. The poll interval and
// engine tick are the server's own, filled in by whoever makes the function.
using RolloutPredictor = std::function<Result<std::string>(const RolloutPlan& plan, LiveFleet fleet,
                                                           const PredictionAssumptions& assume)>;

}  // namespace drover
