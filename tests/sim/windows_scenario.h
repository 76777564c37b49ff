// The intermittent fleet of the window tests (tests/sim/windows_test.cc, network_test.cc).
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "sim/scenario.h"

namespace drover::sim::testing {

inline MaintenanceWindow daily(int start_hour, int start_minute, int length_minutes) {
  MaintenanceWindow w;
  w.days = 0x7f;
  w.start_minute = start_hour * 60 + start_minute;
  w.length_minutes = length_minutes;
  return w;
}

// The demo's fleet, every device on a satellite link that is up 20 minutes twice a day
// (02:30 and 14:30 local), the sites' windows 22:00-06:00, and a fifth of the devices with
// quiet hours 22:00-01:00 of their own. No defects: every device should end updated.
inline Scenario intermittent_fleet() {
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

}  // namespace drover::sim::testing
