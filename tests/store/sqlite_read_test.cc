// The SQLite store's reads go through a connection of their own: a commit under way (its
// transaction, its fsync, or a wait for another process's lock) holds the writer, never the
// readers, and they see the last committed state meanwhile.
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <string>
#include <thread>

#include "store/store.h"

namespace drover {
namespace {

namespace fs = std::filesystem;

Device device(const std::string& id) {
  Device d;
  d.id = id;
  d.device_type = "bacnet-controller";
  d.hardware_revision = "rev-b";
  return d;
}

Deployment deployment(const std::string& device_id, DeploymentState state) {
  Deployment d;
  d.rollout_id = "ro-1";
  d.device_id = device_id;
  d.stage = 1;
  d.state = state;
  return d;
}

TEST(SqliteReads, DoNotWaitForACommitUnderWay) {
  std::string pattern = (fs::temp_directory_path() / "drover-sqlite-read-XXXXXX").string();
  ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
  const std::string path = pattern + "/store.db";
  auto opened = open_sqlite_store(path);
  ASSERT_TRUE(opened.ok()) << opened.error().to_string();
  Store& store = **opened;
  WriteBatch first;
  first.devices = {device("a")};
  first.deployments = {deployment("a", DeploymentState::kSucceeded)};
  ASSERT_TRUE(store.apply(first).ok());

  // Another connection takes the file's write lock: the store's next commit waits for it
  // (up to its busy timeout of 5 s) inside apply(), holding the store's writer meanwhile.
  sqlite3* other = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &other), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(other, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);
  std::atomic<bool> written{false};
  std::thread writer([&] {
    WriteBatch second;
    second.devices = {device("b")};
    second.deployments = {deployment("b", DeploymentState::kSucceeded)};
    EXPECT_TRUE(store.apply(second).ok());
    written = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));

  const auto asked = std::chrono::steady_clock::now();
  auto a = store.get_device("a");
  auto b = store.get_device("b");
  auto all = store.list_devices();
  auto page = store.page_deployments("ro-1", DeploymentState::kSucceeded, "", 10);
  const auto took = std::chrono::steady_clock::now() - asked;
  EXPECT_FALSE(written);  // the commit is still waiting: the reads did not wait for it
  EXPECT_LT(took, std::chrono::seconds(1));
  ASSERT_TRUE(a.ok() && b.ok() && all.ok() && page.ok());
  EXPECT_TRUE(a->has_value());
  EXPECT_FALSE(b->has_value());  // not committed yet
  EXPECT_EQ(all->size(), 1u);
  EXPECT_EQ(page->matched, 1u);

  ASSERT_EQ(sqlite3_exec(other, "COMMIT", nullptr, nullptr, nullptr), SQLITE_OK);
  writer.join();
  EXPECT_TRUE(written);
  auto after = store.get_device("b");
  ASSERT_TRUE(after.ok());
  EXPECT_TRUE(after->has_value());  // committed: the reader sees it at once
  auto page_after = store.page_deployments("ro-1", DeploymentState::kSucceeded, "", 10);
  ASSERT_TRUE(page_after.ok());
  EXPECT_EQ(page_after->matched, 2u);
  sqlite3_close(other);
  opened->reset();
  fs::remove_all(pattern);
}

}  // namespace
}  // namespace drover
