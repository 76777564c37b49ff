// The simulator end to end: the demo scenario at reduced size tells the demo's story, runs
// are deterministic, the SQLite store gives the same outcome as memory, and scenario files
// with mistakes are refused with the field named.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "../common/golden.h"
#include "sim/simulator.h"

namespace drover::sim {
namespace {

std::string read(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

Scenario demo() {
  auto s = load_scenario(std::string(DROVER_SOURCE_DIR) + "/scenarios/demo.json");
  EXPECT_TRUE(s.ok()) << s.error().to_string();
  return *s;
}

// The demo where 90% of rev-c turns unhealthy 30 h after committing, watched for 48 h.
Scenario late_defect_demo() {
  Scenario s = demo();
  DefectSpec d;
  d.hardware_revision = "rev-c";
  d.kind = DefectKind::kFailsAfter;
  d.probability = 0.9;
  d.after = hours(30);
  s.defects = {d};
  s.horizon = hours(24 * 5);
  s.rollout.watch = hours(48);
  return s;
}

SimOptions small(uint32_t devices) {
  SimOptions o;
  o.devices = devices;
  return o;
}

// The demo's whole timeline and report (without its wall-clock fields) as they were when
// this was written: any change to what the twin or the control plane it drives decides shows
// up as a diff. A restructuring must leave it byte for byte; a change of behaviour that is
// meant rewrites it (DROVER_UPDATE_GOLDEN=1) and the diff is reviewed.
TEST(Sim, TheDemoTellsTheSameStoryAsTheGolden) {
  SimOptions o;
  std::string story;
  o.timeline = [&](const std::string& line) { story += line + "\n"; };
  auto r = run_simulation(demo(), o);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  testing::expect_golden(std::string(DROVER_SOURCE_DIR) + "/tests/sim/golden/demo.txt",
                         story + "\n" + r->to_json(false));
}

TEST(Sim, DemoAtReducedSizeHaltsTheBrokenRevisionAndCompletesTheRest) {
  const Scenario s = demo();
  auto r = run_simulation(s, small(3000));
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(r->devices_total, 3000u);
  EXPECT_EQ(r->devices_eligible, 3000u);
  EXPECT_EQ(r->devices_bricked, 0u);
  ASSERT_EQ(r->halted_strata.size(), 1u);
  EXPECT_EQ(r->halted_strata[0].hardware_revision, "rev-c");
  // Halted during the canary stage: before the second stage started.
  ASSERT_GE(r->stages.size(), 2u);
  EXPECT_LT(r->halted_strata[0].halted_at_s, r->stages[1].started_at_s);
  // A halted revision makes the ending partial, and says so.
  EXPECT_EQ(r->rollout_state, "completed_partial");
  ASSERT_EQ(r->outcome.halted.size(), 1u);
  EXPECT_EQ(r->halted_strata[0].devices, r->outcome.halted[0].devices);
  EXPECT_GT(r->halted_strata[0].never_offered, 0u);
  // Every rev-a and rev-b device ends on 4.2.1; rev-c devices fell back (a failure of the
  // build), were sent back by the fleet, or were never offered.
  EXPECT_EQ(r->devices_updated + r->devices_reverted + r->devices_cancelled + r->devices_failed,
            r->devices_eligible);
  EXPECT_EQ(r->devices_failed, r->devices_fell_back);  // no other kind of failure here
  EXPECT_GT(r->devices_fell_back, 0u);
  const RolloutOutcome& o = r->outcome;
  EXPECT_EQ(o.updated + o.failed() + o.reverted + o.reverting + o.revert_failed + o.skipped +
                o.never_offered + o.pending + o.in_flight,
            o.targets);
  EXPECT_GT(r->devices_updated, 2000u);  // rev-a + rev-b are 80% of the fleet
  EXPECT_EQ(r->devices_unreachable, 0u);
  ASSERT_TRUE(r->time_to_95_percent_s.has_value());
  EXPECT_EQ(r->stages.size(), 4u);
}

TEST(Sim, SameSeedGivesTheSameReportByteForByte) {
  const Scenario s = demo();
  auto a = run_simulation(s, small(800));
  auto b = run_simulation(s, small(800));
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->to_json(false), b->to_json(false));
  SimOptions other = small(800);
  other.seed = 7;
  auto c = run_simulation(s, other);
  ASSERT_TRUE(c.ok());
  EXPECT_NE(a->to_json(false), c->to_json(false));
}

TEST(Sim, SqliteStoreGivesTheSameOutcomeAsMemory) {
  const Scenario s = demo();
  const auto dir =
      std::filesystem::temp_directory_path() / ("drover-sim-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  SimOptions o = small(600);
  o.store = "sqlite:" + (dir / "fleet.db").string();
  auto on_disk = run_simulation(s, o);
  auto in_memory = run_simulation(s, small(600));
  std::filesystem::remove_all(dir);
  ASSERT_TRUE(on_disk.ok()) << on_disk.error().to_string();
  ASSERT_TRUE(in_memory.ok());
  EXPECT_EQ(on_disk->to_json(false), in_memory->to_json(false));
}

TEST(Sim, PreflightPredictsAndListsDevicesTheConstraintsNeverReach) {
  Scenario s = demo();
  // Give one link class online windows that never meet the sites' night windows.
  for (auto& c : s.connectivity) {
    if (c.kind == LinkKind::kIntermittent) c.online = {{0x7f, 12 * 60, 20}};
  }
  s.horizon = hours(30);
  SimOptions o = small(1000);
  o.preflight = true;
  auto r = run_simulation(s, o);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->halted_strata.empty());  // defects are ignored in pre-flight
  EXPECT_FALSE(r->never_reached.empty());
  for (const auto& u : r->never_reached) {
    EXPECT_EQ(u.reason, "its link is never online during its site's maintenance window")
        << u.device_id;
  }
  EXPECT_TRUE(r->time_to_50_percent_s.has_value());
  EXPECT_FALSE(r->time_to_100_percent_s.has_value());
}

// The pre-flight says, per stage, how big it is against what was asked and what it waited
// for: the demo's canary waits for the western sites' windows; squeeze max_in_flight, then
// the offer rate, and the later stages say so.
TEST(Sim, EachStageSaysItsSizeAndWhatItWaitedFor) {
  Scenario s = demo();
  SimOptions o = small(6000);
  o.preflight = true;
  auto r = run_simulation(s, o);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  ASSERT_EQ(r->stages.size(), 4u);
  const StageReport& canary = r->stages[0];
  ASSERT_TRUE(canary.asked.has_value());
  EXPECT_EQ(*canary.asked, 60u);  // 1% of 6,000
  EXPECT_EQ(canary.planned, canary.devices);
  EXPECT_LT(canary.planned, 600u);  // not one from each of the 600 strata any more
  EXPECT_NE(canary.why.find("the gate needs"), std::string::npos) << canary.why;
  EXPECT_EQ(canary.bound_by, "window");
  // Later stages hold what they asked, or say why not (here: the 10% stage keeps the
  // canary's 168 of rev-c, more than rev-c's 10%).
  for (size_t k = 1; k < r->stages.size(); ++k) {
    EXPECT_GE(r->stages[k].planned, *r->stages[k].asked) << r->stages[k].name;
    EXPECT_EQ(r->stages[k].planned > *r->stages[k].asked + 6, !r->stages[k].why.empty())
        << r->stages[k].name << ": " << r->stages[k].planned << " for " << *r->stages[k].asked;
  }

  s.rollout.constraints.max_in_flight = 20;
  r = run_simulation(s, o);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(r->stages.back().bound_by, "max_in_flight");
  EXPECT_GT(r->stages.back().held_by_in_flight, 0u);

  s.rollout.constraints.max_in_flight = 0;
  s.rollout.constraints.max_per_minute = 5;
  s.rollout.constraints.ramp_from_per_minute = 0;
  s.rollout.constraints.ramp_over = Duration(0);
  r = run_simulation(s, o);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(r->stages.back().bound_by, "rate");
}

TEST(Sim, FailsAfterDefectsMakeDevicesUnhealthyAndHaltTheirRevision) {
  Scenario s = demo();
  DefectSpec d;
  d.hardware_revision = "rev-a";
  d.kind = DefectKind::kFailsAfter;
  d.after = hours(1);
  s.defects = {d};
  auto r = run_simulation(s, small(1500));
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->halted_strata.size(), 1u);
  EXPECT_EQ(r->halted_strata[0].hardware_revision, "rev-a");
  // The unhealthy ones count as failures of the build, and the fleet sent them back.
  EXPECT_GT(r->devices_unhealthy_reverted, 0u);
  EXPECT_GE(r->devices_failed, r->devices_unhealthy_reverted);
  EXPECT_EQ(r->rollout_state, "completed_partial");
  EXPECT_EQ(r->devices_bricked, 0u);
}

// "Broken on one revision in one time zone" (a daylight-saving bug): only rev-b devices in
// Denver's sites fail, so only Denver's rev-b strata can be blamed, never rev-b as a whole
// nor another zone.
TEST(Sim, DefectsCanBeScopedByZoneSiteGroupAndLink) {
  Scenario s = demo();
  DefectSpec d;
  d.hardware_revision = "rev-b";
  d.time_zone = "America/Denver";
  d.kind = DefectKind::kInstallFails;
  d.probability = 1;
  s.defects = {d};
  auto r = run_simulation(s, small(3000));
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  ASSERT_FALSE(r->halted_strata.empty());
  for (const auto& h : r->halted_strata) {
    EXPECT_EQ(h.hardware_revision, "rev-b") << h.group;
    // Either all of rev-b, or one of its Denver sites.
    EXPECT_TRUE(h.site.empty() || h.site.rfind("den-", 0) == 0) << h.group;
  }
  // Nobody else failed: the revisions other than rev-b ran clean.
  for (const auto& v : r->revisions) {
    if (v.hardware_revision != "rev-b") {
      EXPECT_EQ(v.installed, v.updated) << v.hardware_revision;
    }
  }
}

// A late defect: 90% of rev-c turns unhealthy 30 h after committing. With a 48 h watch the
// rollout stays watching after its last stage, halts rev-c and sends it back before 10% of
// rev-c has failed, and completes the rest once the watch is over. Without a watch it
// would have reported "completed" with the defect left on rev-c.
TEST(Sim, ALateDefectIsCaughtDuringTheWatch) {
  Scenario s = late_defect_demo();
  std::vector<std::string> lines;
  SimOptions o;
  o.timeline = [&](const std::string& line) { lines.push_back(line); };
  auto r = run_simulation(s, o);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  ASSERT_EQ(r->halted_strata.size(), 1u);
  EXPECT_EQ(r->halted_strata[0].group, "hardware_revision=rev-c");
  bool watched = false;
  for (const auto& l : lines) watched = watched || l.find("[watching]") != std::string::npos;
  EXPECT_TRUE(watched);
  EXPECT_EQ(r->rollout_state, "completed_partial");  // rev-c halted and sent back
  EXPECT_EQ(r->devices_unhealthy_reverted + r->devices_reverted, 3001u);
  // Halted before 10% of rev-c had failed: the reason starts "F of N failed".
  unsigned failed_at_halt = 0, known = 0;
  ASSERT_EQ(
      std::sscanf(r->halted_strata[0].reason.c_str(), "%u of %u failed", &failed_at_halt, &known),
      2)
      << r->halted_strata[0].reason;
  for (const auto& v : r->revisions) {
    if (v.hardware_revision == "rev-c") {
      EXPECT_LT(failed_at_halt * 10, v.devices) << failed_at_halt << " of " << v.devices;
      // Reverts wait for each site's window, so more show the defect before they are back:
      // the report counts them as failures all the same.
      EXPECT_GE(v.failed, failed_at_halt);
      EXPECT_EQ(v.updated, 0u);  // every rev-c device is back on the previous version
    } else {
      EXPECT_EQ(v.updated, v.devices) << v.hardware_revision;
    }
  }

  s.rollout.watch = Duration(0);
  auto unwatched = run_simulation(s, SimOptions{});
  ASSERT_TRUE(unwatched.ok());
  // Without a watch it is over before the defect shows, and never learns of it.
  EXPECT_TRUE(unwatched->halted_strata.empty());
  EXPECT_EQ(unwatched->rollout_state, "completed");
  EXPECT_EQ(unwatched->outcome.unhealthy, 0u);
}

// Rollback on the twin: devices that keep their previous image switch back with no
// download; the others need the previous version uploaded, and without it the halted group
// says how many it could not send back. The report carries the failed devices' histories.
TEST(Sim, DevicesThatKeepTheirImageSwitchBackAndTheRestNeedTheArtifact) {
  Scenario s = late_defect_demo();
  s.keeps_previous = 0.5;
  std::erase_if(s.artifacts, [](const Artifact& a) { return a.version == "4.2.0"; });
  auto r = run_simulation(s, small(3000));
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  ASSERT_EQ(r->outcome.halted.size(), 1u);
  const auto& h = r->outcome.halted[0];
  EXPECT_EQ(h.group, "hardware_revision=rev-c");
  uint32_t rev_c = 0;
  for (const auto& v : r->revisions)
    if (v.hardware_revision == "rev-c") rev_c = v.devices;
  EXPECT_EQ(r->reverts_downloaded, 0u) << "4.2.0 is not uploaded";
  EXPECT_GT(r->reverts_switched_back, rev_c / 3);
  EXPECT_GT(h.not_reverted, rev_c / 3) << "those that keep nothing stay on 4.2.1";
  EXPECT_EQ(r->reverts_switched_back + h.not_reverted, rev_c);
  ASSERT_FALSE(r->failed_sample.empty());
  const auto& steps = r->failed_sample[0].history;
  ASSERT_GE(steps.size(), 5u);
  EXPECT_EQ(steps.front().event, "offer");
  bool said = false;
  for (const auto& st : steps) said = said || st.message.find("fails_after") != std::string::npos;
  EXPECT_TRUE(said) << "the device's own words are in its history";

  // With the artifact back and nothing kept, every one of them downloads it.
  s = late_defect_demo();
  s.keeps_previous = 0;
  auto all = run_simulation(s, small(3000));
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->reverts_switched_back, 0u);
  EXPECT_EQ(all->reverts_downloaded, rev_c);
  EXPECT_EQ(all->outcome.halted[0].not_reverted, 0u);
}

