// Property tests of the rollout engine and both state machines: random device behaviour,
// random clock jumps, restarts at any step and writes that fail at any step (a crash before
// the write lands). After every step: every target device has exactly one deployment, the
// engine's memory equals what the store holds, and no device is offered the update again
// after its success was acknowledged.
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <map>
#include <set>

#include "../common/fleet_fixture.h"
#include "../common/forwarding_store.h"
#include "rollout/deployment_machine.h"
#include "rollout/rollout_machine.h"

namespace drover::testing {
namespace {

using E = DeploymentEvent;
using R = protocol::Report;
using S = DeploymentState;

// Passes everything to a real store, except that it can refuse the n-th next write, as a
// process killed before its write reached the disk.
class FaultyStore final : public ForwardingStore {
 public:
  using ForwardingStore::ForwardingStore;
  void fail_write_after(int n) { countdown_ = n; }
  int failures() const { return failures_; }
  int writes() const { return writes_; }

  Status apply(const WriteBatch& b) override {
    ++writes_;
    if (countdown_ > 0 && --countdown_ == 0) {
      ++failures_;
      return io_error("injected: the process died before this write");
    }
    return ForwardingStore::apply(b);
  }

 private:
  int countdown_ = 0;
  int failures_ = 0;
  int writes_ = 0;
};

struct DeviceTruth {
  std::string firmware = "1.0.0";
  std::optional<UpdateOffer> holding;
  bool acked_forward_success = false;
};

void check_invariants(Fleet& f, const std::string& rollout, const std::set<std::string>& targets) {
  auto deps = f.store().list_deployments(rollout);
  RC_ASSERT(deps.ok());
  std::set<std::string> seen;
  StateCounts stored;
  for (const Deployment& d : *deps) {
    RC_ASSERT(seen.insert(d.device_id).second);  // no duplicate
    stored[d.state] += 1;
  }
  RC_ASSERT(seen == targets);  // none lost, none added
  auto p = f.engine->progress(rollout);
  RC_ASSERT(p.ok());
  RC_ASSERT(p->total.n == stored.n);  // memory mirrors the store
}

RC_GTEST_PROP(EngineProperty, NoDeploymentIsLostOrDuplicatedAcrossCrashes, ()) {
  auto owned = std::make_unique<FaultyStore>(make_memory_store());
  FaultyStore* faults = owned.get();
  Fleet f(at("2026-06-01T23:00:00Z"), std::move(owned));
  f.add_site(Site{"night", "UTC", {{0x7f, 0, 120}}});
  f.add_devices(3, "rev-a");
  f.add_devices(3, "rev-b");
  f.add_devices(2, "rev-a", "night");
  RolloutPlan plan = simple_plan({{"canary", 50, 0, minutes(5)}, {"all", 100, 0, Duration(0)}});
  plan.gate.min_sample = 2;
  plan.on_failure =
      *rc::gen::element(FailurePolicy::kPause, FailurePolicy::kAbort, FailurePolicy::kRollback);
  plan.constraints.max_in_flight = *rc::gen::inRange<uint32_t>(0, 4);
  const std::string id = f.start(plan);
  const std::set<std::string> targets(f.ids.begin(), f.ids.end());
  std::map<std::string, DeviceTruth> truth;
  for (const auto& d : f.ids) truth[d];

  auto inventory = [&](const std::string& dev) {
    return std::vector<InstalledComponent>{{"bootloader", "2.0.0"},
                                           {"firmware", truth[dev].firmware}};
  };
  auto do_check_in = [&](const std::string& dev, bool drop_answer) {
    DeviceTruth& t = truth[dev];
    if (t.holding) return;
    auto inv = inventory(dev);
    auto r = f.service->check_in({dev, inv, UpdateState::kIdle});
    if (!r.ok()) {
      RC_ASSERT(r.error().code == ErrorCode::kIo);
      return;
    }
    if (!r->offer) return;
    if (!r->offer->revert) RC_ASSERT(!t.acked_forward_success);  // never offered twice
    RC_ASSERT(f.state_of(id, dev) != S::kPending);  // recorded before it was handed out
    if (!drop_answer) t.holding = r->offer;
  };
  auto do_report = [&](const std::string& dev) {
    DeviceTruth& t = truth[dev];
    if (!t.holding) return;
    const R e = *rc::gen::element(R::kDownloading, R::kInstalling, R::kRebooting, R::kSucceeded,
                                  R::kInstallFailed, R::kRolledBack);
    const UpdateOffer o = *t.holding;
    auto r = f.report(dev, o, e);
    if (!r.ok()) {
      RC_ASSERT(r.error().code == ErrorCode::kIo || r.error().code == ErrorCode::kConflict);
      return;
    }
    if (e == R::kSucceeded) {
      t.firmware = o.version;
      t.acked_forward_success = !o.revert;
      t.holding.reset();
    } else if (e == R::kInstallFailed || e == R::kRolledBack) {
      t.holding.reset();
    }
  };

  const int steps = *rc::gen::inRange(10, 80);
  for (int step = 0; step < steps; ++step) {
    const std::string dev = *rc::gen::elementOf(f.ids);
    switch (*rc::gen::inRange(0, 10)) {
      case 0:
      case 1:
        do_check_in(dev, false);
        break;
      case 2:
      case 3:
        do_report(dev);
        break;
      case 4: {
        // Anything a confused or hostile device might send: refused or harmless.
        const R e = *rc::gen::element(R::kDownloading, R::kSucceeded, R::kInstallFailed,
                                      R::kRolledBack, R::kUnhealthy, R::kRebooting);
        const std::string version = *rc::gen::element<std::string>("1.0.0", "2.0.0", "3.0.0");
        auto before = f.store().get_deployment(id, dev);
        auto r = f.service->report_status({dev, id, version, e, {}});
        if (!r.ok()) {
          auto after = f.store().get_deployment(id, dev);
          RC_ASSERT(before.ok() && after.ok() && **before == **after);
        } else if (truth[dev].holding && version == truth[dev].holding->version) {
          // The device itself did not say this; forget the offer so the truth stays simple.
          if (e == R::kSucceeded) {
            truth[dev].firmware = version;
            truth[dev].acked_forward_success = !truth[dev].holding->revert;
          }
          if (e == R::kSucceeded || e == R::kInstallFailed || e == R::kRolledBack)
            truth[dev].holding.reset();
        }
        break;
      }
      case 5:
        f.clock.advance(minutes(*rc::gen::inRange(1, 90)));
        break;
      case 6:
        f.restart();
        break;
      case 7:
        // A write fails part-way through one of the next operations, and the process dies.
        faults->fail_write_after(*rc::gen::inRange(1, 3));
        do_check_in(dev, false);
        do_report(dev);
        faults->fail_write_after(0);
        f.restart();
        break;
      case 8:
        do_check_in(dev, true);  // the answer is lost on the way: the offer must come again
        break;
      case 9: {
        // An operator command in any state: the rollout table takes it or refuses it, and a
        // refusal changes nothing.
        const Rollout before = *f.engine->get(id);
        Status st;
        switch (*rc::gen::inRange(0, 4)) {
          case 0:
            st = f.engine->pause(id);
            break;
          case 1:
            st = f.engine->resume(id);
            break;
          case 2:
            st = f.engine->abort(id);
            break;
          default:
            st = f.engine->rollback(id);
            break;
        }
        if (!st.ok()) {
          RC_ASSERT(st.error().code == ErrorCode::kConflict);
          RC_ASSERT(*f.engine->get(id) == before);
        }
        break;
      }
    }
    check_invariants(f, id, targets);
  }
}

// Drives a small rollout to the end with devices that retry on errors, while the store
// refuses write number `cut` (the process dies there and restarts).
struct CrashRun {
  int writes = 0;  // writes tried after the start
  int cuts = 0;    // writes refused
  bool completed = false;
  std::string failure;
};

CrashRun run_with_cut(int cut) {
  CrashRun out;
  auto owned = std::make_unique<FaultyStore>(make_memory_store());
  FaultyStore* faults = owned.get();
  Fleet f(at("2026-06-01T12:00:00Z"), std::move(owned));
  f.add_devices(4, "rev-a");
  f.add_devices(2, "rev-b");
  const std::string id =
      f.start(simple_plan({{"canary", 50, 0, minutes(5)}, {"all", 100, 0, Duration(0)}}));
  const int writes_before = faults->writes();
  faults->fail_write_after(cut);
  std::map<std::string, DeviceTruth> truth;
  std::map<std::string, int> step;  // next report in the happy path
  const R path[] = {R::kDownloading, R::kInstalling, R::kRebooting, R::kSucceeded};
  for (int loop = 0; loop < 100; ++loop) {
    for (const auto& dev : f.ids) {
      DeviceTruth& t = truth[dev];
      if (t.holding) {
        auto r = f.report(dev, *t.holding, path[step[dev]]);
        if (!r.ok()) {
          if (r.error().code != ErrorCode::kIo)
            out.failure = "report refused: " + r.error().to_string();
          f.restart();
          continue;
        }
        if (++step[dev] == 4) {
          t.firmware = t.holding->version;
          t.acked_forward_success = true;
          t.holding.reset();
        }
        continue;
      }
      std::vector<InstalledComponent> inv{{"bootloader", "2.0.0"}, {"firmware", t.firmware}};
      auto r = f.service->check_in({dev, inv, UpdateState::kIdle});
      if (!r.ok()) {
        if (r.error().code != ErrorCode::kIo)
          out.failure = "check-in refused: " + r.error().to_string();
        f.restart();
        continue;
      }
      if (r->offer) {
        if (t.acked_forward_success) out.failure = dev + " was offered the update twice";
        t.holding = r->offer;
        step[dev] = 0;
      }
    }
    f.clock.advance(minutes(5));
    auto deps = f.store().list_deployments(id);
    if (!deps.ok() || deps->size() != f.ids.size()) out.failure = "deployments lost or duplicated";
    if (f.engine->get(id)->state == RolloutState::kCompleted) {
      out.completed = true;
      break;
    }
  }
  out.cuts = faults->failures();
  out.writes = faults->writes() - writes_before;
  for (const auto& dev : f.ids) {
    if (f.state_of(id, dev) != S::kSucceeded) out.failure = dev + " did not end succeeded";
  }
  return out;
}

TEST(EngineCrash, AWriteCutAtEveryStepLosesNothingAndOffersNothingTwice) {
  // One run without a cut counts the writes; then one run per write index.
  const CrashRun clean = run_with_cut(0);
  ASSERT_TRUE(clean.failure.empty()) << clean.failure;
  ASSERT_TRUE(clean.completed);
  ASSERT_GE(clean.writes, 20);
  for (int cut = 1; cut <= clean.writes; ++cut) {
    const CrashRun r = run_with_cut(cut);
    EXPECT_EQ(r.cuts, 1) << "cut at write " << cut << " did not land";
    EXPECT_TRUE(r.failure.empty()) << "cut at write " << cut << ": " << r.failure;
    EXPECT_TRUE(r.completed) << "cut at write " << cut;
  }
}

RC_GTEST_PROP(DeploymentMachine, RandomEventOrdersNeverEscapeTheTable, ()) {
  S s = S::kPending;
  const int n = *rc::gen::inRange(1, 60);
  for (int i = 0; i < n; ++i) {
    const auto e = static_cast<E>(*rc::gen::inRange(0, kDeploymentEventCount));
    auto next = next_state(s, e);
    if (!next.ok()) {
      RC_ASSERT(next.error().code == ErrorCode::kConflict);
      continue;
    }
    // Outcomes are final for the forward path: nothing leads back to pending or offered.
    // The one exception: a withdrawn (cancelled) deployment whose device installed anyway,
    // not having heard the drop, reports what it did (the engine takes such reports only
    // from a device that was offered). And a silent device, out of the counts until it is
    // heard again, goes on from where it was.
    if (is_finished(s) && s != S::kCancelled && s != S::kSilent) RC_ASSERT(is_finished(*next));
    RC_ASSERT(*next != S::kOffered || s == S::kPending || s == S::kOffered || s == S::kSilent);
    RC_ASSERT(*next != S::kPending);
    s = *next;
  }
}

TEST(DeploymentMachine, RepeatedReportsAreIdempotent) {
  for (int si = 0; si < static_cast<int>(kDeploymentStateCount); ++si) {
    for (int ei = 0; ei < kDeploymentEventCount; ++ei) {
      const auto s = static_cast<S>(si);
      const auto e = static_cast<E>(ei);
      auto once = next_state(s, e);
      if (!once.ok() || e == E::kOffer || e == E::kRevert) continue;
      auto twice = next_state(*once, e);
      // Delivering the same device report twice lands where delivering it once did.
      if (twice.ok()) {
        EXPECT_EQ(*twice, *once) << to_string(s) << " + " << to_string(e) << " twice";
      }
    }
  }
}

TEST(DeploymentMachine, KeyTransitions) {
  EXPECT_EQ(*next_state(S::kPending, E::kOffer), S::kOffered);
  EXPECT_EQ(*next_state(S::kRebooting, E::kRolledBack), S::kRolledBack);
  EXPECT_EQ(*next_state(S::kSucceeded, E::kUnhealthy), S::kUnhealthy);
  EXPECT_EQ(*next_state(S::kSucceeded, E::kRevert), S::kRevertPending);
  EXPECT_EQ(*next_state(S::kRevertPending, E::kOffer), S::kReverting);
  EXPECT_EQ(*next_state(S::kReverting, E::kSucceeded), S::kReverted);
  EXPECT_EQ(*next_state(S::kReverting, E::kWithdraw), S::kRevertFailed);  // no window fits
  EXPECT_EQ(*next_state(S::kSucceeded, E::kSilence), S::kLost);
  EXPECT_EQ(*next_state(S::kSilent, E::kUnhealthy), S::kUnhealthy);
  EXPECT_EQ(next_state(S::kPending, E::kSucceeded).error().code, ErrorCode::kConflict);
  EXPECT_EQ(next_state(S::kCancelled, E::kOffer).error().code, ErrorCode::kConflict);
  EXPECT_EQ(next_state(S::kSucceeded, E::kOffer).error().code, ErrorCode::kConflict);
}

TEST(RolloutMachine, Table) {
  using RS = RolloutState;
  using RE = RolloutEvent;
  EXPECT_EQ(*next_state(RS::kCreated, RE::kStart), RS::kRunning);
  EXPECT_EQ(*next_state(RS::kRunning, RE::kAllHalted), RS::kFailed);
  EXPECT_EQ(*next_state(RS::kRollingBack, RE::kComplete), RS::kRolledBack);
  EXPECT_EQ(next_state(RS::kCompleted, RE::kResume).error().code, ErrorCode::kConflict);
  EXPECT_EQ(next_state(RS::kAborted, RE::kStart).error().code, ErrorCode::kConflict);
}

}  // namespace
}  // namespace drover::testing
