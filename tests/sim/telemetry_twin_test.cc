// The telemetry twin's stories hold on every seed: a probe asleep by design is fresh, a
// controller that checks in without data is stale, a dead one offline, a two-hour link loss
// costs nothing, nothing is dropped, the store holds exactly what was sent, and the truck's
// aggregates take fewer bytes than its raw samples, which take fewer than JSON.
#include "sim/telemetry_twin.h"

#include <gtest/gtest.h>

namespace drover::sim {
namespace {

const TelemetryStory* story(const TelemetryTwinReport& r, const std::string& device) {
  for (const TelemetryStory& s : r.stories) {
    if (s.device == device) return &s;
  }
  return nullptr;
}

class TelemetryTwinSeeds : public ::testing::TestWithParam<uint64_t> {};

TEST_P(TelemetryTwinSeeds, TheStoriesHold) {
  TelemetryTwinOptions o;
  o.seed = GetParam();
  auto r = run_telemetry_twin(o);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  ASSERT_EQ(r->kinds.size(), 3u);
  uint64_t sent = 0;
  for (const TelemetryKind& k : r->kinds) sent += k.samples_sent;
  EXPECT_EQ(r->samples_stored, sent) << "the store holds what the agents sent, once";
  EXPECT_EQ(r->dropped, 0u);
  const auto* probe = story(*r, "probe-001");
  ASSERT_NE(probe, nullptr);
  EXPECT_EQ(probe->freshness, "fresh") << probe->text;
  const auto* hung = story(*r, "ctl-002");
  ASSERT_NE(hung, nullptr);
  EXPECT_EQ(hung->freshness, "stale") << hung->text;
  const auto* dead = story(*r, "ctl-004");
  ASSERT_NE(dead, nullptr);
  EXPECT_EQ(dead->freshness, "offline") << dead->text;
  const auto* cut = story(*r, "ctl-003");
  ASSERT_NE(cut, nullptr);
  EXPECT_EQ(cut->freshness, "fresh") << cut->text;
  EXPECT_NE(cut->text.find(", 0 dropped"), std::string::npos) << cut->text;
  // Everything else is fresh: 18 of 20.
  EXPECT_EQ(r->freshness["fresh"], 18u);
  EXPECT_EQ(r->freshness["stale"], 1u);
  EXPECT_EQ(r->freshness["offline"], 1u);
  // Trucks: 20 metrics at 1 Hz become three aggregates a minute each.
  const TelemetryKind& trucks = r->kinds[2];
  // Measured: 60 a minute per metric; sent: 3 a minute per metric — a twentieth, give or
  // take each series' first and last (open) minute.
  const double expected = static_cast<double>(trucks.samples_measured) / 20;
  EXPECT_NEAR(static_cast<double>(trucks.samples_sent), expected, 2 * 20 * 3 * 2);
  EXPECT_LT(r->truck_aggregated_bytes_per_hour * 2, r->truck_raw_bytes_per_hour);
  EXPECT_LT(r->truck_raw_bytes_per_hour * 4, r->truck_json_bytes_per_hour);
  const std::string text = describe(*r);
  EXPECT_NE(text.find("fresh 18, late 0, stale 1, offline 1"), std::string::npos) << text;
}

INSTANTIATE_TEST_SUITE_P(Seeds, TelemetryTwinSeeds, ::testing::Values(1, 2, 3));

TEST(TelemetryTwin, RefusesAFleetTooSmallForItsStories) {
  TelemetryTwinOptions o;
  o.controllers = 3;
  EXPECT_EQ(run_telemetry_twin(o).error().code, ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace drover::sim
