// Devices that stop checking in: out of the counts past their check-in contract, back in
// when heard again, and a failure when the silence falls in their watch after a commit
// (docs/gates.md, "Silent devices"). Also the reasons devices were never offered.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "../common/fleet_fixture.h"

namespace drover {
namespace {

using testing::Fleet;
using testing::simple_plan;
using E = protocol::Report;
using S = DeploymentState;

Deployment deployment(Fleet& f, const std::string& rollout, const std::string& dev) {
  auto d = f.store().get_deployment(rollout, dev);
  EXPECT_TRUE(d.ok() && d->has_value());
  return d.ok() && d->has_value() ? **d : Deployment{};
}

std::vector<EngineEvent> events_of(const std::vector<EngineEvent>& all, EngineEvent::Kind k) {
  std::vector<EngineEvent> out;
  std::copy_if(all.begin(), all.end(), std::back_inserter(out),
               [&](const EngineEvent& e) { return e.kind == k; });
  return out;
}

// Provisions one device of connectivity class `connectivity`; returns its id.
std::string add_device(Fleet& f, const std::string& id, const std::string& connectivity) {
  Device d;
  d.id = id;
  d.device_type = "ctl";
  d.hardware_revision = "rev-a";
  d.site = "open";
  d.connectivity = connectivity;
  d.installed = {{"bootloader", "2.0.0"}, {"firmware", "1.0.0"}};
  EXPECT_TRUE(f.service->provision({d}).ok());
  f.ids.push_back(id);
  return id;
}

TEST(EngineSilence, DevicesThatNeverCheckInStopBlockingTheRollout) {
  Fleet f;
  f.add_devices(10, "rev-a");
  std::vector<EngineEvent> events;
  f.engine->set_listener([&](const EngineEvent& e) { events.push_back(e); });
  const std::string id = f.start(simple_plan({{"all", 100, 0, Duration(0)}}));
  // Eight install; two never check in at all.
  for (size_t k = 0; k < 8; ++k) {
    auto o = f.check_in(f.ids[k]);
    ASSERT_TRUE(o.has_value());
    f.install(f.ids[k], *o);
  }
  f.clock.advance(hours(23));
  EXPECT_TRUE(f.engine->tick().ok());
  EXPECT_EQ(f.engine->get(id)->state, RolloutState::kRunning);  // within the 24 h contract
  EXPECT_EQ(f.state_of(id, f.ids[8]), S::kPending);

  f.clock.advance(hours(2));
  EXPECT_TRUE(f.engine->tick().ok());
  EXPECT_EQ(f.state_of(id, f.ids[8]), S::kSilent);
  EXPECT_EQ(f.state_of(id, f.ids[9]), S::kSilent);
  EXPECT_TRUE(f.engine->tick().ok());
  ASSERT_EQ(f.engine->get(id)->state, RolloutState::kCompletedPartial);
  auto p = f.engine->progress(id);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->outcome.updated, 8u);
  EXPECT_EQ(p->outcome.silent, 2u);
  EXPECT_EQ(p->outcome.failed(), 0u);  // silence before an outcome is no failure
  const auto silent = events_of(events, EngineEvent::Kind::kDevicesSilent);
  ASSERT_EQ(silent.size(), 1u);
  EXPECT_NE(silent[0].text.find("2 device(s) silent past their check-in contract"),
            std::string::npos)
      << silent[0].text;
  const auto done = events_of(events, EngineEvent::Kind::kCompletedPartial);
  ASSERT_EQ(done.size(), 1u);
  EXPECT_NE(done[0].text.find("2 silent past their check-in contract"), std::string::npos)
      << done[0].text;
  // The history says why.
  auto steps = f.store().list_deployment_steps(id, f.ids[8]);
  ASSERT_TRUE(steps.ok());
  ASSERT_FALSE(steps->empty());
  EXPECT_EQ(steps->back().event, "silence");
  EXPECT_NE(steps->back().message.find("its check-in contract allows 1d"), std::string::npos)
      << steps->back().message;
}

TEST(EngineSilence, ASilentDeviceLeavesTheGatesAndNobodyWaitsForIt) {
  Fleet f;
  f.add_devices(6, "rev-a");
  const std::string id = f.start(simple_plan({{"all", 100, 0, Duration(0)}}));
  std::vector<UpdateOffer> offers;
  for (const auto& dev : f.ids) {
    auto o = f.check_in(dev);
    ASSERT_TRUE(o.has_value());
    offers.push_back(*o);
  }
  // Two start downloading and go quiet; the rest finish.
  ASSERT_TRUE(f.report(f.ids[0], offers[0], E::kDownloading).ok());
  ASSERT_TRUE(f.report(f.ids[1], offers[1], E::kDownloading).ok());
  for (size_t k = 2; k < f.ids.size(); ++k) f.install(f.ids[k], offers[k]);
  f.clock.advance(hours(25));
  for (size_t k = 2; k < f.ids.size(); ++k) EXPECT_FALSE(f.check_in(f.ids[k]).has_value());
  EXPECT_TRUE(f.engine->tick().ok());
  EXPECT_EQ(f.state_of(id, f.ids[0]), S::kSilent);
  auto summary = f.engine->summary(id);
  ASSERT_TRUE(summary.ok());
  EXPECT_EQ(summary->total.in_flight(), 0u);  // nobody waits for them
  auto p = f.engine->progress(id);
  ASSERT_TRUE(p.ok());
  uint32_t judged = 0;
  for (const auto& s : p->strata) judged += s.successes + s.failures;
  EXPECT_EQ(judged, 4u);  // the silent two are out of the gate
}

TEST(EngineSilence, ASilentDeviceIsOfferedAgainWhenItReturns) {
  Fleet g;
  g.add_devices(3, "rev-a");
  const std::string id2 = g.start(simple_plan({{"all", 100, 0, Duration(0)}}));
  auto o = g.check_in(g.ids[0]);
  ASSERT_TRUE(o.has_value());
  ASSERT_TRUE(g.report(g.ids[0], *o, E::kDownloading).ok());
  for (size_t k = 1; k < 3; ++k) {
    auto ok = g.check_in(g.ids[k]);
    ASSERT_TRUE(ok.has_value());
    ASSERT_TRUE(g.report(g.ids[k], *ok, E::kDownloading).ok());
  }
  // The third is slow but keeps checking in while it downloads: nobody gives up on it.
  for (int h = 0; h < 25; h += 5) {
    g.clock.advance(hours(5));
    ASSERT_TRUE(
        g.service->check_in({g.ids[2], g.installed(g.ids[2]), UpdateState::kDownloading}).ok());
  }
  EXPECT_TRUE(g.engine->tick().ok());
  ASSERT_EQ(g.state_of(id2, g.ids[2]), S::kDownloading);
  ASSERT_EQ(g.state_of(id2, g.ids[0]), S::kSilent);
  ASSERT_EQ(g.engine->get(id2)->state, RolloutState::kRunning);
  // Heard again, idle (it lost the download): offered afresh, back in the counts.
  auto again = g.check_in(g.ids[0]);
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(again->version, "2.0.0");
  const Deployment d = deployment(g, id2, g.ids[0]);
  EXPECT_EQ(d.state, S::kOffered);
  EXPECT_EQ(d.offers, 2u);
  g.install(g.ids[0], *again);
  EXPECT_EQ(g.state_of(id2, g.ids[0]), S::kSucceeded);
  // Another one reports straight away that it finished while out of reach.
  ASSERT_EQ(g.state_of(id2, g.ids[1]), S::kSilent);
  ASSERT_EQ(*g.report(g.ids[1], *o, E::kSucceeded), S::kSucceeded);
}

TEST(EngineSilence, SilenceWithinTheWatchIsAFailureOfTheNewVersion) {
  Fleet f;
  f.add_devices(10, "rev-a");
  f.add_devices(10, "rev-b");
  std::vector<EngineEvent> events;
  f.engine->set_listener([&](const EngineEvent& e) { events.push_back(e); });
  RolloutPlan plan = simple_plan({{"all", 100, 0, Duration(0)}});
  plan.watch = hours(48);
  const std::string id = f.start(plan);
  for (const auto& dev : f.ids) {
    auto o = f.check_in(dev);
    ASSERT_TRUE(o.has_value());
    f.install(dev, *o);
  }
  const Timestamp committed = f.clock.now();
  f.clock.advance(minutes(2));
  EXPECT_TRUE(f.engine->tick().ok());
  ASSERT_EQ(f.engine->get(id)->state, RolloutState::kWatching);
  // The new build bricks rev-b's network stack a few hours in; rev-a keeps checking in.
  f.clock.advance(hours(3));
  for (const auto& dev : f.ids) f.check_in(dev);
  for (int h = 0; h < 26; h += 2) {
    f.clock.advance(hours(2));
    for (const auto& dev : f.ids) {
      if (dev.starts_with("rev-a")) {
        EXPECT_FALSE(f.check_in(dev).has_value());
      }
    }
    EXPECT_TRUE(f.engine->tick().ok());
  }
  auto r = f.engine->get(id);
  ASSERT_EQ(r->halted.size(), 1u);
  EXPECT_EQ(r->halted[0].hardware_revision, "rev-b");
  const Deployment lost = deployment(f, id, "rev-b-open-11");
  EXPECT_EQ(lost.state, S::kRevertPending);  // a failure, sent back by the halt's policy
  EXPECT_NE(lost.error.find("after its commit, within its 2d watch"), std::string::npos)
      << lost.error;
  EXPECT_EQ(f.state_of(id, "rev-a-open-1"), S::kSucceeded);
  const auto silent = events_of(events, EngineEvent::Kind::kDevicesSilent);
  ASSERT_FALSE(silent.empty());
  EXPECT_NE(silent[0].text.find("10 device(s) went silent within their watch"), std::string::npos)
      << silent[0].text;
  auto p = f.engine->progress(id);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->outcome.reverting, 10u);
  EXPECT_EQ(p->outcome.failed_in_revert, 10u);
  EXPECT_EQ(p->outcome.failed(), 10u);
  // rev-a checks in until its watch is over, then goes quiet: a silence that starts after
  // the watch is nobody's failure.
  while (f.clock.now() < committed + hours(49)) {
    f.clock.advance(hours(2));
    for (const auto& dev : f.ids) {
      if (dev.starts_with("rev-a")) f.check_in(dev);
    }
    EXPECT_TRUE(f.engine->tick().ok());
  }
  EXPECT_EQ(f.engine->get(id)->state, RolloutState::kWatching);
  f.clock.advance(hours(26));
  EXPECT_TRUE(f.engine->tick().ok());
  EXPECT_EQ(f.state_of(id, "rev-a-open-1"), S::kSucceeded);
  // The watch (48 h) and then a contract (24 h) for silence that began within it are over.
  EXPECT_EQ(f.engine->get(id)->state, RolloutState::kCompletedPartial);
}

