// The wear twin (docs/health.md, "Predictive maintenance"): issue 14's chemical plant, which
// moved from fixed maintenance schedules to predicted failures. Pumps whose bearings wear
// out: for most, vibration rises over the last weeks of a bearing's life (the P-F interval)
// until it reaches the limit where the pump fails; a share fail without warning. Each
// policy runs on the same pumps and the same bearing lives (common random numbers):
//
// - fixed: a service every N days after the last service or repair, whatever the pump says;
// - predictive: every day the pump's last week of hourly vibration readings is forecast
//   toward the limit (health::forecast_crossing, the same forecast drover uses for memory and
//   disks); a service is called when the expected crossing is within the horizon, and done
//   after the lead time it takes to schedule a crew.
//
// A failure costs the repair time, unplanned; a service costs the service time, planned.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/clock.h"
#include "base/result.h"

namespace drover::sim {

struct WearTwinOptions {
  uint64_t seed = 1;
  uint32_t pumps = 1'000;
  uint32_t days = 730;
  Duration life_median = hours(int64_t{180} * 24);  // a bearing's, lognormal
  double life_sigma = 0.35;
  double sudden_share = 0.1;  // bearings that fail with no rise in vibration first
  // The vibration (mm/s RMS) where a pump fails: ISO 10816-3 zone D for a medium machine.
  double limit = 7.1;
  Duration repair = hours(72);        // a failure: waiting for a crew and parts
  Duration service = hours(8);        // a planned bearing change
  Duration service_lead = hours(48);  // from calling a service to doing it
  std::vector<uint32_t> fixed_every_days = {60, 90, 120};
  Duration forecast_window = hours(int64_t{7} * 24);
  Duration forecast_horizon = hours(int64_t{14} * 24);  // call a service when due within
};

struct MaintenancePolicy {
  std::string name;  // "fixed every 90 days", "predictive"
  double pump_years = 0;
  uint32_t failures = 0;  // unplanned
  uint32_t services = 0;  // planned
  double unplanned_hours = 0;
  double planned_hours = 0;
  // Predictive only: services called while the bearing was not wearing yet (its vibration
  // had not begun to rise); failures with a rise the forecast never called; and failures
  // whose service was called but came too late (the lead longer than what was left).
  uint32_t early_calls = 0;
  uint32_t missed_rises = 0;
  uint32_t late_calls = 0;
};

struct WearTwinReport {
  uint32_t pumps = 0;
  uint32_t days = 0;
  std::vector<MaintenancePolicy> policies;  // the fixed ones in order, then predictive
  double wall_s = 0;
};

// kInvalidArgument for no pumps or days, a share outside [0, 1], a fixed interval of 0 days,
// or a duration that is not positive.
Result<WearTwinReport> run_wear_twin(const WearTwinOptions& options);

std::string describe(const WearTwinReport& report);
std::string to_json(const WearTwinReport& report);

}  // namespace drover::sim
