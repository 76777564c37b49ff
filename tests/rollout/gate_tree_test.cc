#include "rollout/gate_tree.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

namespace drover {
namespace {

using Dim = StratumDimension;
using Keys = std::vector<std::string>;

// A tree over `keys` whose live counts are the strata's `counts`, pooled up each path as the
// engine pools them.
GateTree tree_with(const std::vector<std::string>& keys, const std::vector<Dim>& dims,
                   const std::vector<GateCounts>& counts, double confidence = 0.95) {
  GateTree t = build_gate_tree(keys, dims, confidence);
  for (size_t s = 0; s < counts.size(); ++s) {
    for (uint32_t n : t.paths[s]) t.nodes[n].live += counts[s];
  }
  return t;
}

uint32_t node_named(const GateTree& t, const std::string& key) {
  for (uint32_t k = 0; k < t.nodes.size(); ++k) {
    if (t.nodes[k].key == key) return k;
  }
  ADD_FAILURE() << "no node " << key;
  return 0;
}

GateCounts finished(int64_t n, int64_t failures) { return {n, n, failures}; }

TEST(GateTree, NodesFollowTheDimensionsAndOnlyChildrenAreNotJudged) {
  const GateTree t = build_gate_tree(
      Keys{"rev-a|nyc|lte", "rev-a|bos|lte", "rev-b|nyc|lte"},
      std::vector<Dim>{Dim::kHardwareRevision, Dim::kSite, Dim::kConnectivity}, 0.94);
  std::vector<std::string> keys;
  for (const GateNode& n : t.nodes) keys.push_back(n.key);
  const std::vector<std::string> want{
      "all",
      "hardware_revision=rev-a",
      "hardware_revision=rev-a|site=nyc",
      "hardware_revision=rev-a|site=nyc|connectivity=lte",
      "hardware_revision=rev-a|site=bos",
      "hardware_revision=rev-a|site=bos|connectivity=lte",
      "hardware_revision=rev-b",
      "hardware_revision=rev-b|site=nyc",
      "hardware_revision=rev-b|site=nyc|connectivity=lte",
  };
  EXPECT_EQ(keys, want);
  ASSERT_EQ(t.paths.size(), 3u);
  EXPECT_EQ(t.paths[1], (std::vector<uint32_t>{0, 1, 4, 5}));
  EXPECT_EQ(t.nodes[0].strata, (std::vector<uint32_t>{0, 1, 2}));
  EXPECT_EQ(t.nodes[1].strata, (std::vector<uint32_t>{0, 1}));
  const GateNode& own = t.nodes[5];
  EXPECT_EQ(own.hardware_revision, "rev-a");
  EXPECT_EQ(own.site, "bos");
  EXPECT_EQ(own.connectivity, "lte");
  EXPECT_EQ(own.parent, 4);
  // Judged: the root, both revisions, rev-a's two sites. Not judged: rev-b's only site and
  // every connectivity node (each the only child of its site).
  const std::vector<bool> judged{true, true, true, false, true, false, true, false, false};
  for (size_t k = 0; k < judged.size(); ++k) EXPECT_EQ(t.nodes[k].judged, judged[k]) << keys[k];
  // Three levels hold a test: 0.06 / 3 each, split among the level's judged nodes.
  EXPECT_NEAR(t.nodes[0].alpha, 0.02, 1e-12);
  EXPECT_NEAR(t.nodes[1].alpha, 0.01, 1e-12);
  EXPECT_NEAR(t.nodes[2].alpha, 0.01, 1e-12);
  EXPECT_EQ(t.nodes[3].alpha, 0);
  // A group with one child is split by its first descendant level that splits.
  EXPECT_EQ(gate_splits(t.nodes, 6), std::vector<uint32_t>{});
  EXPECT_EQ(gate_splits(t.nodes, 1), (std::vector<uint32_t>{2, 4}));
}

TEST(GateTree, AKeyShorterThanTheDimensionsStopsWhereItEnds) {
  const GateTree t =
      build_gate_tree(Keys{"rev-a"}, std::vector<Dim>{Dim::kHardwareRevision, Dim::kSite}, 0.95);
  ASSERT_EQ(t.nodes.size(), 2u);
  EXPECT_EQ(t.paths[0], (std::vector<uint32_t>{0, 1}));
  EXPECT_TRUE(t.nodes[0].judged);
  EXPECT_FALSE(t.nodes[1].judged);
  EXPECT_NEAR(t.nodes[0].alpha, 0.05, 1e-12);
}

TEST(GateTree, UnderHaltLooksUpThePath) {
  GateTree t = build_gate_tree(Keys{"rev-a|nyc", "rev-b|nyc"},
                               std::vector<Dim>{Dim::kHardwareRevision, Dim::kSite}, 0.95);
  const uint32_t rev_a = node_named(t, "hardware_revision=rev-a");
  const uint32_t leaf = node_named(t, "hardware_revision=rev-a|site=nyc");
  const uint32_t other = node_named(t, "hardware_revision=rev-b|site=nyc");
  EXPECT_FALSE(gate_under_halt(t.nodes, leaf));
  t.nodes[rev_a].halted = true;
  EXPECT_TRUE(gate_under_halt(t.nodes, leaf));
  EXPECT_TRUE(gate_under_halt(t.nodes, rev_a));
  EXPECT_FALSE(gate_under_halt(t.nodes, other));
}

class JudgeGate : public ::testing::Test {
 protected:
  GatePolicy gate;  // 5% limit, 95% confidence, min_sample 5
  FailureTest test{gate.acceptable(), gate.max_failure_rate};
  const std::vector<Dim> by_revision{Dim::kHardwareRevision};
};

TEST_F(JudgeGate, PassesWithoutFailuresOrBeforeTheMinimumSample) {
  GateTree t = tree_with({"rev-a"}, by_revision, {finished(100, 0)});
  EXPECT_EQ(judge_gate(t.nodes, 0, gate, test), GateVerdict{});
  t = tree_with({"rev-a"}, by_revision, {finished(4, 4)});
  EXPECT_FALSE(judge_gate(t.nodes, 0, gate, test).halt);
  // The fifth outcome is the minimum sample: four failures in five are decisive.
  t = tree_with({"rev-a"}, by_revision, {finished(5, 4)});
  EXPECT_TRUE(judge_gate(t.nodes, 0, gate, test).halt);
}

TEST_F(JudgeGate, HaltsTheRolloutOnItsEvidenceAndSaysWhy) {
  const GateTree t = tree_with({"rev-a"}, by_revision, {finished(40, 10)});
  const GateVerdict v = judge_gate(t.nodes, 0, gate, test);
  ASSERT_TRUE(v.halt);
  EXPECT_EQ(v.node, 0u);
  EXPECT_FALSE(v.unexplained);
  EXPECT_NE(v.reason.find("10 of 40 failed (25.0%), 40 offered; likelihood ratio"),
            std::string::npos)
      << v.reason;
  EXPECT_NE(v.reason.find(">= 20 (this group's share 0.05 of the rollout's false-halt bound 0.05)"),
            std::string::npos)
      << v.reason;
  // A halted group and a group that is not judged are not judged again: even under a limit
  // of 0, where any failure is decisive evidence.
  GatePolicy none_tolerated = gate;
  none_tolerated.max_failure_rate = 0;
  GateTree halted = t;
  halted.nodes[0].halted = true;
  EXPECT_FALSE(judge_gate(halted.nodes, 0, none_tolerated, test).halt);
  EXPECT_FALSE(t.nodes[1].judged);
  EXPECT_FALSE(judge_gate(t.nodes, 1, none_tolerated, test).halt);
  EXPECT_TRUE(judge_gate(t.nodes, 0, none_tolerated, test).halt);
}

TEST_F(JudgeGate, InFlightDevicesCountAsSuccessesToTheTest) {
  // The same ten failures among 40 finished, with 400 more offered and not finished yet.
  const GateTree t = tree_with({"rev-a"}, by_revision, {{440, 40, 10}});
  const GateVerdict v = judge_gate(t.nodes, 0, gate, test);
  EXPECT_FALSE(v.halt) << v.reason;
}

TEST_F(JudgeGate, AGroupWorseThanTheRestIsHaltedAndBlamed) {
  const GateTree t =
      tree_with({"rev-a", "rev-b"}, by_revision, {finished(30, 9), finished(200, 1)});
  const uint32_t a = node_named(t, "hardware_revision=rev-a");
  const GateVerdict v = judge_gate(t.nodes, a, gate, test);
  ASSERT_TRUE(v.halt);
  EXPECT_EQ(v.node, a);
  EXPECT_NE(v.reason.find("; the rest of the rollout: 1 of 200 failed (0.5%), p = "),
            std::string::npos)
      << v.reason;
  // Its sibling has no case.
  EXPECT_FALSE(judge_gate(t.nodes, node_named(t, "hardware_revision=rev-b"), gate, test).halt);
}

// The threshold of node k: ln(1 / its share of the false-halt bound).
double threshold(const GateTree& t, uint32_t k) { return -std::log(t.nodes[k].alpha); }

TEST_F(JudgeGate, AGroupWhosePartIsToBlameWaitsForThatPartsGate) {
  // The rollout has a case, but only through rev-a, which is worse than the rest: rev-a's
  // own gate halts it, and the rollout waits (its rest goes on).
  const GateTree t =
      tree_with({"rev-a", "rev-b"}, by_revision, {finished(30, 15), finished(200, 2)});
  ASSERT_GE(test.log_evidence(17, 230), threshold(t, 0));
  ASSERT_LT(test.log_evidence(2, 200), threshold(t, 0));
  EXPECT_FALSE(judge_gate(t.nodes, 0, gate, test).halt);
  EXPECT_TRUE(judge_gate(t.nodes, node_named(t, "hardware_revision=rev-a"), gate, test).halt);
}

TEST_F(JudgeGate, AGroupWaitsWhileTheRestIsTooSmallToCompareWith) {
  const GateTree t = tree_with({"rev-a", "rev-b"}, by_revision, {finished(20, 8), finished(3, 0)});
  ASSERT_GE(test.log_evidence(8, 23), threshold(t, 0));
  EXPECT_FALSE(judge_gate(t.nodes, 0, gate, test).halt);
  // Two more outcomes in rev-b, both fine: now there is a rest to compare with. rev-a is not
  // shown worse than five devices, but it has a case of its own and the rest has none: the
  // rollout's gate halts rev-a, unexplained (its own gate, comparing, does not).
  const GateTree later =
      tree_with({"rev-a", "rev-b"}, by_revision, {finished(20, 8), finished(5, 0)});
  const uint32_t a = node_named(t, "hardware_revision=rev-a");
  const GateVerdict v = judge_gate(later.nodes, 0, gate, test);
  ASSERT_TRUE(v.halt);
  EXPECT_EQ(v.node, a);
  EXPECT_TRUE(v.unexplained);
  EXPECT_FALSE(judge_gate(later.nodes, a, gate, test).halt);
}

TEST_F(JudgeGate, ABuildBadAcrossTheGroupHaltsTheGroupNotAPart) {
  // rev-a a little worse than rev-b but not significantly, and rev-b shows by itself, as a
  // plain test at 5%, that it fails above the acceptable rate: the rollout halts as a whole.
  const GateTree shape = build_gate_tree(Keys{"rev-a", "rev-b"}, by_revision, 0.95);
  const double ln20 = std::log(20.0);
  int64_t n = 0, k = 0;
  for (int64_t size = 20; size <= 400 && n == 0; size += 10) {
    for (int64_t f = 1; f < size; ++f) {
      const double rest = test.log_evidence(f, size);
      if (rest < ln20) continue;
      if (rest < threshold(shape, 0) && worse_than_rest_p(f + 1, size, f, size) >= 0.01 &&
          test.log_evidence(2 * f + 1, 2 * size) >= threshold(shape, 0)) {
        n = size;
        k = f;
      }
      break;
    }
  }
  ASSERT_GT(n, 0) << "no counts fit the case";
  const GateTree t =
      tree_with({"rev-a", "rev-b"}, by_revision, {finished(n, k + 1), finished(n, k)});
  const GateVerdict v = judge_gate(t.nodes, 0, gate, test);
  ASSERT_TRUE(v.halt);
  EXPECT_EQ(v.node, 0u);
  EXPECT_FALSE(v.unexplained);
  EXPECT_NE(v.reason.find("; no part of it is to blame alone"), std::string::npos) << v.reason;
}

TEST_F(JudgeGate, APartWithoutACaseOfItsOwnYetIsWaitedFor) {
  // The rollout has a case; rev-a carries it (the rest has none, not even at 5%), is not
  // shown worse than the rest, and has no case of its own yet: wait for more outcomes.
  const GateTree shape = build_gate_tree(Keys{"rev-a", "rev-b"}, by_revision, 0.95);
  const uint32_t a = node_named(shape, "hardware_revision=rev-a");
  int64_t n = 0, fa = 0, fb = 0;
  for (int64_t size = 10; size <= 200 && n == 0; size += 2) {
    for (int64_t x = 1; x < size && n == 0; ++x) {
      for (int64_t y = 0; y < x && n == 0; ++y) {
        if (test.log_evidence(x + y, 2 * size) >= threshold(shape, 0) &&
            test.log_evidence(x, size) < threshold(shape, a) &&
            test.log_evidence(y, size) < std::log(20.0) &&
            worse_than_rest_p(x, size, y, size) >= 0.01) {
          n = size;
          fa = x;
          fb = y;
        }
      }
    }
  }
  ASSERT_GT(n, 0) << "no counts fit the case";
  const GateTree t = tree_with({"rev-a", "rev-b"}, by_revision, {finished(n, fa), finished(n, fb)});
  EXPECT_FALSE(judge_gate(t.nodes, 0, gate, test).halt);
  EXPECT_FALSE(judge_gate(t.nodes, a, gate, test).halt);
}

TEST_F(JudgeGate, AGroupNoWorseThanTheRestLeavesItToItsParent) {
  // Both revisions fail alike: neither is to blame alone; the rollout's own gate halts it.
  const GateTree t =
      tree_with({"rev-a", "rev-b"}, by_revision, {finished(40, 10), finished(40, 9)});
  EXPECT_FALSE(judge_gate(t.nodes, node_named(t, "hardware_revision=rev-a"), gate, test).halt);
  EXPECT_FALSE(judge_gate(t.nodes, node_named(t, "hardware_revision=rev-b"), gate, test).halt);
  const GateVerdict v = judge_gate(t.nodes, 0, gate, test);
  ASSERT_TRUE(v.halt);
  EXPECT_EQ(v.node, 0u);
  EXPECT_NE(v.reason.find("19 of 80 failed"), std::string::npos) << v.reason;
}

TEST_F(JudgeGate, APartWithACaseOfItsOwnIsHaltedUnexplainedWhenTheRestHasNone) {
  // rev-a fails often, but on too few devices to be shown worse than rev-b; without rev-a the
  // rollout has no case. rev-a is halted on its own evidence, unexplained.
  const GateTree t = tree_with({"rev-a", "rev-b"}, by_revision, {finished(12, 5), finished(12, 1)});
  const uint32_t a = node_named(t, "hardware_revision=rev-a");
  const GateVerdict v = judge_gate(t.nodes, 0, gate, test);
  ASSERT_TRUE(v.halt) << "root passed";
  EXPECT_EQ(v.node, a);
  EXPECT_TRUE(v.unexplained);
  EXPECT_NE(v.reason.find("; without it the rollout has none (1 of 12 failed (8.3%))"),
            std::string::npos)
      << v.reason;
  // Afterwards what is left is judged as a plain test at 5%: one failure in twelve is not
  // enough, three are.
  GateTree after = t;
  after.nodes[a].halted = after.nodes[a].unexplained = true;
  after.nodes[0].live -= after.nodes[a].live;
  EXPECT_FALSE(judge_gate(after.nodes, 0, gate, test).halt);
  after.nodes[0].live = after.nodes[node_named(t, "hardware_revision=rev-b")].live =
      finished(12, 3);
  const GateVerdict across = judge_gate(after.nodes, 0, gate, test);
  ASSERT_TRUE(across.halt);
  EXPECT_EQ(across.node, 0u);
  EXPECT_NE(across.reason.find("the build fails across the rollout"), std::string::npos)
      << across.reason;
}

TEST_F(JudgeGate, ALimitOfZeroHaltsOnAnyFailureAfterTheMinimumSample) {
  gate.max_failure_rate = 0;
  GateTree t = tree_with({"rev-a"}, by_revision, {finished(4, 1)});
  EXPECT_FALSE(judge_gate(t.nodes, 0, gate, test).halt);
  t = tree_with({"rev-a"}, by_revision, {finished(1000, 1)});
  EXPECT_TRUE(judge_gate(t.nodes, 0, gate, test).halt);
}

}  // namespace
}  // namespace drover

