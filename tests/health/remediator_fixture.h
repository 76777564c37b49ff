// The Remediator's test fixture: a fleet wired as in drover serve (registry, telemetry,
// command queue, store) on a manual clock, and helpers to restart the server over the same
// store and to read device health.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "../common/fleet_fixture.h"
#include "../common/forwarding_store.h"
#include "health/health_view.h"
#include "health/remediator.h"

namespace drover::health {

using drover::testing::Fleet;
using protocol::CommandAction;
using protocol::CommandOutcome;

using protocol::CommandOutcome;

// The store as a group commit shows it to other threads: an alert read returns the version
// before its newest write while `lag` is on (that write still on its way to the disk).
class LaggingStore final : public drover::testing::ForwardingStore {
 public:
  LaggingStore() : ForwardingStore(make_memory_store()) {}
  Status apply(const WriteBatch& b) override {
    ++applies;
    for (const Alert& a : b.alerts) {
      auto before = ForwardingStore::get_alert(a.id);
      if (before.ok()) previous_[a.id] = *before;
    }
    return ForwardingStore::apply(b);
  }
  Result<std::optional<Alert>> get_alert(std::string_view id) override {
    if (auto it = previous_.find(std::string(id)); lag && it != previous_.end()) return it->second;
    return ForwardingStore::get_alert(id);
  }
  Result<std::vector<Alert>> list_alerts(const AlertQuery& q) override {
    auto all = ForwardingStore::list_alerts(q);
    if (!all.ok() || !lag) return all;
    for (Alert& a : *all) {
      if (auto it = previous_.find(a.id); it != previous_.end() && it->second) a = *it->second;
    }
    return all;
  }
  bool lag = false;
  int applies = 0;  // batches written

 private:
  std::map<std::string, std::optional<Alert>> previous_;
};

class RemediatorTest : public ::testing::Test {
 protected:
  RemediatorTest() {
    char tmpl[] = "/tmp/drover-remediator-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    f.add_devices(3, "rev-a");
    WriteBatch b;
    b.profiles = {DeviceProfile{"ctl", {minutes(1), seconds(30), Duration(0)}, {}, {}, {}}};
    EXPECT_TRUE(f.store().apply(b).ok());
    auto opened = telemetry::TimeSeriesStore::open(real_file_system(), dir_, f.clock);
    EXPECT_TRUE(opened.ok());
    tsdb = std::move(*opened);
    telemetry =
        std::make_unique<telemetry::TelemetryService>(*tsdb, *f.service, f.store(), f.clock);
    restart();
  }
  ~RemediatorTest() override {
    remediator.reset();
    telemetry.reset();
    tsdb.reset();
    std::filesystem::remove_all(dir_);
  }

  // A new queue and remediator over the same store, as after a server restart; with the
  // fixture's rules (no-data, offline) unless given others.
  void restart(std::optional<RemediatorOptions> options = std::nullopt) {
    remediator.reset();
    commands = std::make_unique<CommandQueue>(f.store(), f.clock);
    ASSERT_TRUE(commands->load().ok());
    f.service->attach_commands(commands.get());
    RemediationRule no_data;
    no_data.name = "no-data";
    no_data.condition = Condition::kNoData;
    no_data.after = minutes(10);
    no_data.verify = minutes(5);
    no_data.ladder = {{CommandAction::kRestartService, "sensord"}, {CommandAction::kReboot, ""}};
    RemediationRule offline;
    offline.name = "offline";
    offline.condition = Condition::kOffline;
    offline.after = hours(1);
    if (!options) options = RemediatorOptions{{no_data, offline}, {}};
    auto made = Remediator::create(f.store(), f.clock, *telemetry, *commands, *options);
    ASSERT_TRUE(made.ok()) << made.error().to_string();
    remediator = std::move(*made);
    remediator->set_listener([this](const Alert& a) { heard.push_back(a); });
  }

  // The whole server restarted after `down`: the registry (what devices reported at their
  // check-ins is gone with it), telemetry, the queue and the remediator, over the same stores.
  void restart_server(Duration down, std::optional<RemediatorOptions> options = std::nullopt) {
    remediator.reset();
    telemetry.reset();
    f.clock.advance(down);
    f.restart();
    telemetry =
        std::make_unique<telemetry::TelemetryService>(*tsdb, *f.service, f.store(), f.clock);
    restart(std::move(options));
  }

