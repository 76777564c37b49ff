// The farm's story on the field twin (issue 14 §4, docs/health.md "The farm's 90 days"): the
// server's remediation rules, command queue and check-ins against device models with the
// farm's failure modes. The full size (10,000 sensors, 90 days) runs in bench/field.sh.
#include "sim/field_twin.h"

#include <gtest/gtest.h>

#include <cstdio>

namespace drover::sim {
namespace {

size_t index(FieldFault f) { return static_cast<size_t>(f); }

uint32_t sum(const std::array<uint32_t, kFieldFaultCount>& a) {
  uint32_t n = 0;
  for (uint32_t x : a) n += x;
  return n;
}

FieldTwinOptions small(uint64_t seed, bool remediation) {
  FieldTwinOptions o;
  o.seed = seed;
  o.devices = 500;
  o.days = 90;
  o.remediation = remediation;
  return o;
}

// Over 20 seeds of 500 sensors for 90 days (30,000 device-months in all, as many as one
// full-size run): about a tenth of the fleet lost a month without remediation, under 1% with
// Drover's rules and the agents' link watchdogs, and what is still lost with them is
// hardware, a disk a reboot does not free, or a device whose day's budget of automatic
// actions ran out.
TEST(FieldTwin, TheRulesBringTheFarmsMonthlyLossFromATenthToUnderOnePercent) {
  double months = 0;
  uint32_t lost_with = 0, lost_without = 0, hardware_with = 0;
  uint32_t disks = 0, disks_mended = 0, remediable_without = 0, remediable_lost_without = 0;
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    auto with = run_field_twin(small(seed, true));
    ASSERT_TRUE(with.ok()) << with.error().to_string();
    auto without = run_field_twin(small(seed, false));
    ASSERT_TRUE(without.ok()) << without.error().to_string();
    months += with->device_months;
    lost_with += with->lost_total;
    lost_without += without->lost_total;
    hardware_with +=
        with->lost[index(FieldFault::kLinkGone)] + with->lost[index(FieldFault::kDead)];
    // Hung collectors and wedged applications are mended remotely; one is lost only when
    // two faults in a day spend the device's budget of three automatic actions (about one in
    // 15,000 device-months).
    EXPECT_LE(
        with->lost[index(FieldFault::kCollectorHung)] + with->lost[index(FieldFault::kAppWedged)],
        2u)
        << "seed " << seed;
    // Every hung collector and wedged application is mended remotely, but for those lost to
    // the budget and the few still being worked on at the end.
    // Hung modems are the watchdogs' to mend: none lost, the last few under way at the end.
    EXPECT_EQ(with->lost[index(FieldFault::kModemHung)], 0u) << "seed " << seed;
    for (FieldFault f :
         {FieldFault::kCollectorHung, FieldFault::kAppWedged, FieldFault::kModemHung}) {
      EXPECT_GE(with->mended_remotely[index(f)] + with->lost[index(f)] + 3, with->faults[index(f)])
          << "seed " << seed << ": " << to_string(f);
    }
    disks += with->faults[index(FieldFault::kDiskFull)];
    disks_mended += with->mended_remotely[index(FieldFault::kDiskFull)];
    for (FieldFault f : {FieldFault::kCollectorHung, FieldFault::kAppWedged, FieldFault::kDiskFull,
                         FieldFault::kModemHung}) {
      remediable_without += without->faults[index(f)];
      remediable_lost_without += without->lost[index(f)];
    }
    // Nothing is done to a device with nothing wrong, and what is mended is mended within
    // hours (outages included), long before anyone would drive out.
    EXPECT_EQ(with->healthy_commanded, 0u) << "seed " << seed;
    EXPECT_LE(with->stuck_at_end + with->escalated_update_stuck, 3u) << "seed " << seed;
    EXPECT_LT(with->mend_worst_min, 48 * 60) << "seed " << seed;
    EXPECT_LT(with->mend_median_min, 4 * 60) << "seed " << seed;
    EXPECT_LT(with->lost_total * 5, without->lost_total) << "seed " << seed;
  }
  const double with_rate = lost_with / months, without_rate = lost_without / months;
  std::printf("lost a month: %.2f%% with the rules (hardware %.2f%%), %.2f%% without\n",
              100 * with_rate, 100 * hardware_with / months, 100 * without_rate);
  EXPECT_LT(with_rate, 0.01);
  EXPECT_GT(without_rate, 0.08);
  EXPECT_LT(without_rate, 0.12);
  // A reboot frees nine full disks in ten; without remediation nearly every fault is a loss
  // (but those of the last three days, not yet 72 hours old at the end).
  EXPECT_GT(disks_mended, disks * 80 / 100) << disks_mended << " of " << disks;
  EXPECT_LT(disks_mended, disks * 97 / 100) << disks_mended << " of " << disks;
  EXPECT_GT(remediable_lost_without, remediable_without * 93 / 100)
      << remediable_lost_without << " of " << remediable_without;
}

TEST(FieldTwin, ARestartThatCuresEveryHangIsAllItTakes) {
  FieldTwinOptions o = small(7, true);
  o.faults_per_month = {0.1, 0, 0, 0, 0, 0};
  o.restart_cures = 1;
  o.outages_per_month = 0;
  auto r = run_field_twin(o);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  ASSERT_GT(r->faults[index(FieldFault::kCollectorHung)], 50u);
  // Every hang found and cured by the first step, none by a reboot, none lost; the faults
  // still open at the end are the only ones not mended yet.
  EXPECT_EQ(r->reboots, 0u);
  EXPECT_EQ(r->lost_total, 0u);
  EXPECT_GE(r->mended_remotely[index(FieldFault::kCollectorHung)] + 3,
            r->faults[index(FieldFault::kCollectorHung)]);
  // One restart for each hang acted on: as many as were cured, and the last few under way.
  EXPECT_GE(r->restarts, r->mended_remotely[index(FieldFault::kCollectorHung)]);
  EXPECT_LE(r->restarts, r->faults[index(FieldFault::kCollectorHung)]);
  EXPECT_EQ(r->escalated_no_data, 0u);
  // Without outages the data is back within an hour and a half: 50 min to go stale, 30 to
  // act, up to 30 for the check-in, ticks of 5.
  EXPECT_LE(r->mend_worst_min, 125);
}

// A hung modem is out of the server's reach: the agent's own link watchdog (the real
// agent::LinkWatchdog on each device) resets it after two hours without an answer, and
// reboots after a day the few a reset does not cure. Without the watchdog, the server's rules
// can only hand them to a person, and nearly all are lost.
TEST(FieldTwin, TheAgentsLinkWatchdogMendsHungModemsTheServerCannotReach) {
  FieldTwinOptions o = small(5, true);
  o.faults_per_month = {0, 0, 0, 0.1, 0, 0};
  o.modem_reset_cures = 0.75;
  o.outages_per_month = 0;
  auto with = run_field_twin(o);
  ASSERT_TRUE(with.ok()) << with.error().to_string();
  o.link_watchdog = false;
  auto without = run_field_twin(o);
  ASSERT_TRUE(without.ok()) << without.error().to_string();
  const size_t modem = index(FieldFault::kModemHung);
  ASSERT_GT(with->faults[modem], 100u);
  EXPECT_EQ(with->lost_total, 0u);
  EXPECT_GE(with->mended_remotely[modem] + 2, with->faults[modem]);
  // No outages: every reset and reboot was for a hung modem. A reset every two hours until
  // it is cured; a reboot for about a quarter of them, at a day (the stubborn ones); every
  // mend the watchdogs'.
  EXPECT_EQ(with->watchdog_mended, with->mended_remotely[modem]);
  EXPECT_GE(with->watchdog_resets, with->mended_remotely[modem]);
  EXPECT_GT(with->watchdog_reboots, with->faults[modem] / 8);
  EXPECT_LT(with->watchdog_reboots, with->faults[modem] * 2 / 5);
  // 2 hours, or a day, of silence counted from the first unanswered check-in (30 min apart).
  EXPECT_GE(with->mend_median_min, 120);
  EXPECT_LE(with->mend_median_min, 150);
  EXPECT_LE(with->mend_worst_min, 24 * 60 + 30);
  // The server sends them nothing (out of reach): its offline rule pages a person after a
  // day, for those the reset did not cure.
  EXPECT_EQ(with->restarts + with->reboots, 0u);
  EXPECT_LE(with->escalated_offline, with->watchdog_reboots);
  // Without it: the same rules, and nearly every hung modem lost (but for the last three
  // days'); nothing reset.
  EXPECT_EQ(without->watchdog_resets + without->watchdog_reboots, 0u);
  EXPECT_EQ(sum(without->mended_remotely), 0u);
  EXPECT_GT(without->lost[modem], without->faults[modem] * 93 / 100);
}

// Outages alone, nothing wrong with any device: a watchdog resets a modem for each outage
// over two hours, every two hours of it, and reboots for one over a day — all of it during
// outages that end by themselves, mending nothing, and losing nothing.
TEST(FieldTwin, OutagesAloneMakeTheWatchdogsActButHarmNothing) {
  FieldTwinOptions o = small(9, true);
  o.faults_per_month = {0, 0, 0, 0, 0, 0};
  o.outage_median = hours(3);  // long ones, so some last a day
  auto r = run_field_twin(o);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  ASSERT_GT(r->outages, 3000u);
  EXPECT_EQ(r->lost_total, 0u);
  EXPECT_EQ(r->watchdog_mended, 0u);
  EXPECT_GT(r->watchdog_resets, r->outages / 4);
  EXPECT_EQ(r->watchdog_resets_on_outages, r->watchdog_resets);
  EXPECT_GT(r->watchdog_reboots, 0u);
  EXPECT_EQ(r->watchdog_reboots_on_outages, r->watchdog_reboots);
  EXPECT_EQ(r->healthy_commanded, 0u);
}

// A link gone for good (hardware) until the visit a week after it went quiet: the watchdog
// resets every two hours and reboots at a day and two days after that (the next would come
// four days later, after the visit) — two reboots a device, none mending anything.
TEST(FieldTwin, AWatchdogRebootsALinkGoneForGoodEverFurtherApart) {
  FieldTwinOptions o = small(11, true);
  o.faults_per_month = {0, 0, 0, 0, 0.05, 0};
  o.outages_per_month = 0;
  auto r = run_field_twin(o);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  const uint32_t gone = r->faults[index(FieldFault::kLinkGone)];
  ASSERT_GT(gone, 40u);
  EXPECT_EQ(r->watchdog_mended, 0u);
  // Those of the last week see fewer before the run ends.
  EXPECT_LE(r->watchdog_reboots, 2 * gone);
  EXPECT_GE(r->watchdog_reboots + 2 * 10, 2 * gone);
  // Resets every 2 hours but for the two after each reboot's (none right after one): about
  // 12 a day for the week.
  EXPECT_LE(r->watchdog_resets, gone * 7 * 12);
  EXPECT_GE(r->watchdog_resets, gone * 6 * 12 * 3 / 4);
}

// A download that gets nowhere: the device reports downloading at its check-ins (through
// the real device service), the update-stuck rule (DeviceService::in_update_state) gives it
// up with clear_update after a day, and the rule's alert resolves once the device says it
// is idle. Without remediation it stays stuck to the end of the run.
TEST(FieldTwin, StuckDownloadsAreGivenUpAfterADay) {
  FieldTwinOptions o = small(13, true);
  o.faults_per_month = {0, 0, 0, 0, 0, 0};
  o.outages_per_month = 0;
  o.updates_stuck_per_month = 0.2;
  auto with = run_field_twin(o);
  ASSERT_TRUE(with.ok()) << with.error().to_string();
  o.remediation = false;
  auto without = run_field_twin(o);
  ASSERT_TRUE(without.ok()) << without.error().to_string();
  ASSERT_GT(with->updates_stuck, 200u);
  // Every one given up by the rule's one step, but those of the last day; none to a person.
  EXPECT_EQ(with->updates_given_up + with->stuck_at_end, with->updates_stuck);
  EXPECT_EQ(with->stuck_unstuck_by_visit, 0u);
  EXPECT_LE(with->stuck_at_end_oldest_h, 25.25);
  EXPECT_EQ(with->escalated_update_stuck, 0u);
  EXPECT_EQ(with->healthy_commanded, 0u);
  // A day (the rule's after, from the first check-in that said so: up to 30 minutes), then
  // up to a check-in interval for the command and a tick or two: never sooner, never much
  // later.
  EXPECT_GE(with->stuck_days, 1.0 * with->updates_given_up);
  EXPECT_GE(with->stuck_worst_h, 24.0);
  EXPECT_LE(with->stuck_worst_h, 25.25);
  // Without remediation each stays stuck to the end: 500 devices, 90 days.
  EXPECT_EQ(without->updates_given_up, 0u);
  EXPECT_EQ(without->stuck_at_end, without->updates_stuck);
  EXPECT_GT(without->stuck_days, 20 * with->stuck_days);
}

TEST(FieldTwin, RulesCannotMendHardwareAndSendNothingToIt) {
  FieldTwinOptions o = small(3, true);
  o.faults_per_month = {0, 0, 0, 0, 0.05, 0.05};
  auto with = run_field_twin(o);
  ASSERT_TRUE(with.ok()) << with.error().to_string();
  o.remediation = false;
  auto without = run_field_twin(o);
  ASSERT_TRUE(without.ok()) << without.error().to_string();
  ASSERT_GT(with->lost_total, 20u);
  // Offline devices are handed to a person after a day of it: no command is queued for them.
  EXPECT_EQ(with->restarts + with->reboots, 0u);
  const uint32_t hardware =
      with->faults[index(FieldFault::kLinkGone)] + with->faults[index(FieldFault::kDead)];
  EXPECT_GE(with->escalated_offline + 3, hardware);
  EXPECT_EQ(with->escalated_no_data, 0u);
  EXPECT_EQ(sum(with->mended_remotely), 0u);
  // The same draws (each device's own streams), and the rules change nothing about what is
  // lost.
  EXPECT_EQ(with->faults, without->faults);
  EXPECT_EQ(with->lost_total, without->lost_total);
}

TEST(FieldTwin, BadOptionsAreRefused) {
  FieldTwinOptions o = small(1, true);
  o.devices = 0;
  EXPECT_EQ(run_field_twin(o).error().code, ErrorCode::kInvalidArgument);
  o = small(1, true);
  o.faults_per_month[0] = -0.1;
  EXPECT_EQ(run_field_twin(o).error().code, ErrorCode::kInvalidArgument);
  o = small(1, true);
  o.restart_cures = 1.5;
  EXPECT_EQ(run_field_twin(o).error().code, ErrorCode::kInvalidArgument);
  o = small(1, true);
  o.modem_reset_cures = -0.5;
  EXPECT_EQ(run_field_twin(o).error().code, ErrorCode::kInvalidArgument);
  o = small(1, true);
  o.tick = Duration(0);
  EXPECT_EQ(run_field_twin(o).error().code, ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace drover::sim