TEST(EngineSilence, ContractsFollowConnectivityClasses) {
  Fleet f;
  const std::string wired = add_device(f, "wired-1", "ethernet");
  const std::string sat = add_device(f, "sat-1", "satellite");
  const std::string unseen = add_device(f, "unseen-1", "ethernet");
  RolloutPlan plan = simple_plan({{"all", 100, 0, Duration(0)}});
  plan.contract.by_connectivity = {{"satellite", hours(72)}};
  const std::string id = f.start(plan);
  ASSERT_TRUE(f.check_in(wired).has_value());
  ASSERT_TRUE(f.check_in(sat).has_value());
  f.clock.advance(hours(30));
  EXPECT_TRUE(f.engine->tick().ok());
  EXPECT_EQ(f.state_of(id, wired), S::kSilent);
  EXPECT_EQ(f.state_of(id, sat), S::kOffered);  // 72 h for a satellite link
  // Never heard under this rollout: its class is unknown, so it gets the longest contract.
  EXPECT_EQ(f.state_of(id, unseen), S::kPending);
  f.clock.advance(hours(43));
  EXPECT_TRUE(f.engine->tick().ok());
  EXPECT_EQ(f.state_of(id, sat), S::kSilent);
  EXPECT_EQ(f.state_of(id, unseen), S::kSilent);
}

