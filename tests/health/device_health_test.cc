// Device health (health/device_health.h): each kind of trouble is a reason with its points
// and severity, forecasts of a resource's end are reasons only within the horizon (critical
// within `soon`), a charging battery and a counter that started again are read as they are,
// and the fleet view counts, ranks and limits what the devices say.
#include "health/device_health.h"

#include <gtest/gtest.h>

#include <random>

namespace drover::health {
namespace {

constexpr double kMB = 1e6;
const Timestamp kNow = Timestamp(Duration(int64_t{1'790'000'000'000}));

telemetry::DeviceFreshness fresh(const std::string& id) {
  telemetry::DeviceFreshness f;
  f.device = id;
  f.device_type = "ctl";
  f.freshness = Freshness::kFresh;
  f.contract.report_every = minutes(15);
  f.data_age_s = 60;
  f.contact_age_s = 60;
  return f;
}

// Hourly values over the last `hours` hours ending now: start + slope * h, plus noise.
SeriesWindow hourly(std::string metric, std::vector<std::pair<std::string, std::string>> labels,
                    int hours_back, double start, double per_hour, double noise = 0,
                    uint64_t seed = 1) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> n(0, noise > 0 ? noise : 1);
  SeriesWindow s{std::move(metric), std::move(labels), {}};
  for (int h = 0; h <= hours_back; ++h) {
    const Timestamp at = kNow - hours(hours_back - h);
    s.values.push_back({at, start + per_hour * h + (noise > 0 ? n(rng) : 0)});
  }
  return s;
}

SeriesWindow constant(std::string metric, std::vector<std::pair<std::string, std::string>> labels,
                      double value) {
  return hourly(std::move(metric), std::move(labels), 24, value, 0);
}

const HealthReason* reason(const DeviceHealth& d, std::string_view kind) {
  for (const HealthReason& r : d.reasons) {
    if (r.kind == kind) return &r;
  }
  return nullptr;
}

// Memory draining toward 5% of 512 MB at 1 MB/h, leaving `days_left` days: the expected
// crossing is that far.
DeviceFacts leaking(double days_left) {
  DeviceFacts f{fresh("ctl-1"), {}, {}};
  const double floor = 0.05 * 512 * kMB;
  const double now_level = floor + days_left * 24 * kMB;
  f.series.push_back(
      hourly("memory_available_bytes", {}, 7 * 24, now_level + 7 * 24 * kMB, -kMB, 0.3 * kMB));
  f.series.push_back(constant("memory_total_bytes", {}, 512 * kMB));
  return f;
}

TEST(DeviceHealth, AFreshDeviceWithSteadyResourcesIsHealthy) {
  DeviceFacts f{fresh("ctl-1"), {}, {}};
  f.series.push_back(hourly("memory_available_bytes", {}, 7 * 24, 300 * kMB, 0, 5 * kMB));
  f.series.push_back(constant("memory_total_bytes", {}, 512 * kMB));
  f.series.push_back(hourly("disk_free_bytes", {{"mount", "/data"}}, 7 * 24, 2e9, 0, 1e6));
  const DeviceHealth d = judge_device(f, kNow);
  EXPECT_EQ(d.status, HealthStatus::kHealthy);
  EXPECT_EQ(d.score, 100);
  EXPECT_TRUE(d.reasons.empty());
  EXPECT_EQ(d.device_id, "ctl-1");
}

TEST(DeviceHealth, AResourceRunningOutIsAWarningWithinTheHorizonAndCriticalWithinAWeek) {
  const DeviceHealth far = judge_device(leaking(60), kNow);
  EXPECT_EQ(far.status, HealthStatus::kHealthy);  // beyond 30 days: a forecast, no reason
  ASSERT_EQ(far.forecasts.size(), 1u);
  EXPECT_NEAR(static_cast<double>(far.forecasts[0].crossing.expected.count()) / 86'400'000, 60, 1);

  const DeviceHealth month = judge_device(leaking(20), kNow);
  const HealthReason* r = reason(month, "memory");
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->severity, Severity::kWarning);
  EXPECT_EQ(month.status, HealthStatus::kDegraded);
  EXPECT_EQ(month.score, 85);
  EXPECT_EQ(r->text.rfind("memory exhausted in about 20.0 d (", 0) == 0 ||
                r->text.rfind("memory exhausted in about 19.9 d (", 0) == 0 ||
                r->text.rfind("memory exhausted in about 20.1 d (", 0) == 0,
            true)
      << r->text;
  EXPECT_NE(r->text.find("90% interval"), std::string::npos) << r->text;
  ASSERT_TRUE(r->forecast.has_value());
  EXPECT_DOUBLE_EQ(r->forecast->limit, 0.05 * 512 * kMB);
  EXPECT_LT(r->forecast->crossing.earliest, r->forecast->crossing.expected);

