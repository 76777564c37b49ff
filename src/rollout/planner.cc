#include "rollout/planner.h"

#include <algorithm>
#include <cmath>
#include <optional>
#include <unordered_map>

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

  // Pass 1: which devices are targets, and in which stratum. Positions, not copies: a
  // million devices are planned in a fraction of a second.
  struct Member {
    uint64_t order;
    uint32_t device;  // position in `devices`
  };
  std::unordered_map<std::string, uint32_t> stratum_ids;
  std::vector<std::string> keys;
  std::vector<std::vector<Member>> strata;
  constexpr uint32_t kNotTarget = UINT32_MAX;
  std::vector<uint32_t> stratum_of(devices.size(), kNotTarget);
  size_t total = 0;
  std::string key;
  // Fleets run few distinct versions: parse each once, not once per device.
  std::optional<std::string> last_have;
  bool last_current = false;
  for (uint32_t i = 0; i < devices.size(); ++i) {
    const Device& d = devices[i];
    if (d.decommissioned || !plan.filter.matches(d)) continue;
    // Only the fleet: a device that enrolled without a token is not one until an operator
    // accepts it (and a rejected one never is).
    if (d.enrollment != Enrollment::kAccepted) {
      out.excluded.push_back({d.id, std::string("enrollment ") + to_string(d.enrollment) +
                                        ": not accepted into the fleet"});
      continue;
    }
    if (auto st = check_compatible(artifact, d); !st.ok()) {
      out.excluded.push_back({d.id, st.error().message});
      continue;
    }
    if (const std::string* have = d.installed_version(artifact.name)) {
      if (!last_have || *have != *last_have) {
        last_have = *have;
        auto v = Version::parse(*have);
        last_current = v.ok() && !(*v < target);
      }
      if (last_current) {
        ++out.already_current;
        continue;
      }
    }
    key = stratum_key(plan, d);
    auto [it, fresh] = stratum_ids.try_emplace(key, static_cast<uint32_t>(strata.size()));
    if (fresh) {
      keys.push_back(key);
      strata.emplace_back();
    }
    strata[it->second].push_back({stable_hash(d.id, salt), i});
    stratum_of[i] = it->second;
    ++total;
  }

  // Pass 2: each stratum's members in hash order; stage k takes the next share of them.
  const size_t stages = plan.stages.size();
  out.stage_sizes.assign(stages, 0);
  std::vector<uint32_t> stage_of(devices.size(), 0);
  const bool by_count = plan.stages.front().count > 0;
  for (auto& members : strata) {
    std::sort(members.begin(), members.end(), [&](const Member& a, const Member& b) {
      return a.order != b.order ? a.order < b.order : devices[a.device].id < devices[b.device].id;
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
      for (size_t i = begin; i < end; ++i) stage_of[members[i].device] = static_cast<uint32_t>(s);
      out.stage_sizes[s] += static_cast<uint32_t>(end - begin);
      begin = end;
    }
  }

  // Pass 3: the deployments, in device id order (the registry's order is usually that
  // already; sorting positions is cheap when it is not).
  std::vector<uint32_t> order;
  order.reserve(total);
  for (uint32_t i = 0; i < devices.size(); ++i) {
    if (stratum_of[i] != kNotTarget) order.push_back(i);
  }
  auto by_id = [&](uint32_t a, uint32_t b) { return devices[a].id < devices[b].id; };
  if (!std::is_sorted(order.begin(), order.end(), by_id))
    std::sort(order.begin(), order.end(), by_id);
  out.deployments.resize(order.size());
  for (size_t k = 0; k < order.size(); ++k) {
    Deployment& d = out.deployments[k];
    d.rollout_id = std::string(rollout_id);
    d.device_id = devices[order[k]].id;
    d.stage = stage_of[order[k]];
    d.stratum = keys[stratum_of[order[k]]];
  }
  return out;
}

}  // namespace drover
