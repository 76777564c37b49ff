#include "rollout/engine.h"

#include <gtest/gtest.h>

#include <map>
#include <set>

#include "../common/fleet_fixture.h"
#include "../common/forwarding_store.h"

namespace drover::testing {
namespace {

using E = protocol::Report;
using S = DeploymentState;

TEST(Engine, IncompatibleDevicesAreNeverOffered) {
  Fleet f;
  f.add_devices(4, "rev-a");
  f.add_devices(2, "rev-a", "open", "other-type");
  f.add_devices(2, "rev-z");  // the artifact is built for rev-a and rev-b only
  // A device whose bootloader is too old for the artifact's depends.
  Device old;
  old.id = "old-bootloader";
  old.device_type = "ctl";
  old.hardware_revision = "rev-a";
  old.site = "open";
  old.installed = {{"bootloader", "1.0.0"}, {"firmware", "1.0.0"}};
  ASSERT_TRUE(f.service->provision({old}).ok());
  Artifact a = firmware("2.0.0", {"rev-a", "rev-b"});
  a.depends = {{"bootloader", ">=2.0.0"}};
  WriteBatch b;
  b.artifacts.push_back(a);
  ASSERT_TRUE(f.store().apply(b).ok());
  f.restart();

  const std::string id = f.start(simple_plan({{"all", 100, 0, Duration(0)}}));
  EXPECT_EQ(f.engine->get(id)->targets, 4u);
  std::set<std::string> offered;
  for (int round = 0; round < 3; ++round) {
    for (const auto& dev : f.ids) {
      if (auto o = f.check_in(dev)) {
        offered.insert(dev);
        f.install(dev, *o);
      }
    }
    for (const char* dev : {"old-bootloader"}) EXPECT_FALSE(f.check_in(dev).has_value());
    f.clock.advance(minutes(5));
  }
  EXPECT_EQ(offered.size(), 4u);
  for (const auto& dev : offered) EXPECT_EQ(dev.rfind("rev-a-open-", 0), 0u) << dev;
  for (const auto& dev : f.ids) {
    auto d = f.service->device(dev);
    if (d->device_type != "ctl" || d->hardware_revision != "rev-a") {
      EXPECT_EQ(offered.count(dev), 0u) << dev;
    }
  }
  EXPECT_EQ(f.engine->get(id)->state, RolloutState::kCompleted);
}

// With signed update metadata on, only an artifact the signed targets list is rolled out:
// a rollout of any other is refused, and when a target stops being signed mid-rollout no
// device is offered it from then on (a revert to the version a device ran is not held back).
TEST(Engine, OnlyArtifactsWithSignedTargetsAreRolledOutAndOffered) {
  Fleet f;
  std::set<std::string> signed_keys = {"firmware@2.0.0"};
  f.engine_options.offerable = [&signed_keys](const Artifact& a) {
    return signed_keys.count(a.key()) > 0;
  };
  f.add_devices(4, "rev-a");
  f.restart();

  RolloutPlan unsigned_plan = simple_plan({{"all", 100, 0, Duration(0)}});
  unsigned_plan.artifact_version = "1.0.0";
  auto refused = f.engine->create(unsigned_plan);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::kFailedPrecondition);
  EXPECT_NE(refused.error().message.find("firmware@1.0.0 is not in the signed update metadata"),
            std::string::npos)
      << refused.error().message;

  const std::string id = f.start(simple_plan({{"all", 100, 0, Duration(0)}}));
  auto first = f.check_in(f.ids[0]);
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->version, "2.0.0");
  // The target is no longer signed: the other devices get nothing, the rollout waits.
  signed_keys.clear();
  for (size_t i = 1; i < f.ids.size(); ++i) EXPECT_FALSE(f.check_in(f.ids[i]).has_value());
  EXPECT_EQ(f.engine->progress(id)->rollout.state, RolloutState::kRunning);
  EXPECT_EQ(f.engine->stage_insights(id)->at(0).bound_by(), "unsigned");
  // Signed again, it is offered again.
  signed_keys.insert("firmware@2.0.0");
  EXPECT_TRUE(f.check_in(f.ids[1]).has_value());

  // A fleet rollback sends the updated device back although nothing is signed any more.
  f.install(f.ids[0], *first);
  signed_keys.clear();
  ASSERT_TRUE(f.engine->rollback(id).ok());
  auto back = f.check_in(f.ids[0]);
  ASSERT_TRUE(back.has_value());
  EXPECT_TRUE(back->revert);
  EXPECT_EQ(back->version, "1.0.0");
}

// After a write succeeds, reading it back could still fail (I/O): the engine must not need
// to, or the store would hold a rollout that memory does not.
class ReadsFailAfterAWrite final : public ForwardingStore {
 public:
  using ForwardingStore::ForwardingStore;
  bool armed = false;  // the next successful write starts failing reads
  bool failing = false;

  Status apply(const WriteBatch& b) override {
    Status st = ForwardingStore::apply(b);
    if (st.ok() && armed) failing = true;
    return st;
  }
  Result<std::optional<Artifact>> get_artifact(std::string_view n, std::string_view v) override {
    if (failing) return Error{ErrorCode::kIo, "read failed"};
    return ForwardingStore::get_artifact(n, v);
  }
  Result<std::vector<Deployment>> list_deployments(std::string_view r) override {
    if (failing) return Error{ErrorCode::kIo, "read failed"};
    return ForwardingStore::list_deployments(r);
  }
};

TEST(Engine, CreateAndStartNeverReadBackWhatTheyWrote) {
  auto owned = std::make_unique<ReadsFailAfterAWrite>(make_memory_store());
  ReadsFailAfterAWrite& store = *owned;
  Fleet f(at("2026-06-01T12:00:00Z"), std::move(owned));
  f.add_devices(4, "rev-a");

  store.armed = true;
  auto created = f.engine->create(simple_plan({{"all", 100, 0, Duration(0)}}));
  ASSERT_TRUE(created.ok()) << created.error().to_string();
  ASSERT_TRUE(store.failing);  // the write went through; reads fail from here on
  store.failing = false;
  ASSERT_TRUE(f.engine->start(created->id).ok());
  ASSERT_TRUE(store.failing);
  store.armed = store.failing = false;

  // Memory agrees with the store: the rollout runs and offers, and a restart sees the same.
  auto progress = f.engine->progress(created->id);
  ASSERT_TRUE(progress.ok());
  EXPECT_EQ(progress->rollout.targets, 4u);
  EXPECT_TRUE(f.check_in(f.ids[0]).has_value());
  f.restart();
  EXPECT_EQ(f.engine->progress(created->id)->rollout.targets, 4u);
}

