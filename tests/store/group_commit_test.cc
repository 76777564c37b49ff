// The group commit (store/group_commit.h): concurrent writers share one commit, a writer
// inside a CommitScope is not held up by the disk, order and read-your-writes hold, and a
// failed commit stops every write after it.
#include "store/group_commit.h"

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "../common/gated_store.h"

namespace drover {
namespace {

using testing::GatedStore;

WriteBatch device_batch(const std::string& id, const std::string& site = "") {
  WriteBatch b;
  Device d;
  d.id = id;
  d.device_type = "ctl";
  d.site = site;
  b.devices.push_back(d);
  return b;
}

struct Fixture {
  GatedStore* gated = nullptr;
  std::unique_ptr<GroupCommitStore> store;
  Fixture() {
    auto owned = std::make_unique<GatedStore>();
    gated = owned.get();
    store = std::make_unique<GroupCommitStore>(std::move(owned));
  }
  ~Fixture() {
    gated->open();  // whatever is still queued goes through before the writer stops
    store.reset();
  }
};

TEST(GroupCommitTest, WritersQueuedDuringACommitShareTheNextOne) {
  Fixture f;
  // The first write holds the writer in its commit...
  auto first = std::async(std::launch::async, [&] { return f.store->apply(device_batch("d0")); });
  f.gated->await_entered(1);
  // ...while 50 more writers queue behind it, each waiting for its own write.
  std::vector<std::future<Status>> rest;
  for (int i = 1; i <= 50; ++i) {
    rest.push_back(std::async(std::launch::async, [&, i] {
      return f.store->apply(device_batch("d" + std::to_string(i)));
    }));
  }
  while (f.store->tail() < 51) std::this_thread::yield();
  for (auto& r : rest) {
    EXPECT_EQ(r.wait_for(std::chrono::milliseconds(0)), std::future_status::timeout)
        << "a write answered before it was durable";
  }
  f.gated->open();
  ASSERT_TRUE(first.get().ok());
  for (auto& r : rest) ASSERT_TRUE(r.get().ok());
  EXPECT_EQ(f.gated->groups(), (std::vector<size_t>{1, 50}));
  const GroupCommitStats stats = f.store->stats();
  EXPECT_EQ(stats.commits, 2u);
  EXPECT_EQ(stats.batches, 51u);
  EXPECT_EQ(stats.largest_group, 50u);
  auto all = f.store->list_devices();
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 51u);
}

TEST(GroupCommitTest, InAScopeAWriteReturnsWhenQueuedAndTheScopeWaitsForIt) {
  Fixture f;
  CommitScope scope;
  ASSERT_TRUE(f.store->apply(device_batch("a")).ok());  // returns with the writer still held
  ASSERT_TRUE(f.store->apply(device_batch("b")).ok());
  EXPECT_EQ(scope.log(), f.store.get());
  EXPECT_EQ(scope.needed(), 2u);
  EXPECT_FALSE(f.store->durable(2));
  std::atomic<int> called{0};
  Status told = invalid_argument("not called");
  f.store->when_durable(2, [&](Status s) {
    told = s;
    ++called;
  });
  EXPECT_EQ(called.load(), 0);
  f.gated->open();
  ASSERT_TRUE(scope.wait().ok());
  EXPECT_TRUE(f.store->durable(2));
  // The callback runs on the writer's thread just after the waiters are woken.
  while (called.load() == 0) std::this_thread::yield();
  EXPECT_TRUE(told.ok());
  // Already durable: called at once, on this thread.
  bool now = false;
  f.store->when_durable(1, [&](Status s) { now = s.ok(); });
  EXPECT_TRUE(now);
}

TEST(GroupCommitTest, ANestedScopeHandsItsWritesToTheEnclosingOne) {
  Fixture f;
  f.gated->open();
  CommitScope outer(f.store.get());
  {
    CommitScope inner;
    ASSERT_TRUE(f.store->apply(device_batch("a")).ok());
    EXPECT_EQ(CommitScope::current(), &inner);
  }
  EXPECT_EQ(CommitScope::current(), &outer);
  EXPECT_EQ(outer.needed(), 1u);
  ASSERT_TRUE(outer.wait().ok());
}

TEST(GroupCommitTest, DependOnAllWaitsForOtherWritersQueuedBefore) {
  Fixture f;
  // Another thread's write is queued (not durable)...
  auto other = std::async(std::launch::async, [&] { return f.store->apply(device_batch("x")); });
  f.gated->await_entered(1);
  // ...and this piece of work wrote nothing itself but reveals that write.
  CommitScope scope(f.store.get());
  EXPECT_EQ(scope.needed(), 0u);
  scope.depend_on_all();
  EXPECT_EQ(scope.needed(), 1u);
  f.gated->open();
  ASSERT_TRUE(scope.wait().ok());
  ASSERT_TRUE(other.get().ok());
}

TEST(GroupCommitTest, LaterWritesOfTheSameRecordWinWithinAGroup) {
  Fixture f;
  auto first = std::async(std::launch::async, [&] { return f.store->apply(device_batch("z")); });
  f.gated->await_entered(1);
  {
    CommitScope scope;
    for (int i = 0; i < 10; ++i)
      ASSERT_TRUE(f.store->apply(device_batch("d", "site-" + std::to_string(i))).ok());
    f.gated->open();
    ASSERT_TRUE(scope.wait().ok());
  }
  ASSERT_TRUE(first.get().ok());
  EXPECT_EQ(f.gated->groups(), (std::vector<size_t>{1, 10}));
  auto d = f.store->get_device("d");
  ASSERT_TRUE(d.ok() && d->has_value());
  EXPECT_EQ((*d)->site, "site-9");
}

TEST(GroupCommitTest, AReadDoesNotWaitForAnotherThreadsUncommittedWrite) {
  Fixture f;
  f.gated->open(1);
  ASSERT_TRUE(f.store->apply(device_batch("old", "a")).ok());
  // Another request's write is queued and held: it is not committed yet...
  auto other =
      std::async(std::launch::async, [&] { return f.store->apply(device_batch("old", "b")); });
  f.gated->await_entered(2);
  // ...so a read on this thread answers at once, with what is committed.
  auto got = f.store->get_device("old");
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ((*got)->site, "a");
  f.gated->open();
  ASSERT_TRUE(other.get().ok());
  got = f.store->get_device("old");
  EXPECT_EQ((*got)->site, "b");
}

TEST(GroupCommitTest, AReadWaitsForItsOwnScopesWrites) {
  Fixture f;
  CommitScope scope;
  ASSERT_TRUE(f.store->apply(device_batch("mine")).ok());
  std::thread opener([&] {
    f.gated->await_entered(1);
    f.gated->open();
  });
  auto got = f.store->get_device("mine");  // must not read the disk before the write is on it
  opener.join();
  ASSERT_TRUE(got.ok());
  EXPECT_TRUE(got->has_value());
}

TEST(GroupCommitTest, AFailedCommitFailsItsGroupAndEveryLaterWrite) {
  Fixture f;
  std::atomic<int> failures_reported{0};
  f.store->set_on_failure([&](const Error&) { ++failures_reported; });
  f.gated->open(1);
  ASSERT_TRUE(f.store->apply(device_batch("before")).ok());  // outside a scope: waits

  CommitScope scope;
  ASSERT_TRUE(f.store->apply(device_batch("lost-1")).ok());
  ASSERT_TRUE(f.store->apply(device_batch("lost-2")).ok());
  Status told = ok_status();
  f.store->when_durable(scope.needed(), [&](Status s) { told = s; });
  f.gated->fail_next();
  f.gated->open();
  const Status waited = scope.wait();
  ASSERT_FALSE(waited.ok());
  EXPECT_EQ(waited.error().code, ErrorCode::kIo);
  EXPECT_NE(waited.error().message.find("disk full"), std::string::npos) << waited.error().message;
  while (failures_reported.load() == 0) std::this_thread::yield();
  EXPECT_EQ(failures_reported.load(), 1);
  EXPECT_FALSE(told.ok());
  EXPECT_TRUE(f.store->failure().has_value());

  // Every later write fails at once and is not queued; reads still answer from the disk.
  const Status later = f.store->apply(device_batch("after"));
  ASSERT_FALSE(later.ok());
  EXPECT_EQ(later.error().code, ErrorCode::kIo);
  EXPECT_FALSE(f.store->next_sequence("x").ok());
  auto all = f.store->list_devices();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 1u);
  EXPECT_EQ(all->front().id, "before");
}

TEST(GroupCommitTest, ABadBatchIsRefusedAtOnceAndQueuesNothing) {
  Fixture f;
  WriteBatch bad;
  bad.devices.emplace_back();  // no id
  CommitScope scope;
  const Status refused = f.store->apply(bad);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(f.store->tail(), 0u);
  EXPECT_TRUE(f.store->apply(WriteBatch{}).ok());  // empty: nothing to queue
  EXPECT_EQ(f.store->tail(), 0u);
  EXPECT_EQ(scope.needed(), 0u);
}

TEST(GroupCommitTest, StoppingCommitsWhatIsQueued) {
  auto owned = std::make_unique<GatedStore>();
  GatedStore* gated = owned.get();
  const auto groups = gated->groups_record();
  auto memory = std::make_unique<GroupCommitStore>(std::move(owned));
  {
    CommitScope scope;
    for (int i = 0; i < 5; ++i)
      ASSERT_TRUE(memory->apply(device_batch("q" + std::to_string(i))).ok());
  }
  gated->open();
  memory.reset();  // joins the writer after it has written all five
  size_t written = 0;
  for (size_t g : *groups) written += g;
  EXPECT_EQ(written, 5u);
}

}  // namespace
}  // namespace drover
