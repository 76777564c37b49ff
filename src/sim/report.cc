#include "sim/report.h"

#include <nlohmann/json.hpp>

#include "base/units.h"
#include "model/codec_json.h"

namespace drover::sim {

std::string Report::to_json(bool wall_fields) const {
  using nlohmann::json;
  auto opt = [](const std::optional<double>& v) { return v ? json(*v) : json(nullptr); };
  json halted = json::array();
  for (const auto& h : halted_strata) {
    json j{{"group", h.group},
           {"reason", h.reason},
           {"halted_at_s", h.halted_at_s},
           {"devices", h.devices},
           {"never_offered", h.never_offered}};
    if (!h.hardware_revision.empty()) j["hardware_revision"] = h.hardware_revision;
    if (!h.site.empty()) j["site"] = h.site;
    if (!h.connectivity.empty()) j["connectivity"] = h.connectivity;
    halted.push_back(j);
  }
  json st = json::array();
  for (const auto& s : stages) {
    json j{{"name", s.name},
           {"started_at_s", s.started_at_s},
           {"finished_at_s", opt(s.finished_at_s)},
           {"devices", s.devices}};
    if (s.asked) {
      j["asked"] = *s.asked;
      j["planned"] = s.planned;
      j["why"] = s.why;
      j["bound_by"] = s.bound_by;
      j["held_back"] = {{"window", s.held_by_window},
                        {"max_in_flight", s.held_by_in_flight},
                        {"rate", s.held_by_rate},
                        {"pacing", s.held_by_pacing}};
    }
    st.push_back(j);
  }
  json revs = json::array();
  for (const auto& v : revisions) {
    revs.push_back({{"hardware_revision", v.hardware_revision},
                    {"devices", v.devices},
                    {"offered", v.offered},
                    {"installed", v.installed},
                    {"updated", v.updated},
                    {"failed", v.failed}});
  }
  json j{{"scenario", scenario},
         {"seed", seed},
         {"devices_total", devices_total},
         {"devices_eligible", devices_eligible},
         {"devices_updated", devices_updated},
         {"devices_failed", devices_failed},
         {"devices_fell_back", devices_fell_back},
         {"devices_reverted", devices_reverted},
         {"devices_unhealthy_reverted", devices_unhealthy_reverted},
         {"outcome", outcome_json(outcome)},
         {"devices_unreachable", devices_unreachable},
         {"devices_bricked", devices_bricked},
         {"devices_cancelled", devices_cancelled},
         {"devices_withdrawn", devices_withdrawn},
         {"devices_dark", devices_dark},
         {"reverts_switched_back", reverts_switched_back},
         {"reverts_downloaded", reverts_downloaded},
         {"history_kept", history_kept},
         {"windows",
          {{"installs_outside", windows.installs_outside},
           {"reboots_outside", windows.reboots_outside},
           {"commits_outside", windows.commits_outside},
           {"held_for_window", windows.held}}},
         {"rollout_state", rollout_state},
         {"halted_strata", halted},
         {"stages", st},
         {"revisions", revs},
         {"time_to_50_percent_s", opt(time_to_50_percent_s)},
         {"time_to_95_percent_s", opt(time_to_95_percent_s)},
         {"time_to_100_percent_s", opt(time_to_100_percent_s)},
         {"rollout_started_at_s", rollout_started_at_s},
         {"simulated_seconds", simulated_seconds},
         {"checkins", checkins},
         {"status_reports", status_reports}};
  if (!failed_sample.empty()) {
    json fs = json::array();
    for (const auto& f : failed_sample) {
      json steps = json::array();
      for (const DeploymentStep& s : f.history) {
        steps.push_back({{"at", format_utc_timestamp(s.at)},
                         {"event", s.event},
                         {"state", to_string(s.state)},
                         {"message", s.message}});
      }
      fs.push_back({{"device_id", f.device_id}, {"state", f.state}, {"history", steps}});
    }
    j["failed_sample"] = fs;
  }
  if (!never_reached.empty()) {
    json nr = json::array();
    for (const auto& u : never_reached)
      nr.push_back({{"device_id", u.device_id}, {"reason", u.reason}});
    j["never_reached"] = nr;
  }
  if (wall_fields) {
    j["wall_seconds"] = wall_seconds;
    j["checkins_per_wall_second"] = checkins_per_wall_second;
  }
  return j.dump(2) + "\n";
}

}  // namespace drover::sim
