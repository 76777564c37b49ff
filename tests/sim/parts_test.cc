// The twin's parts on their own: the fleet world (generation, links, windows, defects), the
// narrator, and the device model's timed phases as the control plane records them.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <string_view>
#include <thread>
#include <vector>

#include "base/units.h"
#include "sim/device_side.h"
#include "sim/fleet_health.h"
#include "sim/fleet_world.h"
#include "sim/local_plane.h"
#include "sim/narrator.h"
#include "sim/report_builder.h"
#include "sim/simulator.h"

namespace drover::sim {
namespace {

// Two sites in UTC with a window 22:00-06:00; half the devices on a link that is up only
// 02:00-02:30 UTC, a quarter with quiet hours 23:00-01:00.
constexpr std::string_view kWorld = R"({
  "name": "parts", "seed": 5, "start": "2026-10-06T00:00:00Z", "horizon": "1h", "devices": 2000,
  "device_types": [{"name": "t", "hardware_revisions": [{"name": "rev-a", "share": 0.5},
                                                        {"name": "rev-b", "share": 0.5}]}],
  "site_groups": [{"prefix": "s", "count": 2, "time_zone": "UTC",
                   "maintenance_windows": [{"days": "daily", "start": "22:00", "end": "06:00"}]}],
  "connectivity": [
    {"name": "wired", "kind": "always_on", "share": 0.5, "poll_interval": "10m", "bandwidth": "10Mbps"},
    {"name": "sat", "kind": "intermittent", "share": 0.5, "poll_interval": "5m", "bandwidth": "1Mbps",
     "online": [{"start": "02:00", "length": "30m"}]}],
  "quiet_hours": [{"share": 0.25, "windows": [{"days": "daily", "start": "23:00", "end": "01:00"}]}],
  "checkin_jitter": 0.2, "install_time": "2m", "reboot_time": "90s",
  "installed": {"firmware": "1.0.0"},
  "artifacts": [{"name": "firmware", "version": "1.0.1", "device_types": ["t"], "size": "1MB"}],
  "defects": [{"hardware_revision": "rev-b", "kind": "boot_fails", "probability": 0.3}],
  "rollout": {"name": "r", "artifact": {"name": "firmware", "version": "1.0.1"},
              "stages": [{"name": "all", "percent": 100}]}
})";

Scenario world_scenario() {
  auto s = parse_scenario(kWorld);
  EXPECT_TRUE(s.ok()) << s.error().to_string();
  return *s;
}

Timestamp at(const char* utc) { return *parse_utc_timestamp(utc); }

struct World {
  explicit World(const Scenario& s, uint64_t seed = 5, bool preflight = false,
                 uint32_t devices = 2000)
      : clock(s.start), world(s, seed, preflight, clock) {
    world.generate(devices, fleet);
  }
  ManualClock clock;
  FleetWorld world;
  std::vector<Device> fleet;
};

TEST(FleetWorld, TheSameSeedGeneratesTheSameFleetAndAnotherSeedAnother) {
  const Scenario s = world_scenario();
  World a(s), b(s), c(s, 6);
  ASSERT_EQ(a.fleet.size(), 2000u);
  EXPECT_EQ(a.fleet, b.fleet);
  EXPECT_NE(a.fleet, c.fleet);
  EXPECT_EQ(a.fleet.front().id, "dev-000001");
  EXPECT_EQ(a.world.name_of(1999).str(), "dev-002000");
  // Both revisions, both links and some quiet hours are drawn, near their shares.
  const auto count = [&](auto pred) { return std::count_if(a.fleet.begin(), a.fleet.end(), pred); };
  EXPECT_NEAR(count([](const Device& d) { return d.hardware_revision == "rev-b"; }), 1000, 100);
  EXPECT_NEAR(count([](const Device& d) { return d.connectivity == "sat"; }), 1000, 100);
  EXPECT_NEAR(count([](const Device& d) { return !d.quiet_hours.empty(); }), 500, 80);
  // The record and the twin's state agree.
  for (uint32_t i = 0; i < 50; ++i) {
    EXPECT_EQ(a.world.revision(i), a.fleet[i].hardware_revision);
    EXPECT_EQ(a.world.site(i).name, a.fleet[i].site);
    EXPECT_EQ(a.world.link(i).name, a.fleet[i].connectivity);
  }
}

