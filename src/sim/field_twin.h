// The field twin (docs/health.md, "The farm's 90 days"): the story of issue 14's farm, which
// lost about a tenth of its sensors every month to stuck states and lost links, told on a
// virtual clock at fleet scale — 10,000 devices over 90 days in seconds.
//
// The devices are models with the failure modes the farm saw: a telemetry collector that
// hangs (a restart cures most), an application or driver wedged (a reboot cures it), a disk
// filled with logs (a reboot frees it, unless what fills it is kept), a modem that hangs (a
// reset of it cures most, a reboot the rest), links that drop for a while and come back, and
// real hardware faults (a dead board, a link gone for good). What judges and acts on them is
// the server's own code: the remediation rules drover serve runs (health::Remediator with
// health::default_rules), the real command queue and store, and the device service's
// check-in, whose answer carries the commands. A hung modem is out of the server's reach:
// each device runs the agent's own agent::LinkWatchdog (docs/agent.md's example: a reset
// after 2 hours without an answer, a reboot after a day), on the twin's clock, its link.json
// in memory, its reset and reboot acting on the device's model. Update downloads that get
// nowhere are reported at check-ins through the device service, where the example rules'
// update-stuck (DeviceService::in_update_state) finds them and gives them up. Only the telemetry is
// modelled rather than ingested: each device's freshness (how old its newest sample is, when
// it was last heard from) is computed from its model, as the telemetry service would judge
// it from the batches (the telemetry twin, sim/telemetry_twin.h, runs the ingest itself).
//
// A device is *lost* when it has delivered no data for 72 hours: someone has to go out to
// it. A person visits a lost device a week after it went quiet and mends it (a dead one is
// replaced). The run without remediation is the same fleet, seed and fault rates with the
// rules off: what the farm lived with.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "base/clock.h"
#include "base/result.h"

namespace drover::sim {

// What goes wrong with a device in the field.
enum class FieldFault : uint8_t {
  kCollectorHung,  // the telemetry collector hangs: checks in, sends nothing
  kAppWedged,      // the application or a driver is wedged: checks in, sends nothing
  kDiskFull,       // logs fill the disk: nothing can be queued, so nothing is sent
  kModemHung,      // the modem hangs: never heard from, its data kept until the link is back
  kLinkGone,       // the modem or antenna failed: never heard from again (hardware)
  kDead,           // the board died (hardware)
  kCount,
};
inline constexpr size_t kFieldFaultCount = static_cast<size_t>(FieldFault::kCount);
const char* to_string(FieldFault f);
// Whether only a visit can mend it.
inline bool is_hardware(FieldFault f) {
  return f == FieldFault::kLinkGone || f == FieldFault::kDead;
}
// Whether the device is out of reach while it lasts.
inline bool cuts_link(FieldFault f) { return f == FieldFault::kModemHung || is_hardware(f); }

struct FieldTwinOptions {
  uint64_t seed = 1;
  uint32_t devices = 10'000;
  uint32_t days = 90;
  // The default rules and the agents' link watchdog on; off: nobody acts until a visit.
  bool remediation = true;
  bool link_watchdog = true;  // with remediation: the agents' link watchdog too
  // Faults a device-month (30 days), by kind.
  std::array<double, kFieldFaultCount> faults_per_month = {0.035, 0.02, 0.015, 0.02, 0.003, 0.004};
  double restart_cures = 0.85;      // of collector hangs, the share a restart cures
  double reboot_frees_disk = 0.9;   // of full disks, the share a reboot frees (volatile logs)
  double modem_reset_cures = 0.75;  // of hung modems, the share a reset cures (a reboot: all)
  // Update downloads that get nowhere (an image the device cannot fetch whole), a month: the
  // device goes on sending data, but reports downloading at its check-ins until the download
  // is given up (the rule update-stuck's clear_update, or a visit).
  double updates_stuck_per_month = 0.02;
  double outages_per_month = 3;          // links that drop and come back by themselves
  Duration outage_median = minutes(45);  // lognormal, sigma 1.2, at most 36 hours
  // The farm's sensors: a sample batch every 15 minutes, a check-in every 30.
  Duration report_every = minutes(15);
  Duration check_in_every = minutes(30);
  Duration tick = minutes(5);    // the remediation rules run this often (drover serve: 1 min)
  std::string store = "memory";  // or "sqlite:PATH" (a new file)
};

struct FieldTwinReport {
  uint32_t devices = 0;
  uint32_t days = 0;
  bool remediation = false;
  double device_months = 0;
  std::array<uint32_t, kFieldFaultCount> faults{};  // onsets
  std::array<uint32_t, kFieldFaultCount> lost{};    // of them, the device lost (72 h quiet)
  uint32_t lost_total = 0;
  double loss_per_month = 0;                                 // lost / device-months
  double hardware_loss_per_month = 0;                        // of which hardware
  std::array<uint32_t, kFieldFaultCount> mended_remotely{};  // data back after a command
  uint32_t restarts = 0, reboots = 0;                        // commands the rules queued
  // What the devices' link watchdogs did: resets and reboots; of them, those while all that
  // was down was an outage that would have ended by itself (the modem was fine; a reboot
  // then may still cure another fault by the way); and the faults their resets and reboots
  // mended (counted in mended_remotely too).
  uint32_t watchdog_resets = 0, watchdog_reboots = 0;
  uint32_t watchdog_resets_on_outages = 0, watchdog_reboots_on_outages = 0;
  uint32_t watchdog_mended = 0;
  uint32_t commands_expired = 0;
  uint32_t alerts_opened = 0;
  // Alerts handed to a person: of the no-data rule (still no data after every step, the
  // device's day's budget of automatic actions spent, or a day without a step) and of the
  // offline rule.
  uint32_t escalated_no_data = 0, escalated_offline = 0, escalated_update_stuck = 0;
  // Stuck update downloads: onsets, given up by the rule's clear_update, still stuck when
  // the run ends, set right at a visit, and the device-days spent stuck (counted to the end
  // of the run).
  uint32_t updates_stuck = 0, updates_given_up = 0, stuck_at_end = 0;
  uint32_t stuck_unstuck_by_visit = 0;  // set right by a visit (for another fault)
  double stuck_days = 0;
  double stuck_worst_h = 0;          // the longest stuck before it was given up or set right
  double stuck_at_end_oldest_h = 0;  // the longest of those still stuck at the end
  uint32_t visits = 0;
  uint32_t outages = 0;
  // From a remotely mended fault's start to its data back: median and worst, minutes.
  double mend_median_min = 0, mend_worst_min = 0;
  uint32_t healthy_commanded = 0;  // commands run on a device with nothing wrong (should be 0)
  double wall_s = 0;               // the run's wall time
};

// Runs the twin. kInvalidArgument for no devices, no days, a rate below zero, or a share
// outside [0, 1].
Result<FieldTwinReport> run_field_twin(const FieldTwinOptions& options);

// The report for a person; with `without`, the same fleet without remediation beside it.
std::string describe(const FieldTwinReport& with, const FieldTwinReport* without);
// The same as JSON: {"with_rules": {...}, "without_remediation": {...} or null}, each with
// every field of the report (per-fault arrays as objects by fault name).
std::string to_json(const FieldTwinReport& with, const FieldTwinReport* without);

}  // namespace drover::sim
