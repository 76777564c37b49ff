// LoadedRollout: a rollout as the engine holds it in memory — its deployments, the 8 bytes
// of each a check-in reads, the counts by stratum and stage kept up as deployments change,
// the gate tree (gate_tree.h) with its live evidence, when each device was last heard — and
// assemble_rollout(), which builds it from records. Bookkeeping only: no I/O, no clock (time
// comes in as arguments), no lock (the engine's guards it). Include from the engine's files
// and its tests.
#pragma once

#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "base/huge_pages.h"
#include "model/version.h"
#include "rollout/engine.h"
#include "rollout/gate_tree.h"
#include "rollout/health_gate.h"

namespace drover {

// What a deployment tells its gates. A device in flight is exposed without an outcome (the
// test counts it as a success until it reports); `error` is set exactly when the forward
// install failed, so a reverted device still counts as what it was.
inline GateCounts gate_counts(const Deployment& d) {
  if (d.state == DeploymentState::kPending || d.state == DeploymentState::kCancelled ||
      d.state == DeploymentState::kSkipped || d.state == DeploymentState::kSilent) {
    return {};
  }
  if (is_failure(d.state)) return {1, 1, 1};
  if (d.state == DeploymentState::kSucceeded) return {1, 1, 0};
  if (is_revert(d.state)) return {1, 1, d.error.empty() ? 0 : 1};
  return {1, 0, 0};  // offered, downloading, installing, rebooting
}

inline GateCounts scaled(GateCounts c, int sign) {
  return {c.exposed * sign, c.finished * sign, c.failures * sign};
}

struct LoadedRollout {
  struct Stratum {
    std::string key, hardware_revision, site, connectivity;
    std::vector<uint32_t> path;  // gate nodes from the root down to the stratum's own
    uint32_t pace = 0;           // the node whose first-stage exposure is paced (path[1])
    std::vector<uint32_t> deps;
    std::vector<StateCounts> per_stage;
    GateCounts gate;  // this stratum's outcomes since rollout.gates_from
    bool halted = false;
    FailurePolicy policy = FailurePolicy::kPause;
    // Per plan health metric: the pairs of its updated devices offered since gates_from.
    std::vector<HealthTally> health;
  };
  // The gate tree (gate_tree.h): parents before their children, the root first.
  using Node = GateNode;

  Rollout rollout;
  Artifact artifact;
  Version target;
  // What a check-in reads of a deployment, 8 bytes apiece: most check-ins end here, without
  // touching the Deployment record. Kept equal to deps by build() and commit().
  struct Hot {
    uint32_t stratum = 0;  // index into strata
    uint8_t stage = 0;     // plans have at most 100 stages
    DeploymentState state = DeploymentState::kPending;
    // In flight, and its device said it holds the verified image for its window: it needs
    // nothing from the server until then, so it leaves max_in_flight's count (not
    // persisted; cleared when the deployment changes).
    bool holding = false;
    // Which check-in contract applies (CheckInContract): kContractUnknown until the device
    // checks in, then its connectivity class's index + 1, or kContractDefault.
    uint8_t contract = 0;
  };
  static constexpr uint8_t kContractUnknown = 0;
  static constexpr uint8_t kContractDefault = 255;