// Devices lost whatever they run (3% within 12 h of the start): the engine stops waiting for
// them a check-in contract (24 h) after it last heard them, the rollout still ends, and the
// outcome counts them as silent — not as failures, so nothing healthy is halted.
TEST(Sim, LostDevicesLeaveTheCountsAndTheRolloutStillEnds) {
  Scenario s = demo();
  s.lost = {0.03, hours(12)};
  auto r = run_simulation(s, small(3000));
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(r->rollout_state, "completed_partial");
  ASSERT_EQ(r->halted_strata.size(), 1u);  // the demo's broken rev-c, nothing else
  EXPECT_EQ(r->halted_strata[0].hardware_revision, "rev-c");
  EXPECT_GT(r->devices_dark, 50u);
  const RolloutOutcome& o = r->outcome;
  EXPECT_GT(o.silent, 0u);
  EXPECT_LE(o.silent, r->devices_dark);
  EXPECT_EQ(o.went_silent, 0u);  // no watch: silence after a commit means nothing
  EXPECT_EQ(o.pending + o.in_flight, 0u);
  const uint32_t buckets = o.updated + o.install_failed + o.fell_back + o.unhealthy +
                           o.unhealthy_reverted + o.reverted + o.reverting + o.revert_failed +
                           o.skipped + o.never_offered + o.pending + o.in_flight + o.silent +
                           o.went_silent;
  EXPECT_EQ(buckets, o.targets);
  uint32_t why = 0;
  for (const auto& w : o.never_offered_why) why += w.devices;
  EXPECT_EQ(why, o.never_offered);
}

