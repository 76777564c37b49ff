#include "health/device_health.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

namespace drover::health {
namespace {

double seconds_of(Duration d) { return static_cast<double>(d.count()) / 1000; }

// Without a total, no rise counts as a refill.
constexpr double kNoRefill = std::numeric_limits<double>::infinity();

const SeriesWindow* find(const DeviceFacts& facts, std::string_view metric,
                         const std::vector<std::pair<std::string, std::string>>& labels) {
  for (const SeriesWindow& s : facts.series) {
    if (s.metric == metric && s.labels == labels) return &s;
  }
  return nullptr;
}

std::string label(const SeriesWindow& s, std::string_view name) {
  for (const auto& [k, v] : s.labels) {
    if (k == name) return v;
  }
  return "";
}

std::optional<double> newest(const SeriesWindow* s) {
  if (s == nullptr || s->values.empty()) return std::nullopt;
  return s->values.back().value;
}

struct Judge {
  const DeviceFacts& facts;
  Timestamp now;
  const HealthOptions& o;
  DeviceHealth out;

  void add(std::string kind, Severity severity, std::string text) {
    HealthReason r;
    r.kind = std::move(kind);
    r.severity = severity;
    r.points = severity == Severity::kCritical ? o.critical_points : o.warning_points;
    r.text = std::move(text);
    out.reasons.push_back(std::move(r));
  }

  void freshness() {
    const telemetry::DeviceFreshness& f = facts.freshness;
    const std::string every = format_span(seconds_of(f.contract.report_every));
    switch (f.freshness) {
      case Freshness::kOffline:
        add("offline", Severity::kCritical,
            f.contact_age_s < 0 ? "never heard from"
                                : "not heard from for " + format_span(f.contact_age_s) +
                                      " (it reports every " + every + ")");
        break;
      case Freshness::kStale:
        add("no_data", Severity::kCritical,
            (f.data_age_s < 0 ? std::string("no data yet")
                              : "no data for " + format_span(f.data_age_s)) +
                " while it checks in (it reports every " + every + ")");
        break;
      case Freshness::kLate:
        add("late", Severity::kWarning,
            "its data is late: the newest is " + format_span(f.data_age_s) +
                " old (it reports every " + every + ")");
        break;
      case Freshness::kNoContract:
        // Without a contract there is no "late": only a device quiet for as long as the fleet
        // view counts as lost is judged, as offline.
        if (f.contact_age_s >= seconds_of(o.lost_after)) {
          add("offline", Severity::kCritical,
              "not heard from for " + format_span(f.contact_age_s) +
                  " (it has no telemetry contract; " + format_span(seconds_of(o.lost_after)) +
                  " of quiet counts as lost)");
        }
        break;
      case Freshness::kFresh:
        break;
    }
  }

  void alerts() {
    for (const Alert& a : facts.open_alerts) {
      if (a.state == AlertState::kResolved) continue;
      // An alert about what freshness already found (a stuck device's no_data alert) says
      // what is being done about that reason; it takes no points of its own.
      const auto same = std::find_if(out.reasons.begin(), out.reasons.end(),
                                     [&a](const HealthReason& r) { return r.kind == a.condition; });
      if (same != out.reasons.end()) {
        same->text += "; " + a.id + " (" + a.rule + "): " +
                      (a.escalated ? "with a person: " + a.escalation : "remediation under way");
        same->alert = a.id;
        continue;
      }
      add("alert", a.escalated ? Severity::kCritical : Severity::kWarning,
          a.id + " (" + a.rule + "): " +
              (a.escalated ? "with a person: " + a.escalation
                           : "remediation under way: " + a.summary));
      out.reasons.back().alert = a.id;
    }
  }

