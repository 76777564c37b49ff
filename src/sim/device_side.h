// The device side of a run: how the fleet's devices act on their events. Two
// implementations, chosen once when a run is set up:
//  - DeviceModel (device_model.h): the twin's own model of a device in this process, which
//    calls the control plane's DeviceService directly;
//  - AgentDevices (agent_devices.h): each device a real agent talking HTTP to the server.
// Both act in the same FleetWorld and tell the same tallies, so the run, its narration and
// its report do not depend on which it is.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "base/clock.h"
#include "sim/event_queue.h"
#include "sim/report.h"

namespace drover::sim {

// What the run and its device side share: the rollout as the devices know it, and what they
// tally for the report.
struct RunState {
  std::string rollout_id;  // empty until the rollout starts
  Timestamp rollout_started{};
  bool draining = false;  // the fleet is done: devices only deliver the news they hold
  WindowReport windows;
  uint32_t self_rollbacks = 0;  // failed their trial boot and fell back by themselves
  uint32_t reverts = 0;         // sent back by the fleet rollback
  uint32_t agent_failures = 0;  // agents that could not start
  uint32_t withdrawn = 0;       // held images given up before installing
};

class DeviceSide {
 public:
  virtual ~DeviceSide() = default;
  // One of a device's events (any EventKind but kLost, which the run handles); the device is
  // not dark.
  virtual void handle(const Event& e) = 0;
  // The next events, handed out once before they run: fetch what they will touch.
  virtual void warm(std::span<const Event> events) { (void)events; }
  virtual uint64_t checkins() const = 0;
  virtual uint64_t reports() const = 0;
  // Downloads cut by a link going down (each resumed later); 0 where not counted.
  virtual uint64_t downloads_cut() const { return 0; }
  // Whether a fails_after defect struck the device after one of its commits, by the side's
  // own record (the report uses it where the control plane does not show deployments).
  virtual bool went_unhealthy(uint32_t dev) const {
    (void)dev;
    return false;
  }
};

}  // namespace drover::sim
