#include "rollout/planner.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <set>

#include "../common/fleet_fixture.h"
#include "base/random.h"
#include "rollout/gates.h"

namespace drover::testing {
namespace {

std::vector<Device> grid(int revs, int sites, int per_cell) {
  std::vector<Device> out;
  for (int r = 0; r < revs; ++r) {
    for (int s = 0; s < sites; ++s) {
      for (int k = 0; k < per_cell; ++k) {
        Device d;
        d.id = "d-" + std::to_string(r) + "-" + std::to_string(s) + "-" + std::to_string(k);
        d.device_type = "ctl";
        d.hardware_revision = "rev-" + std::to_string(r);
        d.site = "site-" + std::to_string(s);
        d.connectivity = "ethernet";
        d.installed = {{"firmware", "1.0.0"}};
        out.push_back(d);
      }
    }
  }
  return out;
}

// 15,000 devices in 600 strata (3 revisions x 200 sites x 25): a 2% canary holds 2% of each
// revision, not one device from every stratum (600, 4%). Each site's share of a revision's
// canary is half a device, so half the sites of each revision get one and the others none;
// over rollouts, every site takes its turn.
TEST(Planner, ACanaryIsTheSizeAskedAndSmallStrataSharePlaces) {
  const auto devices = grid(3, 200, 25);
  RolloutPlan plan = simple_plan(
      {{"canary", 2, 0, Duration(0)}, {"half", 50, 0, Duration(0)}, {"all", 100, 0, Duration(0)}});
  plan.stratify_by = {StratumDimension::kHardwareRevision, StratumDimension::kSite};
  std::map<std::string, int> picked;  // stratum -> rollouts whose canary took one of it
  for (int r = 1; r <= 40; ++r) {
    const TargetSet t =
        plan_targets(plan, firmware("2.0.0"), devices, "rollout-" + std::to_string(r));
    ASSERT_EQ(t.deployments.size(), 15000u);
    ASSERT_EQ(t.stage_notes.size(), 3u);
    EXPECT_EQ(t.stage_notes[0].asked, 300u);
    EXPECT_FALSE(t.stage_notes[0].gate_minimum) << "100 per revision is more than the gate needs";
    EXPECT_FALSE(t.stage_notes[0].min_per_stratum);
    EXPECT_EQ(t.stage_sizes, (std::vector<uint32_t>{300, 7200, 7500}));
    std::map<std::string, int> per_revision;
    std::map<std::string, int> per_stratum;
    for (const auto& d : t.deployments) {
      if (d.stage != 0) continue;
      per_revision[d.stratum.substr(0, d.stratum.find('|'))] += 1;
      per_stratum[d.stratum] += 1;
    }
    for (const auto& [rev, n] : per_revision) EXPECT_EQ(n, 100) << rev;
    for (const auto& [stratum, n] : per_stratum) {
      EXPECT_EQ(n, 1) << stratum;
      picked[stratum] += 1;
    }
  }
  EXPECT_EQ(picked.size(), 600u) << "some site never got a canary place in 40 rollouts";
  for (const auto& [stratum, n] : picked) EXPECT_LT(n, 40) << stratum << " always picked";
}

// A canary too small for its gate grows to what the gate needs per revision (and the note
// says so): canary_minimum devices of a revision failing at twice the limit are enough to
// halt it with probability >= 95%, and half as many are not.
TEST(Planner, ACanaryTooSmallForItsGateGetsWhatTheGateNeeds) {
  const auto devices = grid(3, 4, 100);  // 400 per revision
  RolloutPlan plan = simple_plan({{"canary", 1, 0, Duration(0)}, {"all", 100, 0, Duration(0)}});
  plan.stratify_by = {StratumDimension::kHardwareRevision, StratumDimension::kSite};
  plan.gate.min_sample = 10;
  const TargetSet t = plan_targets(plan, firmware("2.0.0"), devices, "rollout-0001");
  ASSERT_EQ(t.stage_notes.size(), 2u);
  EXPECT_EQ(t.stage_notes[0].asked, 12u);
  EXPECT_TRUE(t.stage_notes[0].gate_minimum);
  // The first-level gates' share of the false-halt bound: 3 levels, 3 revisions.
  const double alpha = (1 - plan.gate.confidence) / 3 / 3;
  const uint32_t need = canary_minimum(plan.gate, alpha, 400);
  EXPECT_EQ(t.stage_notes[0].gate_minimum_per_group, need);
  EXPECT_EQ(t.stage_sizes[0], 3 * need);
  std::map<std::string, uint32_t> per_revision;
  for (const auto& d : t.deployments) {
    if (d.stage == 0) per_revision[d.stratum.substr(0, d.stratum.find('|'))] += 1;
  }
  for (const auto& [rev, n] : per_revision) EXPECT_EQ(n, need) << rev;

  // What the number promises, checked by drawing outcomes.
  const FailureTest test(plan.gate.acceptable(), plan.gate.max_failure_rate);
  auto halted_share = [&](uint32_t n) {
    Rng rng(42);
    int halted = 0;
    for (int run = 0; run < 4000; ++run) {
      int64_t failures = 0;
      for (uint32_t k = 0; k < n; ++k) failures += rng.uniform() < 2 * plan.gate.max_failure_rate;
      halted += test.log_evidence(failures, n) >= -std::log(alpha);
    }
    return halted / 4000.0;
  };
  EXPECT_GE(halted_share(need), 0.93);
  EXPECT_LT(halted_share(need / 2), 0.9);
  EXPECT_GE(need, plan.gate.min_sample);
  EXPECT_LE(need, 400u);
}

TEST(Planner, CohortsAreReproducibleAndDifferPerRollout) {
  const auto devices = grid(1, 1, 1000);
  RolloutPlan plan = simple_plan({{"canary", 20, 0, Duration(0)}, {"all", 100, 0, Duration(0)}});
  auto canary = [&](const char* rollout) {
    std::set<std::string> ids;
    for (const auto& d : plan_targets(plan, firmware("2.0.0"), devices, rollout).deployments) {
      if (d.stage == 0) ids.insert(d.device_id);
    }
    return ids;
  };
  EXPECT_EQ(canary("rollout-0001"), canary("rollout-0001"));
  EXPECT_NE(canary("rollout-0001"), canary("rollout-0002"));
  EXPECT_EQ(canary("rollout-0001").size(), 200u);
}

// Stages by count: the canary's count spread over the revisions in proportion, the rest
// in the last stage.
TEST(Planner, CountStagesSpreadOverStrata) {
  const auto devices = grid(2, 1, 1000);
  RolloutPlan plan = simple_plan({{"first", 0, 400, Duration(0)}, {"all", 0, 2000, Duration(0)}});
  const TargetSet t = plan_targets(plan, firmware("2.0.0"), devices, "r");
  EXPECT_EQ(t.stage_sizes, (std::vector<uint32_t>{400, 1600}));
}

// An explicit min_per_stratum is honoured (and said): every stratum in the canary.
TEST(Planner, MinPerStratumStillPutsEveryStratumInTheCanary) {
  const auto devices = grid(3, 200, 25);
  RolloutPlan plan = simple_plan({{"canary", 2, 0, Duration(0)}, {"all", 100, 0, Duration(0)}});
  plan.stratify_by = {StratumDimension::kHardwareRevision, StratumDimension::kSite};
  plan.min_per_stratum = 1;
  const TargetSet t = plan_targets(plan, firmware("2.0.0"), devices, "rollout-0001");
  EXPECT_EQ(t.stage_sizes[0], 600u);
  EXPECT_TRUE(t.stage_notes[0].min_per_stratum);
}

TEST(Planner, ExcludesIncompatibleAndCurrentDevices) {
  auto devices = grid(2, 1, 3);
  devices[0].installed = {{"firmware", "2.0.0"}};
  devices[1].installed = {{"firmware", "3.0.0"}};
  devices[2].decommissioned = true;
  // Built for rev-1: the three rev-1 devices are targets, the two live rev-0 ones excluded.
  const TargetSet t = plan_targets(simple_plan(), firmware("2.0.0", {"rev-1"}), devices, "r");
  EXPECT_EQ(t.deployments.size(), 3u);
  EXPECT_EQ(t.excluded.size(), 2u);
  EXPECT_EQ(t.already_current, 0u);
  // Built for rev-0: its live devices already run 2.0.0 or newer; rev-1 is excluded.
  const TargetSet other = plan_targets(simple_plan(), firmware("2.0.0", {"rev-0"}), devices, "r");
  EXPECT_EQ(other.deployments.size(), 0u);
  EXPECT_EQ(other.already_current, 2u);
  EXPECT_EQ(other.excluded.size(), 3u);
}

}  // namespace
}  // namespace drover::testing
