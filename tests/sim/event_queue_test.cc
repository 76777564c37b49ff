#include "sim/event_queue.h"

#include <gtest/gtest.h>

#include <functional>
#include <queue>

#include "base/random.h"

namespace drover::sim {
namespace {

// The calendar queue must pop exactly what a binary heap on (time, sequence) pops, with
// pushes interleaved, events at the current second, ties, and events days ahead.
TEST(EventQueue, PopsInTheSameOrderAsAHeap) {
  for (uint64_t seed = 1; seed <= 5; ++seed) {
    Rng rng(seed);
    const int64_t start = 1'780'000'000'000;
    EventQueue q(start);
    std::priority_queue<Event, std::vector<Event>, std::greater<>> ref;
    uint64_t seq = 0;
    int64_t now = start;
    auto push = [&](int64_t at) {
      const Event e{at, seq++, static_cast<uint32_t>(rng.below(1000)), 0};
      q.push(e);
      ref.push(e);
    };
    for (int i = 0; i < 2000; ++i) push(start + static_cast<int64_t>(rng.below(3'600'000)));
    for (int step = 0; step < 20000 && !ref.empty(); ++step) {
      ASSERT_EQ(q.size(), ref.size());
      const Event a = q.top();
      const Event b = ref.top();
      ASSERT_EQ(a.at_ms, b.at_ms) << "step " << step;
      ASSERT_EQ(a.seq, b.seq) << "step " << step;
      q.pop();
      ref.pop();
      now = a.at_ms;
      const uint64_t r = rng.below(10);
      if (r < 6) push(now + static_cast<int64_t>(rng.below(3'600'000)));  // an hour ahead
      if (r == 6) push(now);                                              // right now
      if (r == 7) push(now + static_cast<int64_t>(rng.below(500)));       // same second
      if (r == 8)
        push(now + 5LL * 24 * 3'600'000 + static_cast<int64_t>(rng.below(1000)));  // days ahead
    }
    while (!ref.empty()) {
      ASSERT_EQ(q.top().seq, ref.top().seq);
      q.pop();
      ref.pop();
    }
    EXPECT_TRUE(q.empty());
  }
}

// Dense buckets (hundreds of events per 16-second bucket) go through the radix sort; the
// order must still be exactly the heap's, also with pushes into the bucket being read.
TEST(EventQueue, DenseBucketsPopInTheSameOrderAsAHeap) {
  Rng rng(42);
  const int64_t start = 1'780'000'000'000;
  EventQueue q(start);
  std::priority_queue<Event, std::vector<Event>, std::greater<>> ref;
  uint64_t seq = 0;
  auto push = [&](int64_t at) {
    const Event e{at, seq++, static_cast<uint32_t>(rng.below(1000)), 0};
    q.push(e);
    ref.push(e);
  };
  // 30,000 events within ten minutes, many sharing a millisecond.
  for (int i = 0; i < 30000; ++i) push(start + static_cast<int64_t>(rng.below(600'000)));
  for (int i = 0; i < 200; ++i)
    push(start + 90LL * 3'600'000 + static_cast<int64_t>(rng.below(50'000)));
  while (!ref.empty()) {
    const Event a = q.top();
    ASSERT_EQ(a.seq, ref.top().seq);
    q.pop();
    ref.pop();
    if (rng.below(20) == 0) push(a.at_ms + static_cast<int64_t>(rng.below(3'000)));
  }
  EXPECT_TRUE(q.empty());
}

// The queue does not rely on callers numbering their pushes in order: a bucket filled with
// falling sequence numbers still pops by (time, sequence).
TEST(EventQueue, OrdersByTimeThenSequenceWhateverThePushOrder) {
  const int64_t start = 0;
  EventQueue q(start);
  std::priority_queue<Event, std::vector<Event>, std::greater<>> ref;
  for (int i = 0; i < 500; ++i) {
    const Event e{60'000 + (i % 7) * 10, static_cast<uint64_t>(1000 - i), static_cast<uint32_t>(i),
                  0};
    q.push(e);
    ref.push(e);
  }
  while (!ref.empty()) {
    ASSERT_EQ(q.top().seq, ref.top().seq);
    q.pop();
    ref.pop();
  }
}

// upcoming() hands out each event once, in pop order, and nothing more until those popped.
TEST(EventQueue, UpcomingHandsOutTheNextEventsOnce) {
  EventQueue q(0);
  for (uint64_t i = 0; i < 10; ++i)
    q.push({static_cast<int64_t>(1000 + i), i, static_cast<uint32_t>(i), 0});
  q.top();
  auto first = q.upcoming(4);
  ASSERT_EQ(first.size(), 4u);
  for (uint32_t i = 0; i < 4; ++i) EXPECT_EQ(first[i].device, i);
  EXPECT_TRUE(q.upcoming(4).empty());  // the four are still queued
  for (int i = 0; i < 3; ++i) q.pop();
  EXPECT_TRUE(q.upcoming(4).empty());
  q.pop();
  auto second = q.upcoming(4);
  ASSERT_EQ(second.size(), 4u);
  EXPECT_EQ(second[0].device, 4u);
  for (int i = 0; i < 4; ++i) q.pop();
  auto rest = q.upcoming(4);
  ASSERT_EQ(rest.size(), 2u);
  EXPECT_EQ(rest[1].device, 9u);
}

TEST(EventQueue, JumpsOverLongQuietSpells) {
  EventQueue q(0);
  q.push({400LL * 24 * 3'600'000, 1, 7, 0});  // a year and more ahead
  q.push({5'000, 0, 3, 0});
  EXPECT_EQ(q.top().device, 3u);
  q.pop();
  EXPECT_EQ(q.top().device, 7u);
  q.pop();
  EXPECT_TRUE(q.empty());
}

}  // namespace
}  // namespace drover::sim
