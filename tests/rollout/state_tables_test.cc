// The rollout's and the deployment's state tables, every (state, event) pair against the
// golden lists in golden/: a change to either table is a change to these files.
#include <gtest/gtest.h>

#include "../common/golden.h"
#include "rollout/deployment_machine.h"
#include "rollout/rollout_machine.h"

namespace drover::testing {
namespace {

TEST(StateTables, TheRolloutTableIsTheGoldenList) {
  const std::string all = every_pair<RolloutState, RolloutEvent>(
      [](RolloutState s, RolloutEvent e) { return next_state(s, e); });
  expect_golden(std::string(GOLDEN_DIR) + "/rollout_machine.txt", all);
}

TEST(StateTables, TheDeploymentTableIsTheGoldenList) {
  const std::string all = every_pair<DeploymentState, DeploymentEvent>(
      [](DeploymentState s, DeploymentEvent e) { return next_state(s, e); });
  expect_golden(std::string(GOLDEN_DIR) + "/deployment_machine.txt", all);
}

}  // namespace
}  // namespace drover::testing
