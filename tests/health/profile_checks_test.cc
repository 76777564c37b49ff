// What a device profile asks device health to watch (MetricCheck, docs/health.md "Checks a
// profile declares"): a metric past or heading past its limits, a value frozen while the
// device reports, a sensor drifting from its site's same-type devices — judged alone
// (judge_device, drift_among) and through HealthView and a remediation rule on drover serve's
// services.
#include <gtest/gtest.h>

#include <cmath>
#include <numbers>
#include <random>
#include <set>

#include "health/device_detectors.h"
#include "health/device_health.h"
#include "remediator_fixture.h"

namespace drover::health {
namespace {

const Timestamp kNow = Timestamp(Duration(int64_t{1'790'000'000'000}));

using Labels = std::vector<std::pair<std::string, std::string>>;

telemetry::DeviceFreshness reporting(std::vector<MetricCheck> checks) {
  telemetry::DeviceFreshness f;
  f.device = "probe-1";
  f.device_type = "probe";
  f.freshness = Freshness::kFresh;
  f.contract.report_every = minutes(15);
  f.data_age_s = 60;
  f.contact_age_s = 60;
  f.checks = std::move(checks);
  return f;
}

// A value every `step` over `span` ending now: value(i) for the i-th.
template <typename F>
SeriesWindow series(std::string metric, Labels labels, Duration span, Duration step, F value) {
  SeriesWindow s{std::move(metric), std::move(labels), {}};
  const int64_t n = span / step;
  for (int64_t i = 0; i <= n; ++i) s.values.push_back({kNow - (n - i) * step, value(i)});
  return s;
}

const HealthReason* reason(const DeviceHealth& d, std::string_view kind) {
  for (const HealthReason& r : d.reasons) {
    if (r.kind == kind) return &r;
  }
  return nullptr;
}

// Each device with a reason, and the kinds of its reasons.
std::map<std::string, std::set<std::string>> reason_kinds(const std::vector<DeviceHealth>& all) {
  std::map<std::string, std::set<std::string>> kinds;
  for (const DeviceHealth& d : all) {
    for (const HealthReason& r : d.reasons) kinds[d.device_id].insert(r.kind);
  }
  return kinds;
}

MetricCheck limits(std::string metric, std::optional<double> above, std::optional<double> below) {
  MetricCheck c;
  c.metric = std::move(metric);
  c.above = above;
  c.below = below;
  return c;
}

MetricCheck frozen_after(std::string metric, Duration after, double tolerance = 0) {
  MetricCheck c;
  c.metric = std::move(metric);
  c.frozen_after = after;
  c.tolerance = tolerance;
  return c;
}

// A signal sinking 0.2 dB an hour toward its floor is forecast like a resource's end: within
// a week critical, with the series' labels in its name; one past its ceiling now is critical;
// one steady within its limits is nothing.
TEST(ProfileChecks, AMetricHeadingPastItsLimitIsForecastAndOnePastItNowIsCritical) {
  std::mt19937_64 rng(3);
  std::normal_distribution<double> noise(0, 0.3);
  DeviceFacts f{
      reporting({limits("signal_dbm", std::nullopt, -110), limits("pump_current_a", 12, 0.5)}),
      {},
      {}};
  // -90 dBm now, 100 hours from -110.
  f.series.push_back(series("signal_dbm", {{"iface", "wwan0"}}, hours(72), hours(1),
                            [&](int64_t h) { return -75.6 - 0.2 * h + noise(rng); }));
  f.series.push_back(
      series("pump_current_a", {}, hours(24), hours(1), [&](int64_t) { return 6 + noise(rng); }));
  DeviceHealth d = judge_device(f, kNow);
  const HealthReason* signal = reason(d, "limit");
  ASSERT_NE(signal, nullptr);
  EXPECT_EQ(signal->severity, Severity::kCritical);
  ASSERT_TRUE(signal->forecast);
  EXPECT_EQ(signal->forecast->resource, "signal_dbm{iface=wwan0}");
  EXPECT_EQ(signal->forecast->limit, -110);
  EXPECT_NEAR(static_cast<double>(signal->forecast->crossing.expected.count()) / 3.6e6, 100, 15);
  EXPECT_NE(signal->text.find("signal_dbm{iface=wwan0} below its limit in about 4."),
            std::string::npos)
      << signal->text;
  EXPECT_EQ(d.status, HealthStatus::kCritical);
  // The steady current is no reason (a slope its noise makes may forecast it years away).
  EXPECT_EQ(std::count_if(d.reasons.begin(), d.reasons.end(),
                          [](const HealthReason& r) { return r.kind == "limit"; }),
            1);

  // The same signal sinking three times slower: 12.5 days, a warning.
  f.series[0] = series("signal_dbm", {{"iface", "wwan0"}}, hours(72), hours(1),
                       [&](int64_t h) { return -90 + 0.2 / 3 * (72 - h) + noise(rng); });
  d = judge_device(f, kNow);
  ASSERT_NE(reason(d, "limit"), nullptr);
  EXPECT_EQ(reason(d, "limit")->severity, Severity::kWarning);

  // A pump drawing 13 A now, past its ceiling of 12.
  f.series[1].values.back().value = 13;
  d = judge_device(f, kNow);
  int past = 0;
  for (const HealthReason& r : d.reasons) {
    if (r.kind == "limit" && r.text.find("pump_current_a above its limit now (13 at its newest "
                                         "reading; the limit is 12)") != std::string::npos) {
      EXPECT_EQ(r.severity, Severity::kCritical);
      ++past;
    }
  }
  EXPECT_EQ(past, 1) << d.reasons.front().text;

  // A steady current's noise over its first day, 200 times: a chance slope (significant at
  // 90% a tenth of the time) is rarely a reason, as the slow end of its interval is seldom
  // within the horizon — measured 2 of 200 (24 of 200 judged by the expected crossing alone;
  // 0 of 200 once the series is 3 days old).
  int chance = 0;
  for (uint64_t seed = 1; seed <= 200; ++seed) {
    std::mt19937_64 r(seed);
    DeviceFacts steady{reporting({limits("pump_current_a", 12, 0.5)}), {}, {}};
    steady.series.push_back(
        series("pump_current_a", {}, hours(24), hours(1), [&](int64_t) { return 6 + noise(r); }));
    const DeviceHealth judged = judge_device(steady, kNow);
    chance += reason(judged, "limit") != nullptr ? 1 : 0;
    // Nor is it listed among the forecasts (the fleet view's predicted failures) unless it is
    // a reason.
    EXPECT_EQ(judged.forecasts.size(), reason(judged, "limit") != nullptr ? 1u : 0u);
  }
  EXPECT_LE(chance, 4);

  // At its limit is within it.
  DeviceFacts at{reporting({limits("pump_current_a", 12, 0.5)}), {}, {}};
  at.series.push_back(
      series("pump_current_a", {}, hours(2), hours(1), [](int64_t) { return 12.0; }));
  EXPECT_EQ(judge_device(at, kNow).status, HealthStatus::kHealthy);

  // Without the checks, neither metric is judged.
  f.freshness.checks.clear();
  EXPECT_EQ(judge_device(f, kNow).status, HealthStatus::kHealthy);
}

// A sensor reading the same for longer than frozen_after while the device reports is critical
// (a stuck sensor, a collector repeating its last reading); within the tolerance counts as the
// same; a device whose data does not come at all is no_data, not frozen as well.
TEST(ProfileChecks, AValueUnchangedForFrozenAfterWhileTheDeviceReportsIsFrozen) {
  std::mt19937_64 rng(5);
  std::normal_distribution<double> noise(0, 0.2);
  // Every 5 minutes for 12 hours; stuck at 21.5 for the last 7.
  const auto stuck_for = [&](int64_t stuck_steps) {
    return series("temp_c", {{"probe", "1"}}, hours(12), minutes(5), [&, stuck_steps](int64_t i) {
      return i >= 144 - stuck_steps ? 21.5 : 20 + noise(rng);
    });
  };
  DeviceFacts f{reporting({frozen_after("temp_c", hours(6))}), {}, {stuck_for(int64_t{7} * 12)}};
  DeviceHealth d = judge_device(f, kNow);
  const HealthReason* r = reason(d, "frozen");
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->severity, Severity::kCritical);
  EXPECT_EQ(r->text,
            "temp_c{probe=1} has stayed at 21.5 for 7.0 h while the device reports (frozen after "
            "6.0 h)");

