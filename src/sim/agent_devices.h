// The device side of a network run (`drover sim --network`): each device is a real agent
// (NetworkFleet) talking HTTP to the control plane; the twin only plays its world — when it
// steps, what its link and hardware do — and follows where each agent stands, so the run's
// tallies and report read the same as with the in-process model.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "sim/device_side.h"
#include "sim/fleet_world.h"
#include "sim/narrator.h"
#include "sim/network_fleet.h"

namespace drover::sim {

class AgentDevices final : public DeviceSide {
 public:
  // One agent per device of `fleet` (the records the control plane was given, in the
  // world's order), each with its state under options.dir.
  AgentDevices(NetworkFleetOptions options, const std::vector<Device>& fleet, FleetWorld& world,
               ManualClock& clock, Narrator& narrator, RunState& run);

  void handle(const Event& e) override;
  uint64_t checkins() const override { return fleet_->checkins(); }
  uint64_t reports() const override { return fleet_->reports(); }
  uint64_t downloads_cut() const override { return fleet_->downloads_cut(); }
  bool went_unhealthy(uint32_t dev) const override { return !unhealthy_[dev].first.empty(); }

 private:
  void step(uint32_t dev);
  void report_unhealthy(uint32_t dev);

  FleetWorld& world_;
  ManualClock& clock_;
  Narrator& narrator_;
  RunState& run_;
  std::unique_ptr<NetworkFleet> fleet_;
  // Per device: the (rollout, version) its fails_after defect struck after the commit.
  std::vector<std::pair<std::string, std::string>> unhealthy_;
};

}  // namespace drover::sim
