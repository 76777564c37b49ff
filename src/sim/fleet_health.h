// The twin's health data for a rollout's health gates (rollout/health_gate.h): what the
// telemetry store would answer about each device's battery, from a model of it. Each device
// drains at its own rate (lognormal around 2% a day), scaled by what the week's weather does
// to every device alike; each window's measure carries noise half the device's rate. A
// drains_battery defect multiplies the rate from the moment a device commits the version it
// strikes. Answers `battery_level_percent` measured as a slope (percent per day) and nothing
// else; a dark device sends nothing.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "rollout/health_gate.h"
#include "sim/device_side.h"
#include "sim/fleet_world.h"

namespace drover::sim {

class FleetHealth final : public HealthSource {
 public:
  FleetHealth(const FleetWorld& world, const RunState& run, uint64_t seed)
      : world_(world), run_(run), seed_(seed) {}

  Result<std::optional<double>> measure(std::string_view device_id, const HealthMetric& metric,
                                        Timestamp from, Timestamp to) override;

  // The device's own drain, in percent a day, before any defect and weather.
  double base_drain(uint32_t dev) const;

 private:
  const FleetWorld& world_;
  const RunState& run_;
  uint64_t seed_;
};

}  // namespace drover::sim