  f.series = {stuck_for(int64_t{5} * 12)};  // 5 hours: not yet
  EXPECT_EQ(reason(judge_device(f, kNow), "frozen"), nullptr);

  // Wobbling by 0.01 is still stuck with a tolerance of 0.05, not without one.
  f.series = {stuck_for(int64_t{7} * 12)};
  for (size_t i = f.series[0].values.size() - size_t{7} * 12; i < f.series[0].values.size();
       i += 2) {
    f.series[0].values[i].value += 0.01;
  }
  EXPECT_EQ(reason(judge_device(f, kNow), "frozen"), nullptr);
  f.freshness.checks = {frozen_after("temp_c", hours(6), 0.05)};
  EXPECT_NE(reason(judge_device(f, kNow), "frozen"), nullptr);

  // Its data stopped coming: no_data says so; frozen is not piled on.
  f.freshness.freshness = Freshness::kStale;
  d = judge_device(f, kNow);
  EXPECT_NE(reason(d, "no_data"), nullptr);
  EXPECT_EQ(reason(d, "frozen"), nullptr);

  // A healthy sensor's noise is never frozen.
  f.freshness.freshness = Freshness::kFresh;
  f.series = {stuck_for(0)};
  EXPECT_EQ(judge_device(f, kNow).status, HealthStatus::kHealthy);
}

// The agent's aggregates of a metric (its profile's rule: min, max, mean and count an
// interval) are series labelled `agg`: frozen looks at the mean alone (one reason for one
// stuck sensor; a count that never changes is no stuck sensor), a limit at every one but the
// count (a max past the ceiling went past it).
TEST(ProfileChecks, TheAgentsAggregatesAreJudgedForWhatTheyAre) {
  MetricCheck c = frozen_after("temp_c", hours(1));
  c.above = 30;
  DeviceFacts f{reporting({c}), {}, {}};
  for (const char* agg : {"min", "max", "mean", "count"}) {
    f.series.push_back(series("temp_c", {{"agg", agg}}, hours(3), minutes(5), [agg](int64_t) {
      return std::string_view(agg) == "count" ? 60.0 : 21.0;  // stuck: each the same
    }));
  }
  DeviceHealth d = judge_device(f, kNow);
  ASSERT_EQ(d.reasons.size(), 1u) << d.reasons.back().text;
  EXPECT_EQ(d.reasons[0].kind, "frozen");
  EXPECT_NE(d.reasons[0].text.find("temp_c{agg=mean} has stayed at 21"), std::string::npos);
  f.series[1].values.back().value = 31;  // the max went past 30
  d = judge_device(f, kNow);
  ASSERT_NE(reason(d, "limit"), nullptr);
  EXPECT_NE(reason(d, "limit")->text.find("temp_c{agg=max} above its limit now"),
            std::string::npos);
}

// An aggregate the agent sends once an hour, stamped at the hour's end, of a device that
// reports every minute (stale after 3.5 minutes): its own spacing counts as still reporting.
// With both a mean and a last, only the mean is judged. A recent read no longer than the stuck
// stretch says "at least".
TEST(ProfileChecks, AnHourlyAggregateIsStillReportingAndTheMeanIsJudgedOnce) {
  DeviceFacts f{reporting({frozen_after("temp_c", hours(3))}), {}, {}};
  f.freshness.contract = {minutes(1), seconds(30), Duration(0)};
  for (const char* agg : {"last", "mean"}) {
    SeriesWindow s = series("temp_c", {{"agg", agg}}, hours(12), hours(1), [](int64_t i) {
      return i < 6 ? 20.0 + static_cast<double>(i) : 21.5;  // stuck the last 6 hours
    });
    for (TimedValue& v : s.values) v.at -= minutes(50);  // the newest 50 minutes old
    f.series.push_back(std::move(s));
  }
  DeviceHealth d = judge_device(f, kNow);
  ASSERT_EQ(d.reasons.size(), 1u);
  EXPECT_EQ(d.reasons[0].text,
            "temp_c{agg=mean} has stayed at 21.5 for 6.0 h while the device reports (frozen after "
            "3.0 h)");
  // Without the mean, the last is the value.
  f.series.pop_back();
  d = judge_device(f, kNow);
  ASSERT_EQ(d.reasons.size(), 1u);
  EXPECT_NE(d.reasons[0].text.find("temp_c{agg=last} has stayed"), std::string::npos);
  // The recent read, 5-minute rollups of the last 6 hours, every one at 21.5 from its lowest
  // to its highest: stuck for at least that long.
  std::vector<ValueRange> buckets;
  for (int k = 72; k >= 0; --k) buckets.push_back({kNow - minutes(5) * k, 21.5, 21.5});
  f.series[0].recent = buckets;
  d = judge_device(f, kNow);
  ASSERT_EQ(d.reasons.size(), 1u);
  EXPECT_EQ(d.reasons[0].text,
            "temp_c{agg=last} has stayed at 21.5 for at least 6.0 h while the device reports "
            "(frozen after 3.0 h)");
  // A value that moves within its buckets though each one's mean is 21.5 is not stuck: the
  // rollups' lowest and highest say so where means would not.
  for (size_t k = 0; k < buckets.size(); k += 6) buckets[k] = {buckets[k].at, 21.3, 21.7};
  f.series[0].recent = buckets;
  d = judge_device(f, kNow);
  EXPECT_TRUE(d.reasons.empty()) << d.reasons.front().text;
}

// A series that stopped while the device reports other metrics (a probe unplugged) is not
// frozen: its newest value must be within the contract's stale time, or without a contract
// within frozen_after.
TEST(ProfileChecks, ASeriesThatStoppedIsNotFrozen) {
  DeviceFacts f{reporting({frozen_after("temp_c", hours(1))}), {}, {}};
  SeriesWindow stopped = series("temp_c", {}, hours(6), minutes(5), [](int64_t) { return 21.0; });
  for (TimedValue& v : stopped.values) v.at -= hours(3);  // its newest 3 hours old
  f.series = {stopped};
  f.freshness.contract.late_after = minutes(15);  // stale after 1 h (+ 5 min, its spacing)
  EXPECT_EQ(reason(judge_device(f, kNow), "frozen"), nullptr);
  f.freshness.contract.late_after = hours(3);  // stale after 3.75 h: still reporting
  EXPECT_NE(reason(judge_device(f, kNow), "frozen"), nullptr);
  f.freshness.contract = {};
  f.freshness.freshness = Freshness::kNoContract;  // within frozen_after (1 h): no
  EXPECT_EQ(reason(judge_device(f, kNow), "frozen"), nullptr);
}

// `sensors` sensors of one site, hourly over `hours_back` hours ending now: a shared daily
// swing of 6 degrees, each its own offset (up to half a degree) and noise 0.2; the sensor
// `drifting` (if any) drifts `per_hour` from hour `from`.
std::vector<std::vector<TimedValue>> site(uint64_t seed, size_t sensors, int hours_back,
                                          size_t drifting, int from, double per_hour) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> offset(-0.5, 0.5);
  std::normal_distribution<double> noise(0, 0.2);
  std::vector<std::vector<TimedValue>> out(sensors);
  std::vector<double> offsets(sensors);
  for (double& o : offsets) o = offset(rng);
  for (int h = 0; h <= hours_back; ++h) {
    const double swing = 15 + 6 * std::sin(2 * std::numbers::pi * h / 24);
    for (size_t k = 0; k < sensors; ++k) {
      const double drift = k == drifting && h >= from ? per_hour * (h - from) : 0;
      out[k].push_back({kNow - hours(hours_back - h), swing + offsets[k] + drift + noise(rng)});
    }
  }
  return out;
}