// A paused stratum that the operator resumes is judged afresh: the failures that halted it
// do not halt it again at its next report, new ones do, and a restart keeps the window.
TEST(Engine, ResumeStartsANewGateWindow) {
  Fleet f;
  f.add_devices(6, "rev-a");
  f.add_devices(20, "rev-b");
  RolloutPlan plan = simple_plan({{"all", 100, 0, Duration(0)}});
  plan.on_failure = FailurePolicy::kPause;
  plan.constraints.max_in_flight = 1;  // one device at a time: outcomes arrive one by one
  const std::string id = f.start(plan);
  auto run = [&](const std::string& prefix, E outcome, int devices) {
    int done = 0;
    for (int round = 0; round < 40 && done < devices; ++round) {
      for (const auto& dev : f.ids) {
        if (!dev.starts_with(prefix) || done == devices) continue;
        if (auto o = f.check_in(dev)) {
          f.install(dev, *o, outcome);
          ++done;
        }
      }
      f.clock.advance(minutes(1));
    }
    return done;
  };
  // rev-b fails until its gate halts it: 3 failures in a row, as rev-a has no outcomes to
  // compare with.
  EXPECT_EQ(run("rev-b", E::kRolledBack, 3), 3);
  ASSERT_EQ(f.engine->get(id)->halted.size(), 1u);
  EXPECT_EQ(f.engine->get(id)->state, RolloutState::kRunning);  // rev-a goes on

  f.clock.advance(minutes(5));
  ASSERT_TRUE(f.engine->resume(id).ok());
  EXPECT_TRUE(f.engine->get(id)->halted.empty());
  // Two successes after the resume: the old failures alone would halt again at once.
  EXPECT_EQ(run("rev-b", E::kSucceeded, 2), 2);
  EXPECT_TRUE(f.engine->get(id)->halted.empty());

  f.restart();  // the window survives a restart
  EXPECT_EQ(run("rev-b", E::kSucceeded, 1), 1);
  EXPECT_TRUE(f.engine->get(id)->halted.empty());
  // New failures are judged as ever: after 3 successes since the resume, 2 failures are not
  // yet enough for rev-b's test, the 3rd is, and no further offer goes there.
  EXPECT_EQ(run("rev-b", E::kRolledBack, 5), 3);
  auto r = f.engine->get(id);
  ASSERT_EQ(r->halted.size(), 1u);
  EXPECT_EQ(r->halted[0].hardware_revision, "rev-b");
  EXPECT_GT(r->gates_from, Timestamp{});
}

// With download_in_window, the offer itself waits for the window.
TEST(Engine, WithDownloadInWindowOffersOnlyInsideTheSiteMaintenanceWindow) {
  Fleet f(at("2026-06-01T12:00:00Z"));
  // 02:00-04:00 in Berlin is 00:00-02:00 UTC in summer.
  f.add_site(Site{"berlin", "Europe/Berlin", {{0x7f, 2 * 60, 120}}});
  f.add_devices(2, "rev-a", "berlin");
  RolloutPlan plan = simple_plan({{"all", 100, 0, Duration(0)}});
  plan.constraints.download_in_window = true;
  f.start(plan);
  for (int minute = 0; minute < 12 * 60; minute += 7) {
    EXPECT_FALSE(f.check_in(f.ids[0]).has_value())
        << "offered at " << format_utc_timestamp(f.clock.now());
    f.clock.advance(minutes(7));
  }
  f.clock.advance_to(at("2026-06-02T00:10:00Z"));
  auto o = f.check_in(f.ids[0]);
  ASSERT_TRUE(o.has_value());
  ASSERT_FALSE(o->windows.empty());
  // Open now, until 02:00: sent as open since kClockSkew before now, so a device whose clock
  // is behind the server's sees it open too.
  EXPECT_EQ(o->windows[0].from, at("2026-06-02T00:10:00Z") - kClockSkew);
  EXPECT_EQ(o->windows[0].until, at("2026-06-02T02:00:00Z"));
  f.clock.advance_to(at("2026-06-02T02:00:00Z"));  // closed again
  EXPECT_FALSE(f.check_in(f.ids[1]).has_value());
}

// By default the download runs ahead: the offer comes once the window opens within
// download_ahead, and carries the windows (UTC, a week of them) in which to install.
TEST(Engine, AnOfferComesAheadOfTheWindowAndCarriesTheWindowsToInstallIn) {
  Fleet f(at("2026-06-01T12:00:00Z"));
  f.add_site(Site{"berlin", "Europe/Berlin", {{0x7f, 2 * 60, 120}}});
  f.add_devices(1, "rev-a", "berlin");
  RolloutPlan plan = simple_plan({{"all", 100, 0, Duration(0)}});
  plan.constraints.download_ahead = hours(6);
  f.start(plan);
  EXPECT_FALSE(f.check_in(f.ids[0]).has_value()) << "the window is 12 h away";
  f.clock.advance_to(at("2026-06-01T18:30:00Z"));
  auto o = f.check_in(f.ids[0]);
  ASSERT_TRUE(o.has_value());
  ASSERT_EQ(o->windows.size(), 7u);  // one a night for a week
  for (size_t k = 0; k < o->windows.size(); ++k) {
    EXPECT_EQ(o->windows[k].from, at("2026-06-02T00:00:00Z") + hours(24 * k));
    EXPECT_EQ(o->windows[k].until - o->windows[k].from, hours(2));
  }
}

