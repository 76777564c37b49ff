#include "health/anomaly.h"

#include <algorithm>
#include <cmath>

namespace drover::health {
namespace {

// The options with the decisions' units fixed where they make no sense (zero, negative, NaN).
AnomalyOptions valid(AnomalyOptions o) {
  const AnomalyOptions d;
  if (!(o.spike_z > 0)) o.spike_z = d.spike_z;
  if (!(o.cusum_k > 0)) o.cusum_k = d.cusum_k;
  if (!(o.cusum_h > 0)) o.cusum_h = d.cusum_h;
  if (!(o.cusum_clip > o.cusum_k)) o.cusum_clip = std::max(d.cusum_clip, 2 * o.cusum_k);
  if (!(o.burst_quantile > 0 && o.burst_quantile < 1)) o.burst_quantile = d.burst_quantile;
  if (!(o.burst_factor > 0)) o.burst_factor = d.burst_factor;
  return o;
}

}  // namespace

const char* to_string(AnomalyKind k) {
  switch (k) {
    case AnomalyKind::kNone:
      return "none";
    case AnomalyKind::kSpike:
      return "spike";
    case AnomalyKind::kLevelUp:
      return "level_up";
    case AnomalyKind::kLevelDown:
      return "level_down";
  }
  return "none";
}

AnomalyDetector::AnomalyDetector(AnomalyOptions options)
    : o_(valid(options)),
      season_(options.season_buckets, 0.0),
      season_count_(options.season_buckets, 0),
      season_day_(options.season_buckets, -1),
      season_days_(options.season_buckets, 0) {}

// The share of a change taken over `dt` when half is taken over `half_life`.
double AnomalyDetector::alpha(Duration dt, Duration half_life) const {
  if (half_life <= Duration{0}) return 1;
  const double ratio = static_cast<double>(dt.count()) / static_cast<double>(half_life.count());
  return 1 - std::exp2(-ratio);
}

size_t AnomalyDetector::bucket(Timestamp t) const {
  constexpr int64_t kDayMs = 86'400'000;
  const int64_t ms = ((t.time_since_epoch().count() % kDayMs) + kDayMs) % kDayMs;
  return static_cast<size_t>(ms * static_cast<int64_t>(season_.size()) / kDayMs);
}

AnomalyVerdict AnomalyDetector::observe(Timestamp at, double value) {
  AnomalyVerdict v;
  if (!std::isfinite(value) || (samples_ > 0 && at <= last_)) {
    v.learning = true;  // not a value, or out of order: nothing learnt, nothing decided
    v.in_alarm = open_;
    v.expected = level_;
    v.scale = scale_;
    return v;
  }
  const bool seasonal = !season_.empty();
  const size_t b = seasonal ? bucket(at) : 0;
  if (samples_ == 0) {
    last_ = at;
    learn_until_ = at + o_.learn;
    level_ = value;
    local_ = value;
    mean_abs_ = std::fabs(value);
    samples_ = 1;
    v.learning = true;
    v.expected = value;
    return v;
  }
  const Duration dt = at - last_;
  last_ = at;
  ++samples_;
  const double offset = seasonal ? season_[b] : 0.0;
  const double expected = level_ + offset;
  const double residual = value - expected;
  if (!std::isfinite(residual)) {  // a value so large that nothing can be learnt from it
    v.learning = true;
    v.in_alarm = open_;
    v.expected = expected;
    v.scale = scale_;
    --samples_;
    return v;
  }
  // The spread is kept as a mean absolute deviation; as a standard deviation it is
  // sqrt(pi/2) times that (for normal noise), which z is measured in.
  constexpr double kMeanDeviationToSigma = 1.2533141373155003;
  const double floor = std::max(o_.min_scale, o_.relative_floor * mean_abs_);
  const double scale = std::max(scale_ * kMeanDeviationToSigma, floor);
  const double z = residual / scale;
  const bool learning = at < learn_until_ || samples_ < o_.min_samples;
  v.expected = expected;
  v.scale = scale;
  v.learning = learning;

  // Off the values just before, in their own noise: what a spike is judged by.
  // (The median absolute deviation of normal noise is 0.674 sigma.)
  const double local_sigma = std::max(local_noise_ * 1.4826, floor);
  const double local_z = (value - local_) / local_sigma;
  bool shifted = false;
  if (!learning) {
    const double zc = std::clamp(z, -o_.cusum_clip, o_.cusum_clip);
    up_ = std::max(0.0, up_ + zc - o_.cusum_k);
    down_ = std::max(0.0, down_ - zc - o_.cusum_k);
    const bool beyond_bursts = std::fabs(value - local_) > o_.burst_factor * burst_;
    v.score = std::max({beyond_bursts ? std::fabs(local_z) / o_.spike_z : 0.0, up_ / o_.cusum_h,
                        down_ / o_.cusum_h});
    if (up_ >= o_.cusum_h || down_ >= o_.cusum_h) {
      v.kind = up_ >= o_.cusum_h ? AnomalyKind::kLevelUp : AnomalyKind::kLevelDown;
      shifted = true;
    } else if (std::fabs(local_z) >= o_.spike_z && beyond_bursts) {
      v.kind = AnomalyKind::kSpike;
    }
  }

  // The model learns from every value. While it first learns, the level is the mean so far
  // and each bucket's offset the mean of its values' offsets (a day's shape seen once);
  // after, they follow at their half-lives, and what is off by more than a few spreads moves
  // them by those few only (a spike does not drag the level). While it relearns after a
  // level alarm, the level follows fast.
  if (first_learning_ && !learning) first_learning_ = false;
  // While learning, only a wild value (20 spreads off what came before: a sentinel, a
  // glitch) is clipped; after, anything beyond three spreads.
  const double wild = 20 * std::max(local_sigma, scale);
  const double clip = learning ? wild : 3 * scale;
  const double taken = local_ + std::clamp(value - local_, -wild, wild);
  if (first_learning_) {
    level_ += (taken - offset - level_) / static_cast<double>(samples_);
  } else {
    const Duration hl = learning ? o_.relearn / 4 : o_.level_half_life;
    level_ += alpha(dt, hl) * std::clamp(residual, -clip, clip);
  }
  if (seasonal) {
    const int64_t day = at.time_since_epoch().count() / 86'400'000;
    if (season_day_[b] != day) {
      season_day_[b] = day;
      if (season_days_[b] < 255) ++season_days_[b];
    }
    const double seen = taken - level_;
    if (season_days_[b] <= 2) {
      // Its first days: the plain mean of what it saw (clipped like the rest once the
      // detector judges: a spike on a bucket's second day moves its offset by 3 spreads at
      // most, shared among the values of that day).
      ++season_count_[b];
      const double step = first_learning_ ? seen - season_[b]
                                          : std::clamp(seen - season_[b], -3 * scale, 3 * scale);
      season_[b] += step / static_cast<double>(season_count_[b]);
    } else {
      // A half-life in days: each bucket is visited a 1/buckets of the time.
      const double per_bucket = static_cast<double>(hours(24).count()) /
                                static_cast<double>(season_.size()) * o_.season_half_life_days;
      const double a = alpha(dt, Duration(static_cast<int64_t>(per_bucket)));
      season_[b] += a * std::clamp(seen - season_[b], -3 * scale, 3 * scale);
    }
  }
  const double dev = std::min(std::fabs(residual), clip);
  scale_ = scale_ == 0 ? dev : scale_ + alpha(dt, o_.scale_half_life) * (dev - scale_);
  // The burst quantile of the steps off the local average, by stochastic approximation in
  // the logarithm (scale-free: bursts of any size are learnt as fast): up by q's share when
  // exceeded, down by the rest's otherwise.
  constexpr double kRate = 0.1;
  if (burst_ <= 0) burst_ = local_sigma;
  burst_ *= std::fabs(value - local_) > burst_ ? std::exp(kRate * o_.burst_quantile)
                                               : std::exp(-kRate * (1 - o_.burst_quantile));
  burst_ = std::max(burst_, local_sigma);
  // The local average and its noise: the median of the steps off it, by stochastic
  // approximation (a heavy tail of steps does not widen it; a spike moves it by a step).
  const double step_dev = std::fabs(value - local_);
  if (local_noise_ == 0) {
    local_noise_ = step_dev;
  } else {
    const double nudge = alpha(dt, o_.scale_half_life / 8) * local_noise_;
    local_noise_ += step_dev > local_noise_ ? nudge : -nudge;
  }
  local_ +=
      alpha(dt, o_.local_half_life) * std::clamp(value - local_, -3 * local_sigma, 3 * local_sigma);
  // The magnitude the floor is a share of (a wild value counts as 20 spreads past it only).
  mean_abs_ +=
      alpha(dt, o_.scale_half_life) * (std::min(std::fabs(value), mean_abs_ + wild) - mean_abs_);

  if (shifted) {
    // A new level: taken at once, and learnt (not alarmed on) for a while.
    level_ = value - offset;
    up_ = 0;
    down_ = 0;
    learn_until_ = at + o_.relearn;
  }
  if (v.kind != AnomalyKind::kNone) {
    // A trigger an hour or more after the last one opens a new episode, even with no value
    // in between to close the old one.
    if (open_ && at - last_trigger_ >= o_.close_after) open_ = false;
    last_trigger_ = at;
    if (!open_) {
      open_ = true;
      v.alarm_started = true;
      ++alarms_;
    }
  } else if (open_ && at - last_trigger_ >= o_.close_after) {
    open_ = false;
  }
  v.in_alarm = open_;
  return v;
}

}  // namespace drover::health
