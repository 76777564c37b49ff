// A rollout's gate tree (docs/gates.md) and the judgment of one of its groups over counts.
// Pure: no I/O, no clock, no lock. The engine keeps the tree's counts up to date as outcomes
// arrive, asks judge_gate() after every outcome and on every tick, and writes the halt it
// decides.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "model/rollout.h"
#include "rollout/gates.h"
#include "rollout/health_gate.h"

namespace drover {

// The gates form a tree that follows plan.stratify_by: the whole target set at the root,
// then one node per value of the first dimension (a hardware revision, say), then per value
// of the first two (a revision at one site), down to the strata. A node's evidence pools the
// strata below it that are not halted: once a node is halted its failures are explained, and
// must not also condemn its parent. Parents come before their children; the root is first.
struct GateNode {
  std::string key, hardware_revision, site, connectivity;
  uint32_t level = 0;
  int32_t parent = -1;
  std::vector<uint32_t> children;
  std::vector<uint32_t> strata;  // the engine's strata below this node
  bool judged = true;            // false for its parent's only child: the same devices, one test
  double alpha = 0;              // each of its tests' share of the false-halt probability
  GateCounts live;               // outcomes of its strata that are not halted
  bool halted = false;
  bool unexplained = false;            // halted, but not shown worse than its siblings
  uint32_t first_stage_in_flight = 0;  // forward offers of stage 0 not yet finished
  uint32_t first_stage_finished = 0;   // stage-0 deployments with a forward outcome
  uint32_t stalled = 0;  // of first_stage_in_flight, silent for kStalled (counted per tick)
};

// The tree over a rollout's strata, each named by its key: the values of plan.stratify_by's
// dimensions in order, joined by '|' ("rev-c|nyc-001|lte"). A node is named by the dimensions
// down to it ("all", "hardware_revision=rev-c", "hardware_revision=rev-c|site=nyc-001") and
// knows the values it fixes; its `strata` are indexes into `strata`. The false-halt budget
// 1 - confidence is shared out (share_false_halts). Nodes are created in the order the
// strata first reach them.
struct GateTree {
  std::vector<GateNode> nodes;
  std::vector<std::vector<uint32_t>> paths;  // per stratum: its nodes from the root down
};
// `tests`: how many tests each node runs (the failure test and one per health metric): they
// share the node's budget equally.
GateTree build_gate_tree(std::span<const std::string> strata,
                         std::span<const StratumDimension> dimensions, double confidence,
                         uint32_t tests = 1);

// The nodes that split n's devices: its children, or, when it has only one, the first
// descendant level that splits them.
inline const std::vector<uint32_t>& gate_splits(std::span<const GateNode> nodes, uint32_t n) {
  while (nodes[n].children.size() == 1) n = nodes[n].children[0];
  return nodes[n].children;
}

// Whether node n or one above it is halted. Asked of every node at every tick: inline.
inline bool gate_under_halt(std::span<const GateNode> nodes, uint32_t n) {
  for (int32_t k = static_cast<int32_t>(n); k >= 0; k = nodes[static_cast<size_t>(k)].parent) {
    if (nodes[static_cast<size_t>(k)].halted) return true;
  }
  return false;
}

// Marks which nodes hold a test and gives each its share of the false-halt budget,
// 1 - confidence: shared equally by the levels of the tree that hold a test, and within a
// level equally by its nodes (a Bonferroni split: it holds whatever the dependence between
// the tests), and equally by a node's `tests`.
void share_false_halts(std::span<GateNode> nodes, double confidence, uint32_t tests = 1);

// What a group's gate decides. `node` is the group to halt: the one judged, or the part of
// it that carries the evidence alone (then `unexplained` when that part was not shown worse
// than the rest of the group).
struct GateVerdict {
  bool halt = false;  // false: it passes, or waits for more outcomes
  uint32_t node = 0;
  std::string reason;
  bool unexplained = false;
  friend bool operator==(const GateVerdict&, const GateVerdict&) = default;
};

// Judges node x of a tree whose live counts are current, under the plan's gate policy and
// its failure test (unused when the policy tolerates no failure). docs/gates.md: the test,
// its threshold, blame between a group and its parts.
GateVerdict judge_gate(std::span<const GateNode> nodes, uint32_t x, const GatePolicy& gate,
                       const FailureTest& test);

// Health gates' blame (docs/gates.md, "Health gates"): node x's sign test has crossed its
// threshold; the group to halt. Its part with the most evidence takes the halt when x
// without it would not cross, the rest shows nothing by itself (ln 20), and the part's own
// test has crossed too — asked again of that part's parts, down the tree. Otherwise x.
// `tally(n)`: node n's pairs on the metric (its strata that are not halted).
uint32_t health_halt_target(std::span<const GateNode> nodes, uint32_t x,
                            const std::function<HealthTally(uint32_t)>& tally);

}  // namespace drover
