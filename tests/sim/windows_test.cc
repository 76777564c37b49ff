// Maintenance windows hold for every step that interrupts a device (install, reboot, commit),
// not only for the offer: the twin judges each step against the device's own site window
// and quiet hours, independently of the windows the server sent, and counts those outside.
#include <gtest/gtest.h>

#include "sim/simulator.h"

namespace drover::sim {
namespace {

MaintenanceWindow daily(int start_hour, int start_minute, int length_minutes) {
  MaintenanceWindow w;
  w.days = 0x7f;
  w.start_minute = start_hour * 60 + start_minute;
  w.length_minutes = length_minutes;
  return w;
}

// The demo's fleet, every device on a satellite link that is up 20 minutes twice a day
// (02:30 and 14:30 local), the sites' windows 22:00-06:00, and a fifth of the devices with
// quiet hours 22:00-01:00 of their own. No defects: every device should end updated.
Scenario intermittent_fleet() {
  auto loaded = load_scenario(std::string(DROVER_SOURCE_DIR) + "/scenarios/demo.json");
  EXPECT_TRUE(loaded.ok()) << loaded.error().to_string();
  Scenario s = *loaded;
  ConnectivitySpec link;
  link.name = "satellite";
  link.kind = LinkKind::kIntermittent;
  link.poll_interval = minutes(5);
  link.bandwidth_bps = 1'000'000;
  link.online = {daily(2, 30, 20), daily(14, 30, 20)};
  s.connectivity = {link};
  for (auto& g : s.site_groups) g.maintenance_windows = {daily(22, 0, 8 * 60)};
  s.quiet_hours = {QuietHoursSpec{0.2, {daily(22, 0, 3 * 60)}}};
  s.defects.clear();
  s.horizon = hours(24 * 8);  // a stage a night: four stages, soaks, quiet hours
  return s;
}

SimOptions devices(uint32_t n) {
  SimOptions o;
  o.devices = n;
  return o;
}

TEST(Windows, AnIntermittentFleetInstallsRebootsAndCommitsOnlyInsideItsWindows) {
  const Scenario s = intermittent_fleet();
  auto r = run_simulation(s, devices(2000));
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(r->windows.installs_outside, 0u);
  EXPECT_EQ(r->windows.reboots_outside, 0u);
  EXPECT_EQ(r->windows.commits_outside, 0u);
  // The downloads ran at 14:30 or 02:30; most devices then held the image for 22:00 (or
  // 01:00 in quiet hours) — download now, apply later.
  EXPECT_GT(r->windows.held, r->devices_eligible / 2);
  EXPECT_EQ(r->rollout_state, "completed");
  EXPECT_EQ(r->devices_updated, r->devices_eligible);
  EXPECT_EQ(r->devices_bricked, 0u);
}

// The same fleet when the rollout ignores windows: the steps happen whenever the download
// ends, and the twin's count says so. (Without this, the zero above could be a counter that
// never counts.)
TEST(Windows, IgnoringWindowsShowsUpAsStepsOutsideThem) {
  Scenario s = intermittent_fleet();
  s.rollout.constraints.respect_windows = false;
  auto r = run_simulation(s, devices(2000));
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  // Those that downloaded in the 14:30 session installed then; the 02:30 session is inside.
  EXPECT_GT(r->windows.installs_outside, r->devices_eligible / 4);
  EXPECT_GT(r->windows.reboots_outside, r->devices_eligible / 4);
  EXPECT_EQ(r->windows.held, 0u);
}

// Downloads only inside the window: the 02:30 link session is the only one that counts;
// still nothing outside, and the fleet still gets there.
TEST(Windows, DownloadingOnlyInTheWindowStillKeepsEveryStepInside) {
  Scenario s = intermittent_fleet();
  s.rollout.constraints.download_in_window = true;
  auto r = run_simulation(s, devices(2000));
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(r->windows.total_outside(), 0u);
  EXPECT_EQ(r->devices_updated, r->devices_eligible);
}

// The demo (its rev-c build does not boot): nothing outside the windows, and the rev-c
// devices that held the image when rev-c was halted dropped it instead of installing it.
TEST(Windows, TheDemoKeepsEveryStepInsideAndAHaltReachesDevicesHoldingTheImage) {
  auto loaded = load_scenario(std::string(DROVER_SOURCE_DIR) + "/scenarios/demo.json");
  ASSERT_TRUE(loaded.ok()) << loaded.error().to_string();
  auto r = run_simulation(*loaded, devices(15000));
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(r->windows.total_outside(), 0u);
  EXPECT_GT(r->windows.held, 0u);
  EXPECT_GT(r->devices_withdrawn, 0u);
  // A withdrawn device never installed: it is among those never offered, not the failures.
  EXPECT_EQ(r->devices_failed, r->devices_fell_back);
  EXPECT_LE(r->devices_withdrawn, r->outcome.never_offered);
}

}  // namespace
}  // namespace drover::sim
