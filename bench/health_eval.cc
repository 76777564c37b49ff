// The generic detector (health/anomaly.h) on the real series of data/nab-subset: how often
// it alarms on each series as it is (no labels: alarms a month), and whether anomalies of
// stated sizes added to the series are found and how soon — a spike, a level shift and a
// drift at 5 seeded positions in the second half of each of the 24 series. Prints the
// figures docs/health.md quotes.
//
// Usage: health_eval [SPIKE_Z BURST_FACTOR CUSUM_H CUSUM_K]   (defaults: AnomalyOptions';
// the series' directory is compiled in: data/nab-subset)
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

double median_of(std::vector<double> d) {
  std::nth_element(d.begin(), d.begin() + static_cast<std::ptrdiff_t>(d.size() / 2), d.end());
  return d[d.size() / 2];
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

// The first alarm at or after `from` (within `within` samples), or -1.
// The options evaluated: the defaults, or those given on the command line.
AnomalyOptions options;

int64_t first_alarm(const Series& s, const std::vector<double>& v, size_t from, size_t within) {
  AnomalyDetector d(options);
  for (size_t i = 0; i < v.size(); ++i) {
    const AnomalyVerdict verdict = d.observe(at_ms(s.t[i]), v[i]);
    if (i >= from && i <= from + within && verdict.kind != AnomalyKind::kNone)
      return static_cast<int64_t>(i - from);
    if (i > from + within) break;
  }
  return -1;
}

}  // namespace
}  // namespace drover::health

int main(int argc, char** argv) {
  using namespace drover::health;
  // Optional, to try other settings: SPIKE_Z BURST_FACTOR CUSUM_H CUSUM_K.
  if (argc > 1) options.spike_z = std::atof(argv[1]);
  if (argc > 2) options.burst_factor = std::atof(argv[2]);
  if (argc > 3) options.cusum_h = std::atof(argv[3]);
  if (argc > 4) options.cusum_k = std::atof(argv[4]);
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
  const double median = sorted[sorted.size() / 2];
  std::printf("alarms a month: median %.2f, max %.2f over %zu series\n", median, sorted.back(),
              sorted.size());

  // Injected: at 5 positions in the second half of each series, a spike of 12 units, a level
  // shift of 6 units, and a drift of 12 units over a day (each added alone; unit_of).
  struct Kind {
    Kind(const char* n, size_t w) : name(n), within(w) {}
    const char* name;
    size_t within;  // samples the detection may take
    size_t found = 0, tried = 0;
    std::vector<int64_t> delays;
  };
  Kind spike("spike 5 sd", 0);
  Kind shift("level shift 2 sd", 24);
  Kind drift("drift 3 sd/day", 288);
  std::mt19937_64 rng(7);
  for (const Series& s : all) {
    const double sigma = unit_of(s.v);
    for (int k = 0; k < 5; ++k) {
      std::uniform_int_distribution<size_t> where(s.v.size() / 2, s.v.size() - 300);
      const size_t at = where(rng);
      std::vector<double> v = s.v;
      v[at] += 5 * sigma;
      ++spike.tried;
      if (int64_t delay = first_alarm(s, v, at, spike.within); delay >= 0) {
        ++spike.found;
        spike.delays.push_back(delay);
      }
      v = s.v;
      for (size_t i = at; i < v.size(); ++i) v[i] += 2 * sigma;
      ++shift.tried;
      if (int64_t delay = first_alarm(s, v, at, shift.within); delay >= 0) {
        ++shift.found;
        shift.delays.push_back(delay);
      }
      v = s.v;
      for (size_t i = at; i < v.size(); ++i)
        v[i] += 3 * sigma * std::min(1.0, static_cast<double>(s.t[i] - s.t[at]) / 86'400'000.0);
      ++drift.tried;
      if (int64_t delay = first_alarm(s, v, at, drift.within); delay >= 0) {
        ++drift.found;
        drift.delays.push_back(delay);
      }
    }
  }
  for (Kind* k : {&spike, &shift, &drift}) {
    std::sort(k->delays.begin(), k->delays.end());
    const int64_t median_delay = k->delays.empty() ? -1 : k->delays[k->delays.size() / 2];
    std::printf("%-22s found %zu of %zu (%.0f%%), median delay %lld samples\n", k->name, k->found,
                k->tried, 100.0 * static_cast<double>(k->found) / k->tried,
                static_cast<long long>(median_delay));
  }
  return 0;
}
