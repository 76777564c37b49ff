#include "rollout/gates.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

namespace drover {
namespace {

TEST(FailureTest, MixesDoublingAlternativesFromTheLimit) {
  FailureTest t(0.025, 0.05);
  const std::vector<double> want{0.05, 0.1, 0.2, 0.4, 0.8};
  ASSERT_EQ(t.alternatives().size(), want.size());
  for (size_t k = 0; k < want.size(); ++k) EXPECT_NEAR(t.alternatives()[k], want[k], 1e-12);
  EXPECT_EQ(FailureTest(0.3, 0.6).alternatives().size(), 1u);
}

TEST(FailureTest, EvidenceIsTheLogOfTheMeanLikelihoodRatio) {
  FailureTest t(0.025, 0.05);
  EXPECT_DOUBLE_EQ(t.log_evidence(0, 0), 0);
  // 3 failures in 10, computed by hand over the five alternatives.
  double sum = 0;
  for (double q : {0.05, 0.1, 0.2, 0.4, 0.8}) {
    sum += std::pow(q / 0.025, 3) * std::pow((1 - q) / 0.975, 7);
  }
  EXPECT_NEAR(t.log_evidence(3, 10), std::log(sum / 5), 1e-9);
  // More failures raise it; more successes lower it.
  EXPECT_GT(t.log_evidence(4, 10), t.log_evidence(3, 10));
  EXPECT_LT(t.log_evidence(3, 20), t.log_evidence(3, 10));
  // Large counts stay finite (no overflow in the ratio).
  EXPECT_TRUE(std::isfinite(t.log_evidence(50'000, 1'000'000)));
  EXPECT_TRUE(std::isfinite(t.log_evidence(0, 1'000'000)));
}

// The guarantee the gates rest on: looked at after every outcome, the test reaches
// ln(1/alpha) with probability at most alpha when the true rate is the acceptable one, and
// reaches it soon when the rate is twice the limit. 4,000 seeded sequences each.
TEST(FailureTest, AlwaysValidAtTheAcceptableRateAndPowerfulAboveTheLimit) {
  const FailureTest t(0.025, 0.05);
  const double alpha = 0.05;
  const double limit = -std::log(alpha);
  auto crossing_rate = [&](double p, int outcomes, uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::bernoulli_distribution fails(p);
    int crossed = 0;
    const int runs = 4000;
    for (int run = 0; run < runs; ++run) {
      int64_t f = 0;
      for (int n = 1; n <= outcomes; ++n) {
        f += fails(rng) ? 1 : 0;
        if (t.log_evidence(f, n) >= limit) {
          ++crossed;
          break;
        }
      }
    }
    return static_cast<double>(crossed) / runs;
  };
  // At the acceptable rate: at most alpha, with room for sampling noise (sd 0.0034).
  EXPECT_LE(crossing_rate(0.025, 1500, 1), alpha + 0.01);
  // Far below it, much less.
  EXPECT_LE(crossing_rate(0.01, 1500, 2), 0.005);
  // At twice the limit, nearly always within 300 outcomes.
  EXPECT_GE(crossing_rate(0.10, 300, 3), 0.95);
}

TEST(WorseThanRest, FishersExactTestOneSided) {
  // 5 of 5 failed against 0 of 5: 1 / C(10, 5).
  EXPECT_NEAR(worse_than_rest_p(5, 5, 0, 5), 1.0 / 252, 1e-12);
  // 3 of 5 against 0 of 5: C(5,3) C(5,0) / C(10,3).
  EXPECT_NEAR(worse_than_rest_p(3, 5, 0, 5), 10.0 / 120, 1e-12);
  // The same rate on both sides is no evidence.
  EXPECT_GT(worse_than_rest_p(5, 100, 50, 1000), 0.4);
  // Better than the rest: near 1.
  EXPECT_GT(worse_than_rest_p(0, 100, 50, 1000), 0.99);
  // A clear difference in large groups.
  EXPECT_LT(worse_than_rest_p(30, 300, 12, 1200), 1e-8);
  // Large fleets: far in the tail, and the loop stops once the terms underflow.
  EXPECT_LT(worse_than_rest_p(30'000, 300'000, 100, 300'000), 1e-12);
  EXPECT_NEAR(worse_than_rest_p(3'000, 300'000, 3'000, 300'000), 0.5, 0.02);
  // Nothing to compare with.
  EXPECT_EQ(worse_than_rest_p(3, 5, 0, 0), 1);
  EXPECT_EQ(worse_than_rest_p(0, 0, 3, 5), 1);
}

}  // namespace
}  // namespace drover
