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
