// Remediation rules: nothing before the condition has held long enough; each step only after
// the previous one ended and had its time to work; a ladder run out, or the device's daily
// budget spent, goes to a person; clearing resolves and says after what. Over many seeded
// random devices the invariants hold at every decision.
#include "health/remediation.h"

#include <gtest/gtest.h>

#include <deque>
#include <random>

namespace drover::health {
namespace {

using Kind = Decision::Kind;
using protocol::CommandAction;

const Timestamp kT0 = Timestamp(Duration(1'780'000'000'000));

RemediationRule stuck() {
  RemediationRule r;
  r.name = "no-data";
  r.condition = Condition::kNoData;
  r.after = minutes(30);
  r.verify = minutes(20);
  r.ladder = {{CommandAction::kRestartService, "sensord"}, {CommandAction::kReboot, ""}};
  return r;
}

TEST(Remediation, EachStepWaitsForTheLastToEndAndBeVerified) {
  const RemediationRule rule = stuck();
  const RemediationLimits limits;
  Episode e;
  EXPECT_EQ(decide(rule, e, true, minutes(29), kT0, 0, limits).kind, Kind::kNothing);
  const Decision open = decide(rule, e, true, minutes(30), kT0, 0, limits);
  EXPECT_EQ(open.kind, Kind::kOpen);
  e.open = true;
  Decision d = decide(rule, e, true, minutes(30), kT0, 0, limits);
  ASSERT_EQ(d.kind, Kind::kAct);
  EXPECT_EQ(d.step, 0u);
  EXPECT_EQ(d.why, "restart_service sensord");
  e.steps_taken = 1;
  e.command_open = true;
  EXPECT_EQ(decide(rule, e, true, hours(1), kT0 + hours(1), 1, limits).kind, Kind::kWait);
  e.command_open = false;
  e.command_ended = kT0 + hours(1);
  EXPECT_EQ(decide(rule, e, true, hours(1), kT0 + hours(1) + minutes(19), 1, limits).kind,
            Kind::kWait);
  d = decide(rule, e, true, hours(1), kT0 + hours(1) + minutes(20), 1, limits);
  ASSERT_EQ(d.kind, Kind::kAct);
  EXPECT_EQ(d.step, 1u);
  EXPECT_EQ(d.why, "reboot");
  e.steps_taken = 2;
  e.command_ended = kT0 + hours(2);
  d = decide(rule, e, true, hours(2), kT0 + hours(3), 2, limits);
  EXPECT_EQ(d.kind, Kind::kEscalate);
  EXPECT_NE(d.why.find("after every step (2)"), std::string::npos) << d.why;
  e.escalated = true;
  EXPECT_EQ(decide(rule, e, true, hours(3), kT0 + hours(4), 2, limits).kind, Kind::kWait);
  d = decide(rule, e, false, Duration{0}, kT0 + hours(5), 2, limits);
  EXPECT_EQ(d.kind, Kind::kResolve);
  // A person had it: the reboot is not said to have cleared it.
  EXPECT_EQ(d.why, "cleared while with a person (the last automatic step: reboot (step 2 of 2))");
  e.escalated = false;
  EXPECT_EQ(decide(rule, e, false, Duration{0}, kT0 + hours(5), 2, limits).why,
            "cleared after reboot (step 2 of 2)");
}

// After the device was out of reach (or the server restarted), the next step waits until the
// condition has been seen to hold for `after` again — and a day without a step goes to a
// person rather than waiting for good.
TEST(Remediation, AStepWaitsForTheConditionToHoldAgainButNotForever) {
  const RemediationRule rule = stuck();
  const RemediationLimits limits;
  Episode e;
  e.open = true;
  e.opened = kT0;
  e.steps_taken = 1;
  e.command_ended = kT0 + minutes(10);
  const Timestamp verified = kT0 + minutes(30);  // 20 min after the restart ended
  Decision d = decide(rule, e, true, minutes(29), verified, 1, limits);
  EXPECT_EQ(d.kind, Kind::kWait);
  EXPECT_EQ(d.why, "waiting to see the condition hold again");
  EXPECT_EQ(decide(rule, e, true, minutes(30), verified, 1, limits).kind, Kind::kAct);
  // Never seen to hold long enough, a day after the restart ended: a person's.
  d = decide(rule, e, true, minutes(5), e.command_ended + hours(24) - minutes(1), 1, limits);
  EXPECT_EQ(d.kind, Kind::kWait);
  d = decide(rule, e, true, minutes(5), e.command_ended + hours(24), 1, limits);
  EXPECT_EQ(d.kind, Kind::kEscalate);
  EXPECT_NE(d.why.find("no step for 1d"), std::string::npos) << d.why;
  // The same from the opening when no step was taken yet, with a limit of its own.
  Episode fresh;
  fresh.open = true;
  fresh.opened = kT0;
  RemediationLimits quick;
  quick.stalled_after = hours(2);
  EXPECT_EQ(decide(rule, fresh, true, Duration{0}, kT0 + hours(2), 0, quick).kind, Kind::kEscalate);
  EXPECT_EQ(decide(rule, fresh, true, Duration{0}, kT0 + hours(1), 0, quick).kind, Kind::kWait);
}

// A device out of reach: nothing is known of its condition and nothing can be sent — no
// step (even for a rule that acts at once), no resolution — and a person's after a day
// counted from the latest of the opening, the last command's end and when this server began
// watching (a restarted server does not blame the device for its own downtime).
TEST(Remediation, AnEpisodeOutOfReachNeitherStepsNorResolvesAndGoesToAPersonAfterADay) {
  RemediationRule rule = stuck();
  rule.after = Duration{0};
  const RemediationLimits limits;
  Episode e;
  e.open = true;
  e.opened = kT0;
  e.steps_taken = 1;
  e.command_ended = kT0 + hours(1);
  e.out_of_reach = true;
  for (bool present : {true, false}) {
    const Decision d = decide(rule, e, present, hours(5), kT0 + hours(5), 1, limits);
    EXPECT_EQ(d.kind, Kind::kWait) << d.why;
    EXPECT_EQ(d.why, "the device is out of reach");
  }
  Decision d = decide(rule, e, true, Duration{0}, kT0 + hours(25), 1, limits);
  EXPECT_EQ(d.kind, Kind::kEscalate);
  EXPECT_EQ(d.why, "no step for 1d: the device is out of reach");
  // Watched only since a restart an hour ago: not yet.
  e.watched_since = kT0 + hours(24);
  EXPECT_EQ(decide(rule, e, true, Duration{0}, kT0 + hours(25), 1, limits).kind, Kind::kWait);
  EXPECT_EQ(decide(rule, e, true, Duration{0}, kT0 + hours(48), 1, limits).kind, Kind::kEscalate);
  // Back in reach and still stuck: the rule (after 0) takes its next step at once.
  e.out_of_reach = false;
  EXPECT_EQ(decide(rule, e, true, Duration{0}, kT0 + hours(25), 1, limits).kind, Kind::kAct);
}

TEST(Remediation, ClearingBeforeAnyStepAndAnEmptyLadderAndTheBudget) {
  RemediationRule rule = stuck();
  Episode e;
  e.open = true;
  EXPECT_EQ(decide(rule, e, false, Duration{0}, kT0, 0, {}).why, "cleared by itself");
  Episode with_person = e;
  with_person.escalated = true;
  EXPECT_EQ(decide(rule, with_person, false, Duration{0}, kT0, 0, {}).why,
            "cleared while with a person");
  EXPECT_EQ(decide(rule, Episode{}, false, Duration{0}, kT0, 0, {}).kind, Kind::kNothing);
  // The device already had three automatic actions today (from other rules): a person.
  const Decision spent = decide(rule, e, true, hours(1), kT0, 3, {});
  EXPECT_EQ(spent.kind, Kind::kEscalate);
  EXPECT_NE(spent.why.find("budget"), std::string::npos);
  rule.ladder.clear();
  EXPECT_EQ(decide(rule, e, true, hours(1), kT0, 0, {}).kind, Kind::kEscalate);
}

TEST(Remediation, RulesAreValidated) {
  EXPECT_TRUE(validate(stuck()).ok());
  for (const RemediationRule& r : default_rules("sensord")) EXPECT_TRUE(validate(r).ok());
  RemediationRule r = stuck();
  r.name = "no data";
  EXPECT_FALSE(validate(r).ok());
  r = stuck();
  r.ladder[0].argument = "";
  EXPECT_FALSE(validate(r).ok());
  r = stuck();
  r.ladder[1].argument = "now";
  EXPECT_FALSE(validate(r).ok());
  r = stuck();
  r.verify = Duration{0};
  EXPECT_FALSE(validate(r).ok());
  EXPECT_EQ(default_rules("").front().ladder.size(), 1u);  // reboot only
}

// Random devices over simulated weeks: the condition comes and goes, commands take random
// times to end, some steps fix it, devices drop out of reach for hours and come back (the
// count of how long the condition has held starting again). At every decision: never a
// step while another is open or being verified, none and no resolution while the device is
// out of reach, never a step before the condition was seen to hold `after`, never more
// automatic actions in 24 h than the budget, a stall handed to a person only after a day
// without a step, and every episode ends resolved or with a person.
TEST(Remediation, InvariantsHoldOverManySeededDevices) {
  const RemediationRule rule = stuck();
  const RemediationLimits limits{.max_actions_per_day = 3};
  size_t episodes = 0, resolved_by_step = 0, escalated = 0, actions = 0;
  for (uint32_t seed = 1; seed <= 40; ++seed) {
    std::mt19937_64 rng(seed);
    Episode e;
    bool present = false;
    Timestamp since = kT0;
    Timestamp command_ends{};
    Timestamp reach_back{};        // out of reach until then
    int fixes_at_step = -1;        // the step that clears it this time (-1: none)
    std::deque<Timestamp> recent;  // automatic actions, for the 24-hour budget
    for (Timestamp now = kT0; now < kT0 + days(21); now += minutes(5)) {
      while (!recent.empty() && now - recent.front() >= hours(24)) recent.pop_front();
      if (!present && rng() % 400 == 0) {
        present = true;
        since = now;
        fixes_at_step = static_cast<int>(rng() % 4) - 1;  // -1, 0, 1 or 2 (never)
      }
      if (!e.out_of_reach && rng() % 600 == 0) {
        e.out_of_reach = true;
        reach_back = now + hours(static_cast<int64_t>(1 + rng() % 40));
      } else if (e.out_of_reach && now >= reach_back) {
        e.out_of_reach = false;
        since = now;  // seen holding again only from now
      }
      if (e.command_open && now >= command_ends) {
        e.command_open = false;
        e.command_ended = now;
        if (static_cast<int>(e.steps_taken) - 1 == fixes_at_step) present = false;
      }
      const Decision d = decide(rule, e, present, now - since, now, recent.size(), limits);
      switch (d.kind) {
        case Kind::kOpen: {
          ASSERT_FALSE(e.open);
          ASSERT_GE(now - since, rule.after);
          const bool away = e.out_of_reach;
          e = Episode{.open = true, .opened = now, .out_of_reach = away};
          ++episodes;
          break;
        }
        case Kind::kAct:
          ASSERT_TRUE(e.open && !e.escalated && !e.command_open && !e.out_of_reach);
          ASSERT_GE(now - since, rule.after);
          ASSERT_EQ(d.step, e.steps_taken);
          if (e.steps_taken > 0) {
            ASSERT_GE(now - e.command_ended, rule.verify);
          }
          ASSERT_LT(recent.size(), limits.max_actions_per_day);
          ++e.steps_taken;
          e.command_open = true;
          command_ends = now + minutes(static_cast<int64_t>(rng() % 90));
          recent.push_back(now);
          ++actions;
          break;
        case Kind::kEscalate:
          ASSERT_TRUE(e.open && !e.escalated);
          if (d.why.starts_with("no step for")) {
            ASSERT_GE(now - std::max(e.opened, e.command_ended), limits.stalled_after) << d.why;
          }
          e.escalated = true;
          ++escalated;
          break;
        case Kind::kResolve:
          ASSERT_TRUE(e.open && !e.out_of_reach);
          ASSERT_FALSE(present);
          if (e.steps_taken > 0) ++resolved_by_step;
          e = Episode{.out_of_reach = e.out_of_reach};
          break;
        case Kind::kNothing:
        case Kind::kWait:
          break;
      }
      // A person fixes what was handed to them, a day later.
      if (e.escalated && present && now - since > days(1) + hours(12)) present = false;
    }
  }
  EXPECT_GT(episodes, 40u);
  EXPECT_GT(resolved_by_step, 10u);
  EXPECT_GT(escalated, 5u);
  EXPECT_GT(actions, episodes);
}

}  // namespace
}  // namespace drover::health
