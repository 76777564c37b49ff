// The Remediator's rule on a configuration that did not apply (condition config_failed): read
// from what devices say at their check-ins, on a fleet wired as in drover serve.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "health/remediator.h"
#include "protocol/device_config.h"
#include "remediator_fixture.h"

namespace drover::health {
namespace {

const std::string kRunning(64, 'a');  // the configuration a device runs
const std::string kWanted(64, 'b');   // its type's newest, which it fails to apply

RemediatorOptions config_rule() {
  RemediationRule rule;
  rule.name = "config-failed";
  rule.condition = Condition::kConfigFailed;
  rule.after = hours(1);
  rule.verify = minutes(10);
  rule.ladder = {{CommandAction::kReapplyConfig, ""}};
  return {{rule}, {}};
}

// A device whose configuration does not apply — each check-in says so, with the error — is
// asked to apply it again once it has said so for the rule's hour; its alert names the error;
// the episode resolves at the first tick after it reports the configuration applied. A
// device that failed once and applied at its next tries, and one that stopped checking in
// (its last word older than report_fresh: nothing known), are left alone. After a restart
// of the server, an error kept in a device's record counts only once the device says it
// again.
TEST_F(RemediatorTest, AConfigurationThatDidNotApplyIsAppliedAgainAndResolvesWhenItDoes) {
  RemediatorOptions options = config_rule();
  options.report_fresh = minutes(30);
  auto made = Remediator::create(f.store(), f.clock, *telemetry, *commands, options);
  ASSERT_TRUE(made.ok()) << made.error().to_string();
  std::unique_ptr<Remediator> rules = std::move(*made);
  rules->set_update_states(f.service.get());
  const std::string failing = f.ids[0], flaky = f.ids[1], quiet = f.ids[2];
  auto report = [&](const std::string& id, const std::string& sha, const std::string& error) {
    const protocol::ConfigReport config{sha, error};
    auto r = f.service->check_in({id, f.installed(id), UpdateState::kIdle, "", false, &config});
    EXPECT_TRUE(r.ok()) << r.error().to_string();
    return r.ok() ? r->commands : std::vector<Command>{};
  };
  bool applied = false;
  Timestamp applied_at{}, queued_at{};
  for (int minute = 0; minute < 3 * 60; ++minute) {
    for (const Command& c : report(failing, applied ? kWanted : kRunning,
                                   applied ? "" : "apply command exited with status 1")) {
      EXPECT_EQ(c.action, CommandAction::kReapplyConfig);
      if (applied) continue;
      ASSERT_TRUE(
          commands->record_result({failing, c.id, CommandOutcome::kSucceeded, 0, "applied"}).ok());
      applied = true;
      applied_at = f.clock.now();
    }
    report(flaky, minute < 5 ? kRunning : kWanted, minute < 5 ? "apply command timed out" : "");
    if (minute < 10) report(quiet, kRunning, "refused: setpoint 28 above the device's 26");
    send_sample(failing), send_sample(flaky), send_sample(quiet);
    ASSERT_NO_FATAL_FAILURE(tick_a_minute(*rules, queued_at));
  }
  auto alerts = rules->list({});
  ASSERT_TRUE(alerts.ok());
  ASSERT_EQ(alerts->size(), 1u) << "only the device failing for the rule's hour";
  const Alert& a = alerts->front();
  EXPECT_EQ(a.device_id, failing);
  EXPECT_EQ(a.condition, "config_failed");
  EXPECT_NE(a.summary.find("its configuration did not apply: apply command exited with status 1"),
            std::string::npos)
      << a.summary;
  ASSERT_EQ(a.commands.size(), 1u);
  EXPECT_EQ(a.state, AlertState::kResolved);
  EXPECT_EQ(a.resolution, "cleared after reapply_config (step 1 of 1)");
  EXPECT_GE(queued_at, drover::testing::at("2026-06-01T13:00:00Z"));
  EXPECT_LE(queued_at, drover::testing::at("2026-06-01T13:02:00Z"));
  EXPECT_GE(a.resolved_at, applied_at);
  EXPECT_LE(a.resolved_at, applied_at + minutes(2));

  // The quiet device's error is in its record; a new server does not count it until the
  // device says it again.
  ASSERT_EQ(f.service->config_failures().size(), 1u);
  EXPECT_EQ(f.service->config_failures()[0].id, quiet);
  restart_server(minutes(1), config_rule());
  EXPECT_TRUE(f.service->config_failures().empty());
  ASSERT_EQ(f.service->device(quiet)->config_error, "refused: setpoint 28 above the device's 26");
  report(quiet, kRunning, "refused: setpoint 28 above the device's 26");
  const auto failures = f.service->config_failures();
  ASSERT_EQ(failures.size(), 1u);
  EXPECT_EQ(failures[0].error, "refused: setpoint 28 above the device's 26");
  EXPECT_EQ(failures[0].at, f.clock.now());
  // A check-in without a report of the configuration (its agent no longer applies one)
  // leaves none known.
  ASSERT_TRUE(f.service->check_in({quiet, f.installed(quiet), UpdateState::kIdle, "", false}).ok());
  EXPECT_TRUE(f.service->config_failures().empty());
  EXPECT_EQ(f.service->device(quiet)->config_error, "");
}

}  // namespace
}  // namespace drover::health