TEST(EngineSilence, AfterARestartSilenceCountsFromTheLoad) {
  Fleet f;
  f.add_devices(2, "rev-a");
  const std::string id = f.start(simple_plan({{"all", 100, 0, Duration(0)}}));
  ASSERT_TRUE(f.check_in(f.ids[0]).has_value());
  f.clock.advance(hours(20));
  f.restart();
  f.clock.advance(hours(20));  // 40 h since heard, 20 h since the restart
  EXPECT_TRUE(f.engine->tick().ok());
  EXPECT_EQ(f.state_of(id, f.ids[0]), S::kOffered);
  f.clock.advance(hours(5));
  EXPECT_TRUE(f.engine->tick().ok());
  EXPECT_EQ(f.state_of(id, f.ids[0]), S::kSilent);
}

TEST(EngineSilence, AContractOfZeroWaitsForever) {
  Fleet f;
  f.add_devices(2, "rev-a");
  RolloutPlan plan = simple_plan({{"all", 100, 0, Duration(0)}});
  plan.contract.max_silence = Duration(0);
  const std::string id = f.start(plan);
  f.clock.advance(hours(24 * 20));
  EXPECT_TRUE(f.engine->tick().ok());
  EXPECT_EQ(f.state_of(id, f.ids[0]), S::kPending);
  EXPECT_EQ(f.engine->get(id)->state, RolloutState::kRunning);
}