// A fleet the machine cannot hold is refused before anything runs, with the estimate.
TEST(Sim, AFleetTooLargeForTheMachineIsRefusedWithTheEstimate) {
  const Scenario s = demo();
  SimOptions o = small(10'000'000);
  o.memory_available = 4ull << 30;
  auto r = run_simulation(s, o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kFailedPrecondition);
  EXPECT_NE(r.error().message.find("10000000 devices needs about 20.6 GiB"), std::string::npos)
      << r.error().message;
  EXPECT_NE(r.error().message.find("4.0 GiB available"), std::string::npos);
  // The estimate grows with the fleet and covers what was measured at a million.
  EXPECT_GT(estimate_memory_bytes(1'000'000), 1'772'884ull * 1024);
  EXPECT_LT(estimate_memory_bytes(1'000'000), 3ull << 30);
  o.devices = 1000;
  EXPECT_TRUE(run_simulation(s, o).ok());
}

// Every scenario the README and the docs run loads; the health-gates example does what its
// comment says: each revision halted during the canary on the metric its build made worse.
TEST(Scenario, TheShippedScenariosLoadAndTheHealthGatesExampleHaltsEachOnItsMetric) {
  size_t files = 0;
  for (const auto& e :
       std::filesystem::directory_iterator(std::string(DROVER_SOURCE_DIR) + "/scenarios")) {
    auto s = load_scenario(e.path().string());
    EXPECT_TRUE(s.ok()) << e.path() << ": " << (s.ok() ? "" : s.error().to_string());
    ++files;
  }
  EXPECT_GE(files, 4u);
  auto s = load_scenario(std::string(DROVER_SOURCE_DIR) + "/scenarios/health-gates.json");
  ASSERT_TRUE(s.ok()) << s.error().to_string();
  auto r = run_simulation(*s, SimOptions{});
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  ASSERT_EQ(r->halted_strata.size(), 3u);
  std::map<std::string, std::string> metric_of;
  for (const auto& h : r->halted_strata) {
    EXPECT_TRUE(r->stages.size() < 2 || h.halted_at_s < r->stages[1].started_at_s) << h.group;
    metric_of[h.group] = h.reason.substr(0, h.reason.find(' ', 8));
  }
  EXPECT_EQ(metric_of["hardware_revision=rev-a"], "health: reboots_total");
  EXPECT_EQ(metric_of["hardware_revision=rev-b"], "health: memory_available_bytes");
  EXPECT_EQ(metric_of["hardware_revision=rev-c"], "health: crashes_total");
}

