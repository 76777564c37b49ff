// Device-aware detectors (docs/health.md, "Device-aware detectors"): what is wrong with one
// device judged against its own history or against its peers — devices of the same type at
// the same site, or of the same type anywhere — rather than against a generic model of one
// series.
//
// - peer_outlier: a device's figure (a battery's drain rate, a signal's strength, a crash
//   count) far from its peers', by a robust z-score (median and MAD of the peers).
// - PeerDrift: a sensor drifting away from its site's peers (calibration): a CUSUM of its
//   residual against the peers' median, value by value.
// - reboot_loop: too many boots within a window.
// - frozen: a value that has not changed for too long while the device reports (a stuck
//   sensor, a hung process that repeats its last reading).
//
// Pure functions and small state; times come with the values.
#pragma once

#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <vector>

#include "base/clock.h"
#include "health/forecast.h"

namespace drover::health {

struct PeerVerdict {
  double z = 0;          // (value - peers' median) / (peers' MAD as a standard deviation)
  double median = 0;     // the peers'
  double spread = 0;     // the peers' MAD as a standard deviation (at least the floor)
  bool outlier = false;  // |z| >= threshold, on the side asked for
};

enum class Side : uint8_t { kHigh, kLow, kBoth };

struct PeerOptions {
  double threshold = 5;  // robust z-scores: peers of a healthy fleet rarely pass 5
  Side side = Side::kBoth;
  uint32_t min_peers = 8;  // fewer: no verdict
  // The spread is at least this share of |median| (identical peers are no reason to flag a
  // hair's difference), and at least `min_spread`.
  double relative_floor = 0.05;
  double min_spread = 1e-9;
};

// `value` against `peers` (the device itself may be among them: the median and MAD hardly
// move for one). std::nullopt with fewer than min_peers or a non-finite value.
std::optional<PeerVerdict> peer_outlier(double value, std::span<const double> peers,
                                        const PeerOptions& options = {});

// The same in two steps, for many devices judged against the same peers (a fleet's devices
// against their type's): the peers' median and spread once (std::nullopt with fewer than
// min_peers finite ones), then each value against them.
struct PeerSpread {
  double median = 0;
  double spread = 0;  // the MAD as a standard deviation, at least the floors
  size_t peers = 0;   // finite ones
};
std::optional<PeerSpread> peer_spread(std::span<const double> peers,
                                      const PeerOptions& options = {});
PeerVerdict judge_against(double value, const PeerSpread& peers, const PeerOptions& options = {});

// What a device's peers read, robustly: the mean of those within 3 spreads of their median
// (the spread: the MAD as a standard deviation, so about 4.45 MADs) — a peer gone astray stops
// counting once it is clearly off, and until then moves it by its share only (a median would jump
// by a whole gap between peers when it passes). NaN for no finite peer.
double peer_reference(std::span<const double> peers);

// A CUSUM of a device's residual against its peers' reference (peer_reference of the others:
// with the device among them, its own residual would be partly itself), in units of the
// residual's own
// spread learnt while it settles: flags a drift up or down of `shift` spreads within about
// `cusum_h / (shift - cusum_k)` values, and rarely (see docs/health.md) a device that only
// wanders as its peers do.
class PeerDrift {
 public:
  struct Options {
    uint32_t settle = 96;  // values that learn the residual's own offset and spread
    // A reference of one spread: the peers' median itself moves by a fraction of one when a
    // peer goes astray, which must not add up to an alarm for the others.
    double cusum_k = 1;
    double cusum_h = 15;
    // A CUSUM no higher than this: a sensor back in line falls below the decision within
    // (cusum_cap - cusum_h) / cusum_k values rather than paying back a long drift's sum.
    double cusum_cap = std::numeric_limits<double>::infinity();
  };
  PeerDrift();
  explicit PeerDrift(Options options);

  struct Verdict {
    double residual = 0;  // value - peers' median - the device's own usual offset
    double up = 0, down = 0;
    bool drifting = false;  // a CUSUM reached cusum_h (it stays so until reset())
    bool settling = true;
  };
  Verdict observe(double value, double peers_median);
  // Starts over, settling again: after the sensor was recalibrated or replaced (its usual
  // offset and spread are learnt anew).
  void reset();

 private:
  Options o_;
  uint32_t n_ = 0;
  double offset_ = 0;  // the device's usual residual (a sensor a little off is not drifting)
  double m2_ = 0;      // for the residual's variance while settling
  double sigma_ = 0;
  double up_ = 0, down_ = 0;
  bool drifting_ = false;
};

// Each sensor of a group (a site's same-type devices, one metric) judged against the others
// over the same time: the values put into `bucket`-long buckets (a bucket's mean), each
// sensor's bucket against the others' reference (peer_reference's robust mean) where at
// least `min_peers` of them have one, through a PeerDrift each, in time order. The reference
// is each bucket's panel's — the first kDriftPanel sensors with a value in it; one of them
// against the panel without itself — so a large group costs per bucket what a site of 33
// does. A sensor is drifting while its CUSUM stays at the decision after its last bucket (one
// recalibrated falls back and clears).
inline constexpr size_t kDriftPanel = 33;
struct SensorDrift {
  bool drifting = false;
  Timestamp since{};    // the start of the bucket where its CUSUM last reached the decision
  double residual = 0;  // at the last bucket judged: its value - the reference - its usual offset
  uint32_t judged = 0;  // buckets judged, settling included
};
std::vector<SensorDrift> drift_among(std::span<const std::span<const TimedValue>> sensors,
                                     Duration bucket, uint32_t min_peers = 4,
                                     PeerDrift::Options options = {});

// Whether `boots` (times the device started, any order) holds more than `max` within any
// `window` (none for a window of zero or less), and the most found in one.
struct RebootLoop {
  bool looping = false;
  uint32_t most_in_window = 0;
};
RebootLoop reboot_loop(std::span<const Timestamp> boots, Duration window, uint32_t max);

// Whether the values (time order) have not changed by more than `tolerance` for `at_least`
// up to the last one, and since when.
struct Frozen {
  bool frozen = false;
  Timestamp since{};
};
Frozen frozen(std::span<const TimedValue> values, Duration at_least, double tolerance = 0);

// Readings summarised as ranges (time order): a rollup bucket's start, lowest and highest; a
// raw sample's value is both.
struct ValueRange {
  Timestamp at{};
  double min = 0, max = 0;
};
// The same over ranges, exactly at any resolution: back from the newest while each range lies
// within `tolerance` of the newest's middle (the newest too), since the first such range's
// start.
Frozen frozen_ranges(std::span<const ValueRange> ranges, Duration at_least, double tolerance = 0);

}  // namespace drover::health
