#include "agent/metric_aggregator.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <utility>

namespace drover::agent {

using protocol::AggregateFunction;
using protocol::MetricRule;

const MetricRule* MetricAggregator::rule_for(const std::string& metric) const {
  const MetricRule* fallback = nullptr;
  for (const MetricRule& r : rules_.metrics) {
    if (r.metric == metric) return r.raw() ? nullptr : &r;
    if (r.metric == "*") fallback = &r;
  }
  return fallback != nullptr && !fallback->raw() ? fallback : nullptr;
}

void MetricAggregator::put(const std::string& metric, const Labels& labels, telemetry::Sample s) {
  auto& out = ready_[{metric, labels}];
  if (!out.empty() && out.back().t_ms >= s.t_ms) return;  // never out of order
  out.push_back(s);
}

void MetricAggregator::emit(const std::string& metric, const Labels& labels, const MetricRule& rule,
                            const Window& w) {
  if (w.count == 0) return;
  for (AggregateFunction f : rule.functions) {
    double v = 0;
    switch (f) {
      case AggregateFunction::kMin:
        v = w.min;
        break;
      case AggregateFunction::kMax:
        v = w.max;
        break;
      case AggregateFunction::kMean:
        v = w.sum / static_cast<double>(w.count);
        break;
      case AggregateFunction::kLast:
        v = w.last;
        break;
      case AggregateFunction::kCount:
        v = static_cast<double>(w.count);
        break;
    }
    Labels with = labels;
    with.emplace_back("agg", to_string(f));
    std::sort(with.begin(), with.end());
    put(metric, with, {w.end_ms, v});
  }
}

void MetricAggregator::set_rules(protocol::TelemetryRules rules, int64_t now_ms) {
  // The open intervals point into the old rules: kept alive (a moved vector keeps its
  // storage) until each is compared with its new rule.
  const protocol::TelemetryRules old = std::exchange(rules_, std::move(rules));
  for (auto it = open_.begin(); it != open_.end();) {
    const MetricRule* rule = rule_for(it->first.first);
    if (rule != nullptr && it->second.rule != nullptr && *rule == *it->second.rule) {
      it->second.rule = rule;  // same rule, new storage
      ++it;
      continue;
    }
    if (it->second.rule != nullptr) {
      Window w = it->second.window;
      w.end_ms = std::min(w.end_ms, now_ms);  // never a time still to come
      emit(it->first.first, it->first.second, *it->second.rule, w);
    }
    it = open_.erase(it);
  }
}

void MetricAggregator::add(const std::vector<protocol::TelemetrySeries>& series) {
  for (const protocol::TelemetrySeries& s : series) {
    const bool has_agg = std::any_of(s.labels.begin(), s.labels.end(),
                                     [](const auto& l) { return l.first == "agg"; });
    const MetricRule* rule = has_agg ? nullptr : rule_for(s.metric);
    if (rule == nullptr) {
      for (const telemetry::Sample& sample : s.samples) put(s.metric, s.labels, sample);
      continue;
    }
    const int64_t every = rule->interval.count();
    for (const telemetry::Sample& sample : s.samples) {
      if (!std::isfinite(sample.value)) continue;  // no aggregate of a NaN means anything
      // The interval holding t: (end - every, end].
      const int64_t end = (sample.t_ms / every + (sample.t_ms % every > 0 ? 1 : 0)) * every;
      auto [it, added] = open_.try_emplace({s.metric, s.labels});
      Open& o = it->second;
      if (!added && o.window.end_ms != end) {
        if (end < o.window.end_ms) continue;  // older than the open interval
        emit(s.metric, s.labels, *o.rule, o.window);
        o.window = Window{};
      }
      o.rule = rule;
      Window& w = o.window;
      w.end_ms = end;
      if (w.count == 0) {
        w.min = w.max = sample.value;
      } else {
        w.min = std::min(w.min, sample.value);
        w.max = std::max(w.max, sample.value);
      }
      w.sum += sample.value;
      w.last = sample.value;
      ++w.count;
    }
  }
}

std::vector<protocol::TelemetrySeries> MetricAggregator::take(int64_t now_ms, bool close_open) {
  for (auto it = open_.begin(); it != open_.end();) {
    if (it->second.window.end_ms <= now_ms || close_open) {
      Window w = it->second.window;
      w.end_ms = std::min(w.end_ms, now_ms);
      emit(it->first.first, it->first.second, *it->second.rule, w);
      it = open_.erase(it);
    } else {
      ++it;
    }
  }
  std::vector<protocol::TelemetrySeries> out;
  out.reserve(ready_.size());
  for (auto& [key, samples] : ready_) {
    out.push_back({key.first, key.second, std::move(samples)});
  }
  ready_.clear();
  return out;
}

int64_t MetricAggregator::next_due_ms() const {
  int64_t due = INT64_MAX;
  for (const auto& [key, o] : open_) due = std::min(due, o.window.end_ms);
  return due;
}

}  // namespace drover::agent
