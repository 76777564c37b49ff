#include "rollout/gate_tree.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <unordered_map>

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

GateVerdict halt(uint32_t node, std::string reason, bool unexplained = false) {
  return {true, node, std::move(reason), unexplained};
}

}  // namespace

GateTree build_gate_tree(std::span<const std::string> strata,
                         std::span<const StratumDimension> dimensions, double confidence,
                         uint32_t tests) {
  GateTree t;
  std::unordered_map<std::string, uint32_t> ids;
  auto node_for = [&](const std::string& key, int32_t parent, uint32_t level) {
    auto [it, fresh] = ids.try_emplace(key, static_cast<uint32_t>(t.nodes.size()));
    if (fresh) {
      GateNode n;
      n.key = key;
      n.level = level;
      n.parent = parent;
      if (parent >= 0) {
        GateNode& up = t.nodes[static_cast<size_t>(parent)];
        n.hardware_revision = up.hardware_revision;
        n.site = up.site;
        n.connectivity = up.connectivity;
        up.children.push_back(it->second);
      }
      t.nodes.push_back(std::move(n));
    }
    return it->second;
  };
  for (uint32_t s = 0; s < strata.size(); ++s) {
    std::vector<uint32_t> path{node_for("all", -1, 0)};
    std::string key;
    size_t from = 0;
    for (size_t k = 0; k < dimensions.size() && from != std::string::npos; ++k) {
      const size_t bar = strata[s].find('|', from);
      std::string value = strata[s].substr(from, bar == std::string::npos ? bar : bar - from);
      from = bar == std::string::npos ? bar : bar + 1;
      if (!key.empty()) key += '|';
      key += std::string(to_string(dimensions[k])) + "=" + value;
      const uint32_t id = node_for(key, static_cast<int32_t>(path.back()), k + 1);
      GateNode& n = t.nodes[id];
      switch (dimensions[k]) {
        case StratumDimension::kHardwareRevision:
          n.hardware_revision = std::move(value);
          break;
        case StratumDimension::kSite:
          n.site = std::move(value);
          break;
        case StratumDimension::kConnectivity:
          n.connectivity = std::move(value);
          break;
      }
      path.push_back(id);
    }
    for (uint32_t n : path) t.nodes[n].strata.push_back(s);
    t.paths.push_back(std::move(path));
  }
  share_false_halts(t.nodes, confidence, tests);
  return t;
}

void share_false_halts(std::span<GateNode> nodes, double confidence, uint32_t tests) {
  std::vector<uint32_t> judged_at;
  for (GateNode& n : nodes) {
    n.judged = n.parent < 0 || nodes[static_cast<size_t>(n.parent)].children.size() > 1;
    if (judged_at.size() <= n.level) judged_at.resize(n.level + 1, 0);
    if (n.judged) ++judged_at[n.level];
  }
  const auto levels = static_cast<double>(
      std::count_if(judged_at.begin(), judged_at.end(), [](uint32_t c) { return c > 0; }));
  const double share = (1 - confidence) / std::max<uint32_t>(tests, 1) / levels;
  for (GateNode& n : nodes) n.alpha = n.judged ? share / judged_at[n.level] : 0;
}

