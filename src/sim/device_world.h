// The physical world around each device, as the twin models it: what a device's agent (or
// the twin's own device model) cannot decide but lives with — its link, its bandwidth, how
// long an install and a reboot take, which hardware fails. FleetWorld (fleet_world.h)
// implements it.
#pragma once

#include <cstdint>
#include <string>

#include "base/clock.h"
#include "sim/scenario.h"

namespace drover::sim {

class DeviceWorld {
 public:
  virtual ~DeviceWorld() = default;
  virtual bool online(uint32_t dev, Timestamp t) = 0;
  // When the link, up at `t`, goes down; Timestamp::max() when it never does.
  virtual Timestamp online_until(uint32_t dev, Timestamp t) = 0;
  // When the link is next up at or after `t` (t when it is up then); max() if never.
  virtual Timestamp link_up_at(uint32_t dev, Timestamp t) = 0;
  virtual uint64_t bandwidth_bps(uint32_t dev) = 0;
  // The size the scenario gives the artifact (the bytes on the wire may be fewer).
  virtual uint64_t declared_size(const std::string& component, const std::string& version) = 0;
  virtual bool defective(uint32_t dev, const std::string& version, bool revert,
                         DefectKind kind) = 0;
  // When the device polls again after a check-in (its link class, jittered).
  virtual Duration next_poll(uint32_t dev) = 0;
  // Whether the device keeps its previous image (the scenario's keeps_previous share).
  virtual bool keeps_previous(uint32_t dev) = 0;
  virtual Duration install_time() = 0;
  virtual Duration reboot_time() = 0;
};

}  // namespace drover::sim
