#include "rollout/queries.h"

#include <algorithm>
#include <tuple>
#include <utility>

#include "rollout/deployment_machine.h"

namespace drover {

Result<std::vector<Rollout>> RolloutQueries::list() { return store_.list_rollouts(); }

Result<Store::DeploymentPage> RolloutQueries::deployments(const std::string& rollout_id,
                                                          std::optional<DeploymentState> state,
                                                          std::string_view after, size_t limit) {
  DROVER_TRY(engine_.get(rollout_id));  // kNotFound for a rollout that does not exist
  return store_.page_deployments(rollout_id, state, after, limit);
}

Result<DeploymentDetail> RolloutQueries::deployment(const std::string& rollout_id,
                                                    const std::string& device_id) {
  auto d = store_.get_deployment(rollout_id, device_id);
  if (!d.ok()) return d.error();
  if (!d->has_value())
    return not_found("device '" + device_id + "' is not in rollout " + rollout_id);
  auto steps = store_.list_deployment_steps(rollout_id, device_id);
  if (!steps.ok()) return steps.error();
  return DeploymentDetail{std::move(**d), std::move(*steps)};
}

Result<std::vector<RolloutQueries::DeviceDeployment>> RolloutQueries::device_history(
    const std::string& device_id, size_t limit) {
  auto rollouts = store_.list_rollouts();
  if (!rollouts.ok()) return rollouts.error();
  std::sort(rollouts->begin(), rollouts->end(), [](const Rollout& a, const Rollout& b) {
    return std::tie(a.created_at, a.id) > std::tie(b.created_at, b.id);
  });
  std::vector<DeviceDeployment> out;
  for (Rollout& r : *rollouts) {
    if (out.size() == limit) break;
    auto d = deployment(r.id, device_id);
    if (!d.ok() && d.error().code == ErrorCode::kNotFound) continue;
    if (!d.ok()) return d.error();
    out.push_back({std::move(r), std::move(*d)});
  }
  return out;
}

namespace {

// One series' event times, sorted, then counted at each point.
struct SeriesTimes {
  std::vector<int64_t> offered, succeeded, failed, reverted;

  void add(const Deployment& d) {
    const int64_t changed = d.updated_at.time_since_epoch().count();
    if (d.offered_at != Timestamp{}) offered.push_back(d.offered_at.time_since_epoch().count());
    if (d.state == DeploymentState::kSucceeded) succeeded.push_back(changed);
    // As the twin's report counts them: a forward failure, or a revert that came of one.
    if (is_failure(d.state) || (is_revert(d.state) && !d.error.empty()))
      failed.push_back(changed);
    else if (d.state == DeploymentState::kReverted)  // sent back (not pending or under way)
      reverted.push_back(changed);
  }

