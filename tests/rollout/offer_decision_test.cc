#include "rollout/offer_decision.h"

#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

namespace drover {
namespace {

// Answers decide_offer's questions as set, and notes which were asked, in order.
struct Answers final : OfferQuestions {
  bool stratum_halted = false;
  PacingCounts pace;
  bool open = true;
  std::optional<std::vector<TimeRange>> w = std::vector<TimeRange>{};
  bool rate = true;
  std::optional<UpdateOffer> revert;
  std::vector<std::string> asked;

  bool halted() override {
    asked.emplace_back("halted");
    return stratum_halted;
  }
  PacingCounts pacing() override {
    asked.emplace_back("pacing");
    return pace;
  }
  bool window_open() override {
    asked.emplace_back("window_open");
    return open;
  }
  std::optional<std::vector<TimeRange>> windows() override {
    asked.emplace_back("windows");
    return w;
  }
  bool take_rate() override {
    asked.emplace_back("take_rate");
    return rate;
  }
  std::optional<UpdateOffer> revert_offer() override {
    asked.emplace_back("revert_offer");
    return revert;
  }
};

using Asked = std::vector<std::string>;
const Timestamp kNow = Timestamp(hours(1000));

class DecideOffer : public ::testing::Test {
 protected:
  DecideOffer() {
    device.id = "ctl-1";
    device.device_type = "ctl";
    device.hardware_revision = "rev-a";
    device.installed = {{"firmware", "1.0.0"}};
    artifact.name = "firmware";
    artifact.version = "2.0.0";
    artifact.device_types = {"ctl"};
    dep.from_version = "1.0.0";
    f.device = &device;
    f.artifact = &artifact;
    f.target = &target;
    f.deployment = &dep;
    f.stages = 1;
    f.min_sample = 5;
    f.now = kNow;
  }

  OfferDecision decide() { return decide_offer(f, q); }

