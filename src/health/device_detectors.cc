#include "health/device_detectors.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <vector>

namespace drover::health {
namespace {

double median_of(std::vector<double>& v) {
  const auto mid = v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2);
  std::nth_element(v.begin(), mid, v.end());
  if (v.size() % 2 == 1) return *mid;
  const double upper = *mid;
  const double lower = *std::max_element(v.begin(), mid);
  return (lower + upper) / 2;
}

constexpr double kMadToSigma = 1.4826;  // the MAD of normal values is 0.674 sigma

}  // namespace

std::optional<PeerSpread> peer_spread(std::span<const double> peers, const PeerOptions& options) {
  if (peers.size() < options.min_peers) return std::nullopt;
  std::vector<double> v;
  v.reserve(peers.size());
  for (double p : peers)
    if (std::isfinite(p)) v.push_back(p);
  if (v.empty() || v.size() < options.min_peers) return std::nullopt;
  PeerSpread out;
  out.peers = v.size();
  out.median = median_of(v);
  for (double& p : v) p = std::fabs(p - out.median);
  const double mad = median_of(v);
  out.spread = std::max(
      {mad * kMadToSigma, options.relative_floor * std::fabs(out.median), options.min_spread});
  return out;
}

PeerVerdict judge_against(double value, const PeerSpread& peers, const PeerOptions& options) {
  PeerVerdict out;
  out.median = peers.median;
  out.spread = peers.spread;
  out.z = (value - out.median) / out.spread;
  switch (options.side) {
    case Side::kHigh:
      out.outlier = out.z >= options.threshold;
      break;
    case Side::kLow:
      out.outlier = out.z <= -options.threshold;
      break;
    case Side::kBoth:
      out.outlier = std::fabs(out.z) >= options.threshold;
      break;
  }
  return out;
}

std::optional<PeerVerdict> peer_outlier(double value, std::span<const double> peers,
                                        const PeerOptions& options) {
  if (!std::isfinite(value)) return std::nullopt;
  auto spread = peer_spread(peers, options);
  if (!spread) return std::nullopt;
  return judge_against(value, *spread, options);
}

namespace {

// The peers within 3 spreads of their median (the spread: the MAD as a standard deviation):
// their sum and count, and the median (NaN for no finite peer).
struct Inliers {
  double sum = 0;
  size_t n = 0;
  double median = NAN;
  double band = 0;
  bool holds(double x) const { return std::fabs(x - median) <= band; }
  double mean() const { return n == 0 ? median : sum / static_cast<double>(n); }
};

Inliers inliers_of(std::span<const double> peers) {
  Inliers out;
  std::vector<double> work;
  work.reserve(peers.size());
  for (double p : peers)
    if (std::isfinite(p)) work.push_back(p);
  if (work.empty()) return out;
  out.median = median_of(work);
  for (double& x : work) x = std::fabs(x - out.median);
  out.band = 3 * kMadToSigma * median_of(work);
  for (double x : peers) {
    if (std::isfinite(x) && out.holds(x)) {
      out.sum += x;
      ++out.n;
    }
  }
  return out;
}

}  // namespace

double peer_reference(std::span<const double> peers) { return inliers_of(peers).mean(); }

PeerDrift::PeerDrift() : PeerDrift(Options{}) {}
PeerDrift::PeerDrift(Options options) : o_(options) {}

void PeerDrift::reset() { *this = PeerDrift(o_); }

PeerDrift::Verdict PeerDrift::observe(double value, double peers_median) {
  Verdict v;
  const double raw = value - peers_median;
  if (!std::isfinite(raw)) {
    v.settling = n_ < o_.settle;
    v.up = up_;
    v.down = down_;
    v.drifting = drifting_;
    return v;
  }
  if (n_ < o_.settle) {
    // Welford: the device's usual offset from its peers and the spread about it.
    ++n_;
    const double delta = raw - offset_;
    offset_ += delta / n_;
    m2_ += delta * (raw - offset_);
    sigma_ = n_ > 1 ? std::sqrt(m2_ / (n_ - 1)) : 0;
    v.residual = raw - offset_;
    return v;
  }
  v.settling = false;
  const double sigma = std::max(sigma_, 1e-9 + 1e-6 * std::fabs(peers_median));
  v.residual = raw - offset_;
  const double z = v.residual / sigma;
  up_ = std::min(std::max(0.0, up_ + z - o_.cusum_k), o_.cusum_cap);
  down_ = std::min(std::max(0.0, down_ - z - o_.cusum_k), o_.cusum_cap);
  drifting_ = drifting_ || up_ >= o_.cusum_h || down_ >= o_.cusum_h;
  v.up = up_;
  v.down = down_;
  v.drifting = drifting_;
  return v;
}

