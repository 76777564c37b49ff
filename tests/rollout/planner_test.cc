#include "rollout/planner.h"

#include <gtest/gtest.h>

#include <map>
#include <set>

#include "../common/fleet_fixture.h"

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

TEST(Planner, EvenAOnePercentCanarySamplesEveryStratum) {
  const auto devices = grid(3, 4, 50);  // 12 strata of 50
  RolloutPlan plan = simple_plan(
      {{"canary", 1, 0, Duration(0)}, {"half", 50, 0, Duration(0)}, {"all", 100, 0, Duration(0)}});
  plan.stratify_by = {StratumDimension::kHardwareRevision, StratumDimension::kSite};
  const TargetSet t = plan_targets(plan, firmware("2.0.0"), devices, "rollout-0001");
  ASSERT_EQ(t.deployments.size(), 600u);
  std::map<std::string, std::map<uint32_t, int>> per;  // stratum -> stage -> devices
  for (const auto& d : t.deployments) per[d.stratum][d.stage] += 1;
  ASSERT_EQ(per.size(), 12u);
  for (const auto& [stratum, stages] : per) {
    EXPECT_EQ(stages.at(0), 1) << stratum;   // ceil(50 * 1%) = 1
    EXPECT_EQ(stages.at(1), 24) << stratum;  // up to 25 cumulative
    EXPECT_EQ(stages.at(2), 25) << stratum;
  }
  EXPECT_EQ(t.stage_sizes, (std::vector<uint32_t>{12, 288, 300}));
}

TEST(Planner, CohortsAreReproducibleAndDifferPerRollout) {
  const auto devices = grid(1, 1, 100);
  RolloutPlan plan = simple_plan({{"canary", 5, 0, Duration(0)}, {"all", 100, 0, Duration(0)}});
  auto canary = [&](const char* rollout) {
    std::set<std::string> ids;
    for (const auto& d : plan_targets(plan, firmware("2.0.0"), devices, rollout).deployments) {
      if (d.stage == 0) ids.insert(d.device_id);
    }
    return ids;
  };
  EXPECT_EQ(canary("rollout-0001"), canary("rollout-0001"));
  EXPECT_NE(canary("rollout-0001"), canary("rollout-0002"));
  EXPECT_EQ(canary("rollout-0001").size(), 5u);
}

TEST(Planner, CountStagesSpreadOverStrata) {
  const auto devices = grid(2, 1, 100);
  RolloutPlan plan = simple_plan({{"first", 0, 10, Duration(0)}, {"all", 0, 200, Duration(0)}});
  const TargetSet t = plan_targets(plan, firmware("2.0.0"), devices, "r");
  EXPECT_EQ(t.stage_sizes, (std::vector<uint32_t>{10, 190}));
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
