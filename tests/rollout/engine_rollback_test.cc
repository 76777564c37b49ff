// Rollback that does what it says (issue part 6): switch-back reverts, rollbacks that end
// incomplete and can be retried, halts that count what they cannot send back, deliberate
// downgrades, and every deployment's history.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "../common/fleet_fixture.h"
#include "rollout/engine.h"
#include "rollout/planner.h"

namespace drover::testing {
namespace {

using E = protocol::Report;
using S = DeploymentState;

// Reports `e` for the device's offer with a message and, for a success, what its other
// slot keeps.
Result<DeploymentState> say(Fleet& f, const std::string& id, const UpdateOffer& o, E e,
                            std::string_view message = {}, std::string_view standby = {}) {
  return f.service->report_status({id, o.rollout_id, o.version, e, message, standby});
}

// Every device of `f` installs its offer; those in `keeping` say their other slot keeps
// 1.0.0.
void install_all(Fleet& f, const std::set<std::string>& keeping) {
  for (const auto& dev : f.ids) {
    auto o = f.check_in(dev);
    ASSERT_TRUE(o.has_value()) << dev;
    for (E e : {E::kDownloading, E::kInstalling, E::kRebooting})
      ASSERT_TRUE(say(f, dev, *o, e).ok());
    ASSERT_TRUE(say(f, dev, *o, E::kSucceeded, {}, keeping.count(dev) ? "1.0.0" : "").ok());
    auto inv = f.installed(dev);
    for (auto& c : inv)
      if (c.component == "firmware") c.version = o->version;
    ASSERT_TRUE(
        f.service->check_in({dev, inv, UpdateState::kIdle, {}, keeping.count(dev) > 0}).ok());
  }
}

Deployment deployment(Fleet& f, const std::string& rollout, const std::string& dev) {
  auto d = f.store().get_deployment(rollout, dev);
  EXPECT_TRUE(d.ok() && d->has_value());
  return d.ok() && d->has_value() ? **d : Deployment{};
}

TEST(EngineRollback, ADeviceThatKeepsItsPreviousImageSwitchesBackWithNoArtifact) {
  Fleet f;
  f.add_devices(3, "rev-a");
  ASSERT_TRUE(f.engine->remove_artifact("firmware", "1.0.0").ok());
  const std::string id = f.start(simple_plan({{"all", 100, 0, Duration(0)}}));
  install_all(f, {f.ids[0], f.ids[1]});
  EXPECT_TRUE(deployment(f, id, f.ids[0]).switch_back);
  EXPECT_FALSE(deployment(f, id, f.ids[2]).switch_back);

  // The one device that keeps nothing cannot go back: refused, naming it.
  Status refused = f.engine->rollback(id);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("1 (" + f.ids[2] + ")"), std::string::npos)
      << refused.error().message;