  const DeviceHealth week = judge_device(leaking(3), kNow);
  ASSERT_NE(reason(week, "memory"), nullptr);
  EXPECT_EQ(reason(week, "memory")->severity, Severity::kCritical);
  EXPECT_EQ(week.status, HealthStatus::kCritical);
  EXPECT_EQ(week.score, 60);
}

TEST(DeviceHealth, AResourceAlreadyRunOutIsCriticalNow) {
  // A full disk, flat at its limit (a forecast sees no line heading anywhere), and a battery
  // at 2%.
  DeviceFacts f{fresh("ctl-1"), {}, {}};
  f.series.push_back(hourly("disk_free_bytes", {{"mount", "/data"}}, 48, 1e6, 0, 1e3));
  f.series.push_back(constant("disk_total_bytes", {{"mount", "/data"}}, 10e9));
  f.series.push_back(constant("battery_level_percent", {{"supply", "BAT0"}}, 2));
  const DeviceHealth d = judge_device(f, kNow);
  ASSERT_NE(reason(d, "disk"), nullptr);
  EXPECT_EQ(reason(d, "disk")->severity, Severity::kCritical);
  EXPECT_EQ(reason(d, "disk")->text.rfind("disk /data full now (", 0), 0u)
      << reason(d, "disk")->text;
  ASSERT_NE(reason(d, "battery"), nullptr);
  EXPECT_EQ(reason(d, "battery")->text,
            "battery BAT0 empty now (2 at its newest reading; the limit is 5)");
  EXPECT_EQ(d.status, HealthStatus::kCritical);
  EXPECT_EQ(d.score, 20);
  EXPECT_TRUE(d.forecasts.empty());
}

// A disk that filled over the week and was cleaned an hour ago: the week's line would still
// point at "full in hours"; read since the refill, there is no forecast — the rule that
// cleaned it sees it cleared. An alert about the disk is folded into the disk's reason.
TEST(DeviceHealth, AForecastReadsSinceTheLastRefillAndADiskAlertIsFoldedIntoItsReason) {
  const std::vector<std::pair<std::string, std::string>> data = {{"mount", "/data"}};
  DeviceFacts f{fresh("ctl-1"), {}, {}};
  // 10 GB; free falling 50 MB an hour from 9.4 GB for a week, 1 GB left: 2% (0.2 GB) in
  // about 16 hours.
  SeriesWindow disk = hourly("disk_free_bytes", data, 7 * 24, 9.4e9, -50e6, 5e6);
  f.series.push_back(disk);
  f.series.push_back(constant("disk_total_bytes", data, 10e9));
  Alert cleaning;
  cleaning.id = "alert-9";
  cleaning.rule = "disk-full";
  cleaning.condition = "disk";
  cleaning.summary = "disk for 15 min";
  f.open_alerts = {cleaning};
  DeviceHealth d = judge_device(f, kNow);
  ASSERT_EQ(d.reasons.size(), 1u);
  EXPECT_EQ(d.reasons[0].kind, "disk");
  EXPECT_EQ(d.reasons[0].severity, Severity::kCritical);
  ASSERT_TRUE(d.reasons[0].forecast.has_value());
  EXPECT_NEAR(static_cast<double>(d.reasons[0].forecast->crossing.expected.count()) / 3'600'000, 16,
              1);
  EXPECT_EQ(d.reasons[0].alert, "alert-9");
  EXPECT_NE(d.reasons[0].text.find("; alert-9 (disk-full): remediation under way"),
            std::string::npos)
      << d.reasons[0].text;
  EXPECT_EQ(d.score, 60);  // the disk's points, once
  // Cleaned: the last reading back at 6 GB free.
  f.series[0].values.back().value = 6e9;
  d = judge_device(f, kNow);
  EXPECT_EQ(reason(d, "disk"), nullptr);
  EXPECT_TRUE(d.forecasts.empty());
  // Without the refill rule (a rise of any size read as noise) the week's line still says
  // the disk is full within the week.
  HealthOptions no_refill;
  no_refill.refill_share = 1e9;
  d = judge_device(f, kNow, no_refill);
  ASSERT_NE(reason(d, "disk"), nullptr);
  EXPECT_EQ(reason(d, "disk")->severity, Severity::kCritical);
}

