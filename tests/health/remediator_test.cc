// The Remediator on a fleet wired as in drover serve (registry, telemetry, command queue,
// store), on a manual clock: a device that checks in but sends nothing is asked to restart
// its service, then rebooted, and its alert resolves when the data comes back; one that went
// silent is handed to a person; healthy devices are left alone; a restart of the server in
// the middle of an episode queues nothing twice; people acknowledge and close alerts.
// (remediator_restart_test.cc: what a restart of the server keeps.)
#include "health/remediator.h"

#include <gtest/gtest.h>

#include <optional>
#include <random>
#include <set>

#include "health/health_view.h"
#include "remediator_fixture.h"

namespace drover::health {
namespace {

// A device whose update download never finishes (it checks in, downloading, between tries)
// is asked to give it up once it has been downloading for the rule's `after`; the episode
// resolves when it reports idle again. A device downloading for less than that, one gone
// silent, and one that still sends telemetry but whose last check-in (downloading) is older
// than report_fresh (nothing known of its download) are left alone.
TEST_F(RemediatorTest, AnUpdateStuckDownloadingIsGivenUpAndResolvesOnceTheDeviceIsIdle) {
  RemediatorOptions options = update_stuck_rule();
  options.report_fresh = hours(1);
  auto made = Remediator::create(f.store(), f.clock, *telemetry, *commands, options);
  ASSERT_TRUE(made.ok()) << made.error().to_string();
  std::unique_ptr<Remediator> rules = std::move(*made);
  rules->set_update_states(f.service.get());
  f.add_devices(1, "rev-a");
  const std::string stuck = f.ids[0], slow = f.ids[1], gone = f.ids[2], quiet = f.ids[3];
  auto report = [&](const std::string& id, UpdateState state) {
    auto r = f.service->check_in({id, f.installed(id), state, "", false});
    EXPECT_TRUE(r.ok()) << r.error().to_string();
    return r.ok() ? r->commands : std::vector<Command>{};
  };
  bool cleared = false;
  Timestamp cleared_at{}, queued_at{};
  for (int minute = 0; minute < 4 * 60; ++minute) {
    for (const Command& c :
         report(stuck, cleared ? UpdateState::kIdle : UpdateState::kDownloading)) {
      EXPECT_EQ(c.action, CommandAction::kClearUpdate);
      EXPECT_EQ(c.argument, "download");
      if (cleared) continue;
      ASSERT_TRUE(
          commands->record_result({stuck, c.id, CommandOutcome::kSucceeded, 0, "gave up"}).ok());
      cleared = true;
      cleared_at = f.clock.now();
    }
    // Downloading for 90 minutes, then done; the other goes silent after 10 minutes.
    report(slow, minute < 90 ? UpdateState::kDownloading : UpdateState::kIdle);
    send_sample(stuck), send_sample(slow);
    if (minute < 10) report(gone, UpdateState::kDownloading), send_sample(gone);
    if (minute < 10) report(quiet, UpdateState::kDownloading);
    send_sample(quiet);
    ASSERT_NO_FATAL_FAILURE(tick_a_minute(*rules, queued_at));
  }
  auto alerts = rules->list({});
  ASSERT_TRUE(alerts.ok());
  ASSERT_EQ(alerts->size(), 1u) << "only the device downloading for the rule's 2 hours";
  const Alert& a = alerts->front();
  EXPECT_EQ(a.device_id, stuck);
  EXPECT_EQ(a.condition, "update_stuck");
  EXPECT_NE(a.summary.find("reports downloading"), std::string::npos) << a.summary;
  ASSERT_EQ(a.commands.size(), 1u);
  EXPECT_EQ(a.state, AlertState::kResolved);
  EXPECT_EQ(a.resolution, "cleared after clear_update download (step 1 of 1)");
  // Asked once it had been seen downloading for 2 hours (the first tick saw it at minute 0).
  EXPECT_GE(queued_at, drover::testing::at("2026-06-01T14:00:00Z"));
  EXPECT_LE(queued_at, drover::testing::at("2026-06-01T14:02:00Z"));
  // Resolved at the first tick after the device reported idle again.
  EXPECT_GE(a.resolved_at, cleared_at);
  EXPECT_LE(a.resolved_at, cleared_at + minutes(2));
}

// A stuck device that drops off the network is not known to have cleared: its episode waits,
// unresolved and without a further step, and goes on where it was when the device is back.
TEST_F(RemediatorTest, AStuckDeviceThatGoesOfflineKeepsItsEpisode) {
  const std::string stuck = f.ids[0];
  std::set<std::string> ran;
  bool rebooted = false;
  // From the minute after the restart ran, for 45 minutes: offline (stale after 3.5), but not
  // for the offline rule's hour.
  int offline_from = -1;
  Timestamp back_at{};
  for (int minute = 0; minute < 6 * 60; ++minute) {
    if (minute < 5 || rebooted) send_sample(stuck);
    const bool offline = offline_from >= 0 && minute >= offline_from && minute < offline_from + 45;
    if (!offline) {
      for (const Command& c : check_in(stuck)) {
        if (!ran.insert(c.id).second) continue;
        ASSERT_TRUE(
            commands->record_result({stuck, c.id, CommandOutcome::kSucceeded, 0, "ok"}).ok());
        if (c.action == CommandAction::kReboot) rebooted = true;
        if (offline_from < 0) offline_from = minute + 1;
      }
    }
    if (offline_from >= 0 && minute == offline_from + 45) back_at = f.clock.now();
    ASSERT_TRUE(remediator->tick().ok());
    if (offline_from >= 0 && minute == offline_from + 30) {
      // Offline for half an hour: the no-data episode is still open, one step taken.
      Store::AlertQuery open_only;
      open_only.unresolved_only = true;
      auto open = remediator->list(open_only);
      ASSERT_TRUE(open.ok());
      bool no_data_open = false;
      for (const Alert& a : *open) {
        if (a.rule != "no-data") continue;
        no_data_open = true;
        EXPECT_EQ(a.commands.size(), 1u);
      }
      EXPECT_TRUE(no_data_open);
    }
    f.clock.advance(minutes(1));
  }
  Store::AlertQuery all;
  auto alerts = remediator->list(all);
  ASSERT_TRUE(alerts.ok());
  std::vector<Alert> no_data;
  for (const Alert& a : *alerts) {
    if (a.rule == "no-data") no_data.push_back(a);
  }
  // One episode through the outage, not one "cleared" by it and another after; no alert for
  // the outage itself.
  EXPECT_EQ(alerts->size(), 1u);
  ASSERT_EQ(no_data.size(), 1u);
  EXPECT_EQ(no_data[0].state, AlertState::kResolved);
  EXPECT_EQ(no_data[0].resolution, "cleared after reboot (step 2 of 2)");
  EXPECT_EQ(no_data[0].commands.size(), 2u);
  EXPECT_TRUE(rebooted);
  // The reboot waited, after the device was back, for the condition to hold the rule's 10
  // minutes again (its backlog could have been on the way).
  auto reboot = commands->get(no_data[0].commands[1]);
  ASSERT_TRUE(reboot.ok() && *reboot);
  ASSERT_NE(back_at, Timestamp{});
  EXPECT_GE((*reboot)->created_at, back_at + minutes(10));
  EXPECT_LE((*reboot)->created_at, back_at + minutes(20));
}

// A stuck device that is never heard from again: its no-data episode is not resolved; once
// the offline rule has handed the device to a person, the episode is theirs too (not left
// open and waiting for good, and not a second page of its own).
TEST_F(RemediatorTest, AStuckDeviceThatNeverComesBackGoesToAPersonAfterADay) {
  const std::string stuck = f.ids[0];
  bool restarted = false;
  for (int minute = 0; minute < 30 * 60; ++minute) {
    if (minute < 5) send_sample(stuck);
    if (!restarted) {
      for (const Command& c : check_in(stuck)) {
        ASSERT_TRUE(
            commands->record_result({stuck, c.id, CommandOutcome::kSucceeded, 0, "ok"}).ok());
        restarted = true;
      }
    }
    ASSERT_TRUE(remediator->tick().ok());
    f.clock.advance(minutes(1));
  }
  ASSERT_TRUE(restarted);
  Store::AlertQuery all;
  auto alerts = remediator->list(all);
  ASSERT_TRUE(alerts.ok());
  const Alert* no_data = nullptr;
  const Alert* offline = nullptr;
  for (const Alert& a : *alerts) {
    if (a.rule == "no-data") no_data = &a;
    if (a.rule == "offline") offline = &a;
  }
  ASSERT_NE(no_data, nullptr);
  EXPECT_EQ(no_data->state, AlertState::kOpen);
  EXPECT_TRUE(no_data->escalated);
  EXPECT_EQ(no_data->commands.size(), 1u);
  ASSERT_NE(offline, nullptr);
  EXPECT_TRUE(offline->escalated);
  EXPECT_EQ(no_data->escalation,
            "out of reach: with a person through " + offline->id + " (offline)");
}

TEST_F(RemediatorTest, AStuckDeviceIsRestartedThenRebootedAndResolvedAnOfflineOneGoesToAPerson) {
  const std::string stuck = f.ids[0], silent = f.ids[1], healthy = f.ids[2];
  std::set<std::string> ran;  // command ids the "agent" ran
  bool rebooted = false;
  for (int minute = 0; minute < 4 * 60; ++minute) {
    send_sample(healthy);
    check_in(healthy);
    if (minute < 10) {
      send_sample(stuck);
      send_sample(silent);
      check_in(silent);
    }
    // The stuck device keeps checking in; its data comes back only after a reboot. Its agent
    // runs each command once and reports a minute later.
    if (rebooted) send_sample(stuck);
    for (const Command& c : check_in(stuck)) {
      if (!ran.insert(c.id).second) continue;  // sent again: already run
      f.clock.advance(seconds(30));
      ASSERT_TRUE(commands->record_result({stuck, c.id, CommandOutcome::kSucceeded, 0, "ok"}).ok());
      if (c.action == CommandAction::kReboot) rebooted = true;
    }
    if (minute == 27) restart();  // the server restarts in the middle of the episode
    auto report = remediator->tick();
    ASSERT_TRUE(report.ok()) << report.error().to_string();
    f.clock.advance(minutes(1));
  }

  Store::AlertQuery all;
  auto alerts = remediator->list(all);
  ASSERT_TRUE(alerts.ok());
  ASSERT_EQ(alerts->size(), 2u);
  std::map<std::string, Alert> by_device;
  for (const Alert& a : *alerts) by_device[a.device_id] = a;
  EXPECT_EQ(by_device.count(healthy), 0u);

  const Alert& fixed = by_device[stuck];
  EXPECT_EQ(fixed.rule, "no-data");
  EXPECT_EQ(fixed.state, AlertState::kResolved);
  EXPECT_EQ(fixed.resolved_by, "drover");
  EXPECT_EQ(fixed.resolution, "cleared after reboot (step 2 of 2)");
  EXPECT_FALSE(fixed.escalated);
  ASSERT_EQ(fixed.commands.size(), 2u);
  // Each step once, in order, each run once by the device — through the restart.
  EXPECT_EQ(ran, (std::set<std::string>{fixed.commands[0], fixed.commands[1]}));
  auto history = commands->history(stuck, 10);
  ASSERT_TRUE(history.ok());
  ASSERT_EQ(history->size(), 2u);
  EXPECT_EQ((*history)[1].action, CommandAction::kRestartService);
  EXPECT_EQ((*history)[1].argument, "sensord");
  EXPECT_EQ((*history)[0].action, CommandAction::kReboot);
  EXPECT_EQ((*history)[0].requested_by, "rule:no-data");
  // The reboot came only after the restart had ended and had its five minutes to work.
  EXPECT_GE((*history)[0].created_at - (*history)[1].finished_at, minutes(5));
  EXPECT_NE(fixed.summary.find("checks in"), std::string::npos) << fixed.summary;

  const Alert& gone = by_device[silent];
  EXPECT_EQ(gone.rule, "offline");
  EXPECT_TRUE(gone.escalated);
  EXPECT_EQ(gone.escalation, "this rule calls a person at once");
  EXPECT_EQ(gone.state, AlertState::kOpen);
  EXPECT_TRUE(gone.commands.empty());
  // Nothing can reach it; the person acknowledges, then closes it.
  auto ack = remediator->acknowledge(gone.id, "token:abc (ops)");
  ASSERT_TRUE(ack.ok());
  EXPECT_EQ(ack->state, AlertState::kAcknowledged);
  auto closed = remediator->resolve(gone.id, "token:abc (ops)", "replaced the modem");
  ASSERT_TRUE(closed.ok());
  EXPECT_EQ(closed->resolution, "replaced the modem");
  EXPECT_EQ(remediator->resolve(gone.id, "x", "").error().code, ErrorCode::kFailedPrecondition);
  EXPECT_EQ(remediator->acknowledge("alert-99", "x").error().code, ErrorCode::kNotFound);

  // The listener heard every change, in order, each with a higher version.
  std::map<std::string, uint64_t> last_version;
  for (const Alert& a : heard) {
    EXPECT_GT(a.version, last_version[a.id]);
    last_version[a.id] = a.version;
  }
  EXPECT_EQ(last_version[fixed.id], fixed.version);

  // The webhook's record of what its receiver has: the newest version only moves it, and it
  // changes neither the alert's version nor its time, nor tells the listener.
  const size_t told = heard.size();
  ASSERT_TRUE(remediator->mark_notified(gone.id, 2).ok());
  ASSERT_TRUE(remediator->mark_notified(gone.id, 1).ok());        // older: no change
  EXPECT_EQ(remediator->mark_notified(gone.id, 99).error().code,  // never made
            ErrorCode::kFailedPrecondition);
  auto marked = remediator->get(gone.id);
  ASSERT_TRUE(marked.ok() && *marked);
  EXPECT_EQ((*marked)->notified_version, 2u);
  EXPECT_EQ((*marked)->version, closed->version);
  EXPECT_EQ((*marked)->updated_at, closed->updated_at);
  EXPECT_EQ(heard.size(), told);
  Store::AlertQuery unnotified;
  unnotified.unnotified_only = true;
  auto pending = remediator->list(unnotified);
  ASSERT_TRUE(pending.ok());
  EXPECT_EQ(pending->size(), 2u);  // neither has its newest version delivered
  ASSERT_TRUE(remediator->mark_notified(gone.id, closed->version).ok());
  pending = remediator->list(unnotified);
  ASSERT_TRUE(pending.ok());
  ASSERT_EQ(pending->size(), 1u);
  EXPECT_EQ((*pending)[0].id, fixed.id);
  EXPECT_EQ(remediator->mark_notified("alert-99", 1).error().code, ErrorCode::kNotFound);

  // The person closed it while the device is still gone: a new alert opens only after the
  // rule's hour, counted from the closing.
  const size_t alerts_before = alerts->size();
  auto count_alerts = [&] {
    auto now = remediator->list(all);
    return now.ok() ? now->size() : 0;
  };
  ASSERT_TRUE(remediator->tick().ok());
  EXPECT_EQ(count_alerts(), alerts_before);
  f.clock.advance(minutes(61));
  ASSERT_TRUE(remediator->tick().ok());
  EXPECT_EQ(count_alerts(), alerts_before + 1);
}

TEST_F(RemediatorTest, TheDailyBudgetHandsARelapsingDeviceToAPerson) {
  const std::string stuck = f.ids[0];
  // It relapses every time: each fix works for a while, then the data stops again.
  int quiet_until = 0;
  for (int minute = 0; minute < 24 * 60; ++minute) {
    if (minute < 10 || minute < quiet_until) send_sample(stuck);
    for (const Command& c : check_in(stuck)) {
      if (commands->get(c.id)->value().state != CommandState::kSent) continue;
      ASSERT_TRUE(commands->record_result({stuck, c.id, CommandOutcome::kSucceeded, 0, ""}).ok());
      quiet_until = minute + 30;  // data for half an hour, then stuck again
    }
    ASSERT_TRUE(remediator->tick().ok());
    f.clock.advance(minutes(1));
  }
  auto history = commands->history(stuck, 100);
  ASSERT_TRUE(history.ok());
  EXPECT_EQ(history->size(), 3u) << "at most three automatic actions a day";
  Store::AlertQuery unresolved;
  unresolved.device_id = stuck;
  unresolved.unresolved_only = true;
  auto open = remediator->list(unresolved);
  ASSERT_TRUE(open.ok());
  ASSERT_EQ(open->size(), 1u);
  EXPECT_TRUE(open->front().escalated);
  EXPECT_NE(open->front().escalation.find("budget"), std::string::npos) << open->front().escalation;
}

// A starting webhook's backlog of stale changes is recorded in one write (one commit), not
// one each — an id given twice keeps its higher version —; an alert it does not know, or a
// version never made, refuses the whole and nothing is written.
TEST_F(RemediatorTest, ABacklogOfDeliveredChangesIsRecordedInOneWrite) {
  WriteBatch old;
  std::vector<std::pair<std::string, uint64_t>> done;
  for (int n = 1; n <= 30; ++n) {
    Alert a;
    a.id = "alert-" + std::to_string(n);
    a.device_id = f.ids[static_cast<size_t>(n) % f.ids.size()];
    a.rule = "no-data";
    a.condition = "no_data";
    a.state = AlertState::kResolved;
    a.opened_at = f.clock.now() - days(40);
    a.updated_at = a.resolved_at = a.opened_at + hours(1);
    a.resolved_by = "drover";
    a.version = 3;
    old.alerts.push_back(a);
    done.emplace_back(a.id, a.version);
  }
  ASSERT_TRUE(f.store().apply(old).ok());
  restart();
  const int before = lagging_->applies;
  auto twice = done;
  twice.emplace_back("alert-7", 2);  // given again, lower: the higher one stands
  ASSERT_TRUE(remediator->mark_notified_all(twice).ok());
  EXPECT_EQ(lagging_->applies, before + 1);
  auto seventh = remediator->get("alert-7");
  ASSERT_TRUE(seventh.ok() && *seventh);
  EXPECT_EQ((*seventh)->notified_version, 3u);
  Store::AlertQuery unnotified;
  unnotified.unnotified_only = true;
  auto left = remediator->list(unnotified);
  ASSERT_TRUE(left.ok());
  EXPECT_TRUE(left->empty());
  // Recorded already: nothing to write.
  ASSERT_TRUE(remediator->mark_notified_all(done).ok());
  EXPECT_EQ(lagging_->applies, before + 1);
  // One unknown id, or a version never made: refused, nothing written.
  ASSERT_TRUE(f.store().apply(old).ok());  // the backlog again, unrecorded
  restart();
  const int again = lagging_->applies;
  auto unknown = done;
  unknown.emplace_back("alert-99", 1);
  EXPECT_EQ(remediator->mark_notified_all(unknown).error().code, ErrorCode::kNotFound);
  auto too_new = done;
  too_new[5].second = 4;
  EXPECT_EQ(remediator->mark_notified_all(too_new).error().code, ErrorCode::kFailedPrecondition);
  EXPECT_EQ(lagging_->applies, again);
  left = remediator->list(unnotified);
  ASSERT_TRUE(left.ok());
  EXPECT_EQ(left->size(), 30u);
}

// A person's acknowledgement whose write has not reached the disk when the next tick
// decides (the group commit shows other threads only durable writes): the tick decides on
// the alert as last written, not as the store shows it, and keeps the acknowledgement when
// it resolves the alert; the webhook's record of a delivery keeps it too.
TEST_F(RemediatorTest, DecisionsReadTheAlertAsLastWrittenNotAsTheStoreShowsIt) {
  const std::string silent = f.ids[1];
  send_sample(silent);
  check_in(silent);
  f.clock.advance(hours(30));  // offline past its contract for a day: a person's at once
  ASSERT_TRUE(remediator->tick().ok());
  ASSERT_FALSE(heard.empty());
  const std::string id = heard.back().id;
  EXPECT_TRUE(heard.back().escalated);
  auto ack = remediator->acknowledge(id, "token:abc (ops)");
  ASSERT_TRUE(ack.ok());
  lagging_->lag = true;  // from here on, reads show each alert one write behind
  ASSERT_TRUE(remediator->mark_notified(id, ack->version).ok());
  send_sample(silent);  // it is back
  check_in(silent);
  ASSERT_TRUE(remediator->tick().ok());
  lagging_->lag = false;
  auto stored = f.store().get_alert(id);
  ASSERT_TRUE(stored.ok() && *stored);
  EXPECT_EQ((*stored)->state, AlertState::kResolved);
  EXPECT_EQ((*stored)->acknowledged_by, "token:abc (ops)");
  EXPECT_EQ((*stored)->notified_version, ack->version);
  EXPECT_EQ((*stored)->version, ack->version + 1);
}

// An open alert whose device leaves the fleet is judged no more: the next tick closes it,
// saying why, rather than leaving it open for good (and kept in memory).
TEST_F(RemediatorTest, AnAlertOfADeviceThatLeftTheFleetIsClosedSayingWhy) {
  const std::string silent = f.ids[1];
  send_sample(silent);
  check_in(silent);
  f.clock.advance(hours(30));
  ASSERT_TRUE(remediator->tick().ok());
  ASSERT_FALSE(heard.empty());
  const std::string id = heard.back().id;
  EXPECT_NE(heard.back().state, AlertState::kResolved);
  // Another tick with the device still in the fleet leaves it open.
  ASSERT_TRUE(remediator->tick().ok());
  EXPECT_NE(remediator->get(id)->value().state, AlertState::kResolved);
  ASSERT_TRUE(f.service->decommission(silent).ok());
  auto report = remediator->tick();
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->resolved, 1u);
  const Alert a = remediator->get(id)->value();
  EXPECT_EQ(a.state, AlertState::kResolved);
  EXPECT_EQ(a.resolved_by, "drover");
  EXPECT_EQ(a.resolution, "no longer judged: the device left the fleet");
  // And it stays closed.
  ASSERT_TRUE(remediator->tick().ok());
  EXPECT_EQ(remediator->get(id)->value().version, a.version);
}

TEST_F(RemediatorTest, RulesThatDoNotValidateAreRefused) {
  RemediationRule bad;
  bad.name = "x";
  bad.ladder = {{CommandAction::kRun, ""}};
  EXPECT_EQ(Remediator::create(f.store(), f.clock, *telemetry, *commands, {{bad}, {}}).error().code,
            ErrorCode::kInvalidArgument);
  RemediationRule a;
  a.name = "same";
  EXPECT_FALSE(Remediator::create(f.store(), f.clock, *telemetry, *commands, {{a, a}, {}}).ok());
}

// Device health on the services drover serve wires: the series read from the telemetry store
// (a leak forecast from three days of hourly readings), freshness, and the rules' alerts.
TEST_F(RemediatorTest, HealthReadsTheSeriesFreshnessAndAlertsOfTheLiveFleet) {
  const std::string leaking = f.ids[0], steady = f.ids[1], silent = f.ids[2];
  const int64_t now = f.clock.now().time_since_epoch().count();
  auto send_memory = [&](const std::string& device, double per_hour) {
    protocol::TelemetryBatch b;
    b.stream = 9;
    b.sequence = ++sequence_[device + "/memory"];
    protocol::TelemetrySeries available{"memory_available_bytes", {}, {}};
    for (int h = 72; h >= 0; --h) {
      available.samples.push_back({now - h * 3'600'000, 400e6 - per_hour * (72 - h)});
    }
    b.series = {available, {"memory_total_bytes", {}, {{now, 512e6}}}};
    auto r = telemetry->ingest(device, b);
    ASSERT_TRUE(r.ok()) << r.error().to_string();
    ASSERT_TRUE(tsdb->wait_durable(r->stored.lsn).ok());
  };
  send_memory(leaking, 2e6);  // 256 MB left, 2 MB an hour: 5% of 512 MB in about 4.8 days
  send_memory(steady, 0);
  const HealthView view(*telemetry, remediator.get(), f.clock);

  auto leak = view.device(leaking);
  ASSERT_TRUE(leak.ok()) << leak.error().to_string();
  EXPECT_EQ(leak->status, HealthStatus::kCritical);
  ASSERT_EQ(leak->reasons.size(), 1u);
  EXPECT_EQ(leak->reasons[0].kind, "memory");
  ASSERT_EQ(leak->forecasts.size(), 1u);
  EXPECT_NEAR(static_cast<double>(leak->forecasts[0].crossing.expected.count()) / 3'600'000,
              (256e6 - 25.6e6) / 2e6, 1);
  EXPECT_EQ(leak->forecasts[0].crossing.points, 73u);

  auto fine = view.device(steady);
  ASSERT_TRUE(fine.ok());
  EXPECT_EQ(fine->status, HealthStatus::kHealthy);
  EXPECT_EQ(fine->score, 100);
  auto quiet = view.device(silent);
  ASSERT_TRUE(quiet.ok());
  EXPECT_EQ(quiet->reasons.at(0).kind, "offline");
  EXPECT_EQ(quiet->reasons.at(0).text, "never heard from");
  EXPECT_EQ(view.device("no-such-device").error().code, ErrorCode::kNotFound);

  // The steady one stops sending but checks in: the no-data rule opens an alert, and both
  // are reasons.
  for (int minute = 0; minute < 15; ++minute) {
    f.clock.advance(minutes(1));
    check_in(steady);
    ASSERT_TRUE(remediator->tick().ok());
  }
  // The alert says what is being done about no_data: one reason, its points taken once.
  fine = view.device(steady);
  ASSERT_TRUE(fine.ok());
  ASSERT_EQ(fine->reasons.size(), 1u);
  EXPECT_EQ(fine->reasons[0].kind, "no_data");
  ASSERT_FALSE(heard.empty());
  EXPECT_EQ(fine->reasons[0].alert, heard.back().id);
  EXPECT_NE(fine->reasons[0].text.find(heard.back().id + " (no-data): remediation under way"),
            std::string::npos)
      << fine->reasons[0].text;
  EXPECT_EQ(fine->status, HealthStatus::kCritical);
  EXPECT_EQ(fine->score, 60);

  auto fleet = view.fleet({}, hours(int64_t{30} * 24), 10);
  ASSERT_TRUE(fleet.ok());
  EXPECT_EQ(fleet->devices, 3u);
  EXPECT_EQ(fleet->critical, 3u);
  ASSERT_EQ(fleet->predicted.size(), 1u);
  EXPECT_EQ(fleet->predicted[0].first, leaking);
  EXPECT_EQ(fleet->at_risk_total, 3u);

  // A decommissioned device is kept for its history but judged no more; the fleet view
  // leaves it out.
  ASSERT_TRUE(f.service->decommission(silent).ok());
  quiet = view.device(silent);
  ASSERT_TRUE(quiet.ok());
  EXPECT_EQ(quiet->status, HealthStatus::kUnknown);
  ASSERT_EQ(quiet->reasons.size(), 1u);
  EXPECT_EQ(quiet->reasons[0].kind, "decommissioned");
  EXPECT_EQ(quiet->score, 100);
  fleet = view.fleet({}, hours(int64_t{30} * 24), 10);
  ASSERT_TRUE(fleet.ok());
  EXPECT_EQ(fleet->devices, 2u);
}

// A rule on health: a disk found full by device health (its free space at 1% of the mount's
// total) opens an alert after the rule's `after`, and its first step runs the agent's
// clean-logs; the disk freed, the next read of health clears it and the alert resolves,
// saying after which step. Health is read at most every health_every, not every tick. While
// nothing is known of the condition — the device out of reach, its health unreadable, or the
// reads failing — an episode neither steps nor resolves. A person's close holds a new episode
// back until a read made after it saw the disk clear.
TEST_F(RemediatorTest, ARuleOnHealthCleansAFullDiskAndResolvesOnceHealthSaysItCleared) {
  const std::string full = f.ids[0], fine = f.ids[1];
  RemediationRule disk;
  disk.name = "disk-full";
  disk.condition = Condition::kDisk;
  disk.after = minutes(15);
  disk.verify = minutes(10);
  disk.ladder = {{CommandAction::kRun, "clean-logs"}, {CommandAction::kReboot, ""}};
  RemediatorOptions options{{disk}, {}};
  options.health_every = minutes(5);
  auto made = Remediator::create(f.store(), f.clock, *telemetry, *commands, options);
  ASSERT_TRUE(made.ok()) << made.error().to_string();
  std::unique_ptr<Remediator> rules = std::move(*made);
  const HealthView view(*telemetry, rules.get(), f.clock);
  CountingHealth health(view);
  rules->set_health_source(&health);

  double free_share = 0.01;
  bool cleaning_works = true;
  // Minutes of the devices reporting and checking in (the full one only when `in_reach`),
  // its agent running each command once, the rules ticking; what each tick said of health.
  std::vector<Command> ran;
  std::vector<std::string> said;
  std::optional<int> cleaned_at;
  int minute = 0;
  auto pass = [&](int n, bool in_reach) {
    for (int end = minute + n; minute < end; ++minute) {
      send_disk(fine, 0.6);
      check_in(fine);
      if (in_reach) {
        send_disk(full, free_share);
        for (const Command& c : check_in(full)) {
          if (std::any_of(ran.begin(), ran.end(), [&c](const Command& r) { return r.id == c.id; }))
            continue;
          ran.push_back(c);
          ASSERT_TRUE(
              commands->record_result({full, c.id, CommandOutcome::kSucceeded, 0, "ok"}).ok());
          if (cleaning_works) free_share = 0.55;  // the logs are gone
          if (!cleaned_at) cleaned_at = minute;
        }
      }
      auto report = rules->tick();
      ASSERT_TRUE(report.ok()) << report.error().to_string();
      said.push_back(report->health_error);
      f.clock.advance(minutes(1));
    }
  };
  Store::AlertQuery all;
  auto newest = [&]() {
    auto listed = rules->list(all);
    EXPECT_TRUE(listed.ok() && !listed->empty());
    return listed.ok() && !listed->empty() ? listed->front() : Alert{};
  };

  pass(60, true);
  // A read every 5 minutes of the hour, not one a tick.
  EXPECT_EQ(health.reads, 12);
  ASSERT_TRUE(cleaned_at.has_value());
  // Seen at the first read, held 15 minutes: the step came at the read that saw it held.
  EXPECT_GE(*cleaned_at, 15);
  EXPECT_LE(*cleaned_at, 21);
  Alert a = newest();
  EXPECT_EQ(a.device_id, full);
  EXPECT_EQ(a.condition, "disk");
  EXPECT_NE(a.summary.find("disk /data full now"), std::string::npos) << a.summary;
  EXPECT_EQ(a.state, AlertState::kResolved);
  EXPECT_EQ(a.resolution, "cleared after run clean-logs (step 1 of 2)");
  ASSERT_EQ(ran.size(), 1u);
  EXPECT_EQ(ran[0].action, CommandAction::kRun);
  EXPECT_EQ(ran[0].argument, "clean-logs");

  // Full again, and this time cleaning does not free it: a second episode, its clean-logs run.
  free_share = 0.01;
  cleaning_works = false;
  pass(25, true);
  const std::string second = newest().id;
  ASSERT_NE(second, a.id);
  ASSERT_EQ(ran.size(), 2u);
  // Out of reach before its verification ends: no reboot, no resolution, for half an hour.
  f.clock.advance(hours(2));  // quiet past its contract: offline
  pass(30, false);
  EXPECT_NE(newest().state, AlertState::kResolved);
  EXPECT_EQ(commands->history(full, 10)->size(), 2u);
  // Back, but its health reads as unreadable: still nothing.
  health.unreadable = full;
  pass(20, true);
  EXPECT_NE(newest().state, AlertState::kResolved);
  EXPECT_EQ(commands->history(full, 10)->size(), 2u);
  health.unreadable.clear();
  // Back and readable, the disk still full: the reboot, the next step — once the condition has
  // been seen to hold for `after` again (its count started anew when nothing was known).
  pass(14, true);
  EXPECT_EQ(ran.size(), 2u);
  pass(8, true);
  ASSERT_EQ(ran.size(), 3u);
  EXPECT_EQ(ran[2].action, CommandAction::kReboot);

  // Reads fail: nothing is known, nothing done — tried again every 5 minutes, each failure
  // said — until one succeeds; with the disk freed meanwhile, that read resolves it.
  health.failing = true;
  free_share = 0.6;
  said.clear();
  const int reads_before = health.reads;
  pass(30, true);
  EXPECT_NE(newest().state, AlertState::kResolved);
  EXPECT_EQ(health.reads - reads_before, 6);
  EXPECT_EQ(std::count_if(said.begin(), said.end(),
                          [](const std::string& why) {
                            return why.find("the series cannot be read") != std::string::npos;
                          }),
            6);
  health.failing = false;
  pass(6, true);
  a = newest();
  EXPECT_EQ(a.id, second);
  EXPECT_EQ(a.state, AlertState::kResolved);
  EXPECT_EQ(a.resolution, "cleared after reboot (step 2 of 2)");
  EXPECT_EQ(ran.size(), 3u);

  // A third episode, closed by a person while the disk is still full: none opens again until
  // a read after the close has seen the disk clear.
  free_share = 0.01;
  pass(25, true);
  const Alert third = newest();
  ASSERT_NE(third.id, second);
  ASSERT_TRUE(rules->resolve(third.id, "token:t (ops)", "cleaning it by hand").ok());
  pass(60, true);
  EXPECT_EQ(newest().id, third.id) << "no new episode while it was never seen clear";
  free_share = 0.6;
  pass(10, true);
  free_share = 0.01;
  pass(25, true);
  EXPECT_NE(newest().id, third.id) << "seen clear, then full again: a new episode";
}

// A device with a rule on health open that goes offline is the offline rule's: once that
// rule's alert is with a person, so is the health episode — one page — and it is not resolved
// while nothing is known of it.
TEST_F(RemediatorTest, AnOfflineDevicesHealthEpisodeGoesToThePersonWhoHasItsOfflineAlert) {
  const std::string full = f.ids[0];
  RemediationRule disk;
  disk.name = "disk-full";
  disk.condition = Condition::kDisk;
  disk.after = minutes(10);
  disk.verify = minutes(30);  // the reboot would come half an hour after the cleaning
  disk.ladder = {{CommandAction::kRun, "clean-logs"}, {CommandAction::kReboot, ""}};
  RemediationRule offline;
  offline.name = "offline";
  offline.condition = Condition::kOffline;
  offline.after = hours(1);
  auto made = Remediator::create(f.store(), f.clock, *telemetry, *commands, {{disk, offline}, {}});
  ASSERT_TRUE(made.ok()) << made.error().to_string();
  std::unique_ptr<Remediator> rules = std::move(*made);
  const HealthView view(*telemetry, rules.get(), f.clock);
  rules->set_health_source(&view);
  for (int minute = 0; minute < 30; ++minute) {  // full, the clean-logs run and not enough
    send_disk(full, 0.01);
    for (const Command& c : check_in(full)) {
      ASSERT_TRUE(commands->record_result({full, c.id, CommandOutcome::kSucceeded, 0, "ok"}).ok());
    }
    ASSERT_TRUE(rules->tick().ok());
    f.clock.advance(minutes(1));
  }
  for (int minute = 0; minute < 4 * 60; ++minute) {  // then gone
    ASSERT_TRUE(rules->tick().ok());
    f.clock.advance(minutes(1));
  }
  Store::AlertQuery all;
  auto alerts = rules->list(all);
  ASSERT_TRUE(alerts.ok());
  ASSERT_EQ(alerts->size(), 2u);
  std::map<std::string, Alert> by_rule;
  for (const Alert& a : *alerts) by_rule[a.rule] = a;
  EXPECT_TRUE(by_rule["offline"].escalated);
  const Alert& d = by_rule["disk-full"];
  EXPECT_EQ(d.commands.size(), 1u);  // no reboot sent into the void
  EXPECT_NE(d.state, AlertState::kResolved);
  EXPECT_TRUE(d.escalated);
  EXPECT_EQ(d.escalation,
            "out of reach: with a person through " + by_rule["offline"].id + " (offline)");
}

// A rule on health must give each step at least health_every to work: it is judged by a read
// made after it.
TEST_F(RemediatorTest, ARuleOnHealthVerifyingFasterThanHealthIsReadIsRefused) {
  RemediationRule disk;
  disk.name = "disk-full";
  disk.condition = Condition::kDisk;
  disk.verify = minutes(2);
  RemediatorOptions options{{disk}, {}};
  options.health_every = minutes(5);
  auto made = Remediator::create(f.store(), f.clock, *telemetry, *commands, options);
  ASSERT_FALSE(made.ok());
  EXPECT_NE(made.error().message.find("verify (2m) must be at least 5m"), std::string::npos)
      << made.error().message;
}

// A battery draining 2.2 times as fast as its type's is a warning in the fleet view and in the
// device's own health, with the figures; its peers draining at the usual rate, with their
// noise, are not flagged.
TEST_F(RemediatorTest, ABatteryDrainingFarFasterThanItsTypesIsAWarning) {
  f.add_devices(9, "rev-a");  // 12 of type ctl
  const int64_t now = f.clock.now().time_since_epoch().count();
  std::mt19937_64 rng(7);
  // A battery that lasts about two months (0.05 %/h): no forecast within the horizon, for
  // the fast one either (84 points at 0.11 %/h: 32 days).
  std::normal_distribution<double> usual(0.05, 0.004);
  const std::string fast = f.ids[4];
  for (const std::string& device : f.ids) {
    const double per_hour = device == fast ? 0.11 : usual(rng);
    protocol::TelemetryBatch b;
    b.stream = 11;
    b.sequence = 1;
    protocol::TelemetrySeries level{"battery_level_percent", {{"supply", "BAT0"}}, {}};
    for (int half = 12; half >= 0; --half) {  // six hours, a reading every half hour
      level.samples.push_back({now - half * 1'800'000, 90 - per_hour * (12 - half) / 2.0});
    }
    b.series = {level, {"cpu_percent", {}, {{now, 10}}}};
    auto r = telemetry->ingest(device, b);
    ASSERT_TRUE(r.ok()) << r.error().to_string();
    ASSERT_TRUE(tsdb->wait_durable(r->stored.lsn).ok());
  }
  const HealthView view(*telemetry, remediator.get(), f.clock);
  auto judged = view.judge_all({});
  ASSERT_TRUE(judged.ok()) << judged.error().to_string();
  ASSERT_EQ(judged->size(), 12u);
  for (const DeviceHealth& d : *judged) {
    const bool flagged = std::any_of(d.reasons.begin(), d.reasons.end(), [](const HealthReason& r) {
      return r.kind == "battery_drain";
    });
    EXPECT_EQ(flagged, d.device_id == fast) << d.device_id;
  }
  auto one = view.device(fast);
  ASSERT_TRUE(one.ok());
  ASSERT_EQ(one->reasons.size(), 1u);
  EXPECT_EQ(one->reasons[0].kind, "battery_drain");
  EXPECT_EQ(one->reasons[0].severity, Severity::kWarning);
  EXPECT_EQ(one->status, HealthStatus::kDegraded);
  EXPECT_NE(one->reasons[0].text.find("battery BAT0 drains 0.11 %/h, 2.2x the median of its type's "
                                      "12 devices (0.05"),
            std::string::npos)
      << one->reasons[0].text;
  auto peer = view.device(f.ids[5]);
  ASSERT_TRUE(peer.ok());
  EXPECT_EQ(peer->status, HealthStatus::kHealthy);
}

// A series only hours old has too few points at the hourly resolution a week's window is read
// at: health reads it finer (5-minute rollups), so a leak that started this morning is
// forecast today, not a week from now.
TEST_F(RemediatorTest, HealthReadsAYoungSeriesFinerSoItsForecastComesEarly) {
  const std::string young = f.ids[0];
  const int64_t now = f.clock.now().time_since_epoch().count();
  protocol::TelemetryBatch b;
  b.stream = 9;
  b.sequence = 1;
  protocol::TelemetrySeries available{"memory_available_bytes", {}, {}};
  // Three hours of a reading a minute, falling 4 MB an hour from 100 MB: 5% of 512 MB (25.6
  // MB) in about 15.6 hours.
  for (int m = 180; m >= 0; --m) {
    available.samples.push_back({now - int64_t{m} * 60'000, 100e6 - 4e6 * (180 - m) / 60.0});
  }
  b.series = {available, {"memory_total_bytes", {}, {{now, 512e6}}}};
  auto r = telemetry->ingest(young, b);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  ASSERT_TRUE(tsdb->wait_durable(r->stored.lsn).ok());
  const HealthView view(*telemetry, remediator.get(), f.clock);
  // Read as the week's window chooses, the series has too few points for a forecast.
  telemetry::RangeQuery q;
  q.device = young;
  q.metric = "memory_available_bytes";
  q.from_ms = now - view.options().window.count();
  q.until_ms = now + 1;
  auto coarse = telemetry->range(q);
  ASSERT_TRUE(coarse.ok());
  ASSERT_LT(coarse->points.size(), view.options().forecast.min_points);
  auto d = view.device(young);
  ASSERT_TRUE(d.ok()) << d.error().to_string();
  ASSERT_EQ(d->forecasts.size(), 1u);
  EXPECT_GT(d->forecasts[0].crossing.points, coarse->points.size());
  EXPECT_GE(d->forecasts[0].crossing.points, view.options().forecast.min_points);
  EXPECT_NEAR(static_cast<double>(d->forecasts[0].crossing.expected.count()) / 3'600'000,
              (88e6 - 25.6e6) / 4e6, 1);
  EXPECT_EQ(d->status, HealthStatus::kCritical);
}

}  // namespace
}  // namespace drover::health