TEST(Scenario, MistakesAreRefusedWithTheFieldNamed) {
  const std::string good = read(std::string(DROVER_SOURCE_DIR) + "/scenarios/demo.json");
  ASSERT_TRUE(parse_scenario(good).ok());
  auto bad = [&](const std::string& from, const std::string& to) {
    std::string text = good;
    const size_t at = text.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    text.replace(at, from.size(), to);
    auto r = parse_scenario(text);
    EXPECT_FALSE(r.ok()) << "accepted: " << to;
    return r.ok() ? std::string() : r.error().message;
  };
  EXPECT_NE(bad("\"devices\": 15000", "\"devises\": 15000").find("devises"), std::string::npos);
  EXPECT_NE(bad("\"America/Denver\"", "\"America/Atlantis\"").find("site_groups[2].time_zone"),
            std::string::npos);
  EXPECT_NE(bad("\"percent\": 10,", "\"percent\": 0.5,").find("stage"), std::string::npos);
  EXPECT_NE(bad("\"probability\": 0.9", "\"probability\": 1.5").find("defects[0].probability"),
            std::string::npos);
  EXPECT_NE(bad("\"version\": \"4.2.1\"}", "\"version\": \"4.3\"}").find("version"),
            std::string::npos);
  EXPECT_NE(bad("\"kind\": \"boot_fails\"", "\"kind\": \"explodes\"").find("defect kind"),
            std::string::npos);
  EXPECT_NE(bad("\"start\": \"22:00\"", "\"start\": \"25:00\"").find("maintenance_windows"),
            std::string::npos);
  EXPECT_NE(bad("\"artifacts\": [", "\"artifacts\": [5, ").find("artifacts[0]"), std::string::npos);
  EXPECT_NE(bad("{\"name\": \"firmware\", \"version\": \"4.2.0\"",
                "{\"name\": 42, \"version\": \"4.2.0\"")
                .find("artifacts[0].name"),
            std::string::npos);
  // A defect scoped to something the fleet does not have is a typo, not a defect.
  EXPECT_NE(bad("\"hardware_revision\": \"rev-c\", \"version\"",
                "\"hardware_revision\": \"rev-z\", \"version\"")
                .find("defects[0].hardware_revision"),
            std::string::npos);
  EXPECT_NE(bad("\"kind\": \"boot_fails\"", "\"kind\": \"boot_fails\", \"site_prefix\": \"sfo\"")
                .find("defects[0].site_prefix"),
            std::string::npos);
  EXPECT_NE(
      bad("\"kind\": \"boot_fails\"", "\"kind\": \"boot_fails\", \"time_zone\": \"Europe/Paris\"")
          .find("defects[0].time_zone"),
      std::string::npos);
  EXPECT_NE(bad("\"kind\": \"boot_fails\"", "\"kind\": \"boot_fails\", \"connectivity\": \"wifi\"")
                .find("defects[0].connectivity"),
            std::string::npos);
  EXPECT_NE(bad("\"kind\": \"boot_fails\"", "\"kind\": \"goes_silent\"").find("defects[0].after"),
            std::string::npos);
  // The health defects: each needs its size, and only its own.
  EXPECT_NE(bad("\"kind\": \"boot_fails\"", "\"kind\": \"reboots\"").find("defects[0].factor"),
            std::string::npos);
  EXPECT_NE(bad("\"kind\": \"boot_fails\"", "\"kind\": \"crashes\", \"factor\": 0")
                .find("defects[0].factor"),
            std::string::npos);
  EXPECT_NE(bad("\"kind\": \"boot_fails\"", "\"kind\": \"leaks_memory\", \"factor\": 2")
                .find("defects[0].factor"),
            std::string::npos);
  EXPECT_NE(bad("\"kind\": \"boot_fails\"", "\"kind\": \"leaks_memory\"")
                .find("defects[0].bytes_per_day"),
            std::string::npos);
  EXPECT_NE(bad("\"kind\": \"boot_fails\"", "\"kind\": \"boot_fails\", \"bytes_per_day\": 9")
                .find("defects[0].bytes_per_day"),
            std::string::npos);
  EXPECT_NE(bad("\"kind\": \"boot_fails\"", "\"kind\": \"leaks_memory\", \"bytes_per_day\": -1")
                .find("defects[0].bytes_per_day"),
            std::string::npos);
  for (const char* good_kind : {"reboots", "crashes", "glitches", "drains_battery"}) {
    std::string text = good;
    const std::string from = "\"kind\": \"boot_fails\"";
    text.replace(text.find(from), from.size(),
                 std::string("\"kind\": \"") + good_kind + "\", \"factor\": 3");
    EXPECT_TRUE(parse_scenario(text).ok()) << good_kind;
  }
  EXPECT_NE(bad("\"checkin_jitter\"", "\"lost\": {\"share\": 1.5}, \"checkin_jitter\"")
                .find("lost.share"),
            std::string::npos);
  EXPECT_NE(bad("\"checkin_jitter\"",
                "\"lost\": {\"share\": 0.1, \"within\": \"0s\"}, \"checkin_jitter\"")
                .find("lost.within"),
            std::string::npos);
  EXPECT_NE(bad("\"checkin_jitter\"", "\"lost\": {\"shares\": 0.1}, \"checkin_jitter\"")
                .find("lost.shares"),
            std::string::npos);
  EXPECT_NE(bad("\"settle_fraction\": 0.9",
                "\"settle_fraction\": 0.9, \"contract\": {\"max_silence\": \"1m\"}")
                .find("contract max_silence"),
            std::string::npos);
  EXPECT_FALSE(parse_scenario("{").ok());
  EXPECT_FALSE(parse_scenario("[]").ok());
  EXPECT_FALSE(parse_scenario("").ok());
}

}  // namespace
}  // namespace drover::sim
