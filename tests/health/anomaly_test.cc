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

TEST(AnomalyDetector, OutOfOrderRepeatedAndNonFiniteValuesChangeNothing) {
  // Two detectors on the same series; one is also given values it must ignore. Their
  // verdicts on everything after must be the same.
  const std::vector<double> v = shaped_noise(10 * 288, 3);
  AnomalyDetector plain;
  AnomalyDetector fed;
  for (size_t i = 0; i < v.size(); ++i) {
    const Timestamp t = at_ms(static_cast<int64_t>(i) * 300'000);
    const AnomalyVerdict a = plain.observe(t, v[i]);
    const AnomalyVerdict b = fed.observe(t, v[i]);
    ASSERT_EQ(a.expected, b.expected) << i;
    ASSERT_EQ(a.scale, b.scale) << i;
    ASSERT_EQ(a.kind, b.kind) << i;
    if (i % 50 == 49) {
      EXPECT_TRUE(fed.observe(t, 1e9).learning) << i;  // the same time again: ignored
      EXPECT_TRUE(fed.observe(t - Duration(1), -1e9).learning) << i;  // older: ignored
      EXPECT_TRUE(fed.observe(t + Duration(1), NAN).learning) << i;
      EXPECT_TRUE(fed.observe(t + Duration(1), INFINITY).learning) << i;
    }
  }
  EXPECT_EQ(plain.samples(), fed.samples());
  EXPECT_EQ(plain.alarms(), fed.alarms());
}

// One wild value (a sentinel, a glitch) is a spike; it does not raise the detector's floor or
// spread so far that the next anomaly goes unseen.
TEST(AnomalyDetector, AWildValueDoesNotBlindTheDetector) {
  std::vector<double> v = shaped_noise(12 * 288, 5);
  v[5 * 288] = 1e12;
  v[6 * 288] += 15;  // a day later: a spike of 15 sigma
  const Alarms r = run(v);
  ASSERT_EQ(r.alarms.size(), 2u);
  EXPECT_EQ(r.alarms[0], 5u * 288);
  EXPECT_EQ(r.alarms[1], 6u * 288);
  EXPECT_EQ(r.kinds[1], AnomalyKind::kSpike);
  // The same while it first learns: the learnt level and shape survive the wild value.
  v = shaped_noise(12 * 288, 6);
  v[100] = 1e12;
  v[6 * 288] += 15;
  const Alarms learning = run(v);
  ASSERT_EQ(learning.alarms.size(), 1u);
  EXPECT_EQ(learning.alarms[0], 6u * 288);
}

// Triggers an hour or more apart are two alarms, even with no value between them.
TEST(AnomalyDetector, TriggersAcrossAGapAreTwoAlarms) {
  AnomalyDetector d;
  const std::vector<double> v = shaped_noise(5 * 288, 8);
  for (size_t i = 0; i < v.size(); ++i) d.observe(at_ms(static_cast<int64_t>(i) * 300'000), v[i]);
  const int64_t end = static_cast<int64_t>(v.size()) * 300'000;
  EXPECT_TRUE(d.observe(at_ms(end), 200).alarm_started);
  EXPECT_FALSE(d.observe(at_ms(end + 300'000), 200).alarm_started);  // the same episode
  EXPECT_TRUE(d.observe(at_ms(end + 3 * 3'600'000), 300).alarm_started);
  EXPECT_EQ(d.alarms(), 2u);
}

}  // namespace
}  // namespace drover::health