TEST(FleetWorld, ANameHasRoomForTheLargestIndex) {
  const Scenario s = world_scenario();
  World w(s, 5, false, 1'234'567);
  EXPECT_EQ(w.world.name_of(0).str(), "dev-0000001");
  EXPECT_EQ(w.world.name_of(1'234'566).str(), "dev-1234567");
}

TEST(FleetWorld, AnIntermittentLinkIsUpOnlyInItsWindow) {
  const Scenario s = world_scenario();
  World w(s);
  uint32_t sat = 0;
  while (w.world.link(sat).name != "sat") ++sat;
  uint32_t wired = 0;
  while (w.world.link(wired).name != "wired") ++wired;
  EXPECT_FALSE(w.world.online(sat, at("2026-10-06T01:59:59Z")));
  EXPECT_TRUE(w.world.online(sat, at("2026-10-06T02:00:00Z")));
  EXPECT_TRUE(w.world.online(sat, at("2026-10-06T02:29:59Z")));
  EXPECT_FALSE(w.world.online(sat, at("2026-10-06T02:30:00Z")));
  EXPECT_EQ(w.world.online_until(sat, at("2026-10-06T02:10:00Z")), at("2026-10-06T02:30:00Z"));
  EXPECT_EQ(w.world.link_up_at(sat, at("2026-10-06T03:00:00Z")), at("2026-10-07T02:00:00Z"));
  // Devices waiting for the link spread over the first minutes (60 s × (1 + 4 × jitter)).
  for (int k = 0; k < 20; ++k) {
    const Timestamp t = w.world.next_online(sat, at("2026-10-06T03:00:00Z"));
    EXPECT_GE(t, at("2026-10-07T02:00:00Z"));
    EXPECT_LT(t, at("2026-10-07T02:01:48Z"));
  }
  // Up already: no spread. An always-on link is always up.
  EXPECT_EQ(w.world.next_online(sat, at("2026-10-06T02:05:00Z")), at("2026-10-06T02:05:00Z"));
  EXPECT_TRUE(w.world.online(wired, at("2026-10-06T13:00:00Z")));
  EXPECT_EQ(w.world.online_until(wired, at("2026-10-06T13:00:00Z")), Timestamp::max());
}

TEST(FleetWorld, ADevicesWindowIsItsSitesLessItsQuietHours) {
  const Scenario s = world_scenario();
  World w(s);
  uint32_t quiet = 0;
  while (w.fleet[quiet].quiet_hours.empty()) ++quiet;
  uint32_t plain = 0;
  while (!w.fleet[plain].quiet_hours.empty()) ++plain;
  for (const uint32_t dev : {quiet, plain}) {
    EXPECT_TRUE(w.world.in_window(dev, at("2026-10-06T22:30:00Z")));
    EXPECT_FALSE(w.world.in_window(dev, at("2026-10-06T12:00:00Z")));
    EXPECT_TRUE(w.world.in_window(dev, at("2026-10-07T05:59:00Z")));
  }
  EXPECT_FALSE(w.world.in_window(quiet, at("2026-10-06T23:30:00Z")));
  EXPECT_TRUE(w.world.in_window(plain, at("2026-10-06T23:30:00Z")));
}