  // Decommissioned, it is nobody's to send back: the rest switch back, and the rollback
  // ends incomplete, since that device still runs 2.0.0 as far as anyone knows.
  ASSERT_TRUE(f.service->decommission(f.ids[2]).ok());
  ASSERT_TRUE(f.engine->rollback(id).ok());
  for (int i = 0; i < 2; ++i) {
    auto o = f.check_in(f.ids[i]);
    ASSERT_TRUE(o.has_value());
    EXPECT_TRUE(o->switch_back);
    f.install(f.ids[i], *o);
  }
  EXPECT_TRUE(f.engine->tick().ok());
  EXPECT_EQ(f.engine->get(id)->state, RolloutState::kRollbackIncomplete);
}

TEST(EngineRollback, ASwitchBackOfferNamesTheKeptVersionAndCarriesNoDownload) {
  Fleet f;
  f.add_devices(2, "rev-a");
  ASSERT_TRUE(f.engine->remove_artifact("firmware", "1.0.0").ok());
  const std::string id = f.start(simple_plan({{"all", 100, 0, Duration(0)}}));
  install_all(f, {f.ids[0], f.ids[1]});
  ASSERT_TRUE(f.engine->rollback(id).ok());
  for (const auto& dev : f.ids) {
    auto o = f.check_in(dev);
    ASSERT_TRUE(o.has_value());
    EXPECT_TRUE(o->revert);
    EXPECT_TRUE(o->switch_back);
    EXPECT_EQ(o->version, "1.0.0");
    EXPECT_EQ(o->size_bytes, 0u);
    EXPECT_EQ(o->sha256, "");
    f.install(dev, *o);
    EXPECT_EQ(f.state_of(id, dev), S::kReverted);
  }
  EXPECT_TRUE(f.engine->tick().ok());
  EXPECT_EQ(f.engine->get(id)->state, RolloutState::kRolledBack);
  auto steps = f.store().list_deployment_steps(id, f.ids[0]);
  ASSERT_TRUE(steps.ok());
  bool said = false;
  for (const auto& s : *steps) said = said || s.message.find("no download") != std::string::npos;
  EXPECT_TRUE(said) << "the history says the revert switched slots";
}

// An operator following a fleet rollback hears how far it is, a tenth at a time (not once
// per device), with the failures among what is over; a retry tells its progress anew.
TEST(EngineRollback, ItsProgressIsToldEachTenthWithTheFailures) {
  Fleet f;
  f.add_devices(20, "rev-a");
  std::vector<std::string> told;
  f.engine->set_listener([&](const EngineEvent& e) {
    if (e.kind == EngineEvent::Kind::kRollbackProgress) told.push_back(e.text);
  });
  const std::string id = f.start(simple_plan({{"all", 100, 0, Duration(0)}}));
  install_all(f, {});
  ASSERT_TRUE(f.engine->rollback(id).ok());
  EXPECT_TRUE(f.engine->tick().ok());
  EXPECT_TRUE(told.empty()) << "nothing is over yet";
  for (size_t i = 0; i < f.ids.size(); ++i) {
    auto o = f.check_in(f.ids[i]);
    ASSERT_TRUE(o.has_value());
    f.install(f.ids[i], *o, i == 4 ? E::kRolledBack : E::kSucceeded);  // one revert fails
    EXPECT_TRUE(f.engine->tick().ok());
    EXPECT_EQ(told.size(), (i + 1) / 2) << "one line per tenth: after " << i + 1 << " devices";
  }
  ASSERT_EQ(told.size(), 10u);
  EXPECT_EQ(told[0],
            "rollback progress: 2 of 20 device(s) sent back (10%): 2 back on their "
            "previous version; 18 to go");
  EXPECT_EQ(told[2],
            "rollback progress: 6 of 20 device(s) sent back (30%): 5 back on their "
            "previous version, 1 revert(s) failed; 14 to go");
  EXPECT_EQ(told[9],
            "rollback progress: 20 of 20 device(s) sent back (100%): 19 back on their "
            "previous version, 1 revert(s) failed");
  EXPECT_EQ(f.engine->get(id)->state, RolloutState::kRollbackIncomplete);

  // The retry: the failed one is due again and told; then it is over.
  told.clear();
  ASSERT_TRUE(f.engine->rollback(id).ok());
  EXPECT_TRUE(f.engine->tick().ok());
  ASSERT_EQ(told.size(), 1u);
  EXPECT_NE(told[0].find("19 of 20"), std::string::npos) << told[0];
  EXPECT_NE(told[0].find("1 to go"), std::string::npos) << told[0];
  auto o = f.check_in(f.ids[4]);
  ASSERT_TRUE(o.has_value());
  f.install(f.ids[4], *o);
  EXPECT_TRUE(f.engine->tick().ok());
  ASSERT_EQ(told.size(), 2u);
  EXPECT_EQ(told[1],
            "rollback progress: 20 of 20 device(s) sent back (100%): 20 back on their "
            "previous version");
  EXPECT_EQ(f.engine->get(id)->state, RolloutState::kRolledBack);
}

TEST(EngineRollback, ARollbackWithAFailedRevertEndsIncompleteAndASecondOneRetriesIt) {
  Fleet f;
  f.add_devices(3, "rev-a");
  std::vector<EngineEvent> events;
  f.engine->set_listener([&](const EngineEvent& e) { events.push_back(e); });
  const std::string id = f.start(simple_plan({{"all", 100, 0, Duration(0)}}));
  install_all(f, {});
  ASSERT_TRUE(f.engine->rollback(id).ok());
  // Two go back; the third's old image fails to boot, so it still runs 2.0.0.
  for (size_t i = 0; i < f.ids.size(); ++i) {
    auto o = f.check_in(f.ids[i]);
    ASSERT_TRUE(o.has_value());
    f.install(f.ids[i], *o, i == 2 ? E::kRolledBack : E::kSucceeded);
  }
  EXPECT_EQ(f.state_of(id, f.ids[2]), S::kRevertFailed);
  EXPECT_TRUE(f.engine->tick().ok());
  EXPECT_EQ(f.engine->get(id)->state, RolloutState::kRollbackIncomplete)
      << "never rolled_back while a device runs the new version";
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().kind, EngineEvent::Kind::kRollbackIncomplete);
  EXPECT_NE(events.back().text.find("1 revert(s) failed"), std::string::npos) << events.back().text;
  EXPECT_TRUE(is_terminal(RolloutState::kRollbackIncomplete));

