// The engine's clock-driven decisions: each tick judges the gates, looks for silent devices,
// settles, soaks and promotes stages, and completes or ends rollbacks and watches.
#include <algorithm>
#include <cmath>
#include <string>

#include "base/units.h"
#include "rollout/engine.h"
#include "rollout/engine_state.h"
#include "rollout/health_gate.h"
#include "store/group_commit.h"

namespace drover {
namespace {

// A canary device in flight that has not reported for this long no longer holds a place in
// its revision's pacing (docs/gates.md, "Pacing").
constexpr Duration kStalled = hours(1);
// How often the engine looks for devices silent past their check-in contract.
constexpr Duration kSilenceScan = minutes(15);

}  // namespace

// ---------------------------------------------------------------- time-driven decisions

void RolloutEngine::tell_rollback_progress(Active& a, const StateCounts& all) {
  const uint32_t back = all[DeploymentState::kReverted];
  const uint32_t failed = all[DeploymentState::kRevertFailed];
  const uint32_t due = all[DeploymentState::kRevertPending] + all[DeploymentState::kReverting];
  const uint32_t total = back + failed + due;
  if (total == 0) return;
  const uint32_t tenths = (back + failed) * 10 / total;
  if (tenths <= a.rollback_tenths) return;
  a.rollback_tenths = tenths;
  std::string text = "rollback progress: " + std::to_string(back + failed) + " of " +
                     std::to_string(total) + " device(s) sent back (" +
                     std::to_string((back + failed) * 100 / total) + "%): " + std::to_string(back) +
                     " back on their previous version";
  if (failed > 0) text += ", " + std::to_string(failed) + " revert(s) failed";
  if (due > 0) text += "; " + std::to_string(due) + " to go";
  emit(EngineEvent::Kind::kRollbackProgress, a, std::move(text));
}

Status RolloutEngine::tick() {
  CommitScope scope;
  Status first = ok_status();
  HealthReads health;
  if (options_.health != nullptr) {
    {
      MutexLock lock(mu_);
      health = plan_health_reads(clock_.now());
    }
    read_health(*options_.health, health);
  }
  {
    MutexLock lock(mu_);
    for (auto& a : active_) {
      Status st = tick_rollout(*a, health);
      if (!st.ok() && first.ok())
        first = Error{st.error().code, "rollout " + a->rollout.id + ": " + st.error().message};
    }
  }
  Status durable = scope.wait();
  return first.ok() ? durable : first;
}

Status RolloutEngine::tick_rollout(Active& a, HealthReads& health_answers) {
  const RolloutPlan& plan = a.rollout.plan;
  const RolloutState state = a.rollout.state;
  const Timestamp now = clock_.now();

  // Gates are judged on every tick too, so a halt whose write failed is retried.
  if (state == RolloutState::kRunning || state == RolloutState::kPaused ||
      state == RolloutState::kWatching) {
    // Parents come before their children, so a group is judged after what holds it.
    for (uint32_t n = 0; n < a.nodes.size(); ++n) {
      if (a.under_halt(n)) continue;
      DROVER_TRY(judge_node(a, n));
    }
    DROVER_TRY(form_health_pairs(a, health_answers));
    DROVER_TRY(judge_health_gates(a));
    // Also retries a failed-rollout transition whose write failed after its halt landed.
    DROVER_TRY(fail_if_all_halted(a));
    if (a.rollout.state != state) return ok_status();  // the gates ended it; the rest: next tick
  }

  if (now >= a.next_silence_scan) {
    a.next_silence_scan = now + kSilenceScan;
    DROVER_TRY(judge_silence(a, now));
  }

  // Canary pacing: which offers have gone silent (see offer_for).
  if (a.rollout.stage == 0 && plan.stages.size() > 1) {
    for (auto& n : a.nodes) n.stalled = 0;
    for (uint32_t i = 0; i < a.deps.size(); ++i) {
      const Active::Hot h = a.hot[i];
      if (h.stage == 0 && is_in_flight(h.state) && !is_revert(h.state) &&
          std::max(a.deps[i].updated_at, a.last_heard(i)) + kStalled <= now) {
        ++a.nodes[a.strata[h.stratum].pace].stalled;
      }
    }
  }

  // What is still outstanding, in strata that go on and anywhere a revert is due.
  const StateCounts all = a.total();
  const StateCounts live_all = a.live(-1);
  const StateCounts live_stage = a.live(static_cast<int>(a.rollout.stage));
  const uint32_t reverts_due =
      all[DeploymentState::kRevertPending] + all[DeploymentState::kReverting];
  const uint32_t outstanding = live_all[DeploymentState::kPending] + live_all.in_flight();

  if (state == RolloutState::kRollingBack) {
    tell_rollback_progress(a, all);
    // Devices still installing the new version must finish (and be sent back) first.
    if (reverts_due != 0 || all.in_flight() != 0) return ok_status();
    // Never "rolled back" while a device still runs the new version.
    const uint32_t failed = all[DeploymentState::kRevertFailed];
    const uint32_t kept = all[DeploymentState::kSucceeded] + all[DeploymentState::kUnhealthy] +
                          all[DeploymentState::kLost];
    // Gone silent mid-install while rolling back: it may well run the new image.
    const uint32_t silent = all[DeploymentState::kSilent];
    if (failed == 0 && kept == 0 && silent == 0) {
      DROVER_TRY(transition(a, RolloutEvent::kComplete));
      emit(EngineEvent::Kind::kRolledBack, a,
           "every updated device is back on its previous version");
      return ok_status();
    }
    std::string text = "rollback incomplete: ";
    if (failed > 0) text += std::to_string(failed) + " revert(s) failed";
    if (failed > 0 && kept > 0) text += ", ";
    if (kept > 0) text += std::to_string(kept) + " device(s) could not be sent back";
    if (silent > 0 && (failed > 0 || kept > 0)) text += ", ";
    if (silent > 0) text += std::to_string(silent) + " went silent mid-install and may run it";
    text += "; they still run " + a.artifact.name + "@" + a.artifact.version +
            " (their history says why; roll back again to retry)";
    DROVER_TRY(transition(a, RolloutEvent::kCompletePartial));
    emit(EngineEvent::Kind::kRollbackIncomplete, a, text);
    return ok_status();
  }
  if (state == RolloutState::kWatching) {
    // A device that went silent just before the watch ended is known to be silent only a
    // contract later: the rollout waits that long too (docs/gates.md, "Silent devices"), and
    // looks once more before it ends.
    const Timestamp over = a.rollout.watch_until + a.longest_contract();
    if (now >= over && outstanding == 0 && reverts_due == 0) {
      const StateCounts before = a.total();
      DROVER_TRY(judge_silence(a, now));
      if (a.rollout.state != state) return ok_status();
      // The gates judge what it found at the next tick.
      if (a.total().n != before.n) return ok_status();
      DROVER_TRY(complete(a, "the watch ended"));
    }
    return ok_status();
  }
  if (state != RolloutState::kRunning) return ok_status();

  const uint32_t stage = a.rollout.stage;
  const StageProgress& sp = a.rollout.stages[stage];
  const StageSpec& spec = plan.stages[stage];
  if (is_zero(sp.settled_at)) {
    const uint32_t cohort = live_stage.total();
    const uint32_t done = live_stage.finished();
    const auto needed = static_cast<uint32_t>(std::ceil(plan.settle_fraction * cohort - 1e-9));
    if (cohort == 0 || done >= needed) {
      Txn txn;
      txn.rollout(a).stages[stage].settled_at = now;
      txn.events.push_back({EngineEvent::Kind::kStageSettled, now, a.rollout.id,
                            "stage " + spec.name + " settled: " + std::to_string(done) + " of " +
                                std::to_string(cohort) + " finished; soaking " +
                                format_duration(spec.soak)});
      DROVER_TRY(commit(a, txn));
    }
    return ok_status();
  }
  // With health gates a stage before the last soaks at least until the pairs of the
  // devices that had committed when it settled are judged (a scan at least kHealthScan
  // after they are due). The last stage leaves no device unoffered to pair with.
  Duration soak = spec.soak;
  if (!plan.gate.health.empty() && stage + 1 < plan.stages.size()) {
    soak = std::max(soak, plan.gate.health_window + kHealthLateTelemetry + 2 * kHealthScan);
  }
  if (is_zero(sp.finished_at) && now >= sp.settled_at + soak) {
    Txn txn;
    Rollout& r = txn.rollout(a);
    r.stages[stage].finished_at = now;
    if (stage + 1 < plan.stages.size()) {
      uint32_t devices = 0;
      for (const auto& s : a.strata) devices += s.per_stage[stage + 1].total();
      r.stage = stage + 1;
      r.stages.push_back({plan.stages[stage + 1].name, now, {}, {}, devices});
      txn.events.push_back(
          {EngineEvent::Kind::kStageStarted, now, a.rollout.id,
           "stage " + plan.stages[stage + 1].name + ": " + std::to_string(devices) + " devices"});
    }
    DROVER_TRY(commit(a, txn));
  }
  const bool last_done =
      a.rollout.stage + 1 == plan.stages.size() && !is_zero(a.rollout.stages.back().finished_at);
  if (!last_done || outstanding != 0 || reverts_due != 0) return ok_status();
  if (plan.watch.count() > 0) {
    // Every device committed by now: the last one's watch ends watch from now.
    const Timestamp until = now + plan.watch;
    DROVER_TRY(transition(a, RolloutEvent::kWatch, [&](Rollout& r) { r.watch_until = until; }));
    {
      std::string text =
          "every stage done; watching for late failures until " + format_utc_timestamp(until);
      const Duration contract = a.longest_contract();
      if (contract.count() > 0) {
        text += ", and for devices silent since before then until " +
                format_utc_timestamp(until + contract);
      }
      emit(EngineEvent::Kind::kWatching, a, text);
    }
    return ok_status();
  }
  return complete(a, "every stage done");
}

}  // namespace drover