std::vector<SensorDrift> judge(const std::vector<std::vector<TimedValue>>& sensors) {
  const HealthOptions o;
  std::vector<std::span<const TimedValue>> spans(sensors.begin(), sensors.end());
  return drift_among(spans, o.drift_bucket, o.drift_min_peers, o.drift);
}

// 20 sites of 10 sensors over the health window (7 days of hourly values): the one drifting
// 0.02 degree an hour (a tenth of its noise) from day 4 is found in every site within 48 hours
// of its start (measured: 20-32 h), and none of the 180 others at any of the ~120 hours each
// is judged after settling.
TEST(ProfileChecks, ASensorDriftingFromItsSiteIsFoundWithinTwoDaysAndItsPeersAreNot) {
  const int from = 96;
  std::vector<int> delays;
  int false_flags = 0;
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    const auto sensors = site(seed, 10, 7 * 24, 3, from, 0.02);
    const std::vector<SensorDrift> found = judge(sensors);
    for (size_t k = 0; k < found.size(); ++k) {
      EXPECT_EQ(found[k].judged, 7u * 24 + 1) << "seed " << seed;
      if (k == 3) {
        EXPECT_TRUE(found[k].drifting) << "seed " << seed;
        if (!found[k].drifting) continue;
        const auto delay = static_cast<int>((found[k].since - sensors[k][from].at) / hours(1));
        delays.push_back(delay);
        EXPECT_GT(delay, 0) << "seed " << seed;
        EXPECT_LE(delay, 48) << "seed " << seed;
        EXPECT_GT(found[k].residual, 0.8) << "seed " << seed;  // about 1.4 off by now
      } else {
        false_flags += found[k].drifting ? 1 : 0;
      }
    }
  }
  EXPECT_EQ(false_flags, 0);
  ASSERT_EQ(delays.size(), 20u);
  std::sort(delays.begin(), delays.end());
  RecordProperty("drift_delay_hours_min", delays.front());
  RecordProperty("drift_delay_hours_max", delays.back());
}