  // A second rollback retries just that device.
  ASSERT_TRUE(f.engine->rollback(id).ok());
  EXPECT_EQ(f.state_of(id, f.ids[2]), S::kRevertPending);
  EXPECT_EQ(f.state_of(id, f.ids[0]), S::kReverted);
  auto o = f.check_in(f.ids[2]);
  ASSERT_TRUE(o.has_value());
  f.install(f.ids[2], *o);
  EXPECT_TRUE(f.engine->tick().ok());
  EXPECT_EQ(f.engine->get(id)->state, RolloutState::kRolledBack);
}

TEST(EngineRollback, ARetryLeavesOutADeviceThatLeftTheFleet) {
  Fleet f;
  f.add_devices(2, "rev-a");
  const std::string id = f.start(simple_plan({{"all", 100, 0, Duration(0)}}));
  install_all(f, {});
  ASSERT_TRUE(f.engine->rollback(id).ok());
  for (const auto& dev : f.ids) {
    auto o = f.check_in(dev);
    ASSERT_TRUE(o.has_value());
    f.install(dev, *o, E::kInstallFailed);
  }
  EXPECT_TRUE(f.engine->tick().ok());
  ASSERT_EQ(f.engine->get(id)->state, RolloutState::kRollbackIncomplete);
  ASSERT_TRUE(f.service->decommission(f.ids[1]).ok());
  ASSERT_TRUE(f.engine->rollback(id).ok());
  EXPECT_EQ(f.state_of(id, f.ids[0]), S::kRevertPending);
  EXPECT_EQ(f.state_of(id, f.ids[1]), S::kRevertFailed) << "a device that left is not waited for";
}

// Left the fleet before the rollback, it would never check in to take a revert: none is
// sent, the others go back, and the rollback ends incomplete instead of waiting forever.
TEST(EngineRollback, ADeviceThatLeftBeforeTheRollbackIsNotWaitedFor) {
  Fleet f;
  f.add_devices(3, "rev-a");
  const std::string id = f.start(simple_plan({{"all", 100, 0, Duration(0)}}));
  install_all(f, {});
  ASSERT_TRUE(f.service->decommission(f.ids[2]).ok());
  // After a restart too: the registry tells the engine again who has left.
  f.restart();
  ASSERT_TRUE(f.engine->rollback(id).ok());
  EXPECT_EQ(f.state_of(id, f.ids[2]), S::kSucceeded);
  for (int i = 0; i < 2; ++i) {
    auto o = f.check_in(f.ids[i]);
    ASSERT_TRUE(o.has_value());
    f.install(f.ids[i], *o);
  }
  EXPECT_TRUE(f.engine->tick().ok());
  EXPECT_EQ(f.engine->get(id)->state, RolloutState::kRollbackIncomplete);
}