GateVerdict judge_gate(std::span<const GateNode> nodes, uint32_t x, const GatePolicy& gate,
                       const FailureTest& test) {
  const GateNode& n = nodes[x];
  if (n.halted || !n.judged) return {};
  const GateCounts e = n.live;
  if (e.failures == 0 || e.finished < gate.min_sample) return {};
  // A limit of 0 tolerates no failure: any one is decisive evidence.
  auto evidence_of = [&](const GateCounts& c) {
    if (gate.max_failure_rate == 0) return c.failures > 0 ? INFINITY : 0.0;
    return test.log_evidence(c.failures, c.exposed);
  };
  auto threshold = [&](uint32_t k) { return -std::log(nodes[k].alpha); };
  double limit = threshold(x);
  const std::vector<uint32_t>& parts = gate_splits(nodes, x);
  // A part of this group was halted on its own evidence without being worse than the rest:
  // what is left is judged as a plain test at 5% (docs/gates.md, "Blame", rule 4).
  bool after_unexplained = false;
  for (uint32_t c : parts) after_unexplained |= nodes[c].halted && nodes[c].unexplained;
  if (after_unexplained) limit = std::min(limit, kRestShowsItToo);
  const double evidence = evidence_of(e);
  if (evidence < limit) return {};
  auto name = [&](uint32_t k) {
    return nodes[k].parent < 0 ? std::string("the rollout") : nodes[k].key;
  };
  // The halt's reason: the node's outcomes and its test against its threshold.
  auto case_against = [&](uint32_t k) {
    const GateNode& m = nodes[k];
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
    const GateNode& up = nodes[static_cast<size_t>(n.parent)];
    // Compared on known outcomes: in-flight devices are successes only to the sequential
    // test, where that errs on the safe side; between two groups it would not.
    const GateCounts rest = up.live - e;
    if (rest.finished >= gate.min_sample) {
      const double p = worse_than_rest_p(e.failures, e.finished, rest.failures, rest.finished);
      if (p >= kBlameLevel) return {};
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
  for (uint32_t c : parts) {
    const GateCounts& ce = nodes[c].live;
    if (nodes[c].halted || ce.failures == 0) continue;
    const double ev = evidence_of(ce);
    if (ev > worst_evidence) {
      worst = c;
      worst_evidence = ev;
    }
  }
  if (worst != UINT32_MAX) {
    const GateCounts& part = nodes[worst].live;
    const GateCounts without = e - part;
    if (evidence_of(without) < limit) {
      // After a part was halted without being worse than the rest, nothing singles out the
      // part that is left either: the group goes as a whole (rule 4).
      const std::string across =
          after_unexplained ? "; part of it was halted already without being worse than the "
                              "rest: the build fails across " +
                                  name(x)
                            : "; no part of it is to blame alone";
      if (without.finished < gate.min_sample && !after_unexplained) return {};
      if (without.finished >= gate.min_sample &&
          worse_than_rest_p(part.failures, part.finished, without.failures, without.finished) <
              kBlameLevel) {
        return {};
      }
      // The part is no worse than the rest, and the rest shows by itself, as a plain test at
      // 5%, that it fails above the acceptable rate: the build is bad across this group.
      if (evidence_of(without) >= kRestShowsItToo || after_unexplained) {
        return halt(x, case_against(x) + across);
      }
      if (worst_evidence < threshold(worst) || part.finished < gate.min_sample) {
        return {};  // wait: more outcomes will tell the part from the rest
      }
      // The part has a case of its own and the rest has none: the part is halted on its own
      // evidence, and the rest goes on under this group's gate.
      return halt(
          worst,
          case_against(worst) + "; without it " + name(x) + " has none (" + describe(without) + ")",
          true);
    }
  }
  return halt(x, case_against(x) + blame);
}

uint32_t health_halt_target(std::span<const GateNode> nodes, uint32_t x,
                            const std::function<HealthTally(uint32_t)>& tally) {
  auto evidence = [](const HealthTally& t) { return health_log_evidence(t.worse, t.informative); };
  auto threshold = [&](uint32_t n) { return -std::log(nodes[n].alpha); };
  uint32_t target = x;
  for (;;) {
    const HealthTally all = tally(target);
    int64_t worst = -1;
    double worst_evidence = -std::numeric_limits<double>::infinity();
    for (uint32_t c : gate_splits(nodes, target)) {
      if (nodes[c].halted) continue;
      const double e = evidence(tally(c));
      if (e > worst_evidence) {
        worst_evidence = e;
        worst = c;
      }
    }
    if (worst < 0) return target;
    const auto part = static_cast<uint32_t>(worst);
    const double rest = evidence(all - tally(part));
    if (rest >= threshold(target) || rest >= kRestShowsItToo) return target;
    if (worst_evidence < threshold(part)) return target;
    target = part;
  }
}

}  // namespace drover
