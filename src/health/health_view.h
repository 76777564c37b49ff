// HealthView: device health and the fleet view (health/device_health.h) on drover serve's
// services — freshness and the recent series from the telemetry service, open alerts from
// the remediation rules' records (when remediation runs). Serves GET
// /api/v1/devices/{id}/health and GET /api/v1/fleet/health (transport/http/health_api.h).
//
// A device's series are read over HealthOptions::window at the resolution the store chooses
// for it (raw while it keeps raw samples, else its rollups: a point's mean; a counter's
// maximum) — finer when that gives too few points for a forecast (a series only hours old).
// Beyond judge_device, a battery is judged against its peers: one draining far faster than
// the same-type devices' (peer_outlier on the drain since the last charge) is the warning
// "battery_drain" — in the fleet view against every device of its type, for one device
// against up to kDrainPeers of them (a read of each one's battery series). A metric its
// profile asks to watch for drift (MetricCheck::drift) is judged against the same-type devices
// at the device's site (drift_among) — in the fleet view all of them, for one device up to
// kDriftPeers: one drifting is the warning "drift".
// Thread-safe: it keeps nothing of its own.
#pragma once

#include <functional>
#include <optional>
#include <set>
#include <span>
#include <string_view>

#include "health/device_health.h"
#include "health/remediator.h"
#include "telemetry/telemetry_service.h"

namespace drover::health {

class HealthView final : public DeviceHealthSource {
 public:
  // One device's battery drain is judged against this many of its type's at most.
  static constexpr size_t kDrainPeers = 200;
  // One device's sensor is judged for drift against this many of its site's at most.
  static constexpr size_t kDriftPeers = 64;

  // `alerts` may be null (remediation off: no alert is a reason).
  HealthView(const telemetry::TelemetryService& telemetry, AlertRecords* alerts, Clock& clock,
             HealthOptions options = {})
      : telemetry_(telemetry), alerts_(alerts), clock_(clock), options_(options) {}

  // kNotFound for an unknown device; the store's error when a read fails.
  Result<DeviceHealth> device(std::string_view id) const;
  // Every device in service (or of the cohort), judged; resources expected to run out within
  // `within`; at most `limit` devices at risk and predictions listed.
  Result<FleetHealth> fleet(const telemetry::Cohort& cohort, Duration within, size_t limit) const;
  // Every device in service (or of the cohort), judged. A device whose data cannot be read is
  // unknown with the reason "unreadable"; the store's error only when none could be read.
  // `peers`: also against their peers (battery_drain against the type's in the cohort, drift
  // against the site's in the cohort).
  // `only`, when given: the devices it says yes to alone (the others are not read).
  Result<std::vector<DeviceHealth>> judge_all(
      const telemetry::Cohort& cohort, bool peers = true,
      const std::function<bool(const telemetry::DeviceFreshness&)>& only = {}) const;
  // The rules on health (RemediatorOptions): every device's critical reasons of the kinds
  // `watched` names (of memory, disk, battery, reboots, frozen), and the devices it could not
  // read. With frozen alone watched, only devices whose profile declares a frozen check are
  // read: the default rules cost nothing on a fleet without such checks.
  Result<HealthFindings> critical_findings(const std::set<Condition>& watched) const override;

  const HealthOptions& options() const { return options_; }

 private:
  // `only`: these metrics' series alone (a peer's battery, a peer's sensor); else those
  // judge_device reads.
  Result<DeviceFacts> facts(telemetry::DeviceFreshness freshness, std::vector<Alert> open_alerts,
                            std::span<const std::string_view> only = {}) const;
  // One metric's series (one label set) of a site's same-type devices, each with the index of
  // its device in `judged` (SIZE_MAX: a peer only); those drifting get the reason "drift" —
  // but not one already "frozen" (that says more).
  using DriftGroup = std::vector<std::pair<size_t, SeriesWindow>>;
  void judge_drift(std::span<DeviceHealth> judged, const DriftGroup& group) const;
  void judge_drain(DeviceHealth& device, const BatteryDrain& drain,
                   const std::optional<PeerSpread>& peers) const;
  Result<std::vector<Alert>> open_alerts(std::string_view device) const;

  const telemetry::TelemetryService& telemetry_;
  AlertRecords* alerts_;
  Clock& clock_;
  HealthOptions options_;
};

}  // namespace drover::health
