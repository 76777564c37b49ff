#include "rollout/queries.h"

#include <algorithm>
#include <tuple>

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