TEST(EngineRollback, AHaltThatCannotSendDevicesBackSaysHowMany) {
  Fleet f;
  f.add_devices(6, "rev-b");
  std::vector<EngineEvent> events;
  f.engine->set_listener([&](const EngineEvent& e) { events.push_back(e); });
  ASSERT_TRUE(f.engine->remove_artifact("firmware", "1.0.0").ok());
  RolloutPlan plan = simple_plan({{"all", 100, 0, Duration(0)}});
  plan.gate.min_sample = 4;
  const std::string id = f.start(plan);
  // Two commit (one keeps its old image), then the trial boots fail until the gate halts.
  for (size_t i = 0; i < f.ids.size(); ++i) {
    auto o = f.check_in(f.ids[i]);
    if (!o) break;
    for (E e : {E::kDownloading, E::kInstalling, E::kRebooting}) (void)say(f, f.ids[i], *o, e);
    if (i < 2) {
      ASSERT_TRUE(say(f, f.ids[i], *o, E::kSucceeded, {}, i == 0 ? "1.0.0" : "").ok());
    } else {
      (void)say(f, f.ids[i], *o, E::kRolledBack, "the trial boot failed");
    }
  }
  auto p = f.engine->progress(id);
  ASSERT_TRUE(p.ok());
  ASSERT_EQ(p->outcome.halted.size(), 1u);
  EXPECT_EQ(p->outcome.halted[0].not_reverted, 1u) << "one keeps nothing, and 1.0.0 is gone";
  EXPECT_EQ(f.state_of(id, f.ids[0]), S::kRevertPending) << "the other switches back";
  EXPECT_EQ(f.state_of(id, f.ids[1]), S::kSucceeded);
  bool said = false;
  for (const auto& e : events)
    said = said || (e.kind == EngineEvent::Kind::kStratumHalted &&
                    e.text.find("1 cannot be sent back") != std::string::npos);
  EXPECT_TRUE(said);
}

// A device that left the fleet on the new version is not sent back by a halt: the halt's
// event says so, and the group's not_reverted counts it like one without a previous image.
TEST(EngineRollback, AHaltCountsTheDevicesThatLeftTheFleetOnTheNewVersion) {
  Fleet f;
  f.add_devices(6, "rev-b");
  std::vector<EngineEvent> events;
  f.engine->set_listener([&](const EngineEvent& e) { events.push_back(e); });
  RolloutPlan plan = simple_plan({{"all", 100, 0, Duration(0)}});
  plan.gate.min_sample = 4;
  const std::string id = f.start(plan);
  std::vector<UpdateOffer> offers;
  for (const auto& dev : f.ids) {
    auto o = f.check_in(dev);
    ASSERT_TRUE(o.has_value());
    offers.push_back(*o);
  }
  ASSERT_TRUE(say(f, f.ids[0], offers[0], E::kSucceeded).ok());
  ASSERT_TRUE(f.service->decommission(f.ids[0]).ok());
  for (size_t i = 1; i < f.ids.size(); ++i)
    (void)say(f, f.ids[i], offers[i], E::kRolledBack, "the trial boot failed");
  auto p = f.engine->progress(id);
  ASSERT_TRUE(p.ok());
  ASSERT_EQ(p->outcome.halted.size(), 1u);
  EXPECT_EQ(p->outcome.halted[0].not_reverted, 1u);
  EXPECT_EQ(f.state_of(id, f.ids[0]), S::kSucceeded);
  bool said = false;
  for (const auto& e : events)
    said = said || (e.kind == EngineEvent::Kind::kStratumHalted &&
                    e.text.find("1 left the fleet on the new version") != std::string::npos);
  EXPECT_TRUE(said);
}

