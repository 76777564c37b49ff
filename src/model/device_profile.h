// A device profile: what Drover expects of every device of one type: its telemetry
// contract — how often the device reports and how late a report may be, so a device that
// sleeps by design is judged against its own schedule — and what its agent does with each
// metric before sending it (raw, or aggregated per interval), so a metered link carries
// what the operator chose — and what device health watches in its metrics.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/clock.h"
#include "base/result.h"
#include "protocol/device_config.h"
#include "protocol/telemetry_rules.h"

namespace drover {

// How fresh a device's data is, judged against its profile's contract (docs/telemetry.md):
// fresh: the newest sample is no older than report_every + late_after;
// late: older than that, but not older than stale_after;
// stale: older than stale_after, though the device was heard from within stale_after (it
//        talks, its data does not come: a stuck sensor, a hung collector);
// offline: nothing heard from the device within stale_after;
// no_contract: its type has no profile with a reporting interval: nothing is judged.
enum class Freshness : uint8_t { kFresh, kLate, kStale, kOffline, kNoContract };
const char* to_string(Freshness f);

struct TelemetryContract {
  Duration report_every{0};  // 0: no contract
  Duration late_after{0};    // how late a report may be beyond report_every
  Duration stale_after{0};   // 0: 3 * report_every + late_after
  Duration effective_stale_after() const;
  friend bool operator==(const TelemetryContract&, const TelemetryContract&) = default;
};

// Judges data whose newest sample is `data_age` old from a device last heard from
// `contact_age` ago (negative ages: never).
Freshness judge(const TelemetryContract& contract, Duration data_age, Duration contact_age);

// The agent's per-metric rules are protocol vocabulary (they cross the wire).
using protocol::AggregateFunction;
using protocol::MetricRule;
using protocol::parse_aggregate_function;
using protocol::to_string;

// What device health watches in one metric beyond the resources it knows (docs/health.md,
// "Checks a profile declares"): limits the metric must stay within (crossing one is critical;
// heading for one is forecast), a value that must keep changing while the device reports (a
// stuck sensor), and a sensor's drift from the same-type devices at its site (calibration).
struct MetricCheck {
  std::string metric;
  std::optional<double> above;  // the value must stay at or below this
  std::optional<double> below;  // the value must stay at or above this
  Duration frozen_after{0};     // unchanged this long: frozen (0: not watched)
  double tolerance = 0;         // a change no larger is no change (with frozen_after)
  bool drift = false;           // judged against its site's same-type devices
  friend bool operator==(const MetricCheck&, const MetricCheck&) = default;
};

struct DeviceProfile {
  std::string device_type;  // the key
  TelemetryContract telemetry;
  std::vector<MetricRule> metrics;  // sorted by metric, unique
  std::vector<MetricCheck> health;  // sorted by metric, unique
  // The safe operating envelope of the type's configuration (docs/configuration.md): the
  // fields a document may set and their ranges. Empty: the type takes no configuration.
  protocol::ConfigEnvelope config;
  friend bool operator==(const DeviceProfile&, const DeviceProfile&) = default;
};

// Checks the type name, the durations (late_after and stale_after need report_every;
// stale_after above report_every + late_after), the rules (an aggregate needs an interval of
// 1 s to 1 day; a raw rule none), the health checks (each watches something; finite limits,
// `below` under `above`; frozen_after from 1 min to 7 d, a tolerance only with it); sorts the
// rules and the checks, and the configuration envelope (protocol::validate). Fails on
// duplicates.
Status validate(DeviceProfile& p);

}  // namespace drover