// A device's quiet hours cut its site's windows; an always-open site with no quiet hours
// puts no constraint on the offer at all.
TEST(Engine, QuietHoursNarrowTheWindowsAnOfferCarries) {
  Fleet f(at("2026-06-01T23:00:00Z"));
  f.add_site(Site{"berlin", "Europe/Berlin", {{0x7f, 2 * 60, 120}}});
  f.add_devices(1, "rev-a", "berlin");
  f.add_devices(1, "rev-a");  // the always-open site
  ASSERT_TRUE(f.service
                  ->update(f.ids[0],
                           [](Device& d) {
                             d.quiet_hours = {{0x7f, 2 * 60 + 30, 30}};  // 02:30-03:00 local
                             return ok_status();
                           })
                  .ok());
  f.start(simple_plan({{"all", 100, 0, Duration(0)}}));
  auto o = f.check_in(f.ids[0]);
  ASSERT_TRUE(o.has_value());
  ASSERT_GE(o->windows.size(), 2u);
  EXPECT_EQ(o->windows[0].from, at("2026-06-02T00:00:00Z"));
  EXPECT_EQ(o->windows[0].until, at("2026-06-02T00:30:00Z"));
  EXPECT_EQ(o->windows[1].from, at("2026-06-02T01:00:00Z"));
  EXPECT_EQ(o->windows[1].until, at("2026-06-02T02:00:00Z"));
  auto open = f.check_in(f.ids[1]);
  ASSERT_TRUE(open.has_value());
  EXPECT_TRUE(open->windows.empty());
}

// A device holding the image asks before installing: it is told to apply (with its
// windows), to wait while the rollout is paused, and to drop the image once its group is
// halted — and the deployment is then withdrawn (cancelled, with the reason), not failed.
TEST(Engine, ADeviceHoldingTheImageIsToldToApplyWaitOrDropIt) {
  Fleet f(at("2026-06-01T18:30:00Z"));
  f.add_site(Site{"berlin", "Europe/Berlin", {{0x7f, 2 * 60, 120}}});
  f.add_devices(2, "rev-a", "berlin");
  const std::string id = f.start(simple_plan({{"all", 100, 0, Duration(0)}}));
  auto o = f.check_in(f.ids[0]);
  ASSERT_TRUE(o.has_value());
  ASSERT_TRUE(f.report(f.ids[0], *o, E::kDownloading).ok());
  HoldAnswer h = f.hold(f.ids[0], id);
  EXPECT_EQ(h.action, HoldAnswer::Action::kApply);
  EXPECT_EQ(h.windows, o->windows);
  ASSERT_TRUE(f.engine->pause(id).ok());
  EXPECT_EQ(f.hold(f.ids[0], id).action, HoldAnswer::Action::kWait);
  ASSERT_TRUE(f.engine->resume(id).ok());
  EXPECT_EQ(f.hold(f.ids[0], id).action, HoldAnswer::Action::kApply);
  // Another rollout's id, or none: nothing to hold.
  EXPECT_EQ(f.hold(f.ids[0], "rollout-9999").action, HoldAnswer::Action::kDrop);
  ASSERT_TRUE(f.engine->abort(id).ok());
  h = f.hold(f.ids[0], id);
  EXPECT_EQ(h.action, HoldAnswer::Action::kDrop);
  EXPECT_EQ(f.state_of(id, f.ids[0]), S::kCancelled);
  f.restart();  // recorded before the answer: it survives
  auto d = f.store().get_deployment(id, f.ids[0]);
  ASSERT_TRUE(d.ok() && d->has_value());
  EXPECT_EQ((*d)->state, S::kCancelled);
  EXPECT_NE((*d)->error.find("withdrawn before the install"), std::string::npos) << (*d)->error;
  // The drop never reached the device and it installed anyway: its reports still count.
  auto installed = f.report(f.ids[0], *o, E::kSucceeded);
  ASSERT_TRUE(installed.ok()) << installed.error().to_string();
  EXPECT_EQ(*installed, S::kSucceeded);
  // A device never offered is still refused.
  EXPECT_EQ(f.report(f.ids[1], *o, E::kSucceeded).error().code, ErrorCode::kConflict);
}

TEST(Engine, AFailureConfinedToOneRevisionHaltsOnlyThatRevision) {
  Fleet f;
  f.add_devices(10, "rev-a");
  f.add_devices(10, "rev-b");
  const std::string id = f.start(simple_plan());
  // Canary: half of each revision. rev-b's trial boots fail.
  for (int round = 0; round < 4; ++round) {
    for (const auto& dev : f.ids) {
      if (auto o = f.check_in(dev)) {
        f.install(dev, *o, dev.starts_with("rev-b") ? E::kRolledBack : E::kSucceeded);
      }
    }
    f.clock.advance(minutes(11));
  }
  auto r = f.engine->get(id);
  ASSERT_EQ(r->halted.size(), 1u);
  EXPECT_EQ(r->halted[0].hardware_revision, "rev-b");
  EXPECT_EQ(r->state, RolloutState::kCompletedPartial);  // rev-b did not get it
  int a_done = 0, b_cancelled = 0, b_rolled_back = 0;
  for (const auto& dev : f.ids) {
    const S s = f.state_of(id, dev);
    if (dev.starts_with("rev-a")) a_done += s == S::kSucceeded;
    if (dev.starts_with("rev-b")) {
      b_cancelled += s == S::kCancelled;
      b_rolled_back += s == S::kRolledBack;
    }
  }
  EXPECT_EQ(a_done, 10);
  EXPECT_GE(b_rolled_back, 3);  // the gate needs min_sample outcomes
  EXPECT_EQ(b_cancelled + b_rolled_back, 10);
}

