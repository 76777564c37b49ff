#include "rollout/gates.h"

#include <algorithm>
#include <cmath>

namespace drover {

double normal_quantile_two_sided(double confidence) {
  // Inverse of the standard normal CDF at p = (1 + confidence) / 2, by Acklam's rational
  // approximation refined with one Halley step (relative error well below 1e-9).
  const double p = (1.0 + confidence) / 2.0;
  static const double a[] = {-3.969683028665376e+01, 2.209460984245205e+02,  -2.759285104469687e+02,
                             1.383577518672690e+02,  -3.066479806614716e+01, 2.506628277459239e+00};
  static const double b[] = {-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
                             6.680131188771972e+01, -1.328068155288572e+01};
  static const double c[] = {-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
                             -2.549732539343734e+00, 4.374664141464968e+00,  2.938163982698783e+00};
  static const double d[] = {7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00,
                             3.754408661907416e+00};
  const double p_high = 1 - 0.02425;
  double x = 0;
  if (p > p_high) {
    const double q = std::sqrt(-2 * std::log(1 - p));
    x = -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
        ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  } else {
    const double q = p - 0.5;
    const double r = q * q;
    x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
        (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
  }
  const double e = 0.5 * std::erfc(-x / std::sqrt(2.0)) - p;
  const double u = e * std::sqrt(2 * M_PI) * std::exp(x * x / 2);
  return x - u / (1 + x * u / 2);
}

Interval wilson_interval(uint32_t failures, uint32_t n, double z) {
  if (n == 0) return {0, 1};
  const double nn = n;
  const double p = failures / nn;
  const double z2 = z * z;
  const double denom = 1 + z2 / nn;
  const double centre = (p + z2 / (2 * nn)) / denom;
  const double half = z * std::sqrt(p * (1 - p) / nn + z2 / (4 * nn * nn)) / denom;
  return {std::max(0.0, centre - half), std::min(1.0, centre + half)};
}

GateVerdict judge(uint32_t failures, uint32_t n, double max_failure_rate, double confidence,
                  uint32_t min_sample) {
  GateVerdict v;
  v.rate = n == 0 ? 0 : static_cast<double>(failures) / n;
  if (n < min_sample || n == 0) return v;
  v.judged = true;
  v.bounds = wilson_interval(failures, n, normal_quantile_two_sided(confidence));
  v.failed = v.bounds.lower > max_failure_rate;
  return v;
}

}  // namespace drover
