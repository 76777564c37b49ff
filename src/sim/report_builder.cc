#include "sim/report_builder.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <map>
#include <optional>
#include <vector>

#include "base/units.h"

namespace drover::sim {
namespace {

using S = DeploymentState;

// The rollout's stages, each with why it grew as it did where the plane tells.
void add_stages(const ReportSources& from, const Rollout& ro, Timestamp start, Report& r) {
  auto insights = from.plane.stage_insights(from.run.rollout_id);
  for (size_t k = 0; k < ro.stages.size(); ++k) {
    const StageProgress& s = ro.stages[k];
    StageReport sr;
    sr.name = s.name;
    sr.started_at_s = to_seconds(s.started_at - start);
    sr.devices = s.devices;
    if (s.finished_at != Timestamp{}) sr.finished_at_s = to_seconds(s.finished_at - start);
    if (insights.ok() && k < insights->size()) {
      const StageInsight& in = (*insights)[k];
      sr.asked = in.sizing.asked;
      sr.planned = in.sizing.planned;
      sr.why = describe_sizing(ro.plan, in.sizing);
      sr.bound_by = in.bound_by();
      sr.held_by_window = in.window;
      sr.held_by_in_flight = in.in_flight;
      sr.held_by_rate = in.rate;
      sr.held_by_pacing = in.pacing;
    }
    r.stages.push_back(sr);
  }
}

// Without the plane's deployments, a device's stratum is found from its attributes (a
// stratum names the dimensions it is keyed on): the commit times of the devices that still
// run the new version, in strata that went on.
void add_commits_by_attributes(const ReportSources& from, const RolloutProgress& p,
                               std::vector<int64_t>& commits) {
  const FleetWorld& w = from.world;
  for (uint32_t i = 0; i < w.size(); ++i) {
    const SimDevice& d = w.device(i);
    if (d.committed_at_ms < 0 || from.devices.went_unhealthy(i)) continue;
    const bool in_halted = std::any_of(p.strata.begin(), p.strata.end(), [&](const auto& s) {
      return s.halted && (s.hardware_revision.empty() || s.hardware_revision == w.revision(i)) &&
             (s.site.empty() || s.site == w.site(i).name) &&
             (s.connectivity.empty() || s.connectivity == w.link(i).name);
    });
    if (!in_halted) commits.push_back(d.committed_at_ms);
  }
}

// Per deployment: the revision tallies, the reverts, a sample of failures with their
// history, the commit times, and for a pre-flight the devices never reached and why.
void add_deployments(const ReportSources& from, const RolloutProgress& p,
                     const std::vector<Deployment>& deps, Report& r,
                     std::vector<int64_t>& commits) {
  FleetWorld& w = from.world;
  const Scenario& sc = w.scenario();
  std::map<std::string, bool> halted;
  for (const auto& s : p.strata) halted[s.key] = s.halted;
  for (const Deployment& dep : deps) {
    const std::optional<uint32_t> at = w.index_of(dep.device_id);
    if (!at) continue;
    const uint32_t idx = *at;
    const SimDevice& d = w.device(idx);
    RevisionReport& rr = r.revisions[d.hardware_revision];
    rr.offered += dep.offers > 0 ? 1 : 0;
    rr.updated += dep.state == S::kSucceeded ? 1 : 0;
    if (dep.state == S::kReverted)
      ++(dep.switch_back ? r.reverts_switched_back : r.reverts_downloaded);
    const bool failed = is_failure(dep.state) || (is_revert(dep.state) && !dep.error.empty());
    rr.failed += failed ? 1 : 0;
    if (failed && r.history_kept && r.failed_sample.size() < Report::kFailedSample) {
      auto steps = from.plane.history(from.run.rollout_id, dep.device_id);
      if (steps.ok())
        r.failed_sample.push_back({dep.device_id, to_string(dep.state), std::move(*steps)});
    }
    if (dep.state == S::kSucceeded && !halted[dep.stratum] && d.committed_at_ms >= 0)
      commits.push_back(d.committed_at_ms);
    // Never reached: still waiting at the end, silent, or gave the image up because no
    // window fitted its install.
    const bool gave_up =
        dep.state == S::kCancelled && dep.error.starts_with("withdrawn by the device");
    if (from.preflight && !halted[dep.stratum] &&
        (dep.state == S::kPending || is_in_flight(dep.state) || dep.state == S::kSilent ||
         gave_up)) {
      std::string why = "not reached within the horizon (" + format_duration(sc.horizon) + ")";
      if (dep.state == S::kSilent) why = "silent past its check-in contract";
      if (gave_up) why = dep.error;
      if (w.link(idx).kind == LinkKind::kIntermittent && !w.links_ever_meet(idx))
        why = "its link is never online during its site's maintenance window";
      r.never_reached.push_back({dep.device_id, why});
    }
  }
}

}  // namespace

Report build_report(const ReportSources& from, Timestamp now, double wall_seconds) {
  const FleetWorld& w = from.world;
  const Scenario& sc = w.scenario();
  Report r;
  r.scenario = sc.name;
  r.seed = from.seed;
  r.devices_total = w.size();
  r.simulated_seconds = to_seconds(now - sc.start);
  r.checkins = from.devices.checkins();
  r.status_reports = from.devices.reports();
  r.wall_seconds = wall_seconds;
  r.windows = from.run.windows;
  r.checkins_per_wall_second =
      wall_seconds > 0 ? static_cast<double>(r.checkins) / wall_seconds : 0;
  for (const SimDevice& d : w.devices()) {
    if (d.phase == Phase::kRebooting || d.phase == Phase::kRollingBack) ++r.devices_bricked;
  }
  const std::string& rollout_id = from.run.rollout_id;
  if (rollout_id.empty()) return r;
  auto p = from.plane.progress(rollout_id);
  if (!p.ok()) return r;
  if (auto why = from.plane.stale()) {
    from.narrator.say("[network] the rollout's final status could not be read (" + *why +
                      "); the report shows it as last read");
  }
  const Rollout& ro = p->rollout;
  r.rollout_state = to_string(ro.state);
  r.rollout_started_at_s = to_seconds(from.run.rollout_started - sc.start);
  r.devices_eligible = ro.targets;
  r.outcome = p->outcome;
  r.devices_updated = p->outcome.updated;
  r.devices_failed = p->outcome.failed();
  r.devices_fell_back = p->outcome.fell_back;
  r.devices_reverted = p->outcome.reverted;
  r.devices_unhealthy_reverted = p->outcome.unhealthy_reverted;
  r.devices_cancelled = p->total[S::kCancelled];
  r.devices_withdrawn = from.run.withdrawn;
  r.devices_dark = w.dark();
  r.history_kept = from.plane.history_kept();
  uint32_t live = 0;
  for (const auto& s : p->strata) {
    if (s.halted) continue;
    live += s.counts.total();
    r.devices_unreachable += s.counts[S::kPending] + s.counts.in_flight();
  }
  for (const auto& h : ro.halted) {
    HaltedStratumReport hr{h.key,    0,
                           0,        h.hardware_revision,
                           h.site,   h.connectivity,
                           h.reason, to_seconds(h.halted_at - sc.start)};
    for (const auto& oh : p->outcome.halted) {
      if (oh.group == h.key) {
        hr.devices = oh.devices;
        hr.never_offered = oh.never_offered;
      }
    }
    r.halted_strata.push_back(std::move(hr));
  }
  add_stages(from, ro, sc.start, r);
  r.revisions.resize(w.revisions().size());
  for (size_t k = 0; k < w.revisions().size(); ++k)
    r.revisions[k].hardware_revision = w.revisions()[k];
  for (const SimDevice& d : w.devices()) {
    RevisionReport& rr = r.revisions[d.hardware_revision];
    ++rr.devices;
    rr.installed += d.installed_new ? 1 : 0;
  }
  std::vector<int64_t> commits;
  auto deps = from.plane.deployments(rollout_id);
  if (!deps) add_commits_by_attributes(from, *p, commits);
  if (deps && deps->ok()) add_deployments(from, *p, **deps, r, commits);
  std::sort(commits.begin(), commits.end());
  auto time_to = [&](double share) -> std::optional<double> {
    if (live == 0) return std::nullopt;
    const auto need = static_cast<size_t>(std::ceil(share * live - 1e-9));
    if (need == 0 || commits.size() < need) return std::nullopt;
    return static_cast<double>(commits[need - 1]) / 1000.0;
  };
  r.time_to_50_percent_s = time_to(0.5);
  r.time_to_95_percent_s = time_to(0.95);
  r.time_to_100_percent_s = time_to(1.0);
  return r;
}

}  // namespace drover::sim
