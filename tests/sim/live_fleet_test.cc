// The twin on a given fleet (sim/live_fleet.h): a server's devices keep their ids, sites,
// windows and check-in times in the prediction, and what they do not say is assumed.
#include "sim/live_fleet.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "base/units.h"
#include "model/codec.h"
#include "sim/simulator.h"

namespace drover::sim {
namespace {

using nlohmann::json;

Timestamp noon() {
  auto t = parse_utc_timestamp("2026-12-01T12:00:00Z");
  EXPECT_TRUE(t.ok());
  return *t;
}

Artifact firmware(const std::string& version) {
  Artifact a;
  a.name = "firmware";
  a.version = version;
  a.device_types = {"thermostat"};
  a.size_bytes = 1'000'000;
  a.sha256 = std::string(64, version == "2.0.0" ? 'b' : 'a');
  return a;
}

// `n` thermostats on firmware 1.0.0, half at site "day" (always open), half at "night"
// (22:00-06:00 UTC), each told to check in again 10 minutes from noon.
LiveFleet fleet(int n) {
  LiveFleet f;
  f.now = noon();
  MaintenanceWindow night;
  night.days = 0x7f;
  night.start_minute = 22 * 60;
  night.length_minutes = 8 * 60;
  f.sites = {Site{"day", "UTC", {}}, Site{"night", "UTC", {night}}};
  f.artifacts = {firmware("1.0.0"), firmware("2.0.0")};
  for (int i = 0; i < n; ++i) {
    Device d;
    d.id = "thermostat-" + std::to_string(100 + i);
    d.device_type = "thermostat";
    d.hardware_revision = i % 3 == 0 ? "rev-b" : "rev-a";
    d.site = i % 2 == 0 ? "day" : "night";
    d.connectivity = i % 4 == 0 ? "lte" : "ethernet";
    d.installed = {{"firmware", "1.0.0"}};
    d.keeps_previous = true;
    f.devices.push_back(d);
    f.check_ins.push_back({f.now - minutes(20), f.now + minutes(10)});
  }
  return f;
}

RolloutPlan plan(bool respect_windows) {
  auto p = plan_from_json(R"({
    "name": "fw-2.0.0", "artifact": {"name": "firmware", "version": "2.0.0"},
    "stratify_by": ["site"],
    "stages": [{"name": "canary", "percent": 10, "soak": "30m"}, {"name": "all", "percent": 100}],
    "gate": {"max_failure_rate": 0.05, "min_sample": 1},
    "contract": {"max_silence": "6h"}
  })");
  EXPECT_TRUE(p.ok()) << p.error().to_string();
  p->constraints.respect_windows = respect_windows;
  return *p;
}

PredictionAssumptions assume() {
  PredictionAssumptions a;
  a.poll_interval = minutes(30);
  a.horizon = days(3);
  return a;
}

TEST(LiveFleet, TheTwinRunsTheGivenDevicesAsTheyAre) {
  LiveFleet f = fleet(40);
  f.devices[3].enrollment = Enrollment::kPending;  // not in the fleet a plan reaches
  f.devices[5].decommissioned = true;
  f.check_ins[7] = {f.now - days(2), f.now - days(1)};  // a day overdue: gone
  f.check_ins[9] = {};                                  // not heard from since a restart
  auto live = live_scenario(plan(false), f, assume());
  ASSERT_TRUE(live.ok()) << live.error().to_string();
  EXPECT_EQ(live->excluded, 2u);
  EXPECT_EQ(live->dark, 1u);
  EXPECT_EQ(live->unknown, 1u);
  ASSERT_EQ(live->scenario.fleet.size(), 38u);
  EXPECT_EQ(live->scenario.connectivity.size(), 2u);  // ethernet and lte, at the server's poll

  SimOptions o;
  o.preflight = true;
  auto r = run_simulation(live->scenario, o);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(r->devices_total, 38u);
  EXPECT_EQ(r->devices_eligible, 38u);
  EXPECT_EQ(r->devices_dark, 1u);
  // Everyone else updated; the overdue one is named by its own id among those never reached.
  EXPECT_EQ(r->devices_updated, 37u);
  ASSERT_EQ(r->never_reached.size(), 1u);
  EXPECT_EQ(r->never_reached[0].device_id, "thermostat-107");
  // Nobody checks in before the ten minutes they were told: the canary cannot finish sooner.
  ASSERT_TRUE(r->time_to_50_percent_s.has_value());
  EXPECT_GE(*r->time_to_50_percent_s, 10 * 60.0);
  ASSERT_EQ(r->revisions.size(), 2u);
  EXPECT_EQ(r->revisions[0].devices + r->revisions[1].devices, 38u);
}

// The sites' windows come along: with respect_windows the "night" devices install only from
// 22:00, ten hours after noon, and the prediction says so; without, they are done within
// the hour. A device's own quiet hours come along too: one at the always-open site that is
// quiet from 06:00 to midnight installs after midnight, twelve hours on.
TEST(LiveFleet, TheSitesWindowsShapeThePrediction) {
  SimOptions o;
  o.preflight = true;
  LiveFleet f = fleet(40);
  MaintenanceWindow day;
  day.days = 0x7f;
  day.start_minute = 6 * 60;
  day.length_minutes = 18 * 60;
  f.devices[0].quiet_hours = {day};  // thermostat-100, at "day"
  auto windowed = live_scenario(plan(true), f, assume());
  ASSERT_TRUE(windowed.ok());
  auto r = run_simulation(windowed->scenario, o);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(r->devices_updated, 40u);
  EXPECT_EQ(r->windows.total_outside(), 0u);
  EXPECT_GE(r->windows.held, 1u);
  ASSERT_TRUE(r->time_to_100_percent_s.has_value());
  EXPECT_GE(*r->time_to_100_percent_s, 12 * 3600.0);

  auto open = live_scenario(plan(false), fleet(40), assume());
  ASSERT_TRUE(open.ok());
  auto fast = run_simulation(open->scenario, o);
  ASSERT_TRUE(fast.ok()) << fast.error().to_string();
  ASSERT_TRUE(fast->time_to_100_percent_s.has_value());
  EXPECT_LT(*fast->time_to_100_percent_s, 3 * 3600.0);
}

// Slower installs and a slower link make a slower prediction: the assumptions are used.
TEST(LiveFleet, TheAssumptionsAreTheOnesGiven) {
  PredictionAssumptions slow = assume();
  slow.install_time = minutes(40);
  slow.bandwidth_bps = 100'000;  // 80 s for the megabyte
  auto quick = predict_on_live_fleet(plan(false), fleet(20), assume());
  auto slowly = predict_on_live_fleet(plan(false), fleet(20), slow);
  ASSERT_TRUE(quick.ok()) << quick.error().to_string();
  ASSERT_TRUE(slowly.ok()) << slowly.error().to_string();
  const json a = json::parse(*quick);
  const json b = json::parse(*slowly);
  EXPECT_EQ(b.at("assumptions").at("install_time"), "40m");
  EXPECT_EQ(b.at("assumptions").at("bandwidth_bps"), 100'000);
  EXPECT_EQ(a.at("fleet").at("devices"), 20);
  const double fast_s = a.at("report").at("time_to_100_percent_s").get<double>();
  const double slow_s = b.at("report").at("time_to_100_percent_s").get<double>();
  EXPECT_GE(slow_s, fast_s + 38 * 60.0);  // at least the longer install, once
}

TEST(LiveFleet, AFleetWithoutDevicesOrAboveTheLimitIsRefused) {
  LiveFleet none = fleet(0);
  auto empty = predict_on_live_fleet(plan(false), none, assume());
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.error().code, ErrorCode::kFailedPrecondition);

  LiveFleet big;
  big.now = noon();
  big.devices.resize(kMaxPredictedDevices + 1);
  for (size_t i = 0; i < big.devices.size(); ++i) big.devices[i].id = "d" + std::to_string(i);
  auto refused = live_scenario(plan(false), std::move(big), assume());
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(refused.error().message.find("200000"), std::string::npos);
}

}  // namespace
}  // namespace drover::sim
