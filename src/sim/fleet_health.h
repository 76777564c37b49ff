// The twin's health data for a rollout's health gates (rollout/health_gate.h): what the
// telemetry store would answer about each device, from a model of it (docs/gates.md, "On the
// twin"). Each device has its own rates, drawn once from its seed; each window's answer
// carries its own noise; a defect of the version a device committed changes its rate from
// the commit on, in proportion to the share of the window it ran that version:
//   battery_level_percent, slope: drains at a lognormal rate around 2% a day, scaled by what
//     the week's weather does to every device alike; window noise half the rate;
//     drains_battery multiplies the rate.
//   memory_available_bytes, slope: a trend of its own (caches grow, some shrink) with a
//     spread of 1 MiB a day, window noise 4 MiB a day; leaks_memory takes its bytes_per_day.
//   reboots_total, increase: Poisson, lognormal rate around 0.1 a day; reboots multiplies it.
//   crashes_total, increase: Poisson, lognormal rate around 0.3 a day; crashes multiplies it.
//   any metric, anomalies: the generic detector's false alarms, Poisson with a lognormal rate
//     around 0.37 a day (its median on the real series, docs/health.md), in alarms a day;
//     glitches multiplies it.
// Anything else, and a dark device, has no data.
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
  // The defect of `kind` the device's committed version has (nullptr: none), and the share
  // of [from, to) it ran that version.
  const DefectSpec* strike(uint32_t dev, DefectKind kind, Timestamp from, Timestamp to,
                           double& share) const;
  double battery(uint32_t dev, Timestamp from, Timestamp to) const;
  double memory(uint32_t dev, Timestamp from, Timestamp to) const;
  double count(uint32_t dev, uint64_t salt, double rate, double spread, DefectKind kind,
               Timestamp from, Timestamp to) const;

  const FleetWorld& world_;
  const RunState& run_;
  uint64_t seed_;
};

}  // namespace drover::sim