TEST(DeviceHealth, DisksAndBatteriesAreForecastPerMountAndSupplyButNotWhileCharging) {
  DeviceFacts f{fresh("ctl-1"), {}, {}};
  // /data fills in about 10 days toward 2% of 10 GB; /boot is steady.
  const double floor = 0.02 * 10e9;
  f.series.push_back(hourly("disk_free_bytes", {{"mount", "/data"}}, 72,
                            floor + 10 * 24 * 5e6 + 72 * 5e6, -5e6, 1e6));
  f.series.push_back(constant("disk_total_bytes", {{"mount", "/data"}}, 10e9));
  f.series.push_back(hourly("disk_free_bytes", {{"mount", "/boot"}}, 72, 1e8, 0, 1e5));
  // BAT0 drains toward 5% in 2 days; BAT1 drains as fast but is on its charger now.
  f.series.push_back(hourly("battery_level_percent", {{"supply", "BAT0"}}, 48, 5 + 48 + 48, -1));
  f.series.push_back(hourly("battery_level_percent", {{"supply", "BAT1"}}, 48, 5 + 48 + 48, -1));
  f.series.push_back(constant("battery_charging", {{"supply", "BAT1"}}, 1));
  const DeviceHealth d = judge_device(f, kNow);
  const HealthReason* disk = reason(d, "disk");
  ASSERT_NE(disk, nullptr);
  EXPECT_EQ(disk->forecast->resource, "disk /data");
  EXPECT_DOUBLE_EQ(disk->forecast->limit, floor);
  EXPECT_EQ(disk->severity, Severity::kWarning);
  const HealthReason* battery = reason(d, "battery");
  ASSERT_NE(battery, nullptr);
  EXPECT_EQ(battery->forecast->resource, "battery BAT0");
  EXPECT_EQ(battery->severity, Severity::kCritical);
  EXPECT_NE(battery->text.find("battery BAT0 empty in about 2.0 d"), std::string::npos)
      << battery->text;
  ASSERT_EQ(d.forecasts.size(), 2u);  // nearest first: the battery, then the disk
  EXPECT_EQ(d.forecasts[0].resource, "battery BAT0");
  EXPECT_EQ(d.forecasts[1].resource, "disk /data");
  EXPECT_EQ(d.score, 100 - 40 - 15);
}

