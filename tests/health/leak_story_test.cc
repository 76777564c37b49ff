// The leak story of issue 14 (§4), at the level of the forecast alone: a firmware whose
// memory leak exhausts a device's memory after about 80 days, among healthy devices whose
// memory swings daily and is freed now and then. Every day each device's last
// hourly memory readings (up to 14 days) are forecast toward its limit; a device is flagged
// when the forecast's expected crossing is within 30 days. Over 20 seeds: the first leaking
// device is flagged at least 7 days before the first of them fails, every leaking device at
// least 7 days before it fills, and at most 1% of the healthy devices are ever flagged. The
// same story is told again through judge_device (health/device_health.h), as drover serve's
// device health judges the memory it reads: a week of readings, the memory reason; and, for
// two seeds, through drover serve's own path — the telemetry service's ingest, the store and
// HealthView.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "../common/fleet_fixture.h"
#include "base/file_system.h"
#include "health/device_health.h"
#include "health/forecast.h"
#include "health/health_view.h"
#include "telemetry/telemetry_service.h"
#include "telemetry/time_series_store.h"

namespace drover::health {
namespace {

Timestamp hour(int64_t h) { return Timestamp(Duration(h * 3'600'000)); }

struct Device {
  bool leaks = false;
  double base = 0;        // MB in use after start-up
  double leak_per_h = 0;  // MB an hour
  double phase = 0;       // of its daily swing
};

constexpr double kLimit = 512;  // MB

// Whether device `device` of seed `seed`'s fleet is flagged on `now`, given its last readings
// of memory in use (MB).
using Flag = std::function<bool(uint64_t seed, int device, std::span<const TimedValue> in_use,
                                Timestamp now)>;

// Runs the story over `seeds` seeds with `window_days` of readings kept, and checks its
// promises.
void run_story(int window_days, const Flag& flagged, uint64_t seeds = 20) {
  constexpr int kDevices = 400;
  constexpr int kDays = 90;
  int healthy_flagged = 0;
  int healthy = 0;
  int least_fleet_lead = kDays;   // days from the first flag to the first failure
  int least_device_lead = kDays;  // days from a device's flag to its own failure
  for (uint64_t seed = 1; seed <= seeds; ++seed) {
    std::mt19937_64 rng(seed);
    std::normal_distribution<double> noise(0, 5);
    std::uniform_real_distribution<double> unit(0, 1);
    std::vector<Device> fleet(kDevices);
    for (int i = 0; i < kDevices; ++i) {
      Device& d = fleet[i];
      d.leaks = i % 10 == 0;  // a tenth run the leaking build
      d.base = 180 + 40 * unit(rng);
      d.phase = 2 * M_PI * unit(rng);
      // Full at about day 80 (from 72 to 88): what is left over 80 days, give or take 10%.
      if (d.leaks) d.leak_per_h = (kLimit - d.base) / (80 * 24) * (0.9 + 0.2 * unit(rng));
    }
    std::vector<std::vector<TimedValue>> seen(kDevices);
    std::vector<int> flagged_on(kDevices, -1);
    std::vector<int> failed_on(kDevices, kDays + 1);
    int first_failure = kDays + 1;
    for (int day = 0; day < kDays; ++day) {
      for (int i = 0; i < kDevices; ++i) {
        Device& d = fleet[i];
        for (int h = 0; h < 24; ++h) {
          const int64_t t = int64_t{day} * 24 + h;
          double mb = d.base + d.leak_per_h * static_cast<double>(t) +
                      25 * std::sin(2 * M_PI * static_cast<double>(h) / 24 + d.phase) + noise(rng);
          // Healthy devices free a cache now and then and build it up again over a day.
          if (!d.leaks && unit(rng) < 0.002) d.base = 180 + 40 * unit(rng);
          if (mb >= kLimit) {
            first_failure = std::min(first_failure, day);
            failed_on[i] = std::min(failed_on[i], day);
          }
          seen[i].push_back({hour(t), mb});
        }
        const size_t keep = static_cast<size_t>(window_days) * 24;
        if (seen[i].size() > keep) seen[i].erase(seen[i].begin(), seen[i].end() - keep);
        if (flagged_on[i] >= 0 || day < 7) continue;  // a week of readings at least
        if (flagged(seed, i, seen[i], hour(int64_t{day + 1} * 24))) flagged_on[i] = day;
      }
    }
    ASSERT_LE(first_failure, kDays) << "seed " << seed << ": the leak never filled a device";
    int first_flag = kDays + 1;
    for (int i = 0; i < kDevices; ++i) {
      if (fleet[i].leaks) {
        ASSERT_GE(flagged_on[i], 0) << "seed " << seed << " device " << i;
        // Each a week or more before it fills (if it does within the 90 days).
        EXPECT_LE(flagged_on[i], failed_on[i] - 7) << "seed " << seed << " device " << i;
        first_flag = std::min(first_flag, flagged_on[i]);
        if (failed_on[i] <= kDays)
          least_device_lead = std::min(least_device_lead, failed_on[i] - flagged_on[i]);
      } else {
        ++healthy;
        healthy_flagged += flagged_on[i] >= 0 ? 1 : 0;
      }
    }
    // The leak is known a week or more before the first device fails.
    EXPECT_LE(first_flag, first_failure - 7) << "seed " << seed;
    least_fleet_lead = std::min(least_fleet_lead, first_failure - first_flag);
  }
  std::printf("healthy flagged %d of %d; least lead: %d days for the fleet, %d for a device\n",
              healthy_flagged, healthy, least_fleet_lead, least_device_lead);
  EXPECT_LE(healthy_flagged * 100, healthy) << healthy_flagged << " of " << healthy;
}

TEST(LeakStory, LeakingDevicesAreFlaggedAWeekAheadAndHealthyOnesRarely) {
  run_story(14, [](uint64_t, int, std::span<const TimedValue> in_use, Timestamp now) {
    auto c = forecast_crossing(in_use, kLimit, now, {.confidence = 0.9, .toward = Toward::kUp});
    return c && c->expected <= hours(30 * 24);
  });
}

// As drover serve's device health sees it: memory available (the total less what is in use,
// the total such that 5% of it is left at the limit) over the last week, and the memory
// reason of judge_device.
bool memory_reason(std::span<const TimedValue> in_use, Timestamp now) {
  const double total = kLimit / 0.95;
  DeviceFacts facts;
  facts.freshness.device = "d";
  facts.freshness.freshness = Freshness::kFresh;
  SeriesWindow available{"memory_available_bytes", {}, {}};
  for (const TimedValue& v : in_use) available.values.push_back({v.at, (total - v.value) * 1e6});
  facts.series = {std::move(available),
                  {"memory_total_bytes", {}, {{in_use.back().at, total * 1e6}}}};
  for (const HealthReason& r : judge_device(facts, now).reasons) {
    if (r.kind == "memory") return true;
  }
  return false;
}

TEST(LeakStory, DeviceHealthFlagsTheLeakAWeekAheadAndHealthyDevicesRarely) {
  run_story(7, [](uint64_t, int, std::span<const TimedValue> in_use, Timestamp now) {
    return memory_reason(in_use, now);
  });
}

// The same story through drover serve's own path, for two seeds of the 20: each device's
// readings (memory available, and the total) go through the telemetry service's ingest into a
// real time-series store as each day ends, and HealthView judges the device from the store at
// the day's end, as GET /api/v1/devices/{id}/health does. It flags every device on the same
// day as judge_device on the same readings (the test above), and so keeps its promises.
TEST(LeakStory, ServesDeviceHealthFromTheStoreFlagsTheSameDevicesOnTheSameDays) {
  constexpr size_t kDevices = 400;  // as run_story's fleet
  const double total = kLimit / 0.95;
  // Each seed's story on its own stretch of the clock (the story's times start at 0).
  const Timestamp base = drover::testing::at("2026-01-01T00:00:00Z");
  const auto shift = [&](uint64_t seed) { return base + hours(24 * 100 * (seed - 1)); };
  drover::testing::Fleet f(base);
  f.add_devices(2 * kDevices, "rev-a");  // seed s's device i: f.ids[(s - 1) * kDevices + i]
  std::string tmpl = std::filesystem::exists("/dev/shm") ? "/dev/shm/drover-leak-story-XXXXXX"
                                                         : "/tmp/drover-leak-story-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
  const std::string dir = tmpl;
  auto tsdb = telemetry::TimeSeriesStore::open(real_file_system(), dir, f.clock);
  ASSERT_TRUE(tsdb.ok()) << tsdb.error().to_string();
  telemetry::TelemetryService telemetry(**tsdb, *f.service, f.store(), f.clock);
  const HealthView view(telemetry, nullptr, f.clock);
  std::map<std::string, Timestamp> sent;  // each device's readings sent up to
  std::map<std::string, uint64_t> sequence_of;
  int judged = 0, differed = 0;
  run_story(
      7,
      [&](uint64_t seed, int device, std::span<const TimedValue> in_use, Timestamp now) {
        const std::string& id = f.ids[(seed - 1) * kDevices + static_cast<size_t>(device)];
        const Timestamp at = now + (shift(seed) - Timestamp{});
        if (f.clock.now() < at) f.clock.advance_to(at);
        // The readings not sent yet, as the device's agent would send them.
        protocol::TelemetryBatch batch;
        batch.stream = 1;
        batch.sequence = ++sequence_of[id];
        protocol::TelemetrySeries available{"memory_available_bytes", {}, {}};
        for (const TimedValue& v : in_use) {
          const Timestamp t = v.at + (shift(seed) - Timestamp{});
          if (auto it = sent.find(id); it != sent.end() && t <= it->second) continue;
          available.samples.push_back({t.time_since_epoch().count(), (total - v.value) * 1e6});
        }
        const int64_t last = available.samples.back().t_ms;
        batch.series = {std::move(available), {"memory_total_bytes", {}, {{last, total * 1e6}}}};
        // Read back at once, as the device API's reads are (durability is the ingest's own
        // story: docs/telemetry.md).
        auto stored = telemetry.ingest(id, batch);
        EXPECT_TRUE(stored.ok()) << stored.error().to_string();
        sent[id] = Timestamp(Duration(last));
        auto health = view.device(id);
        EXPECT_TRUE(health.ok()) << health.error().to_string();
        bool flagged = false;
        for (const HealthReason& r : health.ok() ? health->reasons : std::vector<HealthReason>{})
          flagged |= r.kind == "memory";
        ++judged;
        if (flagged != memory_reason(in_use, now)) ++differed;
        return flagged;
      },
      2);
  std::printf("serve's device health: %d judgements, %d differ from judge_device's\n", judged,
              differed);
  EXPECT_GT(judged, 2 * kDevices * 70);
  EXPECT_EQ(differed, 0);
  tsdb->reset();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace drover::health