TEST(Engine, FleetRollbackSendsThePreviousVersionToUpdatedDevicesOfAHaltedStratum) {
  Fleet f;
  f.add_devices(6, "rev-b");
  RolloutPlan plan = simple_plan({{"all", 100, 0, Duration(0)}});
  plan.gate.min_sample = 4;
  const std::string id = f.start(plan);
  // Two devices commit, then four fail their trial boot: the stratum halts and the two
  // committed ones must go back to 1.0.0.
  std::vector<std::string> committed;
  for (size_t i = 0; i < f.ids.size(); ++i) {
    auto o = f.check_in(f.ids[i]);
    if (!o) {
      EXPECT_GE(i, 4u) << "halted before the gate had min_sample outcomes";
      break;
    }
    if (i < 2) {
      f.install(f.ids[i], *o);
      committed.push_back(f.ids[i]);
    } else {
      f.install(f.ids[i], *o, E::kRolledBack);
    }
  }
  ASSERT_EQ(f.engine->get(id)->halted.size(), 1u);
  for (const auto& dev : committed) {
    EXPECT_EQ(f.state_of(id, dev), S::kRevertPending);
    auto o = f.check_in(dev);
    ASSERT_TRUE(o.has_value());
    EXPECT_TRUE(o->revert);
    EXPECT_EQ(o->version, "1.0.0");
    f.install(dev, *o);
    EXPECT_EQ(f.state_of(id, dev), S::kReverted);
    EXPECT_FALSE(f.check_in(dev).has_value());
  }
  f.clock.advance(minutes(2));
  EXPECT_EQ(f.engine->get(id)->state, RolloutState::kFailed);
}

TEST(Engine, RateLimitCapsOffersPerMinute) {
  Fleet f;
  f.add_devices(20, "rev-a");
  RolloutPlan plan = simple_plan({{"all", 100, 0, Duration(0)}});
  plan.constraints.max_per_minute = 6;  // the bucket holds one offer at a time
  f.start(plan);
  std::set<std::string> offered;  // an idle device holding an offer gets it again: count devices
  for (int second = 0; second < 60; ++second) {
    for (const auto& dev : f.ids) {
      if (f.check_in(dev)) offered.insert(dev);
    }
    f.clock.advance(seconds(1));
  }
  EXPECT_GE(offered.size(), 6u);
  EXPECT_LE(offered.size(), 7u);
}

TEST(Engine, ConcurrencyLimitHoldsOffersUntilOneFinishes) {
  Fleet f;
  f.add_devices(5, "rev-a");
  RolloutPlan plan = simple_plan({{"all", 100, 0, Duration(0)}});
  plan.constraints.max_in_flight = 3;
  f.start(plan);
  std::vector<std::pair<std::string, UpdateOffer>> got;
  for (const auto& dev : f.ids) {
    if (auto o = f.check_in(dev)) got.emplace_back(dev, *o);
  }
  ASSERT_EQ(got.size(), 3u);
  EXPECT_FALSE(f.check_in(f.ids[4]).has_value());
  f.install(got[0].first, got[0].second);
  EXPECT_TRUE(f.check_in(f.ids[3]).has_value() || f.check_in(f.ids[4]).has_value());
}

TEST(Engine, NextStageWaitsForSettleAndSoak) {
  Fleet f;
  f.add_devices(6, "rev-a");
  const std::string id = f.start(simple_plan());  // canary 50%, soak 10m
  std::vector<std::string> canary, rest;
  for (const auto& dev : f.ids) {
    if (auto o = f.check_in(dev)) {
      canary.push_back(dev);
      f.install(dev, *o);
    } else {
      rest.push_back(dev);
    }
  }
  ASSERT_EQ(canary.size(), 3u);
  f.clock.advance(minutes(2));  // settles at the next tick
  EXPECT_FALSE(f.check_in(rest[0]).has_value());
  EXPECT_NE(f.engine->get(id)->stages[0].settled_at, Timestamp{});
  f.clock.advance(minutes(5));
  EXPECT_FALSE(f.check_in(rest[0]).has_value()) << "offered during the soak";
  f.clock.advance(minutes(7));
  EXPECT_EQ(f.engine->get(id)->stage, 1u);
  EXPECT_TRUE(f.check_in(rest[0]).has_value());
}