// A rollout over for longer than the engine keeps finished ones loaded can still be rolled
// back: it is loaded again.
TEST(EngineRollback, ARolloutOverLongAgoCanStillBeRolledBack) {
  Fleet f;
  f.add_devices(2, "rev-a");
  const std::string id = f.start(simple_plan({{"all", 100, 0, Duration(0)}}));
  install_all(f, {});
  for (int tick = 0; tick < 3; ++tick) {
    f.clock.advance(minutes(1));
    EXPECT_TRUE(f.engine->tick().ok());
  }
  ASSERT_EQ(f.engine->get(id)->state, RolloutState::kCompleted);
  f.clock.advance(hours(24 * 8));
  f.restart();
  auto loaded = f.engine->loaded_rollouts();
  ASSERT_TRUE(std::find(loaded.begin(), loaded.end(), id) == loaded.end()) << "unloaded";
  ASSERT_TRUE(f.engine->rollback(id).ok());
  EXPECT_EQ(f.engine->get(id)->state, RolloutState::kRollingBack);
  auto o = f.check_in(f.ids[0]);
  ASSERT_TRUE(o.has_value());
  EXPECT_TRUE(o->revert);
  EXPECT_EQ(o->version, "1.0.0");
  EXPECT_EQ(f.engine->rollback("rollout-9999").error().code, ErrorCode::kNotFound);
}

// A device a later rollout has updated since is not sent back behind that rollout's back;
// one that is back on its previous version already needs nothing sent.
TEST(EngineRollback, ARevertSkipsADeviceThatMovedOnAndCountsOneAlreadyBack) {
  Fleet f;
  f.add_devices(3, "rev-a");
  const std::string id = f.start(simple_plan({{"all", 100, 0, Duration(0)}}));
  install_all(f, {});
  ASSERT_TRUE(f.engine->rollback(id).ok());
  auto runs = [&](const std::string& dev, const char* version) {
    auto inv = f.installed(dev);
    for (auto& c : inv)
      if (c.component == "firmware") c.version = version;
    auto r = f.service->check_in({dev, inv, UpdateState::kIdle});
    ASSERT_TRUE(r.ok());
    EXPECT_FALSE(r->offer.has_value()) << dev;
  };
  runs(f.ids[0], "3.0.0");
  runs(f.ids[1], "1.0.0");
  EXPECT_EQ(f.state_of(id, f.ids[0]), S::kRevertFailed);
  EXPECT_EQ(f.state_of(id, f.ids[1]), S::kReverted);
  auto steps = f.store().list_deployment_steps(id, f.ids[0]);
  ASSERT_TRUE(steps.ok() && !steps->empty());
  EXPECT_EQ(steps->back().message, "not sent back: it runs 3.0.0 now, not 2.0.0");
}

TEST(EngineRollback, EveryStepIsInTheDeploymentHistoryWithTheDevicesWords) {
  Fleet f;
  f.add_devices(1, "rev-a");
  const std::string id = f.start(simple_plan({{"all", 100, 0, Duration(0)}}));
  const std::string dev = f.ids[0];
  auto o = f.check_in(dev);
  ASSERT_TRUE(o.has_value());
  ASSERT_TRUE(say(f, dev, *o, E::kDownloading).ok());
  ASSERT_TRUE(say(f, dev, *o, E::kDownloading).ok());  // a repeat is no new step
  ASSERT_TRUE(say(f, dev, *o, E::kInstalling).ok());
  // A terminal escape and a message far too long: cleaned and cut, never refused here.
  const std::string words =
      "health check 'app' failed: exit 3\x1b[2J; output: " + std::string(3000, 'x') + "\xc3\xa9";
  ASSERT_TRUE(say(f, dev, *o, E::kInstallFailed, words).ok());
  auto steps = f.store().list_deployment_steps(id, dev);
  ASSERT_TRUE(steps.ok());
  ASSERT_EQ(steps->size(), 4u);
  EXPECT_EQ((*steps)[0].event, "offer");
  EXPECT_EQ((*steps)[0].state, S::kOffered);
  EXPECT_EQ((*steps)[1].event, "downloading");
  EXPECT_EQ((*steps)[2].event, "installing");
  EXPECT_EQ((*steps)[3].event, "failed");
  EXPECT_EQ((*steps)[3].state, S::kFailed);
  const std::string& kept = (*steps)[3].message;
  EXPECT_EQ(kept.size(), kMaxStepMessage);
  EXPECT_EQ(kept.find('\x1b'), std::string::npos);
  EXPECT_EQ(kept.rfind("health check 'app' failed: exit 3?[2J", 0), 0u) << kept.substr(0, 60);
  for (size_t k = 1; k < steps->size(); ++k) EXPECT_GE((*steps)[k].at, (*steps)[k - 1].at);
}