TEST(FleetWorld, ADefectStrikesTheSameDevicesWhateverTheOrderOfAsking) {
  const Scenario s = world_scenario();
  World w(s);
  UpdateOffer offer;
  offer.version = "1.0.1";
  std::vector<uint32_t> forward, backward;
  for (uint32_t i = 0; i < w.world.size(); ++i)
    if (w.world.defect(i, offer, DefectKind::kBootFails)) forward.push_back(i);
  for (uint32_t i = w.world.size(); i-- > 0;)
    if (w.world.defect(i, offer, DefectKind::kBootFails)) backward.push_back(i);
  std::reverse(backward.begin(), backward.end());
  EXPECT_EQ(forward, backward);
  // Only the revision it names, at about its probability (±4σ of 0.3 of ~1000).
  size_t rev_b = 0;
  for (uint32_t i = 0; i < w.world.size(); ++i) rev_b += w.world.revision(i) == "rev-b" ? 1 : 0;
  for (const uint32_t i : forward) EXPECT_EQ(w.world.revision(i), "rev-b");
  EXPECT_NEAR(static_cast<double>(forward.size()) / static_cast<double>(rev_b), 0.3, 0.06);
  // Not another kind, not another version, never a revert, never in a pre-flight.
  EXPECT_FALSE(w.world.defect(forward[0], offer, DefectKind::kInstallFails));
  UpdateOffer other = offer;
  other.version = "1.0.2";
  EXPECT_FALSE(w.world.defect(forward[0], other, DefectKind::kBootFails));
  UpdateOffer revert = offer;
  revert.revert = true;
  EXPECT_FALSE(w.world.defect(forward[0], revert, DefectKind::kBootFails));
  World pre(s, 5, true);
  EXPECT_FALSE(pre.world.defect(forward[0], offer, DefectKind::kBootFails));
}

TEST(FleetWorld, ArrivalsComeWithinOnePollIntervalOrWhenTheLinkFirstComesUp) {
  const Scenario s = world_scenario();
  World w(s);
  w.world.schedule_arrivals();
  EventQueue& q = w.world.queue();
  ASSERT_EQ(q.size(), 2000u);  // no lost devices in this scenario
  while (!q.empty()) {
    const Event e = q.top();
    q.pop();
    ASSERT_EQ(static_cast<EventKind>(e.kind), EventKind::kCheckIn);
    const Timestamp t{Duration(e.at_ms)};
    if (w.world.link(e.device).name == "wired") {
      EXPECT_LT(t, s.start + minutes(10));
    } else {
      EXPECT_GE(t, at("2026-10-06T02:00:00Z"));
      EXPECT_TRUE(w.world.online(e.device, t));
    }
  }
}

TEST(Narrator, StampsTheTimeSinceTheStartAndTheTimeOfDay) {
  ManualClock clock(at("2026-10-06T01:30:00Z"));
  std::vector<std::string> lines;
  Narrator n(
      clock.now(), clock, [&](const std::string& l) { lines.push_back(l); }, false);
  clock.advance(hours(26) + minutes(3) + seconds(4));
  n.say("hello");
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0], "T+26:03:04  03:33Z  hello");
}

TEST(Narrator, TellsTheFirstDevicesOfAKindAndCountsTheRest) {
  const Scenario s = world_scenario();
  World w(s);
  std::vector<std::string> lines;
  Narrator n(
      s.start, w.clock, [&](const std::string& l) { lines.push_back(l); }, false);
  uint32_t told = 0;
  for (uint32_t dev = 0; dev < 5; ++dev) n.tell_device(w.world, dev, "did a thing", told);
  EXPECT_EQ(told, 5u);
  ASSERT_EQ(lines.size(), Narrator::kDeviceLines);
  EXPECT_NE(lines[0].find("[device] dev-000001 (" + w.fleet[0].hardware_revision + ", " +
                          w.fleet[0].site + "): did a thing"),
            std::string::npos);
  EXPECT_EQ(lines[1].find("counted"), std::string::npos);
  EXPECT_NE(lines[2].find("(further devices like this are counted, not listed)"),
            std::string::npos);
}

TEST(Narrator, HeldEngineLinesWaitForTheThreadThatDrivesTheRun) {
  ManualClock clock(at("2026-10-06T00:00:00Z"));
  std::vector<std::string> lines;
  Narrator n(
      clock.now(), clock, [&](const std::string& l) { lines.push_back(l); }, true);
  std::thread server([&] {
    for (int k = 0; k < 3; ++k) {
      EngineEvent e;
      e.at = clock.now() + minutes(k);
      e.text = "event " + std::to_string(k);
      n.engine_event(e);
    }
  });
  server.join();
  EXPECT_TRUE(lines.empty());
  n.flush_engine_lines();
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_NE(lines[0].find("T+00:00:00"), std::string::npos);
  EXPECT_NE(lines[2].find("T+00:02:00"), std::string::npos);
  EXPECT_NE(lines[2].find("event 2"), std::string::npos);
  n.flush_engine_lines();
  EXPECT_EQ(lines.size(), 3u);  // each once
}

