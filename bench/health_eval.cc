// The generic detector (health/anomaly.h) on the real series of data/nab-subset: how often
// it alarms on each series as it is (no labels: alarms a month), and whether anomalies of
// stated sizes added to the series are found and how soon — a spike, a level shift and a
// drift at 5 seeded positions in the second half of each of the 24 series. Prints the
// figures docs/health.md quotes.
//
// Usage: health_eval [SPIKE_Z BURST_FACTOR CUSUM_H CUSUM_K CUSUM_CLIP]   (defaults:
// AnomalyOptions'; the series' directory is compiled in: data/nab-subset)
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "../tests/telemetry/nab_series.h"
#include "health/anomaly.h"

namespace drover::health {
namespace {

using telemetry::testing::load_nab_series;
using telemetry::testing::strictly_increasing;

Timestamp at_ms(int64_t ms) { return Timestamp(Duration(ms)); }

// The median (of an even count, the mean of the two middle values).
double median_of(std::vector<double> d) {
  std::sort(d.begin(), d.end());
  const size_t n = d.size();
  return n % 2 == 1 ? d[n / 2] : (d[n / 2 - 1] + d[n / 2]) / 2;
}

// The unit the injected anomalies are sized in: the series' standard deviation (bursts and
// all: an anomaly is judged against everything the series does), but at least 2% of its
// median magnitude, the detector's own floor (AnomalyOptions::relative_floor).
double unit_of(const std::vector<double>& v) {
  double mean = 0;
  for (double x : v) mean += x;
  mean /= static_cast<double>(v.size());
  double var = 0;
  std::vector<double> magnitudes;
  for (double x : v) {
    var += (x - mean) * (x - mean);
    magnitudes.push_back(std::fabs(x));
  }
  const double sd = std::sqrt(var / static_cast<double>(v.size()));
  return std::max({sd, 0.02 * median_of(magnitudes), 1e-6});
}

struct Series {
  std::string name;
  std::vector<int64_t> t;
  std::vector<double> v;
};

std::vector<Series> real_series() {
  std::vector<Series> out;
  for (const auto& s : load_nab_series()) {
    Series x{s.name, {}, {}};
    for (const auto& sample : strictly_increasing(s.samples)) {
      x.t.push_back(sample.t_ms);
      x.v.push_back(sample.value);
    }
    out.push_back(std::move(x));
  }
  return out;
}

// The options evaluated: the defaults, or those given on the command line.
AnomalyOptions options;

// Minutes from `from` to the first trigger of `kind` at or after it within `within`, or -1.
double first_alarm(const Series& s, const std::vector<double>& v, size_t from, Duration within,
                   AnomalyKind kind) {
  AnomalyDetector d(options);
  const int64_t start = s.t[from];
  for (size_t i = 0; i < v.size(); ++i) {
    if (s.t[i] - start > within.count()) break;
    const AnomalyVerdict verdict = d.observe(at_ms(s.t[i]), v[i]);
    if (i >= from && verdict.kind == kind) return static_cast<double>(s.t[i] - start) / 60'000.0;
  }
  return -1;
}

}  // namespace
}  // namespace drover::health

