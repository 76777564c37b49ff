// The health gates' statistic: a sequential sign test over pairs of updated and not-yet-
// updated devices. Its promise is checked as a rate over thousands of seeded sequences, on
// metrics of three shapes (a drain rate with device-to-device spread, a heavy-tailed one,
// and a count that is mostly zero): with no change it ever crosses ln(1/alpha) in at most
// alpha of them, looked at after every pair; a build that doubles battery drain crosses
// within a hundred pairs though the windows are as noisy as the effect; the interval for the shift
// covers the true shift at least 95% of the time.
#include "rollout/health_gate.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <random>
#include <vector>

namespace drover {
namespace {

// One device's change on a metric between two equal windows (after minus before), drawn for
// a device whose update changed nothing, or multiplied it by `factor`.
using Draw = std::function<double(std::mt19937_64&, double factor)>;

// Battery drain in % a day: each device drains at its own rate (lognormal around 1%/day),
// measured in each window with noise as large as a doubling's effect (a day's drain depends
// on the weather, the radio, the sensor's duty); the change is after minus before.
double drain_change(std::mt19937_64& rng, double factor) {
  std::lognormal_distribution<double> rate(0, 0.3);
  std::normal_distribution<double> noise(0, 0.7);
  const double own = rate(rng);
  return (own * factor + noise(rng)) - (own + noise(rng));
}
// A heavy-tailed metric (Cauchy noise): means and t-tests break down on it.
double heavy_change(std::mt19937_64& rng, double factor) {
  std::cauchy_distribution<double> noise(0, 1);
  return noise(rng) * factor;
}
// Reboots in a window: mostly none, so most pairs tie.
double reboots_change(std::mt19937_64& rng, double factor) {
  std::poisson_distribution<int> after(0.2 * factor), before(0.2);
  return after(rng) - before(rng);
}

// The share of `runs` sequences of `pairs` pairs whose evidence ever reaches `threshold`.
double crossing_rate(const Draw& draw, double factor, int pairs, double threshold, int runs,
                     uint64_t seed) {
  std::mt19937_64 rng(seed);
  int crossed = 0;
  for (int run = 0; run < runs; ++run) {
    int64_t worse = 0, informative = 0;
    for (int n = 0; n < pairs; ++n) {
      const double d = draw(rng, factor) - draw(rng, 1);
      if (d == 0) continue;
      ++informative;
      worse += d > 0 ? 1 : 0;
      if (health_log_evidence(worse, informative) >= threshold) {
        ++crossed;
        break;
      }
    }
  }
  return static_cast<double>(crossed) / runs;
}

TEST(HealthGate, WithNoChangeItCrossesAtMostAlphaLookedAtAfterEveryPair) {
  const std::vector<std::pair<const char*, Draw>> metrics = {
      {"drain", &drain_change}, {"heavy-tailed", &heavy_change}, {"reboots", &reboots_change}};
  for (const auto& [name, draw] : metrics) {
    // alpha = 5%: 2,000 sequences of 300 pairs (sd of the rate: 0.5%).
    const double at_5 = crossing_rate(draw, 1, 300, std::log(20.0), 2000, 1);
    // alpha = 1%.
    const double at_1 = crossing_rate(draw, 1, 300, std::log(100.0), 2000, 2);
    std::printf("%s: crossed ln 20 in %.2f%%, ln 100 in %.2f%% of 2000 sequences\n", name,
                100 * at_5, 100 * at_1);
    EXPECT_LE(at_5, 0.06) << name;
    EXPECT_LE(at_1, 0.0125) << name;
  }
}

TEST(HealthGate, TwiceTheDrainIsFoundWithinAHundredPairs) {
  // The threshold of a revision's gate in a rollout of 3 revisions with one health metric:
  // ln(1/alpha_share) with alpha 5% split over the levels and the failure and health gates
  // (docs/gates.md): about ln 360.
  const double threshold = std::log(360.0);
  std::mt19937_64 rng(7);
  std::vector<int> needed;
  for (int run = 0; run < 1000; ++run) {
    int64_t worse = 0, informative = 0;
    int n = 0;
    for (; n < 200; ++n) {
      const double d = drain_change(rng, 2) - drain_change(rng, 1);
      if (d == 0) continue;
      ++informative;
      worse += d > 0 ? 1 : 0;
      if (health_log_evidence(worse, informative) >= threshold) break;
    }
    needed.push_back(n + 1);
  }
  std::sort(needed.begin(), needed.end());
  const int median = needed[needed.size() / 2];
  const int p95 = needed[needed.size() * 95 / 100];
  std::printf("2x drain: pairs to cross ln 360: median %d, 95th percentile %d\n", median, p95);
  // 11 pairs is the floor: the evidence after 10 pairs all worse is ln 223 (the mixture's
  // cost). With this much noise about one pair in five is not worse.
  EXPECT_GT(median, 11);
  EXPECT_LE(p95, 100);
  // A doubled count of reboots (0.2 to 0.4 per window) is a subtler effect: most pairs tie.
  const double found = crossing_rate(&reboots_change, 2, 600, threshold, 1000, 8);
  std::printf("2x reboots: crossed within 600 pairs in %.1f%% of 1000\n", 100 * found);
  EXPECT_GE(found, 0.8);
}

TEST(HealthGate, TheIntervalCoversTheTrueShift) {
  // Updated devices' values shifted by +0.5 against their partners' (continuous noise): the
  // median paired difference is 0.5 and its 95% interval holds it in at least 95% of runs.
  std::mt19937_64 rng(11);
  std::normal_distribution<double> noise(0, 1);
  int covered = 0;
  const int runs = 2000;
  for (int run = 0; run < runs; ++run) {
    std::vector<HealthPair> pairs(40);
    for (HealthPair& p : pairs) {
      p.control = noise(rng);
      p.updated = 0.5 + noise(rng);
    }
    const HealthEffect e = judge_health(pairs, HealthDirection::kHigherIsWorse);
    ASSERT_EQ(e.pairs, 40);
    ASSERT_LE(e.shift_low, e.shift);
    ASSERT_LE(e.shift, e.shift_high);
    covered += e.shift_low <= 0.5 && 0.5 <= e.shift_high ? 1 : 0;
  }
  std::printf("interval covered the shift in %.1f%% of %d runs\n", 100.0 * covered / runs, runs);
  EXPECT_GE(covered, runs * 94 / 100);  // >= 95% in theory (96.2% at n = 40); sd 0.5%
  EXPECT_LE(covered, runs * 99 / 100);  // and not so wide that it says nothing
}

TEST(HealthGate, CountsTiesDirectionAndMissingValues) {
  const std::vector<HealthPair> pairs = {{3, 1}, {2, 2}, {5, 1}, {1, 4}, {NAN, 1},
                                         {6, 2}, {2, 1}, {4, 4}, {7, 0}};
  const HealthEffect higher = judge_health(pairs, HealthDirection::kHigherIsWorse);
  EXPECT_EQ(higher.pairs, 8);  // the NaN pair left out
  EXPECT_EQ(higher.ties, 2);
  EXPECT_EQ(higher.worse, 5);
  EXPECT_DOUBLE_EQ(higher.log_evidence, health_log_evidence(5, 6));
  // Differences sorted: -3 0 0 1 2 4 4 7; median 1.5; with 8 pairs the interval is the 1st
  // and 8th (P(X < 2) = 9/256 > 0.025, P(X < 1) = 1/256).
  EXPECT_DOUBLE_EQ(higher.shift, 1.5);
  EXPECT_DOUBLE_EQ(higher.shift_low, -3);
  EXPECT_DOUBLE_EQ(higher.shift_high, 7);
  EXPECT_DOUBLE_EQ(higher.updated_median, 3.5);
  EXPECT_DOUBLE_EQ(higher.control_median, 1.5);
  const HealthEffect lower = judge_health(pairs, HealthDirection::kLowerIsWorse);
  EXPECT_EQ(lower.worse, 1);
  EXPECT_LT(lower.log_evidence, 0);
  EXPECT_GT(higher.log_evidence, lower.log_evidence);
  // Too few pairs for an interval; none at all: nothing.
  const HealthEffect few = judge_health(std::span(pairs).first(4), HealthDirection::kHigherIsWorse);
  EXPECT_TRUE(std::isnan(few.shift_low));
  EXPECT_FALSE(std::isnan(few.shift));
  const HealthEffect none = judge_health({}, HealthDirection::kHigherIsWorse);
  EXPECT_EQ(none.pairs, 0);
  EXPECT_DOUBLE_EQ(none.log_evidence, 0);
  EXPECT_TRUE(std::isnan(none.shift));
  // Infinite values are left out like NaN (inf - inf would be NaN in the differences).
  const std::vector<HealthPair> odd = {{INFINITY, 1}, {2, -INFINITY}, {3, 1}};
  EXPECT_EQ(judge_health(odd, HealthDirection::kLowerIsWorse).pairs, 1);
  // Overwhelming evidence stays finite.
  EXPECT_TRUE(std::isfinite(health_log_evidence(100'000, 100'000)));
}

}  // namespace
}  // namespace drover
