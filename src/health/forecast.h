// Forecasts of when a metric crosses a limit (docs/health.md, "Forecasts"): battery empty,
// memory exhausted, a disk full, a pump's vibration past its limit. A straight line is fitted
// to the recent values by least squares; the crossing is where the line meets the limit, and
// its interval comes from the interval of the line's slope (Student's t on the residuals) and
// of its level now. A series not heading for the limit — flat, going the other way, or too
// noisy to tell — has no forecast.
#pragma once

#include <cstdint>
#include <optional>
#include <span>

#include "base/clock.h"

namespace drover::health {

struct TimedValue {
  Timestamp at{};
  double value = 0;
};

struct Crossing {
  // From `now`: the most likely time to the limit, and the interval (`latest` infinite when
  // the slope's interval reaches zero: it may never get there).
  Duration expected{};
  Duration earliest{};
  double latest_s = 0;  // seconds; +inf when unbounded
  double slope_per_hour = 0;
  double level_now = 0;  // the line's value now
  uint32_t points = 0;
};

// Which way the limit lies: above the values (memory toward its total, a disk toward full),
// below them (a battery toward empty), or either (whichever way the line goes).
enum class Toward : uint8_t { kEither, kUp, kDown };

struct ForecastOptions {
  double confidence = 0.9;  // two-sided, in (0, 1): the interval holds the crossing this often
  uint32_t min_points = 8;
  // The line must explain the values: a slope whose interval includes zero at this
  // confidence is no trend.
  bool require_significant = true;
  Toward toward = Toward::kEither;
};

// When the values in `window` (time order, at least min_points, spanning more than zero
// time) cross `limit` after `now`, going the way the line goes (and the way `toward` says,
// when it says). std::nullopt when they are not heading there (with kUp or kDown: also when
// the line is past the limit already), for a confidence outside (0, 1), or for values too
// large to fit. A crossing further than a billion hours is said to be that far.
std::optional<Crossing> forecast_crossing(std::span<const TimedValue> window, double limit,
                                          Timestamp now, const ForecastOptions& options = {});

// The least-squares slope of the values (time order), per hour. std::nullopt for fewer than
// two, a non-finite value, or no time between them.
std::optional<double> slope_per_hour(std::span<const TimedValue> values);

}  // namespace drover::health