  std::vector<Deployment, HugePageAllocator<Deployment>> deps;  // never resized once built
  std::vector<Hot, HugePageAllocator<Hot>> hot;                 // parallel to deps
  // Parallel to deps: when its device last checked in or reported, in seconds after
  // `heard_epoch` (0: not since then). Not persisted: after a restart every device's
  // silence counts from the load, so nobody is judged silent sooner than its contract.
  std::vector<uint32_t> heard;
  Timestamp heard_epoch{};
  Timestamp next_silence_scan{};
  // Health gates: parallel to deps (empty without health metrics), 1 for a device in a
  // pair on either side — each device is in at most one.
  std::vector<uint8_t> health_used;
  Timestamp next_health_scan{};
  void hear(uint32_t i, Timestamp now) {
    heard[i] = static_cast<uint32_t>(std::max<int64_t>(
        1, std::chrono::duration_cast<std::chrono::seconds>(now - heard_epoch).count()));
  }
  Timestamp last_heard(uint32_t i) const { return heard_epoch + std::chrono::seconds(heard[i]); }
  // The device of deployment i checked in (or reported): its silence starts again, and its
  // contract is known from its connectivity class once it has been heard.
  void heard_from(uint32_t i, Timestamp now, std::string_view connectivity) {
    hear(i, now);
    if (hot[i].contract != kContractUnknown) return;
    hot[i].contract = kContractDefault;
    const auto& classes = rollout.plan.contract.by_connectivity;
    for (size_t k = 0; k < classes.size(); ++k) {
      if (classes[k].connectivity != connectivity) continue;
      hot[i].contract = static_cast<uint8_t>(k + 1);
      break;
    }
  }
  // The longest non-zero contract of the plan (0: none).
  Duration longest_contract() const {
    Duration longest = rollout.plan.contract.max_silence;
    for (const auto& cls : rollout.plan.contract.by_connectivity)
      longest = std::max(longest, cls.max_silence);
    return longest;
  }
  // The check-in contract behind Hot::contract. An unknown class gets the longest the plan
  // has, so that no device is judged silent sooner than its own contract allows (never, when
  // some class is never judged).
  Duration contract_of(uint8_t c) const {
    const CheckInContract& k = rollout.plan.contract;
    if (c == kContractDefault) return k.max_silence;
    if (c != kContractUnknown && c <= k.by_connectivity.size())
      return k.by_connectivity[c - 1].max_silence;
    bool some_never = k.max_silence.count() == 0;
    for (const auto& cls : k.by_connectivity) some_never |= cls.max_silence.count() == 0;
    return some_never ? Duration(0) : longest_contract();
  }
  std::vector<StageInsight> insights;  // per stage; sizing notes only after a start here
  std::vector<Stratum> strata;
  std::vector<uint32_t> halted_strata;  // indexes into strata
  // Why devices were never offered (the error of each cancelled deployment), kept by count().
  std::map<std::string, uint32_t, std::less<>> never_offered_why;
  std::vector<StateCounts> stage_totals;  // per stage, over every stratum
  std::vector<Node> nodes;
  FailureTest test{0.025, 0.05};
  RateLimiter limiter;
  uint32_t in_flight = 0;
  uint32_t holding = 0;             // of in_flight, with Hot::holding set
  uint32_t unhealthy_reverted = 0;  // reverted deployments whose forward outcome failed
  uint32_t failed_in_revert = 0;    // other revert states whose forward outcome failed
  uint32_t index = 0;               // the engine's: its position among the loaded rollouts
  uint32_t rollback_tenths = 0;     // of a fleet rollback's reverts, last told (tick)
  bool starting = false;            // the engine's: start() is planning it outside the lock

  void count(const Deployment& d, int sign) {
    Stratum& s = strata[hot[&d - deps.data()].stratum];
    s.per_stage[d.stage][d.state] += sign;
    stage_totals[d.stage][d.state] += sign;
    if (is_in_flight(d.state)) in_flight += sign;
    if (is_revert(d.state) && !d.error.empty()) {
      if (d.state == DeploymentState::kReverted) {
        unhealthy_reverted += sign;
      } else {
        failed_in_revert += sign;
      }
    }
    if (d.state == DeploymentState::kCancelled) {
      auto [it, fresh] = never_offered_why.try_emplace(d.error, 0);
      it->second += sign;
      if (it->second == 0) never_offered_why.erase(it);
    }
    if (d.stage == 0) {
      if (is_in_flight(d.state) && !is_revert(d.state)) nodes[s.pace].first_stage_in_flight += sign;
      if (gate_counts(d).finished != 0) nodes[s.pace].first_stage_finished += sign;
    }
    if (d.offered_at < rollout.gates_from) return;
    count_health(s, d, sign);
    const GateCounts w = scaled(gate_counts(d), sign);
    s.gate += w;
    if (s.halted) return;
    for (uint32_t n : s.path) nodes[n].live += w;
  }

