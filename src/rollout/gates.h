// The statistics behind rollout gates; the procedure, its guarantee and its assumptions are
// written down in docs/gates.md.
#pragma once

#include <cstdint>
#include <vector>

namespace drover {

// What a group of deployments tells its gate. `exposed` counts every deployment that was
// offered the update (finished or not); `finished` those with a known outcome; `failures`
// those whose outcome was a failure. A deployment still in flight is counted by the test as
// a success until it reports, which keeps the guarantee whatever order outcomes arrive in.
struct GateCounts {
  int64_t exposed = 0;
  int64_t finished = 0;
  int64_t failures = 0;
  GateCounts& operator+=(const GateCounts& o);
  GateCounts& operator-=(const GateCounts& o);
  friend GateCounts operator-(GateCounts a, const GateCounts& b) { return a -= b; }
  friend bool operator==(const GateCounts&, const GateCounts&) = default;
};

// ln (n choose k), safe on any thread (std::lgamma writes a global sign).
double log_choose(int64_t n, int64_t k);

// A mixture sequential probability ratio test of "the true failure rate is at most
// `acceptable`" against "it is `limit` or more". The alternative is a mixture, with equal
// weights, of the rates limit, 2 limit, 4 limit, ... (below 1), so that a rate far above
// the limit is caught after a handful of outcomes and one just above it after enough.
// Under the null hypothesis the mixture likelihood ratio is a nonnegative supermartingale,
// so by Ville's inequality it ever reaches 1/alpha with probability at most alpha: the
// test may be looked at after every outcome without inflating its error.
class FailureTest {
 public:
  // Meant for 0 < acceptable < limit < 1; rates outside are clamped into it.
  FailureTest(double acceptable, double limit);
  // The same test with the alternatives given (each above `acceptable` and below 1; others
  // are left out, and at least one must be left): the health gates' sign test mixes rates
  // far apart that no doubling reaches.
  FailureTest(double acceptable, const std::vector<double>& alternatives);

  // The natural logarithm of the mixture likelihood ratio after `failures` among `exposed`
  // deployments (every deployment not failed counted as a success).
  double log_evidence(int64_t failures, int64_t exposed) const;
  // The alternative rates mixed.
  std::vector<double> alternatives() const;

 private:
  struct Alternative {
    double rate;
    double log_failure;  // ln(rate / acceptable)
    double log_success;  // ln((1 - rate) / (1 - acceptable))
  };
  std::vector<Alternative> alternatives_;
};

// Fisher's exact test, one-sided: the probability that a group with `exposed` deployments
// out of `exposed + rest_exposed` holds `failures` or more of the `failures + rest_failures`
// failures, were failures spread at random. Small values say the group is worse than the
// rest. 1 when either side is empty.
double worse_than_rest_p(int64_t failures, int64_t exposed, int64_t rest_failures,
                         int64_t rest_exposed);

}  // namespace drover
