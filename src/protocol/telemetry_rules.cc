#include "protocol/telemetry_rules.h"

#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "protocol/telemetry_batch.h"

namespace drover::protocol {
namespace {

using nlohmann::json;

json rules_json(const std::vector<MetricRule>& metrics) {
  json out = json::array();
  for (const MetricRule& m : metrics) {
    json functions = json::array();
    for (AggregateFunction f : m.functions) functions.push_back(to_string(f));
    out.push_back({{"metric", m.metric},
                   {"interval_s", m.interval.count() / 1000},
                   {"aggregates", functions}});
  }
  return out;
}

// FNV-1a, 64 bits, in hex: a name for a set of rules, not a defence against anyone.
std::string fingerprint(std::string_view text) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (char c : text) {
    h ^= static_cast<uint8_t>(c);
    h *= 0x100000001b3ULL;
  }
  char out[17];
  std::snprintf(out, sizeof out, "%016llx", static_cast<unsigned long long>(h));
  return out;
}

}  // namespace

const char* to_string(AggregateFunction f) {
  switch (f) {
    case AggregateFunction::kMin:
      return "min";
    case AggregateFunction::kMax:
      return "max";
    case AggregateFunction::kMean:
      return "mean";
    case AggregateFunction::kLast:
      return "last";
    case AggregateFunction::kCount:
      return "count";
  }
  return "?";
}

Result<AggregateFunction> parse_aggregate_function(std::string_view s) {
  for (auto f : {AggregateFunction::kMin, AggregateFunction::kMax, AggregateFunction::kMean,
                 AggregateFunction::kLast, AggregateFunction::kCount}) {
    if (s == to_string(f)) return f;
  }
  return invalid_argument("unknown aggregate '" + std::string(s) +
                          "' (min, max, mean, last, count)");
}

TelemetryRules make_telemetry_rules(std::vector<MetricRule> metrics) {
  std::sort(metrics.begin(), metrics.end(),
            [](const MetricRule& a, const MetricRule& b) { return a.metric < b.metric; });
  for (MetricRule& m : metrics) {
    std::sort(m.functions.begin(), m.functions.end());
    m.functions.erase(std::unique(m.functions.begin(), m.functions.end()), m.functions.end());
  }
  TelemetryRules out;
  if (!metrics.empty()) out.etag = fingerprint(rules_json(metrics).dump());
  out.metrics = std::move(metrics);
  return out;
}

std::string encode_telemetry_rules(const TelemetryRules& rules) {
  return json{{"etag", rules.etag}, {"metrics", rules_json(rules.metrics)}}.dump();
}

Result<TelemetryRules> decode_telemetry_rules(std::string_view text) {
  const json j = json::parse(text, nullptr, false);
  auto bad = [](const std::string& why) { return invalid_argument("telemetry rules: " + why); };
  if (!j.is_object() || !j.contains("etag") || !j["etag"].is_string() || !j.contains("metrics") ||
      !j["metrics"].is_array()) {
    return bad("an object with etag and metrics");
  }
  std::vector<MetricRule> metrics;
  for (const json& m : j["metrics"]) {
    if (!m.is_object() || !m.contains("metric") || !m["metric"].is_string())
      return bad("each rule names its metric");
    MetricRule rule;
    rule.metric = m["metric"].get<std::string>();
    if (rule.metric != "*" && !is_valid_metric_name(rule.metric))
      return bad("'" + rule.metric.substr(0, 64) + "' is not a metric name");
    const json interval = m.value("interval_s", json(0));
    if (!interval.is_number_integer() || interval.get<int64_t>() < 0 ||
        interval.get<int64_t>() > 86'400) {
      return bad(rule.metric + ": interval_s is 0 to 86400");
    }
    rule.interval = seconds(interval.get<int64_t>());
    const json aggregates = m.value("aggregates", json::array());
    if (!aggregates.is_array()) return bad(rule.metric + ": aggregates is a list");
    for (const json& a : aggregates) {
      if (!a.is_string()) return bad(rule.metric + ": an aggregate is a name");
      auto f = parse_aggregate_function(a.get<std::string>());
      if (!f.ok()) return bad(rule.metric + ": " + f.error().message);
      rule.functions.push_back(*f);
    }
    std::sort(rule.functions.begin(), rule.functions.end());
    rule.functions.erase(std::unique(rule.functions.begin(), rule.functions.end()),
                         rule.functions.end());
    if (rule.raw() != (rule.interval == Duration(0)))
      return bad(rule.metric + ": aggregates and an interval go together");
    metrics.push_back(std::move(rule));
  }
  TelemetryRules out = make_telemetry_rules(std::move(metrics));
  out.etag = j["etag"].get<std::string>();  // the server's name for them
  return out;
}

}  // namespace drover::protocol
