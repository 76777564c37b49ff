#include "sim/live_fleet.h"

#include <nlohmann/json.hpp>
#include <set>

#include "base/system_memory.h"
#include "base/units.h"
#include "sim/simulator.h"

namespace drover::sim {

Result<LiveScenario> live_scenario(const RolloutPlan& plan, LiveFleet fleet,
                                   const PredictionAssumptions& assume) {
  LiveScenario out;
  out.excluded = static_cast<uint32_t>(fleet.excluded);
  Scenario& sc = out.scenario;
  sc.name = "the live fleet";
  sc.start = fleet.now;
  sc.horizon = assume.horizon;
  sc.engine_tick = assume.engine_tick;
  sc.install_time = assume.install_time;
  sc.reboot_time = assume.reboot_time;
  sc.rollout = plan;
  sc.sites = std::move(fleet.sites);
  for (Artifact& a : fleet.artifacts) {
    // The plan's component: its version, and those a rollback may send devices back to.
    if (a.name == plan.artifact_name) sc.artifacts.push_back(std::move(a));
  }
  std::set<std::string> classes;
  for (size_t i = 0; i < fleet.devices.size(); ++i) {
    Device& d = fleet.devices[i];
    if (d.enrollment != Enrollment::kAccepted || d.decommissioned) {
      ++out.excluded;
      continue;
    }
    if (sc.fleet.size() == kMaxPredictedDevices) {
      return invalid_argument("the fleet has more than " + std::to_string(kMaxPredictedDevices) +
                              " devices in service: a prediction runs the twin on at most "
                              "that many (drover rollout plan runs any size on a scenario)");
    }
    GivenDevice g;
    const CheckInTimes& times = i < fleet.check_ins.size() ? fleet.check_ins[i] : CheckInTimes{};
    if (times.next) {
      const Duration due = *times.next - fleet.now;
      // Overdue by more than an interval past the check-in it was told to make: gone, as
      // far as this prediction goes (it may come back; the check-in contract decides).
      g.dark = due < -assume.poll_interval;
      g.first_check_in = std::max(Duration{0}, due);
    } else {
      ++out.unknown;
    }
    out.dark += g.dark ? 1 : 0;
    classes.insert(d.connectivity);
    g.record = std::move(d);
    sc.fleet.push_back(std::move(g));
  }
  for (const std::string& name : classes) {
    ConnectivitySpec c;
    c.name = name;
    c.kind = LinkKind::kAlwaysOn;
    c.poll_interval = assume.poll_interval;
    c.bandwidth_bps = assume.bandwidth_bps;
    sc.connectivity.push_back(std::move(c));
  }
  if (sc.connectivity.empty()) sc.connectivity.push_back(ConnectivitySpec{});
  sc.devices = static_cast<uint32_t>(sc.fleet.size());
  return out;
}

Result<std::string> predict_on_live_fleet(const RolloutPlan& plan, LiveFleet fleet,
                                          const PredictionAssumptions& assume) {
  const Timestamp at = fleet.now;
  auto live = live_scenario(plan, std::move(fleet), assume);
  if (!live.ok()) return live.error();
  if (live->scenario.fleet.empty())
    return Error{ErrorCode::kFailedPrecondition, "no device in service to predict the plan on"};
  SimOptions options;
  options.preflight = true;
  options.memory_available = available_memory_bytes();
  auto report = run_simulation(live->scenario, options);
  if (!report.ok()) return report.error();
  using nlohmann::json;
  json out{{"at", at.time_since_epoch().count()},
           {"assumptions",
            {{"poll_interval", format_duration(assume.poll_interval)},
             {"engine_tick", format_duration(assume.engine_tick)},
             {"horizon", format_duration(assume.horizon)},
             {"install_time", format_duration(assume.install_time)},
             {"reboot_time", format_duration(assume.reboot_time)},
             {"bandwidth_bps", assume.bandwidth_bps},
             {"defects", "none: every install succeeds (a pre-flight shows reach and time)"},
             {"other_rollouts", "not modelled: a device in another rollout is taken as free"}}},
           {"fleet",
            {{"devices", live->scenario.fleet.size()},
             {"dark", live->dark},
             {"unknown_schedule", live->unknown},
             {"excluded", live->excluded}}},
           {"report", json::parse(report->to_json(false))}};
  return out.dump();
}

}  // namespace drover::sim
