// TelemetryService: every telemetry use case, independent of transport. A device's batch is
// checked against the limits and stored under the device's own series (a device writes only
// its own: the series key starts with the id its token proves); queries read a device's
// series, its latest values, aggregates across a cohort of devices, and how fresh each
// device's data is against its profile's contract. Every value returned carries its age.
//
// Series keys: "<device>/<metric>" or "<device>/<metric>{name=value,...}" with the labels
// sorted by name (docs/telemetry.md).
//
// Thread-safety: every method may be called from several threads.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "base/clock.h"
#include "base/mutex.h"
#include "fleet/device_service.h"
#include "model/device_profile.h"
#include "protocol/telemetry_batch.h"
#include "protocol/telemetry_rules.h"
#include "store/store.h"
#include "telemetry/time_series_store.h"

namespace drover::telemetry {

struct TelemetryLimits {
  size_t series_per_device = 1000;
  size_t series_per_metric = 100;  // label sets of one metric on one device (cardinality)
};

struct IngestResult {
  AppendResult stored;
  uint64_t dropped_on_device = 0;  // what the batch reported, added to the device's count
};

// One value with when it was taken and how old it is now.
struct AgedValue {
  std::string metric;
  std::vector<std::pair<std::string, std::string>> labels;
  int64_t t_ms = 0;
  double value = 0;
  double age_s = 0;
};

struct RangeQuery {
  std::string device;
  std::string metric;
  std::vector<std::pair<std::string, std::string>> labels;
  int64_t from_ms = 0;
  int64_t until_ms = 0;
  std::optional<Resolution> resolution;  // chosen from the range when absent
};

struct RangeAnswer {
  Resolution resolution = Resolution::kRaw;
  std::vector<RollupPoint> points;  // each point's age is now - t_ms
  int64_t now_ms = 0;
};

// Devices by what they are: type, revision, site (each list empty: any), and the version
// of one component ("firmware" = "4.2.1"), when given.
struct Cohort {
  DeviceFilter filter;
  std::string component;
  std::string version;
  bool matches(const Device& d) const;
};

struct CohortAnswer {
  Resolution resolution = Resolution::kRaw;
  size_t devices = 0;               // devices in the cohort
  size_t reporting = 0;             // of them, with the metric in the range
  std::vector<RollupPoint> points;  // per bucket: min of mins, max of maxes, sums, counts
  int64_t now_ms = 0;
};

struct DeviceFreshness {
  std::string device;
  std::string device_type;
  Freshness freshness = Freshness::kNoContract;
  double data_age_s = -1;  // the newest sample's age; -1: none
  // The last batch's arrival or check-in, whichever came last; -1: none since the server
  // started.
  double contact_age_s = -1;
  TelemetryContract contract;
  uint64_t dropped_on_device = 0;
  bool decommissioned = false;  // out of service: kept for its history, judged no more
  std::string site;             // Device::site (its peers for a sensor's drift)
  // What its type's profile asks device health to watch in its metrics (DeviceProfile::health).
  std::vector<MetricCheck> checks;
};

// Where the remediation rules (health/remediator.h) read how fresh each device is: the
// telemetry service in drover serve; the field twin's device models at fleet scale.
class FreshnessSource {
 public:
  virtual ~FreshnessSource() = default;
  // Each device of the cohort judged against its profile's contract.
  virtual Result<std::vector<DeviceFreshness>> freshness(const Cohort& cohort) const = 0;
};

class TelemetryService final : public FreshnessSource {
 public:
  TelemetryService(TimeSeriesStore& tsdb, DeviceService& devices, Store& store, Clock& clock,
                   TelemetryLimits limits = {});

  // Stores `batch` for `device`. kNotFound for an unknown device, kResourceExhausted when it
  // would pass a series limit (nothing is stored then), kIo once the store failed.
  // Acknowledge only once tsdb().durable(result.stored.lsn).
  Result<IngestResult> ingest(std::string_view device, const protocol::TelemetryBatch& batch);

  // The newest value of each of a device's series. kNotFound for an unknown device.
  Result<std::vector<AgedValue>> latest(std::string_view device) const;
  // One series over a range. kNotFound for an unknown device or series.
  Result<RangeAnswer> range(const RangeQuery& query) const;
  // One metric (every label set) across a cohort, bucketed at the resolution the range
  // calls for (never raw: at least 5-minute buckets).
  Result<CohortAnswer> cohort(const Cohort& cohort, std::string_view metric, int64_t from_ms,
                              int64_t until_ms) const;
  Result<std::vector<DeviceFreshness>> freshness(const Cohort& cohort) const override;
  // One device's. kNotFound for an unknown device.
  Result<DeviceFreshness> freshness(std::string_view device) const;
  // The cohort's devices in service, by id, at most `limit` (no freshness judged: a sample of
  // peers).
  std::vector<Device> devices_of(const Cohort& cohort, size_t limit = SIZE_MAX) const;

  // The metric rules the device's agent follows: its type's profile's (none without one).
  // Read from the store at most every kRulesCacheMs per type, so a changed profile reaches
  // the agents within that (and their next batch). kNotFound for an unknown device.
  static constexpr int64_t kRulesCacheMs = 30'000;
  Result<protocol::TelemetryRules> rules_for(std::string_view device);

  TimeSeriesStore& tsdb() { return tsdb_; }

  // The labels a series is exported with (Prometheus remote write): `__name__`, `device`,
  // and the device's `device_type`, `hardware_revision` and `site` (those it has), then the
  // series' own labels — one that collides with those is renamed `exported_<name>`, as
  // Prometheus does. Sorted by name. Empty for a key that is not a series of a known device.
  std::vector<std::pair<std::string, std::string>> export_labels(const std::string& key) const;

  static std::string series_key(std::string_view device, std::string_view metric,
                                const std::vector<std::pair<std::string, std::string>>& labels);
  // The metric and labels of a key series_key() made (the device part is skipped); false for
  // anything else.
  static bool parse_series_key(std::string_view key, std::string& metric,
                               std::vector<std::pair<std::string, std::string>>& labels);

 private:
  struct DeviceState {
    std::unordered_set<std::string> keys;  // the device's series
    std::unordered_map<std::string, size_t> per_metric;
    int64_t contact_ms = INT64_MIN;  // the last batch's arrival
    uint64_t dropped = 0;            // routine samples the device reported dropping
  };
  DeviceState& state_of(std::string_view device) REQUIRES(mu_);
  // `profile`: its type's, or null for none.
  DeviceFreshness freshness_of(const Device& d, const DeviceProfile* profile, int64_t now) const;

  TimeSeriesStore& tsdb_;
  DeviceService& devices_;
  Store& store_;
  Clock& clock_;
  const TelemetryLimits limits_;
  mutable Mutex mu_{LockLevel::kTelemetryService};  // taken before the store's
  std::unordered_map<std::string, DeviceState> state_ GUARDED_BY(mu_);
  struct CachedRules {
    int64_t read_ms = 0;
    protocol::TelemetryRules rules;
  };
  std::unordered_map<std::string, CachedRules> rules_ GUARDED_BY(mu_);  // by device type
};

}  // namespace drover::telemetry
