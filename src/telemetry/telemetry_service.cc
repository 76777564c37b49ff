#include "telemetry/telemetry_service.h"

#include <algorithm>
#include <map>

namespace drover::telemetry {
namespace {

constexpr Duration kDefaultInterval = seconds(10);  // for choosing a resolution
// How far ahead of the server's clock a sample may be (device clocks drift): one further
// ahead would block every real sample of its series after it, and is refused.
constexpr int64_t kMaxFutureMs = int64_t{10} * 60'000;

double age_s(int64_t now_ms, int64_t t_ms) { return static_cast<double>(now_ms - t_ms) / 1000.0; }

int64_t now_ms(const Clock& clock) { return clock.now().time_since_epoch().count(); }

// The points of many series merged per bucket: min of mins, max of maxes, sums, counts.
void merge_into(std::map<int64_t, RollupPoint>& buckets, const std::vector<RollupPoint>& points) {
  for (const RollupPoint& p : points) {
    auto [it, fresh] = buckets.try_emplace(p.t_ms, p);
    if (fresh) continue;
    RollupPoint& b = it->second;
    b.min = std::min(b.min, p.min);
    b.max = std::max(b.max, p.max);
    b.sum += p.sum;
    b.count += p.count;
  }
}

}  // namespace

bool Cohort::matches(const Device& d) const {
  if (!filter.matches(d)) return false;
  if (component.empty()) return true;
  const std::string* v = d.installed_version(component);
  return v != nullptr && (version.empty() || *v == version);
}

TelemetryService::TelemetryService(TimeSeriesStore& tsdb, DeviceService& devices, Store& store,
                                   Clock& clock, TelemetryLimits limits)
    : tsdb_(tsdb), devices_(devices), store_(store), clock_(clock), limits_(limits) {}

std::string TelemetryService::series_key(
    std::string_view device, std::string_view metric,
    const std::vector<std::pair<std::string, std::string>>& labels) {
  std::string key;
  key.reserve(device.size() + metric.size() + 1);
  key.append(device).append("/").append(metric);
  if (labels.empty()) return key;
  key += '{';
  for (size_t i = 0; i < labels.size(); ++i) {
    if (i > 0) key += ',';
    key.append(labels[i].first).append("=\"");
    for (char c : labels[i].second) {
      if (c == '"' || c == '\\') key += '\\';
      key += c;
    }
    key += '"';
  }
  key += '}';
  return key;
}

bool TelemetryService::parse_series_key(std::string_view key, std::string& metric,
                                        std::vector<std::pair<std::string, std::string>>& labels) {
  auto slash = key.find('/');
  if (slash == std::string_view::npos) return false;
  std::string_view rest = key.substr(slash + 1);
  auto brace = rest.find('{');
  metric = std::string(rest.substr(0, brace));
  labels.clear();
  if (brace == std::string_view::npos) return !metric.empty();
  size_t at = brace + 1;
  while (at < rest.size() && rest[at] != '}') {
    auto eq = rest.find("=\"", at);
    if (eq == std::string_view::npos) return false;
    std::string name(rest.substr(at, eq - at));
    std::string value;
    size_t i = eq + 2;
    for (; i < rest.size() && rest[i] != '"'; ++i) {
      if (rest[i] == '\\' && i + 1 < rest.size()) ++i;
      value += rest[i];
    }
    if (i >= rest.size()) return false;
    labels.emplace_back(std::move(name), std::move(value));
    at = i + 1;
    if (at < rest.size() && rest[at] == ',') ++at;
  }
  return at + 1 == rest.size();
}

TelemetryService::DeviceState& TelemetryService::state_of(std::string_view device) {
  auto it = state_.find(std::string(device));
  if (it != state_.end()) return it->second;
  DeviceState& s = state_[std::string(device)];
  std::string metric;
  std::vector<std::pair<std::string, std::string>> labels;
  for (std::string& key : tsdb_.keys(std::string(device) + "/")) {
    if (parse_series_key(key, metric, labels)) ++s.per_metric[metric];
    s.keys.insert(std::move(key));
  }
  return s;
}

Result<IngestResult> TelemetryService::ingest(std::string_view device,
                                              const protocol::TelemetryBatch& batch) {
  if (!devices_.device(device)) return not_found("unknown device '" + std::string(device) + "'");
  const int64_t horizon = now_ms(clock_) + kMaxFutureMs;
  Batch store_batch;
  store_batch.source = std::string(device);
  store_batch.stream = batch.stream;
  store_batch.sequence = batch.sequence;
  store_batch.series.reserve(batch.series.size());
  std::vector<const protocol::TelemetrySeries*> sent;  // beside store_batch.series
  uint64_t future = 0;
  std::unordered_set<std::string> in_batch;
  for (const protocol::TelemetrySeries& s : batch.series) {
    std::string key = series_key(device, s.metric, s.labels);
    if (!in_batch.insert(key).second) {
      return invalid_argument("series " + key + " appears twice in a batch");
    }
    // Times increase within a series: the samples too far ahead are a tail.
    auto end = std::find_if(s.samples.begin(), s.samples.end(),
                            [horizon](const Sample& x) { return x.t_ms > horizon; });
    future += static_cast<uint64_t>(s.samples.end() - end);
    if (end == s.samples.begin()) continue;  // nothing to store: no series is made for it
    store_batch.series.push_back({std::move(key), std::vector<Sample>(s.samples.begin(), end)});
    sent.push_back(&s);
  }
  MutexLock lock(mu_);
  DeviceState& state = state_of(device);
  // The series this batch would add, checked against the limits before anything is stored.
  std::vector<size_t> fresh;
  std::unordered_map<std::string, size_t> fresh_per_metric;
  for (size_t i = 0; i < store_batch.series.size(); ++i) {
    if (state.keys.count(store_batch.series[i].key) != 0) continue;
    fresh.push_back(i);
    const std::string& metric = sent[i]->metric;
    auto known = state.per_metric.find(metric);
    const size_t before = known == state.per_metric.end() ? 0 : known->second;
    if (before + ++fresh_per_metric[metric] > limits_.series_per_metric) {
      return Error{ErrorCode::kResourceExhausted,
                   "metric " + metric + ": more than " + std::to_string(limits_.series_per_metric) +
                       " label sets on one device (label cardinality limit)"};
    }
  }
  if (state.keys.size() + fresh.size() > limits_.series_per_device) {
    return Error{ErrorCode::kResourceExhausted, "more than " +
                                                    std::to_string(limits_.series_per_device) +
                                                    " series on one device (series limit)"};
  }
  auto stored = tsdb_.append(store_batch);
  if (!stored.ok()) return stored.error();
  if (!stored->retry) {
    for (size_t i : fresh) {
      state.keys.insert(store_batch.series[i].key);
      ++state.per_metric[sent[i]->metric];
    }
    state.dropped += batch.dropped;
  }
  stored->refused += future;
  state.contact_ms = now_ms(clock_);
  return IngestResult{*stored, batch.dropped};
}

std::vector<std::pair<std::string, std::string>> TelemetryService::export_labels(
    const std::string& key) const {
  std::string metric;
  std::vector<std::pair<std::string, std::string>> own;
  if (!parse_series_key(key, metric, own)) return {};
  const std::string id = key.substr(0, key.find('/'));
  auto device = devices_.device(id);
  if (!device) return {};
  std::vector<std::pair<std::string, std::string>> labels = {{"__name__", metric}, {"device", id}};
  if (!device->device_type.empty()) labels.emplace_back("device_type", device->device_type);
  if (!device->hardware_revision.empty()) {
    labels.emplace_back("hardware_revision", device->hardware_revision);
  }
  if (!device->site.empty()) labels.emplace_back("site", device->site);
  const size_t reserved = labels.size();
  auto used = [&](const std::string& n) {
    return std::any_of(labels.begin(), labels.end(), [&](const auto& l) { return l.first == n; }) ||
           std::any_of(own.begin(), own.end(), [&](const auto& l) { return l.first == n; });
  };
  std::vector<std::pair<std::string, std::string>> renamed;
  for (const auto& [name, value] : own) {
    bool taken = false;
    for (size_t i = 0; i < reserved; ++i) taken |= labels[i].first == name;
    std::string exported = name;
    if (taken) {
      // Renamed until it is free: "exported_device" may itself be a label of the series.
      exported = "exported_" + name;
      while (used(exported) || std::any_of(renamed.begin(), renamed.end(),
                                           [&](const auto& l) { return l.first == exported; })) {
        exported = "exported_" + exported;
      }
    }
    renamed.emplace_back(std::move(exported), value);
  }
  labels.insert(labels.end(), renamed.begin(), renamed.end());
  std::sort(labels.begin(), labels.end());
  return labels;
}

Result<std::vector<AgedValue>> TelemetryService::latest(std::string_view device) const {
  if (!devices_.device(device)) return not_found("unknown device '" + std::string(device) + "'");
  const int64_t now = now_ms(clock_);
  std::vector<AgedValue> out;
  for (const std::string& key : tsdb_.keys(std::string(device) + "/")) {
    auto sample = tsdb_.latest(key);
    if (!sample) continue;
    AgedValue v;
    if (!parse_series_key(key, v.metric, v.labels)) continue;
    v.t_ms = sample->t_ms;
    v.value = sample->value;
    v.age_s = age_s(now, sample->t_ms);
    out.push_back(std::move(v));
  }
  return out;
}

Result<RangeAnswer> TelemetryService::range(const RangeQuery& q) const {
  auto device = devices_.device(q.device);
  if (!device) return not_found("unknown device '" + q.device + "'");
  if (q.until_ms <= q.from_ms) return invalid_argument("the range ends before it starts");
  RangeAnswer answer;
  answer.now_ms = now_ms(clock_);
  if (q.resolution) {
    answer.resolution = *q.resolution;
  } else {
    Duration interval = kDefaultInterval;
    auto profile = store_.get_profile(device->device_type);
    if (profile.ok() && *profile && (*profile)->telemetry.report_every > Duration(0)) {
      interval = (*profile)->telemetry.report_every;
    }
    answer.resolution = tsdb_.resolution_for(q.from_ms, q.until_ms, interval.count());
  }
  auto points = tsdb_.read(series_key(q.device, q.metric, q.labels), answer.resolution, q.from_ms,
                           q.until_ms);
  if (!points.ok()) return points.error();
  answer.points = std::move(*points);
  return answer;
}

std::vector<Device> TelemetryService::devices_of(const Cohort& cohort, size_t limit) const {
  std::vector<Device> out;
  DeviceQuery query;
  query.filter = cohort.filter;
  query.decommissioned = false;
  query.limit = 1000;
  for (;;) {
    DevicePage page = devices_.list(query);
    for (Device& d : page.devices) {
      if (out.size() >= limit) return out;
      if (cohort.matches(d)) out.push_back(std::move(d));
    }
    if (page.next.empty()) break;
    query.after = page.next;
  }
  return out;
}

Result<CohortAnswer> TelemetryService::cohort(const Cohort& cohort, std::string_view metric,
                                              int64_t from_ms, int64_t until_ms) const {
  if (until_ms <= from_ms) return invalid_argument("the range ends before it starts");
  CohortAnswer answer;
  answer.now_ms = now_ms(clock_);
  answer.resolution = tsdb_.resolution_for(from_ms, until_ms, kDefaultInterval.count());
  if (answer.resolution == Resolution::kRaw) answer.resolution = Resolution::k5m;
  std::map<int64_t, RollupPoint> buckets;
  const std::vector<Device> devices = devices_of(cohort);
  answer.devices = devices.size();
  for (const Device& d : devices) {
    const std::string plain = series_key(d.id, metric, {});
    bool reported = false;
    for (const std::string& key : tsdb_.keys(plain)) {
      if (key != plain && key.compare(plain.size(), 1, "{") != 0) continue;  // another metric
      auto points = tsdb_.read(key, answer.resolution, from_ms, until_ms);
      if (!points.ok()) return points.error();
      reported |= !points->empty();
      merge_into(buckets, *points);
    }
    answer.reporting += reported ? 1 : 0;
  }
  for (auto& [t, p] : buckets) answer.points.push_back(p);
  return answer;
}

Result<std::vector<DeviceFreshness>> TelemetryService::freshness(const Cohort& cohort) const {
  const int64_t now = now_ms(clock_);
  auto profiles = store_.list_profiles();
  if (!profiles.ok()) return profiles.error();
  std::map<std::string_view, const DeviceProfile*> of_type;
  for (const DeviceProfile& p : *profiles) of_type[p.device_type] = &p;
  std::vector<DeviceFreshness> out;
  for (const Device& d : devices_of(cohort)) {
    auto it = of_type.find(d.device_type);
    out.push_back(freshness_of(d, it != of_type.end() ? it->second : nullptr, now));
  }
  return out;
}

Result<DeviceFreshness> TelemetryService::freshness(std::string_view device) const {
  auto d = devices_.device(device);
  if (!d) return not_found("unknown device '" + std::string(device) + "'");
  auto profile = store_.get_profile(d->device_type);
  if (!profile.ok()) return profile.error();
  return freshness_of(*d, *profile ? &**profile : nullptr, now_ms(clock_));
}

DeviceFreshness TelemetryService::freshness_of(const Device& d, const DeviceProfile* profile,
                                               int64_t now) const {
  DeviceFreshness f;
  f.device = d.id;
  f.device_type = d.device_type;
  f.site = d.site;
  if (profile != nullptr) {
    f.contract = profile->telemetry;
    f.checks = profile->health;
  }
  f.decommissioned = d.decommissioned;
  int64_t newest = INT64_MIN;
  for (const std::string& key : tsdb_.keys(d.id + "/")) {
    if (auto s = tsdb_.latest(key)) newest = std::max(newest, s->t_ms);
  }
  int64_t contact = INT64_MIN;
  {
    MutexLock lock(mu_);
    if (auto it = state_.find(d.id); it != state_.end()) {
      contact = it->second.contact_ms;
      f.dropped_on_device = it->second.dropped;
    }
  }
  // A check-in is contact too: a device that checks in but whose data stopped is stale,
  // not offline. Before the first batch or check-in since the server started, the newest
  // sample stands in for the last contact.
  if (auto seen = devices_.last_check_in(d.id)) {
    contact = std::max(contact, seen->time_since_epoch().count());
  }
  if (contact == INT64_MIN) contact = newest;
  const Duration never(-1);
  const Duration data_age =
      newest == INT64_MIN ? never : Duration(std::max<int64_t>(0, now - newest));
  const Duration contact_age =
      contact == INT64_MIN ? never : Duration(std::max<int64_t>(0, now - contact));
  f.freshness = judge(f.contract, data_age, contact_age);
  f.data_age_s = newest == INT64_MIN ? -1 : age_s(now, newest);
  f.contact_age_s = contact == INT64_MIN ? -1 : age_s(now, contact);
  return f;
}

Result<protocol::TelemetryRules> TelemetryService::rules_for(std::string_view device) {
  auto d = devices_.device(device);
  if (!d) return not_found("unknown device '" + std::string(device) + "'");
  const int64_t now = now_ms(clock_);
  {
    MutexLock lock(mu_);
    auto it = rules_.find(d->device_type);
    if (it != rules_.end() && now - it->second.read_ms < kRulesCacheMs) return it->second.rules;
  }
  auto profile = store_.get_profile(d->device_type);
  if (!profile.ok()) return profile.error();
  protocol::TelemetryRules rules =
      protocol::make_telemetry_rules(*profile ? (*profile)->metrics : std::vector<MetricRule>());
  MutexLock lock(mu_);
  rules_[d->device_type] = {now, rules};
  return rules;
}

}  // namespace drover::telemetry
