#include "health/telemetry_health.h"

#include <chrono>
#include <string>
#include <vector>

#include "health/anomaly.h"
#include "telemetry/telemetry_service.h"

namespace drover::health {
namespace {

constexpr double kMsPerDay = 86'400'000.0;

int64_t ms_of(Timestamp t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

}  // namespace

Result<std::optional<double>> TelemetryHealth::measure(std::string_view device_id,
                                                       const HealthMetric& metric, Timestamp from,
                                                       Timestamp to) {
  const int64_t from_ms = ms_of(from), to_ms = ms_of(to);
  if (to_ms <= from_ms) return std::optional<double>{};
  // The metric's series on the device: "device/metric" and "device/metric{labels}".
  const std::string bare = telemetry::TelemetryService::series_key(device_id, metric.metric, {});
  std::vector<std::string> keys;
  for (std::string& k : tsdb_.keys(bare)) {
    if (k.size() == bare.size() || k[bare.size()] == '{') keys.push_back(std::move(k));
  }
  if (metric.measure == HealthMeasure::kAnomalies) return anomalies(keys, from_ms, to_ms);
  // Points of about a minute or finer where the store keeps them.
  const telemetry::Resolution resolution = tsdb_.resolution_for(from_ms, to_ms, 60'000);
  double sum = 0, increase = 0, slope_sum = 0;
  uint64_t count = 0, slope_weight = 0, increase_series = 0;
  for (const std::string& key : keys) {
    auto points = tsdb_.read(key, resolution, from_ms, to_ms);
    if (!points.ok()) {
      if (points.error().code == ErrorCode::kNotFound) continue;  // gone since keys()
      return points.error();                                      // a damaged chunk: not "no data"
    }
    if (points->empty()) continue;
    // The series' mean, and the sums of its least-squares line in days from the window's
    // start (for a slope per day).
    double sx = 0, sy = 0, sxx = 0, sxy = 0;
    double series_increase = 0;
    double last = 0;
    bool first = true;
    for (const telemetry::RollupPoint& p : *points) {
      sum += p.sum;
      count += p.count;
      const double x = static_cast<double>(p.t_ms - from_ms) / kMsPerDay;
      const double y = p.mean();
      sx += x;
      sy += y;
      sxx += x * x;
      sxy += x * y;
      const double v = resolution == telemetry::Resolution::kRaw ? p.mean() : p.max;
      if (!first) series_increase += v >= last ? v - last : v;
      last = v;
      first = false;
    }
    const auto n = static_cast<double>(points->size());
    const double spread = n * sxx - sx * sx;
    if (points->size() >= 2 && spread > 0) {
      slope_sum += (n * sxy - sx * sy) / spread * n;
      slope_weight += points->size();
    }
    if (points->size() >= 2) {
      increase += series_increase;
      ++increase_series;
    }
  }
  switch (metric.measure) {
    case HealthMeasure::kMean:
      if (count == 0) return std::optional<double>{};
      return std::optional<double>(sum / static_cast<double>(count));
    case HealthMeasure::kSlope:
      if (slope_weight == 0) return std::optional<double>{};
      return std::optional<double>(slope_sum / static_cast<double>(slope_weight));
    case HealthMeasure::kIncrease:
      if (increase_series == 0) return std::optional<double>{};
      return std::optional<double>(increase);
    case HealthMeasure::kAnomalies:
      break;  // above
  }
  return std::optional<double>{};
}

Result<std::optional<double>> TelemetryHealth::anomalies(const std::vector<std::string>& keys,
                                                         int64_t from_ms, int64_t to_ms) {
  // The detector learns for a day and more before it decides anything, and its daily shape
  // over a few: each series is fed the three days before the window first, its alarms
  // counted only from the window's start (both sides of a pair are learnt the same way).
  // Read as the store gives so long a span: 5-minute means up to a window of about four
  // days, hourly ones beyond.
  const int64_t warm_ms = from_ms - int64_t{3} * 86'400'000;
  const telemetry::Resolution resolution = tsdb_.resolution_for(warm_ms, to_ms, 60'000);
  // A rate per series, averaged over the label sets (as the slope is): a build that adds a
  // label set does not dilute or inflate it. A series still learning through the window
  // (new, or too short a history) says nothing.
  double rates = 0;
  uint64_t judged = 0;
  const double days = static_cast<double>(to_ms - from_ms) / kMsPerDay;
  for (const std::string& key : keys) {
    auto points = tsdb_.read(key, resolution, warm_ms, to_ms);
    if (!points.ok()) {
      if (points.error().code == ErrorCode::kNotFound) continue;  // gone since keys()
      return points.error();
    }
    AnomalyDetector detector;
    uint64_t alarms = 0;
    bool decided = false;
    for (const telemetry::RollupPoint& p : *points) {
      const AnomalyVerdict v = detector.observe(Timestamp(Duration(p.t_ms)), p.mean());
      if (p.t_ms < from_ms) continue;
      decided = decided || !v.learning;
      if (v.alarm_started) ++alarms;
    }
    if (!decided) continue;
    rates += static_cast<double>(alarms) / days;
    ++judged;
  }
  if (judged == 0) return std::optional<double>{};
  return std::optional<double>(rates / static_cast<double>(judged));
}

}  // namespace drover::health
