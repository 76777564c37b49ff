// Maintenance windows hold for every step that interrupts a device (install, reboot, commit),
// not only for the offer: the twin judges each step against the device's own site window
// and quiet hours, independently of the windows the server sent, and counts those outside.
#include <gtest/gtest.h>

#include "sim/simulator.h"
#include "windows_scenario.h"

namespace drover::sim {
namespace {

using testing::intermittent_fleet;

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

// Devices whose quiet hours leave three minutes of each night's window, when the install and
// the reboot take three and a half: they download, find that no window of the coming week
// fits, drop the image and tell the server, which stops waiting for them. Nothing happens
// outside a window, and the rollout ends, saying why they were never updated.
TEST(Windows, DevicesWithNoWindowLongEnoughWithdrawInsteadOfHoldingForever) {
  auto loaded = load_scenario(std::string(DROVER_SOURCE_DIR) + "/scenarios/demo.json");
  ASSERT_TRUE(loaded.ok()) << loaded.error().to_string();
  Scenario s = *loaded;
  s.defects.clear();
  s.quiet_hours = {QuietHoursSpec{0.05, {testing::daily(22, 3, 8 * 60 - 3)}}};
  auto r = run_simulation(s, devices(3000));
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(r->windows.total_outside(), 0u);
  EXPECT_EQ(r->rollout_state, "completed_partial");
  EXPECT_EQ(r->outcome.pending + r->outcome.in_flight, 0u);
  uint32_t no_fit = 0;
  for (const auto& w : r->outcome.never_offered_why) {
    if (w.reason == "withdrawn by the device: no maintenance window fits the install")
      no_fit = w.devices;
  }
  EXPECT_GT(no_fit, 100u);  // about 5% of 3,000
  EXPECT_EQ(no_fit, r->outcome.never_offered);
  EXPECT_EQ(r->outcome.failed(), 0u);  // not the build's fault
  EXPECT_EQ(r->devices_updated + no_fit, r->devices_eligible);
}

}  // namespace
}  // namespace drover::sim
