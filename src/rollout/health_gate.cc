#include "rollout/health_gate.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "rollout/gates.h"

namespace drover {
namespace {

// Under no change the updated device is the worse of a pair half the time. The alternatives
// span a small effect (60% of pairs worse: found after a few hundred pairs) to a gross one
// (95%: after a dozen or two); the mixture costs ln 5 = 1.6 nats.
const FailureTest& sign_test() {
  static const FailureTest test(0.5, {0.6, 0.7, 0.8, 0.9, 0.95});
  return test;
}

double median_of(std::vector<double>& v) {
  if (v.empty()) return std::numeric_limits<double>::quiet_NaN();
  const size_t mid = v.size() / 2;
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(mid), v.end());
  const double upper = v[mid];
  if (v.size() % 2 == 1) return upper;
  const double lower = *std::max_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(mid));
  return (lower + upper) / 2;
}

// The largest k (1-based) with P(Binomial(n, 1/2) < k) <= 0.025: the 95% interval for the
// median of n values is [x_(k), x_(n+1-k)]. 0 when there is none (n < 6).
int64_t interval_rank(int64_t n) {
  double below = 0;  // P(X < k), built up term by term
  int64_t k = 0;
  for (int64_t j = 0; j < n; ++j) {
    const double p_j = std::exp(log_choose(n, j) - static_cast<double>(n) * std::log(2.0));
    if (below + p_j > 0.025) break;
    below += p_j;
    k = j + 1;
  }
  return k;
}

}  // namespace

void HealthTally::add(const HealthPair& p, HealthDirection direction, int64_t sign) {
  if (!std::isfinite(p.updated) || !std::isfinite(p.control)) return;
  const double d = p.updated - p.control;
  if (d == 0) {
    ties += sign;
    return;
  }
  informative += sign;
  if ((d > 0) == (direction == HealthDirection::kHigherIsWorse)) worse += sign;
}

double health_log_evidence(int64_t worse, int64_t informative) {
  return sign_test().log_evidence(worse, informative);
}

HealthEffect judge_health(std::span<const HealthPair> pairs, HealthDirection direction) {
  HealthEffect out;
  std::vector<double> differences, updated, control;
  differences.reserve(pairs.size());
  HealthTally tally;
  for (const HealthPair& p : pairs) {
    if (!std::isfinite(p.updated) || !std::isfinite(p.control)) continue;
    ++out.pairs;
    differences.push_back(p.updated - p.control);
    updated.push_back(p.updated);
    control.push_back(p.control);
    tally.add(p, direction);
  }
  out.worse = tally.worse;
  out.ties = tally.ties;
  out.log_evidence = health_log_evidence(out.worse, tally.informative);
  out.updated_median = median_of(updated);
  out.control_median = median_of(control);
  const int64_t n = out.pairs;
  if (n == 0) return out;
  std::sort(differences.begin(), differences.end());
  if (const int64_t k = interval_rank(n); k > 0) {
    out.shift_low = differences[static_cast<size_t>(k - 1)];
    out.shift_high = differences[static_cast<size_t>(n - k)];
  }
  out.shift = median_of(differences);  // reorders them
  return out;
}

}  // namespace drover