TEST(Engine, ReportsAreValidatedAndChangeNothingWhenRefused) {
  Fleet f;
  f.add_devices(2, "rev-a");
  const std::string id = f.start(simple_plan({{"all", 100, 0, Duration(0)}}));
  auto o = f.check_in(f.ids[0]);
  ASSERT_TRUE(o.has_value());
  UpdateOffer wrong = *o;
  wrong.version = "9.9.9";
  EXPECT_EQ(f.report(f.ids[0], wrong, E::kSucceeded).error().code, ErrorCode::kInvalidArgument);
  UpdateOffer other = *o;
  other.rollout_id = "rollout-9999";
  EXPECT_EQ(f.report(f.ids[0], other, E::kSucceeded).error().code, ErrorCode::kNotFound);
  EXPECT_EQ(f.report(f.ids[1], *o, E::kSucceeded).error().code,
            ErrorCode::kConflict);  // never offered
  EXPECT_EQ(f.report(f.ids[0], *o, E::kCount).error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(f.state_of(id, f.ids[0]), S::kOffered);
  EXPECT_EQ(f.state_of(id, f.ids[1]), S::kPending);
  // Success, then a late "downloading" and a repeated "succeeded": accepted, no change.
  ASSERT_TRUE(f.report(f.ids[0], *o, E::kSucceeded).ok());
  EXPECT_EQ(*f.report(f.ids[0], *o, E::kDownloading), S::kSucceeded);
  EXPECT_EQ(*f.report(f.ids[0], *o, E::kSucceeded), S::kSucceeded);
}

TEST(Engine, OperatorCommandsFollowTheRolloutTable) {
  Fleet f;
  f.add_devices(4, "rev-a");
  const std::string id = f.start(simple_plan({{"all", 100, 0, Duration(0)}}));
  EXPECT_EQ(f.engine->start(id).error().code, ErrorCode::kConflict);
  ASSERT_TRUE(f.engine->pause(id).ok());
  EXPECT_FALSE(f.check_in(f.ids[0]).has_value()) << "offered while paused";
  ASSERT_TRUE(f.engine->resume(id).ok());
  auto o = f.check_in(f.ids[0]);
  ASSERT_TRUE(o.has_value());
  ASSERT_TRUE(f.engine->abort(id).ok());
  EXPECT_EQ(f.engine->resume(id).error().code, ErrorCode::kConflict);
  EXPECT_FALSE(f.check_in(f.ids[1]).has_value());
  EXPECT_EQ(f.state_of(id, f.ids[1]), S::kCancelled);
  // The device already holding the offer may still finish and report.
  f.install(f.ids[0], *o);
  EXPECT_EQ(f.state_of(id, f.ids[0]), S::kSucceeded);
  // An operator rollback of the aborted rollout sends it back.
  ASSERT_TRUE(f.engine->rollback(id).ok());
  auto back = f.check_in(f.ids[0]);
  ASSERT_TRUE(back.has_value());
  EXPECT_TRUE(back->revert);
  f.install(f.ids[0], *back);
  f.clock.advance(minutes(2));
  EXPECT_EQ(f.engine->get(id)->state, RolloutState::kRolledBack);
}

TEST(Engine, RestartKeepsOffersAndOutcomes) {
  Fleet f;
  f.add_devices(3, "rev-a");
  const std::string id = f.start(simple_plan({{"all", 100, 0, Duration(0)}}));
  auto o0 = f.check_in(f.ids[0]);
  auto o1 = f.check_in(f.ids[1]);
  ASSERT_TRUE(o0 && o1);
  f.install(f.ids[0], *o0);
  f.restart();
  EXPECT_EQ(f.state_of(id, f.ids[0]), S::kSucceeded);
  EXPECT_EQ(f.state_of(id, f.ids[1]), S::kOffered);
  EXPECT_FALSE(f.check_in(f.ids[0]).has_value()) << "a committed device was offered again";
  auto again = f.check_in(f.ids[1]);  // lost its offer: the same one is sent again
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(again->version, o1->version);
  EXPECT_EQ(f.store().get_deployment(id, f.ids[1])->value().offers, 1u);
  auto p = f.engine->progress(id);
  EXPECT_EQ(p->total.total(), 3u);
  EXPECT_EQ(p->total[S::kSucceeded], 1u);
}

TEST(Engine, AnIdleDeviceAlreadyOnTheTargetIsCountedAsSucceeded) {
  Fleet f;
  f.add_devices(1, "rev-a");
  const std::string id = f.start(simple_plan({{"all", 100, 0, Duration(0)}}));
  auto o = f.check_in(f.ids[0]);
  ASSERT_TRUE(o.has_value());
  // Its "succeeded" report was lost; it checks in running 2.0.0.
  auto inv = f.installed(f.ids[0]);
  for (auto& c : inv) {
    if (c.component == "firmware") c.version = "2.0.0";
  }
  auto r = f.service->check_in({f.ids[0], inv, UpdateState::kIdle});
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->offer.has_value());
  EXPECT_EQ(f.state_of(id, f.ids[0]), S::kSucceeded);
}

TEST(Engine, AnOperatorRollbackWaitsForInstallsStillUnderWay) {
  Fleet f;
  f.add_devices(2, "rev-a");
  const std::string id = f.start(simple_plan({{"all", 100, 0, Duration(0)}}));
  auto o = f.check_in(f.ids[0]);
  ASSERT_TRUE(o.has_value());
  ASSERT_TRUE(f.report(f.ids[0], *o, E::kDownloading).ok());
  ASSERT_TRUE(f.engine->rollback(id).ok());
  f.clock.advance(minutes(5));
  EXPECT_EQ(f.engine->get(id)->state, RolloutState::kRollingBack)
      << "finished with an install under way";
  // The install completes after the rollback: the device is sent straight back.
  ASSERT_TRUE(f.report(f.ids[0], *o, E::kSucceeded).ok());
  EXPECT_EQ(f.state_of(id, f.ids[0]), S::kRevertPending);
  auto inv = f.installed(f.ids[0]);
  for (auto& c : inv) {
    if (c.component == "firmware") c.version = "2.0.0";
  }
  auto back = f.service->check_in({f.ids[0], inv, UpdateState::kIdle});
  ASSERT_TRUE(back.ok() && back->offer.has_value());
  EXPECT_TRUE(back->offer->revert);
  f.install(f.ids[0], *back->offer);
  f.clock.advance(minutes(2));
  EXPECT_EQ(f.engine->get(id)->state, RolloutState::kRolledBack);
}

TEST(Engine, ALostOfferIsNotSentAgainOnceItsStratumHalted) {
  Fleet f;
  f.add_devices(6, "rev-b");
  f.add_devices(2, "rev-a");  // keeps the rollout running after rev-b halts
  const std::string id = f.start(simple_plan({{"all", 100, 0, Duration(0)}}));
  auto lost = f.check_in(f.ids[0]);  // this device loses its offer and stays idle
  ASSERT_TRUE(lost.has_value());
  for (size_t i = 1; i < 6; ++i) {
    if (auto o = f.check_in(f.ids[i])) f.install(f.ids[i], *o, E::kRolledBack);
  }
  ASSERT_EQ(f.engine->get(id)->halted.size(), 1u);
  ASSERT_EQ(f.engine->get(id)->state, RolloutState::kRunning);
  EXPECT_FALSE(f.check_in(f.ids[0]).has_value()) << "the known-bad build went out again";
}

TEST(Engine, APausedRolloutFailsWhenItsLastStratumHalts) {
  Fleet f;
  f.add_devices(4, "rev-a");
  RolloutPlan plan = simple_plan({{"all", 100, 0, Duration(0)}});
  plan.on_failure = FailurePolicy::kAbort;
  const std::string id = f.start(plan);
  std::vector<std::pair<std::string, UpdateOffer>> offered;
  for (const auto& dev : f.ids) {
    if (auto o = f.check_in(dev)) offered.emplace_back(dev, *o);
  }
  ASSERT_EQ(offered.size(), 4u);
  ASSERT_TRUE(f.engine->pause(id).ok());
  for (const auto& [dev, o] : offered) f.install(dev, o, E::kInstallFailed);
  f.clock.advance(minutes(2));
  EXPECT_EQ(f.engine->get(id)->state, RolloutState::kFailed);
  EXPECT_EQ(f.engine->resume(id).error().code, ErrorCode::kConflict);
}

