// The health data of drover serve's health gates (rollout/health_gate.h): a device's metric
// over a window, read from the telemetry store. Every series of the metric on the device
// (every label set) counts: a mean over all their samples, a slope (least squares, per day)
// averaged over the series weighted by their points, or a counter's increase summed over
// them (a value below the one before is a reset: it counts from zero). Reads raw samples
// where the store still keeps them, else its finest rollup (a point's mean; for an
// increase, its maximum). Thread-safe (the store is).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "rollout/health_gate.h"
#include "telemetry/time_series_store.h"

namespace drover::health {

class TelemetryHealth final : public HealthSource {
 public:
  explicit TelemetryHealth(const telemetry::TimeSeriesStore& tsdb) : tsdb_(tsdb) {}
  Result<std::optional<double>> measure(std::string_view device_id, const HealthMetric& metric,
                                        Timestamp from, Timestamp to) override;

 private:
  // The generic detector's alarms a day over [from, to), every series of the metric learnt
  // over the three days before first; nullopt when no series has a point in the window.
  Result<std::optional<double>> anomalies(const std::vector<std::string>& keys, int64_t from_ms,
                                          int64_t to_ms);

  const telemetry::TimeSeriesStore& tsdb_;
};

}  // namespace drover::health