// The twin's health data (sim/fleet_health.h): each modelled metric answers with its
// measure alone; a defect changes only its own metric, on devices that committed the
// version, by about its size; a dark device and anything unmodelled have no data; the same
// question gets the same answer.
TEST(FleetHealth, EachMetricAnswersAsModelledAndADefectMovesOnlyItsOwn) {
  Scenario s = world_scenario();
  DefectSpec leak, reboots;
  leak.kind = DefectKind::kLeaksMemory;
  leak.bytes_per_day = 8 << 20;
  reboots.kind = DefectKind::kReboots;
  reboots.factor = 5;
  s.defects = {leak, reboots};
  World w(s);
  RunState run;
  run.rollout_started = s.start;
  FleetHealth health(w.world, run, 5);
  const Timestamp from = s.start + hours(24 * 10), to = from + hours(24 * 10);
  const HealthMetric battery{"battery_level_percent", HealthMeasure::kSlope,
                             HealthDirection::kLowerIsWorse};
  const HealthMetric memory{"memory_available_bytes", HealthMeasure::kSlope,
                            HealthDirection::kLowerIsWorse};
  const HealthMetric boots{"reboots_total", HealthMeasure::kIncrease,
                           HealthDirection::kHigherIsWorse};
  const HealthMetric alarms{"temperature_celsius", HealthMeasure::kAnomalies,
                            HealthDirection::kHigherIsWorse};
  const HealthMetric crashes{"crashes_total", HealthMeasure::kIncrease,
                             HealthDirection::kHigherIsWorse};
  // The mean of a metric over the first 1,000 devices.
  auto mean = [&](const HealthMetric& m) {
    double sum = 0;
    for (uint32_t d = 0; d < 1000; ++d) {
      auto v = health.measure(w.world.name_of(d).view(), m, from, to);
      EXPECT_TRUE(v.ok() && v->has_value()) << m.metric;
      sum += v.ok() && v->has_value() ? **v : 0;
    }
    return sum / 1000;
  };
  const double drain = mean(battery), mem = mean(memory), boot = mean(boots), alarm = mean(alarms),
               crash = mean(crashes);
  EXPECT_NEAR(crash, 0.3 * 10 * 1.28, 0.6);  // 0.3 a day, lognormal with sd 0.7 of its log
  EXPECT_LT(drain, -2 * 0.6);  // about 2% a day lost, times the week's weather (0.6 to 1.4)
  EXPECT_GT(drain, -2.1 * 1.4);
  EXPECT_LT(std::abs(mem), 1 << 20);         // no trend on average
  EXPECT_NEAR(boot, 0.1 * 10 * 1.13, 0.25);  // 0.1 a day, lognormal with sd 0.5 of its log
  EXPECT_NEAR(alarm, 0.37 * 1.13, 0.08);     // alarms a day
  // Nothing for what is not modelled.
  for (const HealthMetric& m :
       {HealthMetric{"battery_level_percent", HealthMeasure::kMean, HealthDirection::kLowerIsWorse},
        HealthMetric{"cpu_usage_ratio", HealthMeasure::kSlope, HealthDirection::kHigherIsWorse},
        HealthMetric{"memory_available_bytes", HealthMeasure::kIncrease,
                     HealthDirection::kHigherIsWorse}}) {
    auto v = health.measure("dev-000001", m, from, to);
    ASSERT_TRUE(v.ok());
    EXPECT_FALSE(v->has_value()) << m.metric;
  }
  auto v = health.measure("dev-999999", memory, from, to);
  ASSERT_TRUE(v.ok());
  EXPECT_FALSE(v->has_value());
  // Every device commits the rollout's version at the window's start: memory falls by the
  // leak, reboots come five times as often, the battery and the alarms do not move.
  for (uint32_t d = 0; d < w.world.size(); ++d)
    w.world.device(d).committed_at_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(from - run.rollout_started).count();
  EXPECT_NEAR(mean(memory), mem - (8 << 20), 1 << 20);
  EXPECT_NEAR(mean(boots), 5 * boot, 5 * 0.25);
  EXPECT_EQ(mean(battery), drain);
  EXPECT_EQ(mean(alarms), alarm);
  EXPECT_EQ(mean(crashes), crash);
  EXPECT_EQ(mean(memory), mean(memory));
  w.world.device(0).dark = true;
  v = health.measure("dev-000001", memory, from, to);
  ASSERT_TRUE(v.ok());
  EXPECT_FALSE(v->has_value());
}

