#include "rollout/loaded_rollout.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace drover {
namespace {

using S = DeploymentState;
const Timestamp kT0 = Timestamp(hours(500'000));

Deployment dep(const std::string& device, const std::string& stratum, uint32_t stage, S state,
               Timestamp offered = kT0, std::string error = {}) {
  Deployment d;
  d.rollout_id = "r1";
  d.device_id = device;
  d.stratum = stratum;
  d.stage = stage;
  d.state = state;
  d.offered_at = state == S::kPending ? Timestamp{} : offered;
  d.error = std::move(error);
  return d;
}

Rollout two_stage_rollout() {
  Rollout r;
  r.id = "r1";
  r.plan.stratify_by = {StratumDimension::kHardwareRevision, StratumDimension::kSite};
  r.plan.stages = {{"canary", 10, 0, Duration(0)}, {"rest", 100, 0, Duration(0)}};
  r.gates_from = kT0 - hours(1);
  return r;
}

Artifact firmware() {
  Artifact a;
  a.name = "firmware";
  a.version = "2.0.0";
  a.device_types = {"ctl"};
  return a;
}

std::unique_ptr<LoadedRollout> assemble(std::vector<Deployment> deps,
                                        Rollout r = two_stage_rollout()) {
  auto a = assemble_rollout(std::move(r), firmware(), std::move(deps), kT0);
  EXPECT_TRUE(a.ok()) << a.error().to_string();
  return a.ok() ? std::move(*a) : nullptr;
}

// Moves deployment i to `state` as the engine does: out of the counts, changed, back in.
void change(LoadedRollout& a, uint32_t i, S state, std::string error = {}) {
  a.count(a.deps[i], -1);
  a.deps[i].state = state;
  a.deps[i].error = std::move(error);
  a.hot[i].state = state;
  a.count(a.deps[i], +1);
}

TEST(LoadedRollout, AssemblesStrataCountsAndTheGateTreeFromTheRecords) {
  auto a =
      assemble({dep("d1", "rev-b|nyc", 0, S::kSucceeded), dep("d2", "rev-a|bos", 0, S::kFailed),
                dep("d3", "rev-b|nyc", 1, S::kPending), dep("d4", "rev-b|nyc", 0, S::kInstalling),
                dep("d5", "rev-a|bos", 1, S::kCancelled, kT0, "its group was halted")});
  ASSERT_TRUE(a);
  ASSERT_EQ(a->strata.size(), 2u);
  EXPECT_EQ(a->strata[0].key, "rev-b|nyc");  // numbered as first seen
  EXPECT_EQ(a->strata[0].hardware_revision, "rev-b");
  EXPECT_EQ(a->strata[0].site, "nyc");
  EXPECT_EQ(a->strata[0].deps, (std::vector<uint32_t>{0, 2, 3}));
  EXPECT_EQ(a->strata[0].per_stage[0][S::kSucceeded], 1u);
  EXPECT_EQ(a->strata[0].per_stage[0][S::kInstalling], 1u);
  EXPECT_EQ(a->strata[0].per_stage[1][S::kPending], 1u);
  EXPECT_EQ(a->stage_totals[1][S::kCancelled], 1u);
  EXPECT_EQ(a->in_flight, 1u);
  EXPECT_EQ(a->never_offered_why.at("its group was halted"), 1u);
  // The gates: the root pools every stratum; in flight counts as exposed, not finished.
  EXPECT_EQ(a->nodes[0].key, "all");
  EXPECT_EQ(a->nodes[0].live, (GateCounts{3, 2, 1}));
  EXPECT_EQ(a->strata[0].gate, (GateCounts{2, 1, 0}));
  EXPECT_EQ(a->strata[1].gate, (GateCounts{1, 1, 1}));
  // Canary pacing counts on each first-level group (stage 0, forward).
  EXPECT_EQ(a->nodes[a->strata[0].pace].key, "hardware_revision=rev-b");
  EXPECT_EQ(a->nodes[a->strata[0].pace].first_stage_in_flight, 1u);
  EXPECT_EQ(a->nodes[a->strata[0].pace].first_stage_finished, 1u);
  // What a check-in reads, and every device's silence from `now`.
  EXPECT_EQ(a->hot[3].stratum, 0u);
  EXPECT_EQ(a->hot[3].state, S::kInstalling);
  EXPECT_EQ(a->hot[2].stage, 1u);
  EXPECT_EQ(a->heard_epoch, kT0);
  EXPECT_EQ(a->total().total(), 5u);
}

TEST(LoadedRollout, RefusesRecordsThatDoNotFitThePlan) {
  auto beyond = assemble_rollout(two_stage_rollout(), firmware(),
                                 {dep("d1", "rev-a|nyc", 2, S::kPending)}, kT0);
  ASSERT_FALSE(beyond.ok());
  EXPECT_EQ(beyond.error().code, ErrorCode::kCorruption);
  Rollout none = two_stage_rollout();
  none.plan.stages.clear();
  auto stageless = assemble_rollout(none, firmware(), {}, kT0);
  ASSERT_FALSE(stageless.ok());
  EXPECT_EQ(stageless.error().code, ErrorCode::kCorruption);
}

TEST(LoadedRollout, CountsFollowEveryChangeBothWays) {
  auto a = assemble({dep("d1", "rev-a|nyc", 0, S::kOffered), dep("d2", "rev-a|nyc", 0, S::kPending),
                     dep("d3", "rev-b|nyc", 0, S::kOffered)});
  ASSERT_TRUE(a);
  const uint32_t rev_a = a->strata[0].pace;
  change(*a, 0, S::kFailed, "checksum mismatch");
  EXPECT_EQ(a->in_flight, 1u);
  EXPECT_EQ(a->nodes[0].live, (GateCounts{2, 1, 1}));
  EXPECT_EQ(a->nodes[rev_a].first_stage_in_flight, 0u);
  EXPECT_EQ(a->nodes[rev_a].first_stage_finished, 1u);
  // A failed device sent back still counts as the failure it was; one reverted whose forward
  // outcome failed is counted apart.
  change(*a, 0, S::kReverted, "checksum mismatch");
  EXPECT_EQ(a->nodes[0].live, (GateCounts{2, 1, 1}));
  EXPECT_EQ(a->unhealthy_reverted, 1u);
  change(*a, 1, S::kCancelled, "withdrawn");
  change(*a, 1, S::kPending);
  EXPECT_TRUE(a->never_offered_why.empty());  // a reason with no device left is dropped
  // Back to where it started: every count as assembled.
  change(*a, 0, S::kOffered);
  auto fresh =
      assemble({dep("d1", "rev-a|nyc", 0, S::kOffered), dep("d2", "rev-a|nyc", 0, S::kPending),
                dep("d3", "rev-b|nyc", 0, S::kOffered)});
  EXPECT_EQ(a->nodes[0].live, fresh->nodes[0].live);
  EXPECT_EQ(a->in_flight, fresh->in_flight);
  EXPECT_EQ(a->unhealthy_reverted, 0u);
  EXPECT_EQ(a->total().n, fresh->total().n);
}

TEST(LoadedRollout, HaltsTakeTheirStrataOutOfTheirParentsEvidence) {
  auto a =
      assemble({dep("d1", "rev-a|nyc", 0, S::kFailed), dep("d2", "rev-a|bos", 0, S::kSucceeded),
                dep("d3", "rev-b|nyc", 0, S::kSucceeded), dep("d4", "rev-b|nyc", 1, S::kPending)});
  ASSERT_TRUE(a);
  EXPECT_EQ(a->nodes[0].live, (GateCounts{3, 3, 1}));
  a->rollout.halted.push_back(
      {"hardware_revision=rev-a", "rev-a", "", "", "bad", FailurePolicy::kPause, kT0, false});
  a->refresh_halts();
  EXPECT_EQ(a->halted_strata.size(), 2u);  // both of rev-a's sites
  EXPECT_EQ(a->nodes[0].live, (GateCounts{1, 1, 0}));
  EXPECT_TRUE(a->strata[0].halted);
  EXPECT_EQ(a->strata[0].policy, FailurePolicy::kPause);
  EXPECT_FALSE(a->all_halted());
  EXPECT_EQ(a->live(-1).total(), 2u);  // rev-b's two
  EXPECT_EQ(a->live(1).total(), 1u);
  EXPECT_TRUE(gate_under_halt(a->nodes, a->strata[0].path.back()));
  // Lifted again (a resume): the evidence comes back.
  a->rollout.halted.clear();
  a->refresh_halts();
  EXPECT_EQ(a->nodes[0].live, (GateCounts{3, 3, 1}));
  EXPECT_TRUE(a->halted_strata.empty());
  // A halt written before the tree named nodes by dimension holds the stratum it named.
  a->rollout.halted.push_back(
      {"rev-b|nyc", "", "", "", "old", FailurePolicy::kRollback, kT0, false});
  a->refresh_halts();
  EXPECT_TRUE(a->strata[2].halted);
  EXPECT_EQ(a->strata[2].policy, FailurePolicy::kRollback);
}

TEST(LoadedRollout, GatesCountOnlyOffersSinceTheyWereLastReset) {
  auto a = assemble({dep("d1", "rev-a|nyc", 0, S::kFailed, kT0 - hours(3)),
                     dep("d2", "rev-a|nyc", 0, S::kFailed, kT0)});
  ASSERT_TRUE(a);
  EXPECT_EQ(a->nodes[0].live, (GateCounts{1, 1, 1}));  // d1 was offered before gates_from
  a->rollout.gates_from = kT0 + hours(1);              // a resume resets the evidence
  a->recount_gates();
  EXPECT_EQ(a->nodes[0].live, (GateCounts{}));
  EXPECT_EQ(a->strata[0].gate, (GateCounts{}));
  a->rollout.gates_from = Timestamp{};
  a->recount_gates();
  EXPECT_EQ(a->nodes[0].live, (GateCounts{2, 2, 2}));
}

TEST(LoadedRollout, ADevicesContractComesFromItsConnectivityOnceHeard) {
  Rollout r = two_stage_rollout();
  r.plan.contract.max_silence = hours(24);
  r.plan.contract.by_connectivity = {{"satellite", hours(72)}, {"lte", Duration(0)}};
  auto a = assemble({dep("d1", "rev-a|nyc", 0, S::kOffered), dep("d2", "rev-a|nyc", 0, S::kOffered),
                     dep("d3", "rev-a|nyc", 0, S::kOffered)},
                    r);
  ASSERT_TRUE(a);
  // Not heard yet: the longest there is, or none while some class is never judged.
  EXPECT_EQ(a->contract_of(a->hot[0].contract), Duration(0));
  a->heard_from(0, kT0 + minutes(5), "satellite");
  a->heard_from(1, kT0 + minutes(5), "ethernet");  // no class of its own: the default
  a->heard_from(2, kT0 + minutes(5), "lte");
  EXPECT_EQ(a->contract_of(a->hot[0].contract), hours(72));
  EXPECT_EQ(a->contract_of(a->hot[1].contract), hours(24));
  EXPECT_EQ(a->contract_of(a->hot[2].contract), Duration(0));
  EXPECT_EQ(a->last_heard(0), kT0 + minutes(5));
  EXPECT_EQ(a->longest_contract(), hours(72));
  // The class is learnt once; later check-ins move only the time.
  a->heard_from(0, kT0 + hours(2), "ethernet");
  EXPECT_EQ(a->contract_of(a->hot[0].contract), hours(72));
  EXPECT_EQ(a->last_heard(0), kT0 + hours(2));
}

}  // namespace
}  // namespace drover
