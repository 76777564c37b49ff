// A streaming anomaly detector for one metric series of any kind (docs/health.md, "The
// generic detector"): it learns the series' level, its daily shape and its spread as values
// arrive, and raises an alarm for a value far off what it expects (a spike) or for a run of
// values off it in one direction (a level shift or a drift, by a CUSUM of the standardized
// residuals). Constant memory and time per value; times come with the values (the injected
// Clock's, or the samples' own), so the twin runs it on simulated time.
//
// Not thread-safe: one detector per series, fed in time order (a value not newer than the
// last, or not finite, is ignored).
#pragma once

#include <cstdint>
#include <vector>

#include "base/clock.h"

namespace drover::health {

struct AnomalyOptions {
  // How fast the level follows the series: half of a change is taken in this long.
  Duration level_half_life = hours(24);
  // The spread (a mean absolute deviation, robust to the outliers it clips) follows as fast.
  Duration scale_half_life = hours(24);
  // The daily shape: the day in `season_buckets` parts, each learning the series' offset from
  // its level at that time of day (0 buckets: no shape). A bucket takes half of a change in
  // `season_half_life_days` days.
  uint32_t season_buckets = 48;
  double season_half_life_days = 3;
  // No alarm while learning: for this long after the first value (a day and more, so that
  // the daily shape is seen once: the level is then the mean so far, each bucket's offset
  // the mean of what it saw), and for `relearn` after a level alarm (the new level is learnt
  // instead of alarmed on again).
  Duration learn = hours(26);
  Duration relearn = hours(2);
  uint32_t min_samples = 24;  // nor before this many values
  // Decisions. A spike is one value `spike_z` local noises off a short average of the values
  // before it (half-life `local_half_life`; the local noise is the median step off that
  // average, as a standard deviation: 1.4826 times it, and at least the floor below), and
  // further off it than `burst_factor` times the `burst_quantile` of such steps so far (a
  // series whose bursts are its habit is alarmed on for a burst beyond its usual ones only).
  // A level alarm is a CUSUM (reference `cusum_k`) of the model's standardized residuals,
  // each clipped at +-cusum_clip (a few bursts close together do not add up to a new level),
  // reaching `cusum_h`. spike_z, cusum_k and cusum_h must be above 0 and cusum_clip above
  // cusum_k (others are taken as the defaults).
  double spike_z = 9;
  Duration local_half_life = minutes(15);
  double burst_quantile = 0.995;
  double burst_factor = 1.5;  // ...times that quantile
  double cusum_k = 1;
  double cusum_h = 24;
  double cusum_clip = 5;
  // The spread is at least this share of the series' mean absolute value, and at least
  // `min_scale`: a series that sits still is not alarmed on for a change of a hair.
  double relative_floor = 0.02;
  double min_scale = 1e-9;
  // An alarm episode ends after this long without a trigger; one episode is one alarm.
  Duration close_after = hours(1);
};

enum class AnomalyKind : uint8_t { kNone, kSpike, kLevelUp, kLevelDown };
const char* to_string(AnomalyKind k);

struct AnomalyVerdict {
  // How far off, as a share of the nearest decision: 1 or more triggers (the spike test's
  // local z / spike_z when beyond the usual bursts, or a CUSUM / cusum_h).
  double score = 0;
  AnomalyKind kind = AnomalyKind::kNone;  // what triggered on this value, if anything
  bool alarm_started = false;             // this value opened an alarm episode
  bool in_alarm = false;                  // an episode is open after this value
  bool learning = false;                  // no decision was made (see AnomalyOptions::learn)
  double expected = 0;  // what the model expected (level + shape): the level test's
  double scale = 0;     // the model's spread, the level test's unit
};

class AnomalyDetector {
 public:
  explicit AnomalyDetector(AnomalyOptions options = {});

  AnomalyVerdict observe(Timestamp at, double value);

  uint64_t samples() const { return samples_; }
  uint64_t alarms() const { return alarms_; }  // episodes opened so far

 private:
  double alpha(Duration dt, Duration half_life) const;
  size_t bucket(Timestamp t) const;

  AnomalyOptions o_;
  uint64_t samples_ = 0;
  uint64_t alarms_ = 0;
  Timestamp last_{};
  Timestamp learn_until_{};
  Timestamp last_trigger_{};
  bool open_ = false;
  double level_ = 0;
  double scale_ = 0;
  double mean_abs_ = 0;
  double up_ = 0;
  double down_ = 0;
  double local_ = 0;            // the values just before (a short average)
  double local_noise_ = 0;      // their point-to-point deviation (mean absolute)
  double burst_ = 0;            // the burst_quantile of |residual| so far
  std::vector<double> season_;  // per bucket of the day: its offset from the level
  // Per bucket: values seen on its first two days (their offsets are plain means), and the
  // day it was last seen on.
  std::vector<uint32_t> season_count_;
  std::vector<int64_t> season_day_;
  std::vector<uint8_t> season_days_;
  bool first_learning_ = true;
};

}  // namespace drover::health
