// The twin's report at the end of a run: the rollout's outcome as the control plane tells
// it, with what only the twin knows (which devices bricked, went dark or gave up, when each
// committed, what the windows held back) and, for a pre-flight, which devices were never
// reached and why.
#pragma once

#include <cstdint>

#include "sim/control_plane.h"
#include "sim/device_side.h"
#include "sim/fleet_world.h"
#include "sim/narrator.h"
#include "sim/report.h"

namespace drover::sim {

struct ReportSources {
  uint64_t seed = 0;
  bool preflight = false;
  FleetWorld& world;
  const DeviceSide& devices;
  const RunState& run;
  ControlPlane& plane;
  Narrator& narrator;  // tells when the rollout's final status could not be read
};

// The report as of `now` (where the run stopped); `wall_seconds`: what the run took.
Report build_report(const ReportSources& from, Timestamp now, double wall_seconds);

}  // namespace drover::sim
