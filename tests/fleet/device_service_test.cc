#include "fleet/device_service.h"

#include <gtest/gtest.h>

#include "../common/fleet_fixture.h"
#include "../common/forwarding_store.h"

namespace drover::testing {
namespace {

// Counts the writes that reach the store.
class CountingStore final : public ForwardingStore {
 public:
  using ForwardingStore::ForwardingStore;
  int writes = 0;
  Status apply(const WriteBatch& b) override {
    ++writes;
    return ForwardingStore::apply(b);
  }
};

struct Counted {
  Counted() {
    auto owned = std::make_unique<CountingStore>(make_memory_store());
    store = owned.get();
    fleet = std::make_unique<Fleet>(at("2026-06-01T12:00:00Z"), std::move(owned));
  }
  CountingStore* store;
  std::unique_ptr<Fleet> fleet;
};

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
      f.service->report_status({"nobody", "rollout-0001", "1.0.0", DeploymentEvent::kSucceeded, {}})
          .error()
          .code,
      ErrorCode::kNotFound);
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

}  // namespace
}  // namespace drover::testing