  Timeline::Series counted(std::string name, const std::vector<Timestamp>& at) {
    Timeline::Series s;
    s.name = std::move(name);
    for (auto [times, out] : {std::pair{&offered, &s.offered}, std::pair{&succeeded, &s.succeeded},
                              std::pair{&failed, &s.failed}, std::pair{&reverted, &s.reverted}}) {
      std::sort(times->begin(), times->end());
      out->reserve(at.size());
      for (const Timestamp t : at) {
        out->push_back(static_cast<uint32_t>(
            std::upper_bound(times->begin(), times->end(), t.time_since_epoch().count()) -
            times->begin()));
      }
    }
    return s;
  }
};

}  // namespace

Result<Timeline> RolloutQueries::timeline(const std::string& rollout_id, const std::string& stratum,
                                          size_t points, Timestamp now) {
  if (points < 2 || points > kMaxTimelinePoints)
    return invalid_argument("points must be from 2 to " + std::to_string(kMaxTimelinePoints));
  auto rollout = engine_.get(rollout_id);
  if (!rollout.ok()) return rollout.error();
  if (rollout->started_at == Timestamp{})
    return Error{ErrorCode::kFailedPrecondition, "rollout " + rollout_id + " has not started"};
  auto deployments = store_.list_deployments(rollout_id);
  if (!deployments.ok()) return deployments.error();
  Timeline out;
  const Timestamp from = rollout->started_at;
  Timestamp until = rollout->finished_at != Timestamp{} ? rollout->finished_at : now;
  // A rollback or a watch goes on after the last stage: the last change ends the picture.
  for (const Deployment& d : *deployments) until = std::max(until, d.updated_at);
  until = std::max(until, from + seconds(1));
  for (size_t k = 0; k < points; ++k) {
    out.at.push_back(from +
                     (until - from) * static_cast<int64_t>(k) / static_cast<int64_t>(points - 1));
  }
  SeriesTimes all, one;
  std::vector<SeriesTimes> stages(rollout->plan.stages.size());
  for (const Deployment& d : *deployments) {
    ++out.strata[d.stratum];
    if (!stratum.empty()) {
      if (d.stratum == stratum) one.add(d);
      continue;
    }
    all.add(d);
    if (d.stage < stages.size() && d.offered_at != Timestamp{}) stages[d.stage].add(d);
  }
  if (!stratum.empty()) {
    if (!out.strata.contains(stratum))
      return not_found("rollout " + rollout_id + " has no stratum '" + stratum + "'");
    out.series.push_back(one.counted("stratum:" + stratum, out.at));
    return out;
  }
  out.series.push_back(all.counted("all", out.at));
  for (size_t k = 0; k < stages.size(); ++k)
    out.series.push_back(stages[k].counted("stage:" + rollout->plan.stages[k].name, out.at));
  return out;
}

Result<TargetSet> RolloutQueries::targets(const RolloutPlan& plan) {
  auto art = store_.get_artifact(plan.artifact_name, plan.artifact_version);
  if (!art.ok()) return art.error();
  if (!art->has_value()) {
    return Error{ErrorCode::kFailedPrecondition, "artifact " + plan.artifact_name + "@" +
                                                     plan.artifact_version + " is not uploaded"};
  }
  auto devices = store_.list_devices();
  if (!devices.ok()) return devices.error();
  return plan_targets(plan, **art, *devices, "preview");
}

Result<RollbackPreview> RolloutQueries::rollback_of(const RolloutPlan& plan, const TargetSet& t) {
  std::map<std::string, bool> known;  // version -> uploaded: each looked up once
  std::optional<Error> failed;
  auto uploaded = [&](const std::string& version) {
    auto [it, fresh] = known.try_emplace(version, false);
    if (fresh) {
      auto got = store_.get_artifact(plan.artifact_name, version);
      if (!got.ok() && !failed) failed = got.error();
      it->second = got.ok() && got->has_value();
    }
    return it->second;
  };
  RollbackPreview out;
  out.gaps = revert_gaps(t.previous, uploaded);
  for (const RevertGap& g : out.gaps) out.not_revertible += g.devices;
  for (const PreviousVersion& p : t.previous) {
    if (p.version.empty()) continue;
    out.switch_back += p.keep_image;
    if (uploaded(p.version)) out.download += p.devices - p.keep_image;
  }
  // A store that failed would pass for "not uploaded": said as the failure it is.
  if (failed) return *failed;
  return out;
}

Result<RollbackPreview> RolloutQueries::rollback_preview(const RolloutPlan& plan) {
  auto t = targets(plan);
  if (!t.ok()) return t.error();
  return rollback_of(plan, *t);
}

Result<PlanPreview> RolloutQueries::preview(const RolloutPlan& plan) {
  DROVER_TRY(validate(plan));
  auto t = targets(plan);
  if (!t.ok()) return t.error();
  PlanPreview out;
  out.targets = t->deployments.size();
  out.already_current = t->already_current;
  for (const Deployment& d : t->deployments) ++out.strata[d.stratum];
  uint32_t cumulative = 0;
  for (size_t i = 0; i < t->stage_sizes.size(); ++i) {
    cumulative += t->stage_sizes[i];
    const StageNote& note = t->stage_notes[i];
    out.stages.push_back({plan.stages[i].name, t->stage_sizes[i], cumulative, note.asked,
                          describe_sizing(plan, note)});
  }
  auto rollback = rollback_of(plan, *t);
  if (!rollback.ok()) return rollback.error();
  out.rollback = std::move(*rollback);
  out.excluded = std::move(t->excluded);
  return out;
}

}  // namespace drover
