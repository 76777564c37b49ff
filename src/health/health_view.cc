#include "health/health_view.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <optional>
#include <span>
#include <tuple>

namespace drover::health {
namespace {

constexpr size_t kAllAlerts = 1'000'000;

// What is read of a device: only the metrics asked for, or those judge_device reads.
bool is_read(std::string_view metric, const std::vector<MetricCheck>& checks,
             std::span<const std::string_view> only) {
  if (!only.empty()) return std::find(only.begin(), only.end(), metric) != only.end();
  return std::find(std::begin(HealthOptions::kMetrics), std::end(HealthOptions::kMetrics),
                   metric) != std::end(HealthOptions::kMetrics) ||
         std::any_of(checks.begin(), checks.end(),
                     [metric](const MetricCheck& c) { return c.metric == metric; });
}

constexpr std::string_view kBattery[] = {"battery_level_percent", "battery_charging"};

// "temp_c{probe=1} is drifting from the 9 devices of its type at its site: 1.8 off their
// reading beyond its usual offset, since 2.0 d ago"
std::string drift_text(const SeriesWindow& s, const SensorDrift& d, size_t peers, Timestamp now) {
  char text[160];
  std::snprintf(text, sizeof text,
                " is drifting from the %zu devices of its type at its site: %.3g off their "
                "reading beyond its usual offset, since ",
                peers, d.residual);
  return series_name(s) + text + format_span(static_cast<double>((now - d.since).count()) / 1000) +
         " ago";
}

// "drains 2.1 %/h, 2.0x the median of its type's 40 devices (1.0 %/h)"
std::string drain_text(const BatteryDrain& drain, const PeerVerdict& v, size_t peers) {
  char text[160];
  std::snprintf(text, sizeof text,
                "battery%s%s drains %.3g %%/h, %.1fx the median of its type's %zu devices "
                "(%.3g %%/h)",
                drain.supply.empty() ? "" : " ", drain.supply.c_str(), drain.per_hour,
                v.median > 0 ? drain.per_hour / v.median : 0.0, peers, v.median);
  return text;
}

}  // namespace

// A battery draining far faster than its type's: a warning, against its peers' drains (the
// device itself among them).
void HealthView::judge_drain(DeviceHealth& device, const BatteryDrain& drain,
                             const std::optional<PeerSpread>& peers) const {
  if (!peers) return;
  const PeerVerdict v = judge_against(drain.per_hour, *peers, options_.drain_peers);
  if (!v.outlier) return;
  add_reason(device, {"battery_drain",
                      Severity::kWarning,
                      options_.warning_points,
                      drain_text(drain, v, peers->peers),
                      "",
                      {}});
}

Result<std::vector<Alert>> HealthView::open_alerts(std::string_view device) const {
  if (alerts_ == nullptr) return std::vector<Alert>{};
  Store::AlertQuery q;
  q.device_id = std::string(device);
  q.unresolved_only = true;
  q.limit = kAllAlerts;
  return alerts_->list(q);
}

void HealthView::judge_drift(std::span<DeviceHealth> judged, const DriftGroup& group) const {
  std::vector<std::span<const TimedValue>> sensors;
  sensors.reserve(group.size());
  for (const auto& [index, series] : group) sensors.emplace_back(series.values);
  const std::vector<SensorDrift> found =
      drift_among(sensors, options_.drift_bucket, options_.drift_min_peers, options_.drift);
  const Timestamp now = clock_.now();
  for (size_t i = 0; i < found.size(); ++i) {
    const auto& [index, series] = group[i];
    if (!found[i].drifting || index >= judged.size()) continue;
    // A sensor frozen is off its peers too: its reason "frozen" says more.
    const std::string stuck = series_name(series) + " has stayed at ";
    const std::vector<HealthReason>& reasons = judged[index].reasons;
    if (std::any_of(reasons.begin(), reasons.end(), [&stuck](const HealthReason& r) {
          return r.kind == "frozen" && r.text.starts_with(stuck);
        })) {
      continue;
    }
    add_reason(judged[index], {"drift",
                               Severity::kWarning,
                               options_.warning_points,
                               drift_text(series, found[i], group.size() - 1, now),
                               "",
                               {}});
  }
}

Result<DeviceFacts> HealthView::facts(telemetry::DeviceFreshness freshness,
                                      std::vector<Alert> open_alerts,
                                      std::span<const std::string_view> only) const {
  DeviceFacts facts;
  facts.open_alerts = std::move(open_alerts);
  auto latest = telemetry_.latest(freshness.device);
  if (!latest.ok()) return latest.error();
  const int64_t now = clock_.now().time_since_epoch().count();
  for (const telemetry::AgedValue& v : *latest) {
    if (!is_read(v.metric, freshness.checks, only)) continue;
    // A total or a charger's state is what it is now, not a mean over the hour.
    if (v.metric == "memory_total_bytes" || v.metric == "disk_total_bytes" ||
        v.metric == "battery_charging") {
      facts.series.push_back({v.metric, v.labels, {{Timestamp(Duration(v.t_ms)), v.value}}});
      continue;
    }
    telemetry::RangeQuery q;
    q.device = freshness.device;
    q.metric = v.metric;
    q.labels = v.labels;
    q.from_ms = now - options_.window.count();
    q.until_ms = now + 1;
    auto range = telemetry_.range(q);
    if (!range.ok() && range.error().code == ErrorCode::kNotFound) continue;  // dropped meanwhile
    if (!range.ok()) return range.error();
    // A young series has too few points at the resolution chosen for the window (an hourly
    // one for a week): read it finer, as far as the store keeps it.
    for (telemetry::Resolution finer : {telemetry::Resolution::k5m, telemetry::Resolution::kRaw}) {
      if (range->points.size() >= options_.forecast.min_points || range->resolution <= finer) {
        continue;
      }
      q.resolution = finer;
      auto again = telemetry_.range(q);
      if (!again.ok()) return again.error();
      if (again->points.size() > range->points.size()) range = std::move(again);
    }
    SeriesWindow s{v.metric, v.labels, {}, {}};
    const bool counter = v.metric == "reboots_total";
    s.values.reserve(range->points.size());
    for (const telemetry::RollupPoint& p : range->points) {
      if (p.count == 0) continue;
      s.values.push_back({Timestamp(Duration(p.t_ms)), counter ? p.max : p.mean()});
    }
    facts.series.push_back(std::move(s));
  }
  // A frozen check reads the series' last 2 × frozen_after up to its newest reading again, at
  // the resolution the store gives so short a span (raw up to about 2,000 samples, else
  // rollups), as ranges — a rollup's min and max say exactly whether the value moved, where a
  // week's hourly means would blur it. Only the series judged (the value, not its min or max).
  for (SeriesWindow& s : facts.series) {
    const auto check =
        std::find_if(freshness.checks.begin(), freshness.checks.end(), [&s](const MetricCheck& c) {
          return c.metric == s.metric && c.frozen_after > Duration(0);
        });
    if (!only.empty() || check == freshness.checks.end() || s.values.empty() ||
        !is_value_series(facts, s)) {
      continue;
    }
    telemetry::RangeQuery recent;
    recent.device = freshness.device;
    recent.metric = s.metric;
    recent.labels = s.labels;
    recent.from_ms =
        s.values.back().at.time_since_epoch().count() - 2 * check->frozen_after.count();
    recent.until_ms = now + 1;
    auto read = telemetry_.range(recent);
    if (!read.ok() && read.error().code == ErrorCode::kNotFound) continue;  // dropped meanwhile
    if (!read.ok()) return read.error();
    s.recent.emplace();
    for (const telemetry::RollupPoint& p : read->points) {
      if (p.count > 0) s.recent->push_back({Timestamp(Duration(p.t_ms)), p.min, p.max});
    }
  }
  facts.freshness = std::move(freshness);
  return facts;
}

Result<DeviceHealth> HealthView::device(std::string_view id) const {
  auto freshness = telemetry_.freshness(id);
  if (!freshness.ok()) return freshness.error();
  auto alerts = open_alerts(id);
  if (!alerts.ok()) return alerts.error();
  const std::string type = freshness->device_type;
  auto f = facts(std::move(*freshness), std::move(*alerts));
  if (!f.ok()) return f.error();
  DeviceHealth judged = judge_device(*f, clock_.now(), options_);
  if (f->freshness.decommissioned) return judged;
  // Each metric its profile asks to watch for drift, against up to kDriftPeers devices of its
  // type at its site: the series of each label set, the device's own first.
  for (const MetricCheck& check : f->freshness.checks) {
    if (!check.drift || f->freshness.site.empty()) continue;  // no site: no site's peers
    telemetry::Cohort at_site;
    at_site.filter.device_types = {type};
    at_site.filter.sites = {f->freshness.site};
    std::vector<DeviceFacts> peers;
    const std::string_view metric[] = {check.metric};
    for (const Device& peer : telemetry_.devices_of(at_site, kDriftPeers + 1)) {
      if (peer.id == f->freshness.device || peers.size() == kDriftPeers) continue;
      telemetry::DeviceFreshness p;
      p.device = peer.id;
      p.device_type = peer.device_type;
      auto pf = facts(std::move(p), {}, metric);
      if (pf.ok()) peers.push_back(std::move(*pf));  // else one peer fewer
    }
    for (const SeriesWindow& own : f->series) {
      if (own.metric != check.metric || !is_value_series(*f, own)) continue;
      DriftGroup group{{0, own}};
      for (const DeviceFacts& pf : peers) {
        for (const SeriesWindow& s : pf.series) {
          if (s.labels == own.labels) group.emplace_back(SIZE_MAX, s);
        }
      }
      judge_drift(std::span<DeviceHealth>(&judged, 1), group);
    }
  }
  // Its battery's drain against its type's: the drains of up to kDrainPeers of them.
  const auto drain = battery_drain(*f, options_);
  if (!drain) return judged;
  telemetry::Cohort of_type;
  of_type.filter.device_types = {type};
  std::vector<double> drains;
  for (const Device& peer : telemetry_.devices_of(of_type, kDrainPeers)) {
    telemetry::DeviceFreshness p;
    p.device = peer.id;
    p.device_type = peer.device_type;
    auto pf = facts(std::move(p), {}, kBattery);
    if (!pf.ok()) continue;  // gone meanwhile, or unreadable: one peer fewer
    if (auto d = battery_drain(*pf, options_)) drains.push_back(d->per_hour);
  }
  judge_drain(judged, *drain, peer_spread(drains, options_.drain_peers));
  return judged;
}

Result<std::vector<DeviceHealth>> HealthView::judge_all(
    const telemetry::Cohort& cohort, bool peers,
    const std::function<bool(const telemetry::DeviceFreshness&)>& only) const {
  auto all = telemetry_.freshness(cohort);
  if (!all.ok()) return all.error();
  auto alerts = open_alerts("");
  if (!alerts.ok()) return alerts.error();
  std::map<std::string, std::vector<Alert>, std::less<>> by_device;
  for (Alert& a : *alerts) by_device[a.device_id].push_back(std::move(a));
  const Timestamp now = clock_.now();
  std::vector<DeviceHealth> judged;
  judged.reserve(all->size());
  // A device whose data cannot be read is judged unknown, saying why, rather than failing the
  // view of everyone else; only when no device could be read is the view an error.
  std::optional<Error> failed;
  size_t read = 0;
  // Each device's battery drain (by its index in `judged`), and every drain of each type.
  std::vector<std::pair<size_t, BatteryDrain>> drains;
  std::map<std::string, std::vector<double>, std::less<>> drains_of_type;
  // The series a drift check watches, by type, site, metric and labels.
  using Labels = std::vector<std::pair<std::string, std::string>>;
  std::map<std::tuple<std::string, std::string, std::string, Labels>, DriftGroup> drifts;
  for (telemetry::DeviceFreshness& fr : *all) {
    if (only && !only(fr)) continue;
    auto it = by_device.find(fr.device);
    DeviceHealth unreadable;
    unreadable.device_id = fr.device;
    unreadable.device_type = fr.device_type;
    unreadable.quiet_s = fr.contact_age_s;
    auto f =
        facts(std::move(fr), it == by_device.end() ? std::vector<Alert>{} : std::move(it->second));
    if (f.ok()) {
      ++read;
      if (auto d = peers ? battery_drain(*f, options_) : std::nullopt;
          d && !f->freshness.decommissioned) {
        drains_of_type[f->freshness.device_type].push_back(d->per_hour);
        drains.emplace_back(judged.size(), std::move(*d));
      }
      judged.push_back(judge_device(*f, now, options_));
      if (!peers || f->freshness.decommissioned || f->freshness.site.empty()) continue;
      for (const MetricCheck& check : f->freshness.checks) {
        if (!check.drift) continue;
        // Which series first (is_value_series reads the others), then moved out.
        std::vector<size_t> picked;
        for (size_t k = 0; k < f->series.size(); ++k) {
          const SeriesWindow& s = f->series[k];
          if (s.metric == check.metric && is_value_series(*f, s)) picked.push_back(k);
        }
        for (size_t k : picked) {
          SeriesWindow& s = f->series[k];
          drifts[{f->freshness.device_type, f->freshness.site, s.metric, s.labels}].emplace_back(
              judged.size() - 1, std::move(s));
        }
      }
      continue;
    }
    if (f.error().code == ErrorCode::kNotFound) continue;  // decommissioned meanwhile
    if (!failed) failed = f.error();
    unreadable.status = HealthStatus::kUnknown;
    unreadable.reasons.push_back({"unreadable",
                                  Severity::kWarning,
                                  0,
                                  "its data could not be read: " + f.error().to_string(),
                                  "",
                                  {}});
    judged.push_back(std::move(unreadable));
  }
  if (failed && read == 0) return *failed;
  // Each type's median and spread once, every device of it against them.
  std::map<std::string, std::optional<PeerSpread>, std::less<>> spread_of_type;
  for (const auto& [type, of_type] : drains_of_type) {
    spread_of_type.emplace(type, peer_spread(of_type, options_.drain_peers));
  }
  for (const auto& [index, drain] : drains) {
    judge_drain(judged[index], drain, spread_of_type[judged[index].device_type]);
  }
  for (const auto& [key, group] : drifts) judge_drift(judged, group);
  return judged;
}

Result<FleetHealth> HealthView::fleet(const telemetry::Cohort& cohort, Duration within,
                                      size_t limit) const {
  auto judged = judge_all(cohort);
  if (!judged.ok()) return judged.error();
  return summarize(*judged, within, limit, options_);
}

Result<HealthFindings> HealthView::critical_findings(const std::set<Condition>& watched) const {
  std::function<bool(const telemetry::DeviceFreshness&)> only;
  if (!watched.empty() && std::all_of(watched.begin(), watched.end(),
                                      [](Condition c) { return c == Condition::kFrozen; })) {
    only = [](const telemetry::DeviceFreshness& fr) {
      return std::any_of(fr.checks.begin(), fr.checks.end(),
                         [](const MetricCheck& c) { return c.frozen_after > Duration(0); });
    };
  }
  // A judgement against peers is a warning, never critical: not made for the rules.
  auto judged = judge_all(telemetry::Cohort{}, false, only);
  if (!judged.ok()) return judged.error();
  HealthFindings out;
  for (DeviceHealth& d : *judged) {
    for (HealthReason& r : d.reasons) {
      if (r.kind == "unreadable") out.unreadable.push_back(d.device_id);
      auto condition = parse_condition(r.kind);
      if (r.severity == Severity::kCritical && condition.ok() && watched.count(*condition) != 0) {
        out.found.push_back({d.device_id, std::move(r.kind), std::move(r.text)});
      }
    }
  }
  return out;
}

}  // namespace drover::health