TEST(Engine, LateReportsToAFinishedRolloutChangeCountsNotItsCourse) {
  Fleet f;
  f.add_devices(4, "rev-a");
  RolloutPlan plan = simple_plan({{"all", 100, 0, Duration(0)}});
  plan.gate.min_sample = 2;
  const std::string id = f.start(plan);
  std::vector<std::pair<std::string, UpdateOffer>> done;
  for (const auto& dev : f.ids) {
    auto o = f.check_in(dev);
    ASSERT_TRUE(o.has_value());
    f.install(dev, *o);
    done.emplace_back(dev, *o);
  }
  f.clock.advance(minutes(2));
  ASSERT_EQ(f.engine->get(id)->state, RolloutState::kCompleted);
  for (const auto& [dev, o] : done) ASSERT_TRUE(f.report(dev, o, E::kUnhealthy).ok());
  f.clock.advance(minutes(2));
  EXPECT_TRUE(f.engine->get(id)->halted.empty());
  for (const auto& [dev, o] : done) EXPECT_EQ(f.state_of(id, dev), S::kUnhealthy) << dev;
}

// A canary starts slow: each revision has min_sample devices in flight, then as many as
// have finished; a device silent for an hour gives its place up.
TEST(Engine, TheCanaryIsPacedPerRevisionAndDoublesWithEachRound) {
  Fleet f;
  f.add_devices(40, "rev-a");
  RolloutPlan plan = simple_plan({{"canary", 50, 0, minutes(10)}, {"all", 100, 0, Duration(0)}});
  plan.gate.min_sample = 3;
  const std::string id = f.start(plan);
  std::set<std::string> offered;
  auto offer_round = [&]() {  // new offers only (an idle device in flight is sent its again)
    std::vector<std::pair<std::string, UpdateOffer>> got;
    for (const auto& dev : f.ids) {
      if (offered.count(dev) != 0) continue;
      if (auto o = f.check_in(dev)) {
        got.emplace_back(dev, *o);
        offered.insert(dev);
      }
    }
    return got;
  };
  auto first = offer_round();
  ASSERT_EQ(first.size(), 3u);  // min_sample in flight
  for (auto& [dev, o] : first) f.install(dev, o);
  auto second = offer_round();
  ASSERT_EQ(second.size(), 3u);  // 3 finished: 3 at a time
  for (auto& [dev, o] : second) f.install(dev, o);
  auto third = offer_round();
  ASSERT_EQ(third.size(), 6u);  // 6 finished: 6 at a time
  // Those six go silent: after an hour (and a tick) their places are free again.
  EXPECT_TRUE(offer_round().empty());
  f.clock.advance(minutes(61));
  EXPECT_TRUE(f.engine->tick().ok());
  EXPECT_EQ(offer_round().size(), 6u);
  // The canary is 20 devices: pacing never holds the second stage.
  EXPECT_EQ(f.engine->get(id)->stages[0].devices, 20u);
}

// A limit of 0 tolerates no failure: the first one halts its revision once min_sample of its
// devices have an outcome.
TEST(Engine, AZeroLimitHaltsOnTheFirstFailure) {
  Fleet f;
  f.add_devices(10, "rev-a");
  f.add_devices(10, "rev-b");
  RolloutPlan plan = simple_plan({{"all", 100, 0, Duration(0)}});
  plan.gate.max_failure_rate = 0;
  plan.gate.min_sample = 3;
  const std::string id = f.start(plan);
  int b_done = 0;
  for (const auto& dev : f.ids) {
    if (auto o = f.check_in(dev)) {
      const bool fail = dev.starts_with("rev-b") && b_done == 0;
      if (dev.starts_with("rev-b")) ++b_done;
      f.install(dev, *o, fail ? E::kInstallFailed : E::kSucceeded);
    }
  }
  auto r = f.engine->get(id);
  ASSERT_EQ(r->halted.size(), 1u);
  EXPECT_EQ(r->halted[0].hardware_revision, "rev-b");
  EXPECT_EQ(b_done, 3);  // halted at min_sample outcomes, one of them the failure
}

// A halt written before the gate tree (a bare stratum key) still holds after an upgrade.
TEST(Engine, HaltsWrittenUnderOldKeysStillHold) {
  Fleet f;
  f.add_devices(4, "rev-a");
  f.add_devices(4, "rev-b");
  const std::string id = f.start(simple_plan({{"all", 100, 0, Duration(0)}}));
  auto r = f.store().get_rollout(id);
  ASSERT_TRUE(r.ok() && r->has_value());
  Rollout old = **r;
  old.halted.push_back({"rev-b", "rev-b", "", "", "halted by an older version",
                        FailurePolicy::kPause, f.clock.now()});
  WriteBatch b;
  b.rollouts.push_back(old);
  ASSERT_TRUE(f.store().apply(b).ok());
  f.restart();
  for (const auto& dev : f.ids) {
    auto o = f.check_in(dev);
    EXPECT_EQ(o.has_value(), dev.starts_with("rev-a")) << dev;
  }
}

// Only the fleet is targeted: devices that enrolled without a token and wait for an
// operator (or were rejected) are listed as excluded, never offered, and cannot hold the
// rollout open.
TEST(Engine, OnlyAcceptedDevicesAreTargeted) {
  Fleet f;
  f.add_devices(3, "rev-a");
  std::vector<Device> ghosts;
  for (int i = 0; i < 5; ++i) {
    Device g;
    g.id = "ghost-" + std::to_string(i);
    g.device_type = "ctl";
    g.hardware_revision = "rev-a";
    g.site = "open";
    g.installed = {{"bootloader", "2.0.0"}, {"firmware", "1.0.0"}};
    g.enrollment = i < 4 ? Enrollment::kPending : Enrollment::kRejected;
    ghosts.push_back(g);
  }
  ASSERT_TRUE(f.service->provision(ghosts).ok());
  const std::string id = f.start(simple_plan({{"all", 100, 0, Duration(0)}}));
  EXPECT_EQ(f.engine->get(id)->targets, 3u);
  for (int round = 0; round < 2; ++round) {
    for (const auto& dev : f.ids) {
      if (auto o = f.check_in(dev)) f.install(dev, *o);
    }
    f.clock.advance(minutes(2));
  }
  EXPECT_EQ(f.engine->get(id)->state, RolloutState::kCompleted);
}