  // A resource's forecast toward `limit` (below its values), a reason when it is near; a
  // critical one when its newest reading is at the limit already (run out now: no forecast).
  // Forecast from the values since the resource was last refilled — a rise of more than
  // `refill` from one reading to the next (a restart freeing memory, logs cleaned, a charge):
  // a week's line through a refill would still point at the old end.
  // `toward`: the way the values go to run out — down to the limit (memory, a disk, a
  // battery, a floor), or up to it (a ceiling: a refill is then a fall).
  // `profile_limit`: a limit the profile declares (MetricCheck) — the value may sit at it, and
  // a forecast is a reason, and listed, only when even the slow end of its interval is within
  // the horizon (on any metric a young noisy series' chance slope would be one otherwise).
  void resource(const SeriesWindow& s, std::string kind, std::string name, double limit,
                std::string_view what, double refill, Toward toward = Toward::kDown,
                bool profile_limit = false) {
    if (s.values.empty()) return;
    const double sign = toward == Toward::kUp ? -1 : 1;  // the values' way to the limit, downward
    const double level = s.values.back().value;
    if (profile_limit ? sign * level < sign * limit : sign * level <= sign * limit) {
      char figures[96];
      std::snprintf(figures, sizeof figures, " now (%.4g at its newest reading; the limit is %.4g)",
                    level, limit);
      add(std::move(kind), Severity::kCritical, name + " " + std::string(what) + figures);
      return;
    }
    size_t from = 0;
    for (size_t i = 1; i < s.values.size(); ++i) {
      if (sign * (s.values[i].value - s.values[i - 1].value) > refill) from = i;
    }
    ForecastOptions fo = o.forecast;
    fo.toward = toward;
    auto c = forecast_crossing(
        std::span<const TimedValue>(s.values.data() + from, s.values.size() - from), limit, now,
        fo);
    if (!c) return;
    ResourceForecast rf{std::move(name), s.metric, s.labels, limit, *c};
    const double expected = seconds_of(c->expected);
    if (profile_limit && c->latest_s > seconds_of(o.horizon)) return;
    if (expected <= seconds_of(o.horizon)) {
      const std::string latest = std::isfinite(c->latest_s) ? format_span(c->latest_s) : "never";
      add(std::move(kind),
          expected <= seconds_of(o.soon) ? Severity::kCritical : Severity::kWarning,
          rf.resource + " " + std::string(what) + " in about " + format_span(expected) + " (" +
              format_span(seconds_of(c->earliest)) + " to " + latest + ", " +
              std::to_string(static_cast<int>(std::lround(o.forecast.confidence * 100))) +
              "% interval)");
      out.reasons.back().forecast = rf;
    }
    out.forecasts.push_back(std::move(rf));
  }

  void resources() {
    for (const SeriesWindow& s : facts.series) {
      if (s.metric == "memory_available_bytes") {
        const double total = newest(find(facts, "memory_total_bytes", s.labels)).value_or(0);
        resource(s, "memory", "memory", total * o.memory_floor, "exhausted",
                 total > 0 ? total * o.refill_share : kNoRefill);
      } else if (s.metric == "disk_free_bytes") {
        const double total = newest(find(facts, "disk_total_bytes", s.labels)).value_or(0);
        const std::string mount = label(s, "mount");
        resource(s, "disk", mount.empty() ? "disk" : "disk " + mount, total * o.disk_floor, "full",
                 total > 0 ? total * o.refill_share : kNoRefill);
      } else if (s.metric == "battery_level_percent") {
        if (newest(find(facts, "battery_charging", s.labels)).value_or(0) > 0) continue;
        const std::string supply = label(s, "supply");
        resource(s, "battery", supply.empty() ? "battery" : "battery " + supply,
                 o.battery_floor_percent, "empty", 100 * o.refill_share);
      }
    }
  }

  // What the device's profile declares (MetricCheck) on each series of the metric: its
  // limits, forecast as a resource's end is; a value frozen while the device reports.
  void checks() {
    const telemetry::DeviceFreshness& f = facts.freshness;
    const bool reporting = f.freshness == Freshness::kFresh || f.freshness == Freshness::kLate;
    for (const MetricCheck& c : f.checks) {
      for (const SeriesWindow& s : facts.series) {
        if (s.metric != c.metric || s.values.empty() || label(s, "agg") == "count") continue;
        const std::string name = series_name(s);
        if (c.above) {
          resource(s, "limit", name, *c.above, "above its limit", kNoRefill, Toward::kUp, true);
        }
        if (c.below) {
          resource(s, "limit", name, *c.below, "below its limit", kNoRefill, Toward::kDown, true);
        }
        // Stale or offline already says its data does not come; without a contract its values
        // up to the newest are all there is to go by.
        if (c.frozen_after > Duration(0) && is_value_series(facts, s) &&
            (reporting || f.freshness == Freshness::kNoContract)) {
          frozen_value(s, name, c);
        }
      }
    }
  }

