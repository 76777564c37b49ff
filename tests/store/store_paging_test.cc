// Paging a rollout's deployments (Store::page_deployments), the same on both backends: in
// device id order, after a cursor, of one state or all, with the count of what matched and
// whether more follow; and a rollout id that prefixes another never leaks into its pages.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "store/store.h"

namespace drover {
namespace {

std::vector<std::string> ids(const Store::DeploymentPage& p) {
  std::vector<std::string> out;
  for (const Deployment& d : p.rows) out.push_back(d.device_id);
  return out;
}

void pages_in_order(Store& store) {
  WriteBatch batch;
  for (const char* rollout : {"r1", "r10", "r"}) {
    for (int k = 9; k >= 0; --k) {
      Deployment d;
      d.rollout_id = rollout;
      d.device_id = "dev-" + std::to_string(k);
      d.stratum = "rev-a";
      d.state = k % 3 == 0 ? DeploymentState::kFailed : DeploymentState::kSucceeded;
      batch.deployments.push_back(d);
    }
  }
  ASSERT_TRUE(store.apply(batch).ok());

  auto first = store.page_deployments("r1", std::nullopt, "", 4);
  ASSERT_TRUE(first.ok()) << first.error().to_string();
  EXPECT_EQ(ids(*first), (std::vector<std::string>{"dev-0", "dev-1", "dev-2", "dev-3"}));
  EXPECT_TRUE(first->more);
  EXPECT_EQ(first->matched, 10u);
  for (const Deployment& d : first->rows) EXPECT_EQ(d.rollout_id, "r1");

  auto last = store.page_deployments("r1", std::nullopt, "dev-7", 4);
  ASSERT_TRUE(last.ok());
  EXPECT_EQ(ids(*last), (std::vector<std::string>{"dev-8", "dev-9"}));
  EXPECT_FALSE(last->more);

  auto exact = store.page_deployments("r1", std::nullopt, "dev-5", 4);
  ASSERT_TRUE(exact.ok());
  EXPECT_EQ(ids(*exact), (std::vector<std::string>{"dev-6", "dev-7", "dev-8", "dev-9"}));
  EXPECT_FALSE(exact->more) << "a full last page has nothing after it";

  auto failed = store.page_deployments("r10", DeploymentState::kFailed, "", 2);
  ASSERT_TRUE(failed.ok());
  EXPECT_EQ(ids(*failed), (std::vector<std::string>{"dev-0", "dev-3"}));
  EXPECT_TRUE(failed->more);
  EXPECT_EQ(failed->matched, 4u);  // 0, 3, 6, 9
  for (const Deployment& d : failed->rows) EXPECT_EQ(d.rollout_id, "r10");
  auto rest = store.page_deployments("r10", DeploymentState::kFailed, "dev-3", 2);
  ASSERT_TRUE(rest.ok());
  EXPECT_EQ(ids(*rest), (std::vector<std::string>{"dev-6", "dev-9"}));
  EXPECT_FALSE(rest->more);

  auto none = store.page_deployments("r1-", std::nullopt, "", 10);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->rows.empty());
  EXPECT_EQ(none->matched, 0u);
  auto no_state = store.page_deployments("r", DeploymentState::kSilent, "", 10);
  ASSERT_TRUE(no_state.ok());
  EXPECT_TRUE(no_state->rows.empty());
  EXPECT_FALSE(no_state->more);
}

TEST(StorePaging, MemoryPagesInDeviceOrder) {
  auto store = make_memory_store();
  pages_in_order(*store);
}

TEST(StorePaging, SqlitePagesInDeviceOrder) {
  char tmpl[] = "/tmp/drover-paging-XXXXXX";
  const std::string dir = ::mkdtemp(tmpl);
  {
    auto store = open_sqlite_store(dir + "/store.db");
    ASSERT_TRUE(store.ok()) << store.error().to_string();
    pages_in_order(**store);
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace drover