// The fleet can change under a rollout: a device decommissioned while pending or in flight
// leaves the gates and the stage's settling, so the rollout still finishes; one that already
// has an outcome keeps it.
TEST(Engine, DecommissionedDevicesLeaveTheRolloutWhichStillFinishes) {
  Fleet f;
  f.add_devices(5, "rev-a");
  RolloutPlan plan = simple_plan({{"canary", 100, 0, Duration(0)}});
  plan.settle_fraction = 1.0;  // every device must finish: one that left cannot block it
  const std::string id = f.start(plan);
  auto o0 = f.check_in(f.ids[0]);
  auto o1 = f.check_in(f.ids[1]);
  ASSERT_TRUE(o0 && o1);
  f.install(f.ids[0], *o0);
  ASSERT_TRUE(f.report(f.ids[1], *o1, E::kDownloading).ok());
  ASSERT_TRUE(f.service->decommission(f.ids[0]).ok());  // succeeded: stays succeeded
  ASSERT_TRUE(f.service->decommission(f.ids[1]).ok());  // in flight: leaves
  ASSERT_TRUE(f.service->decommission(f.ids[2]).ok());  // pending: leaves
  EXPECT_EQ(f.state_of(id, f.ids[0]), S::kSucceeded);
  EXPECT_EQ(f.state_of(id, f.ids[1]), S::kSkipped);
  EXPECT_EQ(f.state_of(id, f.ids[2]), S::kSkipped);
  for (size_t i = 3; i < 5; ++i) {
    auto o = f.check_in(f.ids[i]);
    ASSERT_TRUE(o.has_value());
    f.install(f.ids[i], *o);
  }
  f.clock.advance(minutes(2));
  EXPECT_EQ(f.engine->get(id)->state, RolloutState::kCompleted);
  auto p = f.engine->progress(id);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->total[S::kSkipped], 2u);
}

// A crash between writing the decommission and taking the device out of its rollout is
// repaired when the service loads.
TEST(Engine, ALeaveInterruptedByACrashIsFinishedOnLoad) {
  Fleet f;
  f.add_devices(3, "rev-a");
  const std::string id = f.start(simple_plan({{"all", 100, 0, Duration(0)}}));
  Device d = *f.service->device(f.ids[0]);
  d.decommissioned = true;
  WriteBatch b;
  b.devices.push_back(d);  // as if the process died right after this write
  ASSERT_TRUE(f.store().apply(b).ok());
  EXPECT_EQ(f.state_of(id, f.ids[0]), S::kPending);
  f.restart();
  EXPECT_EQ(f.state_of(id, f.ids[0]), S::kSkipped);
}

// One rollout per component per device at a time: a second rollout of the same component
// over the same devices is refused while the first is not over (it names the first), and
// so is rolling the first back while the second runs.
TEST(Engine, OverlappingRolloutsOfOneComponentAreRefused) {
  Fleet f;
  f.add_devices(4, "rev-a");
  WriteBatch b;
  b.artifacts.push_back(firmware("3.0.0"));
  Artifact other = firmware("1.0.0");
  other.name = "bootloader";
  other.version = "2.5.0";
  b.artifacts.push_back(other);
  ASSERT_TRUE(f.store().apply(b).ok());
  f.restart();

  const std::string first = f.start(simple_plan({{"all", 100, 0, Duration(0)}}));
  RolloutPlan next = simple_plan({{"all", 100, 0, Duration(0)}});
  next.artifact_version = "3.0.0";
  auto second = f.engine->create(next);
  ASSERT_TRUE(second.ok());
  Status st = f.engine->start(second->id);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, ErrorCode::kFailedPrecondition);
  EXPECT_NE(st.error().message.find("4 of its devices"), std::string::npos) << st.error().message;
  EXPECT_NE(st.error().message.find(first + ", which is running"), std::string::npos);

  // Another component may go at the same time.
  RolloutPlan boot = simple_plan({{"all", 100, 0, Duration(0)}});
  boot.artifact_name = "bootloader";
  boot.artifact_version = "2.5.0";
  auto third = f.engine->create(boot);
  ASSERT_TRUE(third.ok());
  EXPECT_TRUE(f.engine->start(third->id).ok());

  // Once the first is over, the second starts; then the first cannot be rolled back under it.
  for (int round = 0; round < 3; ++round) {
    for (const auto& dev : f.ids) {
      if (auto o = f.check_in(dev)) f.install(dev, *o);
    }
    f.clock.advance(minutes(2));
  }
  ASSERT_EQ(f.engine->get(first)->state, RolloutState::kCompleted);
  ASSERT_TRUE(f.engine->start(second->id).ok());
  st = f.engine->rollback(first);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("cannot roll back " + first), std::string::npos)
      << st.error().message;
}

