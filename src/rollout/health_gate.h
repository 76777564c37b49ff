// The statistic of health gates (docs/gates.md, "Health gates"): whether the devices that took
// an update are less healthy than devices of the same stratum that have not taken it yet, on
// one metric — battery drain, reboots, crashes, memory growth, anomalies — and by how much.
//
// The comparison is paired: each updated device is matched with a not-yet-updated device of
// its stratum, and each pair is two numbers measured over the same calendar windows (each
// device's change on the metric from the window before the update was offered to the window
// after it committed: what differs between devices, and what the weather or the season does
// to all of them, cancels out). A pair is judged once, when both its windows are complete,
// and never again: that fixes the order in which the evidence arrives.
//
// The guarantee rests on two things the caller must make true: within a pair, which device
// took the update is as good as random (the rollout's order within a stratum must not follow
// anything that changes the metric's trend), and pairs are independent (each device in at
// most one pair, a partner never updated within its pair's windows).
//
// The test is a sign test, run sequentially. If the update changes nothing, the updated
// device of a pair is the worse of the two with probability 1/2 (the two are exchangeable);
// ties tell nothing and are left out. The mixture sequential probability ratio test of
// gates.h (rate 1/2 against 0.6, 0.7, 0.8, 0.9 and 0.95) then keeps the guarantee of the
// failure gates: looked at after every pair, forever, its evidence reaches ln(1/alpha) with
// probability at most alpha when nothing changed — whatever the metric's distribution
// (skewed, heavy-tailed, counts with many ties).
//
// Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <string_view>

#include "base/result.h"
#include "model/rollout.h"

namespace drover {

struct HealthEffect {
  int64_t pairs = 0;  // judged (values not NaN)
  int64_t worse = 0;  // of them, those in which the updated device was the worse
  int64_t ties = 0;   // equal values: left out of the test
  // ln of the mixture likelihood ratio of "the updated device is the worse more often than
  // not" against "as often as not"; at least 0 is not guaranteed (evidence for no change is
  // negative).
  double log_evidence = 0;
  // The median of the paired differences (updated - control; NaN without pairs) and a
  // distribution-free 95% interval for it, as for a fixed number of pairs (the order
  // statistics a fixed-sample sign test at 5% does not reject; NaN with fewer than 6 pairs).
  // Descriptive: the gate stops when its sequential test crosses, and at that moment this
  // interval's coverage is not guaranteed. For a count that is mostly zero the median
  // difference is 0 even when the rate doubled: `worse` of the untied pairs says more.
  double shift = std::numeric_limits<double>::quiet_NaN();
  double shift_low = std::numeric_limits<double>::quiet_NaN();
  double shift_high = std::numeric_limits<double>::quiet_NaN();
  // The medians of each side, for the report.
  double updated_median = std::numeric_limits<double>::quiet_NaN();
  double control_median = std::numeric_limits<double>::quiet_NaN();
};

// The sign test's count over pairs: the untied ones, and of them those in which the updated
// device was the worse; pairs with a side that is not finite are left out.
struct HealthTally {
  int64_t worse = 0;
  int64_t informative = 0;  // untied
  int64_t ties = 0;
  void add(const HealthPair& p, HealthDirection direction, int64_t sign = 1);
  HealthTally& operator+=(const HealthTally& o) {
    worse += o.worse;
    informative += o.informative;
    ties += o.ties;
    return *this;
  }
  HealthTally operator-(const HealthTally& o) const {
    return {worse - o.worse, informative - o.informative, ties - o.ties};
  }
};

// Where a rollout's health gates get their numbers: one device's value of a health metric
// over a window, measured as the metric says (HealthMeasure) — from the telemetry store in
// drover serve, from the device models in the twin. Called by the thread that ticks the
// engine, without the engine's lock (check-ins go on meanwhile, and it may call the engine);
// two threads that tick at once call it at once.
class HealthSource {
 public:
  virtual ~HealthSource() = default;
  // The device's `metric` over [from, to); std::nullopt when it has too little data there
  // (no sample for a mean, fewer than two for a slope or an increase). An error (the data
  // could not be read) leaves the device for a later pass.
  virtual Result<std::optional<double>> measure(std::string_view device_id,
                                                const HealthMetric& metric, Timestamp from,
                                                Timestamp to) = 0;
};

// A pair is formed this long after the updated device's window after its commit has passed,
// so that telemetry a device sends late (its link was down) is in.
inline constexpr Duration kHealthLateTelemetry = hours(1);
// How often the engine looks for devices whose window has passed; a pass pairs at most
// kHealthPairsPerPass devices (its answers are held in memory until the pairs are formed),
// and one that stopped there goes on at the next tick.
inline constexpr Duration kHealthScan = minutes(15);
inline constexpr uint32_t kHealthPairsPerPass = 1000;

// Judges `pairs` (in the order they were formed; pairs with a value that is not finite are
// left out).
HealthEffect judge_health(std::span<const HealthPair> pairs, HealthDirection direction);

// The sign test's evidence alone, for `worse` of `informative` pairs (ties left out): what
// judge_health() reports, cheap enough to follow pair by pair.
double health_log_evidence(int64_t worse, int64_t informative);

}  // namespace drover
