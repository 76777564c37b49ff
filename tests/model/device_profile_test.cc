#include "model/device_profile.h"

#include <gtest/gtest.h>

#include "model/codec.h"

namespace drover {
namespace {

TEST(DeviceProfile, RoundTripsThroughItsDocument) {
  auto p = profile_from_json(R"({"device_type": "soil-probe",
      "telemetry": {"report_every": "6h", "late_after": "30m"},
      "metrics": [{"metric": "temp_c", "every": "1h", "aggregates": ["mean", "max", "min"]},
                  {"metric": "*"}]})");
  ASSERT_TRUE(p.ok()) << p.error().to_string();
  EXPECT_EQ(p->telemetry.report_every, hours(6));
  EXPECT_EQ(p->telemetry.effective_stale_after(), hours(18) + minutes(30));
  ASSERT_EQ(p->metrics.size(), 2u);
  EXPECT_EQ(p->metrics[0].metric, "*");  // sorted
  EXPECT_EQ(p->metrics[1].functions,
            (std::vector<AggregateFunction>{AggregateFunction::kMin, AggregateFunction::kMax,
                                            AggregateFunction::kMean}));
  auto back = profile_from_json(to_json(*p));
  ASSERT_TRUE(back.ok()) << back.error().to_string();
  EXPECT_EQ(*back, *p);
}

TEST(DeviceProfile, HealthChecksRoundTripSortedAndOnlyWhatIsSet) {
  auto p = profile_from_json(R"({"device_type": "soil-probe",
      "health": [{"metric": "temp_c", "frozen_after": "6h", "tolerance": 0.05, "drift": true},
                 {"metric": "signal_dbm", "below": -110.5},
                 {"metric": "pump_current_a", "above": 12, "below": 0.5}]})");
  ASSERT_TRUE(p.ok()) << p.error().to_string();
  ASSERT_EQ(p->health.size(), 3u);
  EXPECT_EQ(p->health[0].metric, "pump_current_a");  // sorted
  EXPECT_EQ(p->health[0].above, 12);
  EXPECT_EQ(p->health[0].below, 0.5);
  EXPECT_EQ(p->health[1].below, -110.5);
  EXPECT_FALSE(p->health[1].above);
  EXPECT_EQ(p->health[1].frozen_after, Duration(0));
  EXPECT_FALSE(p->health[1].drift);
  EXPECT_EQ(p->health[2].frozen_after, hours(6));
  EXPECT_EQ(p->health[2].tolerance, 0.05);
  EXPECT_TRUE(p->health[2].drift);
  const std::string text = to_json(*p);
  // What is not set is not written: one tolerance, one drift, one frozen_after.
  for (const char* field : {"tolerance", "drift", "frozen_after"}) {
    const size_t at = text.find(field);
    EXPECT_NE(at, std::string::npos) << field;
    EXPECT_EQ(text.find(field, at + 1), std::string::npos) << text;
  }
  auto back = profile_from_json(text);
  ASSERT_TRUE(back.ok()) << back.error().to_string();
  EXPECT_EQ(*back, *p);
  // A limit on a metric aggregated without its mean is fine (a max past a ceiling went past it).
  EXPECT_TRUE(profile_from_json(R"({"device_type": "x",
      "metrics": [{"metric": "a", "every": "1m", "aggregates": ["min", "max"]}],
      "health": [{"metric": "a", "above": 3}]})")
                  .ok());
  // A profile without checks is written without the field, as before there were any.
  auto plain = profile_from_json(R"({"device_type": "x"})");
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(to_json(*plain).find("health"), std::string::npos);
}

