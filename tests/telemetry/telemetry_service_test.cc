#include "telemetry/telemetry_service.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>

#include "../common/fleet_fixture.h"

namespace drover::telemetry {
namespace {

using drover::testing::Fleet;

class TelemetryServiceTest : public ::testing::Test {
 protected:
  TelemetryServiceTest() {
    char tmpl[] = "/tmp/drover-telemetry-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    f.add_devices(2, "rev-a", "open", "ctl", "1.0.0");
    f.add_devices(1, "rev-b", "open", "ctl", "2.0.0");
    f.add_devices(1, "rev-a", "open", "probe", "1.0.0");
    open();
  }
  ~TelemetryServiceTest() override {
    service.reset();
    tsdb.reset();
    std::filesystem::remove_all(dir_);
  }
  void open(TelemetryLimits limits = {}) {
    service.reset();
    tsdb.reset();
    auto opened = TimeSeriesStore::open(real_file_system(), dir_, f.clock);
    ASSERT_TRUE(opened.ok()) << opened.error().to_string();
    tsdb = std::move(*opened);
    service = std::make_unique<TelemetryService>(*tsdb, *f.service, f.store(), f.clock, limits);
  }
  int64_t now() const { return f.clock.now().time_since_epoch().count(); }

  protocol::TelemetryBatch batch(uint64_t seq, std::vector<protocol::TelemetrySeries> series) {
    protocol::TelemetryBatch b;
    b.stream = 42;
    b.sequence = seq;
    b.series = std::move(series);
    return b;
  }
  IngestResult ingest(const std::string& device, const protocol::TelemetryBatch& b) {
    auto r = service->ingest(device, b);
    EXPECT_TRUE(r.ok()) << r.error().to_string();
    if (!r.ok()) return {};
    EXPECT_TRUE(tsdb->wait_durable(r->stored.lsn).ok());
    return *r;
  }

