#include "rollout/event_log.h"

#include <gtest/gtest.h>

#include <string>

namespace drover {
namespace {

EngineEvent event(const std::string& rollout, const std::string& text) {
  return EngineEvent{EngineEvent::Kind::kStageStarted, Timestamp(Duration(1000)), rollout, text};
}

TEST(RolloutEventLog, EventsAreNumberedAcrossRolloutsAndReadBackAfterASequenceNumber) {
  RolloutEventLog log;
  log.add(event("r1", "a"));
  log.add(event("r2", "b"));
  log.add(event("r1", "c"));
  RolloutEventLog::Page p = log.since("r1", 0, 100);
  ASSERT_EQ(p.events.size(), 2u);
  EXPECT_EQ(p.events[0].seq, 1u);
  EXPECT_EQ(p.events[0].event.text, "a");
  EXPECT_EQ(p.events[1].seq, 3u);
  EXPECT_EQ(p.last, 3u);
  EXPECT_FALSE(p.truncated);
  p = log.since("r1", 1, 100);
  ASSERT_EQ(p.events.size(), 1u);
  EXPECT_EQ(p.events[0].event.text, "c");
  EXPECT_TRUE(log.since("r1", 3, 100).events.empty());
  EXPECT_TRUE(log.since("nobody", 0, 100).events.empty());
  EXPECT_EQ(log.since("nobody", 0, 100).last, 3u);
  EXPECT_TRUE(log.since("r1", 0, 0).events.empty());
  // A number from before a restart reads everything kept, saying some may be missing.
  p = log.since("r1", 99, 100);
  EXPECT_EQ(p.events.size(), 2u);
  EXPECT_TRUE(p.truncated);
}

TEST(RolloutEventLog, APageCutByItsLimitResumesWhereItStopped) {
  RolloutEventLog log;
  for (int i = 0; i < 5; ++i) log.add(event("r1", std::to_string(i)));
  RolloutEventLog::Page p = log.since("r1", 0, 2);
  ASSERT_EQ(p.events.size(), 2u);
  EXPECT_EQ(p.last, 2u);
  p = log.since("r1", p.last, 2);
  ASSERT_EQ(p.events.size(), 2u);
  EXPECT_EQ(p.events[0].event.text, "2");
  p = log.since("r1", p.last, 2);
  ASSERT_EQ(p.events.size(), 1u);
  EXPECT_EQ(p.last, 5u);
}

TEST(RolloutEventLog, OnlyTheNewestAreKeptAndAReaderIsToldWhatItMissed) {
  RolloutEventLog log;
  const size_t n = RolloutEventLog::kPerRollout + 10;
  for (size_t i = 0; i < n; ++i) log.add(event("r1", std::to_string(i)));
  RolloutEventLog::Page p = log.since("r1", 0, 1000);
  EXPECT_EQ(p.events.size(), RolloutEventLog::kPerRollout);
  EXPECT_TRUE(p.truncated);
  EXPECT_EQ(p.events.front().event.text, "10");
  EXPECT_FALSE(log.since("r1", 10, 1000).truncated);
  // Rollouts beyond the bound: the one told least recently goes.
  RolloutEventLog many;
  for (size_t i = 0; i <= RolloutEventLog::kRollouts; ++i)
    many.add(event("r" + std::to_string(i), "x"));
  EXPECT_TRUE(many.since("r0", 0, 10).events.empty());
  EXPECT_EQ(many.since("r1", 0, 10).events.size(), 1u);
  // The evicted one told of again: a reader from before its eviction is told it missed some;
  // one from after it is not.
  const uint64_t evicted_at = many.since("r0", 0, 0).last;
  many.add(event("r0", "again"));
  const RolloutEventLog::Page again = many.since("r0", 0, 10);
  ASSERT_EQ(again.events.size(), 1u);
  EXPECT_EQ(again.events[0].event.text, "again");
  EXPECT_TRUE(again.truncated);
  EXPECT_FALSE(many.since("r0", evicted_at, 10).truncated);
  // A rollout never seen before is not truncated.
  many.add(event("fresh", "y"));
  EXPECT_FALSE(many.since("fresh", 0, 10).truncated);
}

}  // namespace
}  // namespace drover
