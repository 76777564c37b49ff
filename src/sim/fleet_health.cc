#include "sim/fleet_health.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numbers>

#include "base/random.h"

namespace drover::sim {
namespace {

constexpr std::string_view kBattery = "battery_level_percent";
constexpr std::string_view kMemory = "memory_available_bytes";
constexpr std::string_view kReboots = "reboots_total";
constexpr std::string_view kCrashes = "crashes_total";
constexpr double kTypicalDrain = 2.0;  // percent a day
constexpr double kDrainSpread = 0.3;   // sd of its logarithm across devices
constexpr double kWindowNoise = 0.5;   // sd of a window's measure, relative to the rate
constexpr double kWeather = 0.4;       // the week's swing, relative to the rate
constexpr double kWeek = 7 * 86400.0;  // seconds
constexpr double kDay = 86400.0;       // seconds
constexpr double kMiB = 1024.0 * 1024.0;
constexpr double kMemoryTrend = 1 * kMiB;  // sd of a device's own trend, bytes a day
constexpr double kMemoryNoise = 4 * kMiB;  // sd of a window's slope, bytes a day

double unit(uint64_t h) { return static_cast<double>((h >> 11) + 1) * 0x1.0p-53; }  // (0, 1]

// A standard normal draw from two hashes (Box-Muller).
double normal(uint64_t a, uint64_t b) {
  return std::sqrt(-2 * std::log(unit(a))) * std::cos(2 * std::numbers::pi * unit(b));
}

// A Poisson draw with mean `mean` from one hash: the inverse of its distribution function
// for the few events a window the twin mostly draws, a normal approximation past 50 (where
// exp(-mean) would underflow far sooner than the sum could reach u).
double poisson(double mean, uint64_t h) {
  if (mean > 50) return std::max(0.0, std::round(mean + std::sqrt(mean) * normal(h, mix64(h))));
  const double u = unit(h);
  double p = std::exp(-mean);
  double cumulative = p;
  int k = 0;
  while (cumulative < u && k < 10000) {
    ++k;
    p *= mean / k;
    cumulative += p;
  }
  return k;
}

double seconds_of(Timestamp t) {
  return std::chrono::duration<double>(t.time_since_epoch()).count();
}

}  // namespace

double FleetHealth::base_drain(uint32_t dev) const {
  const uint64_t h = mix64(seed_ ^ (uint64_t{dev} + 1) * 0x9e3779b97f4a7c15ULL);
  return kTypicalDrain * std::exp(kDrainSpread * normal(h, mix64(h)));
}

const DefectSpec* FleetHealth::strike(uint32_t dev, DefectKind kind, Timestamp from, Timestamp to,
                                      double& share) const {
  share = 0;
  const SimDevice& d = world_.device(dev);
  if (d.committed_at_ms < 0) return nullptr;
  UpdateOffer offer;
  offer.version = world_.scenario().rollout.artifact_version;
  const DefectSpec* spec = world_.defect_spec(dev, offer, kind);
  if (spec == nullptr) return nullptr;
  const Timestamp committed = run_.rollout_started + std::chrono::milliseconds(d.committed_at_ms);
  const double span = seconds_of(to) - seconds_of(from);
  share = std::clamp((seconds_of(to) - seconds_of(std::max(committed, from))) / span, 0.0, 1.0);
  return spec;
}

double FleetHealth::battery(uint32_t dev, Timestamp from, Timestamp to) const {
  double share = 0;
  const DefectSpec* spec = strike(dev, DefectKind::kDrainsBattery, from, to, share);
  const double factor = spec != nullptr ? spec->factor : 1;
  const double base = base_drain(dev);
  const double middle = (seconds_of(from) + seconds_of(to)) / 2;
  const double weather = 1 + kWeather * std::sin(2 * std::numbers::pi * middle / kWeek);
  const uint64_t h = mix64(seed_ ^ mix64(uint64_t{dev} + 1) ^
                           static_cast<uint64_t>(seconds_of(from)) * 0xa0761d6478bd642fULL);
  const double noise = kWindowNoise * base * normal(h, mix64(h ^ 0x5bd1e995));
  return -(base * (1 + (factor - 1) * share) * weather + noise);
}

double FleetHealth::memory(uint32_t dev, Timestamp from, Timestamp to) const {
  double share = 0;
  const DefectSpec* spec = strike(dev, DefectKind::kLeaksMemory, from, to, share);
  const double leak = spec != nullptr ? spec->bytes_per_day * share : 0;
  const uint64_t d = mix64(seed_ ^ (uint64_t{dev} + 1) * 0xe7037ed1a0b428dbULL);
  const double trend = kMemoryTrend * normal(d, mix64(d));
  const uint64_t w = mix64(d ^ static_cast<uint64_t>(seconds_of(from)) * 0xa0761d6478bd642fULL);
  return trend - leak + kMemoryNoise * normal(w, mix64(w ^ 0x5bd1e995));
}

double FleetHealth::count(uint32_t dev, uint64_t salt, double rate, double spread, DefectKind kind,
                          Timestamp from, Timestamp to) const {
  double share = 0;
  const DefectSpec* spec = strike(dev, kind, from, to, share);
  const double factor = spec != nullptr ? spec->factor : 1;
  const uint64_t d = mix64(seed_ ^ salt ^ (uint64_t{dev} + 1) * 0x8ebc6af09c88c6e3ULL);
  const double own = rate * std::exp(spread * normal(d, mix64(d)));
  const double days = (seconds_of(to) - seconds_of(from)) / kDay;
  const uint64_t w = mix64(d ^ static_cast<uint64_t>(seconds_of(from)) * 0xa0761d6478bd642fULL);
  return poisson(own * days * (1 + (factor - 1) * share), w);
}

Result<std::optional<double>> FleetHealth::measure(std::string_view device_id,
                                                   const HealthMetric& metric, Timestamp from,
                                                   Timestamp to) {
  if (to <= from) return std::optional<double>{};
  const std::optional<uint32_t> dev = world_.index_of(device_id);
  if (!dev || world_.device(*dev).dark) return std::optional<double>{};
  const std::string_view name = metric.metric;
  switch (metric.measure) {
    case HealthMeasure::kSlope:
      if (name == kBattery) return std::optional<double>(battery(*dev, from, to));
      if (name == kMemory) return std::optional<double>(memory(*dev, from, to));
      break;
    case HealthMeasure::kIncrease:
      if (name == kReboots)
        return std::optional<double>(count(*dev, 1, 0.1, 0.5, DefectKind::kReboots, from, to));
      if (name == kCrashes)
        return std::optional<double>(count(*dev, 2, 0.3, 0.7, DefectKind::kCrashes, from, to));
      break;
    case HealthMeasure::kAnomalies: {
      const double days = (seconds_of(to) - seconds_of(from)) / kDay;
      const double alarms =
          count(*dev, stable_hash(name), 0.37, 0.5, DefectKind::kGlitches, from, to);
      return std::optional<double>(alarms / days);
    }
    case HealthMeasure::kMean:
      break;
  }
  return std::optional<double>{};
}

}  // namespace drover::sim
