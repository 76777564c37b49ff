// Predictive maintenance on the wear twin (issue 14 §4, docs/health.md "Predictive
// maintenance"): pumps whose bearings announce their end in rising vibration, or a tenth of
// them not at all; the daily forecast of drover's health::forecast_crossing against fixed
// schedules on the same bearings. The full size (1,000 pumps) runs in bench/field.sh.
#include "sim/wear_twin.h"

#include <gtest/gtest.h>

#include <cstdio>

namespace drover::sim {
namespace {

WearTwinOptions small(uint64_t seed) {
  WearTwinOptions o;
  o.seed = seed;
  o.pumps = 150;
  o.days = 730;
  return o;
}

double downtime(const MaintenancePolicy& p) { return p.unplanned_hours + p.planned_hours; }

// Over 20 seeds: the forecast calls every announced end in time and never a bearing that is
// not wearing yet, so only the failures without warning remain; it has less downtime in all
// than every fixed schedule, and less unplanned downtime than the rarest of them (every 120
// days, which still services more often than the forecast), while the schedules that service
// more often trade planned hours for their fewer failures.
TEST(WearTwin, ForecastsCallTheWornBearingsAndCutDowntimeAgainstFixedSchedules) {
  double unplanned_pred = 0, unplanned_120 = 0, total_pred = 0, total_best_fixed = 1e18;
  std::vector<double> total_fixed(3, 0);
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    auto r = run_wear_twin(small(seed));
    ASSERT_TRUE(r.ok()) << r.error().to_string();
    ASSERT_EQ(r->policies.size(), 4u);
    const MaintenancePolicy& pred = r->policies.back();
    EXPECT_EQ(pred.name, "predictive");
    EXPECT_EQ(pred.early_calls, 0u) << "seed " << seed;
    EXPECT_EQ(pred.missed_rises, 0u) << "seed " << seed;
    EXPECT_EQ(pred.late_calls, 0u) << "seed " << seed;
    EXPECT_GT(pred.services, 0u);
    for (size_t i = 0; i < 3; ++i) {
      EXPECT_LT(downtime(pred), downtime(r->policies[i]))
          << "seed " << seed << " against " << r->policies[i].name;
      total_fixed[i] += downtime(r->policies[i]);
    }
    EXPECT_LT(pred.unplanned_hours, r->policies[2].unplanned_hours) << "seed " << seed;
    unplanned_pred += pred.unplanned_hours;
    unplanned_120 += r->policies[2].unplanned_hours;
    total_pred += downtime(pred);
  }
  for (double t : total_fixed) total_best_fixed = std::min(total_best_fixed, t);
  std::printf(
      "predictive: %.0f%% less unplanned downtime than every 120 days, %.0f%% less "
      "downtime in all than the best fixed schedule\n",
      100 * (1 - unplanned_pred / unplanned_120), 100 * (1 - total_pred / total_best_fixed));
  EXPECT_LT(unplanned_pred, 0.6 * unplanned_120);
  EXPECT_LT(total_pred, 0.8 * total_best_fixed);
}

// With no failures without warning, the forecast leaves no unplanned downtime at all, where
// every fixed schedule has some.
TEST(WearTwin, WithEveryEndAnnouncedNothingFailsUnplanned) {
  WearTwinOptions o = small(5);
  o.sudden_share = 0;
  auto r = run_wear_twin(o);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(r->policies.back().failures, 0u);
  EXPECT_GT(r->policies.back().services, 100u);
  // (Every 60 days a bearing rarely fails first: about one in 150 pumps' two years.)
  for (size_t i = 1; i < 3; ++i) EXPECT_GT(r->policies[i].failures, 0u) << r->policies[i].name;
}

// A service called with a lead longer than any rise comes too late: the forecast still
// calls the wearing bearings (none missed), but they fail first, and are counted so.
TEST(WearTwin, ALeadLongerThanTheRiseComesTooLate) {
  WearTwinOptions o = small(2);
  o.service_lead = hours(int64_t{60} * 24);
  auto r = run_wear_twin(o);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  const MaintenancePolicy& pred = r->policies.back();
  EXPECT_GT(pred.late_calls, 50u);
  EXPECT_EQ(pred.missed_rises, 0u);
  EXPECT_EQ(pred.services, 0u);
}

TEST(WearTwin, BadOptionsAreRefused) {
  WearTwinOptions o = small(1);
  o.pumps = 0;
  EXPECT_EQ(run_wear_twin(o).error().code, ErrorCode::kInvalidArgument);
  o = small(1);
  o.sudden_share = 2;
  EXPECT_EQ(run_wear_twin(o).error().code, ErrorCode::kInvalidArgument);
  o = small(1);
  o.fixed_every_days = {0};
  EXPECT_EQ(run_wear_twin(o).error().code, ErrorCode::kInvalidArgument);
  o = small(1);
  o.forecast_window = hours(2);
  EXPECT_EQ(run_wear_twin(o).error().code, ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace drover::sim
