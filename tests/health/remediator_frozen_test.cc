// The default rule on a frozen value (condition frozen; health::default_rules): a sensor whose
// profile watches it with `frozen_after`, stuck while its device reports, on a fleet wired as
// in drover serve — device health read by HealthView from the telemetry store.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <optional>
#include <string>
#include <vector>

#include "health/remediator.h"
#include "remediator_fixture.h"

namespace drover::health {
namespace {

class FrozenRule : public RemediatorTest {
 protected:
  // The type's profile watches temp_c (frozen after an hour); the server restarted on it with
  // the default rules, its rules reading health as drover serve's do.
  FrozenRule() {
    MetricCheck temp;
    temp.metric = "temp_c";
    temp.frozen_after = hours(1);
    WriteBatch b;
    b.profiles = {DeviceProfile{"ctl", {minutes(1), seconds(30), Duration(0)}, {}, {temp}, {}}};
    EXPECT_TRUE(f.store().apply(b).ok());
    restart_server(Duration(0), RemediatorOptions{default_rules("sensord"), {}});
    view = std::make_unique<HealthView>(*telemetry, remediator.get(), f.clock);
    remediator->set_health_source(view.get());
  }

  // A probe's reading: a slow swing of its own; `stuck` holds it where it is.
  void send_temp(const std::string& device, bool stuck) {
    const int64_t now = f.clock.now().time_since_epoch().count();
    if (!stuck) last_[device] = 21 + std::sin(static_cast<double>(now) / 6e5) + 0.01 * (now % 7);
    protocol::TelemetryBatch b;
    b.stream = 9;
    b.sequence = ++sequence_[device + "/temp"];
    b.series = {{"temp_c", {}, {{now, last_.try_emplace(device, 21.5).first->second}}}};
    ingest(device, b);
  }

  // `minutes` of every device reporting and checking in, the rules ticking; `stuck` says
  // whether the probe's reading holds at the minute. The reboots each device's agent ran
  // (once each), and when.
  void run(int minutes_, const std::function<bool(const std::string&)>& stuck) {
    for (int i = 0; i < minutes_ && !HasFatalFailure(); ++i) {
      for (const std::string& id : f.ids) {
        send_temp(id, stuck(id));
        for (const Command& c : check_in(id)) {
          if (std::any_of(ran.begin(), ran.end(),
                          [&](const auto& r) { return r.first.id == c.id; }))
            continue;
          ran.emplace_back(c, f.clock.now());
          ASSERT_TRUE(
              commands->record_result({id, c.id, CommandOutcome::kSucceeded, 0, "ok"}).ok());
        }
      }
      ASSERT_TRUE(remediator->tick().ok());
      f.clock.advance(minutes(1));
    }
  }

  std::optional<Alert> alert_of(const std::string& device) {
    auto all = remediator->list({});
    EXPECT_TRUE(all.ok());
    for (const Alert& a : *all) {
      if (a.device_id == device) return a;
    }
    return std::nullopt;
  }

  std::unique_ptr<HealthView> view;
  std::vector<std::pair<Command, Timestamp>> ran;
  std::map<std::string, double> last_;
};

// A probe stuck from the start: frozen once its reading has held an hour, the rule's half hour
// later it is rebooted (the only command sent to anyone); the reboot frees the sensor, the
// next read of health sees it move and the alert resolves, saying after which step.
TEST_F(FrozenRule, AStuckSensorIsRebootedAndTheAlertResolvesOnceItsValueMovesAgain) {
  const std::string probe = f.ids[0];
  const Timestamp start = f.clock.now();
  bool rebooted = false;
  run(150, [&](const std::string& id) {
    rebooted = rebooted || !ran.empty();
    return id == probe && !rebooted;
  });
  ASSERT_EQ(ran.size(), 1u) << "one reboot, of the stuck probe alone";
  EXPECT_EQ(ran[0].first.device_id, probe);
  EXPECT_EQ(ran[0].first.action, CommandAction::kReboot);
  // Frozen at 60 minutes (seen within a health read, 5 minutes), held 30 more.
  EXPECT_GE(ran[0].second, start + minutes(90));
  EXPECT_LE(ran[0].second, start + minutes(97));
  const std::optional<Alert> a = alert_of(probe);
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->condition, "frozen");
  EXPECT_EQ(a->rule, "frozen");
  EXPECT_NE(a->summary.find("temp_c has stayed at 21.5"), std::string::npos) << a->summary;
  EXPECT_EQ(a->state, AlertState::kResolved);
  EXPECT_EQ(a->resolution, "cleared after reboot (step 1 of 1)");
  EXPECT_LE(a->resolved_at, ran[0].second + minutes(7));
  for (size_t i = 1; i < f.ids.size(); ++i) EXPECT_FALSE(alert_of(f.ids[i]).has_value());
}

// A sensor dead in place: the reboot does not move it; once the rule's verification has
// passed, the alert is a person's and nothing more is sent.
TEST_F(FrozenRule, ASensorTheRebootDoesNotFreeIsHandedToAPerson) {
  const std::string probe = f.ids[1];
  run(4 * 60, [&](const std::string& id) { return id == probe; });
  ASSERT_EQ(ran.size(), 1u);
  EXPECT_EQ(ran[0].first.action, CommandAction::kReboot);
  const std::optional<Alert> a = alert_of(probe);
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->state, AlertState::kOpen);
  EXPECT_TRUE(a->escalated) << a->summary;
}

}  // namespace
}  // namespace drover::health