TEST(DeviceHealth, MoreBootsInADayThanAllowedIsALoopCountingACounterThatStartedAgain) {
  DeviceFacts f{fresh("ctl-1"), {}, {}};
  SeriesWindow boots{"reboots_total", {}, {}};
  // Two days ago 10; a boot every 6 hours for the last day (11..14), then the counter starts
  // again from 0 and counts 1: 5 boots in 24 hours.
  boots.values = {{kNow - hours(48), 10}, {kNow - hours(23), 10}, {kNow - hours(20), 11},
                  {kNow - hours(14), 12}, {kNow - hours(8), 13},  {kNow - hours(4), 14},
                  {kNow - hours(1), 1}};
  f.series.push_back(boots);
  DeviceHealth d = judge_device(f, kNow);
  const HealthReason* r = reason(d, "reboots");
  ASSERT_NE(r, nullptr);
  EXPECT_NE(r->text.find("rebooted 5 times"), std::string::npos) << r->text;
  EXPECT_EQ(r->severity, Severity::kCritical);

  // Three boots in the day (the limit) are not a loop; neither are older ones.
  f.series[0].values = {{kNow - hours(48), 0},  {kNow - hours(40), 9},  {kNow - hours(23), 9},
                        {kNow - hours(20), 10}, {kNow - hours(10), 11}, {kNow - hours(2), 12}};
  d = judge_device(f, kNow);
  EXPECT_EQ(reason(d, "reboots"), nullptr);
  EXPECT_EQ(d.status, HealthStatus::kHealthy);
  // Back after four days unheard, the counter 11 boots on: those were not in the last day.
  f.series[0].values = {{kNow - hours(100), 9}, {kNow - hours(96), 9}, {kNow - hours(1), 20}};
  EXPECT_EQ(reason(judge_device(f, kNow), "reboots"), nullptr);
}

TEST(DeviceHealth, FreshnessAndOpenAlertsAreReasons) {
  DeviceFacts offline{fresh("ctl-1"), {}, {}};
  offline.freshness.freshness = Freshness::kOffline;
  offline.freshness.contact_age_s = 5 * 3600;
  DeviceHealth d = judge_device(offline, kNow);
  ASSERT_NE(reason(d, "offline"), nullptr);
  EXPECT_EQ(reason(d, "offline")->text, "not heard from for 5.0 h (it reports every 15 min)");
  EXPECT_EQ(d.status, HealthStatus::kCritical);
  EXPECT_DOUBLE_EQ(d.quiet_s, 5 * 3600);

  DeviceFacts stale{fresh("ctl-1"), {}, {}};
  stale.freshness.freshness = Freshness::kStale;
  stale.freshness.data_age_s = 2 * 3600;
  d = judge_device(stale, kNow);
  ASSERT_NE(reason(d, "no_data"), nullptr);
  EXPECT_EQ(reason(d, "no_data")->text,
            "no data for 2.0 h while it checks in (it reports every 15 min)");

  DeviceFacts late{fresh("ctl-1"), {}, {}};
  late.freshness.freshness = Freshness::kLate;
  late.freshness.data_age_s = 1200;
  d = judge_device(late, kNow);
  ASSERT_NE(reason(d, "late"), nullptr);
  EXPECT_EQ(reason(d, "late")->severity, Severity::kWarning);
  EXPECT_EQ(d.status, HealthStatus::kDegraded);

  // With the stale data, two open alerts (one with a person) and a resolved one.
  Alert working;
  working.id = "alert-1";
  working.rule = "no-data";
  working.summary = "no data for 31m";
  Alert person = working;
  person.id = "alert-2";
  person.rule = "offline";
  person.escalated = true;
  person.escalation = "offline for a day";
  Alert done = working;
  done.id = "alert-3";
  done.state = AlertState::kResolved;
  stale.open_alerts = {working, person, done};
  d = judge_device(stale, kNow);
  ASSERT_EQ(d.reasons.size(), 3u);
  // The most severe first: no_data and the escalated alert (critical), then the warning.
  EXPECT_EQ(d.reasons[0].kind, "no_data");
  EXPECT_EQ(d.reasons[1].alert, "alert-2");
  EXPECT_EQ(d.reasons[1].text, "alert-2 (offline): with a person: offline for a day");
  EXPECT_EQ(d.reasons[2].alert, "alert-1");
  EXPECT_EQ(d.reasons[2].severity, Severity::kWarning);
  EXPECT_EQ(d.score, 100 - 40 - 40 - 15);

  // An alert about the condition freshness found says what is being done about it, and
  // takes no points of its own: a stuck device is not charged twice.
  Alert about = working;
  about.condition = "no_data";
  stale.open_alerts = {about, person};
  d = judge_device(stale, kNow);
  ASSERT_EQ(d.reasons.size(), 2u);
  ASSERT_NE(reason(d, "no_data"), nullptr);
  EXPECT_EQ(reason(d, "no_data")->alert, "alert-1");
  EXPECT_EQ(reason(d, "no_data")->text,
            "no data for 2.0 h while it checks in (it reports every 15 min); alert-1 (no-data): "
            "remediation under way");
  EXPECT_EQ(d.score, 100 - 40 - 40);

  // Points never take the score below zero.
  stale.open_alerts = {person, person, person};
  EXPECT_EQ(judge_device(stale, kNow).score, 0);
}

