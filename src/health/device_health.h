// A device's health and the fleet's (docs/health.md, "Device health and the fleet view"):
// a score from 0 to 100 with every reason that took points off it, and forecasts of when a
// resource runs out (memory exhausted, a disk full, a battery empty); for the fleet, how many
// devices are healthy, degraded or critical, how many were lost in the last 30 days, which
// are at risk and which are predicted to fail within N days.
//
// judge_device() is pure over the facts (what the telemetry service says of the device's
// freshness, its open alerts, its recent series) and `now`; summarize() over the judged
// devices. HealthView (health_view.h) gathers the facts from drover serve's services.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "base/clock.h"
#include "health/device_detectors.h"
#include "health/forecast.h"
#include "model/alert.h"
#include "telemetry/telemetry_service.h"

namespace drover::health {

enum class Severity : uint8_t { kWarning, kCritical };
const char* to_string(Severity s);  // "warning", "critical"

// A resource heading for its end, as forecast from its recent values.
struct ResourceForecast {
  std::string resource;  // "memory", "disk /data", "battery BAT0", "signal_dbm{iface=wwan0}"
  std::string metric;    // the series it was read from
  std::vector<std::pair<std::string, std::string>> labels;
  double limit = 0;  // where the resource counts as run out
  Crossing crossing;
};

struct HealthReason {
  // "offline", "no_data", "late", "alert", "memory", "disk", "battery", "reboots",
  // "battery_drain" (against its peers: HealthView), "decommissioned" (0 points),
  // "unreadable" (0 points: its data could not be read); of its profile's checks
  // (MetricCheck): "limit" (a metric past or heading past its limit), "frozen" (a value
  // that stopped changing), "drift" (a sensor drifting from its site's peers: HealthView)
  std::string kind;
  Severity severity = Severity::kWarning;
  int points = 0;    // taken off the score
  std::string text;  // what was found, with the figures
  // The alert's id: for kind "alert", or the alert about this reason's condition (a stuck
  // device's no_data alert: what is being done about it, taking no points of its own)
  std::string alert;
  std::optional<ResourceForecast> forecast;  // for a resource's end
};

enum class HealthStatus : uint8_t {
  kHealthy,   // nothing found
  kDegraded,  // warnings only
  kCritical,  // something critical
  kUnknown,   // nothing to judge: no telemetry contract and no data; decommissioned; or
              // its data could not be read
};
const char* to_string(HealthStatus s);

struct DeviceHealth {
  std::string device_id;
  std::string device_type;
  HealthStatus status = HealthStatus::kHealthy;
  int score = 100;                    // 100 - the reasons' points, at least 0 (100 for kUnknown)
  std::vector<HealthReason> reasons;  // the most severe first
  // Every resource heading for its end, nearest first — also those beyond the horizon that
  // makes one a reason (a profile's limit only once it is one).
  std::vector<ResourceForecast> forecasts;
  // How long since the device was last heard from (check-in or data); -1: never.
  double quiet_s = -1;
};

// One of the device's recent series: its metric, labels and values (time order).
struct SeriesWindow {
  std::string metric;
  std::vector<std::pair<std::string, std::string>> labels;
  std::vector<TimedValue> values;
  // For a frozen check (MetricCheck::frozen_after): its readings over 2 × frozen_after up to
  // its newest, as ranges (HealthView: raw where the store gives that span raw, else its
  // rollups' min and max — exact either way); without them, `values` stand for it.
  std::optional<std::vector<ValueRange>> recent{};
};

// How a reason names a series: "temp_c", "temp_c{probe=2}".
std::string series_name(const SeriesWindow& s);

struct DeviceFacts {
  telemetry::DeviceFreshness freshness;
  std::vector<Alert> open_alerts;  // unresolved
  // The series health reads (HealthOptions::kMetrics, and the metrics of the profile's
  // checks: freshness.checks) over the last `window`.
  std::vector<SeriesWindow> series;
};

// Whether the series is the metric's value — no `agg` label, or the agent's per-interval
// `mean` (else, without one among `facts`' series of the same labels, its `last`) — rather
// than its `min`, `max` or `count`: frozen and drift judge only that one. Limits judge every
// series but a `count` (a `max` past a ceiling went past it).
bool is_value_series(const DeviceFacts& facts, const SeriesWindow& s);

struct HealthOptions {
  Duration window = hours(int64_t{7} * 24);  // of values a forecast reads
  // A resource expected to run out within `horizon` is a warning, within `soon` critical.
  Duration horizon = hours(int64_t{30} * 24);
  Duration soon = hours(int64_t{7} * 24);
  ForecastOptions forecast{};  // its `toward` is set per resource
  // Where each resource counts as run out: a share of its total (memory, disk) or a level.
  double memory_floor = 0.05;  // of memory_total_bytes (0 bytes without one)
  double disk_floor = 0.02;    // of disk_total_bytes of the mount (0 bytes without one)
  double battery_floor_percent = 5;
  // A rise between two readings of more than this share of the total (of 100 points for a
  // battery) is a refill — a restart that freed memory, logs cleaned, a charge: a forecast
  // reads only the values since the last one.
  double refill_share = 0.2;
  uint32_t reboots_per_day = 3;  // more boots than this in the last 24 hours: a loop
  // A battery draining far faster than its type's (HealthView): its drain since its last
  // charge, over at least drain_span, against the same-type devices' by a robust z-score.
  Duration drain_span = hours(3);
  // The spread is at least a fifth of the median: only a drain far from its peers' (about
  // twice theirs at z 5) is flagged, not one a quarter faster in a fleet of identical peers.
  PeerOptions drain_peers{.threshold = 5, .side = Side::kHigh, .relative_floor = 0.2};
  // A sensor drifting from its site's same-type devices (a profile's `drift` check:
  // HealthView): its hourly means against theirs (drift_among), its first two days of the
  // window learning its usual offset and spread; judged where at least drift_min_peers others
  // have a value. One recalibrated clears within about 15 hours (the CUSUM's cap).
  Duration drift_bucket = hours(1);
  PeerDrift::Options drift{.settle = 48, .cusum_k = 1, .cusum_h = 15, .cusum_cap = 30};
  uint32_t drift_min_peers = 4;
  Duration lost_after = hours(72);  // quiet this long: lost (the fleet view)
  int critical_points = 40;
  int warning_points = 15;
  // The metrics judge_device reads.
  static constexpr const char* kMetrics[] = {
      "memory_available_bytes", "memory_total_bytes", "disk_free_bytes", "disk_total_bytes",
      "battery_level_percent",  "battery_charging",   "reboots_total"};
};

DeviceHealth judge_device(const DeviceFacts& facts, Timestamp now,
                          const HealthOptions& options = {});

// How fast a battery drains while it discharges: the slope of its level since it last rose (a
// charge), over at least options.drain_span and min_points readings, in percent an hour. The
// first supply's; std::nullopt while charging, without such a stretch, or when it is not
// falling.
struct BatteryDrain {
  std::string supply;
  double per_hour = 0;
};
std::optional<BatteryDrain> battery_drain(const DeviceFacts& facts,
                                          const HealthOptions& options = {});

// Adds a reason found beyond the device itself (against its peers); the score and status
// follow, as judge_device would have made them.
void add_reason(DeviceHealth& device, HealthReason reason);

// The fleet at a glance.
struct FleetHealth {
  size_t devices = 0;
  size_t healthy = 0, degraded = 0, critical = 0, unknown = 0;
  // Of the unknown, those whose data could not be read (each says why in its reason); they
  // are listed among the devices at risk, after the others.
  size_t unreadable = 0;
  // Quiet for lost_after or longer now, and of them those that became lost within the last 30
  // days (quiet for at least lost_after and less than lost_after + 30 days): the month's
  // loss, as a share of the devices (0 for none).
  size_t lost = 0;
  size_t lost_last_30_days = 0;
  double loss_rate_per_month = 0;
  // Devices not healthy, lowest score first (then by id), at most `limit`; at_risk_total
  // counts them all.
  std::vector<DeviceHealth> at_risk;
  size_t at_risk_total = 0;
  // Resources expected to run out within `within`, nearest first, at most `limit`, each with
  // its device; predicted_total counts them all.
  std::vector<std::pair<std::string, ResourceForecast>> predicted;
  size_t predicted_total = 0;
  Duration within{};
};

FleetHealth summarize(std::span<const DeviceHealth> devices, Duration within, size_t limit,
                      const HealthOptions& options = {});

// "3.2 d", "5.0 h", "12 min", "45 s" ("never" for an infinite span): how the reasons say
// how long, and the CLI too.
std::string format_span(double seconds);

}  // namespace drover::health