  // Read from the `recent` ranges where there are some; only a series still reporting: its
  // newest reading within the contract's stale time (without one, within frozen_after) and its
  // own median spacing (an aggregate the agent sends once an interval, stamped at its end; a
  // rollup bucket, stamped at its start).
  void frozen_value(const SeriesWindow& s, const std::string& name, const MetricCheck& c) {
    std::vector<ValueRange> ranges;
    if (s.recent) {
      ranges = *s.recent;
    } else {
      for (const TimedValue& v : s.values) ranges.push_back({v.at, v.value, v.value});
    }
    if (ranges.empty()) return;
    const TelemetryContract& contract = facts.freshness.contract;
    Duration fresh =
        contract.report_every > Duration(0) ? contract.effective_stale_after() : c.frozen_after;
    if (ranges.size() >= 2) {
      std::vector<Duration> gaps;
      gaps.reserve(ranges.size() - 1);
      for (size_t i = 1; i < ranges.size(); ++i) gaps.push_back(ranges[i].at - ranges[i - 1].at);
      std::nth_element(gaps.begin(), gaps.begin() + static_cast<std::ptrdiff_t>(gaps.size() / 2),
                       gaps.end());
      fresh += gaps[gaps.size() / 2];
    }
    if (now - ranges.back().at > fresh) return;
    const Frozen fz = frozen_ranges(ranges, c.frozen_after, c.tolerance);
    if (!fz.frozen) return;
    char value[32];
    std::snprintf(value, sizeof value, "%.6g", (ranges.back().min + ranges.back().max) / 2);
    add("frozen", Severity::kCritical,
        name + " has stayed at " + value + " for " +
            (fz.since == ranges.front().at ? "at least " : "") +
            format_span(seconds_of(ranges.back().at - fz.since)) +
            " while the device reports (frozen after " + format_span(seconds_of(c.frozen_after)) +
            ")");
  }

