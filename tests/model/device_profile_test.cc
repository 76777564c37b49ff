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