// A site larger than the panel the reference is read from: a drifting sensor inside the panel
// (judged against the rest of it) and one outside (against all of it) are both found, and the
// 78 others are not; with fewer peers than drift_min_peers nothing is judged.
TEST(ProfileChecks, ALargeSitesSensorsAreJudgedAgainstItsPanelInsideAndOutside) {
  for (uint64_t seed = 1; seed <= 5; ++seed) {
    auto sensors = site(seed, 80, 7 * 24, 5, 96, 0.03);
    const auto outside = site(seed + 100, 80, 7 * 24, 60, 96, 0.03);
    sensors[60] = outside[60];  // the same swing (it depends on the hour only)
    const std::vector<SensorDrift> found = judge(sensors);
    std::set<size_t> flagged;
    for (size_t k = 0; k < found.size(); ++k) {
      if (found[k].drifting) flagged.insert(k);
    }
    EXPECT_EQ(flagged, (std::set<size_t>{5, 60})) << "seed " << seed;
  }
  const auto few = site(1, 4, 7 * 24, 0, 24, 1.0);  // 3 peers each
  for (const SensorDrift& d : judge(few)) {
    EXPECT_EQ(d.judged, 0u);
    EXPECT_FALSE(d.drifting);
  }
}

// Each sensor's reference is its peers' robust mean without itself: five sensors with no noise
// whose readings are 10, 11, 12, 13 and 14 in every hour (its own 2 from the mean of the
// others), the last moving up by 0.1 an hour after settling — its residual is its own rise
// alone, never a share of it fed back through the reference (with itself in the reference it
// would be four fifths of it).
TEST(ProfileChecks, TheReferenceOfASensorIsItsPeersWithoutItself) {
  std::vector<std::vector<TimedValue>> sensors(5);
  const int n = 100;
  for (int h = 0; h <= n; ++h) {
    for (size_t k = 0; k < 5; ++k) {
      double v = 10 + static_cast<double>(k) + 0.001 * ((h * 7 + static_cast<int>(k) * 3) % 5);
      if (k == 4 && h >= 60) v += 0.1 * (h - 60);
      sensors[k].push_back({kNow - hours(n - h), v});
    }
  }
  const std::vector<SensorDrift> found = judge(sensors);
  // At the last hour the fifth reads 4.0 above where it was; its peers' mean did not move.
  EXPECT_NEAR(found[4].residual, 4.0, 0.01);
  EXPECT_TRUE(found[4].drifting);
  // The others' references counted the fifth while it was within the band (their offsets
  // learnt so) and leave it out once it is far off: each moves by exactly that share —
  // (50 - k) / 4 before, (36 - k) / 3 after, a residual of (6 + k) / 12.
  for (size_t k = 0; k < 4; ++k) {
    EXPECT_NEAR(found[k].residual, (6.0 + static_cast<double>(k)) / 12, 0.01) << k;
  }
}

