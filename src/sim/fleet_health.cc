#include "sim/fleet_health.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numbers>

#include "base/random.h"

namespace drover::sim {
namespace {

constexpr std::string_view kBattery = "battery_level_percent";
constexpr double kTypicalDrain = 2.0;  // percent a day
constexpr double kDrainSpread = 0.3;   // sd of its logarithm across devices
constexpr double kWindowNoise = 0.5;   // sd of a window's measure, relative to the rate
constexpr double kWeather = 0.4;       // the week's swing, relative to the rate
constexpr double kWeek = 7 * 86400.0;  // seconds

double unit(uint64_t h) { return static_cast<double>((h >> 11) + 1) * 0x1.0p-53; }  // (0, 1]

// A standard normal draw from two hashes (Box-Muller).
double normal(uint64_t a, uint64_t b) {
  return std::sqrt(-2 * std::log(unit(a))) * std::cos(2 * std::numbers::pi * unit(b));
}

double seconds_of(Timestamp t) {
  return std::chrono::duration<double>(t.time_since_epoch()).count();
}

}  // namespace

double FleetHealth::base_drain(uint32_t dev) const {
  const uint64_t h = mix64(seed_ ^ (uint64_t{dev} + 1) * 0x9e3779b97f4a7c15ULL);
  return kTypicalDrain * std::exp(kDrainSpread * normal(h, mix64(h)));
}

Result<std::optional<double>> FleetHealth::measure(std::string_view device_id,
                                                   const HealthMetric& metric, Timestamp from,
                                                   Timestamp to) {
  if (metric.metric != kBattery || metric.measure != HealthMeasure::kSlope || to <= from)
    return std::optional<double>{};
  const std::optional<uint32_t> dev = world_.index_of(device_id);
  if (!dev || world_.device(*dev).dark) return std::optional<double>{};
  const SimDevice& d = world_.device(*dev);
  // The share of the window the device ran a version that drains it faster.
  double factor = 1;
  double share = 0;
  if (d.committed_at_ms >= 0) {
    UpdateOffer offer;
    offer.version = world_.scenario().rollout.artifact_version;
    if (const DefectSpec* spec = world_.defect_spec(*dev, offer, DefectKind::kDrainsBattery)) {
      factor = spec->factor;
      const Timestamp committed =
          run_.rollout_started + std::chrono::milliseconds(d.committed_at_ms);
      const double span = seconds_of(to) - seconds_of(from);
      share = std::clamp((seconds_of(to) - seconds_of(std::max(committed, from))) / span, 0.0, 1.0);
    }
  }
  const double base = base_drain(*dev);
  const double middle = (seconds_of(from) + seconds_of(to)) / 2;
  const double weather = 1 + kWeather * std::sin(2 * std::numbers::pi * middle / kWeek);
  const uint64_t h = mix64(seed_ ^ mix64(uint64_t{*dev} + 1) ^
                           static_cast<uint64_t>(seconds_of(from)) * 0xa0761d6478bd642fULL);
  const double noise = kWindowNoise * base * normal(h, mix64(h ^ 0x5bd1e995));
  return std::optional<double>(-(base * (1 + (factor - 1) * share) * weather + noise));
}

}  // namespace drover::sim
