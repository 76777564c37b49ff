#include "rollout/loaded_rollout.h"

#include <iterator>
#include <unordered_map>

namespace drover {

Result<std::unique_ptr<LoadedRollout>> assemble_rollout(Rollout r, Artifact artifact,
                                                        std::vector<Deployment> deps,
                                                        Timestamp now) {
  auto a = std::make_unique<LoadedRollout>();
  a->artifact = std::move(artifact);
  a->target = Version::parse(a->artifact.version).value();
  a->deps.assign(std::make_move_iterator(deps.begin()), std::make_move_iterator(deps.end()));
  deps = {};
  a->rollout = std::move(r);
  a->limiter = RateLimiter(a->rollout.plan.constraints, a->rollout.started_at);
  const RolloutPlan& plan = a->rollout.plan;
  const size_t stages = plan.stages.size();
  if (stages == 0 || stages > 100) {
    return Error{ErrorCode::kCorruption,
                 "rollout " + a->rollout.id + " has " + std::to_string(stages) + " stages"};
  }

  // A limit of 0 (no failure tolerated) needs no test: judge_node halts on any failure.
  if (plan.gate.max_failure_rate > 0)
    a->test = FailureTest(plan.gate.acceptable(), plan.gate.max_failure_rate);
  // Strata come from the deployments' keys, in the order first seen; each hangs under the
  // gate nodes of its key's prefixes (gate_tree.h).
  std::unordered_map<std::string, uint32_t> stratum_ids;
  std::vector<std::string> keys;
  for (const Deployment& d : a->deps) {
    if (stratum_ids.try_emplace(d.stratum, static_cast<uint32_t>(keys.size())).second)
      keys.push_back(d.stratum);
  }
  GateTree tree = build_gate_tree(keys, plan.stratify_by, plan.gate.confidence,
                                  1 + static_cast<uint32_t>(plan.gate.health.size()));
  a->nodes = std::move(tree.nodes);
  for (size_t k = 0; k < keys.size(); ++k) {
    LoadedRollout::Stratum s;
    s.key = std::move(keys[k]);
    s.per_stage.resize(stages);
    s.path = std::move(tree.paths[k]);
    const GateNode& own = a->nodes[s.path.back()];
    s.hardware_revision = own.hardware_revision;
    s.site = own.site;
    s.connectivity = own.connectivity;
    s.pace = s.path[std::min<size_t>(1, s.path.size() - 1)];
    s.health.resize(plan.gate.health.size());
    a->strata.push_back(std::move(s));
  }
  a->hot.resize(a->deps.size());
  a->heard.resize(a->deps.size());
  a->heard_epoch = now;
  a->insights.resize(stages);
  a->stage_totals.resize(stages);
  for (uint32_t i = 0; i < a->deps.size(); ++i) {
    const Deployment& d = a->deps[i];
    if (d.stage >= stages) {
      return Error{ErrorCode::kCorruption, "deployment " + d.rollout_id + "/" + d.device_id +
                                               " has stage " + std::to_string(d.stage) +
                                               " beyond the plan"};
    }
    const uint32_t stratum = stratum_ids.at(d.stratum);
    a->hot[i] = {stratum, static_cast<uint8_t>(d.stage), d.state};
    a->strata[stratum].deps.push_back(i);
    a->count(d, +1);
  }
  // Health gates: who is in a pair already, on either side.
  if (!plan.gate.health.empty()) {
    a->health_used.assign(a->deps.size(), 0);
    std::unordered_map<std::string_view, uint32_t> index;
    for (uint32_t i = 0; i < a->deps.size(); ++i) index.emplace(a->deps[i].device_id, i);
    for (uint32_t i = 0; i < a->deps.size(); ++i) {
      const Deployment& d = a->deps[i];
      if (d.health.empty()) continue;
      a->health_used[i] = 1;
      if (auto it = index.find(d.health_partner); it != index.end()) a->health_used[it->second] = 1;
    }
  }
  a->refresh_halts();
  return a;
}

}  // namespace drover
