// Starting a rollout on a large fleet does not stop check-ins: start() plans outside the
// engine's lock (docs/architecture.md, "Group commit" and the engine). A 1,000,000-device
// fleet on the memory store; while a rollout of all of it starts, other devices check in from
// another thread, and their latency is reported (the p99 and the longest).
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "../common/fleet_fixture.h"
#include "../common/forwarding_store.h"

namespace drover {
namespace {

using testing::Fleet;
using testing::simple_plan;
using Steady = std::chrono::steady_clock;

TEST(EngineStartUnderLoad, CheckInsGoOnWhileAMillionDeviceRolloutIsPlanned) {
  const int targets = std::getenv("DROVER_START_LOAD_DEVICES") != nullptr
                          ? std::atoi(std::getenv("DROVER_START_LOAD_DEVICES"))
                          : 1'000'000;
  Fleet f;
  f.add_devices(targets, "rev-a");
  // Devices the rollout does not touch (another type): their check-ins change nothing.
  f.add_devices(1000, "rev-a", "open", "meter");
  std::vector<std::string> others(f.ids.end() - 1000, f.ids.end());
  auto created = f.engine->create(simple_plan());
  ASSERT_TRUE(created.ok());

  std::atomic<bool> started{false}, done{false};
  std::vector<double> during_ms;  // check-ins that began while start() ran
  std::thread checker([&] {
    const std::vector<InstalledComponent> inv = f.installed(others.front());
    for (size_t i = 0; !done.load(); ++i) {
      // Counted when it began while start() ran, however long it then waited.
      const bool in_start = started.load() && !done.load();
      const auto t0 = Steady::now();
      auto r = f.service->check_in({others[i % others.size()], inv, UpdateState::kIdle});
      ASSERT_TRUE(r.ok());
      ASSERT_FALSE(r->offer.has_value());
      if (in_start)
        during_ms.push_back(std::chrono::duration<double, std::milli>(Steady::now() - t0).count());
    }
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  const auto t0 = Steady::now();
  started = true;
  const Status st = f.engine->start(created->id);
  done = true;
  const double start_ms = std::chrono::duration<double, std::milli>(Steady::now() - t0).count();
  checker.join();
  ASSERT_TRUE(st.ok()) << st.error().to_string();
  auto summary = f.engine->summary(created->id);
  ASSERT_TRUE(summary.ok());
  EXPECT_EQ(summary->state, RolloutState::kRunning);
  EXPECT_EQ(summary->targets, static_cast<uint32_t>(targets));

  std::sort(during_ms.begin(), during_ms.end());
  ASSERT_FALSE(during_ms.empty());
  const double p99 = during_ms[std::min(during_ms.size() - 1, during_ms.size() * 99 / 100)];
  const double longest = during_ms.back();
  std::printf(
      "start of %d devices: %.0f ms; %zu check-ins during it: p50 %.4f ms, p99 %.4f ms, "
      "longest %.1f ms\n",
      targets, start_ms, during_ms.size(), during_ms[during_ms.size() / 2], p99, longest);
  ::testing::Test::RecordProperty("start_ms", std::to_string(start_ms));
  ::testing::Test::RecordProperty("checkin_p99_ms", std::to_string(p99));
  ::testing::Test::RecordProperty("checkin_longest_ms", std::to_string(longest));
  // Under the old start (the whole plan under the lock) one check-in waited for all of it and
  // none finished meanwhile; now they flow, and no wait comes near the start's length.
  EXPECT_GT(during_ms.size(), 1000u);
  EXPECT_LT(longest, start_ms / 2);
}

// start() plans from a snapshot of the fleet taken outside the engine lock. A device that
// leaves the fleet after that snapshot is read is still in it, so the plan targets it: the
// start takes it out again as it installs the rollout, as it would had it left a moment
// later, and a rollback counts it as not sent back.
class SnapshotHook final : public testing::ForwardingStore {
 public:
  SnapshotHook() : ForwardingStore(make_memory_store()) {}
  Result<std::vector<Device>> list_devices() override {
    auto listed = ForwardingStore::list_devices();
    if (after_listing) std::exchange(after_listing, {})();
    return listed;
  }
  std::function<void()> after_listing;
};

TEST(EngineStartUnderLoad, ADeviceThatLeavesWhileTheStartPlansIsNotLeftWaitingInIt) {
  auto owned = std::make_unique<SnapshotHook>();
  SnapshotHook* hook = owned.get();
  Fleet f(testing::at("2026-06-01T12:00:00Z"), std::move(owned));
  f.add_devices(4, "rev-a");
  const std::string gone = f.ids[1], back = f.ids[2];
  hook->after_listing = [&] {
    EXPECT_TRUE(f.service->decommission(gone).ok());
    // One that leaves (its enrollment withdrawn) and comes back before the start is done
    // stays in it.
    for (Enrollment e : {Enrollment::kPending, Enrollment::kAccepted}) {
      EXPECT_TRUE(f.service
                      ->update(back,
                               [e](Device& d) {
                                 d.enrollment = e;
                                 return ok_status();
                               })
                      .ok());
    }
  };
  const std::string id = f.start(simple_plan({{"all", 100, 0, Duration(0)}}));
  EXPECT_FALSE(hook->after_listing) << "the hook ran during the start";
  EXPECT_EQ(f.state_of(id, gone), DeploymentState::kSkipped);
  auto steps = f.store().list_deployment_steps(id, gone);
  ASSERT_TRUE(steps.ok());
  ASSERT_FALSE(steps->empty());
  EXPECT_NE(steps->back().message.find("decommissioned"), std::string::npos)
      << steps->back().message;
  EXPECT_EQ(f.state_of(id, back), DeploymentState::kPending);
  for (const auto& dev : {f.ids[0], back, f.ids[3]})
    EXPECT_TRUE(f.check_in(dev).has_value()) << dev;
}

}  // namespace
}  // namespace drover
