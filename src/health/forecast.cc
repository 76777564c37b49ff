#include "health/forecast.h"

#include <array>
#include <boost/math/distributions/students_t.hpp>
#include <cmath>
#include <limits>

namespace drover::health {
namespace {

// Student's t two-sided quantile for `dof` degrees of freedom at `confidence`; the last few
// asked are remembered (a fleet's forecasts ask the same ones over and over, and the
// quantile costs microseconds).
double t_quantile(double dof, double confidence) {
  struct Known {
    double dof = -1, confidence = -1, t = 0;
  };
  thread_local std::array<Known, 8> known{};
  thread_local size_t next = 0;
  for (const Known& k : known)
    if (k.dof == dof && k.confidence == confidence) return k.t;
  const boost::math::students_t dist(dof);
  const double t = boost::math::quantile(boost::math::complement(dist, (1 - confidence) / 2));
  known[next] = {dof, confidence, t};
  next = (next + 1) % known.size();
  return t;
}

// The least-squares line through the values, in hours since the first (which keeps the sums
// well conditioned).
struct Line {
  Timestamp origin{};
  double mean_x = 0, mean_y = 0, sxx = 0, slope = 0;
  double hours_of(Timestamp t) const {
    return static_cast<double>((t - origin).count()) / 3'600'000.0;
  }
};

std::optional<Line> fit(std::span<const TimedValue> window) {
  const size_t n = window.size();
  if (n < 2) return std::nullopt;
  Line line;
  line.origin = window.front().at;
  for (const TimedValue& p : window) {
    if (!std::isfinite(p.value)) return std::nullopt;
    line.mean_x += line.hours_of(p.at);
    line.mean_y += p.value;
  }
  line.mean_x /= static_cast<double>(n);
  line.mean_y /= static_cast<double>(n);
  double sxy = 0;
  for (const TimedValue& p : window) {
    const double dx = line.hours_of(p.at) - line.mean_x;
    line.sxx += dx * dx;
    sxy += dx * (p.value - line.mean_y);
  }
  if (!(line.sxx > 0)) return std::nullopt;
  line.slope = sxy / line.sxx;
  if (!std::isfinite(line.slope)) return std::nullopt;
  return line;
}

}  // namespace

std::optional<double> slope_per_hour(std::span<const TimedValue> values) {
  auto line = fit(values);
  if (!line) return std::nullopt;
  return line->slope;
}

std::optional<Crossing> forecast_crossing(std::span<const TimedValue> window, double limit,
                                          Timestamp now, const ForecastOptions& options) {
  const size_t n = window.size();
  if (n < std::max<size_t>(3, options.min_points)) return std::nullopt;
  if (!(options.confidence > 0 && options.confidence < 1)) return std::nullopt;
  const auto line = fit(window);
  if (!line) return std::nullopt;
  const double mean_x = line->mean_x;
  const double mean_y = line->mean_y;
  const double sxx = line->sxx;
  const double slope = line->slope;
  auto hours_of = [&line](Timestamp t) { return line->hours_of(t); };
  double sse = 0;
  for (const TimedValue& p : window) {
    const double fit = mean_y + slope * (hours_of(p.at) - mean_x);
    sse += (p.value - fit) * (p.value - fit);
  }
  const double dof = static_cast<double>(n - 2);
  const double s2 = sse / dof;
  const double se_slope = std::sqrt(s2 / sxx);
  const double x_now = hours_of(now);
  const double level_now = mean_y + slope * (x_now - mean_x);
  // The line's level now is uncertain too (more so the further now is from the values).
  const double se_level =
      std::sqrt(s2 * (1.0 / static_cast<double>(n) + (x_now - mean_x) * (x_now - mean_x) / sxx));
  const double t = t_quantile(dof, options.confidence);

  const double gap = limit - level_now;  // how far the line has to go
  if (!std::isfinite(slope) || !std::isfinite(gap) || !std::isfinite(se_slope) ||
      !std::isfinite(se_level)) {
    return std::nullopt;  // values so large that their sums overflowed
  }
  if (gap == 0 || (gap > 0) != (slope > 0) || slope == 0) return std::nullopt;
  if ((options.toward == Toward::kUp && gap < 0) || (options.toward == Toward::kDown && gap > 0))
    return std::nullopt;  // the limit is on the other side: past it already
  const double slope_lo = std::fabs(slope) - t * se_slope;  // the slowest it may be heading
  if (options.require_significant && slope_lo <= 0) return std::nullopt;
  const double slope_hi = std::fabs(slope) + t * se_slope;
  // The nearest and farthest the limit may be, with the level's own interval.
  const double near = std::max(0.0, std::fabs(gap) - t * se_level);
  const double far = std::fabs(gap) + t * se_level;

  Crossing c;
  c.points = static_cast<uint32_t>(n);
  c.slope_per_hour = slope;
  c.level_now = level_now;
  auto to_duration = [](double hours) {
    if (!(hours >= 0)) hours = 0;  // NaN cannot come here; kept safe all the same
    return Duration(static_cast<int64_t>(std::min(hours, 1e9) * 3'600'000.0));
  };
  c.expected = to_duration(std::fabs(gap) / std::fabs(slope));
  c.earliest = to_duration(near / slope_hi);
  c.latest_s = slope_lo > 0 ? far / slope_lo * 3600.0 : std::numeric_limits<double>::infinity();
  return c;
}

}  // namespace drover::health
