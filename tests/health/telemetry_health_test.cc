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
  void series(const std::string& key, double (*value)(double), int days = 2) {
    telemetry::Batch b;
    telemetry::SeriesSamples s{key, {}};
    for (int k = 0; k < days * 144; ++k) {
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
// the days before it. A quiet series has none; one that jumps and spikes in the window has
// one alarm an episode.
TEST_F(TelemetryHealthTest, AnomaliesAreTheGenericDetectorsAlarmsADayInTheWindow) {
  // A daily swing and a little noise (deterministic), four days.
  const auto quiet = [](double d) {
    const double noise = std::sin(d * 144 * 12.9898) * 0.2;
    return 50 + 5 * std::sin(2 * 3.14159265 * d) + noise;
  };
  series("d1/latency_ms", quiet, 4);
  // The same, then on day 3: a level 20 up from 3.25, and two spikes of 40 an hour apart
  // and more, before it.
  series(
      "d2/latency_ms",
      [](double d) {
        const double base =
            50 + 5 * std::sin(2 * 3.14159265 * d) + std::sin(d * 144 * 12.9898) * 0.2;
        const int k = static_cast<int>(std::lround(d * 144));
        if (k == 3 * 144 + 6 || k == 3 * 144 + 18) return base + 40;
        return d >= 3.25 ? base + 20 : base;
      },
      4);
  TelemetryHealth h(*tsdb);
  const HealthMetric rate{"latency_ms", HealthMeasure::kAnomalies, HealthDirection::kHigherIsWorse};
  auto clean = h.measure("d1", rate, day(3), day(4)).value();
  ASSERT_TRUE(clean.has_value());
  EXPECT_EQ(*clean, 0);
  auto anomalous = h.measure("d2", rate, day(3), day(4)).value();
  ASSERT_TRUE(anomalous.has_value());
  EXPECT_GE(*anomalous, 2) << "two spikes and a level shift";
  EXPECT_LE(*anomalous, 4);
  // Before the window nothing is counted: the same days as a window hold none of it.
  EXPECT_EQ(*h.measure("d2", rate, day(2), day(3)).value(), 0);
  // Per day: half a day holding the same alarms counts twice as many a day.
  auto half = h.measure("d2", rate, day(3), day(3.5)).value();
  ASSERT_TRUE(half.has_value());
  EXPECT_EQ(*half, 2 * *anomalous);
  EXPECT_FALSE(h.measure("d3", rate, day(3), day(4)).value().has_value());
}

}  // namespace
}  // namespace drover::health
