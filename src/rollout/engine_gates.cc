// The engine's gate judgements (docs/gates.md: the tree, the test, blame) and its account of
// how a rollout's targets ended up (outcome, progress, summary and the other queries).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iterator>
#include <limits>
#include <unordered_map>

#include "rollout/engine.h"
#include "rollout/engine_state.h"
#include "rollout/gates.h"

namespace drover {

namespace {

// Below this one-sided p-value a group is "worse than the rest" of its parent, and the
// parent's failures are blamed on it (docs/gates.md, "Blame").
constexpr double kBlameLevel = 0.01;
// ln(1 / 0.05): the evidence at which the rest of a group, without its worst part, shows by
// itself that it fails above the acceptable rate (docs/gates.md, "Blame", rule 2).
const double kRestShowsItToo = std::log(20.0);

std::string describe(const GateCounts& c) {
  char buf[96];
  std::snprintf(buf, sizeof buf, "%lld of %lld failed (%.1f%%)", static_cast<long long>(c.failures),
                static_cast<long long>(c.finished),
                c.finished > 0 ? 100.0 * static_cast<double>(c.failures) / c.finished : 0.0);
  return buf;
}

std::string format_number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3g", v);
  return buf;
}

}  // namespace

double RolloutEngine::threshold(const Active& a, uint32_t n) { return -std::log(a.nodes[n].alpha); }

namespace {
// A halt's outcome: halted, or the error that kept it from being written.
Result<RolloutEngine::GateOutcome> halted(const Status& written) {
  if (!written.ok()) return written.error();
  return RolloutEngine::GateOutcome::kHalted;
}
}  // namespace

Result<RolloutEngine::GateOutcome> RolloutEngine::judge_node(Active& a, uint32_t x) {
  const Active::Node& n = a.nodes[x];
  if (n.halted || !n.judged) return GateOutcome::kPassed;
  const GatePolicy& gate = a.rollout.plan.gate;
  const GateCounts e = n.live;
  if (e.failures == 0 || e.finished < gate.min_sample) return GateOutcome::kPassed;
  // A limit of 0 tolerates no failure: any one is decisive evidence.
  auto evidence_of = [&](const GateCounts& c) {
    if (gate.max_failure_rate == 0) return c.failures > 0 ? INFINITY : 0.0;
    return a.test.log_evidence(c.failures, c.exposed);
  };
  double limit = threshold(a, x);
  // A part of this group was halted on its own evidence without being worse than the rest:
  // what is left is judged as a plain test at 5% (docs/gates.md, "Blame", rule 4).
  bool after_unexplained = false;
  for (uint32_t c : a.splits(x)) after_unexplained |= a.nodes[c].halted && a.nodes[c].unexplained;
  if (after_unexplained) limit = std::min(limit, kRestShowsItToo);
  const double evidence = evidence_of(e);
  if (evidence < limit) return GateOutcome::kPassed;
  auto name = [&](uint32_t k) {
    return a.nodes[k].parent < 0 ? std::string("the rollout") : a.nodes[k].key;
  };
  // The halt's reason: the node's outcomes and its test against its threshold.
  auto case_against = [&](uint32_t k) {
    const Active::Node& m = a.nodes[k];
    return describe(m.live) + ", " + std::to_string(m.live.exposed) +
           " offered; likelihood ratio " + format_number(std::exp(evidence_of(m.live))) +
           " >= " + format_number(1 / m.alpha) + " (this group's share " + format_number(m.alpha) +
           " of the rollout's false-halt bound " + format_number(1 - gate.confidence) + ")";
  };

  std::string blame;
  if (n.parent >= 0) {
    // Halting a group says "this group, not its siblings": it must be worse than the rest
    // of its parent, or the evidence is against the parent, whose own gate holds it. When
    // the rest has too few devices to compare with, this group's own evidence decides.
    const Active::Node& up = a.nodes[static_cast<size_t>(n.parent)];
    // Compared on known outcomes: in-flight devices are successes only to the sequential
    // test, where that errs on the safe side; between two groups it would not.
    const GateCounts rest = up.live - e;
    if (rest.finished >= gate.min_sample) {
      const double p = worse_than_rest_p(e.failures, e.finished, rest.failures, rest.finished);
      if (p >= kBlameLevel) return GateOutcome::kPassed;
      blame = "; the rest of " + (up.parent < 0 ? std::string("the rollout") : up.key) + ": " +
              describe(rest) + ", p = " + format_number(p);
    }
  }
  // The converse: when one part of this group carries the evidence (the rest has no case
  // without it), that part is to blame and its own gate halts it, provided it is worse
  // than the rest or the rest is too small to compare with. Otherwise the group waits for
  // more outcomes while that part's own test has not decided; once it has, the part is
  // halted on its own evidence (below) and the rest goes on under this group's gate.
  uint32_t worst = UINT32_MAX;
  double worst_evidence = -std::numeric_limits<double>::infinity();
  for (uint32_t c : a.splits(x)) {
    const GateCounts& ce = a.nodes[c].live;
    if (a.nodes[c].halted || ce.failures == 0) continue;
    const double ev = evidence_of(ce);
    if (ev > worst_evidence) {
      worst = c;
      worst_evidence = ev;
    }
  }
  if (worst != UINT32_MAX) {
    const GateCounts& part = a.nodes[worst].live;
    const GateCounts without = e - part;
    if (evidence_of(without) < limit) {
      // After a part was halted without being worse than the rest, nothing singles out the
      // part that is left either: the group goes as a whole (rule 4).
      const std::string across =
          after_unexplained ? "; part of it was halted already without being worse than the "
                              "rest: the build fails across " +
                                  name(x)
                            : "; no part of it is to blame alone";
      if (without.finished < gate.min_sample && !after_unexplained) return GateOutcome::kPassed;
      if (without.finished >= gate.min_sample &&
          worse_than_rest_p(part.failures, part.finished, without.failures, without.finished) <
              kBlameLevel) {
        return GateOutcome::kPassed;
      }
      // The part is no worse than the rest, and the rest shows by itself, as a plain test at
      // 5%, that it fails above the acceptable rate: the build is bad across this group.
      if (evidence_of(without) >= kRestShowsItToo || after_unexplained) {
        return halted(halt_node(a, x, case_against(x) + across));
      }
      if (worst_evidence < threshold(a, worst) || part.finished < gate.min_sample) {
        return GateOutcome::kPassed;  // wait: more outcomes will tell the part from the rest
      }
      // The part has a case of its own and the rest has none: the part is halted on its own
      // evidence, and the rest goes on under this group's gate.
      const std::string why =
          case_against(worst) + "; without it " + name(x) + " has none (" + describe(without) + ")";
      return halted(halt_node(a, worst, why, true));
    }
  }
  return halted(halt_node(a, x, case_against(x) + blame));
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