TEST(DeviceProfile, BadProfilesSayWhatIsWrong) {
  const std::pair<const char*, const char*> cases[] = {
      {R"({"device_type": "a b"})", "not a valid name"},
      {R"({"device_type": "x", "telemetry": {"late_after": "5m"}})", "need report_every"},
      {R"({"device_type": "x", "telemetry": {"report_every": "5m", "stale_after": "5m"}})",
       "must exceed"},
      {R"({"device_type": "x", "metrics": [{"metric": "9lives"}]})", "not a valid metric name"},
      {R"({"device_type": "x", "metrics": [{"metric": "a", "every": "1m"}]})", "needs aggregates"},
      {R"({"device_type": "x", "metrics": [{"metric": "a", "every": "2d", "aggregates": ["max"]}]})",
       "between 1s and 1d"},
      {R"({"device_type": "x", "metrics": [{"metric": "a", "every": "1m", "aggregates": ["p99"]}]})",
       "unknown aggregate"},
      {R"({"device_type": "x", "metrics": [{"metric": "a"}, {"metric": "a"}]})", "two rules"},
      {R"({"device_type": "x", "colour": "red"})", "colour"},
      {R"({"device_type": "x", "health": [{"metric": "a"}]})", "at least one of"},
      {R"({"device_type": "x", "health": [{"metric": "9a", "above": 1}]})",
       "not a valid metric name"},
      {R"({"device_type": "x", "health": [{"metric": "a", "above": 1, "below": 1}]})",
       "below must be less than above"},
      {R"({"device_type": "x", "health": [{"metric": "a", "above": "high"}]})", "must be a number"},
      {R"({"device_type": "x", "health": [{"metric": "a", "above": 1e999}]})", "overflow"},
      {R"({"device_type": "x", "health": [{"metric": "a", "frozen_after": "30s"}]})",
       "between 1m and 7d"},
      {R"({"device_type": "x", "health": [{"metric": "a", "frozen_after": "8d"}]})",
       "between 1m and 7d"},
      {R"({"device_type": "x", "health": [{"metric": "a", "below": 0, "tolerance": 1}]})",
       "needs frozen_after"},
      {R"({"device_type": "x", "health": [{"metric": "a", "frozen_after": "1h", "tolerance": -1}]})",
       "at least 0"},
      {R"({"device_type": "x", "health": [{"metric": "a", "drift": "yes"}]})", "drift"},
      {R"({"device_type": "x", "health": [{"metric": "a", "drift": true}, {"metric": "a", "below": 1}]})",
       "two health checks"},
      {R"({"device_type": "x", "health": [{"metric": "a", "limit": 3}]})", "limit"},
      {R"({"device_type": "x", "metrics": [{"metric": "a", "every": "1m", "aggregates": ["min", "max"]}],
           "health": [{"metric": "a", "drift": true}]})",
       "must aggregate mean or last"},
      {R"({"device_type": "x", "metrics": [{"metric": "*", "every": "1m", "aggregates": ["count"]}],
           "health": [{"metric": "a", "frozen_after": "1h"}]})",
       "the metric's rule ('*')"},
  };
  for (const auto& [text, why] : cases) {
    auto p = profile_from_json(text);
    ASSERT_FALSE(p.ok()) << text;
    EXPECT_NE(p.error().message.find(why), std::string::npos) << p.error().message;
  }
}

TEST(DeviceProfile, FreshnessIsJudgedAgainstTheContract) {
  // A device that sleeps six hours by design, 30 minutes of grace.
  const TelemetryContract sleeper{hours(6), minutes(30), Duration(0)};
  const Duration never(-1);
  EXPECT_EQ(judge(sleeper, hours(5), hours(5)), Freshness::kFresh);
  EXPECT_EQ(judge(sleeper, hours(6) + minutes(30), minutes(1)), Freshness::kFresh);
  EXPECT_EQ(judge(sleeper, hours(7), hours(7)), Freshness::kLate);
  EXPECT_EQ(judge(sleeper, hours(19), hours(1)), Freshness::kStale);  // talks, sends nothing new
  EXPECT_EQ(judge(sleeper, never, minutes(5)), Freshness::kStale);
  EXPECT_EQ(judge(sleeper, hours(19), hours(19)), Freshness::kOffline);
  EXPECT_EQ(judge(sleeper, never, never), Freshness::kOffline);
  EXPECT_EQ(judge(TelemetryContract{}, hours(100), hours(100)), Freshness::kNoContract);
  // Tighter: a sensor every minute is late after 90 s.
  const TelemetryContract chatty{minutes(1), seconds(30), minutes(5)};
  EXPECT_EQ(judge(chatty, seconds(91), seconds(91)), Freshness::kLate);
  EXPECT_EQ(judge(chatty, minutes(6), seconds(10)), Freshness::kStale);
}

}  // namespace
}  // namespace drover
