#include "sim/simulator_impl.h"

namespace drover::sim::detail {

// ---------------------------------------------------------------- narration

std::string Simulator::stamp(Timestamp t) const {
  const int64_t s = std::chrono::duration_cast<std::chrono::seconds>(t - sc_.start).count();
  char buf[64];
  std::snprintf(buf, sizeof buf, "T+%02lld:%02lld:%02lld", static_cast<long long>(s / 3600),
                static_cast<long long>(s / 60 % 60), static_cast<long long>(s % 60));
  return std::string(buf) + "  " + format_utc_timestamp(t).substr(11, 5) + "Z";
}

void Simulator::say(const std::string& line) {
  if (opt_.timeline) opt_.timeline(stamp(clock_.now()) + "  " + line);
}

void Simulator::tell_device(uint32_t dev, const std::string& what, uint32_t& told) {
  if (++told > kDeviceLines) return;
  const SimDevice& d = devices_[dev];
  say("[device] " + name_of(dev).str() + " (" + revisions_[d.hardware_revision] + ", " +
      sites_[d.site].name + "): " + what +
      (told == kDeviceLines ? " (further devices like this are counted, not listed)" : ""));
}

void Simulator::on_engine_event(const EngineEvent& e) {
  std::string line = stamp(e.at) + "  [" + to_string(e.kind) + "] " + e.text;
  if (!opt_.network) {
    if (opt_.timeline) opt_.timeline(line);
    return;
  }
  // A network run: the engine may speak on the server's thread; the driving thread tells.
  MutexLock lock(held_mu_);
  held_lines_.push_back(std::move(line));
}

void Simulator::flush_engine_lines() {
  if (!opt_.network) return;
  std::vector<std::string> lines;
  {
    MutexLock lock(held_mu_);
    lines.swap(held_lines_);
  }
  if (opt_.timeline)
    for (const auto& line : lines) opt_.timeline(line);
}

void Simulator::check_done() {
  if (rollout_id_.empty() || rollout_over_) return;
  auto p = plane_->summary(rollout_id_);
  if (!p.ok()) return;
  const uint32_t live = p->live.total();
  const uint32_t updated = p->total[DeploymentState::kSucceeded];
  while (next_milestone_ <= 10 && live > 0 &&
         updated * 10 >= static_cast<uint32_t>(next_milestone_) * live) {
    say("[progress] " + std::to_string(next_milestone_ * 10) +
        "% of the devices in healthy strata updated (" + std::to_string(updated) + " of " +
        std::to_string(live) + ")");
    ++next_milestone_;
  }
  const uint32_t moving = p->total.in_flight() + p->total[DeploymentState::kRevertPending];
  if (is_terminal(p->state) && moving == 0) rollout_over_ = true;
  if (opt_.progress) {
    opt_.progress(static_cast<double>((clock_.now() - sc_.start).count()) /
                      static_cast<double>(sc_.horizon.count()),
                  updated, p->targets);
  }
}

Report Simulator::finish(double wall_seconds) {
  Report r;
  r.scenario = sc_.name;
  r.seed = seed_;
  r.devices_total = static_cast<uint32_t>(devices_.size());
  r.simulated_seconds = to_seconds(clock_.now() - sc_.start);
  r.checkins = net_ ? net_->checkins() : checkins_;
  r.status_reports = net_ ? net_->reports() : reports_;
  r.wall_seconds = wall_seconds;
  r.windows = windows_report_;
  r.checkins_per_wall_second =
      wall_seconds > 0 ? static_cast<double>(r.checkins) / wall_seconds : 0;
  for (const auto& d : devices_) {
    if (d.phase == Phase::kRebooting || d.phase == Phase::kRollingBack) ++r.devices_bricked;
  }
  if (rollout_id_.empty()) return r;
  auto p = plane_->progress(rollout_id_);
  if (!p.ok()) return r;
  if (auto why = plane_->stale()) {
    say("[network] the rollout's final status could not be read (" + *why +
        "); the report shows it as last read");
  }
  const Rollout& ro = p->rollout;
  const StateCounts& t = p->total;
  using S = DeploymentState;
  r.rollout_state = to_string(ro.state);
  r.rollout_started_at_s = to_seconds(rollout_started_ - sc_.start);
  r.devices_eligible = ro.targets;
  r.outcome = p->outcome;
  r.devices_updated = p->outcome.updated;
  r.devices_failed = p->outcome.failed();
  r.devices_fell_back = p->outcome.fell_back;
  r.devices_reverted = p->outcome.reverted;
  r.devices_unhealthy_reverted = p->outcome.unhealthy_reverted;
  r.devices_cancelled = t[S::kCancelled];
  r.devices_withdrawn = withdrawn_;
  r.devices_dark = dark_;
  r.history_kept = plane_->history_kept();
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
                           h.reason, to_seconds(h.halted_at - sc_.start)};
    for (const auto& oh : p->outcome.halted) {
      if (oh.group == h.key) {
        hr.devices = oh.devices;
        hr.never_offered = oh.never_offered;
      }
    }
    r.halted_strata.push_back(std::move(hr));
  }
  auto insights = plane_->stage_insights(rollout_id_);
  for (size_t k = 0; k < ro.stages.size(); ++k) {
    const StageProgress& s = ro.stages[k];
    StageReport sr;
    sr.name = s.name;
    sr.started_at_s = to_seconds(s.started_at - sc_.start);
    sr.devices = s.devices;
    if (s.finished_at != Timestamp{}) sr.finished_at_s = to_seconds(s.finished_at - sc_.start);
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
  // Commit times of the devices that still run the new version, in strata that went on.
  std::vector<int64_t> commits;
  auto deps = plane_->deployments(rollout_id_);
  if (!deps) {
    // The plane's deployments are not at hand: a device's stratum is found from its
    // attributes (a stratum names the dimensions it is keyed on).
    for (uint32_t i = 0; i < devices_.size(); ++i) {
      const SimDevice& d = devices_[i];
      if (d.committed_at_ms < 0 || !net_unhealthy_[i].first.empty()) continue;
      const bool in_halted = std::any_of(p->strata.begin(), p->strata.end(), [&](const auto& s) {
        return s.halted &&
               (s.hardware_revision.empty() ||
                s.hardware_revision == revisions_[d.hardware_revision]) &&
               (s.site.empty() || s.site == sites_[d.site].name) &&
               (s.connectivity.empty() || s.connectivity == sc_.connectivity[d.connectivity].name);
      });
      if (!in_halted) commits.push_back(d.committed_at_ms);
    }
  }
  r.revisions.resize(revisions_.size());
  for (size_t k = 0; k < revisions_.size(); ++k) r.revisions[k].hardware_revision = revisions_[k];
  for (const SimDevice& d : devices_) {
    RevisionReport& rr = r.revisions[d.hardware_revision];
    ++rr.devices;
    rr.installed += d.installed_new ? 1 : 0;
  }
  if (deps && deps->ok()) {
    std::map<std::string, bool> halted;
    for (const auto& s : p->strata) halted[s.key] = s.halted;
    for (const Deployment& dep : **deps) {
      const uint32_t idx =
          static_cast<uint32_t>(std::strtoul(dep.device_id.c_str() + 4, nullptr, 10)) - 1;
      if (idx >= devices_.size()) continue;
      RevisionReport& rr = r.revisions[devices_[idx].hardware_revision];
      rr.offered += dep.offers > 0 ? 1 : 0;
      rr.updated += dep.state == S::kSucceeded ? 1 : 0;
      if (dep.state == S::kReverted)
        ++(dep.switch_back ? r.reverts_switched_back : r.reverts_downloaded);
      const bool failed = is_failure(dep.state) || (is_revert(dep.state) && !dep.error.empty());
      rr.failed += failed ? 1 : 0;
      if (failed && r.history_kept && r.failed_sample.size() < Report::kFailedSample) {
        auto steps = plane_->history(rollout_id_, dep.device_id);
        if (steps.ok())
          r.failed_sample.push_back({dep.device_id, to_string(dep.state), std::move(*steps)});
      }
      if (dep.state == S::kSucceeded && !halted[dep.stratum] &&
          devices_[idx].committed_at_ms >= 0) {
        commits.push_back(devices_[idx].committed_at_ms);
      }
      // Never reached: still waiting at the end, silent, or gave the image up because no
      // window fitted its install.
      const bool gave_up =
          dep.state == S::kCancelled && dep.error.starts_with("withdrawn by the device");
      if (opt_.preflight && !halted[dep.stratum] &&
          (dep.state == S::kPending || is_in_flight(dep.state) || dep.state == S::kSilent ||
           gave_up)) {
        const bool intermittent =
            sc_.connectivity[devices_[idx].connectivity].kind == LinkKind::kIntermittent;
        std::string why = "not reached within the horizon (" + format_duration(sc_.horizon) + ")";
        if (dep.state == S::kSilent) why = "silent past its check-in contract";
        if (gave_up) why = dep.error;
        if (intermittent && !links_ever_meet(idx)) {
          why = "its link is never online during its site's maintenance window";
        }
        r.never_reached.push_back({dep.device_id, why});
      }
    }
  }
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

}  // namespace drover::sim::detail
