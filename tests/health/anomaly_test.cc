// The generic streaming detector (health/anomaly.h): quiet on 20 series of noise with a
// daily shape, and a spike, a level shift and a drift found in each with their delays. Its
// figures on the real series of data/nab-subset come from bench/health_eval.cc
// (docs/health.md).
#include "health/anomaly.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

namespace drover::health {
namespace {

Timestamp at_ms(int64_t ms) { return Timestamp(Duration(ms)); }

// Five-minute samples: a level of 50, a daily swing of 10 and noise of sigma 1.
std::vector<double> shaped_noise(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> noise(0, 1);
  std::vector<double> v(n);
  for (size_t i = 0; i < n; ++i) {
    const double day = static_cast<double>(i % 288) / 288.0;
    v[i] = 50 + 10 * std::sin(2 * M_PI * day) + noise(rng);
  }
  return v;
}

struct Alarms {
  std::vector<size_t> alarms;  // indices where an episode started
  std::vector<AnomalyKind> kinds;
};

Alarms run(const std::vector<double>& values, int64_t step_ms = 300'000, AnomalyOptions o = {}) {
  AnomalyDetector d(o);
  Alarms r;
  for (size_t i = 0; i < values.size(); ++i) {
    const AnomalyVerdict v = d.observe(at_ms(static_cast<int64_t>(i) * step_ms), values[i]);
    if (v.alarm_started) {
      r.alarms.push_back(i);
      r.kinds.push_back(v.kind);
    }
  }
  return r;
}

TEST(AnomalyDetector, NoiseWithADailyShapeRaisesNothing) {
  // 60 days of it, over 20 seeds: the shape is learnt, the noise is no anomaly.
  size_t alarms = 0;
  for (uint64_t seed = 1; seed <= 20; ++seed)
    alarms += run(shaped_noise(60 * 288, seed)).alarms.size();
  EXPECT_LE(alarms, 2u) << "alarms over 20 series of 60 days";
}

TEST(AnomalyDetector, ASpikeALevelShiftAndADriftAreFound) {
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    std::vector<double> v = shaped_noise(20 * 288, seed);
    const size_t spike = 10 * 288 + 17;
    v[spike] += 15;
    Alarms r = run(v);
    ASSERT_FALSE(r.alarms.empty()) << "seed " << seed;
    EXPECT_EQ(r.alarms.front(), spike) << "seed " << seed;
    EXPECT_EQ(r.kinds.front(), AnomalyKind::kSpike);

    v = shaped_noise(20 * 288, seed);
    const size_t shift = 10 * 288 + 100;
    for (size_t i = shift; i < v.size(); ++i) v[i] -= 5;  // five sigmas down
    r = run(v);
    ASSERT_FALSE(r.alarms.empty()) << "seed " << seed;
    EXPECT_GE(r.alarms.front(), shift);
    EXPECT_LE(r.alarms.front(), shift + 12) << "within an hour, seed " << seed;
    EXPECT_EQ(r.kinds.front(), AnomalyKind::kLevelDown);

    v = shaped_noise(20 * 288, seed);
    const size_t drift = 10 * 288;
    for (size_t i = drift; i < v.size(); ++i) v[i] += 0.05 * static_cast<double>(i - drift);
    r = run(v);
    ASSERT_FALSE(r.alarms.empty()) << "seed " << seed;
    EXPECT_GE(r.alarms.front(), drift);
    EXPECT_LE(r.alarms.front(), drift + 288) << "within a day (15 sigmas by then), seed " << seed;
    EXPECT_EQ(r.kinds.front(), AnomalyKind::kLevelUp);
  }
}

TEST(AnomalyDetector, OutOfOrderAndNonFiniteValuesChangeNothing) {
  AnomalyDetector d;
  for (int i = 0; i < 500; ++i) d.observe(at_ms(i * 300'000LL), 10.0 + (i % 7) * 0.1);
  const uint64_t before = d.samples();
  EXPECT_TRUE(d.observe(at_ms(10), 1e9).learning);  // older than the last: ignored
  EXPECT_TRUE(d.observe(at_ms(600 * 300'000LL), NAN).learning);
  EXPECT_EQ(d.samples(), before);
  EXPECT_EQ(d.alarms(), 0u);
}

}  // namespace
}  // namespace drover::health