TEST(DeviceHealth, NothingToJudgeIsUnknown) {
  DeviceFacts f{fresh("ctl-1"), {}, {}};
  f.freshness.freshness = Freshness::kNoContract;
  f.freshness.contract = {};
  EXPECT_EQ(judge_device(f, kNow).status, HealthStatus::kUnknown);
  f.series.push_back(constant("memory_available_bytes", {}, 300 * kMB));
  EXPECT_EQ(judge_device(f, kNow).status, HealthStatus::kHealthy);
  // A decommissioned device is judged no more, whatever its data says.
  DeviceFacts gone = leaking(2);
  gone.freshness.decommissioned = true;
  const DeviceHealth d = judge_device(gone, kNow);
  EXPECT_EQ(d.status, HealthStatus::kUnknown);
  ASSERT_EQ(d.reasons.size(), 1u);
  EXPECT_EQ(d.reasons[0].kind, "decommissioned");
  EXPECT_EQ(d.score, 100);
  EXPECT_TRUE(d.forecasts.empty());
}

// Without a contract nothing is late, but a device quiet for as long as the fleet view counts
// as lost is offline: it must not look healthy for good.
TEST(DeviceHealth, ADeviceWithoutAContractIsOfflineOnceQuietForLostAfter) {
  DeviceFacts f{fresh("ctl-1"), {}, {}};
  f.freshness.freshness = Freshness::kNoContract;
  f.freshness.contract = {};
  f.series.push_back(constant("memory_available_bytes", {}, 300 * kMB));
  const HealthOptions o;
  f.freshness.contact_age_s = static_cast<double>(o.lost_after.count()) / 1000 - 60;
  EXPECT_EQ(judge_device(f, kNow).status, HealthStatus::kHealthy);
  f.freshness.contact_age_s = static_cast<double>(o.lost_after.count()) / 1000;
  const DeviceHealth d = judge_device(f, kNow);
  EXPECT_EQ(d.status, HealthStatus::kCritical);
  ASSERT_NE(reason(d, "offline"), nullptr);
  EXPECT_EQ(reason(d, "offline")->text,
            "not heard from for 3.0 d (it has no telemetry contract; 3.0 d of quiet counts as "
            "lost)");
}

