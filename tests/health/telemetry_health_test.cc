// Health gates' data in drover serve: a device's metric over a window, from the telemetry
// store, measured as a mean, a slope per day or a counter's increase, over every label set.
#include "health/telemetry_health.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <memory>

#include "base/file_system.h"
#include "base/units.h"
#include "telemetry/time_series_store.h"

namespace drover::health {
namespace {

class TelemetryHealthTest : public ::testing::Test {
 protected:
  TelemetryHealthTest() : clock(parse_utc_timestamp("2026-06-01T00:00:00Z").value()) {
    char tmpl[] = "/tmp/drover-telemetry-health-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    auto opened = telemetry::TimeSeriesStore::open(real_file_system(), dir_, clock);
    EXPECT_TRUE(opened.ok());
    tsdb = std::move(*opened);
  }
  ~TelemetryHealthTest() override {
    tsdb.reset();
    std::filesystem::remove_all(dir_);
  }
  int64_t ms(Timestamp t) const {
    return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  }
  // Samples every 10 minutes over `days` days from the clock's start: value(day).
  void series(const std::string& key, double (*value)(double), int days = 2, int first_day = 0) {
    telemetry::Batch b;
    telemetry::SeriesSamples s{key, {}};
    for (int k = first_day * 144; k < days * 144; ++k) {
      const Timestamp t = clock.now() + minutes(int64_t{10} * k);
      s.samples.push_back({ms(t), value(k / 144.0)});
    }
    b.series.push_back(std::move(s));
    ASSERT_TRUE(tsdb->append(b).ok());
  }
  Timestamp day(double d) const {
    return clock.now() +
           std::chrono::duration_cast<Duration>(std::chrono::duration<double>(d * 86400));
  }

  ManualClock clock;
  std::unique_ptr<telemetry::TimeSeriesStore> tsdb;

 private:
  std::string dir_;
};

TEST_F(TelemetryHealthTest, MeanSlopeAndIncreaseOverEveryLabelSetOfTheMetric) {
  // Two supplies draining 2 and 4 percent a day from 90 and 80.
  series("d1/battery_level_percent{supply=\"main\"}", [](double d) { return 90 - 2 * d; });
  series("d1/battery_level_percent{supply=\"backup\"}", [](double d) { return 80 - 4 * d; });
  // Another metric whose name starts the same way, and another device: neither counts.
  series("d1/battery_level_percent_min", [](double) { return 0.0; });
  series("d10/battery_level_percent", [](double) { return 0.0; });
  // A counter that resets once, at day 1 (a reboot): 10 a day.
  series("d1/crashes_total", [](double d) { return d < 1 ? 10 * d : 10 * (d - 1); });

  TelemetryHealth h(*tsdb);
  const HealthMetric slope{"battery_level_percent", HealthMeasure::kSlope,
                           HealthDirection::kLowerIsWorse};
  auto s = h.measure("d1", slope, day(0), day(1)).value();
  ASSERT_TRUE(s.has_value());
  EXPECT_NEAR(*s, -3, 1e-6);  // both series weigh alike: each has a day of samples
  const HealthMetric mean{"battery_level_percent", HealthMeasure::kMean,
                          HealthDirection::kLowerIsWorse};
  auto m = h.measure("d1", mean, day(1), day(2)).value();
  ASSERT_TRUE(m.has_value());
  // Over day two: main from 88 to 86, backup from 76 to 72; means 87 and 74 less half a step.
  EXPECT_NEAR(*m, (87 + 74) / 2.0, 0.05);
  const HealthMetric crashes{"crashes_total", HealthMeasure::kIncrease,
                             HealthDirection::kHigherIsWorse};
  auto c = h.measure("d1", crashes, day(0.5), day(1.5)).value();
  ASSERT_TRUE(c.has_value());
  // From 5 to 10 (just before the reset), then 0 to 5 after it: about 10 in the day.
  EXPECT_NEAR(*c, 10, 0.2);

  // No data: a device without the metric, a window before the first sample, one sample.
  EXPECT_FALSE(h.measure("d2", slope, day(0), day(1)).value().has_value());
  EXPECT_FALSE(h.measure("d1", slope, day(-2), day(-1)).value().has_value());
  EXPECT_FALSE(h.measure("d1", slope, day(0), day(0) + minutes(5)).value().has_value());
  EXPECT_TRUE(h.measure("d1", mean, day(0), day(0) + minutes(5)).value().has_value());
}

// An anomaly rate: the generic detector's alarms a day in the window, each series learnt on
// the days before it, averaged over the metric's label sets. A quiet series has none; one that
// spikes twice and shifts its level in the window has one alarm an episode, counted in the
// window only.
double quiet_latency(double d) {
  return 50 + 5 * std::sin(2 * 3.14159265 * d) + std::sin(d * 144 * 12.9898) * 0.2;
}
double troubled_latency(double d) {
  // On day 3: two spikes of 40, an hour and three after the start, and a level 20 up from
  // six hours on.
  const int k = static_cast<int>(std::lround(d * 144));
  if (k == 3 * 144 + 6 || k == 3 * 144 + 18) return quiet_latency(d) + 40;
  return d >= 3.25 ? quiet_latency(d) + 20 : quiet_latency(d);
}

TEST_F(TelemetryHealthTest, AnomaliesAreTheGenericDetectorsAlarmsADayInTheWindow) {
  series("d1/latency_ms", quiet_latency, 4);
  series("d2/latency_ms", troubled_latency, 4);
  series("d3/latency_ms{path=\"a\"}", troubled_latency, 4);
  series("d3/latency_ms{path=\"b\"}", quiet_latency, 4);
  series("d4/latency_ms", quiet_latency, 2);                      // nothing in the window
  series("d5/latency_ms", troubled_latency, 4, /*first_day=*/3);  // new: still learning
  TelemetryHealth h(*tsdb);
  const HealthMetric rate{"latency_ms", HealthMeasure::kAnomalies, HealthDirection::kHigherIsWorse};
  const auto at = [&](const char* device, double from, double to) {
    auto r = h.measure(device, rate, day(from), day(to));
    EXPECT_TRUE(r.ok());
    return r.ok() ? *r : std::nullopt;
  };
  EXPECT_EQ(at("d1", 3, 4), 0.0);
  const std::optional<double> troubled = at("d2", 3, 4);
  ASSERT_TRUE(troubled.has_value());
  EXPECT_GE(*troubled, 2) << "two spikes and a level shift";
  EXPECT_LE(*troubled, 4);
  // All of it in the window's first half: the second half holds none (nothing before a
  // window is counted), the first as many a day as twice the whole day.
  EXPECT_EQ(at("d2", 3.5, 4), 0.0);
  EXPECT_EQ(at("d2", 3, 3.5), 2 * *troubled);
  // Two label sets, one troubled: the average of their rates.
  EXPECT_EQ(at("d3", 3, 4), *troubled / 2);
  // No data, a series only before the window, one that is still learning: nothing to say.
  EXPECT_EQ(at("d9", 3, 4), std::nullopt);
  EXPECT_EQ(at("d4", 3, 4), std::nullopt);
  EXPECT_EQ(at("d5", 3, 4), std::nullopt);
}

}  // namespace
}  // namespace drover::health