// With a watch, a rollout whose stages are done watches for late failures: an unhealthy
// report then still halts and reverts its revision, and the rollout completes only when the
// watch has passed.
TEST(Engine, AWatchKeepsJudgingAfterTheLastStage) {
  Fleet f;
  f.add_devices(10, "rev-a");
  f.add_devices(10, "rev-b");
  RolloutPlan plan = simple_plan({{"all", 100, 0, Duration(0)}});
  plan.watch = hours(24);
  const std::string id = f.start(plan);
  std::map<std::string, UpdateOffer> offers;
  for (const auto& dev : f.ids) {
    auto o = f.check_in(dev);
    ASSERT_TRUE(o.has_value());
    f.install(dev, *o);
    offers.emplace(dev, *o);
  }
  f.clock.advance(minutes(2));
  EXPECT_TRUE(f.engine->tick().ok());
  auto r = f.engine->get(id);
  ASSERT_EQ(r->state, RolloutState::kWatching);
  EXPECT_EQ(r->watch_until, f.clock.now() + hours(24));

  // Ten hours later rev-b turns unhealthy: halted and sent back while watching.
  f.clock.advance(hours(10));
  for (const auto& dev : f.ids) {
    if (dev.starts_with("rev-b")) {
      ASSERT_TRUE(f.report(dev, offers.at(dev), E::kUnhealthy).ok());
    }
  }
  r = f.engine->get(id);
  ASSERT_EQ(r->halted.size(), 1u);
  EXPECT_EQ(r->halted[0].hardware_revision, "rev-b");
  EXPECT_EQ(f.state_of(id, "rev-b-open-11"), S::kRevertPending);
  for (const auto& dev : f.ids) {
    if (!dev.starts_with("rev-b")) continue;
    auto back = f.check_in(dev);
    ASSERT_TRUE(back.has_value() && back->revert) << dev;
    f.install(dev, *back);
  }
  f.clock.advance(hours(1));
  EXPECT_TRUE(f.engine->tick().ok());
  EXPECT_EQ(f.engine->get(id)->state, RolloutState::kWatching);  // the watch is not over
  // Devices keep checking in (one silent past its contract in its watch would count as a
  // failure: engine_silence_test.cc).
  for (const auto& dev : f.ids) EXPECT_FALSE(f.check_in(dev).has_value());
  f.clock.advance(hours(14));
  EXPECT_TRUE(f.engine->tick().ok());
  // The watch is over, but a device silent since just before its end would be known to be
  // silent only a contract (24 h) later: the rollout waits for that too.
  EXPECT_EQ(f.engine->get(id)->state, RolloutState::kWatching);
  for (const auto& dev : f.ids) EXPECT_FALSE(f.check_in(dev).has_value());
  f.clock.advance(hours(24));
  EXPECT_TRUE(f.engine->tick().ok());
  EXPECT_EQ(f.engine->get(id)->state, RolloutState::kCompletedPartial);  // rev-b went back
  auto p = f.engine->progress(id);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->outcome.updated, 10u);
  EXPECT_EQ(p->outcome.unhealthy_reverted, 10u);
  EXPECT_EQ(p->outcome.failed(), 10u);
  ASSERT_EQ(p->outcome.halted.size(), 1u);
  EXPECT_EQ(p->outcome.halted[0].devices, 10u);
}

// A rollback that could not send the updated devices back is refused, naming them and the
// missing artifact, instead of answering success and leaving them on the new version.
TEST(Engine, ARollbackThatCannotSendDevicesBackIsRefusedAndSaysWhy) {
  Fleet f;
  f.add_devices(3, "rev-a");
  const std::string id = f.start(simple_plan({{"all", 100, 0, Duration(0)}}));
  for (const auto& dev : f.ids) {
    auto o = f.check_in(dev);
    ASSERT_TRUE(o.has_value());
    f.install(dev, *o);
  }
  f.clock.advance(minutes(2));
  EXPECT_TRUE(f.engine->tick().ok());
  ASSERT_EQ(f.engine->get(id)->state, RolloutState::kCompleted);
  ASSERT_TRUE(f.store().delete_artifact("firmware", "1.0.0").ok());
  f.restart();

  Status st = f.engine->rollback(id);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, ErrorCode::kFailedPrecondition);
  EXPECT_NE(st.error().message.find("3 (rev-a-open-1 and others) ran firmware@1.0.0, which is "
                                    "not uploaded"),
            std::string::npos)
      << st.error().message;
  EXPECT_EQ(f.engine->get(id)->state, RolloutState::kCompleted);  // nothing changed

  WriteBatch b;
  b.artifacts.push_back(firmware("1.0.0"));
  ASSERT_TRUE(f.store().apply(b).ok());
  ASSERT_TRUE(f.engine->rollback(id).ok());
  EXPECT_EQ(f.engine->get(id)->state, RolloutState::kRollingBack);
  for (const auto& dev : f.ids) EXPECT_EQ(f.state_of(id, dev), S::kRevertPending);
}

}  // namespace
}  // namespace drover::testing

namespace drover::testing {
namespace {

// The audit hook hears of every state change and halt before it is written, and a hook that
// fails stops the change.
TEST(Engine, EveryRolloutStateChangeIsToldToTheAuditHookBeforeItIsWritten) {
  Fleet f;
  std::vector<std::string> heard;
  bool refuse = false;
  f.engine_options.audit = [&](const Rollout& before, const Rollout& after) -> Status {
    // Before it is written: the store still has the old state.
    auto stored = f.store().get_rollout(after.id);
    EXPECT_TRUE(stored.ok());
    if (stored.ok() && stored->has_value()) {
      EXPECT_EQ((*stored)->state, before.state);
      EXPECT_EQ((*stored)->halted, before.halted);
    } else {
      EXPECT_TRUE(before.id.empty());
    }
    if (refuse) return io_error("audit log unavailable");
    heard.push_back((before.id.empty() ? std::string("-") : to_string(before.state)) + ">" +
                    to_string(after.state) + " halted " + std::to_string(after.halted.size()));
    return ok_status();
  };
  f.restart();
  f.add_devices(6, "rev-a");
  f.add_devices(6, "rev-b");
  RolloutPlan plan = simple_plan({{"all", 100, 0, Duration(0)}});
  plan.on_failure = FailurePolicy::kPause;
  plan.gate.min_sample = 2;
  const std::string id = f.start(plan);
  ASSERT_TRUE(f.engine->pause(id).ok());
  refuse = true;
  EXPECT_EQ(f.engine->resume(id).error().code, ErrorCode::kIo);
  EXPECT_EQ(f.engine->get(id)->state, RolloutState::kPaused) << "changed without its record";
  EXPECT_EQ((*f.store().get_rollout(id))->state, RolloutState::kPaused);
  refuse = false;
  ASSERT_TRUE(f.engine->resume(id).ok());
  // Two rev-a devices fail: their stratum halts, which is heard too.
  for (int i = 0; i < 6; ++i) {
    const std::string& dev = f.ids[i];
    auto o = f.check_in(dev);
    if (!o) continue;
    f.install(dev, *o, protocol::Report::kInstallFailed);
  }
  EXPECT_EQ(heard, (std::vector<std::string>{"->created halted 0", "created>running halted 0",
                                             "running>paused halted 0", "paused>running halted 0",
                                             "running>running halted 1"}));
}

}  // namespace
}  // namespace drover::testing