  // Ingests `b` as the device's and waits until it is durable.
  void ingest(const std::string& device, const protocol::TelemetryBatch& b) {
    auto r = telemetry->ingest(device, b);
    ASSERT_TRUE(r.ok()) << r.error().to_string();
    ASSERT_TRUE(tsdb->wait_durable(r->stored.lsn).ok());
  }

  // A reading of the device's /data disk (8 GB) at `share` free.
  void send_disk(const std::string& device, double share) {
    protocol::TelemetryBatch b;
    b.stream = 8;
    b.sequence = ++sequence_[device + "/disk"];
    const int64_t now = f.clock.now().time_since_epoch().count();
    const std::vector<std::pair<std::string, std::string>> mount = {{"mount", "/data"}};
    b.series = {{"disk_free_bytes", mount, {{now, share * 8e9}}},
                {"disk_total_bytes", mount, {{now, 8e9}}},
                {"cpu_percent", {}, {{now, 10}}}};
    ingest(device, b);
  }

  // A tick of `rules`, then a minute on; `first_open` becomes the time of the first tick
  // after which an alert is open.
  void tick_a_minute(Remediator& rules, Timestamp& first_open) {
    ASSERT_TRUE(rules.tick().ok());
    if (first_open == Timestamp{}) {
      auto open = rules.list({});
      ASSERT_TRUE(open.ok());
      if (!open->empty()) first_open = f.clock.now();
    }
    f.clock.advance(minutes(1));
  }

  void send_sample(const std::string& device) {
    protocol::TelemetryBatch b;
    b.stream = 7;
    b.sequence = ++sequence_[device];
    b.series = {{"cpu_percent", {}, {{f.clock.now().time_since_epoch().count(), 12.5}}}};
    ingest(device, b);
  }
  // A check-in; the commands it carries.
  std::vector<Command> check_in(const std::string& device) {
    auto r = f.service->check_in({device, f.installed(device), UpdateState::kIdle, "", false});
    EXPECT_TRUE(r.ok()) << r.error().to_string();
    return r.ok() ? r->commands : std::vector<Command>{};
  }

  LaggingStore* lagging_ = new LaggingStore;  // owned by the fleet
  Fleet f{drover::testing::at("2026-06-01T12:00:00Z"), std::unique_ptr<Store>(lagging_)};
  std::string dir_;
  std::unique_ptr<telemetry::TimeSeriesStore> tsdb;
  std::unique_ptr<telemetry::TelemetryService> telemetry;
  std::unique_ptr<CommandQueue> commands;
  std::unique_ptr<Remediator> remediator;
  std::vector<Alert> heard;
  std::map<std::string, uint64_t> sequence_;
};

// The update-stuck rule: a download under way for 2 hours is given up (clear_update).
inline RemediatorOptions update_stuck_rule() {
  RemediationRule rule;
  rule.name = "update-stuck";
  rule.condition = Condition::kUpdateStuck;
  rule.after = hours(2);
  rule.verify = minutes(10);
  rule.ladder = {{CommandAction::kClearUpdate, "download"}};
  return {{rule}, {}};
}

// Reads the device's health through a real HealthView, counting the reads, or fails them.
class CountingHealth final : public DeviceHealthSource {
 public:
  explicit CountingHealth(const DeviceHealthSource& real) : real_(real) {}
  Result<HealthFindings> critical_findings(const std::set<Condition>& watched) const override {
    ++reads;
    if (failing) return io_error("the series cannot be read");
    auto found = real_.critical_findings(watched);
    if (found.ok() && !unreadable.empty()) {
      std::erase_if(found->found,
                    [this](const HealthFinding& f) { return f.device == unreadable; });
      found->unreadable.push_back(unreadable);
    }
    return found;
  }
  mutable int reads = 0;
  bool failing = false;
  std::string unreadable;  // this device's health reads as unreadable

 private:
  const DeviceHealthSource& real_;
};

}  // namespace drover::health
