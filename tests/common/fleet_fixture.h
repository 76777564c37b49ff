// A small fleet wired to the real engine and service, on a ManualClock and a memory store
// that outlives engine instances (so a "restart" is a new engine over the same store).
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "base/clock.h"
#include "base/units.h"
#include "fleet/device_service.h"
#include "rollout/engine.h"
#include "store/store.h"

namespace drover::testing {

inline Timestamp at(const char* utc) { return parse_utc_timestamp(utc).value(); }

inline Artifact firmware(const std::string& version, std::vector<std::string> revisions = {}) {
  Artifact a;
  a.name = "firmware";
  a.version = version;
  a.device_types = {"ctl"};
  a.hardware_revisions = std::move(revisions);
  a.size_bytes = 1000;
  a.sha256 = std::string(64, 'a');
  return a;
}

inline RolloutPlan simple_plan(std::vector<StageSpec> stages = {{"canary", 50, 0, minutes(10)},
                                                                {"all", 100, 0, Duration(0)}}) {
  RolloutPlan p;
  p.name = "patch";
  p.artifact_name = "firmware";
  p.artifact_version = "2.0.0";
  p.stratify_by = {StratumDimension::kHardwareRevision};
  p.stages = std::move(stages);
  p.gate.min_sample = 3;
  p.gate.max_failure_rate = 0.1;
  p.on_failure = FailurePolicy::kRollback;
  return p;
}

class Fleet {
 public:
  explicit Fleet(Timestamp start = at("2026-06-01T12:00:00Z"),
                 std::unique_ptr<Store> store = make_memory_store())
      : clock(start), store_(std::move(store)) {
    WriteBatch b;
    b.sites.push_back(Site{"open", "UTC", {}});
    b.artifacts.push_back(firmware("1.0.0"));
    b.artifacts.push_back(firmware("2.0.0"));
    EXPECT_TRUE(store_->apply(b).ok());
    restart();
  }

  Store& store() { return *store_; }
  EngineOptions engine_options;  // taken at the next restart()
  FleetOptions fleet_options;    // likewise

  // A new engine and service over the same store, as after a process restart.
  void restart() {
    service.reset();
    engine.reset();
    engine = std::make_unique<RolloutEngine>(*store_, clock, engine_options);
    auto st = engine->load();
    EXPECT_TRUE(st.ok()) << st.error().to_string();
    service = std::make_unique<DeviceService>(*store_, *engine, fleet_options);
    st = service->load();
    EXPECT_TRUE(st.ok()) << st.error().to_string();
  }

  void add_site(Site s) {
    WriteBatch b;
    b.sites.push_back(std::move(s));
    ASSERT_TRUE(store_->apply(b).ok());
    restart();
  }

  void add_devices(int n, const std::string& rev, const std::string& site = "open",
                   const std::string& type = "ctl", const std::string& version = "1.0.0") {
    std::vector<Device> ds;
    for (int i = 0; i < n; ++i) {
      Device d;
      d.id = rev + "-" + site + "-" + std::to_string(next_++);
      d.device_type = type;
      d.hardware_revision = rev;
      d.site = site;
      d.connectivity = "ethernet";
      d.installed = {{"bootloader", "2.0.0"}, {"firmware", version}};
      ds.push_back(d);
      ids.push_back(d.id);
    }
    ASSERT_TRUE(service->provision(std::move(ds)).ok());
  }

  std::string start(RolloutPlan plan) {
    auto r = engine->create(std::move(plan));
    EXPECT_TRUE(r.ok()) << r.error().to_string();
    auto st = engine->start(r->id);
    EXPECT_TRUE(st.ok()) << st.error().to_string();
    return r->id;
  }

  std::vector<InstalledComponent> installed(const std::string& id) {
    return service->device(id)->installed;
  }

  // Check-in as an idle device running what the registry says it runs.
  std::optional<UpdateOffer> check_in(const std::string& id) {
    auto inv = installed(id);
    auto r = service->check_in({id, inv, UpdateState::kIdle});
    EXPECT_TRUE(r.ok()) << r.error().to_string();
    return r.ok() ? r->offer : std::nullopt;
  }

  // Check-in of a device that holds the image of `rollout` until its window.
  HoldAnswer hold(const std::string& id, const std::string& rollout) {
    auto inv = installed(id);
    auto r = service->check_in({id, inv, UpdateState::kReady, rollout});
    EXPECT_TRUE(r.ok() && r->hold) << (r.ok() ? "no hold answer" : r.error().to_string());
    return r.ok() && r->hold ? *r->hold : HoldAnswer{};
  }

  Result<DeploymentState> report(const std::string& id, const UpdateOffer& o, protocol::Report e) {
    return service->report_status({id, o.rollout_id, o.version, e, {}});
  }

  // The whole happy path for one device; the device then runs the offered version.
  void install(const std::string& id, const UpdateOffer& o,
               protocol::Report outcome = protocol::Report::kSucceeded) {
    for (auto e : {protocol::Report::kDownloading, protocol::Report::kInstalling,
                   protocol::Report::kRebooting, outcome}) {
      auto r = report(id, o, e);
      ASSERT_TRUE(r.ok()) << r.error().to_string();
    }
    if (outcome == protocol::Report::kSucceeded) {
      auto inv = installed(id);
      for (auto& c : inv) {
        if (c.component == o.component) c.version = o.version;
      }
      ASSERT_TRUE(service->check_in({id, inv, UpdateState::kIdle}).ok());
    }
  }

  DeploymentState state_of(const std::string& rollout, const std::string& id) {
    auto d = store_->get_deployment(rollout, id);
    EXPECT_TRUE(d.ok() && d->has_value());
    return (*d)->state;
  }

  ManualClock clock;
  std::vector<std::string> ids;
  std::unique_ptr<RolloutEngine> engine;
  std::unique_ptr<DeviceService> service;

 private:
  std::unique_ptr<Store> store_;
  int next_ = 1;
};

}  // namespace drover::testing
