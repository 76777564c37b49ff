#include "model/device_profile.h"

#include <algorithm>
#include <cmath>

#include "model/device.h"
#include "protocol/telemetry_batch.h"

namespace drover {

const char* to_string(Freshness f) {
  switch (f) {
    case Freshness::kFresh:
      return "fresh";
    case Freshness::kLate:
      return "late";
    case Freshness::kStale:
      return "stale";
    case Freshness::kOffline:
      return "offline";
    case Freshness::kNoContract:
      return "no_contract";
  }
  return "?";
}

Duration TelemetryContract::effective_stale_after() const {
  if (stale_after > Duration(0)) return stale_after;
  return 3 * report_every + late_after;
}

Freshness judge(const TelemetryContract& contract, Duration data_age, Duration contact_age) {
  if (contract.report_every <= Duration(0)) return Freshness::kNoContract;
  const Duration stale = contract.effective_stale_after();
  const bool heard = contact_age >= Duration(0) && contact_age <= stale;
  if (!heard) return Freshness::kOffline;
  if (data_age < Duration(0) || data_age > stale) return Freshness::kStale;
  if (data_age > contract.report_every + contract.late_after) return Freshness::kLate;
  return Freshness::kFresh;
}

Status validate(DeviceProfile& p) {
  if (!is_valid_name(p.device_type)) {
    return invalid_argument("device type '" + p.device_type + "' is not a valid name");
  }
  const TelemetryContract& t = p.telemetry;
  if (t.report_every < Duration(0) || t.late_after < Duration(0) || t.stale_after < Duration(0)) {
    return invalid_argument("telemetry: durations cannot be negative");
  }
  if (t.report_every == Duration(0) &&
      (t.late_after > Duration(0) || t.stale_after > Duration(0))) {
    return invalid_argument("telemetry: late_after and stale_after need report_every");
  }
  if (t.stale_after > Duration(0) && t.stale_after <= t.report_every + t.late_after) {
    return invalid_argument("telemetry: stale_after must exceed report_every + late_after");
  }
  for (MetricRule& rule : p.metrics) {
    if (rule.metric != "*" && !protocol::is_valid_metric_name(rule.metric)) {
      return invalid_argument("metric '" + rule.metric + "' is not a valid metric name");
    }
    std::sort(rule.functions.begin(), rule.functions.end());
    if (std::adjacent_find(rule.functions.begin(), rule.functions.end()) != rule.functions.end()) {
      return invalid_argument("metric '" + rule.metric + "': an aggregate is named twice");
    }
    if (rule.raw() && rule.interval != Duration(0)) {
      return invalid_argument("metric '" + rule.metric + "': an interval needs aggregates");
    }
    if (!rule.raw() && (rule.interval < seconds(1) || rule.interval > days(1))) {
      return invalid_argument("metric '" + rule.metric +
                              "': the interval must be between 1s and 1d");
    }
  }
  for (const MetricCheck& c : p.health) {
    const std::string what = "health check of '" + c.metric + "': ";
    if (!protocol::is_valid_metric_name(c.metric)) {
      return invalid_argument("health check: metric '" + c.metric + "' is not a valid metric name");
    }
    if (!c.above && !c.below && c.frozen_after == Duration(0) && !c.drift) {
      return invalid_argument(what + "give at least one of above, below, frozen_after, drift");
    }
    if ((c.above && !std::isfinite(*c.above)) || (c.below && !std::isfinite(*c.below))) {
      return invalid_argument(what + "limits must be finite numbers");
    }
    if (c.above && c.below && *c.below >= *c.above) {
      return invalid_argument(what + "below must be less than above");
    }
    if (c.frozen_after != Duration(0) &&
        (c.frozen_after < minutes(1) || c.frozen_after > days(7))) {
      return invalid_argument(what + "frozen_after must be between 1m and 7d");
    }
    if (!std::isfinite(c.tolerance) || c.tolerance < 0) {
      return invalid_argument(what + "tolerance must be a number of at least 0");
    }
    if (c.tolerance > 0 && c.frozen_after == Duration(0)) {
      return invalid_argument(what + "a tolerance needs frozen_after");
    }
    // Frozen and drift judge the metric's value: what the agent sends of it must carry one.
    auto rule = std::find_if(p.metrics.begin(), p.metrics.end(),
                             [&c](const MetricRule& r) { return r.metric == c.metric; });
    if (rule == p.metrics.end()) {
      rule = std::find_if(p.metrics.begin(), p.metrics.end(),
                          [](const MetricRule& r) { return r.metric == "*"; });
    }
    const auto sends = [&rule](AggregateFunction f) {
      return std::find(rule->functions.begin(), rule->functions.end(), f) != rule->functions.end();
    };
    if ((c.frozen_after > Duration(0) || c.drift) && rule != p.metrics.end() && !rule->raw() &&
        !sends(AggregateFunction::kMean) && !sends(AggregateFunction::kLast)) {
      return invalid_argument(what +
                              "frozen_after and drift judge the value: the metric's rule ('" +
                              rule->metric + "') must aggregate mean or last");
    }
  }
  std::sort(p.health.begin(), p.health.end(),
            [](const MetricCheck& a, const MetricCheck& b) { return a.metric < b.metric; });
  auto twice = std::adjacent_find(
      p.health.begin(), p.health.end(),
      [](const MetricCheck& a, const MetricCheck& b) { return a.metric == b.metric; });
  if (twice != p.health.end()) {
    return invalid_argument("metric '" + twice->metric + "' has two health checks");
  }
  std::sort(p.metrics.begin(), p.metrics.end(),
            [](const MetricRule& a, const MetricRule& b) { return a.metric < b.metric; });
  auto same = std::adjacent_find(
      p.metrics.begin(), p.metrics.end(),
      [](const MetricRule& a, const MetricRule& b) { return a.metric == b.metric; });
  if (same != p.metrics.end()) {
    return invalid_argument("metric '" + same->metric + "' has two rules");
  }
  if (Status st = protocol::validate(p.config); !st.ok()) {
    return invalid_argument("config: " + st.error().message);
  }
  return ok_status();
}

}  // namespace drover
