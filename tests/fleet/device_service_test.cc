#include "fleet/device_service.h"

#include <gtest/gtest.h>

#include "../common/counting_store.h"
#include "../common/fleet_fixture.h"

namespace drover::testing {
namespace {

TEST(DeviceService, UnknownAndDecommissionedDevicesAreRefused) {
  Fleet f;
  f.add_devices(1, "rev-a");
  std::vector<InstalledComponent> inv{{"firmware", "1.0.0"}};
  EXPECT_EQ(f.service->check_in({"nobody", inv, UpdateState::kIdle}).error().code,
            ErrorCode::kNotFound);
  Device d = *f.service->device(f.ids[0]);
  d.decommissioned = true;
  ASSERT_TRUE(f.service->provision({d}).ok());
  EXPECT_EQ(f.service->check_in({f.ids[0], inv, UpdateState::kIdle}).error().code,
            ErrorCode::kFailedPrecondition);
  EXPECT_EQ(
      f.service
          ->report_status({"nobody", "rollout-0001", "1.0.0", protocol::Report::kSucceeded, {}})
          .error()
          .code,
      ErrorCode::kNotFound);
}

// What a rule on stuck updates reads: the devices whose check-ins since the start report a
// state, followed as they change it, after the registry closes ranks (an expired pending
// enrollment before them), without the decommissioned, and not from records loaded at a
// restart.
TEST(DeviceService, FindsTheDevicesInAnUpdateStateAsTheyReportIt) {
  Fleet f;
  Device pending;
  pending.id = "aaa-pending";
  pending.device_type = "ctl";
  pending.hardware_revision = "rev-a";
  pending.site = "open";
  pending.enrollment = Enrollment::kPending;
  pending.enrolled_at = f.clock.now();
  ASSERT_TRUE(f.service->provision({pending}).ok());
  f.add_devices(4, "rev-a");
  auto in = [&](UpdateState s) {
    std::vector<std::string> out;
    for (const DeviceService::Reported& r : f.service->in_update_state(s)) out.push_back(r.id);
    return out;
  };
  auto report = [&](size_t k, UpdateState s) {
    ASSERT_TRUE(f.service->check_in({f.ids[k], f.installed(f.ids[k]), s}).ok());
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(in(UpdateState::kDownloading), V{});
  report(0, UpdateState::kDownloading);
  report(1, UpdateState::kReady);
  report(2, UpdateState::kDownloading);
  report(3, UpdateState::kIdle);
  EXPECT_EQ(in(UpdateState::kDownloading), (V{f.ids[0], f.ids[2]}));
  EXPECT_EQ(in(UpdateState::kReady), V{f.ids[1]});
  EXPECT_EQ(in(UpdateState::kIdle), V{f.ids[3]});  // only those heard from since the start
  const auto at = f.service->in_update_state(UpdateState::kReady);
  EXPECT_EQ(at.front().at,
            Timestamp(std::chrono::floor<std::chrono::seconds>(f.clock.now().time_since_epoch())));
  report(0, UpdateState::kIdle);
  EXPECT_EQ(in(UpdateState::kDownloading), V{f.ids[2]});
  report(0, UpdateState::kDownloading);
  EXPECT_EQ(in(UpdateState::kDownloading), (V{f.ids[0], f.ids[2]}));
  // The pending enrollment expires: every entry after it moves.
  f.clock.advance(hours(1));
  auto gone = f.service->expire_pending(f.clock.now(), f.clock.now());
  ASSERT_TRUE(gone.ok()) << gone.error().to_string();
  ASSERT_EQ(*gone, V{"aaa-pending"});
  EXPECT_EQ(in(UpdateState::kDownloading), (V{f.ids[0], f.ids[2]}));
  EXPECT_EQ(in(UpdateState::kReady), V{f.ids[1]});
  report(2, UpdateState::kIdle);
  EXPECT_EQ(in(UpdateState::kDownloading), V{f.ids[0]});
  report(2, UpdateState::kDownloading);
  // Decommissioned: not in service.
  Device d = *f.service->device(f.ids[0]);
  d.decommissioned = true;
  ASSERT_TRUE(f.service->provision({d}).ok());
  EXPECT_EQ(in(UpdateState::kDownloading), V{f.ids[2]});
  // After a restart, only what is reported again.
  f.restart();
  EXPECT_EQ(in(UpdateState::kDownloading), V{});
  report(1, UpdateState::kDownloading);
  EXPECT_EQ(in(UpdateState::kDownloading), V{f.ids[1]});
}

TEST(DeviceService, ACheckInThatChangesNothingWritesNothing) {
  Counted c;
  Fleet& f = *c.fleet;
  f.add_devices(1, "rev-a");
  const int before = c.store->writes;
  auto inv = f.installed(f.ids[0]);
  for (int i = 0; i < 10; ++i)
    ASSERT_TRUE(f.service->check_in({f.ids[0], inv, UpdateState::kIdle}).ok());
  EXPECT_EQ(c.store->writes, before);
  // A new inventory is recorded once, and survives a restart.
  inv.push_back({"modem", "3.1.4"});
  ASSERT_TRUE(f.service->check_in({f.ids[0], inv, UpdateState::kIdle}).ok());
  ASSERT_TRUE(f.service->check_in({f.ids[0], inv, UpdateState::kIdle}).ok());
  EXPECT_EQ(c.store->writes, before + 1);
  f.restart();
  EXPECT_EQ(*f.service->device(f.ids[0])->installed_version("modem"), "3.1.4");
}

TEST(DeviceService, AMalformedInventoryIsRefusedAndNotRecorded) {
  Fleet f;
  f.add_devices(1, "rev-a");
  const Device before = *f.service->device(f.ids[0]);
  std::vector<InstalledComponent> bad_version{{"firmware", "1.0"}};
  EXPECT_EQ(f.service->check_in({f.ids[0], bad_version, UpdateState::kIdle}).error().code,
            ErrorCode::kInvalidArgument);
  std::vector<InstalledComponent> twice{{"firmware", "1.0.0"}, {"firmware", "2.0.0"}};
  EXPECT_EQ(f.service->check_in({f.ids[0], twice, UpdateState::kIdle}).error().code,
            ErrorCode::kInvalidArgument);
  std::vector<InstalledComponent> bad_name{{"../etc", "1.0.0"}};
  EXPECT_EQ(f.service->check_in({f.ids[0], bad_name, UpdateState::kIdle}).error().code,
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(*f.service->device(f.ids[0]), before);
  EXPECT_EQ(f.store().get_device(f.ids[0])->value(), before);
}

TEST(DeviceService, ProvisionValidatesEveryDeviceBeforeWritingAny) {
  Counted c;
  Fleet& f = *c.fleet;
  const int before = c.store->writes;
  Device good;
  good.id = "good";
  good.device_type = "ctl";
  good.hardware_revision = "rev-a";
  Device bad = good;
  bad.id = "bad id with spaces";
  EXPECT_EQ(f.service->provision({good, bad}).error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(c.store->writes, before);
  EXPECT_FALSE(f.service->device("good").has_value());
  EXPECT_EQ(f.service->device_count(), 0u);
}

TEST(DeviceService, AnswersWhenToComeBack) {
  Fleet f;
  f.add_devices(2, "rev-a");
  f.start(simple_plan({{"all", 100, 0, Duration(0)}}));
  auto inv = f.installed(f.ids[0]);
  auto busy = f.service->check_in({f.ids[0], inv, UpdateState::kIdle});
  ASSERT_TRUE(busy.ok() && busy->offer.has_value());
  EXPECT_EQ(busy->next_checkin, FleetOptions{}.busy_poll_interval);
  auto downloading = f.service->check_in({f.ids[0], inv, UpdateState::kDownloading});
  ASSERT_TRUE(downloading.ok());
  EXPECT_FALSE(downloading->offer.has_value());  // busy devices get no new offer
  EXPECT_EQ(downloading->next_checkin, FleetOptions{}.busy_poll_interval);
}

// When a device was last heard from and was told to come back: to the second, from the
// answer it was given; long waits (a window days away) to the minute, rounded up.
TEST(DeviceService, RemembersWhenADeviceCheckedInAndWhenItWasToldToReturn) {
  Fleet f;
  f.add_devices(2, "rev-a");
  const std::string& id = f.ids[0];
  ASSERT_TRUE(f.service->check_in_times(id).has_value());
  EXPECT_FALSE(f.service->check_in_times(id)->last.has_value());  // not since the start
  EXPECT_FALSE(f.service->check_in_times("nobody").has_value());
  f.clock.advance(seconds(90) + Duration(400));
  const Timestamp at = f.clock.now();
  auto idle = f.service->check_in({id, f.installed(id), UpdateState::kIdle});
  ASSERT_TRUE(idle.ok());
  CheckInTimes t = *f.service->check_in_times(id);
  const Timestamp second(std::chrono::floor<std::chrono::seconds>(at.time_since_epoch()));
  EXPECT_EQ(t.last, second);
  EXPECT_EQ(t.next, second + idle->next_checkin);
  EXPECT_EQ(idle->next_checkin, FleetOptions{}.poll_interval);
  // The other device is untouched; the listing carries the same times.
  EXPECT_FALSE(f.service->check_in_times(f.ids[1])->last.has_value());
  DeviceQuery q;
  const DevicePage page = f.service->list(q);
  ASSERT_EQ(page.check_ins.size(), page.devices.size());
  for (size_t i = 0; i < page.devices.size(); ++i) {
    EXPECT_EQ(page.check_ins[i].last.has_value(), page.devices[i].id == id);
  }
}

// The fleet summary counts every device in service once per dimension, the decommissioned
// apart, installed versions as reported, and check-ins by age and lateness.
TEST(DeviceService, TheSummaryCountsTheFleetByEveryDimension) {
  Fleet f;
  f.add_devices(3, "rev-a", "nyc", "ctl", "1.0.0");
  f.add_devices(2, "rev-b", "sfo", "ctl", "2.0.0");
  f.add_devices(1, "rev-b", "sfo", "meter", "2.0.0");
  Device gone = *f.service->device(f.ids[5]);
  gone.decommissioned = true;
  ASSERT_TRUE(f.service->provision({gone}).ok());
  Device waiting = *f.service->device(f.ids[4]);
  waiting.enrollment = Enrollment::kPending;
  ASSERT_TRUE(f.service->provision({waiting}).ok());

  // f.ids[0] checks in now and again on time; f.ids[1] checks in and then misses its next
  // check-in; f.ids[3] checks in two days before "now". The rest never.
  auto check_in = [&](const std::string& id) {
    ASSERT_TRUE(f.service->check_in({id, f.installed(id), UpdateState::kIdle}).ok());
  };
  check_in(f.ids[3]);
  f.clock.advance(days(2));
  check_in(f.ids[1]);
  f.clock.advance(FleetOptions{}.poll_interval + DeviceService::kOverdueGrace + seconds(1));
  check_in(f.ids[0]);

  const DeviceService::Summary s = f.service->summary(f.clock.now());
  EXPECT_EQ(s.in_service, 5u);
  EXPECT_EQ(s.decommissioned, 1u);
  EXPECT_EQ(s.by_state[static_cast<size_t>(UpdateState::kIdle)], 5u);
  EXPECT_EQ(s.by_enrollment[0], 4u);  // accepted
  EXPECT_EQ(s.by_enrollment[1], 1u);  // pending
  EXPECT_EQ(s.by_enrollment[2], 0u);
  EXPECT_EQ(s.by_device_type, (std::map<std::string, uint64_t>{{"ctl", 5}}));
  EXPECT_EQ(s.by_hardware_revision, (std::map<std::string, uint64_t>{{"rev-a", 3}, {"rev-b", 2}}));
  EXPECT_EQ(s.by_site, (std::map<std::string, uint64_t>{{"nyc", 3}, {"sfo", 2}}));
  EXPECT_EQ(s.by_connectivity, (std::map<std::string, uint64_t>{{"ethernet", 5}}));
  EXPECT_EQ(s.by_installed.at("firmware"),
            (std::map<std::string, uint64_t>{{"1.0.0", 3}, {"2.0.0", 2}}));
  EXPECT_EQ(s.by_installed.at("bootloader"), (std::map<std::string, uint64_t>{{"2.0.0", 5}}));
  EXPECT_EQ(s.seen_last_hour, 2u);  // ids 0 and 1
  EXPECT_EQ(s.seen_last_day, 0u);
  EXPECT_EQ(s.seen_before, 1u);  // id 3
  EXPECT_EQ(s.never_seen, 2u);   // ids 2 and 4
  EXPECT_EQ(s.overdue, 2u);      // id 1 missed its check-in; id 3 long ago
}

TEST(DeviceService, AWaitIsKeptToTheSecondThenToTheMinuteRoundedUp) {
  auto round_trip = [](Duration d) {
    return DeviceService::decode_wait(DeviceService::encode_wait(d));
  };
  EXPECT_EQ(round_trip(seconds(1)), seconds(1));
  EXPECT_EQ(round_trip(seconds(45) + Duration(900)), seconds(45));  // whole seconds
  EXPECT_EQ(round_trip(seconds(0x7fff)), seconds(0x7fff));          // 9.1 h, the last second
  EXPECT_EQ(round_trip(seconds(0x8000)), minutes(547));             // 32768 s = 546.13 min
  EXPECT_EQ(round_trip(hours(10)), hours(10));
  EXPECT_EQ(round_trip(hours(10) + seconds(1)), hours(10) + minutes(1));
  EXPECT_EQ(round_trip(days(7)), days(7));
  EXPECT_EQ(round_trip(days(30)), minutes(0x7fff));         // clamped: 22.7 days
  EXPECT_EQ(DeviceService::encode_wait(Duration(500)), 0);  // under a second: none
  EXPECT_EQ(DeviceService::encode_wait(Duration(-5)), 0);
}

TEST(DeviceService, TheIntervalsAnsweredAreTheOnesConfigured) {
  Fleet f;
  f.fleet_options.poll_interval = minutes(7);
  f.fleet_options.busy_poll_interval = seconds(45);
  f.restart();
  f.add_devices(1, "rev-a");
  f.start(simple_plan({{"all", 100, 0, Duration(0)}}));
  const std::string& id = f.ids[0];
  auto offered = f.service->check_in({id, f.installed(id), UpdateState::kIdle});
  ASSERT_TRUE(offered.ok() && offered->offer.has_value());
  EXPECT_EQ(offered->next_checkin, seconds(45));
  EXPECT_EQ(*f.service->check_in_times(id)->next - *f.service->check_in_times(id)->last,
            seconds(45));
}

// ---------------------------------------------------------------- shared inventories

// `id`'s inventory as the registry holds it, with `component` at `version`.
std::vector<InstalledComponent> with_version(Fleet& f, const std::string& id,
                                             const std::string& component,
                                             const std::string& version) {
  Device d = *f.service->device(id);
  d.set_installed(component, version);
  return d.installed;
}

TEST(DeviceService, DevicesRunningTheSameVersionsShareOneInventory) {
  Fleet f;
  f.add_devices(10, "rev-a");
  EXPECT_EQ(f.service->distinct_inventories(), 1u);

  // One device moves on: its record changes, the others keep theirs.
  ASSERT_TRUE(f.service->check_in({f.ids[0], with_version(f, f.ids[0], "firmware", "1.0.1")}).ok());
  EXPECT_EQ(f.service->distinct_inventories(), 2u);
  EXPECT_EQ(*f.service->device(f.ids[0])->installed_version("firmware"), "1.0.1");
  for (size_t i = 1; i < f.ids.size(); ++i) {
    EXPECT_EQ(*f.service->device(f.ids[i])->installed_version("firmware"), "1.0.0") << i;
  }

  // The old inventory stays while any device runs it, and goes with the last one.
  for (size_t i = 1; i < f.ids.size(); ++i) {
    ASSERT_TRUE(
        f.service->check_in({f.ids[i], with_version(f, f.ids[i], "firmware", "1.0.1")}).ok());
    EXPECT_EQ(f.service->distinct_inventories(), i + 1 < f.ids.size() ? 2u : 1u) << i;
  }
  for (const auto& id : f.ids) {
    EXPECT_EQ(*f.service->device(id)->installed_version("firmware"), "1.0.1") << id;
  }
  EXPECT_EQ(f.store().get_device(f.ids[9])->value().installed, f.installed(f.ids[9]));
}

TEST(DeviceService, ProvisioningSharesAndReleasesInventoriesToo) {
  Fleet f;
  f.add_devices(3, "rev-a");
  f.add_devices(1, "rev-a", "open", "ctl", "1.5.0");
  EXPECT_EQ(f.service->distinct_inventories(), 2u);
  // Re-provisioning the odd one out with the common inventory drops its old one.
  Device d = *f.service->device(f.ids[3]);
  d.set_installed("firmware", "1.0.0");
  ASSERT_TRUE(f.service->provision({d}).ok());
  EXPECT_EQ(f.service->distinct_inventories(), 1u);
  EXPECT_EQ(f.service->device_count(), 4u);
  // And it checks in as running what it was provisioned with: nothing new to record.
  EXPECT_TRUE(f.service->check_in({f.ids[3], f.installed(f.ids[3])}).ok());
  EXPECT_EQ(f.service->distinct_inventories(), 1u);
  // The registry rebuilt from the store shares the same way.
  f.restart();
  EXPECT_EQ(f.service->distinct_inventories(), 1u);
  EXPECT_EQ(f.service->device_count(), 4u);
}

TEST(DeviceService, ADeviceReportingEverNewVersionsKeepsOneInventoryOfItsOwn) {
  Counted c;
  Fleet& f = *c.fleet;
  f.add_devices(3, "rev-a");
  const std::string id = f.ids[0];
  for (int i = 1; i <= 50; ++i) {
    const std::string version = "1.0." + std::to_string(i);
    const int writes = c.store->writes;
    const auto inv = with_version(f, id, "firmware", version);
    ASSERT_TRUE(f.service->check_in({id, inv}).ok()) << version;
    // Each new version is recorded once, even when it lands in a reused slot of the table.
    ASSERT_TRUE(f.service->check_in({id, inv}).ok()) << version;
    EXPECT_EQ(c.store->writes, writes + 1) << version;
    EXPECT_EQ(f.service->distinct_inventories(), 2u) << version;
    EXPECT_EQ(*f.service->device(id)->installed_version("firmware"), version);
    EXPECT_EQ(*f.store().get_device(id)->value().installed_version("firmware"), version);
  }
  EXPECT_EQ(*f.service->device(f.ids[1])->installed_version("firmware"), "1.0.0");
  EXPECT_EQ(*f.service->device(f.ids[2])->installed_version("firmware"), "1.0.0");

  // Two devices leapfrogging each other: never more inventories than devices.
  for (int i = 1; i <= 20; ++i) {
    for (size_t k = 0; k < 2; ++k) {
      const auto inv =
          with_version(f, f.ids[k], "firmware", "3." + std::to_string(i) + "." + std::to_string(k));
      ASSERT_TRUE(f.service->check_in({f.ids[k], inv}).ok());
      EXPECT_LE(f.service->distinct_inventories(), 3u);
    }
  }
  EXPECT_EQ(f.service->distinct_inventories(), 3u);

  // Back to the common inventory: the fleet runs one again.
  for (size_t k = 0; k < 2; ++k) {
    ASSERT_TRUE(f.service->check_in({f.ids[k], f.installed(f.ids[2])}).ok());
  }
  EXPECT_EQ(f.service->distinct_inventories(), 1u);
  for (size_t k = 0; k < 3; ++k) {
    EXPECT_EQ(*f.service->device(f.ids[k])->installed_version("firmware"), "1.0.0") << k;
  }
}

TEST(DeviceService, AnInventoryReportedInAnotherOrderIsTheSameInventory) {
  Counted c;
  Fleet& f = *c.fleet;
  f.add_devices(2, "rev-a");
  const Device before = *f.service->device(f.ids[0]);
  ASSERT_EQ(before.installed.size(), 2u);
  const int writes = c.store->writes;
  std::vector<InstalledComponent> reversed(before.installed.rbegin(), before.installed.rend());
  ASSERT_NE(reversed, before.installed);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(f.service->check_in({f.ids[0], reversed}).ok());
  EXPECT_EQ(c.store->writes, writes);
  EXPECT_EQ(*f.service->device(f.ids[0]), before);
  EXPECT_EQ(f.service->distinct_inventories(), 1u);

  // A real change reported out of order is recorded sorted, and shared with a device that
  // reports the same versions in order.
  std::vector<InstalledComponent> changed{
      {"modem", "3.1.4"}, {"firmware", "1.0.0"}, {"bootloader", "2.0.0"}};
  ASSERT_TRUE(f.service->check_in({f.ids[0], changed}).ok());
  const std::vector<InstalledComponent> sorted{
      {"bootloader", "2.0.0"}, {"firmware", "1.0.0"}, {"modem", "3.1.4"}};
  EXPECT_EQ(f.service->device(f.ids[0])->installed, sorted);
  EXPECT_EQ(f.service->distinct_inventories(), 2u);
  ASSERT_TRUE(f.service->check_in({f.ids[1], sorted}).ok());
  EXPECT_EQ(f.service->distinct_inventories(), 1u);
  EXPECT_EQ(c.store->writes, writes + 2);
}

TEST(DeviceService, AMalformedInventoryLeavesRecordAndSharedInventoriesAlone) {
  Counted c;
  Fleet& f = *c.fleet;
  f.add_devices(3, "rev-a");
  const Device before = *f.service->device(f.ids[0]);
  const int writes = c.store->writes;
  const std::vector<std::vector<InstalledComponent>> bad{
      {{"bootloader", "2.0.0"}, {"firmware", "1.0"}},                        // bad version
      {{"firmware", "1.0.0"}, {"firmware", "1.0.1"}},                        // reported twice
      {{"bootloader", "2.0.0"}, {"firmware", "1.0.0"}, {"../etc", "1.0.0"}}  // bad name
  };
  for (const auto& inv : bad) {
    for (UpdateState st : {UpdateState::kIdle, UpdateState::kDownloading}) {
      auto r = f.service->check_in({f.ids[0], inv, st});
      ASSERT_FALSE(r.ok());
      EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
      EXPECT_EQ(*f.service->device(f.ids[0]), before);  // nor the state is taken
      EXPECT_EQ(f.service->distinct_inventories(), 1u);
    }
  }
  EXPECT_EQ(c.store->writes, writes);
  EXPECT_EQ(f.store().get_device(f.ids[0])->value(), before);
  // A good check-in afterwards is recorded as usual.
  ASSERT_TRUE(f.service->check_in({f.ids[0], with_version(f, f.ids[0], "firmware", "1.0.1")}).ok());
  EXPECT_EQ(f.service->distinct_inventories(), 2u);
  EXPECT_EQ(c.store->writes, writes + 1);
}

// ---------------------------------------------------------------- the engine cursor

Artifact component(const std::string& name, const std::string& version,
                   std::vector<std::string> revisions = {}) {
  Artifact a = firmware(version, std::move(revisions));
  a.name = name;
  return a;
}

RolloutPlan plan_for(const std::string& name, const std::string& version) {
  RolloutPlan p = simple_plan({{"all", 100, 0, Duration(0)}});
  p.artifact_name = name;
  p.artifact_version = version;
  return p;
}

void add_artifacts(Fleet& f, std::vector<Artifact> artifacts) {
  WriteBatch b;
  b.artifacts = std::move(artifacts);
  ASSERT_TRUE(f.store().apply(b).ok());
}

// Reports the whole install of `o` and checks in running it; returns that check-in's offer.
std::optional<UpdateOffer> complete(Fleet& f, const std::string& id, const UpdateOffer& o) {
  for (auto e : {protocol::Report::kDownloading, protocol::Report::kInstalling,
                 protocol::Report::kRebooting, protocol::Report::kSucceeded}) {
    auto r = f.report(id, o, e);
    EXPECT_TRUE(r.ok()) << r.error().to_string();
  }
  auto r = f.service->check_in({id, with_version(f, id, o.component, o.version)});
  EXPECT_TRUE(r.ok()) << r.error().to_string();
  return r.ok() ? r->offer : std::nullopt;
}

TEST(DeviceService, ADeviceThatCheckedInBeforeAnyRolloutGetsTheOfferOfALaterOne) {
  Fleet f;
  f.add_devices(2, "rev-a");
  for (int i = 0; i < 3; ++i) EXPECT_FALSE(f.check_in(f.ids[0]).has_value());
  const std::string id = f.start(plan_for("firmware", "2.0.0"));
  auto o = f.check_in(f.ids[0]);
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(o->rollout_id, id);
  EXPECT_EQ(o->version, "2.0.0");
  EXPECT_EQ(f.state_of(id, f.ids[0]), DeploymentState::kOffered);
}

TEST(DeviceService, ADeviceInNoRolloutGetsTheOfferOfALaterRolloutThatTargetsIt) {
  Fleet f;
  add_artifacts(f, {component("modem", "1.0.0", {"rev-b"})});
  f.add_devices(1, "rev-a");
  f.add_devices(1, "rev-b");
  const std::string& a = f.ids[0];
  const std::string& b = f.ids[1];
  // A rollout the rev-a device is not in: its check-ins learn "nothing for you".
  const std::string modem = f.start(plan_for("modem", "1.0.0"));
  ASSERT_EQ(f.engine->get(modem)->targets, 1u);
  for (int i = 0; i < 3; ++i) EXPECT_FALSE(f.check_in(a).has_value());
  auto mo = f.check_in(b);
  ASSERT_TRUE(mo.has_value());
  EXPECT_EQ(mo->rollout_id, modem);

  // A rollout that targets both: the rev-a device is offered at once.
  const std::string fw = f.start(plan_for("firmware", "2.0.0"));
  auto o = f.check_in(a);
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(o->rollout_id, fw);
  EXPECT_EQ(o->component, "firmware");
  // The rev-b device still has its modem offer outstanding: that comes first.
  auto again = f.check_in(b);
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(again->rollout_id, modem);
  auto next = complete(f, b, *again);
  ASSERT_TRUE(next.has_value());
  EXPECT_EQ(next->rollout_id, fw);
}

// Two rollouts for different components that both target one device, the second started
// before or after the first: the device is offered them one at a time, in creation order.
void expect_offers_in_creation_order(bool start_second_first) {
  Fleet f;
  add_artifacts(f, {component("modem", "1.0.0")});
  f.add_devices(1, "rev-a");
  const std::string dev = f.ids[0];
  auto fw = f.engine->create(plan_for("firmware", "2.0.0"));
  auto modem = f.engine->create(plan_for("modem", "1.0.0"));
  ASSERT_TRUE(fw.ok() && modem.ok());
  if (start_second_first) {
    // The modem rollout's deployments go into the engine's index before the firmware's.
    ASSERT_TRUE(f.engine->start(modem->id).ok());
    ASSERT_TRUE(f.engine->start(fw->id).ok());
  } else {
    ASSERT_TRUE(f.engine->start(fw->id).ok());
    auto first = f.check_in(dev);  // the cursor now points at the firmware rollout alone
    ASSERT_TRUE(first.has_value());
    EXPECT_EQ(first->rollout_id, fw->id);
    ASSERT_TRUE(f.engine->start(modem->id).ok());
  }

  // Not yet reported: the same offer again (a lost offer is re-sent), not the second one.
  for (int i = 0; i < 2; ++i) {
    auto o = f.check_in(dev);
    ASSERT_TRUE(o.has_value());
    EXPECT_EQ(o->rollout_id, fw->id);
    EXPECT_EQ(o->component, "firmware");
    EXPECT_EQ(o->version, "2.0.0");
  }
  EXPECT_EQ(f.state_of(modem->id, dev), DeploymentState::kPending);

  // Busy while installing: no offer at all.
  auto busy = f.service->check_in({dev, f.installed(dev), UpdateState::kInstalling});
  ASSERT_TRUE(busy.ok());
  EXPECT_FALSE(busy->offer.has_value());

  auto o = f.check_in(dev);
  ASSERT_TRUE(o.has_value());
  auto second = complete(f, dev, *o);
  EXPECT_EQ(f.state_of(fw->id, dev), DeploymentState::kSucceeded);
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(second->rollout_id, modem->id);
  EXPECT_EQ(second->component, "modem");
  EXPECT_EQ(second->version, "1.0.0");
  EXPECT_EQ(f.state_of(modem->id, dev), DeploymentState::kOffered);

  auto after = complete(f, dev, *second);
  EXPECT_FALSE(after.has_value());
  EXPECT_EQ(f.state_of(modem->id, dev), DeploymentState::kSucceeded);
  EXPECT_EQ(*f.service->device(dev)->installed_version("firmware"), "2.0.0");
  EXPECT_EQ(*f.service->device(dev)->installed_version("modem"), "1.0.0");
  EXPECT_FALSE(f.check_in(dev).has_value());
}

TEST(DeviceService, RolloutsForOneDeviceAreOfferedInCreationOrder) {
  expect_offers_in_creation_order(false);
}

TEST(DeviceService, RolloutsStartedOutOfOrderAreStillOfferedInCreationOrder) {
  expect_offers_in_creation_order(true);
}

TEST(DeviceService, ManyRolloutsForOneDeviceAreOfferedInCreationOrder) {
  // More rollouts per device than the engine keeps inline while gathering them, started
  // last-created first: the device must still be offered them oldest first.
  constexpr int kRollouts = 10;
  Fleet f;
  std::vector<Artifact> artifacts;
  for (int k = 0; k < kRollouts; ++k)
    artifacts.push_back(component("c" + std::to_string(k), "1.0.0"));
  add_artifacts(f, std::move(artifacts));
  f.add_devices(3, "rev-a");
  std::vector<std::string> rollouts;
  for (int k = 0; k < kRollouts; ++k) {
    auto r = f.engine->create(plan_for("c" + std::to_string(k), "1.0.0"));
    ASSERT_TRUE(r.ok()) << r.error().to_string();
    rollouts.push_back(r->id);
  }
  for (int k = kRollouts - 1; k >= 0; --k) ASSERT_TRUE(f.engine->start(rollouts[k]).ok());
  std::vector<std::string> expected;
  for (int k = 0; k < kRollouts; ++k) expected.push_back("c" + std::to_string(k));
  for (const auto& dev : f.ids) {
    std::vector<std::string> offered;  // components, in the order they were offered
    for (auto o = f.check_in(dev); o.has_value() && offered.size() <= expected.size();
         o = complete(f, dev, *o)) {
      offered.push_back(o->component);
    }
    EXPECT_EQ(offered, expected) << dev;
  }
}

TEST(DeviceService, ADecommissionedDeviceIsRefusedEvenWithAnOfferWaiting) {
  Fleet f;
  f.add_devices(2, "rev-a");
  const std::string id = f.start(plan_for("firmware", "2.0.0"));
  const std::string dev = f.ids[0];
  ASSERT_TRUE(f.check_in(f.ids[1]).has_value());  // the rollout offers

  Device d = *f.service->device(dev);
  d.decommissioned = true;
  ASSERT_TRUE(f.service->provision({d}).ok());
  const size_t inventories = f.service->distinct_inventories();
  auto r = f.service->check_in({dev, with_version(f, dev, "firmware", "1.0.7")});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kFailedPrecondition);
  EXPECT_EQ(*f.service->device(dev), d);  // the refused check-in records nothing
  EXPECT_EQ(f.service->distinct_inventories(), inventories);
  // It left the rollout: skipped with the reason, so no gate or stage waits for it.
  EXPECT_EQ(f.state_of(id, dev), DeploymentState::kSkipped);
  EXPECT_EQ((*f.store().get_deployment(id, dev))->error, "decommissioned");

  // Back in service, it is not part of that rollout any more; the next one reaches it.
  d.decommissioned = false;
  ASSERT_TRUE(f.service->provision({d}).ok());
  EXPECT_FALSE(f.check_in(dev).has_value());
}

TEST(DeviceService, OnlyTheExactIdFindsADevice) {
  Fleet f;
  f.add_devices(12, "rev-a");  // rev-a-open-1 ... rev-a-open-12
  const std::string id = f.ids[0];
  ASSERT_EQ(id, "rev-a-open-1");
  const std::vector<InstalledComponent> inv = f.installed(id);
  for (std::string_view other : {std::string_view("rev-a-open-"), std::string_view("rev-a-open-13"),
                                 std::string_view("rev-a-open-1\0", 13),
                                 std::string_view("REV-A-OPEN-1"), std::string_view("")}) {
    auto r = f.service->check_in({other, inv});
    ASSERT_FALSE(r.ok()) << other;
    EXPECT_EQ(r.error().code, ErrorCode::kNotFound) << other;
    EXPECT_FALSE(f.service->device(other).has_value()) << other;
  }
  EXPECT_EQ(f.service->device_count(), 12u);
  EXPECT_TRUE(f.service->check_in({id, inv}).ok());
  EXPECT_EQ(f.service->device("rev-a-open-10")->id, "rev-a-open-10");
}

}  // namespace
}  // namespace drover::testing