// A drift that was mended (the sensor recalibrated) clears: its CUSUM, capped at twice the
// decision, falls back below it within a day of the sensor being back in line (about 15
// hours: the cap less the decision, at the reference of one a value). And
// each bucket's panel is made of the sensors reporting in it: with the first 30 of a site of
// 40 gone quiet after day 3, the others are still judged against each other.
TEST(ProfileChecks, AMendedDriftClearsAndThePanelIsOfTheSensorsThatReport) {
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    auto sensors = site(seed, 10, 7 * 24, 3, 60, 0.05);
    for (size_t h = 110; h < sensors[3].size(); ++h) {  // recalibrated at hour 110
      sensors[3][h].value -= 0.05 * (static_cast<double>(h) - 60);
    }
    auto until = sensors;
    for (auto& s : until) s.resize(111);
    EXPECT_TRUE(judge(until)[3].drifting) << "seed " << seed;
    until = sensors;
    for (auto& s : until) s.resize(111 + 24);
    EXPECT_FALSE(judge(until)[3].drifting) << "a day after the mend, seed " << seed;
    for (const SensorDrift& d : judge(sensors)) EXPECT_FALSE(d.drifting) << "seed " << seed;
  }
  for (uint64_t seed = 1; seed <= 5; ++seed) {
    auto sensors = site(seed, 40, 7 * 24, 35, 96, 0.03);
    for (size_t k = 0; k < 30; ++k) sensors[k].resize(72);
    const std::vector<SensorDrift> found = judge(sensors);
    for (size_t k = 30; k < 40; ++k) {
      EXPECT_EQ(found[k].drifting, k == 35) << "sensor " << k << ", seed " << seed;
      EXPECT_EQ(found[k].judged, 7u * 24 + 1);
    }
  }
}

