// Health gates in the engine (docs/gates.md, "Health gates"): pairs formed once each updated
// device's window after its commit has passed, with a partner of its stratum not yet
// updated; written with the deployment and kept across a restart; a regression halts the
// group with the metric, the effect and its interval in the reason.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <map>
#include <set>
#include <string>

#include "../common/fleet_fixture.h"
#include "base/random.h"
#include "rollout/health_gate.h"

namespace drover {
namespace {

using testing::Fleet;
using testing::simple_plan;
using S = DeploymentState;

HealthMetric battery() {
  return {"battery_level_percent", HealthMeasure::kSlope, HealthDirection::kLowerIsWorse};
}

// Each device drains at its own rate (1 to 3 percent a day), `factor` times as fast from its
// commit of the new version; every window's measure carries a little noise.
class Batteries final : public HealthSource {
 public:
  double factor = 1;
  std::map<std::string, Timestamp> committed;
  int calls = 0;

  Result<std::optional<double>> measure(std::string_view device, const HealthMetric& m,
                                        Timestamp from, Timestamp to) override {
    ++calls;
    if (m.metric != battery().metric || silent.count(std::string(device)) != 0)
      return std::optional<double>{};
    const uint64_t h = stable_hash(device);
    const double base = 1 + 2 * static_cast<double>(h % 1000) / 1000;
    auto it = committed.find(std::string(device));
    const bool after = it != committed.end() && from >= it->second &&
                       (only_on.empty() || device.starts_with(only_on));
    const double noise =
        0.05 *
        static_cast<double>(mix64(h ^ static_cast<uint64_t>(from.time_since_epoch().count())) %
                            100) /
        100;
    (void)to;
    return std::optional<double>(-(base * (after ? factor : 1) + noise));
  }
  std::set<std::string> silent;  // devices that send no data
  std::string only_on;           // when set: the factor applies to devices of this revision alone
};

RolloutPlan battery_plan() {
  RolloutPlan p = simple_plan({{"canary", 50, 0, hours(1)}, {"all", 100, 0, Duration(0)}});
  p.gate.health = {battery()};
  p.gate.health_window = hours(2);
  return p;
}

// The canary: every device offered is installed at once (the pacing lets them through one
// by one); returns the devices updated.
std::vector<std::string> run_canary(Fleet& f, Batteries& b) {
  std::vector<std::string> updated;
  for (int round = 0; round < 3; ++round) {
    for (const auto& id : f.ids) {
      auto o = f.check_in(id);
      if (!o) continue;
      f.install(id, *o);
      b.committed[id] = f.clock.now();
      updated.push_back(id);
    }
  }
  return updated;
}

Deployment deployment(Fleet& f, const std::string& rollout, const std::string& dev) {
  auto d = f.store().get_deployment(rollout, dev);
  EXPECT_TRUE(d.ok() && d->has_value());
  return d.ok() && d->has_value() ? **d : Deployment{};
}

TEST(EngineHealth, APlanWithHealthGatesNeedsAHealthSource) {
  Fleet f;
  f.add_devices(4, "rev-a");
  auto r = f.engine->create(battery_plan());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kFailedPrecondition);
  EXPECT_NE(r.error().message.find("health"), std::string::npos) << r.error().message;
}

TEST(EngineHealth, PairsAreFormedOnceTheWindowHasPassedAndKeptAcrossARestart) {
  Batteries b;
  Fleet f;
  f.engine_options.health = &b;
  f.restart();
  f.add_devices(40, "rev-a");
  b.silent.insert(f.ids[39]);  // sends no telemetry: never a partner
  const std::string id = f.start(battery_plan());
  const std::vector<std::string> updated = run_canary(f, b);
  ASSERT_EQ(updated.size(), 20u);

  // Before the window after the commit (2 h) and the hour for late telemetry: no pair.
  f.clock.advance(hours(2) + minutes(30));
  ASSERT_TRUE(f.engine->tick().ok());
  EXPECT_TRUE(deployment(f, id, updated[0]).health.empty());
  auto waiting = f.engine->progress(id);
  ASSERT_TRUE(waiting.ok());
  EXPECT_EQ(waiting->health_waiting, 20u);
  f.clock.advance(hours(1));
  ASSERT_TRUE(f.engine->tick().ok());
  // What an operator sees: the whole rollout's test (its only revision is the same group),
  // over the 19 pairs (the device without data has none), against ln 40 (5% split between
  // the failure test and this one).
  auto progress = f.engine->progress(id);
  ASSERT_TRUE(progress.ok());
  EXPECT_EQ(progress->health_waiting, 0u);
  ASSERT_EQ(progress->health.size(), 1u);
  const HealthGateStatus& gate = progress->health[0];
  EXPECT_EQ(gate.group, "all");
  EXPECT_EQ(gate.tally.informative + gate.tally.ties, 19);
  EXPECT_NEAR(gate.threshold, std::log(40.0), 1e-9);
  EXPECT_DOUBLE_EQ(gate.log_evidence,
                   health_log_evidence(gate.tally.worse, gate.tally.informative));
  EXPECT_LT(gate.log_evidence, gate.threshold);
  EXPECT_FALSE(gate.halted);

  std::set<std::string> partners;
  std::map<std::string, Deployment> formed;
  for (const auto& dev : updated) {
    const Deployment d = deployment(f, id, dev);
    ASSERT_EQ(d.health.size(), 1u) << dev;
    if (dev == f.ids[39]) {  // no data of its own: recorded without a pair
      EXPECT_TRUE(d.health_partner.empty());
      EXPECT_TRUE(std::isnan(d.health[0].updated));
      formed[dev] = d;
      continue;
    }
    ASSERT_FALSE(d.health_partner.empty()) << dev;
    EXPECT_TRUE(partners.insert(d.health_partner).second) << "a partner used twice";
    EXPECT_EQ(f.state_of(id, d.health_partner), S::kPending) << "the partner is not updated";
    EXPECT_NE(d.health_partner, f.ids[39]) << "a device without data is no partner";
    // The updated device's change is its rate over the window after minus before: its base
    // rate again (factor 1), within the noise.
    EXPECT_NEAR(d.health[0].updated, 0, 0.06);
    EXPECT_NEAR(d.health[0].control, 0, 0.06);
    formed[dev] = d;
  }
  auto steps = f.store().list_deployment_steps(id, updated[0]);
  ASSERT_TRUE(steps.ok());
  ASSERT_FALSE(steps->empty());
  EXPECT_EQ(steps->back().event, "health_pair");
  EXPECT_NE(steps->back().message.find("paired with " + formed[updated[0]].health_partner),
            std::string::npos)
      << steps->back().message;

  // A restart: nothing is paired again, and what was written stays as it was (the source
  // now answers differently, which would show in a second pairing).
  b.factor = 5;
  f.restart();
  const int calls = b.calls;
  f.clock.advance(hours(1));
  ASSERT_TRUE(f.engine->tick().ok());
  EXPECT_EQ(b.calls, calls);
  for (const auto& [dev, d] : formed) EXPECT_EQ(deployment(f, id, dev), d) << dev;
}

// The source is read without the engine's lock: the first not-yet-updated device read leaves
// the fleet from inside the read (a decommission takes the engine's lock: held by the
// reader, it would never return). That device was the partner the pass planned for the
// updated device being read; the pairing, under the lock again, finds it gone, and the
// updated device waits instead of being paired from data never read — for the next tick, a
// minute, not the next pass a quarter of an hour on (the stage's soak allows for one pass).
// The next tick pairs it with another.
TEST(EngineHealth, TheSourceIsReadWithoutTheLockAndAPairWhosePartnerLeftMeanwhileWaits) {
  struct Intruding final : HealthSource {
    Batteries inner;
    std::function<void(std::string_view)> on_read;
    Result<std::optional<double>> measure(std::string_view device, const HealthMetric& m,
                                          Timestamp from, Timestamp to) override {
      if (on_read) on_read(device);
      return inner.measure(device, m, from, to);
    }
  };
  Intruding source;
  Fleet f;
  f.engine_options.health = &source;
  f.restart();
  f.add_devices(40, "rev-a");
  const std::string id = f.start(battery_plan());
  // A minute apart: each pair's windows are its own, so no other device's reads serve it.
  std::vector<std::string> updated;
  for (int round = 0; round < 3; ++round) {
    for (const auto& dev : f.ids) {
      auto o = f.check_in(dev);
      if (!o) continue;
      f.install(dev, *o);
      source.inner.committed[dev] = f.clock.now();
      updated.push_back(dev);
      f.clock.advance(minutes(1));
    }
  }
  ASSERT_EQ(updated.size(), 20u);
  std::string current, owner, left;
  source.on_read = [&](std::string_view device) {
    if (source.inner.committed.count(std::string(device)) != 0) {
      current = device;
      return;
    }
    if (!left.empty()) return;
    left = device;
    owner = current;
    auto gone = f.service->decommission(left);
    EXPECT_TRUE(gone.ok()) << gone.error().to_string();
  };
  // The engine ticks on its clock: minute by minute until the first pass has read.
  const Timestamp deadline = f.clock.now() + hours(4);
  while (left.empty() && f.clock.now() < deadline) f.clock.advance(minutes(1));
  ASSERT_FALSE(left.empty());
  EXPECT_NE(f.state_of(id, left), S::kPending) << "it left the rollout";
  EXPECT_TRUE(deployment(f, id, owner).health.empty()) << "paired from a plan that no longer held";
  source.on_read = nullptr;
  f.clock.advance(f.engine_options.tick_interval);
  const Deployment d = deployment(f, id, owner);
  ASSERT_EQ(d.health.size(), 1u);
  EXPECT_FALSE(d.health_partner.empty());
  EXPECT_NE(d.health_partner, left);
  EXPECT_EQ(f.state_of(id, d.health_partner), S::kPending);
  // Every updated device is paired in the end, none with the device that left.
  f.clock.advance(hours(1));
  for (const auto& dev : updated) {
    const Deployment e = deployment(f, id, dev);
    EXPECT_EQ(e.health.size(), 1u) << dev;
    EXPECT_NE(e.health_partner, left) << dev;
  }
}

// A device the source cannot read (a damaged chunk, not "no data") waits for the next pass, a
// quarter of an hour on — not the next tick — whatever the number of metrics: the pairing
// does not ask for the metrics the read stopped before.
TEST(EngineHealth, ADeviceTheSourceCannotReadWaitsForTheNextPass) {
  struct Failing final : HealthSource {
    Batteries inner;
    std::string broken;
    int broken_reads = 0;
    Result<std::optional<double>> measure(std::string_view device, const HealthMetric& m,
                                          Timestamp from, Timestamp to) override {
      if (device == broken) {
        ++broken_reads;
        return io_error("a damaged chunk");
      }
      return inner.measure(device, m, from, to);
    }
  };
  Failing source;
  Fleet f;
  f.engine_options.health = &source;
  f.restart();
  f.add_devices(40, "rev-a");
  RolloutPlan plan = battery_plan();
  plan.gate.health.push_back(
      {"memory_available_bytes", HealthMeasure::kSlope, HealthDirection::kLowerIsWorse});
  const std::string id = f.start(plan);
  const std::vector<std::string> updated = run_canary(f, source.inner);
  ASSERT_EQ(updated.size(), 20u);
  source.broken = updated[0];
  const Timestamp deadline = f.clock.now() + hours(4);
  while (source.broken_reads == 0 && f.clock.now() < deadline) f.clock.advance(minutes(1));
  ASSERT_GT(source.broken_reads, 0);
  const int first = source.broken_reads;
  f.clock.advance(minutes(10));
  EXPECT_EQ(source.broken_reads, first) << "read again before the next pass";
  EXPECT_TRUE(deployment(f, id, updated[0]).health.empty());
  EXPECT_EQ(deployment(f, id, updated[1]).health.size(), 2u);
  f.clock.advance(minutes(6));
  EXPECT_GT(source.broken_reads, first) << "the next pass tries again";
}

TEST(EngineHealth, ABuildThatChangesNothingPassesAndTheSoakWaitsForThePairs) {
  Batteries b;
  Fleet f;
  f.engine_options.health = &b;
  f.restart();
  f.add_devices(40, "rev-a");
  const std::string id = f.start(battery_plan());
  run_canary(f, b);
  ASSERT_TRUE(f.engine->tick().ok());  // settles the canary
  const Timestamp settled = f.clock.now();
  // The plan's soak is 1 h; with a 2 h health window the stage waits 2 h + 1 h + 30 min.
  f.clock.advance_to(settled + hours(3) + minutes(29));
  ASSERT_TRUE(f.engine->tick().ok());
  EXPECT_EQ(f.engine->get(id)->stage, 0u);
  f.clock.advance_to(settled + hours(3) + minutes(30));
  ASSERT_TRUE(f.engine->tick().ok());
  const Rollout r = *f.engine->get(id);
  EXPECT_EQ(r.stage, 1u);
  EXPECT_TRUE(r.halted.empty());
}

TEST(EngineHealth, BatteriesDrainingTwiceAsFastHaltTheRolloutAndTheReasonSaysByHowMuch) {
  Batteries b;
  b.factor = 2;
  Fleet f;
  f.engine_options.health = &b;
  f.restart();
  f.add_devices(40, "rev-a");
  std::vector<EngineEvent> events;
  f.engine->set_listener([&](const EngineEvent& e) { events.push_back(e); });
  const std::string id = f.start(battery_plan());
  const std::vector<std::string> updated = run_canary(f, b);
  f.clock.advance(hours(3) + minutes(30));
  ASSERT_TRUE(f.engine->tick().ok());
  const Rollout r = *f.engine->get(id);
  ASSERT_EQ(r.halted.size(), 1u);
  EXPECT_EQ(r.state, RolloutState::kFailed);
  const std::string& why = r.halted[0].reason;
  EXPECT_EQ(why.rfind("health: battery_level_percent (slope over 2h windows, lower is worse)", 0),
            0u)
      << why;
  EXPECT_NE(why.find("the worse in 20 of 20 untied pairs"), std::string::npos) << why;
  // Each updated device's drain doubled: its change is about -base (1 to 3 a day), the
  // partner's about 0.
  double shift = 0, low = 0, high = 0;
  const size_t at = why.find("median change updated - not updated ");
  ASSERT_NE(at, std::string::npos) << why;
  ASSERT_EQ(std::sscanf(why.c_str() + at,
                        "median change updated - not updated %lf (95%% interval "
                        "%lf to %lf)",
                        &shift, &low, &high),
            3)
      << why;
  EXPECT_LT(shift, -1);
  EXPECT_GT(shift, -3);
  EXPECT_LE(low, shift);
  EXPECT_GE(high, shift);
  // The halt's policy sends the updated devices back.
  EXPECT_EQ(f.state_of(id, updated[0]), S::kRevertPending);
  bool told = false;
  for (const auto& e : events)
    told |=
        e.kind == EngineEvent::Kind::kStratumHalted && e.text.find("health:") != std::string::npos;
  EXPECT_TRUE(told);
}

// Two revisions, rev-b's batteries draining twice as fast on the new build: rev-b is halted
// on its own, and the status shows each group's pairs as its test weighed them — rev-b's row
// (halted) its own 20, all worse; the whole rollout's (not halted) rev-a's alone.
TEST(EngineHealth, AHaltedGroupsStatusShowsThePairsThatHaltedItAndItsParentLeavesThemOut) {
  Batteries b;
  b.factor = 2;
  b.only_on = "rev-b";
  Fleet f;
  f.engine_options.health = &b;
  f.restart();
  f.add_devices(40, "rev-a");
  f.add_devices(40, "rev-b");
  const std::string id = f.start(battery_plan());
  run_canary(f, b);
  f.clock.advance(hours(3) + minutes(30));
  ASSERT_TRUE(f.engine->tick().ok());
  const Rollout r = *f.engine->get(id);
  ASSERT_EQ(r.halted.size(), 1u);
  EXPECT_EQ(r.halted[0].key, "hardware_revision=rev-b");
  EXPECT_NE(r.halted[0].reason.find("the worse in 20 of 20 untied pairs"), std::string::npos)
      << r.halted[0].reason;
  auto progress = f.engine->progress(id);
  ASSERT_TRUE(progress.ok());
  std::map<std::string, HealthGateStatus> by_group;
  for (const HealthGateStatus& g : progress->health) by_group[g.group] = g;
  ASSERT_EQ(by_group.count("all"), 1u);
  ASSERT_EQ(by_group.count("hardware_revision=rev-b"), 1u);
  const HealthGateStatus& halted = by_group["hardware_revision=rev-b"];
  EXPECT_TRUE(halted.halted);
  EXPECT_EQ(halted.tally.informative + halted.tally.ties, 20);
  EXPECT_EQ(halted.tally.worse, 20);
  EXPECT_GE(halted.log_evidence, halted.threshold);
  const HealthGateStatus& all = by_group["all"];
  EXPECT_FALSE(all.halted);
  EXPECT_EQ(all.tally.informative + all.tally.ties, 20) << "rev-a's pairs alone";
  EXPECT_LT(all.log_evidence, all.threshold);
}

}  // namespace
}  // namespace drover