  // Boots in the last 24 hours, from the counter's increases between readings within them
  // (a value below the one before is a counter that started again: it counts from zero).
  void reboots() {
    for (const SeriesWindow& s : facts.series) {
      if (s.metric != "reboots_total") continue;
      const Timestamp since = now - hours(24);
      double boots = 0;
      const TimedValue* before = nullptr;
      for (const TimedValue& v : s.values) {
        // Only increases seen within the day: a reading after a gap does not put the boots
        // of the gap into it.
        if (before != nullptr && before->at >= since) {
          boots += v.value >= before->value ? v.value - before->value : v.value;
        }
        before = &v;
      }
      if (boots > o.reboots_per_day) {
        add("reboots", Severity::kCritical,
            "rebooted " + std::to_string(std::lround(boots)) +
                " times in the last 24 h (a loop: more than " + std::to_string(o.reboots_per_day) +
                ")");
      }
    }
  }
};

}  // namespace

bool is_value_series(const DeviceFacts& facts, const SeriesWindow& s) {
  const std::string agg = label(s, "agg");
  if (agg.empty() || agg == "mean") return true;
  if (agg != "last") return false;
  // The last only when the agent sends no mean of the same labels.
  auto with_mean = s.labels;
  for (auto& [k, v] : with_mean) {
    if (k == "agg") v = "mean";
  }
  return find(facts, s.metric, with_mean) == nullptr;
}

std::string series_name(const SeriesWindow& s) {
  std::string out = s.metric;
  for (size_t i = 0; i < s.labels.size(); ++i) {
    out += (i == 0 ? "{" : ",") + s.labels[i].first + "=" + s.labels[i].second;
  }
  if (!s.labels.empty()) out += "}";
  return out;
}

std::string format_span(double seconds) {
  char buf[32];
  if (!std::isfinite(seconds)) return "never";
  if (seconds >= 86'400) {
    std::snprintf(buf, sizeof buf, "%.1f d", seconds / 86'400);
  } else if (seconds >= 3'600) {
    std::snprintf(buf, sizeof buf, "%.1f h", seconds / 3'600);
  } else if (seconds >= 120) {
    std::snprintf(buf, sizeof buf, "%.0f min", seconds / 60);
  } else {
    std::snprintf(buf, sizeof buf, "%.0f s", seconds);
  }
  return buf;
}

const char* to_string(Severity s) { return s == Severity::kCritical ? "critical" : "warning"; }

const char* to_string(HealthStatus s) {
  switch (s) {
    case HealthStatus::kHealthy:
      return "healthy";
    case HealthStatus::kDegraded:
      return "degraded";
    case HealthStatus::kCritical:
      return "critical";
    case HealthStatus::kUnknown:
      return "unknown";
  }
  return "?";
}

namespace {

// The score and status from the reasons (the most severe first).
void settle(DeviceHealth& d, const DeviceFacts* facts) {
  std::stable_sort(
      d.reasons.begin(), d.reasons.end(),
      [](const HealthReason& a, const HealthReason& b) { return a.points > b.points; });
  int taken = 0;
  bool critical = false;
  for (const HealthReason& r : d.reasons) {
    taken += r.points;
    critical = critical || r.severity == Severity::kCritical;
  }
  d.score = std::max(0, 100 - taken);
  if (critical) {
    d.status = HealthStatus::kCritical;
  } else if (taken > 0) {
    d.status = HealthStatus::kDegraded;
  } else if (facts != nullptr && facts->freshness.freshness == Freshness::kNoContract &&
             facts->series.empty() && facts->open_alerts.empty()) {
    d.status = HealthStatus::kUnknown;
  }
}

}  // namespace

std::optional<BatteryDrain> battery_drain(const DeviceFacts& facts, const HealthOptions& o) {
  for (const SeriesWindow& s : facts.series) {
    if (s.metric != "battery_level_percent" || s.values.empty()) continue;
    if (newest(find(facts, "battery_charging", s.labels)).value_or(0) > 0) return std::nullopt;
    // Since the last rise of more than a point: a charge, or a battery swapped.
    size_t from = 0;
    for (size_t i = 1; i < s.values.size(); ++i) {
      if (s.values[i].value > s.values[i - 1].value + 1) from = i;
    }
    const std::span<const TimedValue> stretch(s.values.data() + from, s.values.size() - from);
    if (stretch.size() < o.forecast.min_points ||
        stretch.back().at - stretch.front().at < o.drain_span) {
      return std::nullopt;
    }
    auto slope = slope_per_hour(stretch);
    if (!slope || *slope >= 0) return std::nullopt;
    return BatteryDrain{label(s, "supply"), -*slope};
  }
  return std::nullopt;
}

void add_reason(DeviceHealth& device, HealthReason reason) {
  const bool was_unknown = device.status == HealthStatus::kUnknown;
  device.reasons.push_back(std::move(reason));
  if (was_unknown) device.status = HealthStatus::kHealthy;
  settle(device, nullptr);
}

DeviceHealth judge_device(const DeviceFacts& facts, Timestamp now, const HealthOptions& options) {
  Judge j{facts, now, options, {}};
  j.out.device_id = facts.freshness.device;
  j.out.device_type = facts.freshness.device_type;
  j.out.quiet_s = facts.freshness.contact_age_s;
  if (facts.freshness.decommissioned) {
    // Out of service: nothing of it is a risk to the fleet any more.
    j.out.status = HealthStatus::kUnknown;
    j.out.reasons.push_back({"decommissioned",
                             Severity::kWarning,
                             0,
                             "decommissioned: kept for its history, not judged",
                             "",
                             {}});
    return j.out;
  }
  j.freshness();
  j.resources();
  j.checks();
  j.reboots();
  j.alerts();  // last: an alert about a reason found above is folded into it
  DeviceHealth& d = j.out;
  std::sort(d.forecasts.begin(), d.forecasts.end(),
            [](const ResourceForecast& a, const ResourceForecast& b) {
              return a.crossing.expected < b.crossing.expected;
            });
  settle(d, &facts);
  return d;
}

FleetHealth summarize(std::span<const DeviceHealth> devices, Duration within, size_t limit,
                      const HealthOptions& options) {
  FleetHealth f;
  f.devices = devices.size();
  f.within = within;
  const double lost_after = seconds_of(options.lost_after);
  const double month = 30.0 * 86'400;
  std::vector<const DeviceHealth*> at_risk;
  for (const DeviceHealth& d : devices) {
    switch (d.status) {
      case HealthStatus::kHealthy:
        ++f.healthy;
        break;
      case HealthStatus::kDegraded:
        ++f.degraded;
        break;
      case HealthStatus::kCritical:
        ++f.critical;
        break;
      case HealthStatus::kUnknown:
        ++f.unknown;
        break;
    }
    if (d.quiet_s >= lost_after) {
      ++f.lost;
      if (d.quiet_s < lost_after + month) ++f.lost_last_30_days;
    }
    const bool unreadable =
        d.status == HealthStatus::kUnknown &&
        std::any_of(d.reasons.begin(), d.reasons.end(),
                    [](const HealthReason& r) { return r.kind == "unreadable"; });
    if (unreadable) ++f.unreadable;
    if (d.status == HealthStatus::kDegraded || d.status == HealthStatus::kCritical || unreadable) {
      at_risk.push_back(&d);
    }
    for (const ResourceForecast& rf : d.forecasts) {
      if (rf.crossing.expected <= within) f.predicted.emplace_back(d.device_id, rf);
    }
  }
  if (f.devices > 0) {
    f.loss_rate_per_month =
        static_cast<double>(f.lost_last_30_days) / static_cast<double>(f.devices);
  }
  std::sort(at_risk.begin(), at_risk.end(), [](const DeviceHealth* a, const DeviceHealth* b) {
    return a->score != b->score ? a->score < b->score : a->device_id < b->device_id;
  });
  f.at_risk_total = at_risk.size();
  for (size_t i = 0; i < at_risk.size() && i < limit; ++i) f.at_risk.push_back(*at_risk[i]);
  std::sort(f.predicted.begin(), f.predicted.end(), [](const auto& a, const auto& b) {
    return a.second.crossing.expected != b.second.crossing.expected
               ? a.second.crossing.expected < b.second.crossing.expected
               : a.first < b.first;
  });
  f.predicted_total = f.predicted.size();
  if (f.predicted.size() > limit) f.predicted.resize(limit);
  return f;
}

}  // namespace drover::health