  Device device;
  Artifact artifact;
  Version target = Version::parse("2.0.0").value();
  Deployment dep;
  OfferFacts f;
  Answers q;
};

TEST_F(DecideOffer, APendingDeploymentIsOfferedWhenEverythingAllowsIt) {
  q.w = std::vector<TimeRange>{{kNow + hours(2), kNow + hours(4)}};
  const OfferDecision d = decide();
  EXPECT_EQ(d.act, OfferAct::kOffer);
  EXPECT_EQ(d.held, OfferHeld::kNo);
  EXPECT_EQ(d.windows, *q.w);
  // The rate limit is taken last, once nothing else holds the offer back.
  EXPECT_EQ(q.asked, (Asked{"halted", "window_open", "windows", "take_rate"}));
}

TEST_F(DecideOffer, NothingIsAskedBeforeItsTurnComes) {
  for (auto set : std::vector<std::function<void()>>{
           [&] { f.stage = 1; },                                   // its stage has not come
           [&] { f.rollout_state = RolloutState::kPaused; },       // the rollout does not go on
           [&] { f.rollout_state = RolloutState::kWatching; }}) {  // over, for one never silent
    f = OfferFacts{.stage = 0,
                   .deployment = &dep,
                   .stages = 1,
                   .device = &device,
                   .artifact = &artifact,
                   .target = &target,
                   .min_sample = 5,
                   .now = kNow};
    q.asked.clear();
    set();
    const OfferDecision d = decide();
    EXPECT_EQ(d.act, OfferAct::kNothing);
    EXPECT_EQ(d.held, OfferHeld::kNo);
    EXPECT_TRUE(q.asked.empty());
  }
  // Its turn has come, but its group is halted: nothing else is asked.
  f.rollout_state = RolloutState::kRunning;
  q.asked.clear();
  q.stratum_halted = true;
  EXPECT_EQ(decide().act, OfferAct::kNothing);
  EXPECT_EQ(q.asked, Asked{"halted"});
}

TEST_F(DecideOffer, AClosedWindowHoldsItWithoutTakingFromTheRate) {
  q.open = false;
  device.device_type = "meter";  // held by the window before anything else is looked at
  OfferDecision d = decide();
  EXPECT_EQ(d.act, OfferAct::kNothing);
  EXPECT_EQ(d.held, OfferHeld::kWindow);
  EXPECT_EQ(q.asked, (Asked{"halted", "window_open"}));
  device.device_type = "ctl";
  // Open, but no window for the offer to carry soon enough.
  q = Answers{};
  q.w.reset();
  d = decide();
  EXPECT_EQ(d.held, OfferHeld::kWindow);
  EXPECT_EQ(q.asked, (Asked{"halted", "window_open", "windows"}));
  q = Answers{};
  q.rate = false;
  d = decide();
  EXPECT_EQ(d.act, OfferAct::kNothing);
  EXPECT_EQ(d.held, OfferHeld::kRate);
}

TEST_F(DecideOffer, WhatDoesNotFitOrIsThereAlreadyIsSkipped) {
  device.device_type = "meter";
  OfferDecision d = decide();
  EXPECT_EQ(d.act, OfferAct::kSkip);
  EXPECT_EQ(d.message,
            "firmware@2.0.0 does not fit device 'ctl-1': device type meter not supported");
  device.device_type = "ctl";
  device.installed = {{"firmware", "3.0.0"}};
  d = decide();
  EXPECT_EQ(d.act, OfferAct::kSkip);
  EXPECT_EQ(d.message, "already runs 3.0.0");
  // With allow_downgrade only the very version is "there already".
  f.allow_downgrade = true;
  EXPECT_EQ(decide().act, OfferAct::kOffer);
  device.installed = {{"firmware", "2.0.0"}};
  EXPECT_EQ(decide().message, "already runs 2.0.0");
  // A version that does not parse is no reason to skip.
  f.allow_downgrade = false;
  device.installed = {{"firmware", "nightly"}};
  EXPECT_EQ(decide().act, OfferAct::kOffer);
}

TEST_F(DecideOffer, MaxInFlightCountsDevicesThatDoNotHoldTheirImage) {
  f.max_in_flight = 10;
  f.in_flight = 10;
  OfferDecision d = decide();
  EXPECT_EQ(d.held, OfferHeld::kInFlight);
  EXPECT_EQ(q.asked, (Asked{"halted", "window_open"}));
  f.holding = 1;  // waits for its window, needing nothing from the server
  EXPECT_EQ(decide().act, OfferAct::kOffer);
}

TEST_F(DecideOffer, ACanaryIsPacedByItsGroupsOutcomes) {
  f.stages = 3;
  q.pace = {5, 0, 0};  // min_sample in flight, none finished: full
  EXPECT_EQ(decide().held, OfferHeld::kPacing);
  EXPECT_EQ(q.asked, (Asked{"halted", "window_open", "pacing"}));  // no rate taken
  q.pace = {5, 1, 0};  // one has gone quiet: its place is free
  EXPECT_EQ(decide().act, OfferAct::kOffer);
  q.pace = {2, 4, 0};  // more stalled than in flight (counted at different times): free
  EXPECT_EQ(decide().act, OfferAct::kOffer);
  q.pace = {7, 0, 8};  // exposure grows with the outcomes
  EXPECT_EQ(decide().act, OfferAct::kOffer);
  // A paced place goes only to a device that can install now.
  q.w = std::vector<TimeRange>{{kNow + hours(1), kNow + hours(2)}};
  q.asked.clear();
  EXPECT_EQ(decide().held, OfferHeld::kWindow);
  EXPECT_EQ(q.asked, (Asked{"halted", "window_open", "pacing", "windows"}));
  q.w = std::vector<TimeRange>{{kNow, kNow + hours(2)}};
  EXPECT_EQ(decide().act, OfferAct::kOffer);
  // Not paced beyond the first stage (a stage-0 device late for it included), nor in a plan
  // of one stage.
  q.pace = {100, 0, 0};
  f.rollout_stage = f.stage = 1;
  EXPECT_EQ(decide().act, OfferAct::kOffer);
  f.stage = 0;
  EXPECT_EQ(decide().act, OfferAct::kOffer);
  f.rollout_stage = f.stage = 0;
  f.stages = 1;
  EXPECT_EQ(decide().act, OfferAct::kOffer);
}

TEST_F(DecideOffer, AnIdleDeviceInFlightFinishedOrLostItsOffer) {
  for (DeploymentState s : {DeploymentState::kOffered, DeploymentState::kDownloading,
                            DeploymentState::kInstalling, DeploymentState::kRebooting}) {
    f.state = s;
    device.installed = {{"firmware", "2.0.0"}};
    EXPECT_EQ(decide().act, OfferAct::kSucceeded) << to_string(s);
    device.installed = {{"firmware", "1.0.0"}};
    const OfferDecision d = decide();
    EXPECT_EQ(d.act, OfferAct::kResend) << to_string(s);
    EXPECT_TRUE(d.message.empty());
  }
  // Never sent to something newer, nor while the rollout is paused or the group halted.
  device.installed = {{"firmware", "2.1.0"}};
  EXPECT_EQ(decide().act, OfferAct::kNothing);
  device.installed = {{"firmware", "1.0.0"}};
  f.rollout_state = RolloutState::kPaused;
  EXPECT_EQ(decide().act, OfferAct::kNothing);
  f.rollout_state = RolloutState::kRunning;
  q.stratum_halted = true;
  EXPECT_EQ(decide().act, OfferAct::kNothing);
  // Finished without its report reaching the server: succeeded, paused or halted alike.
  device.installed = {{"firmware", "2.0.0"}};
  EXPECT_EQ(decide().act, OfferAct::kSucceeded);
  f.rollout_state = RolloutState::kPaused;
  EXPECT_EQ(decide().act, OfferAct::kSucceeded);
  f.rollout_state = RolloutState::kRunning;
  q.stratum_halted = false;
  device.installed = {{"firmware", "1.0.0"}};
  q.open = false;
  EXPECT_EQ(decide().act, OfferAct::kNothing);
  q.open = true;
  q.w.reset();
  EXPECT_EQ(decide().act, OfferAct::kNothing);
  // With allow_downgrade the offer goes to a device on a newer version too.
  q.w = std::vector<TimeRange>{};
  device.installed = {{"firmware", "2.1.0"}};
  f.allow_downgrade = true;
  EXPECT_EQ(decide().act, OfferAct::kResend);
}

TEST_F(DecideOffer, ASilentDeviceHeardAgainIsOfferedAgain) {
  f.state = DeploymentState::kSilent;
  // Never offered: as if pending (a new offer), also while the rollout watches.
  f.rollout_state = RolloutState::kWatching;
  EXPECT_EQ(decide().act, OfferAct::kOffer);
  // Offered before: the offer again, written with why.
  dep.offered_at = kNow - hours(30);
  const OfferDecision d = decide();
  EXPECT_EQ(d.act, OfferAct::kReoffer);
  EXPECT_EQ(d.message, "heard again after going silent: offered again");
  f.rollout_state = RolloutState::kCompleted;
  EXPECT_EQ(decide().act, OfferAct::kNothing);
  // Never offered, while paused: nothing.
  dep.offered_at = {};
  f.rollout_state = RolloutState::kPaused;
  EXPECT_EQ(decide().act, OfferAct::kNothing);
}

TEST_F(DecideOffer, ARevertSendsBackOnlyWhatThisRolloutInstalled) {
  f.state = DeploymentState::kRevertPending;
  f.rollout_state = RolloutState::kRollingBack;
  device.installed = {{"firmware", "1.0.0"}};
  OfferDecision d = decide();
  EXPECT_EQ(d.act, OfferAct::kAlreadyBack);
  EXPECT_EQ(d.message, "runs 1.0.0 again");
  device.installed = {{"firmware", "3.0.0"}};
  d = decide();
  EXPECT_EQ(d.act, OfferAct::kSkip);
  EXPECT_EQ(d.message, "not sent back: it runs 3.0.0 now, not 2.0.0");
  device.installed.clear();
  EXPECT_EQ(decide().message, "not sent back: it runs nothing now, not 2.0.0");

  device.installed = {{"firmware", "2.0.0"}};
  q.asked.clear();
  EXPECT_EQ(decide().act, OfferAct::kNothing);  // no image to send back
  EXPECT_EQ(q.asked, (Asked{"window_open", "revert_offer"}));
  UpdateOffer back;
  back.version = "1.0.0";
  back.revert = true;
  q.revert = back;
  d = decide();
  EXPECT_EQ(d.act, OfferAct::kRevert);
  EXPECT_EQ(d.message, "send back 1.0.0");
  ASSERT_TRUE(d.revert);
  EXPECT_EQ(d.revert->version, "1.0.0");
  q.revert->switch_back = true;
  EXPECT_EQ(decide().message, "switch back to 1.0.0 in the other slot (no download)");
  f.rollout_state = RolloutState::kPaused;
  EXPECT_EQ(decide().act, OfferAct::kNothing);
  f.rollout_state = RolloutState::kRollingBack;
  q.open = false;
  q.asked.clear();
  EXPECT_EQ(decide().act, OfferAct::kNothing);
  EXPECT_EQ(q.asked, Asked{"window_open"});  // no image looked up
  q.open = true;

  // Reverting: back is success, otherwise the same offer again.
  f.state = DeploymentState::kReverting;
  f.rollout_state = RolloutState::kRollingBack;
  d = decide();
  EXPECT_EQ(d.act, OfferAct::kRevertResend);
  ASSERT_TRUE(d.revert);
  EXPECT_TRUE(d.revert->switch_back);
  f.rollout_state = RolloutState::kPaused;
  EXPECT_EQ(decide().act, OfferAct::kNothing);
  f.rollout_state = RolloutState::kRollingBack;
  q.revert.reset();
  EXPECT_EQ(decide().act, OfferAct::kNothing);
  device.installed = {{"firmware", "1.0.0"}};
  EXPECT_EQ(decide().act, OfferAct::kSucceeded);
}

TEST_F(DecideOffer, FinishedDeploymentsGetNothing) {
  for (DeploymentState s :
       {DeploymentState::kSucceeded, DeploymentState::kFailed, DeploymentState::kSkipped,
        DeploymentState::kCancelled, DeploymentState::kReverted, DeploymentState::kRolledBack}) {
    f.state = s;
    q.asked.clear();
    EXPECT_EQ(decide().act, OfferAct::kNothing) << to_string(s);
    EXPECT_TRUE(q.asked.empty());
  }
}

}  // namespace
}  // namespace drover
