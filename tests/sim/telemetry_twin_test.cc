// The telemetry twin's stories hold on every seed: a probe asleep by design is fresh; a
// controller whose collector hung while it kept checking in is found by the remediation rules
// and fixed remotely (one restart, run once, the alert resolved by itself); one that only a
// reboot cures is stale at the end with its alert open and the reboot not yet due; a dead one
// is offline (and not acted on: it has not been gone a day); a two-hour link loss costs
// nothing and triggers nothing; the leaking controller's memory is forecast to run out in
// about three days, and no other's within 30; nothing is dropped, the store holds exactly
// what was sent, and the truck's aggregates take fewer bytes than its raw samples, which take
// fewer than JSON.
#include "sim/telemetry_twin.h"

#include <gtest/gtest.h>

#include <array>
#include <map>

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
  EXPECT_EQ(hung->freshness, "fresh") << hung->text;
  const auto* stuck = story(*r, "ctl-005");
  ASSERT_NE(stuck, nullptr);
  EXPECT_EQ(stuck->freshness, "stale") << stuck->text;
  // Two alerts, one per hung controller; none for the link cut short or the dead one.
  ASSERT_EQ(r->alerts.size(), 2u) << describe(*r);
  const Alert& fixed = r->alerts[0];
  EXPECT_EQ(fixed.device_id, "ctl-002");
  EXPECT_EQ(fixed.rule, "no-data");
  EXPECT_EQ(fixed.state, AlertState::kResolved);
  EXPECT_EQ(fixed.resolved_by, "drover");
  EXPECT_EQ(fixed.resolution, "cleared after restart_service collector (step 1 of 2)");
  // Opened once the data had been missing past its contract (stale after 15 minutes) for half
  // an hour: the hang was at 2h.
  const Timestamp start = fixed.opened_at - (fixed.opened_at - Timestamp{}) % hours(24);
  EXPECT_GE(fixed.opened_at - start, hours(2) + minutes(44));
  EXPECT_LE(fixed.opened_at - start, hours(2) + minutes(50));
  EXPECT_LE(fixed.resolved_at - fixed.opened_at, minutes(20)) << hung->text;
  const Alert& open = r->alerts[1];
  EXPECT_EQ(open.device_id, "ctl-005");
  EXPECT_EQ(open.state, AlertState::kOpen) << stuck->text;
  EXPECT_FALSE(open.escalated);
  ASSERT_EQ(r->commands.size(), 2u);
  for (const Command& c : r->commands) {
    // Each a restart of the collector, run once and reported; the reboot not yet due.
    EXPECT_EQ(c.action, protocol::CommandAction::kRestartService);
    EXPECT_EQ(c.argument, "collector");
    EXPECT_EQ(c.state, CommandState::kSucceeded);
    EXPECT_EQ(c.requested_by, "rule:no-data");
  }
  // ctl-005's restart ended less than its 30-minute check before the end: no reboot yet.
  const Timestamp end = start + hours(5) + minutes(30);
  for (const Command& c : r->commands) {
    if (c.device_id == "ctl-005") {
      EXPECT_GT(c.finished_at + minutes(30), end);
    }
  }
  // The leak: ctl-001 loses about 7.4 MB an hour of its 512 MiB; the others hold steady.
  ASSERT_EQ(r->forecasts.size(), 1u);
  EXPECT_EQ(r->forecasts[0].device, "ctl-001");
  EXPECT_GE(r->forecasts[0].expected, hours(60));
  EXPECT_LE(r->forecasts[0].expected, hours(75));
  EXPECT_LE(r->forecasts[0].earliest, r->forecasts[0].expected);
  // Device health as drover serve judges it: the stuck, the leaking, the dead controller and
  // the one whose temperature sensor stuck (its profile's frozen check) are critical, each for
  // its own reason; everything else is healthy.
  EXPECT_EQ(r->health, (std::array<size_t, 4>{16, 0, 4, 0}));
  std::map<std::string, std::string> why;
  for (const auto& a : r->at_risk) why[a.device] = a.reason;
  EXPECT_EQ(why.size(), 4u);
  EXPECT_EQ(why["ctl-006"].rfind("temperature_celsius{zone=0} has stayed at ", 0), 0u)
      << why["ctl-006"];
  EXPECT_NE(why["ctl-006"].find(" for 1.5 h while the device reports (frozen after 1.0 h)"),
            std::string::npos)
      << why["ctl-006"];
  EXPECT_EQ(why["ctl-001"].rfind("memory exhausted in about", 0), 0u) << why["ctl-001"];
  EXPECT_EQ(why["ctl-004"].rfind("not heard from for", 0), 0u) << why["ctl-004"];
  EXPECT_EQ(why["ctl-005"].rfind("no data for", 0), 0u) << why["ctl-005"];
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
  EXPECT_NE(text.find("2 alerts, 2 remote commands"), std::string::npos) << text;
  EXPECT_NE(text.find("forecast: ctl-001 runs out of memory in about"), std::string::npos) << text;
}

INSTANTIATE_TEST_SUITE_P(Seeds, TelemetryTwinSeeds, ::testing::Values(1, 2, 3));

TEST(TelemetryTwin, RefusesAFleetTooSmallForItsStories) {
  TelemetryTwinOptions o;
  o.controllers = 4;
  EXPECT_EQ(run_telemetry_twin(o).error().code, ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace drover::sim