RebootLoop reboot_loop(std::span<const Timestamp> boots, Duration window, uint32_t max) {
  std::vector<Timestamp> t(boots.begin(), boots.end());
  std::sort(t.begin(), t.end());
  RebootLoop out;
  if (window <= Duration{0}) return out;
  size_t first = 0;
  for (size_t last = 0; last < t.size(); ++last) {
    while (t[last] - t[first] >= window) ++first;
    out.most_in_window = std::max(out.most_in_window, static_cast<uint32_t>(last - first + 1));
  }
  out.looping = out.most_in_window > max;
  return out;
}

Frozen frozen(std::span<const TimedValue> values, Duration at_least, double tolerance) {
  Frozen out;
  if (values.empty()) return out;
  const TimedValue& newest = values.back();
  if (!std::isfinite(newest.value)) return out;
  // Back from the newest value while the values stay within `tolerance` of it.
  size_t first = values.size() - 1;
  while (first > 0 && std::isfinite(values[first - 1].value) &&
         std::fabs(values[first - 1].value - newest.value) <= tolerance) {
    --first;
  }
  out.since = values[first].at;
  out.frozen = newest.at - out.since >= at_least;
  return out;
}

Frozen frozen_ranges(std::span<const ValueRange> ranges, Duration at_least, double tolerance) {
  Frozen out;
  if (ranges.empty()) return out;
  const ValueRange& newest = ranges.back();
  const double v = (newest.min + newest.max) / 2;
  const auto holds = [v, tolerance](const ValueRange& r) {
    return std::isfinite(r.min) && std::isfinite(r.max) && r.min >= v - tolerance &&
           r.max <= v + tolerance;
  };
  if (!std::isfinite(v) || !holds(newest)) return out;
  size_t first = ranges.size() - 1;
  while (first > 0 && holds(ranges[first - 1])) --first;
  out.since = ranges[first].at;
  out.frozen = newest.at - out.since >= at_least;
  return out;
}

std::vector<SensorDrift> drift_among(std::span<const std::span<const TimedValue>> sensors,
                                     Duration bucket, uint32_t min_peers,
                                     PeerDrift::Options options) {
  const size_t n = sensors.size();
  std::vector<SensorDrift> out(n);
  const int64_t width = bucket.count();
  if (n == 0 || width <= 0) return out;
  // Each bucket's mean of each sensor (NaN: none), by the bucket's start.
  std::map<int64_t, std::vector<double>> grid;
  for (size_t i = 0; i < n; ++i) {
    int64_t current = INT64_MIN;
    double sum = 0;
    uint32_t count = 0;
    auto flush = [&] {
      if (count == 0) return;
      auto [it, fresh] = grid.try_emplace(current);
      if (fresh) it->second.assign(n, NAN);
      it->second[i] = sum / count;
    };
    for (const TimedValue& v : sensors[i]) {
      if (!std::isfinite(v.value)) continue;
      const int64_t ms = v.at.time_since_epoch().count();
      const int64_t start = ms - ((ms % width) + width) % width;
      if (start != current) {
        flush();
        current = start;
        sum = 0;
        count = 0;
      }
      sum += v.value;
      ++count;
    }
    flush();
  }
  std::vector<PeerDrift> drift(n, PeerDrift(options));
  std::vector<size_t> panel;  // this bucket's: the first kDriftPanel sensors with a value
  std::vector<double> of_panel;
  for (const auto& [start, means] : grid) {
    panel.clear();
    of_panel.clear();
    for (size_t i = 0; i < n && panel.size() < kDriftPanel; ++i) {
      if (!std::isfinite(means[i])) continue;
      panel.push_back(i);
      of_panel.push_back(means[i]);
    }
    // A panel sensor has one peer fewer; a lone sensor none.
    if (panel.size() < std::max<size_t>(2, size_t{min_peers} + 1)) continue;
    // The panel's robust mean; for a sensor in it, the same without its own value (the band
    // is the whole panel's: one value hardly moves it).
    const Inliers in = inliers_of(of_panel);
    for (size_t i = 0, next = 0; i < n; ++i) {
      if (!std::isfinite(means[i])) continue;
      double reference = in.mean();
      if (next < panel.size() && panel[next] == i) {
        ++next;
        if (in.holds(means[i]) && in.n > 1) {
          reference = (in.sum - means[i]) / static_cast<double>(in.n - 1);
        }
      }
      const PeerDrift::Verdict v = drift[i].observe(means[i], reference);
      SensorDrift& d = out[i];
      ++d.judged;
      d.residual = v.residual;
      // Drifting while a CUSUM stays at the decision: one back in line clears as it falls.
      const bool now_drifting = !v.settling && std::max(v.up, v.down) >= options.cusum_h;
      if (now_drifting && !d.drifting) d.since = Timestamp(Duration(start));
      d.drifting = now_drifting;
    }
  }
  return out;
}

}  // namespace drover::health
