#include "rollout/gates.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "base/result.h"

namespace drover {

GateCounts& GateCounts::operator+=(const GateCounts& o) {
  exposed += o.exposed;
  finished += o.finished;
  failures += o.failures;
  return *this;
}

GateCounts& GateCounts::operator-=(const GateCounts& o) {
  exposed -= o.exposed;
  finished -= o.finished;
  failures -= o.failures;
  return *this;
}

FailureTest::FailureTest(double acceptable, double limit) {
  // Plans are validated before they get here; a rate outside the bounds is still kept
  // inside them rather than looping or dividing by zero.
  limit = std::clamp(limit, 1e-6, 0.999);
  acceptable = std::clamp(acceptable, 1e-7, limit * 0.999);
  // Doubling steps up to the last below 1 (which is at least 1/2): each alternative is
  // within a factor of two of any rate in [limit, 1), which keeps the power near that of the
  // best single alternative; the mixture costs ln(number of alternatives) nats, 1.6 for a
  // 5% limit (0.05, 0.1, 0.2, 0.4, 0.8).
  for (int doublings = 0; std::ldexp(limit, doublings) < 1; ++doublings) {
    const double q = std::ldexp(limit, doublings);  // limit * 2^doublings, exactly
    alternatives_.push_back({q, std::log(q / acceptable), std::log((1 - q) / (1 - acceptable))});
  }
}

FailureTest::FailureTest(double acceptable, const std::vector<double>& alternatives) {
  acceptable = std::clamp(acceptable, 1e-7, 0.999);
  for (const double q : alternatives) {
    if (!(q > acceptable && q < 1)) continue;
    alternatives_.push_back({q, std::log(q / acceptable), std::log((1 - q) / (1 - acceptable))});
  }
  // A test with nothing to test against could never halt: a programming error, not a plan's.
  DROVER_CHECK(!alternatives_.empty());
}

double FailureTest::log_evidence(int64_t failures, int64_t exposed) const {
  const auto f = static_cast<double>(std::max<int64_t>(failures, 0));
  const auto s = static_cast<double>(std::max<int64_t>(exposed - failures, 0));
  auto log_ratio = [&](const Alternative& a) { return f * a.log_failure + s * a.log_success; };
  double best = -std::numeric_limits<double>::infinity();
  for (const Alternative& a : alternatives_) best = std::max(best, log_ratio(a));
  double sum = 0;
  for (const Alternative& a : alternatives_) sum += std::exp(log_ratio(a) - best);
  return best + std::log(sum / static_cast<double>(alternatives_.size()));
}

std::vector<double> FailureTest::alternatives() const {
  std::vector<double> out;
  for (const Alternative& a : alternatives_) out.push_back(a.rate);
  return out;
}

namespace {
// ln Gamma without the global sign variable std::lgamma writes (the engine judges from
// several threads' calls).
double log_gamma(double x) {
  int sign = 0;
  return ::lgamma_r(x, &sign);
}
}  // namespace

double log_choose(int64_t n, int64_t k) {
  return log_gamma(static_cast<double>(n) + 1) - log_gamma(static_cast<double>(k) + 1) -
         log_gamma(static_cast<double>(n - k) + 1);
}

double worse_than_rest_p(int64_t failures, int64_t exposed, int64_t rest_failures,
                         int64_t rest_exposed) {
  if (exposed <= 0 || rest_exposed <= 0) return 1;
  failures = std::clamp<int64_t>(failures, 0, exposed);
  rest_failures = std::clamp<int64_t>(rest_failures, 0, rest_exposed);
  const int64_t population = exposed + rest_exposed;
  const int64_t marked = failures + rest_failures;
  // X ~ Hypergeometric(population, marked, exposed); P(X >= failures).
  const int64_t top = std::min(marked, exposed);
  const double log_all = log_choose(population, exposed);
  // Past the mode the terms only shrink: stop once they no longer matter (or underflow).
  const int64_t mode = (exposed + 1) * (marked + 1) / (population + 2);
  double p = 0;
  for (int64_t x = failures; x <= top; ++x) {
    const double term =
        std::exp(log_choose(marked, x) + log_choose(population - marked, exposed - x) - log_all);
    p += term;
    if (x >= mode && term <= p * 1e-12) break;
  }
  return std::min(1.0, p);
}

}  // namespace drover