int main(int argc, char** argv) {
  using namespace drover::health;
  using drover::Duration;
  using drover::hours;
  // Optional, to try other settings: SPIKE_Z BURST_FACTOR CUSUM_H CUSUM_K CUSUM_CLIP.
  if (argc > 1) options.spike_z = std::atof(argv[1]);
  if (argc > 2) options.burst_factor = std::atof(argv[2]);
  if (argc > 3) options.cusum_h = std::atof(argv[3]);
  if (argc > 4) options.cusum_k = std::atof(argv[4]);
  if (argc > 5) options.cusum_clip = std::atof(argv[5]);
  const std::vector<Series> all = real_series();
  // Alarms per month, each series as it is.
  std::vector<double> per_month;
  for (const Series& s : all) {
    const double months = static_cast<double>(s.t.back() - s.t.front()) / (30.0 * 86'400'000.0);
    AnomalyDetector d(options);
    int by_kind[4] = {0, 0, 0, 0};
    for (size_t i = 0; i < s.v.size(); ++i) {
      const AnomalyVerdict verdict = d.observe(at_ms(s.t[i]), s.v[i]);
      if (verdict.alarm_started) ++by_kind[static_cast<int>(verdict.kind)];
    }
    per_month.push_back(static_cast<double>(d.alarms()) / months);
    std::printf(
        "%-36s %6zu samples %5.1f days %3llu alarms (%d spikes, %d up, %d down) %5.2f a month\n",
        s.name.c_str(), s.v.size(), months * 30, static_cast<unsigned long long>(d.alarms()),
        by_kind[1], by_kind[2], by_kind[3], per_month.back());
  }
  std::vector<double> sorted = per_month;
  std::sort(sorted.begin(), sorted.end());
  const double median = median_of(sorted);
  std::printf("alarms a month: median %.2f, max %.2f over %zu series\n", median, sorted.back(),
              sorted.size());

  // Injected: at 5 positions in the second half of each series, a spike of 5 units, a level
  // shift of 2 units, and a drift of 3 units over a day (each added alone, upward; unit_of).
  // Found: a trigger of the kind the anomaly is (a spike; a level up) within its window, in
  // time. By chance: the same trigger in the same window of the series as it is — what the
  // found share would be with no anomaly added.
  struct Kind {
    Kind(const char* n, Duration w, AnomalyKind k) : name(n), within(w), kind(k) {}
    const char* name;
    Duration within;
    AnomalyKind kind;
    size_t found = 0, chance = 0, tried = 0;
    std::vector<double> delays;  // minutes
  };
  Kind spike("spike 5 sd", Duration{0}, AnomalyKind::kSpike);
  Kind shift("level shift 2 sd", hours(2), AnomalyKind::kLevelUp);
  Kind drift("drift 3 sd/day", hours(24), AnomalyKind::kLevelUp);
  std::mt19937_64 rng(7);
  for (const Series& s : all) {
    if (s.v.size() < 700) continue;
    const double sigma = unit_of(s.v);
    for (int k = 0; k < 5; ++k) {
      std::uniform_int_distribution<size_t> where(s.v.size() / 2, s.v.size() - 300);
      const size_t at = where(rng);
      auto judge = [&](Kind& kind, const std::vector<double>& v) {
        ++kind.tried;
        if (first_alarm(s, s.v, at, kind.within, kind.kind) >= 0) ++kind.chance;
        if (double delay = first_alarm(s, v, at, kind.within, kind.kind); delay >= 0) {
          ++kind.found;
          kind.delays.push_back(delay);
        }
      };
      std::vector<double> v = s.v;
      v[at] += 5 * sigma;
      judge(spike, v);
      v = s.v;
      for (size_t i = at; i < v.size(); ++i) v[i] += 2 * sigma;
      judge(shift, v);
      v = s.v;
      for (size_t i = at; i < v.size(); ++i)
        v[i] += 3 * sigma * std::min(1.0, static_cast<double>(s.t[i] - s.t[at]) / 86'400'000.0);
      judge(drift, v);
    }
  }
  for (Kind* k : {&spike, &shift, &drift}) {
    const double share = 100.0 * static_cast<double>(k->found) / static_cast<double>(k->tried);
    const double by_chance = 100.0 * static_cast<double>(k->chance) / static_cast<double>(k->tried);
    std::printf("%-18s found %zu of %zu (%.0f%%; by chance %zu, %.0f%%), median delay %s\n",
                k->name, k->found, k->tried, share, k->chance, by_chance,
                k->delays.empty()
                    ? "-"
                    : (std::to_string(static_cast<int>(median_of(k->delays))) + " min").c_str());
  }
  return 0;
}