TEST(EngineSilence, NeverOfferedDevicesCarryTheirReason) {
  Fleet f;
  f.add_devices(20, "rev-a");
  f.add_devices(20, "rev-b");
  RolloutPlan plan = simple_plan({{"canary", 25, 0, minutes(10)}, {"all", 100, 0, Duration(0)}});
  plan.gate.max_failure_rate = 0.05;
  const std::string id = f.start(plan);
  // rev-b's canary fails, rev-a's installs.
  for (const auto& dev : f.ids) {
    auto o = f.check_in(dev);
    if (!o) continue;
    f.install(dev, *o, dev.starts_with("rev-b") ? E::kInstallFailed : E::kSucceeded);
  }
  EXPECT_TRUE(f.engine->tick().ok());
  auto r = f.engine->get(id);
  ASSERT_EQ(r->halted.size(), 1u);
  ASSERT_TRUE(f.engine->abort(id).ok());
  auto p = f.engine->progress(id);
  ASSERT_TRUE(p.ok());
  ASSERT_EQ(p->outcome.halted.size(), 1u);
  ASSERT_EQ(p->outcome.never_offered_why.size(), 2u);
  uint32_t total = 0;
  bool halted = false, aborted = false;
  for (const auto& w : p->outcome.never_offered_why) {
    total += w.devices;
    // The halted group's own count says the same.
    halted |= w.reason == "hardware_revision=rev-b halted" &&
              w.devices == p->outcome.halted[0].never_offered && w.devices > 0;
    aborted |= w.reason == "aborted by operator" && w.devices == 15;
  }
  EXPECT_TRUE(halted);
  EXPECT_TRUE(aborted);
  EXPECT_EQ(total, p->outcome.never_offered);
  auto steps = f.store().list_deployment_steps(id, "rev-b-open-40");
  ASSERT_TRUE(steps.ok());
  ASSERT_FALSE(steps->empty());
  EXPECT_EQ(steps->back().event, "cancel");
  EXPECT_EQ(steps->back().state, S::kCancelled);
}

// A device that holds its image for a window five days away was told it need not check in
// before then: its silence counts from the window, not from its last check-in.
TEST(EngineSilenceMore, AHolderIsNotSilentBeforeTheWindowItWasToldToWaitFor) {
  Fleet f;
  f.add_site(Site{"weekly", "UTC", {MaintenanceWindow{1 << 5, 2 * 60, 4 * 60}}});  // Sat 02-06
  f.add_devices(1, "rev-a", "weekly");
  RolloutPlan plan = simple_plan({{"all", 100, 0, Duration(0)}});
  plan.constraints.download_ahead = hours(24 * 7);
  const std::string id = f.start(plan);
  auto o = f.check_in(f.ids[0]);  // Monday 12:00
  ASSERT_TRUE(o.has_value());
  ASSERT_FALSE(o->windows.empty());
  const Timestamp window = o->windows.front().from;
  EXPECT_GT(window - f.clock.now(), hours(24 * 4));
  ASSERT_TRUE(f.report(f.ids[0], *o, E::kDownloading).ok());
  const HoldAnswer h = f.hold(f.ids[0], id);
  ASSERT_EQ(h.action, HoldAnswer::Action::kApply);
  f.clock.advance_to(window - hours(1));
  EXPECT_TRUE(f.engine->tick().ok());
  EXPECT_EQ(f.state_of(id, f.ids[0]), S::kDownloading);
  f.clock.advance_to(window + hours(25));
  EXPECT_TRUE(f.engine->tick().ok());
  EXPECT_EQ(f.state_of(id, f.ids[0]), S::kSilent) << "silent a contract past its window";
}