// A battery's drain is its level's slope since its last charge, over at least drain_span; none
// while charging, over too short a stretch, or when the level is not falling.
TEST(DeviceHealth, ABatterysDrainIsReadSinceItsLastChargeAndNotWhileCharging) {
  const std::vector<std::pair<std::string, std::string>> bat = {{"supply", "BAT0"}};
  DeviceFacts f{fresh("ctl-1"), {}, {}};
  f.series.push_back(hourly("battery_level_percent", bat, 12, 90, -1.5, 0.05));
  auto drain = battery_drain(f);
  ASSERT_TRUE(drain.has_value());
  EXPECT_EQ(drain->supply, "BAT0");
  EXPECT_NEAR(drain->per_hour, 1.5, 0.05);
  // Charged 4 hours ago (the level rose by 40 points): only the 4 hours since count.
  DeviceFacts charged{fresh("ctl-1"), {}, {}};
  SeriesWindow level = hourly("battery_level_percent", bat, 12, 90, -1.5);
  for (size_t i = 8; i < level.values.size(); ++i) {
    level.values[i].value = 95 - 3.0 * static_cast<double>(i - 8);
  }
  // Readings every 30 minutes so the stretch has enough of them.
  SeriesWindow fine = hourly("battery_level_percent", bat, 0, 0, 0);
  fine.values.clear();
  for (int m = 0; m <= 8; ++m) {
    fine.values.push_back({kNow - minutes(240 - 30 * m), 95 - 1.5 * m});
  }
  SeriesWindow before = level;
  before.values.resize(8);
  for (const TimedValue& v : fine.values) before.values.push_back(v);
  charged.series.push_back(before);
  drain = battery_drain(charged);
  ASSERT_TRUE(drain.has_value());
  EXPECT_NEAR(drain->per_hour, 3.0, 0.01);  // 1.5 points every half hour
  // Since the charge: 13 readings over 2 hours (too short a time), and 5 over 4 hours (too
  // few readings).
  SeriesWindow brief = hourly("battery_level_percent", bat, 0, 0, 0);
  brief.values = {{kNow - hours(5), 30}};
  for (int m = 0; m <= 12; ++m)
    brief.values.push_back({kNow - minutes(120 - 10 * m), 90 - 0.5 * m});
  charged.series = {brief};
  EXPECT_FALSE(battery_drain(charged).has_value());
  SeriesWindow sparse = brief;
  sparse.values = {{kNow - hours(5), 30}};
  for (int h = 0; h <= 4; ++h) sparse.values.push_back({kNow - hours(4 - h), 90 - 3.0 * h});
  charged.series = {sparse};
  EXPECT_FALSE(battery_drain(charged).has_value());
  HealthOptions lenient;
  lenient.drain_span = hours(1);
  lenient.forecast.min_points = 4;
  charged.series = {brief};
  EXPECT_TRUE(battery_drain(charged, lenient).has_value());
  charged.series = {sparse};
  EXPECT_TRUE(battery_drain(charged, lenient).has_value());
  // Charging, or rising: no drain.
  f.series.push_back(constant("battery_charging", bat, 1));
  EXPECT_FALSE(battery_drain(f).has_value());
  DeviceFacts rising{fresh("ctl-1"), {}, {}};
  rising.series.push_back(hourly("battery_level_percent", bat, 12, 20, 0.5));
  EXPECT_FALSE(battery_drain(rising).has_value());
}

TEST(DeviceHealth, AReasonFromBeyondTheDeviceTakesItsPointsAndSetsItsStatus) {
  DeviceHealth d = judge_device(DeviceFacts{fresh("ctl-1"), {}, {}}, kNow);
  ASSERT_EQ(d.status, HealthStatus::kHealthy);
  add_reason(d, {"battery_drain", Severity::kWarning, 15, "drains fast", "", {}});
  EXPECT_EQ(d.status, HealthStatus::kDegraded);
  EXPECT_EQ(d.score, 85);
  add_reason(d, {"offline", Severity::kCritical, 40, "gone", "", {}});
  EXPECT_EQ(d.status, HealthStatus::kCritical);
  EXPECT_EQ(d.score, 45);
  EXPECT_EQ(d.reasons.front().kind, "offline");  // the most severe first
}