// Through drover serve's services: a profile declaring checks on temp_c (frozen after an
// hour, drift) and signal_dbm (a floor), ten devices of one site reporting; the fleet view and
// the device's own health name the drifting, the frozen and the sinking device, and nothing
// of the others.
TEST_F(RemediatorTest, TheChecksAProfileDeclaresAreReasonsInTheFleetViewAndTheDevicesHealth) {
  f.add_devices(7, "rev-a");  // 10 of type ctl at site "open"
  DeviceProfile profile{"ctl", {minutes(1), seconds(30), Duration(0)}, {}, {}, {}};
  MetricCheck temp;
  temp.metric = "temp_c";
  temp.frozen_after = hours(1);
  temp.drift = true;
  MetricCheck signal;
  signal.metric = "signal_dbm";
  signal.below = -110;
  profile.health = {signal, temp};
  WriteBatch b;
  b.profiles = {profile};
  ASSERT_TRUE(f.store().apply(b).ok());
  const std::string drifting = f.ids[2], frozen = f.ids[5], sinking = f.ids[7];
  const int64_t now = f.clock.now().time_since_epoch().count();
  std::mt19937_64 rng(11);
  std::normal_distribution<double> noise(0, 0.2);
  const int hours_back = 5 * 24;
  for (const std::string& device : f.ids) {
    const double offset = noise(rng);
    protocol::TelemetryBatch batch;
    batch.stream = 21;
    batch.sequence = 1;
    protocol::TelemetrySeries t{"temp_c", {}, {}}, s{"signal_dbm", {}, {}};
    for (int h = 0; h <= hours_back; ++h) {
      const int64_t at = now - int64_t{hours_back - h} * 3'600'000;
      double v = 15 + std::sin(2 * std::numbers::pi * h / 24) + offset + noise(rng);
      if (device == drifting && h >= 72) v += 0.05 * (h - 72);
      if (device == frozen && h >= hours_back - 8) v = 13.5;  // off its peers: no drift too
      t.samples.push_back({at, v});
      s.samples.push_back({at, device == sinking ? -80 - 0.2 * h : -80 + noise(rng)});
    }
    batch.series = {t, s};
    ASSERT_NO_FATAL_FAILURE(ingest(device, batch));
  }
  const HealthView view(*telemetry, nullptr, f.clock);
  auto all = view.judge_all({});
  ASSERT_TRUE(all.ok()) << all.error().to_string();
  const std::map<std::string, std::set<std::string>> kinds = reason_kinds(*all);
  const std::map<std::string, std::set<std::string>> expected = {
      {drifting, {"drift"}}, {frozen, {"frozen"}}, {sinking, {"limit"}}};
  EXPECT_EQ(kinds, expected);
  for (const DeviceHealth& d : *all) {
    if (d.device_id == drifting) {
      EXPECT_NE(d.reasons.front().text.find(
                    "temp_c is drifting from the 9 devices of its type at its site: "),
                std::string::npos)
          << d.reasons.front().text;
      EXPECT_EQ(d.status, HealthStatus::kDegraded);  // a warning
    }
    if (d.device_id == sinking) {
      EXPECT_NE(d.reasons.front().text.find("signal_dbm below its limit in about"),
                std::string::npos);
    }
  }
  // The device's own health reads its site's peers for the drift.
  auto one = view.device(drifting);
  ASSERT_TRUE(one.ok()) << one.error().to_string();
  ASSERT_EQ(one->reasons.size(), 1u);
  EXPECT_EQ(one->reasons[0].kind, "drift");
  auto other = view.device(f.ids[0]);
  ASSERT_TRUE(other.ok());
  EXPECT_TRUE(other->reasons.empty()) << other->reasons.front().text;
  // The fleet view lists the sinking signal among the predicted failures within a week.
  auto fleet = view.fleet({}, days(7), 10);
  ASSERT_TRUE(fleet.ok());
  ASSERT_EQ(fleet->predicted_total, 1u);
  EXPECT_EQ(fleet->predicted[0].first, sinking);
  EXPECT_EQ(fleet->predicted[0].second.resource, "signal_dbm");
}

