// Health gates in the engine (docs/gates.md, "Health gates"): pairs formed as updated devices'
// windows pass, and each gate node judged on each health metric of the plan.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <string>
#include <unordered_set>
#include <vector>

#include "base/random.h"
#include "base/units.h"
#include "rollout/engine.h"
#include "rollout/engine_state.h"
#include "rollout/health_gate.h"

namespace drover {
namespace {

// Partners tried for an updated device before it is left without one (the devices of its
// stratum that have no data in the pair's windows: dark, or not sending the metric).
constexpr int kPartnerTries = 8;
// Devices of the stratum looked at for a partner, taken or not: a stratum whose devices
// are nearly all offered is not walked through for each updated device.
constexpr size_t kPartnerLooks = 64;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

std::string number(double v) {
  if (!std::isfinite(v)) return "n/a";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3g", v);
  return buf;
}

std::string describe(const HealthMetric& m, Duration window) {
  return m.metric + " (" + to_string(m.measure) + " over " + format_duration(window) +
         " windows, " + to_string(m.worse) + " is worse)";
}

}  // namespace

bool RolloutEngine::touched_elsewhere(const Active& a, std::string_view device, Timestamp from,
                                      Timestamp to) const {
  for (uint64_t ref : deployments_of(device)) {
    const Active& other = *active_[ref >> 32];
    if (&other == &a) continue;
    const Deployment& o = other.deps[ref & 0xffffffffu];
    if (is_zero(o.offered_at) || o.offered_at >= to) continue;
    if (is_in_flight(o.state) || is_revert(o.state) || o.updated_at >= from) return true;
  }
  return false;
}

bool RolloutEngine::health_due(const Active& a, uint32_t i, Timestamp now) const {
  if (a.hot[i].state != DeploymentState::kSucceeded || a.health_used[i] != 0) return false;
  const Deployment& d = a.deps[i];
  // updated_at is the commit while the deployment is succeeded.
  return d.health.empty() && !is_zero(d.offered_at) &&
         d.updated_at + a.rollout.plan.gate.health_window + kHealthLateTelemetry <= now;
}

bool RolloutEngine::health_partner_free(const Active& a, uint32_t j, Timestamp from,
                                        Timestamp to) const {
  return a.hot[j].state == DeploymentState::kPending && is_zero(a.deps[j].offered_at) &&
         a.health_used[j] == 0 && !touched_elsewhere(a, a.deps[j].device_id, from, to);
}

namespace {

// Where the partner search of deployment `d` starts among its stratum's `count` devices: a
// hash of its id and the rollout's — as good as random with respect to the metric, and the
// same after a restart.
size_t partner_start(const Deployment& d, std::string_view rollout_id, size_t count) {
  return stable_hash(d.device_id, stable_hash(rollout_id)) % count;
}

}  // namespace

RolloutEngine::HealthReads RolloutEngine::plan_health_reads(Timestamp now) {
  HealthReads reads;
  reads.planned_at = now;
  for (const auto& ap : active_) {
    const Active& a = *ap;
    const GatePolicy& gate = a.rollout.plan.gate;
    const RolloutState state = a.rollout.state;
    if (gate.health.empty() || now < a.next_health_scan ||
        (state != RolloutState::kRunning && state != RolloutState::kPaused &&
         state != RolloutState::kWatching)) {
      continue;
    }
    HealthReads::Pass pass;
    pass.rollout = a.rollout.id;
    pass.metrics = gate.health;
    uint32_t planned = 0;
    for (uint32_t i = 0; i < a.deps.size() && planned < kHealthPairsPerPass; ++i) {
      if (!health_due(a, i, now)) continue;
      ++planned;
      const Deployment& d = a.deps[i];
      HealthReads::Due due;
      due.device = d.device_id;
      due.offered = d.offered_at;
      due.committed = d.updated_at;
      due.from = d.offered_at - gate.health_window;
      due.to = d.updated_at + gate.health_window;
      if (d.offered_at < a.rollout.gates_from ||
          touched_elsewhere(a, d.device_id, due.from, due.to))
        continue;  // recorded without a pair, nothing read
      const std::vector<uint32_t>& candidates = a.strata[a.hot[i].stratum].deps;
      if (!candidates.empty()) {
        const size_t start = partner_start(d, a.rollout.id, candidates.size());
        const size_t looks = std::min<size_t>(candidates.size(), kPartnerLooks);
        // The walk skips partners taken before it in the pass: it tries no more than
        // kPartnerTries and those.
        const size_t enough = kPartnerTries + pass.due.size();
        for (size_t step = 0; step < looks && due.candidates.size() < enough; ++step) {
          const uint32_t j = candidates[(start + step) % candidates.size()];
          if (health_partner_free(a, j, due.from, due.to))
            due.candidates.push_back(a.deps[j].device_id);
        }
      }
      pass.due.push_back(std::move(due));
    }
    reads.passes.push_back(std::move(pass));
  }
  return reads;
}

void RolloutEngine::read_health(HealthSource& source, HealthReads& reads) {
  for (const HealthReads::Pass& pass : reads.passes) {
    const size_t metrics = pass.metrics.size();
    std::unordered_set<std::string_view> taken;  // partners of this pass
    for (const HealthReads::Due& due : pass.due) {
      // Each change read as form_health_pairs() will ask for it; false when the source failed.
      auto change = [&](const std::string& device, const HealthMetric& m, double& out) {
        auto before = source.measure(device, m, due.from, due.offered);
        auto after = source.measure(device, m, due.committed, due.to);
        const bool read = before.ok() && after.ok();
        out = read && *before && *after ? **after - **before : kNaN;
        reads.keep(device, m, due.from, due.offered, std::move(before));
        reads.keep(device, m, due.committed, due.to, std::move(after));
        return read;
      };
      std::vector<double> updated(metrics, kNaN);
      bool any = false, read = true;
      for (size_t k = 0; k < metrics && read; ++k) {
        read = change(due.device, pass.metrics[k], updated[k]);
        any |= std::isfinite(updated[k]);
      }
      if (!read || !any) continue;
      int tries = 0;
      for (const std::string& c : due.candidates) {
        if (tries == kPartnerTries) break;
        if (taken.count(c) != 0) continue;
        ++tries;
        bool usable = false;
        for (size_t k = 0; k < metrics && read; ++k) {
          if (!std::isfinite(updated[k])) continue;
          double control = kNaN;
          read = change(c, pass.metrics[k], control);
          usable |= std::isfinite(control);
        }
        if (!read) break;
        if (usable) {
          taken.insert(c);
          break;
        }
      }
    }
  }
}

std::string RolloutEngine::HealthReads::key(std::string_view device_id, const HealthMetric& metric,
                                            Timestamp from, Timestamp to) {
  std::string k(device_id);
  k += '\0';
  k += metric.metric;
  k += '\0';
  k += to_string(metric.measure);
  k += '\0';
  k += std::to_string(from.time_since_epoch().count());
  k += '\0';
  k += std::to_string(to.time_since_epoch().count());
  return k;
}

void RolloutEngine::HealthReads::keep(std::string_view device_id, const HealthMetric& metric,
                                      Timestamp from, Timestamp to,
                                      Result<std::optional<double>> answer) {
  answered_.insert_or_assign(key(device_id, metric, from, to), std::move(answer));
}

Result<std::optional<double>> RolloutEngine::HealthReads::measure(std::string_view device_id,
                                                                  const HealthMetric& metric,
                                                                  Timestamp from, Timestamp to) {
  auto it = answered_.find(key(device_id, metric, from, to));
  if (it == answered_.end()) {
    ++misses;
    return Error{ErrorCode::kFailedPrecondition, "not read in this tick: the pair waits"};
  }
  return it->second;
}

Status RolloutEngine::form_health_pairs(Active& a, HealthReads& source) {
  const GatePolicy& gate = a.rollout.plan.gate;
  // Judged as the tick planned it (the time may have moved on while the source was read): a
  // rollout the plan left out waits for the next tick.
  const Timestamp now = source.planned_at;
  if (gate.health.empty() || options_.health == nullptr || now < a.next_health_scan ||
      !source.planned(a.rollout.id)) {
    return ok_status();
  }
  a.next_health_scan = now + kHealthScan;
  const uint64_t misses_before = source.misses;
  const Duration w = gate.health_window;
  const size_t metrics = gate.health.size();

  Txn txn;
  std::vector<uint32_t> partners;      // taken in this pass (their deployment indexes)
  std::unordered_set<uint32_t> taken;  // the same, for lookup
  std::vector<HealthPair> pairs(metrics);
  uint32_t formed_here = 0;
  for (uint32_t i = 0; i < a.deps.size(); ++i) {
    if (!health_due(a, i, now)) continue;
    const Deployment& d = a.deps[i];
    if (formed_here == kHealthPairsPerPass) {
      a.next_health_scan = now;  // the rest at the next tick
      break;
    }
    ++formed_here;
    // The pair's windows: before the offer and after the commit, the same for both devices.
    const Timestamp from = d.offered_at - w, to = d.updated_at + w;
    std::string why;
    bool failed = false;  // the source could not be read: this device waits for a later pass
    auto change = [&](std::string_view device, const HealthMetric& m) {
      if (failed) return kNaN;  // read_health stopped there too: nothing more was read
      auto before = source.measure(device, m, from, d.offered_at);
      auto after = source.measure(device, m, d.updated_at, to);
      if (!before.ok() || !after.ok()) {
        failed = true;
        return kNaN;
      }
      return *before && *after ? **after - **before : kNaN;
    };
    bool any = false;
    pairs.assign(metrics, HealthPair{});
    // Offered before an operator's resume: its pair would not count (gates_from); it takes
    // no partner either.
    const bool counts = d.offered_at >= a.rollout.gates_from;
    if (!counts) {
      why = "offered before the gates' window (a resume) began: not paired";
    } else if (touched_elsewhere(a, d.device_id, from, to)) {
      why = "another rollout updated it within the pair's windows: not paired";
    } else {
      for (size_t k = 0; k < metrics; ++k) {
        pairs[k].updated = change(d.device_id, gate.health[k]);
        any |= std::isfinite(pairs[k].updated);
      }
      if (!any) why = "no data in the windows before its offer and after its commit";
    }
    if (failed) continue;
    // The partner: a device of the stratum not offered the update yet (so not within the
    // pair's windows either) and in no pair, drawn by the updated device's id.
    std::string partner;
    uint32_t partner_index = 0;
    const std::vector<uint32_t>& candidates = a.strata[a.hot[i].stratum].deps;
    if (any && !candidates.empty()) {
      const size_t start = partner_start(d, a.rollout.id, candidates.size());
      int tries = 0;
      const size_t looks = std::min<size_t>(candidates.size(), kPartnerLooks);
      for (size_t step = 0; step < looks && tries < kPartnerTries && !failed; ++step) {
        const uint32_t j = candidates[(start + step) % candidates.size()];
        if (taken.count(j) != 0 || !health_partner_free(a, j, from, to)) continue;
        ++tries;
        bool usable = false;
        std::vector<double> control(metrics, kNaN);
        for (size_t k = 0; k < metrics; ++k) {
          if (!std::isfinite(pairs[k].updated)) continue;
          control[k] = change(a.deps[j].device_id, gate.health[k]);
          usable |= std::isfinite(control[k]);
        }
        if (!usable) continue;
        for (size_t k = 0; k < metrics; ++k) pairs[k].control = control[k];
        partner = a.deps[j].device_id;
        partner_index = j;
        break;
      }
      if (partner.empty())
        why = "no device of its stratum not yet updated, with data, to pair it with";
    }
    if (failed) continue;
    Deployment& out = txn.dep(a, i);
    out.health = pairs;
    out.health_partner = partner;
    std::string message = why;
    if (!partner.empty()) {
      message = "paired with " + partner + " (not yet updated) over the " + format_duration(w) +
                " before the offer and after the commit:";
      for (size_t k = 0; k < metrics; ++k) {
        message += " " + gate.health[k].metric + " (" + to_string(gate.health[k].measure) +
                   ") changed " + number(pairs[k].updated) + " against " +
                   number(pairs[k].control) + (k + 1 < metrics ? ";" : "");
      }
      partners.push_back(partner_index);
      taken.insert(partner_index);
    }
    txn.batch.steps.push_back(
        {d.rollout_id, d.device_id, now, "health_pair", d.state, step_message(message)});
  }
  // A device whose values were not read waits for the next tick, not the next pass: what
  // changed since the plan (a partner offered by a check-in meanwhile) is no reason to be late
  // for the stage's soak, which allows for one pass.
  if (source.misses != misses_before) a.next_health_scan = now;
  if (txn.batch.deployments.empty()) return ok_status();
  if (!options_.history) txn.batch.steps.clear();
  const std::vector<uint32_t> formed = txn.dep_index;
  DROVER_TRY(commit(a, txn));
  for (uint32_t i : formed) a.health_used[i] = 1;
  for (uint32_t j : partners) a.health_used[j] = 1;
  return ok_status();
}

Status RolloutEngine::judge_health_gates(Active& a) {
  const GatePolicy& gate = a.rollout.plan.gate;
  if (gate.health.empty()) return ok_status();
  auto threshold = [&](uint32_t n) { return -std::log(a.nodes[n].alpha); };
  for (uint32_t k = 0; k < gate.health.size(); ++k) {
    auto evidence = [&](const HealthTally& t) {
      return health_log_evidence(t.worse, t.informative);
    };
    for (uint32_t x = 0; x < a.nodes.size(); ++x) {
      if (!a.nodes[x].judged || a.under_halt(x)) continue;
      if (evidence(a.node_health(x, k)) < threshold(x)) continue;
      // Blame (docs/gates.md, "Health gates"): the group crossed; it or a part of it that
      // carries the case and crossed too is halted.
      const uint32_t target =
          health_halt_target(a.nodes, x, [&](uint32_t n) { return a.node_health(n, k); });
      DROVER_TRY(halt_node(a, target, health_reason(a, target, k)));
    }
  }
  return ok_status();
}

std::string RolloutEngine::health_reason(const Active& a, uint32_t x, size_t k) const {
  const GatePolicy& gate = a.rollout.plan.gate;
  std::vector<HealthPair> pairs;
  for (uint32_t si : a.nodes[x].strata) {
    if (a.strata[si].halted) continue;
    for (uint32_t i : a.strata[si].deps) {
      const Deployment& d = a.deps[i];
      if (k < d.health.size() && d.offered_at >= a.rollout.gates_from) pairs.push_back(d.health[k]);
    }
  }
  const HealthEffect e = judge_health(pairs, gate.health[k].worse);
  std::string reason = "health: " + describe(gate.health[k], gate.health_window) +
                       ": the updated device was the worse in " + std::to_string(e.worse) + " of " +
                       std::to_string(e.pairs - e.ties) + " untied pairs (" +
                       std::to_string(e.ties) + " tied); evidence " + number(e.log_evidence) +
                       " >= ln " + number(1 / a.nodes[x].alpha) +
                       "; median change updated - not updated " + number(e.shift);
  if (std::isfinite(e.shift_low))
    reason += " (95% interval " + number(e.shift_low) + " to " + number(e.shift_high) + ")";
  reason += "; medians: updated " + number(e.updated_median) + ", not updated " +
            number(e.control_median);
  return reason;
}

}  // namespace drover