  // A deployment's health pairs, in its stratum's tallies.
  void count_health(Stratum& s, const Deployment& d, int sign) {
    const auto& metrics = rollout.plan.gate.health;
    for (size_t k = 0; k < d.health.size() && k < metrics.size(); ++k)
      s.health[k].add(d.health[k], metrics[k].worse, sign);
  }
  // The health tally of node n on metric k: its strata that are not halted.
  HealthTally node_health(uint32_t n, size_t k) const {
    HealthTally t;
    for (uint32_t si : nodes[n].strata) {
      if (!strata[si].halted) t += strata[si].health[k];
    }
    return t;
  }
  // What the status shows of node n under a halt (its own or one above it): the pairs of its
  // strata but those below a part of it halted on its own — the ones its test left out,
  // shown on that part's row — pairs formed after the halt included.
  HealthTally halted_node_health(uint32_t n, size_t k) const {
    HealthTally t;
    for (uint32_t si : nodes[n].strata) {
      const std::vector<uint32_t>& path = strata[si].path;
      const auto below = std::find(path.begin(), path.end(), n);
      if (below == path.end() ||
          std::any_of(below + 1, path.end(), [&](uint32_t d) { return nodes[d].halted; })) {
        continue;
      }
      t += strata[si].health[k];
    }
    return t;
  }

  // Recounts every gate from the deployments, after rollout.gates_from moved.
  void recount_gates() {
    for (auto& s : strata) {
      s.gate = {};
      s.health.assign(s.health.size(), HealthTally{});
    }
    for (auto& n : nodes) n.live = {};
    for (const Deployment& d : deps) {
      if (d.offered_at < rollout.gates_from) continue;
      Stratum& s = strata[hot[&d - deps.data()].stratum];
      s.gate += gate_counts(d);
      count_health(s, d, +1);
    }
    for (const Stratum& s : strata) {
      if (s.halted) continue;
      for (uint32_t n : s.path) nodes[n].live += s.gate;
    }
  }

  // Rebuilds halt flags from the persisted list of halted nodes.
  void refresh_halts() {
    std::map<std::string, FailurePolicy> halted;
    std::set<std::string> unexplained;
    for (const auto& h : rollout.halted) {
      halted.emplace(h.key, h.policy);
      if (h.unexplained) unexplained.insert(h.key);
    }
    for (auto& n : nodes) {
      n.halted = halted.count(n.key) != 0;
      n.unexplained = unexplained.count(n.key) != 0;
    }
    halted_strata.clear();
    for (auto& s : strata) {
      const bool was_halted = s.halted;
      s.halted = false;
      for (uint32_t n : s.path) {
        if (nodes[n].halted) {
          s.halted = true;
          s.policy = halted.at(nodes[n].key);
          break;
        }
      }
      // Halts written before the gate tree named a stratum by its bare key ("rev-c|lte") or a
      // pool of one dimension ("site=nyc-017"); they still hold the strata they named.
      for (const auto& h : rollout.halted) {
        if (s.halted) break;
        const bool legacy = h.key == s.key || h.key == "hardware_revision=" + s.hardware_revision ||
                            h.key == "site=" + s.site || h.key == "connectivity=" + s.connectivity;
        if (legacy) {
          s.halted = true;
          s.policy = h.policy;
        }
      }
      if (s.halted) halted_strata.push_back(static_cast<uint32_t>(&s - strata.data()));
      if (s.halted != was_halted) {
        const GateCounts w = scaled(s.gate, s.halted ? -1 : +1);
        for (uint32_t n : s.path) nodes[n].live += w;
      }
    }
  }

  bool under_halt(uint32_t n) const { return gate_under_halt(nodes, n); }

  bool all_halted() const { return !strata.empty() && halted_strata.size() == strata.size(); }

  // Counts of one stage (or of all, with stage < 0) in the strata that go on.
  StateCounts live(int stage) const {
    StateCounts c;
    for (size_t k = 0; k < stage_totals.size(); ++k) {
      if (stage < 0 || static_cast<size_t>(stage) == k) c.add(stage_totals[k]);
    }
    for (uint32_t si : halted_strata) {
      for (size_t k = 0; k < stage_totals.size(); ++k) {
        if (stage >= 0 && static_cast<size_t>(stage) != k) continue;
        for (size_t st = 0; st < kDeploymentStateCount; ++st)
          c.n[st] -= strata[si].per_stage[k].n[st];
      }
    }
    return c;
  }

  StateCounts total() const {
    StateCounts c;
    for (const auto& t : stage_totals) c.add(t);
    return c;
  }
};

// The rollout's in-memory state from its records: the artifact it installs and its
// deployments (in any order; strata and gate nodes are numbered as they first appear).
// `now` starts every device's silence. kCorruption for a plan without stages or with more
// than 100, or a deployment of a stage beyond the plan.
Result<std::unique_ptr<LoadedRollout>> assemble_rollout(Rollout r, Artifact artifact,
                                                        std::vector<Deployment> deps,
                                                        Timestamp now);

}  // namespace drover