  Fleet f;
  std::string dir_;
  std::unique_ptr<TimeSeriesStore> tsdb;
  std::unique_ptr<TelemetryService> service;
};

TEST_F(TelemetryServiceTest, ADeviceWritesItsOwnSeriesAndReadsComeWithAges) {
  const std::string dev = f.ids[0];
  const int64_t t = now() - 60'000;
  auto r = ingest(dev, batch(1, {{"cpu_percent", {}, {{t, 10}, {t + 30'000, 20}}},
                                 {"temp_c", {{"zone", "cpu"}}, {{t, 41.5}}}}));
  EXPECT_EQ(r.stored.accepted, 3u);
  auto keys = tsdb->keys("");
  ASSERT_EQ(keys.size(), 2u);
  for (const auto& k : keys) EXPECT_EQ(k.rfind(dev + "/", 0), 0u) << k;
  EXPECT_EQ(keys[1], dev + "/temp_c{zone=\"cpu\"}");

  auto latest = service->latest(dev);
  ASSERT_TRUE(latest.ok());
  ASSERT_EQ(latest->size(), 2u);
  EXPECT_EQ((*latest)[0].metric, "cpu_percent");
  EXPECT_EQ((*latest)[0].value, 20);
  EXPECT_DOUBLE_EQ((*latest)[0].age_s, 30);
  EXPECT_EQ((*latest)[1].labels,
            (std::vector<std::pair<std::string, std::string>>{{"zone", "cpu"}}));

  RangeQuery q{dev, "cpu_percent", {}, t - 1, now(), std::nullopt};
  auto range = service->range(q);
  ASSERT_TRUE(range.ok());
  EXPECT_EQ(range->resolution, Resolution::kRaw);
  ASSERT_EQ(range->points.size(), 2u);
  EXPECT_EQ(service->latest("nobody").error().code, ErrorCode::kNotFound);
  EXPECT_EQ(service->ingest("nobody", batch(1, {})).error().code, ErrorCode::kNotFound);
  // A retried batch is acknowledged, not stored twice.
  auto again = ingest(dev, batch(1, {{"cpu_percent", {}, {{t + 40'000, 30}}}}));
  EXPECT_TRUE(again.stored.retry);
  EXPECT_EQ(service->range(q)->points.size(), 2u);
}

TEST_F(TelemetryServiceTest, SeriesAndLabelCardinalityLimitsRefuseTheWholeBatch) {
  open({.series_per_device = 4, .series_per_metric = 2});
  const std::string dev = f.ids[0];
  const int64_t t = now();
  ingest(dev, batch(1, {{"a", {{"k", "1"}}, {{t, 1}}}, {"a", {{"k", "2"}}, {{t, 1}}}}));
  auto r = service->ingest(dev, batch(2, {{"a", {{"k", "3"}}, {{t + 1, 1}}}, {"b", {}, {{t, 1}}}}));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kResourceExhausted);
  EXPECT_NE(r.error().message.find("label cardinality"), std::string::npos);
  EXPECT_EQ(tsdb->keys(dev + "/b").size(), 0u) << "nothing of a refused batch is stored";
  ingest(dev, batch(2, {{"b", {}, {{t, 1}}}, {"c", {}, {{t, 1}}}}));
  r = service->ingest(dev, batch(3, {{"d", {}, {{t, 1}}}}));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("series limit"), std::string::npos);
  // The counts come back from the store after a restart.
  open({.series_per_device = 4, .series_per_metric = 2});
  EXPECT_FALSE(service->ingest(dev, batch(3, {{"d", {}, {{t, 1}}}})).ok());
  EXPECT_TRUE(service->ingest(dev, batch(3, {{"c", {}, {{t + 1, 2}}}})).ok());
}

TEST_F(TelemetryServiceTest, ACohortAggregatesOneMetricAcrossItsDevices) {
  const int64_t t = now() - 3'600'000;
  for (size_t i = 0; i < f.ids.size(); ++i) {
    std::vector<Sample> s;
    for (int k = 0; k < 60; ++k) s.push_back({t + k * 60'000, static_cast<double>(i * 10 + k % 5)});
    ingest(f.ids[i], batch(1, {{"temp_c", {}, s}}));
  }
  Cohort ctl;
  ctl.filter.device_types = {"ctl"};
  auto all = service->cohort(ctl, "temp_c", t, now());
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->devices, 3u);
  EXPECT_EQ(all->reporting, 3u);
  EXPECT_EQ(all->resolution, Resolution::k5m);
  uint64_t count = 0;
  for (const auto& p : all->points) count += p.count;
  EXPECT_EQ(count, 180u);
  EXPECT_EQ(all->points.front().min, 0);
  EXPECT_EQ(all->points.front().max, 24);

  Cohort v2 = ctl;
  v2.component = "firmware";
  v2.version = "2.0.0";
  auto upgraded = service->cohort(v2, "temp_c", t, now());
  ASSERT_TRUE(upgraded.ok());
  EXPECT_EQ(upgraded->devices, 1u);
  EXPECT_EQ(upgraded->points.front().min, 20);
}

TEST_F(TelemetryServiceTest, FreshnessIsJudgedByEachTypesContract) {
  // Probes sleep six hours by design; controllers report every minute.
  DeviceProfile probe{"probe", {hours(6), minutes(30), Duration(0)}, {}, {}, {}};
  DeviceProfile ctl{"ctl", {minutes(1), seconds(30), Duration(0)}, {}, {}, {}};
  WriteBatch b;
  b.profiles = {probe, ctl};
  ASSERT_TRUE(f.store().apply(b).ok());
  const std::string sleeper = f.ids[3];
  ingest(sleeper, batch(1, {{"soil_moisture", {}, {{now(), 31}}}}));
  ingest(f.ids[0], batch(1, {{"cpu_percent", {}, {{now(), 5}}}}));
  ingest(f.ids[1], batch(1, {{"cpu_percent", {}, {{now(), 5}}}}));
  f.clock.advance(hours(5));
  // f.ids[1] still talks, but its data stopped five hours ago.
  ingest(f.ids[1], batch(2, {{"cpu_percent", {}, {}}}));
  auto rows = service->freshness(Cohort{});
  ASSERT_TRUE(rows.ok());
  std::map<std::string, Freshness> by_device;
  for (const auto& r : *rows) by_device[r.device] = r.freshness;
  EXPECT_EQ(by_device[sleeper], Freshness::kFresh) << "asleep by design, within its contract";
  EXPECT_EQ(by_device[f.ids[0]], Freshness::kOffline);
  EXPECT_EQ(by_device[f.ids[1]], Freshness::kStale);
  EXPECT_EQ(by_device[f.ids[2]], Freshness::kOffline) << "never reported";
  // A check-in is contact too: f.ids[0] checks in, its data still five hours old.
  const auto installed = f.service->device(f.ids[0])->installed;
  ASSERT_TRUE(f.service->check_in({f.ids[0], installed, UpdateState::kIdle, "", false}).ok());
  rows = service->freshness(Cohort{});
  ASSERT_TRUE(rows.ok());
  for (const auto& r : *rows) {
    if (r.device == f.ids[0]) {
      EXPECT_EQ(r.freshness, Freshness::kStale) << "it talks, its data does not come";
      EXPECT_LT(r.contact_age_s, 1.5);
    }
  }
  f.clock.advance(hours(2));
  rows = service->freshness(Cohort{});
  for (const auto& r : *rows) {
    if (r.device == sleeper) {
      EXPECT_EQ(r.freshness, Freshness::kLate);
    }
  }
}

TEST(SeriesKey, LabelsRoundTripWhateverTheyHold) {
  std::vector<std::pair<std::string, std::string>> labels = {{"a", "x\"y"}, {"b", "c\\d,e=f}"}};
  std::string key = TelemetryService::series_key("dev-1", "m", labels);
  std::string metric;
  std::vector<std::pair<std::string, std::string>> back;
  ASSERT_TRUE(TelemetryService::parse_series_key(key, metric, back));
  EXPECT_EQ(metric, "m");
  EXPECT_EQ(back, labels);
  EXPECT_FALSE(TelemetryService::parse_series_key("dev/m{a=\"x", metric, back));
}

}  // namespace
}  // namespace drover::telemetry
