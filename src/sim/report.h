// What a simulation run found: the figures of docs/scenarios.md ("The report"), printable as
// JSON. Everything but wall_seconds and checkins_per_wall_second is a pure function of the
// scenario and the seed.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "model/rollout.h"

namespace drover::sim {

struct HaltedStratumReport {
  std::string group;              // the gate that halted: "all", "hardware_revision=rev-c", ...
  uint32_t devices = 0;           // targets in the group
  uint32_t never_offered = 0;     // of those, never offered the update
  std::string hardware_revision;  // empty when the halted group is not about one
  std::string site;
  std::string connectivity;
  std::string reason;
  double halted_at_s = 0;
};

struct StageReport {
  std::string name;
  double started_at_s = 0;
  std::optional<double> finished_at_s;
  uint32_t devices = 0;
  // From the engine in this process (absent against a remote server): the stage's size as
  // asked (cumulative) and why it holds more, and what held its offers back.
  std::optional<uint32_t> asked;
  uint32_t planned = 0;  // cumulative, as `asked`
  std::string why;
  std::string bound_by;  // window, max_in_flight, rate, pacing or links
  uint64_t held_by_window = 0, held_by_in_flight = 0, held_by_rate = 0, held_by_pacing = 0;
};

// What one hardware revision went through.
struct RevisionReport {
  std::string hardware_revision;
  uint32_t devices = 0;    // in the fleet
  uint32_t offered = 0;    // received the new version's offer
  uint32_t installed = 0;  // wrote the new version and booted into it (kept or not)
  uint32_t updated = 0;    // committed the new version and still run it
  uint32_t failed = 0;     // the new version failed on it (install, trial boot, unhealthy)
};

struct UnreachedDevice {
  std::string device_id;
  std::string reason;
};

// The steps that interrupt a device, judged by the twin against each device's own site
// window and quiet hours (not the windows the server sent): how many happened outside.
struct WindowReport {
  uint32_t installs_outside = 0;
  uint32_t reboots_outside = 0;  // into the new image, or back after a failed trial boot
  uint32_t commits_outside = 0;
  uint32_t held = 0;  // devices that held a verified image until a later window
  uint32_t total_outside() const { return installs_outside + reboots_outside + commits_outside; }
};

struct Report {
  std::string scenario;
  uint64_t seed = 0;
  uint32_t devices_total = 0;
  uint32_t devices_eligible = 0;  // targeted by the rollout
  uint32_t devices_updated = 0;   // committed the new version and still run it
  // The new version failed on them: install failed, trial boot fell back, or unhealthy after
  // commit (sent back or not). The split is in `outcome`.
  uint32_t devices_failed = 0;
  uint32_t devices_fell_back = 0;           // the device's own trial-boot fallback
  uint32_t devices_reverted = 0;            // healthy, sent back by a fleet rollback
  uint32_t devices_unhealthy_reverted = 0;  // reported unhealthy, then sent back
  uint32_t devices_unreachable = 0;  // in a stratum that went on, but never reached an outcome
  uint32_t devices_bricked = 0;      // not running a committed image at the end
  uint32_t devices_cancelled = 0;    // never offered: their stratum halted first
  uint32_t devices_withdrawn = 0;    // held the image, dropped it when the update was called off
  uint32_t devices_dark = 0;         // went dark in the twin (scenario `lost`, goes_silent defects)
  // Devices a fleet revert sent back by booting the image they kept in their other slot,
  // and those that downloaded the previous version (from the deployments).
  uint32_t reverts_switched_back = 0;
  uint32_t reverts_downloaded = 0;
  // The first devices the new version failed on (at most kFailedSample), each with its
  // deployment's history: what an operator reads to see why. Empty without history.
  struct FailedDevice {
    std::string device_id;
    std::string state;
    std::vector<DeploymentStep> history;
  };
  std::vector<FailedDevice> failed_sample;
  static constexpr size_t kFailedSample = 5;
  bool history_kept = true;  // false for fleets above kHistoryDevices (memory)
  static constexpr uint32_t kHistoryDevices = 200'000;
  WindowReport windows;
  std::string rollout_state;
  RolloutOutcome outcome;  // the engine's own account, as the operator API shows it
  std::vector<HaltedStratumReport> halted_strata;
  std::vector<StageReport> stages;
  std::vector<RevisionReport> revisions;  // in the scenario's order
  // From the rollout's start until 50/95/100% of the devices in strata that were not halted
  // committed the new version; empty if never.
  std::optional<double> time_to_50_percent_s;
  std::optional<double> time_to_95_percent_s;
  std::optional<double> time_to_100_percent_s;
  double rollout_started_at_s = 0;
  double simulated_seconds = 0;
  uint64_t checkins = 0;        // check-ins that went through DeviceService
  uint64_t status_reports = 0;  // status reports that went through DeviceService
  double wall_seconds = 0;
  double checkins_per_wall_second = 0;
  std::vector<UnreachedDevice> never_reached;  // pre-flight only: who the constraints never reach

  // Sorted keys, two-space indent. With `wall_fields` false, the wall-clock fields are left
  // out, which makes the output byte-identical across runs of the same scenario and seed.
  std::string to_json(bool wall_fields = true) const;
};

}  // namespace drover::sim
