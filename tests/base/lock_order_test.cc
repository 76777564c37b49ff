#include "base/lock_order.h"

#include <gtest/gtest.h>

#include <thread>

#include "base/mutex.h"

namespace drover {
namespace {

TEST(LockOrder, LevelsMustIncreaseOnOneThread) {
  ASSERT_EQ(lock_order::highest_held(), 0);
  ASSERT_TRUE(lock_order::acquire(LockLevel::kDeviceRegistry));
  EXPECT_TRUE(lock_order::acquire(LockLevel::kRolloutEngine));
  EXPECT_FALSE(lock_order::acquire(LockLevel::kDeviceRegistry));  // below the engine
  EXPECT_FALSE(lock_order::acquire(LockLevel::kRolloutEngine));   // the same level twice
  EXPECT_TRUE(lock_order::acquire(LockLevel::kLeaf));
  EXPECT_FALSE(lock_order::acquire(LockLevel::kLeaf));  // two leaves at once
  EXPECT_EQ(lock_order::highest_held(), static_cast<int>(LockLevel::kLeaf));

  lock_order::release(LockLevel::kLeaf);
  lock_order::release(LockLevel::kRolloutEngine);
  EXPECT_EQ(lock_order::highest_held(), static_cast<int>(LockLevel::kDeviceRegistry));
  EXPECT_FALSE(lock_order::acquire(LockLevel::kRolloutStart));  // still holds the registry
  lock_order::release(LockLevel::kDeviceRegistry);
  EXPECT_EQ(lock_order::highest_held(), 0);
  EXPECT_TRUE(lock_order::acquire(LockLevel::kRolloutStart));  // nothing held: anything goes
  lock_order::release(LockLevel::kRolloutStart);
}

TEST(LockOrder, ReleasingOutOfOrderKeepsWhatIsStillHeld) {
  ASSERT_TRUE(lock_order::acquire(LockLevel::kArtifacts));
  ASSERT_TRUE(lock_order::acquire(LockLevel::kStoreWriter));
  lock_order::release(LockLevel::kArtifacts);  // the outer one first
  EXPECT_EQ(lock_order::highest_held(), static_cast<int>(LockLevel::kStoreWriter));
  EXPECT_FALSE(lock_order::acquire(LockLevel::kRolloutEngine));
  lock_order::release(LockLevel::kStoreWriter);
  EXPECT_EQ(lock_order::highest_held(), 0);
}

TEST(LockOrder, EachThreadHasItsOwnHolds) {
  ASSERT_TRUE(lock_order::acquire(LockLevel::kStoreWriter));
  bool other = false;
  std::thread([&] {
    other = lock_order::acquire(LockLevel::kDeviceRegistry);
    lock_order::release(LockLevel::kDeviceRegistry);
  }).join();
  EXPECT_TRUE(other);
  lock_order::release(LockLevel::kStoreWriter);
}

TEST(LockOrder, MutexesTakenInOrderAreFineAndCondVarWaitsKeepTheBook) {
  Mutex registry(LockLevel::kDeviceRegistry);
  Mutex engine(LockLevel::kRolloutEngine);
  CondVar cv;
  {
    MutexLock a(registry);
    MutexLock b(engine);
    cv.wait_for(engine, std::chrono::milliseconds(1), [] { return false; });
    if constexpr (lock_order::kChecked) {
      EXPECT_EQ(lock_order::highest_held(), static_cast<int>(LockLevel::kRolloutEngine));
    }
  }
  EXPECT_EQ(lock_order::highest_held(), 0);
}

// Debug and sanitizer builds (no NDEBUG) abort at the first inversion, naming both locks;
// release builds pay nothing for the check and do not make it.
TEST(LockOrderDeathTest, AnInversionAbortsWhereItIsChecked) {
  auto invert = [] {
    Mutex registry(LockLevel::kDeviceRegistry);
    Mutex engine(LockLevel::kRolloutEngine);
    MutexLock b(engine);
    MutexLock a(registry);
  };
  if constexpr (lock_order::kChecked) {
    EXPECT_DEATH(invert(), "taking the device registry lock while holding the rollout engine lock");
  } else {
    invert();
    EXPECT_EQ(lock_order::highest_held(), 0);
  }
}

}  // namespace
}  // namespace drover