namespace drover {
namespace {

// Health gates' blame over a tree of two revisions (docs/gates.md, "Health gates"): the
// group that crossed is halted unless a part carries the case alone and has crossed too.
class HealthBlame : public ::testing::Test {
 protected:
  // Two revisions, one health metric: the root at ln 80, each revision at ln 160.
  GateTree t =
      build_gate_tree(Keys{"rev-a", "rev-b"}, std::vector<Dim>{Dim::kHardwareRevision}, 0.95, 2);
  HealthTally a, b;  // the revisions' pairs
  uint32_t target() {
    const uint32_t root = node_named(t, "all"), rev_a = node_named(t, "hardware_revision=rev-a");
    return health_halt_target(t.nodes, root, [&](uint32_t n) {
      if (n == root) return HealthTally(a) += b;
      return n == rev_a ? a : b;
    });
  }
  static HealthTally worse(int64_t w, int64_t n) { return {w, n, 0}; }
};

TEST_F(HealthBlame, ThresholdsShareTheBudgetWithTheFailureTest) {
  EXPECT_NEAR(t.nodes[node_named(t, "all")].alpha, 0.05 / 2 / 2, 1e-12);
  EXPECT_NEAR(t.nodes[node_named(t, "hardware_revision=rev-b")].alpha, 0.05 / 2 / 2 / 2, 1e-12);
}

TEST_F(HealthBlame, ARevisionThatCarriesTheCaseAloneAndCrossedIsHalted) {
  a = worse(10, 20);  // as often as not
  b = worse(20, 20);  // always: ln 160 crossed
  ASSERT_GE(health_log_evidence(20, 20), std::log(160.0));
  EXPECT_EQ(target(), node_named(t, "hardware_revision=rev-b"));
}

TEST_F(HealthBlame, AGroupWhosePartHasNotCrossedIsHaltedItselfNotLeftWaiting) {
  a = worse(7, 8);  // shows nothing by itself at ln 20
  b = worse(8, 8);  // below its own ln 160
  ASSERT_LT(health_log_evidence(7, 8), std::log(20.0));
  ASSERT_LT(health_log_evidence(8, 8), std::log(160.0));
  ASSERT_GE(health_log_evidence(15, 16), std::log(80.0)) << "the root crossed";
  EXPECT_EQ(target(), node_named(t, "all"));
}

TEST_F(HealthBlame, AWorseBuildEverywhereHaltsTheGroup) {
  a = worse(18, 20);  // the rest shows it by itself
  b = worse(20, 20);
  ASSERT_GE(health_log_evidence(18, 20), std::log(20.0));
  EXPECT_EQ(target(), node_named(t, "all"));
}

}  // namespace
}  // namespace drover
