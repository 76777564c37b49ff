#include "base/clock.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "../common/shared_manual_clock.h"

namespace drover {
namespace {

// A fixed, arbitrary start: 2026-03-10T02:00:00Z.
const Timestamp kStart{seconds(1'773'108'000)};

TEST(ManualClock, StartsWhereToldAndStaysThere) {
  ManualClock clock(kStart);
  EXPECT_EQ(clock.now(), kStart);
  EXPECT_EQ(clock.now(), kStart);
  EXPECT_EQ(clock.pending(), 0u);
  EXPECT_EQ(clock.next_due(), Timestamp::max());
}

TEST(ManualClock, TimersRunInDueOrder) {
  ManualClock clock(kStart);
  std::vector<std::string> ran;
  std::vector<Timestamp> ran_at;
  auto record = [&](std::string name) {
    return [&, name] {
      ran.push_back(name);
      ran_at.push_back(clock.now());
    };
  };
  clock.schedule_after(minutes(30), record("c"));
  clock.schedule_after(minutes(10), record("a"));
  clock.schedule_after(minutes(20), record("b"));
  EXPECT_EQ(clock.pending(), 3u);
  EXPECT_EQ(clock.next_due(), kStart + minutes(10));

  while (clock.run_next()) {
  }
  EXPECT_EQ(ran, (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(ran_at, (std::vector<Timestamp>{kStart + minutes(10), kStart + minutes(20),
                                            kStart + minutes(30)}));
  EXPECT_EQ(clock.now(), kStart + minutes(30));
  EXPECT_EQ(clock.pending(), 0u);
}

TEST(ManualClock, SameTimeTimersRunInSchedulingOrder) {
  ManualClock clock(kStart);
  std::vector<int> ran;
  // Ids grow with scheduling order; schedule enough that a hash order would show.
  for (int i = 0; i < 20; ++i)
    clock.schedule_at(kStart + seconds(5), [&ran, i] { ran.push_back(i); });
  clock.advance(seconds(5));
  ASSERT_EQ(ran.size(), 20u);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(ran[static_cast<size_t>(i)], i);
}

TEST(ManualClock, AdvanceToRunsOnlyDueTimersAndSetsNow) {
  ManualClock clock(kStart);
  std::vector<int> ran;
  clock.schedule_at(kStart + minutes(1), [&] { ran.push_back(1); });
  clock.schedule_at(kStart + minutes(5), [&] { ran.push_back(5); });  // exactly at the target
  clock.schedule_at(kStart + minutes(6), [&] { ran.push_back(6); });

  clock.advance_to(kStart + minutes(5));
  EXPECT_EQ(ran, (std::vector<int>{1, 5}));
  EXPECT_EQ(clock.now(), kStart + minutes(5));
  EXPECT_EQ(clock.pending(), 1u);
  EXPECT_EQ(clock.next_due(), kStart + minutes(6));

  // Advancing to a time with nothing due still moves now().
  clock.advance(Duration(500));
  EXPECT_EQ(ran.size(), 2u);
  EXPECT_EQ(clock.now(), kStart + minutes(5) + Duration(500));

  clock.advance(hours(1));
  EXPECT_EQ(ran, (std::vector<int>{1, 5, 6}));
  EXPECT_EQ(clock.now(), kStart + minutes(5) + Duration(500) + hours(1));
}

TEST(ManualClock, CallbackSeesItsOwnDueTime) {
  ManualClock clock(kStart);
  Timestamp seen{};
  clock.schedule_at(kStart + minutes(3), [&] { seen = clock.now(); });
  clock.advance(hours(1));
  EXPECT_EQ(seen, kStart + minutes(3));
}

TEST(ManualClock, PastTimersRunAtNow) {
  ManualClock clock(kStart);
  Timestamp seen{};
  clock.schedule_at(kStart - hours(1), [&] { seen = clock.now(); });
  EXPECT_EQ(clock.next_due(), kStart);
  ASSERT_TRUE(clock.run_next());
  EXPECT_EQ(seen, kStart);
}

TEST(ManualClock, Cancel) {
  ManualClock clock(kStart);
  std::vector<int> ran;
  const auto a = clock.schedule_after(minutes(1), [&] { ran.push_back(1); });
  const auto b = clock.schedule_after(minutes(2), [&] { ran.push_back(2); });
  EXPECT_NE(a, b);

  EXPECT_TRUE(clock.cancel(a));
  EXPECT_FALSE(clock.cancel(a));  // already cancelled
  EXPECT_EQ(clock.pending(), 1u);
  EXPECT_EQ(clock.next_due(), kStart + minutes(2));

  clock.advance(minutes(10));
  EXPECT_EQ(ran, (std::vector<int>{2}));
  EXPECT_FALSE(clock.cancel(b));     // already ran
  EXPECT_FALSE(clock.cancel(9999));  // never existed
}

TEST(ManualClock, RunNextOnEmptyDoesNothing) {
  ManualClock clock(kStart);
  EXPECT_FALSE(clock.run_next());
  EXPECT_EQ(clock.now(), kStart);
}

TEST(ManualClock, TimersScheduledFromACallback) {
  ManualClock clock(kStart);
  std::vector<std::string> ran;
  clock.schedule_after(minutes(1), [&] {
    ran.push_back("first");
    // Due inside the window being advanced through: must run in the same advance.
    clock.schedule_after(minutes(1), [&] { ran.push_back("chained"); });
    // Due at the current instant: runs after this callback, before later timers.
    clock.schedule_after(Duration(0), [&] { ran.push_back("immediate"); });
    // Beyond the target: must stay pending.
    clock.schedule_after(hours(1), [&] { ran.push_back("later"); });
  });
  clock.schedule_after(seconds(90), [&] { ran.push_back("at-90s"); });

  clock.advance_to(kStart + minutes(5));
  EXPECT_EQ(ran, (std::vector<std::string>{"first", "immediate", "at-90s", "chained"}));
  EXPECT_EQ(clock.pending(), 1u);
  EXPECT_EQ(clock.next_due(), kStart + minutes(61));
  EXPECT_EQ(clock.now(), kStart + minutes(5));
}

TEST(ManualClock, CallbackMayCancelAnotherTimer) {
  ManualClock clock(kStart);
  std::vector<int> ran;
  Clock::TimerId second = 0;
  clock.schedule_after(minutes(1), [&] {
    ran.push_back(1);
    EXPECT_TRUE(clock.cancel(second));
  });
  second = clock.schedule_after(minutes(2), [&] { ran.push_back(2); });
  clock.advance(minutes(5));
  EXPECT_EQ(ran, (std::vector<int>{1}));
}

TEST(ManualClockDeathTest, AdvancingBackwardsAborts) {
  ManualClock clock(kStart);
  EXPECT_DEATH(clock.advance_to(kStart - Duration(1)), "check failed");
}

// ---------------------------------------------------------------- SystemClock

TEST(SystemClock, NowIsCloseToTheSystemClock) {
  SystemClock clock;
  const auto before = std::chrono::system_clock::now();
  const Timestamp t = clock.now();
  const auto after = std::chrono::system_clock::now();
  // now() truncates to milliseconds, so it may be up to 1 ms before `before`.
  EXPECT_GE(t, std::chrono::time_point_cast<Duration>(before) - Duration(1));
  EXPECT_LE(t, std::chrono::time_point_cast<Duration>(after) + Duration(1));
}

// The one test that waits on real time: a SystemClock timer must actually fire, and a
// cancelled one due before it must not.
TEST(SystemClock, TimerRunsAndCancelledTimerDoesNot) {
  // Declared before the clock so that the clock (and its timer thread) goes first.
  std::mutex mu;
  std::condition_variable cv;
  bool fired = false;
  bool cancelled_ran = false;
  Timestamp fired_at{};
  SystemClock clock;
  const Timestamp scheduled = clock.now();
  const auto cancelled = clock.schedule_after(Duration(15), [&] {
    std::lock_guard lock(mu);
    cancelled_ran = true;
  });
  EXPECT_TRUE(clock.cancel(cancelled));
  EXPECT_FALSE(clock.cancel(cancelled));
  clock.schedule_after(Duration(20), [&] {
    std::lock_guard lock(mu);
    fired = true;
    fired_at = clock.now();
    cv.notify_all();
  });
  std::unique_lock lock(mu);
  ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(5), [&] { return fired; }));
  EXPECT_GE(fired_at, scheduled + Duration(20));
  EXPECT_FALSE(cancelled_ran);
}

// sleep_until waits for the clock it is given, whoever moves it: here another thread moves
// a simulated clock, and the sleeper wakes exactly when that clock reaches the time.
TEST(SleepUntil, WakesWhenTheClockItWaitsOnGetsThere) {
  testing::SharedManualClock clock(kStart);
  const Timestamp due = kStart + hours(5);
  std::atomic<bool> woke{false};
  std::jthread sleeper([&] {
    sleep_until(clock, due);
    woke = true;
  });
  EXPECT_TRUE(clock.wait_for_timer(due));  // the sleeper's timer is on the clock
  clock.advance(hours(5) - Duration(1));
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_FALSE(woke) << "woke before its time";
  clock.advance(Duration(1));
  sleeper.join();
  EXPECT_TRUE(woke);
  EXPECT_EQ(clock.now(), due);
}

TEST(SleepUntil, ATimeAlreadyReachedReturnsAtOnceWithNoTimer) {
  testing::SharedManualClock clock(kStart);
  sleep_until(clock, kStart);
  sleep_until(clock, kStart - hours(1));
  EXPECT_FALSE(clock.wait_for_timer(kStart, 1, std::chrono::milliseconds(1)));
}

}  // namespace
}  // namespace drover