TEST(FleetHealthView, CountsLossesRanksTheDevicesAtRiskAndListsWhatRunsOutSoonest) {
  std::vector<DeviceHealth> devices;
  auto add = [&](const std::string& id, const DeviceFacts& facts) {
    DeviceFacts f = facts;
    f.freshness.device = id;
    devices.push_back(judge_device(f, kNow));
  };
  add("a-healthy", DeviceFacts{fresh(""), {}, {}});
  add("b-leak-20d", leaking(20));
  add("c-leak-3d", leaking(3));
  add("d-leak-60d", leaking(60));
  DeviceFacts lost{fresh(""), {}, {}};
  lost.freshness.freshness = Freshness::kOffline;
  lost.freshness.contact_age_s = 4 * 86'400;  // quiet 4 days: lost this month
  add("e-lost", lost);
  lost.freshness.contact_age_s = 40 * 86'400;  // quiet 40 days: lost, before this month
  add("f-lost-long-ago", lost);
  lost.freshness.contact_age_s = 2 * 86'400;  // quiet 2 days: not lost yet
  add("g-quiet", lost);
  lost.freshness.contact_age_s = 32 * 86'400;  // lost 29 days ago: this month's
  add("i-lost-29-days-ago", lost);
  lost.freshness.contact_age_s = 34 * 86'400;  // lost 31 days ago: before this month
  add("j-lost-31-days-ago", lost);
  DeviceFacts unknown{fresh(""), {}, {}};
  unknown.freshness.freshness = Freshness::kNoContract;
  add("h-unknown", unknown);

  const FleetHealth f = summarize(devices, hours(int64_t{30} * 24), 3);
  EXPECT_EQ(f.devices, 10u);
  EXPECT_EQ(f.healthy, 2u);  // a, d (a forecast beyond the horizon is no reason)
  EXPECT_EQ(f.degraded, 1u);
  EXPECT_EQ(f.critical, 6u);
  EXPECT_EQ(f.unknown, 1u);
  EXPECT_EQ(f.lost, 4u);               // e, f, i, j
  EXPECT_EQ(f.lost_last_30_days, 2u);  // e, i
  EXPECT_DOUBLE_EQ(f.loss_rate_per_month, 2.0 / 10);
  // At risk: the 6 critical (score 60: c, e, f, g, i, j — by id) and b; 3 listed.
  EXPECT_EQ(f.at_risk_total, 7u);
  ASSERT_EQ(f.at_risk.size(), 3u);
  EXPECT_EQ(f.at_risk[0].device_id, "c-leak-3d");
  EXPECT_EQ(f.at_risk[1].device_id, "e-lost");
  EXPECT_EQ(f.at_risk[2].device_id, "f-lost-long-ago");
  // Predicted within 30 days: c (3 d) then b (20 d); d's 60 days are beyond.
  EXPECT_EQ(f.predicted_total, 2u);
  ASSERT_EQ(f.predicted.size(), 2u);
  EXPECT_EQ(f.predicted[0].first, "c-leak-3d");
  EXPECT_EQ(f.predicted[1].first, "b-leak-20d");
  // Within 90 days, d too; a limit of 1 lists the soonest only.
  const FleetHealth wide = summarize(devices, hours(int64_t{90} * 24), 1);
  EXPECT_EQ(wide.predicted_total, 3u);
  ASSERT_EQ(wide.predicted.size(), 1u);
  EXPECT_EQ(wide.predicted[0].first, "c-leak-3d");
  EXPECT_TRUE(summarize({}, hours(24), 10).at_risk.empty());
  EXPECT_DOUBLE_EQ(summarize({}, hours(24), 10).loss_rate_per_month, 0);
}

// A device whose data could not be read (HealthView judges it so rather than failing the
// view) is unknown, counted as unreadable and listed at risk after the devices judged.
TEST(FleetHealthView, AnUnreadableDeviceIsCountedAndListedNotHidden) {
  std::vector<DeviceHealth> devices;
  DeviceFacts f = leaking(3);
  devices.push_back(judge_device(f, kNow));
  DeviceHealth unreadable;
  unreadable.device_id = "a-unreadable";
  unreadable.status = HealthStatus::kUnknown;
  unreadable.reasons.push_back(
      {"unreadable", Severity::kWarning, 0, "its data could not be read: io: disk", "", {}});
  devices.push_back(unreadable);
  DeviceFacts quiet{fresh("b-no-contract"), {}, {}};
  quiet.freshness.freshness = Freshness::kNoContract;
  devices.push_back(judge_device(quiet, kNow));
  const FleetHealth fleet = summarize(devices, hours(24), 10);
  EXPECT_EQ(fleet.unknown, 2u);
  EXPECT_EQ(fleet.unreadable, 1u);
  EXPECT_EQ(fleet.at_risk_total, 2u);
  ASSERT_EQ(fleet.at_risk.size(), 2u);
  EXPECT_EQ(fleet.at_risk[0].device_id, "ctl-1");
  EXPECT_EQ(fleet.at_risk[1].device_id, "a-unreadable");
}

}  // namespace
}  // namespace drover::health
