// The twin's own device: a model of what the real agent does, in this process, calling the
// control plane's DeviceService directly (no HTTP, no files) — fast enough for a million
// devices. It polls per its link, downloads (paused while the link is down, resumed where
// it stopped), holds a verified image until a window fits its install when the offer came
// with windows, installs, reboots into a trial boot, and commits or falls back per the
// scenario's defects, reporting each step as the agent does. Its timed phases are a table
// (kPhaseRules in device_model.cc); the rest is its conversation with the server.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "fleet/device_service.h"
#include "protocol/device.h"
#include "sim/device_side.h"
#include "sim/fleet_world.h"
#include "sim/narrator.h"

namespace drover::sim {

class DeviceModel final : public DeviceSide {
 public:
  DeviceModel(FleetWorld& world, DeviceService& service, ManualClock& clock, Narrator& narrator,
              RunState& run);

  void handle(const Event& e) override;
  void warm(std::span<const Event> events) override;
  uint64_t checkins() const override { return checkins_; }
  uint64_t reports() const override { return reports_; }

 private:
  void check_in(uint32_t dev);
  void next_check_in(uint32_t dev);
  // Offline: the device does `then` when its link is next up; whether it waits.
  bool waits_for_link(uint32_t dev, EventKind then);
  void start_offer(uint32_t dev, const UpdateOffer& offer);
  // Holding a verified image: asks the server whether and when to install it.
  void hold_check_in(uint32_t dev);
  void continue_download(uint32_t dev);
  // The device enters a timed phase (kPhaseRules).
  void enter(uint32_t dev, Phase phase);
  // The current timed phase is over.
  void phase_done(uint32_t dev);
  // The update is over: back to idle, with `report`.
  void settle(uint32_t dev, protocol::Report report);
  void commit(uint32_t dev);
  void deliver(uint32_t dev, protocol::Report event, int32_t offer);
  // Sends the report held while offline; false when the server could not take it.
  bool flush_report(uint32_t dev);

  FleetWorld& world_;
  const Scenario& sc_;
  DeviceService& service_;
  ManualClock& clock_;
  Narrator& narrator_;
  RunState& run_;
  std::vector<UpdateOffer> offers_;  // each distinct offer once; devices hold an index
  std::map<std::string, int32_t> offer_index_;
  uint64_t checkins_ = 0;
  uint64_t reports_ = 0;
};

}  // namespace drover::sim
