#include "rollout/gates.h"

#include <gtest/gtest.h>

namespace drover {
namespace {

TEST(Gates, NormalQuantile) {
  EXPECT_NEAR(normal_quantile_two_sided(0.95), 1.959964, 1e-5);
  EXPECT_NEAR(normal_quantile_two_sided(0.99), 2.575829, 1e-5);
  EXPECT_NEAR(normal_quantile_two_sided(0.90), 1.644854, 1e-5);
}

TEST(Gates, WilsonIntervalKnownValues) {
  // 1 failure in 10 at 95%: [0.0179, 0.4042].
  auto i = wilson_interval(1, 10, 1.959964);
  EXPECT_NEAR(i.lower, 0.01787, 1e-4);
  EXPECT_NEAR(i.upper, 0.40415, 1e-4);
  auto none = wilson_interval(0, 20, 1.959964);
  EXPECT_DOUBLE_EQ(none.lower, 0);
  EXPECT_NEAR(none.upper, 0.16113, 1e-4);
  auto empty = wilson_interval(0, 0, 1.96);
  EXPECT_EQ(empty.lower, 0);
  EXPECT_EQ(empty.upper, 1);
}

TEST(Gates, JudgesOnlyWithEnoughSampleAndConfidence) {
  EXPECT_FALSE(judge(5, 5, 0.05, 0.95, 10).judged);  // too few outcomes
  EXPECT_TRUE(judge(9, 10, 0.05, 0.95, 10).failed);
  EXPECT_FALSE(judge(1, 100, 0.05, 0.95, 10).failed);  // 1% is within a 5% limit
  // 6 of 100 is above 5% but not with 95% confidence.
  auto v = judge(6, 100, 0.05, 0.95, 10);
  EXPECT_TRUE(v.judged);
  EXPECT_FALSE(v.failed);
  EXPECT_TRUE(judge(30, 100, 0.05, 0.95, 10).failed);
}

}  // namespace
}  // namespace drover
