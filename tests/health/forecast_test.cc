// Forecasts of a limit's crossing (health/forecast.h): the interval holds the true crossing
// as often as it says (over 200 noisy series), a series going the other way, flat or too
// noisy has no forecast, and degenerate windows are refused.
#include "health/forecast.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

namespace drover::health {
namespace {

Timestamp hour(double h) { return Timestamp(Duration(static_cast<int64_t>(h * 3'600'000))); }

// Memory use rising `per_hour` from `start`, sampled hourly for `n` hours with noise `sigma`.
std::vector<TimedValue> leak(double start, double per_hour, double sigma, int n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> noise(0, sigma);
  std::vector<TimedValue> v;
  for (int i = 0; i < n; ++i) v.push_back({hour(i), start + per_hour * i + noise(rng)});
  return v;
}

TEST(Forecast, TheIntervalHoldsTheTrueCrossingAsOftenAsItSays) {
  // 1 MB/h leaking from 100 MB toward a 512 MB limit, seen for 72 hours with 5 MB of noise:
  // the truth is at hour 412, 340 hours after the last value.
  int held = 0;
  int forecasts = 0;
  const int runs = 200;
  for (uint64_t seed = 1; seed <= runs; ++seed) {
    const auto w = leak(100, 1.0, 5, 72, seed);
    auto c = forecast_crossing(w, 512, hour(72), {.confidence = 0.9});
    ASSERT_TRUE(c.has_value()) << "seed " << seed;
    ++forecasts;
    const double truth_s = (412.0 - 72.0) * 3600.0;
    const double earliest_s = static_cast<double>(c->earliest.count()) / 1000.0;
    if (earliest_s <= truth_s && truth_s <= c->latest_s) ++held;
    EXPECT_NEAR(c->slope_per_hour, 1.0, 0.2) << "seed " << seed;
    EXPECT_LE(c->earliest, c->expected);
  }
  // A 90% interval, judged over 200 runs: between 84% and 97% of them hold the truth (the
  // binomial's 99.9% range around 90% at n = 200, so the test does not fail by chance).
  EXPECT_GE(held, forecasts * 84 / 100) << held << " of " << forecasts;
  EXPECT_LE(held, forecasts * 97 / 100) << held << " of " << forecasts;
}

TEST(Forecast, NotHeadingThereMeansNoForecast) {
  // Going down, away from an upper limit.
  EXPECT_FALSE(forecast_crossing(leak(300, -1.0, 2, 48, 1), 512, hour(48)).has_value());
  // Flat with noise: the slope's interval includes zero.
  EXPECT_FALSE(forecast_crossing(leak(300, 0.0, 5, 48, 2), 512, hour(48)).has_value());
  // Already past the limit.
  EXPECT_FALSE(forecast_crossing(leak(600, 1.0, 1, 48, 3), 512, hour(48)).has_value());
  // A battery draining toward empty (a lower limit) does have one.
  auto battery = forecast_crossing(leak(90, -0.5, 0.5, 48, 4), 10, hour(48));
  ASSERT_TRUE(battery.has_value());
  EXPECT_NEAR(static_cast<double>(battery->expected.count()) / 3'600'000.0, (90 - 24 - 10) / 0.5,
              10);
}

// With a limit known to lie above (memory), a series past it and falling back has no
// crossing; either way, it would be read as one toward a limit below.
TEST(Forecast, TheLimitsSideIsHeeded) {
  const auto falling = leak(600, -1.0, 1, 48, 7);  // at 553 by hour 47, limit 512
  EXPECT_TRUE(forecast_crossing(falling, 512, hour(48)).has_value());
  EXPECT_FALSE(forecast_crossing(falling, 512, hour(48), {.toward = Toward::kUp}).has_value());
  EXPECT_TRUE(forecast_crossing(falling, 512, hour(48), {.toward = Toward::kDown}).has_value());
  const auto rising = leak(100, 1.0, 1, 48, 8);
  EXPECT_TRUE(forecast_crossing(rising, 512, hour(48), {.toward = Toward::kUp}).has_value());
  EXPECT_FALSE(forecast_crossing(rising, 512, hour(48), {.toward = Toward::kDown}).has_value());
}

// Without the significance test, a slope whose interval reaches zero is forecast with no
// latest time; the interval is ordered; a forecast made later than the last value (a device
// silent for a day) starts from the line's level then.
TEST(Forecast, AnUnboundedIntervalAndALateForecast) {
  // Rising 0.1 an hour under a swing of +-5: the slope's interval reaches well below zero.
  std::vector<TimedValue> noisy;
  for (int i = 0; i < 24; ++i) noisy.push_back({hour(i), 300 + 0.1 * i + (i % 2 == 0 ? 5 : -5)});
  auto c = forecast_crossing(noisy, 512, hour(24),
                             {.confidence = 0.9, .min_points = 8, .require_significant = false});
  ASSERT_TRUE(c.has_value());
  EXPECT_TRUE(std::isinf(c->latest_s));
  EXPECT_LE(c->earliest, c->expected);
  const auto clean = leak(100, 1.0, 0.5, 48, 10);
  auto now = forecast_crossing(clean, 512, hour(48));
  auto later = forecast_crossing(clean, 512, hour(72));
  ASSERT_TRUE(now && later);
  EXPECT_NEAR(static_cast<double>((now->expected - later->expected).count()) / 3'600'000.0, 24, 1);
  EXPECT_LE(static_cast<double>(later->expected.count()) / 1000.0, later->latest_s);
  EXPECT_FALSE(forecast_crossing(clean, 512, hour(48), {.confidence = 1}).has_value());
  EXPECT_FALSE(forecast_crossing(clean, 512, hour(48), {.confidence = NAN}).has_value());
  std::vector<TimedValue> huge = clean;
  for (auto& p : huge) p.value *= 1e306;
  EXPECT_FALSE(forecast_crossing(huge, 1e308, hour(48)).has_value());
}

TEST(Forecast, DegenerateWindowsAreRefused) {
  EXPECT_FALSE(forecast_crossing({}, 1, hour(0)).has_value());
  std::vector<TimedValue> same_time(10, TimedValue{hour(1), 5});
  EXPECT_FALSE(forecast_crossing(same_time, 10, hour(2)).has_value());
  auto w = leak(0, 1, 0.1, 20, 5);
  w[3].value = NAN;
  EXPECT_FALSE(forecast_crossing(w, 100, hour(20)).has_value());
  // Too few points.
  EXPECT_FALSE(forecast_crossing(leak(0, 1, 0.1, 5, 6), 100, hour(5)).has_value());
}

}  // namespace
}  // namespace drover::health