// Rolling back, a device that went silent mid-install may run the new image: the rollback
// ends incomplete, not "rolled back".
TEST(EngineSilenceMore, ARollbackWithADeviceSilentMidInstallEndsIncomplete) {
  Fleet f;
  f.add_devices(3, "rev-a");
  std::vector<EngineEvent> events;
  f.engine->set_listener([&](const EngineEvent& e) { events.push_back(e); });
  const std::string id = f.start(simple_plan({{"all", 100, 0, Duration(0)}}));
  std::vector<UpdateOffer> offers;
  for (const auto& dev : f.ids) offers.push_back(*f.check_in(dev));
  f.install(f.ids[0], offers[0]);
  f.install(f.ids[1], offers[1]);
  ASSERT_TRUE(f.report(f.ids[2], offers[2], E::kRebooting).ok());
  ASSERT_TRUE(f.engine->rollback(id).ok());
  for (int k = 0; k < 2; ++k) {
    auto back = f.check_in(f.ids[k]);
    ASSERT_TRUE(back.has_value() && back->revert);
    f.install(f.ids[k], *back);
  }
  f.clock.advance(hours(25));
  EXPECT_TRUE(f.engine->tick().ok());
  EXPECT_EQ(f.state_of(id, f.ids[2]), S::kSilent);
  EXPECT_TRUE(f.engine->tick().ok());
  ASSERT_EQ(f.engine->get(id)->state, RolloutState::kRollbackIncomplete);
  EXPECT_NE(events.back().text.find("1 went silent mid-install"), std::string::npos)
      << events.back().text;
}

// Heard again while the rollout watches after its last stage: it still gets the update, and
// the rollout waits for it.
TEST(EngineSilenceMore, ADeviceBackWhileTheRolloutWatchesIsStillUpdated) {
  Fleet f;
  f.add_devices(3, "rev-a");
  RolloutPlan plan = simple_plan({{"all", 100, 0, Duration(0)}});
  plan.watch = hours(48);
  const std::string id = f.start(plan);
  for (size_t k = 0; k < 2; ++k) f.install(f.ids[k], *f.check_in(f.ids[k]));
  for (int h = 0; h < 26; h += 2) {
    f.clock.advance(hours(2));
    for (size_t k = 0; k < 2; ++k) f.check_in(f.ids[k]);
    EXPECT_TRUE(f.engine->tick().ok());
  }
  ASSERT_EQ(f.state_of(id, f.ids[2]), S::kSilent);
  ASSERT_EQ(f.engine->get(id)->state, RolloutState::kWatching);
  auto o = f.check_in(f.ids[2]);
  ASSERT_TRUE(o.has_value());
  f.install(f.ids[2], *o);
  EXPECT_EQ(f.state_of(id, f.ids[2]), S::kSucceeded);
  // And a device that leaves the fleet while silent is skipped, not left silent.
  Fleet g;
  g.add_devices(2, "rev-a");
  const std::string id2 = g.start(simple_plan({{"all", 100, 0, Duration(0)}}));
  g.install(g.ids[0], *g.check_in(g.ids[0]));
  g.clock.advance(hours(25));
  EXPECT_TRUE(g.engine->tick().ok());
  ASSERT_EQ(g.state_of(id2, g.ids[1]), S::kSilent);
  ASSERT_TRUE(g.service->decommission(g.ids[1]).ok());
  EXPECT_EQ(g.state_of(id2, g.ids[1]), S::kSkipped);
}

}  // namespace
}  // namespace drover
