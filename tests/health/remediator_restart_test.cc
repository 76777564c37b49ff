// What a restart of the server keeps of the remediation rules' judgement: how long each
// condition has held (the store's held conditions), so a server restarted more often than a
// rule's delay still acts on it; a person's close of a rule on health; and nothing of what
// happened while it was down for long.
#include <gtest/gtest.h>

#include <optional>
#include <set>
#include <string>
#include <vector>

#include "health/health_view.h"
#include "health/remediator.h"
#include "remediator_fixture.h"

namespace drover::health {
namespace {

// The server is down for 30 hours in the middle of an episode (the device, unable to reach
// it, is out of reach too). Back up, it does not hand the episode to a person for the day it
// could not step — that was its own downtime — and the ladder goes on once the device is seen
// stuck again.
TEST_F(RemediatorTest, AServerDownForADayDoesNotBlameTheDevice) {
  const std::string stuck = f.ids[0];
  std::set<std::string> ran;
  bool down = false;
  for (int minute = 0; minute < 40 * 60; ++minute) {
    if (minute < 5) send_sample(stuck);
    if (!down && !ran.empty()) {
      down = true;  // right after the restart ran: the server goes down for 30 hours
      remediator.reset();
      f.clock.advance(hours(30));
      restart();
    }
    for (const Command& c : check_in(stuck)) {
      if (!ran.insert(c.id).second) continue;
      ASSERT_TRUE(commands->record_result({stuck, c.id, CommandOutcome::kSucceeded, 0, "ok"}).ok());
    }
    ASSERT_TRUE(remediator->tick().ok());
    f.clock.advance(minutes(1));
    if (ran.size() == 2) break;
  }
  ASSERT_TRUE(down);
  Store::AlertQuery all;
  auto alerts = remediator->list(all);
  ASSERT_TRUE(alerts.ok());
  const Alert* no_data = nullptr;
  for (const Alert& a : *alerts) {
    if (a.rule == "no-data") no_data = &a;
  }
  ASSERT_NE(no_data, nullptr);
  EXPECT_FALSE(no_data->escalated) << no_data->escalation;
  EXPECT_EQ(ran.size(), 2u);  // the restart before, the reboot after
  EXPECT_EQ(no_data->commands.size(), 2u);
}

// The held conditions other than the remediator's own ("@alive", "@watching").
std::vector<HeldCondition> held_of_devices(Store& store) {
  auto all = store.list_held_conditions();
  EXPECT_TRUE(all.ok());
  std::vector<HeldCondition> out;
  for (const HeldCondition& h : all.ok() ? *all : std::vector<HeldCondition>{}) {
    if (!h.device_id.empty()) out.push_back(h);
  }
  return out;
}

// A download stuck for good, on a server restarted every 20 minutes (down a minute each
// time, the registry's memory of check-ins gone with it): the rule's 2 hours are counted
// across the restarts from the held condition, the time from the last tick to the start not
// counted,
// and the device is asked to give the download up. The first tick after each restart comes
// before the device has checked in again and drops nothing. Once the device is idle its held
// condition goes. With resume_gap 0 (every restart counts as a long one) the count starts
// again each time and nothing is ever done.
TEST_F(RemediatorTest, ARestartedServerGoesOnCountingFromItsHeldConditions) {
  for (const bool resume : {true, false}) {
    SCOPED_TRACE(resume ? "resumed" : "counts start again");
    RemediatorOptions options = update_stuck_rule();
    if (!resume) options.resume_gap = Duration{0};
    const std::string stuck = f.ids[resume ? 0 : 1];
    restart(options);
    remediator->set_update_states(f.service.get());
    const Timestamp start = f.clock.now();
    std::optional<Timestamp> queued_at;
    int restarts = 0;
    for (int minute = 0; minute < 4 * 60 && !queued_at; ++minute) {
      if (minute > 0 && minute % 20 == 0) {
        restart_server(minutes(1), options);
        remediator->set_update_states(f.service.get());
        ++restarts;
        const ResumeReport resumed = remediator->resumed();
        ASSERT_TRUE(resumed.gap.has_value());
        EXPECT_GE(*resumed.gap, minutes(1));
        EXPECT_LE(*resumed.gap, minutes(2));
        EXPECT_EQ(resumed.resumed, resume);
        EXPECT_EQ(resumed.conditions, resume ? 1u : 0u);
        ASSERT_TRUE(remediator->tick().ok());  // before the device has checked in again
      }
      auto r =
          f.service->check_in({stuck, f.installed(stuck), UpdateState::kDownloading, "", false});
      ASSERT_TRUE(r.ok()) << r.error().to_string();
      for (const Command& c : r->commands) {
        EXPECT_EQ(c.action, CommandAction::kClearUpdate);
        queued_at = f.clock.now();
      }
      send_sample(stuck);
      ASSERT_TRUE(remediator->tick().ok());
      f.clock.advance(minutes(1));
    }
    if (!resume) {
      EXPECT_FALSE(queued_at.has_value()) << "acted after a restart counted from scratch";
      EXPECT_EQ(restarts, 11);
      auto alerts = remediator->list({});
      ASSERT_TRUE(alerts.ok());
      for (const Alert& a : *alerts) EXPECT_NE(a.device_id, stuck);
      continue;
    }
    ASSERT_TRUE(queued_at.has_value()) << "never acted on a download stuck for 4 hours";
    // Two hours of watching, plus for each of the six restarts the time from the last tick
    // before it (the heartbeat) to the start: the minute down and the minute between ticks.
    EXPECT_GE(*queued_at - start, hours(2) + minutes(12));
    EXPECT_LE(*queued_at - start, hours(2) + minutes(15));
    EXPECT_EQ(restarts, 6);
    std::vector<HeldCondition> held = held_of_devices(f.store());
    ASSERT_EQ(held.size(), 1u);
    EXPECT_EQ(held[0].device_id, stuck);
    EXPECT_EQ(held[0].rule, "update-stuck");
    EXPECT_FALSE(held[0].closed_by_person);
    // The download given up, the device idle: the alert resolves and the count goes.
    for (int minute = 0; minute < 3; ++minute) {
      check_in(stuck);
      ASSERT_TRUE(remediator->tick().ok());
      f.clock.advance(minutes(1));
    }
    auto alerts = remediator->list({});
    ASSERT_TRUE(alerts.ok());
    ASSERT_FALSE(alerts->empty());
    EXPECT_EQ(alerts->front().device_id, stuck);
    EXPECT_EQ(alerts->front().state, AlertState::kResolved);
    EXPECT_TRUE(held_of_devices(f.store()).empty());
  }
}

// A device that checks in but sends nothing, on a server restarted every 20 minutes (down a
// minute): its no-data count goes on across the restarts — each first tick after one, before
// the device checks in again, reads it as offline and waits — and its collector is restarted
// once the rule's 30 minutes have been watched. Counted from scratch at every restart, the
// rule never acts.
TEST_F(RemediatorTest, AStuckDeviceIsActedOnThoughTheServerRestartsMoreOftenThanTheRuleWaits) {
  RemediationRule no_data;
  no_data.name = "no-data";
  no_data.condition = Condition::kNoData;
  no_data.after = minutes(30);
  no_data.verify = minutes(5);
  no_data.ladder = {{CommandAction::kRestartService, "sensord"}};
  for (const bool resume : {true, false}) {
    SCOPED_TRACE(resume ? "resumed" : "counts start again");
    RemediatorOptions options{{no_data}, {}};
    if (!resume) options.resume_gap = Duration{0};
    const std::string stuck = f.ids[resume ? 0 : 1];
    restart(options);
    const Timestamp start = f.clock.now();
    std::optional<Timestamp> queued_at;
    for (int minute = 0; minute < 2 * 60 && !queued_at; ++minute) {
      if (minute > 0 && minute % 20 == 0) {
        restart_server(minutes(1), options);
        EXPECT_EQ(remediator->resumed().resumed, resume);
        ASSERT_TRUE(remediator->tick().ok());  // before the device has checked in again
      }
      if (minute < 5) send_sample(stuck);
      for (const Command& c : check_in(stuck)) {
        EXPECT_EQ(c.action, CommandAction::kRestartService);
        queued_at = f.clock.now();
      }
      ASSERT_TRUE(remediator->tick().ok());
      f.clock.advance(minutes(1));
    }
    if (!resume) {
      EXPECT_FALSE(queued_at.has_value()) << "acted after a restart counted from scratch";
      continue;
    }
    ASSERT_TRUE(queued_at.has_value()) << "never acted on a device stuck for 2 hours";
    // Its newest sample at minute 4, stale 3.5 minutes later (the contract), then 30 minutes
    // watched, plus 2 for the restart on the way (the count written at 7.5 minutes held — a
    // quarter of the rule's 30 —, before it), and the ticks and check-in that carry the
    // command.
    const Duration expected = minutes(4) + seconds(210) + minutes(30) + minutes(2);
    EXPECT_GE(*queued_at - start, expected);
    EXPECT_LE(*queued_at - start, expected + minutes(3));
  }
}

// A count kept from before a restart goes on only from the look that sees its condition: the
// time the server waited for the stuck device's first check-in after a restart is not counted
// — nor, across a second restart in the middle of that wait, the part of it before.
TEST_F(RemediatorTest, TheWaitForAKeptCountsFirstLookIsNotCounted) {
  const RemediatorOptions options = update_stuck_rule();
  restart(options);
  remediator->set_update_states(f.service.get());
  const std::string stuck = f.ids[0];
  const Timestamp start = f.clock.now();
  std::optional<Timestamp> queued_at;
  auto minutes_of = [&](int n, bool checks_in) {
    for (int minute = 0; minute < n && !queued_at; ++minute) {
      if (checks_in) {
        auto r =
            f.service->check_in({stuck, f.installed(stuck), UpdateState::kDownloading, "", false});
        ASSERT_TRUE(r.ok()) << r.error().to_string();
        if (!r->commands.empty()) queued_at = f.clock.now();
      }
      send_sample(stuck);
      ASSERT_TRUE(remediator->tick().ok());
      f.clock.advance(minutes(1));
    }
  };
  minutes_of(40, true);
  restart_server(minutes(1), options);
  remediator->set_update_states(f.service.get());
  minutes_of(15, false);  // no check-in yet: the count waits
  restart_server(minutes(1), options);
  remediator->set_update_states(f.service.get());
  EXPECT_EQ(remediator->resumed().conditions, 1u);
  minutes_of(15, false);
  minutes_of(3 * 60, true);
  ASSERT_TRUE(queued_at.has_value());
  // Two hours watched, the 40 minutes before the first restart among them; not counted: the
  // two restarts (2 minutes each from the last tick) and the two 15-minute waits.
  EXPECT_GE(*queued_at - start, hours(2) + minutes(4 + 30));
  EXPECT_LE(*queued_at - start, hours(2) + minutes(4 + 30 + 3));
}

// A count kept from before a restart waits for the first look that can see the condition: a
// device that sends its data but does not check in within report_fresh of the start loses
// its count; one that checks in idle loses it at once.
TEST_F(RemediatorTest, AHeldCountNoLookConfirmsIsDropped) {
  RemediatorOptions options = update_stuck_rule();
  options.report_fresh = hours(1);
  restart(options);
  remediator->set_update_states(f.service.get());
  const std::string late = f.ids[0], idle = f.ids[1];
  for (int minute = 0; minute < 30; ++minute) {
    for (const std::string& id : {late, idle}) {
      ASSERT_TRUE(
          f.service->check_in({id, f.installed(id), UpdateState::kDownloading, "", false}).ok());
      send_sample(id);
    }
    ASSERT_TRUE(remediator->tick().ok());
    f.clock.advance(minutes(1));
  }
  EXPECT_EQ(held_of_devices(f.store()).size(), 2u);
  restart_server(minutes(1), options);
  remediator->set_update_states(f.service.get());
  EXPECT_EQ(remediator->resumed().conditions, 2u);
  check_in(idle);  // finished meanwhile
  for (int minute = 0; minute < 59; ++minute) {
    send_sample(late);
    ASSERT_TRUE(remediator->tick().ok());
    f.clock.advance(minutes(1));
  }
  std::vector<HeldCondition> held = held_of_devices(f.store());
  ASSERT_EQ(held.size(), 1u);
  EXPECT_EQ(held[0].device_id, late);  // waiting for its check-in
  f.clock.advance(minutes(2));
  ASSERT_TRUE(remediator->tick().ok());
  EXPECT_TRUE(held_of_devices(f.store()).empty());
}

// A person closes a disk-full episode while the disk is still full, and the server restarts:
// no new episode opens while the disk was never seen clear — the close was written with the
// alert, and is kept whether the server was down a minute or an hour (past resume_gap: a
// close is a fact, not a count), and while the device is out of reach for hours after the
// restart. Seen clear, the record goes; full again, a new episode.
TEST_F(RemediatorTest, APersonsCloseOfARuleOnHealthOutlivesARestart) {
  RemediationRule disk;
  disk.name = "disk-full";
  disk.condition = Condition::kDisk;
  disk.after = minutes(15);
  disk.verify = minutes(10);  // no ladder: a person's at once
  RemediatorOptions options{{disk}, {}};
  std::unique_ptr<HealthView> view;
  // The server's health source for the rules, made again at each restart.
  auto wire = [&] {
    view = std::make_unique<HealthView>(*telemetry, remediator.get(), f.clock);
    remediator->set_health_source(view.get());
  };
  for (const bool long_down : {false, true}) {
    SCOPED_TRACE(long_down ? "down an hour" : "down a minute");
    const std::string full = f.ids[long_down ? 1 : 0];
    double free_share = 0.01;
    auto pass = [&](int n) {
      for (int minute = 0; minute < n; ++minute) {
        send_disk(full, free_share);
        check_in(full);
        ASSERT_TRUE(remediator->tick().ok());
        f.clock.advance(minutes(1));
      }
    };
    auto episodes = [&] {
      Store::AlertQuery of_device;
      of_device.device_id = full;
      auto listed = remediator->list(of_device);
      EXPECT_TRUE(listed.ok());
      return listed.ok() ? *listed : std::vector<Alert>{};
    };
    view.reset();
    restart(options);
    wire();
    pass(25);
    ASSERT_EQ(episodes().size(), 1u);
    const Alert first = episodes().front();
    ASSERT_TRUE(remediator->resolve(first.id, "token:t (ops)", "cleaning it by hand").ok());
    std::vector<HeldCondition> held = held_of_devices(f.store());
    ASSERT_EQ(held.size(), 1u);
    EXPECT_TRUE(held[0].closed_by_person);
    pass(5);
    view.reset();
    restart_server(long_down ? hours(1) : minutes(1), options);
    wire();
    EXPECT_EQ(remediator->resumed().resumed, !long_down);
    EXPECT_EQ(remediator->resumed().closes, 1u);
    pass(60);
    EXPECT_EQ(episodes().size(), 1u) << "a new episode while the disk was never seen clear";
    // Out of reach for three hours (nothing known of the disk), then back, still full.
    f.clock.advance(hours(3));
    pass(60);
    EXPECT_EQ(episodes().size(), 1u) << "a new episode while the disk was never seen clear";
    free_share = 0.6;
    pass(10);
    EXPECT_TRUE(held_of_devices(f.store()).empty());
    free_share = 0.01;
    pass(25);
    EXPECT_EQ(episodes().size(), 2u) << "seen clear, then full again: a new episode";
  }
}

}  // namespace
}  // namespace drover::health