// The device model's timed phases, as the control plane records them: an install takes
// install_time, a trial boot that fails takes two reboots (into the new slot and back), and
// an install that fails ends the update after install_time.
TEST(DeviceModel, TimedPhasesLastWhatTheScenarioSaysAndEndAsTheDefectsSay) {
  for (const DefectKind kind : {DefectKind::kBootFails, DefectKind::kInstallFails}) {
    Scenario s = world_scenario();
    s.defects[0].kind = kind;
    s.defects[0].probability = 1;
    s.connectivity.resize(1);  // always on: every report goes out when it is made
    s.connectivity[0].share = 1;
    SimOptions o;
    o.devices = 200;
    auto r = run_simulation(s, o);
    ASSERT_TRUE(r.ok()) << r.error().to_string();
    ASSERT_FALSE(r->failed_sample.empty());
    for (const Report::FailedDevice& f : r->failed_sample) {
      std::map<std::string, Timestamp> when;
      for (const DeploymentStep& step : f.history) when.emplace(to_string(step.state), step.at);
      ASSERT_TRUE(when.contains("installing")) << f.device_id;
      if (kind == DefectKind::kBootFails) {
        EXPECT_EQ(f.state, "rolled_back");
        EXPECT_EQ(when["rebooting"] - when["installing"], s.install_time);
        EXPECT_EQ(when["rolled_back"] - when["rebooting"], 2 * s.reboot_time);
      } else {
        EXPECT_EQ(f.state, "failed");
        EXPECT_FALSE(when.contains("rebooting"));
        EXPECT_EQ(when["failed"] - when["installing"], s.install_time);
      }
    }
  }
}

// A device side that only counts, for the report's own figures.
class CountingSide final : public DeviceSide {
 public:
  void handle(const Event&) override {}
  uint64_t checkins() const override { return 120; }
  uint64_t reports() const override { return 30; }
};

TEST(BuildReport, TellsWhatOnlyTheTwinKnowsBeforeAnyRolloutStarts) {
  const Scenario s = world_scenario();
  World w(s, 5, false, 10);
  w.world.device(2).phase = Phase::kRebooting;  // stuck mid-update at the end: bricked
  w.world.device(5).phase = Phase::kRollingBack;
  w.world.device(6).phase = Phase::kHolding;  // not bricked: it still runs its image
  RunState run;
  run.windows.held = 4;
  auto plane = LocalControlPlane::create(w.clock, {}, nullptr);
  ASSERT_TRUE(plane.ok()) << plane.error().to_string();
  std::vector<std::string> lines;
  Narrator n(
      s.start, w.clock, [&](const std::string& l) { lines.push_back(l); }, false);
  CountingSide side;
  const Report r =
      build_report({7, false, w.world, side, run, **plane, n}, s.start + minutes(90), 3.0);
  EXPECT_EQ(r.scenario, "parts");
  EXPECT_EQ(r.seed, 7u);
  EXPECT_EQ(r.devices_total, 10u);
  EXPECT_EQ(r.devices_bricked, 2u);
  EXPECT_EQ(r.checkins, 120u);
  EXPECT_EQ(r.status_reports, 30u);
  EXPECT_DOUBLE_EQ(r.simulated_seconds, 5400.0);
  EXPECT_DOUBLE_EQ(r.checkins_per_wall_second, 40.0);
  EXPECT_EQ(r.windows.held, 4u);
  EXPECT_TRUE(r.rollout_state.empty());  // no rollout: nothing asked of the plane
  EXPECT_TRUE(lines.empty());
}

}  // namespace
}  // namespace drover::sim
