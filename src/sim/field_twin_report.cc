// The field twin's report for a person and as JSON (sim/field_twin.h): describe(), to_json(),
// and the fault names.
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "base/units.h"
#include "sim/field_twin.h"

namespace drover::sim {

const char* to_string(FieldFault f) {
  switch (f) {
    case FieldFault::kCollectorHung:
      return "collector hung";
    case FieldFault::kAppWedged:
      return "application wedged";
    case FieldFault::kDiskFull:
      return "disk full";
    case FieldFault::kModemHung:
      return "modem hung";
    case FieldFault::kLinkGone:
      return "link gone (hardware)";
    case FieldFault::kDead:
      return "board dead (hardware)";
    case FieldFault::kCount:
      break;
  }
  return "?";
}

std::string describe(const FieldTwinReport& with, const FieldTwinReport* without) {
  std::string out;
  char line[640];
  std::snprintf(line, sizeof line,
                "The farm's %u days on the twin: %u soil sensors, a batch every 15 minutes and a "
                "check-in every 30,\nrun by drover serve's remediation rules (with the example "
                "rules' update-stuck) and each\ndevice's link watchdog. A sensor quiet for 72 "
                "hours is lost: someone drives out to it (a week\nafter it went quiet).\n\n",
                with.days, with.devices);
  out += line;
  const char* const kNone = "";
  std::snprintf(line, sizeof line, "  %-24s %-23s %s\n", kNone,
                without != nullptr ? "without remediation" : kNone, "with Drover's rules");
  out += line;
  std::snprintf(line, sizeof line, "  %-24s %8s %8s      %8s %8s %8s\n", "fault", "faults", "lost",
                "faults", "lost", "mended");
  out += line;
  for (size_t k = 0; k < kFieldFaultCount; ++k) {
    std::snprintf(line, sizeof line, "  %-24s", to_string(static_cast<FieldFault>(k)));
    out += line;
    if (without != nullptr) {
      std::snprintf(line, sizeof line, " %8u %8u", without->faults[k], without->lost[k]);
    } else {
      std::snprintf(line, sizeof line, " %8s %8s", "-", "-");
    }
    out += line;
    std::snprintf(line, sizeof line, "      %8u %8u %8u\n", with.faults[k], with.lost[k],
                  with.mended_remotely[k]);
    out += line;
  }
  auto rate = [](const FieldTwinReport& r) {
    char text[64];
    std::snprintf(text, sizeof text, "%.2f%%", 100 * r.loss_per_month);
    return std::string(text);
  };
  std::snprintf(line, sizeof line, "  %-24s %17s      %17s   (hardware %.2f%%)\n\n", "lost a month",
                without != nullptr ? rate(*without).c_str() : "-", rate(with).c_str(),
                100 * with.hardware_loss_per_month);
  out += line;
  std::snprintf(
      line, sizeof line,
      "  With the rules, data came back a median %.0f min after a fault (at worst %s, "
      "outages included).\n"
      "  They queued %u collector restarts and %u reboots (%u expired before the "
      "device was back; %u ran on a\n  device with nothing wrong) and opened %u "
      "alerts; handed to a person: %u still without data after\n  every step, with "
      "the day's 3 automatic actions spent or a day without a step, %u offline for a day.\n",
      with.mend_median_min,
      format_duration(minutes(static_cast<int64_t>(std::llround(with.mend_worst_min)))).c_str(),
      with.restarts, with.reboots, with.commands_expired, with.healthy_commanded,
      with.alerts_opened, with.escalated_no_data, with.escalated_offline);
  out += line;
  std::snprintf(line, sizeof line,
                "  The devices' link watchdogs reset their modems %u times and rebooted %u times, "
                "mending %u faults\n  (%u resets and %u reboots during outages that ended by "
                "themselves).\n",
                with.watchdog_resets, with.watchdog_reboots, with.watchdog_mended,
                with.watchdog_resets_on_outages, with.watchdog_reboots_on_outages);
  out += line;
  std::snprintf(line, sizeof line,
                "  %u update downloads got stuck: %u given up by the update-stuck rule (%u handed "
                "to a person), %u\n  set right at a visit, %u still stuck at the end; %.0f "
                "device-days stuck, at worst %.1f hours",
                with.updates_stuck, with.updates_given_up, with.escalated_update_stuck,
                with.stuck_unstuck_by_visit, with.stuck_at_end, with.stuck_days,
                with.stuck_worst_h);
  out += line;
  if (without != nullptr) {
    std::snprintf(line, sizeof line, " (without remediation: %u stuck, %.0f device-days)",
                  without->updates_stuck, without->stuck_days);
    out += line;
  }
  out += ".\n";
  std::snprintf(line, sizeof line, "  %u link outages came back by themselves. Run in %.1f s",
                with.outages, with.wall_s);
  out += line;
  if (without != nullptr) {
    std::snprintf(line, sizeof line, " (%.1f s without remediation)", without->wall_s);
    out += line;
  }
  out += ".\n";
  return out;
}

namespace {

nlohmann::json json_of(const FieldTwinReport& r) {
  auto by_fault = [](const std::array<uint32_t, kFieldFaultCount>& a) {
    static constexpr const char* kKeys[kFieldFaultCount] = {
        "collector_hung", "app_wedged", "disk_full", "modem_hung", "link_gone", "dead"};
    nlohmann::json j = nlohmann::json::object();
    for (size_t k = 0; k < kFieldFaultCount; ++k) j[kKeys[k]] = a[k];
    return j;
  };
  return {{"devices", r.devices},
          {"days", r.days},
          {"remediation", r.remediation},
          {"device_months", r.device_months},
          {"faults", by_fault(r.faults)},
          {"lost", by_fault(r.lost)},
          {"lost_total", r.lost_total},
          {"loss_per_month", r.loss_per_month},
          {"hardware_loss_per_month", r.hardware_loss_per_month},
          {"mended_remotely", by_fault(r.mended_remotely)},
          {"restarts", r.restarts},
          {"reboots", r.reboots},
          {"watchdog_resets", r.watchdog_resets},
          {"watchdog_reboots", r.watchdog_reboots},
          {"watchdog_resets_on_outages", r.watchdog_resets_on_outages},
          {"watchdog_reboots_on_outages", r.watchdog_reboots_on_outages},
          {"watchdog_mended", r.watchdog_mended},
          {"commands_expired", r.commands_expired},
          {"alerts_opened", r.alerts_opened},
          {"escalated_no_data", r.escalated_no_data},
          {"escalated_offline", r.escalated_offline},
          {"escalated_update_stuck", r.escalated_update_stuck},
          {"updates_stuck", r.updates_stuck},
          {"updates_given_up", r.updates_given_up},
          {"stuck_at_end", r.stuck_at_end},
          {"stuck_days", r.stuck_days},
          {"stuck_unstuck_by_visit", r.stuck_unstuck_by_visit},
          {"stuck_worst_h", r.stuck_worst_h},
          {"stuck_at_end_oldest_h", r.stuck_at_end_oldest_h},
          {"visits", r.visits},
          {"outages", r.outages},
          {"mend_median_min", r.mend_median_min},
          {"mend_worst_min", r.mend_worst_min},
          {"healthy_commanded", r.healthy_commanded},
          {"wall_s", r.wall_s}};
}

}  // namespace

std::string to_json(const FieldTwinReport& with, const FieldTwinReport* without) {
  nlohmann::json j = {{"with_rules", json_of(with)},
                      {"without_remediation", without ? json_of(*without) : nlohmann::json()}};
  return j.dump(2) + "\n";
}

}  // namespace drover::sim
