// The statistics behind rollout gates.
#pragma once

#include <cstdint>

namespace drover {

// Two-sided normal quantile z for a confidence level in [0.5, 1), e.g. 0.95 -> 1.96.
double normal_quantile_two_sided(double confidence);

// Bounds of the Wilson score interval for `failures` out of `n` trials at quantile z.
// n == 0 gives [0, 1].
struct Interval {
  double lower;
  double upper;
};
Interval wilson_interval(uint32_t failures, uint32_t n, double z);

struct GateVerdict {
  bool judged = false;  // false until the sample reaches min_sample
  bool failed = false;  // the failure rate exceeds the limit with the given confidence
  double rate = 0;      // observed failure rate
  Interval bounds{0, 1};
};

// Judges one group: fails when n >= min_sample and the Wilson lower bound is above
// max_failure_rate, i.e. we are `confidence`-sure the true failure rate is too high.
GateVerdict judge(uint32_t failures, uint32_t n, double max_failure_rate, double confidence,
                  uint32_t min_sample);

}  // namespace drover
