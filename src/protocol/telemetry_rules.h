// What the agent does with each metric before sending it (docs/telemetry.md, "On-device
// aggregation"): send every sample, or one value per aggregate for every interval. The
// operator sets the rules in a device type's profile; the server hands them to each device
// of the type (GET /api/device/v1/telemetry/rules) with an ETag, which every telemetry
// answer repeats so the agent knows when to fetch them again.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/clock.h"
#include "base/result.h"

namespace drover::protocol {

enum class AggregateFunction : uint8_t { kMin, kMax, kMean, kLast, kCount };
const char* to_string(AggregateFunction f);
Result<AggregateFunction> parse_aggregate_function(std::string_view s);

// One metric's rule: every sample (`functions` empty), or one value per function for every
// `interval`.
struct MetricRule {
  std::string metric;  // a metric name, or "*" for every metric no other rule names
  Duration interval{0};
  std::vector<AggregateFunction> functions;  // sorted, unique
  bool raw() const { return functions.empty(); }
  friend bool operator==(const MetricRule&, const MetricRule&) = default;
};

struct TelemetryRules {
  std::string etag;                 // names this set of rules; "" when there are none
  std::vector<MetricRule> metrics;  // sorted by metric
  friend bool operator==(const TelemetryRules&, const TelemetryRules&) = default;
};

// The rules with their ETag filled in (a hash of their wire form; "" for no rules).
TelemetryRules make_telemetry_rules(std::vector<MetricRule> metrics);
// The device API's answer: {"etag": "...", "metrics": [{"metric": "...", "interval_s": N,
// "aggregates": ["min", ...]}, ...]}.
std::string encode_telemetry_rules(const TelemetryRules& rules);
// kInvalidArgument naming what is wrong (the same checks the profile's validation makes).
Result<TelemetryRules> decode_telemetry_rules(std::string_view json);

}  // namespace drover::protocol
