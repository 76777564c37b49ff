// Device-aware detectors (health/device_detectors.h), each judged over 20 seeds where it is
// statistical: a battery draining twice as fast as its peers is flagged and healthy peers
// are not; a sensor drifting from its site's peers is flagged within a stated delay while
// its peers, sharing the site's daily swing, are not; boot loops and frozen values.
#include "health/device_detectors.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

namespace drover::health {
namespace {

Timestamp minute(int64_t m) { return Timestamp(Duration(m * 60'000)); }

TEST(PeerOutlier, ABatteryDrainingTwiceAsFastStandsOutAndHealthyPeersDoNot) {
  int healthy_flagged = 0;
  int healthy_judged = 0;
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    std::mt19937_64 rng(seed);
    std::normal_distribution<double> drain(1.0, 0.1);  // % an hour, same type, same firmware
    std::vector<double> fleet(200);
    for (double& d : fleet) d = drain(rng);
    fleet[17] = 2.0 * drain(rng);  // the bad one
    for (size_t i = 0; i < fleet.size(); ++i) {
      auto v = peer_outlier(fleet[i], fleet, {.side = Side::kHigh});
      ASSERT_TRUE(v.has_value());
      if (i == 17) {
        EXPECT_TRUE(v->outlier) << "seed " << seed << " z " << v->z;
      } else {
        ++healthy_judged;
        healthy_flagged += v->outlier ? 1 : 0;
      }
    }
  }
  // z >= 5 on normal peers: a few in ten million; allow one in the 3980 judged.
  EXPECT_LE(healthy_flagged, 1) << "of " << healthy_judged;
}

TEST(PeerOutlier, FewPeersNoVerdictAndTheSideAskedFor) {
  const std::vector<double> few = {1, 1, 1};
  EXPECT_FALSE(peer_outlier(5, few).has_value());
  std::vector<double> peers(10, 100.0);
  peers[3] = 101;
  // Identical peers: the floor (5% of the median) keeps a hair's difference from counting.
  auto near = peer_outlier(103, peers);
  ASSERT_TRUE(near.has_value());
  EXPECT_FALSE(near->outlier);
  EXPECT_TRUE(peer_outlier(10, peers, {.side = Side::kLow})->outlier);
  EXPECT_FALSE(peer_outlier(10, peers, {.side = Side::kHigh})->outlier);
  EXPECT_FALSE(peer_outlier(NAN, peers).has_value());
  const std::vector<double> none = {NAN, INFINITY};
  EXPECT_FALSE(peer_outlier(1, none, {.min_peers = 0}).has_value());
}

// Ten temperature sensors at one site, sharing its daily swing of 8 degrees, each with its
// own small offset and noise of 0.2; one drifts 0.01 degree a sample from sample 300.
TEST(PeerDrift, ASensorDriftingFromItsSitePeersIsFlaggedAndThePeersAreNot) {
  int false_flags = 0;
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    std::mt19937_64 rng(seed);
    std::normal_distribution<double> noise(0, 0.2);
    std::uniform_real_distribution<double> offset(-0.5, 0.5);
    std::vector<double> offsets(10);
    for (double& o : offsets) o = offset(rng);
    std::vector<PeerDrift> drift(10);
    std::vector<bool> flagged(10, false);
    int flagged_at = -1;
    for (int t = 0; t < 2000; ++t) {
      const double site = 20 + 8 * std::sin(2 * M_PI * t / 288.0);
      std::vector<double> readings(10);
      for (size_t k = 0; k < 10; ++k) readings[k] = site + offsets[k] + noise(rng);
      if (t >= 300) readings[4] += 0.01 * (t - 300);
      for (size_t k = 0; k < 10; ++k) {
        // Its peers without it.
        std::vector<double> others;
        for (size_t j = 0; j < 10; ++j)
          if (j != k) others.push_back(readings[j]);
        const auto v = drift[k].observe(readings[k], peer_reference(others));
        if (k == 4 && v.drifting && flagged_at < 0) flagged_at = t;
        if (k != 4 && v.drifting && !flagged[k]) {
          flagged[k] = true;
          ++false_flags;
        }
      }
    }
    ASSERT_GE(flagged_at, 300) << "seed " << seed;
    // 0.01 a sample against noise of 0.2 (a little more with the peers'): two sigmas after
    // about 40 samples, and the CUSUM's decision (15) some dozen later.
    EXPECT_LE(flagged_at, 300 + 80) << "seed " << seed;
  }
  EXPECT_EQ(false_flags, 0) << "healthy sensors flagged, of 180";
}

// After a recalibration, reset() learns the sensor's offset anew: the old one is not held
// against it.
TEST(PeerDrift, AResetSettlesAgain) {
  PeerDrift d;
  std::mt19937_64 rng(3);
  std::normal_distribution<double> noise(0, 0.2);
  for (int t = 0; t < 200; ++t) d.observe(22 + noise(rng), 20);  // runs 2 degrees warm
  for (int t = 0; t < 200 && !d.observe(20 + noise(rng), 20).drifting; ++t) {
  }
  EXPECT_TRUE(d.observe(20, 20).drifting);  // recalibrated: 2 degrees off what it learnt
  d.reset();
  bool drifting = false;
  for (int t = 0; t < 1000; ++t) drifting = drifting || d.observe(20 + noise(rng), 20).drifting;
  EXPECT_FALSE(drifting);
  EXPECT_TRUE(d.observe(20, NAN).settling == false);
}

TEST(RebootLoop, BootsCloseTogetherAreALoopAndSpreadOutAreNot) {
  std::vector<Timestamp> loop;
  for (int i = 0; i < 5; ++i) loop.push_back(minute(100 + 5 * i));
  loop.push_back(minute(0));
  const RebootLoop a = reboot_loop(loop, minutes(30), 3);
  EXPECT_TRUE(a.looping);
  EXPECT_EQ(a.most_in_window, 5u);
  std::vector<Timestamp> daily;
  for (int i = 0; i < 10; ++i) daily.push_back(minute(i * 24 * 60));
  EXPECT_FALSE(reboot_loop(daily, hours(1), 3).looping);
  EXPECT_FALSE(reboot_loop({}, hours(1), 0).looping);
  EXPECT_FALSE(reboot_loop(loop, Duration{0}, 0).looping);  // no window: nothing to count
}

TEST(Frozen, AValueThatStopsChangingIsFrozenSinceItStopped) {
  std::vector<TimedValue> v;
  for (int i = 0; i < 60; ++i) v.push_back({minute(i), 20.0 + (i % 3) * 0.1});
  for (int i = 60; i < 200; ++i) v.push_back({minute(i), 21.5});
  const Frozen f = frozen(v, hours(2));
  EXPECT_TRUE(f.frozen);
  EXPECT_EQ(f.since, minute(60));
  EXPECT_FALSE(frozen(v, hours(3)).frozen);  // 139 minutes only
  v.push_back({minute(200), 21.6});
  EXPECT_FALSE(frozen(v, minutes(1)).frozen);
  EXPECT_TRUE(frozen(v, minutes(130), 0.2).frozen);  // within a tolerance of 0.2
  EXPECT_FALSE(frozen({}, minutes(1)).frozen);
}

}  // namespace
}  // namespace drover::health

namespace drover::health {
namespace {

// The two-step form (the peers' spread once, then each device against it) gives what
// peer_outlier gives, device by device, and no spread with too few finite peers.
TEST(PeerOutlier, TheSpreadOnceThenEachDeviceGivesTheSameVerdicts) {
  std::mt19937_64 rng(11);
  std::normal_distribution<double> drain(1.0, 0.1);
  std::vector<double> peers(60);
  for (double& p : peers) p = drain(rng);
  peers[7] = 2.1;
  const PeerOptions o{.threshold = 5, .side = Side::kHigh, .relative_floor = 0.2};
  const auto spread = peer_spread(peers, o);
  ASSERT_TRUE(spread.has_value());
  EXPECT_EQ(spread->peers, 60u);
  size_t flagged = 0;
  for (double p : peers) {
    const auto one = peer_outlier(p, peers, o);
    ASSERT_TRUE(one.has_value());
    const PeerVerdict two = judge_against(p, *spread, o);
    EXPECT_DOUBLE_EQ(one->z, two.z);
    EXPECT_EQ(one->outlier, two.outlier);
    flagged += two.outlier ? 1 : 0;
  }
  EXPECT_EQ(flagged, 1u);  // 2.1 against about 1.0, the spread at least 0.2: z about 5.5
  const std::vector<double> few = {1.0, 1.1, std::nan(""), 0.9, 1.0, 1.2, 1.0, 0.95};
  EXPECT_FALSE(peer_spread(few, o).has_value());  // 7 finite, fewer than 8
}

}  // namespace
}  // namespace drover::health