// A device reporting every minute for a week: health reads the week as hourly means, which
// would blur a value stuck for the last 45 minutes into one point — the frozen check reads
// its last hour again, raw, and finds it. Devices without a site have no site's peers: none
// is judged for drift, however far off.
TEST_F(RemediatorTest, AFrozenValueIsReadFinelyUnderAWeekOfHistoryAndNoSiteMeansNoDrift) {
  f.add_devices(6, "rev-b", "");
  DeviceProfile profile{"ctl", {minutes(1), seconds(30), Duration(0)}, {}, {}, {}};
  MetricCheck temp = frozen_after("temp_c", minutes(30));
  temp.drift = true;
  // A long frozen_after on a fast reporter: 36 hours at one a minute (2,160 samples, past
  // what the store gives raw: read as 5-minute rollups' ranges), 4 minutes into a bucket.
  profile.health = {frozen_after("pressure_kpa", hours(18)), temp};
  WriteBatch b;
  b.profiles = {profile};
  ASSERT_TRUE(f.store().apply(b).ok());
  f.clock.advance(minutes(4));
  const std::string stuck = f.ids[0], off = f.ids[5];  // off: one of the six without a site
  const std::string pressed = f.ids[1];                // its pressure stuck for 20 hours
  const int64_t now = f.clock.now().time_since_epoch().count();
  std::mt19937_64 rng(13);
  std::normal_distribution<double> noise(0, 0.2);
  for (const std::string& device : f.ids) {
    for (int day = 0; day < 7; ++day) {
      protocol::TelemetryBatch batch;
      batch.stream = 23;
      batch.sequence = static_cast<uint64_t>(day) + 1;
      protocol::TelemetrySeries t{"temp_c", {}, {}}, p{"pressure_kpa", {}, {}};
      for (int minute = 0; minute < 24 * 60; ++minute) {
        const int64_t ago = (6 - day) * int64_t{24 * 60} + (24 * 60 - 1 - minute);  // minutes
        double v = 20 + noise(rng);
        if (device == stuck && ago < 45) v = 20.0;
        if (device == off) v += 0.01 * static_cast<double>(7 * 24 * 60 - ago);  // 100 off
        t.samples.push_back({now - ago * 60'000, v});
        if (device == pressed && ago < 36 * 60) {
          p.samples.push_back({now - ago * 60'000, ago < 20 * 60 ? 101.3 : 101 + noise(rng)});
        }
      }
      batch.series = {t};
      if (!p.samples.empty()) batch.series.push_back(p);
      ASSERT_NO_FATAL_FAILURE(ingest(device, batch));
    }
  }
  const HealthView view(*telemetry, nullptr, f.clock);
  auto all = view.judge_all({});
  ASSERT_TRUE(all.ok()) << all.error().to_string();
  const std::map<std::string, std::set<std::string>> kinds = reason_kinds(*all);
  const std::map<std::string, std::set<std::string>> expected = {{stuck, {"frozen"}},
                                                                 {pressed, {"frozen"}}};
  EXPECT_EQ(kinds, expected);
  auto one = view.device(stuck);
  ASSERT_TRUE(one.ok());
  ASSERT_EQ(one->reasons.size(), 1u);
  EXPECT_NE(one->reasons[0].text.find("temp_c has stayed at 20 for 44 min"), std::string::npos)
      << one->reasons[0].text;
  auto without_site = view.device(off);
  ASSERT_TRUE(without_site.ok());
  EXPECT_TRUE(without_site->reasons.empty()) << without_site->reasons.front().text;
}

// A rule on `frozen` restarts the stuck collector once the value has been frozen for the
// rule's `after`, and the episode resolves when the values move again.
TEST_F(RemediatorTest, ARuleOnAFrozenValueRestartsTheCollectorAndResolvesWhenItMoves) {
  DeviceProfile profile{"ctl", {minutes(1), seconds(30), Duration(0)}, {}, {}, {}};
  profile.health = {frozen_after("temp_c", minutes(30))};
  WriteBatch b;
  b.profiles = {profile};
  ASSERT_TRUE(f.store().apply(b).ok());
  RemediationRule rule;
  rule.name = "stuck-sensor";
  rule.condition = Condition::kFrozen;
  rule.after = minutes(10);
  rule.verify = minutes(10);
  rule.ladder = {{CommandAction::kRestartService, "sensord"}};
  auto made = Remediator::create(f.store(), f.clock, *telemetry, *commands, {{rule}, {}});
  ASSERT_TRUE(made.ok()) << made.error().to_string();
  std::unique_ptr<Remediator> rules = std::move(*made);
  const HealthView view(*telemetry, rules.get(), f.clock);
  rules->set_health_source(&view);
  const std::string device = f.ids[0];
  bool restarted = false;
  int restarted_at = -1;
  for (int minute = 0; minute < 120; ++minute) {
    protocol::TelemetryBatch batch;
    batch.stream = 22;
    batch.sequence = static_cast<uint64_t>(minute) + 1;
    // Stuck at 19.0 until the restart, then moving again.
    const double value = restarted ? 19 + 0.1 * (minute % 7) : 19.0;
    batch.series = {{"temp_c", {}, {{f.clock.now().time_since_epoch().count(), value}}}};
    ASSERT_NO_FATAL_FAILURE(ingest(device, batch));
    for (const Command& c : check_in(device)) {
      EXPECT_EQ(c.action, CommandAction::kRestartService);
      EXPECT_EQ(c.argument, "sensord");
      ASSERT_TRUE(
          commands->record_result({device, c.id, CommandOutcome::kSucceeded, 0, "ok"}).ok());
      EXPECT_FALSE(restarted) << "restarted twice";
      restarted = true;
      restarted_at = minute;
    }
    ASSERT_TRUE(rules->tick().ok());
    f.clock.advance(minutes(1));
  }
  // Frozen after 30 minutes (seen at a health read, every 5), held for 10: a restart at 40-46.
  EXPECT_GE(restarted_at, 40);
  EXPECT_LE(restarted_at, 47);
  auto alerts = rules->list({});
  ASSERT_TRUE(alerts.ok());
  ASSERT_EQ(alerts->size(), 1u);
  EXPECT_EQ(alerts->front().rule, "stuck-sensor");
  EXPECT_EQ(alerts->front().state, AlertState::kResolved);
  EXPECT_FALSE(alerts->front().escalated);
  EXPECT_NE(alerts->front().summary.find("temp_c has stayed at 19"), std::string::npos)
      << alerts->front().summary;
}

}  // namespace
}  // namespace drover::health
