// The engine's halts (the judgement itself is gate_tree.h's: docs/gates.md) and its account
// of how a rollout's targets ended up (outcome, progress, summary and the other queries).
#include <algorithm>
#include <cmath>
#include <iterator>
#include <unordered_map>

#include "rollout/engine.h"
#include "rollout/engine_state.h"
#include "rollout/gate_tree.h"

namespace drover {

Result<RolloutEngine::GateOutcome> RolloutEngine::judge_node(Active& a, uint32_t x) {
  const GateVerdict v = judge_gate(a.nodes, x, a.rollout.plan.gate, a.test);
  if (!v.halt) return GateOutcome::kPassed;
  DROVER_TRY(halt_node(a, v.node, v.reason, v.unexplained));
  return GateOutcome::kHalted;
}

Status RolloutEngine::halt_node(Active& a, uint32_t x, const std::string& reason,
                                bool unexplained) {
  const Active::Node& n = a.nodes[x];
  const FailurePolicy policy = a.rollout.plan.on_failure;
  Txn txn;
  Rollout& r = txn.rollout(a);
  r.halted.push_back({n.key, n.hardware_revision, n.site, n.connectivity, reason, policy,
                      clock_.now(), unexplained});
  RevertGaps gaps;
  for (uint32_t s : n.strata) {
    if (!a.strata[s].halted) {
      gaps += revert_or_cancel(a, txn, s, policy,
                               (n.parent < 0 ? std::string("the rollout") : n.key) + " halted",
                               "halted: " + reason);
    }
  }
  uint32_t cancelled = 0, reverts = 0;
  for (const Deployment& d : txn.batch.deployments) {
    if (d.state == DeploymentState::kCancelled) ++cancelled;
    if (d.state == DeploymentState::kRevertPending) ++reverts;
  }
  std::string text = (n.parent < 0 ? std::string("the whole rollout") : n.key) +
                     " halted: " + reason + "; policy " + to_string(policy);
  if (policy != FailurePolicy::kPause) text += ", " + std::to_string(cancelled) + " not offered";
  if (policy == FailurePolicy::kRollback) {
    text += ", " + std::to_string(reverts) + " to revert";
    if (gaps.no_image > 0) {
      text += ", " + std::to_string(gaps.no_image) +
              " cannot be sent back (no previous image kept, and the version they ran is not "
              "uploaded)";
    }
    if (gaps.departed > 0)
      text += ", " + std::to_string(gaps.departed) + " left the fleet on the new version";
  }
  txn.events.push_back({EngineEvent::Kind::kStratumHalted, clock_.now(), a.rollout.id, text});
  DROVER_TRY(commit(a, txn));
  return fail_if_all_halted(a);
}

Status RolloutEngine::fail_if_all_halted(Active& a) {
  const RolloutState st = a.rollout.state;
  if (a.all_halted() && (st == RolloutState::kRunning || st == RolloutState::kPaused ||
                         st == RolloutState::kWatching)) {
    DROVER_TRY(transition(a, RolloutEvent::kAllHalted));
    emit(EngineEvent::Kind::kFailed, a, "every stratum halted");
  }
  return ok_status();
}

RolloutOutcome RolloutEngine::outcome_of(const Active& a) const {
  using S = DeploymentState;
  const StateCounts t = a.total();
  RolloutOutcome o;
  o.targets = t.total();
  o.updated = t[S::kSucceeded];
  o.install_failed = t[S::kFailed];
  o.fell_back = t[S::kRolledBack];
  o.unhealthy = t[S::kUnhealthy];
  o.unhealthy_reverted = a.unhealthy_reverted;
  o.reverted = t[S::kReverted] - a.unhealthy_reverted;
  o.reverting = t[S::kRevertPending] + t[S::kReverting];
  o.revert_failed = t[S::kRevertFailed];
  o.skipped = t[S::kSkipped];
  o.never_offered = t[S::kCancelled];
  o.pending = t[S::kPending];
  o.in_flight = t.in_flight() - t[S::kReverting];
  o.silent = t[S::kSilent];
  o.went_silent = t[S::kLost];
  o.failed_in_revert = a.failed_in_revert;
  for (const auto& [reason, devices] : a.never_offered_why)
    o.never_offered_why.push_back({reason.empty() ? "no reason recorded" : reason, devices});
  std::stable_sort(o.never_offered_why.begin(), o.never_offered_why.end(),
                   [](const auto& x, const auto& y) { return x.devices > y.devices; });
  std::unordered_map<std::string_view, uint32_t> by_key;
  for (uint32_t k = 0; k < a.nodes.size(); ++k) by_key.emplace(a.nodes[k].key, k);
  // A halt counts the strata it stopped: a group halted after a part of it (rule 4) leaves
  // that part to the earlier halt, so the entries add up.
  std::vector<bool> counted(a.strata.size(), false);
  for (const HaltedStratum& h : a.rollout.halted) {
    RolloutOutcome::Halted out{h.key, h.reason, 0, 0, 0};
    auto it = by_key.find(h.key);
    if (it != by_key.end()) {
      for (uint32_t si : a.nodes[it->second].strata) {
        if (counted[si]) continue;
        counted[si] = true;
        for (const StateCounts& c : a.strata[si].per_stage) {
          out.devices += c.total();
          out.never_offered += c[S::kCancelled];
          if (h.policy == FailurePolicy::kRollback)
            out.not_reverted += c[S::kSucceeded] + c[S::kUnhealthy] + c[S::kLost];
        }
      }
    }
    o.halted.push_back(std::move(out));
  }
  return o;
}

Status RolloutEngine::complete(Active& a, const std::string& why) {
  const RolloutOutcome o = outcome_of(a);
  const bool whole = o.halted.empty() && o.failed() == 0 && o.revert_failed == 0 &&
                     o.never_offered == 0 && o.silent == 0 && o.updated + o.skipped == o.targets;
  std::string text =
      why + ": " + std::to_string(o.updated) + " of " + std::to_string(o.targets) + " updated";
  if (o.skipped > 0) text += ", " + std::to_string(o.skipped) + " excluded by a rule";
  if (!whole) {
    text += "; " + std::to_string(o.halted.size()) +
            (o.halted.size() == 1 ? " group halted, " : " groups halted, ") +
            std::to_string(o.never_offered) + " never offered, " + std::to_string(o.failed()) +
            " failed, " + std::to_string(o.reverted + o.unhealthy_reverted) + " sent back";
    if (o.silent > 0)
      text += ", " + std::to_string(o.silent) + " silent past their check-in contract";
  }
  DROVER_TRY(transition(a, whole ? RolloutEvent::kComplete : RolloutEvent::kCompletePartial));
  emit(whole ? EngineEvent::Kind::kCompleted : EngineEvent::Kind::kCompletedPartial, a, text);
  return ok_status();
}

// ---------------------------------------------------------------- queries

Result<std::vector<StageInsight>> RolloutEngine::stage_insights(const std::string& rollout_id) {
  MutexLock lock(mu_);
  Active* a = find(rollout_id);
  if (a == nullptr) return not_found("no active rollout '" + rollout_id + "'");
  const auto reached = std::min<std::ptrdiff_t>(std::ssize(a->insights), a->rollout.stage + 1);
  return std::vector<StageInsight>(a->insights.begin(), a->insights.begin() + reached);
}

Result<Rollout> RolloutEngine::get(const std::string& rollout_id) {
  {
    MutexLock lock(mu_);
    if (Active* a = find(rollout_id)) return a->rollout;
  }
  auto r = store_.get_rollout(rollout_id);
  if (!r.ok()) return r.error();
  if (!r->has_value()) return not_found("no rollout '" + rollout_id + "'");
  return std::move(**r);
}

Result<RolloutProgress> RolloutEngine::progress(const std::string& rollout_id) {
  MutexLock lock(mu_);
  Active* a = find(rollout_id);
  if (a == nullptr) return not_found("no active rollout '" + rollout_id + "'");
  RolloutProgress p;
  p.rollout = a->rollout;
  p.outcome = outcome_of(*a);
  p.per_stage.resize(a->rollout.plan.stages.size());
  for (const auto& s : a->strata) {
    StratumProgress sp;
    sp.key = s.key;
    sp.hardware_revision = s.hardware_revision;
    sp.site = s.site;
    sp.connectivity = s.connectivity;
    sp.halted = s.halted;
    for (size_t k = 0; k < s.per_stage.size(); ++k) {
      sp.counts.add(s.per_stage[k]);
      p.per_stage[k].add(s.per_stage[k]);
    }
    sp.successes = static_cast<uint32_t>(s.gate.finished - s.gate.failures);
    sp.failures = static_cast<uint32_t>(s.gate.failures);
    p.total.add(sp.counts);
    p.strata.push_back(std::move(sp));
  }
  const auto& metrics = a->rollout.plan.gate.health;
  for (uint32_t k = 0; k < metrics.size(); ++k) {
    for (uint32_t n = 0; n < a->nodes.size(); ++n) {
      const Active::Node& node = a->nodes[n];
      if (node.level > 1 || !node.judged) continue;
      HealthGateStatus h;
      h.group = node.key;
      h.metric = k;
      h.halted = a->under_halt(n);
      h.tally = h.halted ? a->halted_node_health(n, k) : a->node_health(n, k);
      h.log_evidence = health_log_evidence(h.tally.worse, h.tally.informative);
      h.threshold = -std::log(node.alpha);
      p.health.push_back(std::move(h));
    }
  }
  if (!metrics.empty()) {
    for (uint32_t i = 0; i < a->deps.size(); ++i) {
      if (a->hot[i].state == DeploymentState::kSucceeded && a->health_used[i] == 0 &&
          a->deps[i].health.empty()) {
        ++p.health_waiting;
      }
    }
  }
  return p;
}

Result<RolloutSummary> RolloutEngine::summary(const std::string& rollout_id) {
  MutexLock lock(mu_);
  Active* a = find(rollout_id);
  if (a == nullptr) return not_found("no active rollout '" + rollout_id + "'");
  return RolloutSummary{a->rollout.state, a->rollout.targets, a->total(), a->live(-1)};
}

std::vector<std::string> RolloutEngine::loaded_rollouts() {
  MutexLock lock(mu_);
  std::vector<std::string> ids;
  for (const auto& a : active_) ids.push_back(a->rollout.id);
  return ids;
}

}  // namespace drover
