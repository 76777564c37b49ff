// On-device aggregation by the rules the server sends (protocol/telemetry_rules.h): a metric
// with a raw rule (or none, and no "*" rule) passes every sample; one with aggregates keeps,
// per series, the interval's min, max, sum, count and last value, and emits each named
// aggregate when the interval ends, as the series with the label `agg` added (e.g.
// temperature_celsius{agg="max",zone="0"}), stamped at the interval's end. Intervals are
// aligned to the epoch (a 60 s interval ends at whole minutes). A series that already has
// an `agg` label (a StatsD timing) passes raw.
//
// Thread-compatible.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "protocol/telemetry_batch.h"
#include "protocol/telemetry_rules.h"

namespace drover::agent {

class MetricAggregator {
 public:
  // Replaces the rules at `now_ms`. Open intervals of series whose rule changed are emitted
  // first (into what the next take() returns), stamped no later than `now_ms`.
  void set_rules(protocol::TelemetryRules rules, int64_t now_ms);
  const protocol::TelemetryRules& rules() const { return rules_; }

  // Takes samples (times increasing per series). Raw ones come back from the next take().
  void add(const std::vector<protocol::TelemetrySeries>& series);
  // Everything ready at `now_ms`: raw samples, and the aggregates of intervals ended by then.
  // `close_open` (the agent stops): the open intervals too, stamped `now_ms`.
  std::vector<protocol::TelemetrySeries> take(int64_t now_ms, bool close_open = false);
  // When the earliest open interval ends (INT64_MAX: none open).
  int64_t next_due_ms() const;

 private:
  using Labels = std::vector<std::pair<std::string, std::string>>;
  struct Window {
    int64_t end_ms = 0;
    double min = 0, max = 0, sum = 0, last = 0;
    uint64_t count = 0;
  };
  struct Open {
    const protocol::MetricRule* rule = nullptr;
    Window window;
  };
  const protocol::MetricRule* rule_for(const std::string& metric) const;
  void emit(const std::string& metric, const Labels& labels, const protocol::MetricRule& rule,
            const Window& w);
  void put(const std::string& metric, const Labels& labels, telemetry::Sample s);

  protocol::TelemetryRules rules_;
  std::map<std::pair<std::string, Labels>, Open> open_;
  std::map<std::pair<std::string, Labels>, std::vector<telemetry::Sample>> ready_;
};

}  // namespace drover::agent
