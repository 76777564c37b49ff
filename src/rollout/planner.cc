#include "rollout/planner.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "base/random.h"
#include "model/version.h"

namespace drover {

std::string stratum_key(const RolloutPlan& plan, const Device& d) {
  if (plan.stratify_by.empty()) return "all";
  std::string key;
  for (StratumDimension dim : plan.stratify_by) {
    if (!key.empty()) key += '|';
    switch (dim) {
      case StratumDimension::kHardwareRevision:
        key += d.hardware_revision;
        break;
      case StratumDimension::kSite:
        key += d.site;
        break;
      case StratumDimension::kConnectivity:
        key += d.connectivity;
        break;
    }
  }
  return key;
}

TargetSet plan_targets(const RolloutPlan& plan, const Artifact& artifact,
                       const std::vector<Device>& devices, std::string_view rollout_id) {
  TargetSet out;
  const Version target = Version::parse(artifact.version).value();
  const uint64_t salt = stable_hash(rollout_id);

  struct Member {
    uint64_t order;
    const Device* device;
  };
  std::map<std::string, std::vector<Member>> strata;
  size_t total = 0;
  for (const Device& d : devices) {
    if (d.decommissioned || !plan.filter.matches(d)) continue;
    if (auto st = check_compatible(artifact, d); !st.ok()) {
      out.excluded.push_back({d.id, st.error().message});
      continue;
    }
    if (const std::string* have = d.installed_version(artifact.name)) {
      auto v = Version::parse(*have);
      if (v.ok() && !(*v < target)) {
        ++out.already_current;
        continue;
      }
    }
    strata[stratum_key(plan, d)].push_back({stable_hash(d.id, salt), &d});
    ++total;
  }

  const size_t stages = plan.stages.size();
  out.stage_sizes.assign(stages, 0);
  const bool by_count = plan.stages.front().count > 0;
  for (auto& [key, members] : strata) {
    std::sort(members.begin(), members.end(), [](const Member& a, const Member& b) {
      return a.order != b.order ? a.order < b.order : a.device->id < b.device->id;
    });
    const size_t n = members.size();
    size_t begin = 0;
    for (size_t s = 0; s < stages; ++s) {
      const double share = by_count
                               ? std::min(1.0, static_cast<double>(plan.stages[s].count) / total)
                               : plan.stages[s].percent / 100.0;
      // The tiny epsilon keeps 3 * 0.1 * 10 from rounding up to 4.
      size_t end = static_cast<size_t>(std::ceil(static_cast<double>(n) * share - 1e-9));
      if (s == 0) end = std::max<size_t>(end, std::min<size_t>(plan.min_per_stratum, n));
      if (s + 1 == stages) end = n;
      end = std::clamp(end, begin, n);
      for (size_t i = begin; i < end; ++i) {
        Deployment d;
        d.rollout_id = std::string(rollout_id);
        d.device_id = members[i].device->id;
        d.stage = static_cast<uint32_t>(s);
        d.stratum = key;
        out.deployments.push_back(std::move(d));
      }
      out.stage_sizes[s] += static_cast<uint32_t>(end - begin);
      begin = end;
    }
  }
  std::sort(out.deployments.begin(), out.deployments.end(),
            [](const Deployment& a, const Deployment& b) { return a.device_id < b.device_id; });
  return out;
}

}  // namespace drover