TEST(EngineRollback, ADowngradeMustBeAskedForAndIsRecordedWithItsAuthor) {
  Fleet f;
  f.add_devices(3, "rev-a", "open", "ctl", "2.0.0");
  std::vector<EngineEvent> events;
  f.engine->set_listener([&](const EngineEvent& e) { events.push_back(e); });
  RolloutPlan plan = simple_plan({{"all", 100, 0, Duration(0)}});
  plan.artifact_version = "1.0.0";
  const std::string plain = f.start(plan);
  EXPECT_EQ(f.engine->get(plain)->targets, 0u) << "without allow_downgrade nothing goes down";
  f.clock.advance(minutes(2));
  EXPECT_TRUE(f.engine->tick().ok());

  plan.allow_downgrade = true;
  auto r = f.engine->create(plan, "alice-admin");
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(r->created_by, "alice-admin");
  ASSERT_TRUE(f.engine->start(r->id).ok());
  EXPECT_EQ(f.engine->get(r->id)->targets, 3u);
  bool said = false;
  for (const auto& e : events)
    said = said || e.text.find("a downgrade to 1.0.0, created by alice-admin") != std::string::npos;
  EXPECT_TRUE(said);
  for (const auto& dev : f.ids) {
    auto o = f.check_in(dev);
    ASSERT_TRUE(o.has_value());
    EXPECT_EQ(o->version, "1.0.0");
    f.install(dev, *o);
    EXPECT_EQ(f.state_of(r->id, dev), S::kSucceeded);
  }
}

TEST(Planner, RevertGapsNameTargetsThatNeitherKeepTheirImageNorHaveItUploaded) {
  std::vector<PreviousVersion> previous = {
      {"", 2, 0, {"new-1", "new-2"}},
      {"1.0.0", 5, 5, {}},
      {"1.1.0", 4, 1, {"b-1", "b-2", "b-3"}},
      {"1.2.0", 3, 0, {"c-1", "c-2", "c-3"}},
  };
  auto gaps = revert_gaps(previous, [](const std::string& v) { return v == "1.2.0"; });
  ASSERT_EQ(gaps.size(), 2u);
  EXPECT_EQ(gaps[0].version, "");
  EXPECT_EQ(gaps[0].devices, 2u);
  EXPECT_NE(gaps[0].reason().find("nothing to go back to"), std::string::npos);
  EXPECT_EQ(gaps[1].version, "1.1.0");
  EXPECT_EQ(gaps[1].devices, 3u) << "the one that keeps its image is not a gap";
  EXPECT_EQ(gaps[1].examples.front(), "b-1");
}

TEST(Planner, TargetsAreGroupedByTheVersionARevertWouldSendThemBackTo) {
  std::vector<Device> devices;
  for (int i = 0; i < 4; ++i) {
    Device d;
    d.id = "d-" + std::to_string(i);
    d.device_type = "ctl";
    d.hardware_revision = "rev-a";
    if (i < 3) d.installed = {{"firmware", i == 0 ? "1.0.0" : "1.1.0"}};
    d.keeps_previous = i == 1;
    devices.push_back(d);
  }
  Artifact art;
  art.name = "firmware";
  art.version = "2.0.0";
  art.device_types = {"ctl"};
  const TargetSet t = plan_targets(simple_plan({{"all", 100, 0, Duration(0)}}), art, devices, "r");
  ASSERT_EQ(t.previous.size(), 3u);
  EXPECT_EQ(t.previous[0].version, "");
  EXPECT_EQ(t.previous[0].examples, std::vector<std::string>{"d-3"});
  EXPECT_EQ(t.previous[1].version, "1.0.0");
  EXPECT_EQ(t.previous[2].version, "1.1.0");
  EXPECT_EQ(t.previous[2].devices, 2u);
  EXPECT_EQ(t.previous[2].keep_image, 1u);
  EXPECT_EQ(t.previous[2].examples, std::vector<std::string>{"d-2"});
}

}  // namespace
}  // namespace drover::testing
