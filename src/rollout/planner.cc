#include "rollout/planner.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <unordered_map>

#include "base/random.h"
#include "model/version.h"
#include "rollout/gate_tree.h"
#include "rollout/gates.h"

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

uint32_t canary_minimum(const GatePolicy& gate, double alpha, uint32_t group_size) {
  const auto floor = std::min<uint32_t>(gate.min_sample, group_size);
  if (gate.max_failure_rate <= 0) return floor;  // any failure halts: min_sample is enough
  const double rate = std::min(0.999, kCanaryDetects * gate.max_failure_rate);
  const FailureTest test(gate.acceptable(), gate.max_failure_rate);
  const double threshold = -std::log(alpha);
  // For each n, f* is the fewest failures among n that halt; the chance of at least f* is a
  // binomial tail. f* only grows with n, so it is carried along.
  // n steps by 1/64 of itself past the first hundred: the answer is within 2% of the least,
  // and a group that can never get there costs a few hundred looks, not millions.
  int64_t f = 0;
  for (uint32_t n = std::max<uint32_t>(floor, 1); n <= group_size;
       n += std::max<uint32_t>(1, n / 64)) {
    while (f <= n && test.log_evidence(f, n) < threshold) ++f;
    if (f > n) continue;
    double tail = 0;
    for (int64_t k = f; k <= n; ++k) {
      const double log_pmf = log_choose(n, k) + static_cast<double>(k) * std::log(rate) +
                             static_cast<double>(n - k) * std::log1p(-rate);
      tail += std::exp(log_pmf);
    }
    if (tail >= kCanaryPower) return std::max(floor, n);
  }
  return group_size;
}

namespace {

// Splits `quota` devices of a group over its strata in proportion to their sizes: each gets
// the whole part of its share, and the fractions are settled by systematic sampling (points
// u, u + 1, ... over the strata in a salted order), so that each stratum's expected count is
// exactly its share and the total is exactly `quota`. Small strata thus share the places:
// one with a quarter of a place gets one in a quarter of rollouts.
void apportion(const std::vector<uint32_t>& members, const std::vector<uint32_t>& sizes,
               const std::vector<std::string>& keys, uint64_t total, uint64_t quota, uint64_t salt,
               std::vector<uint32_t>& out) {
  if (total == 0) return;
  std::vector<double> fraction(members.size());
  uint64_t given = 0;
  for (size_t k = 0; k < members.size(); ++k) {
    const uint32_t j = members[k];
    // Exact in integers: the whole part, and the remainder as a fraction of `total`.
    const uint64_t scaled = static_cast<uint64_t>(sizes[j]) * quota;
    out[j] = static_cast<uint32_t>(scaled / total);
    fraction[k] = static_cast<double>(scaled % total) / static_cast<double>(total);
    given += out[j];
  }
  uint64_t extras = quota - given;
  if (extras == 0) return;
  std::vector<size_t> order(members.size());
  for (size_t k = 0; k < order.size(); ++k) order[k] = k;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return stable_hash(keys[members[a]], salt) < stable_hash(keys[members[b]], salt);
  });
  const double u =
      static_cast<double>(mix64(salt ^ stable_hash(keys[members[order[0]]])) >> 11) * 0x1.0p-53;
  double cumulative = 0;
  double next = u;
  std::vector<bool> served(members.size(), false);
  for (size_t k : order) {
    cumulative += fraction[k];
    if (extras > 0 && cumulative > next) {
      ++out[members[k]];
      served[k] = true;
      --extras;
      next += 1;
    }
  }
  // Rounding may leave one out at the very end: it goes to the largest fraction not served.
  while (extras > 0) {
    size_t best = members.size();
    for (size_t k = 0; k < members.size(); ++k) {
      if (served[k] || out[members[k]] >= sizes[members[k]]) continue;
      if (best == members.size() || fraction[k] > fraction[best]) best = k;
    }
    if (best == members.size()) break;
    ++out[members[best]];
    served[best] = true;
    --extras;
  }
}

}  // namespace

StageSizing size_stages(const RolloutPlan& plan, const std::vector<std::string>& keys,
                        const std::vector<uint32_t>& sizes, uint64_t salt) {
  const size_t stages = plan.stages.size();
  StageSizing out;
  out.cumulative.assign(stages, std::vector<uint32_t>(sizes.size(), 0));
  out.notes.resize(stages);
  uint64_t total = 0;
  for (uint32_t n : sizes) total += n;
  if (total == 0) return out;

  // The groups of the first dimension (hardware revisions, by default): the gate tree's
  // first level, and the groups the canary is paced and sized by.
  std::map<std::string, std::vector<uint32_t>> groups;
  for (uint32_t j = 0; j < keys.size(); ++j)
    groups[keys[j].substr(0, keys[j].find('|'))].push_back(j);
  // The false-halt share of a first-level gate, as the engine splits it (docs/gates.md);
  // the root's when the first level is a single group (it is then not judged on its own).
  const GateTree tree = build_gate_tree(keys, plan.stratify_by, plan.gate.confidence,
                                        1 + static_cast<uint32_t>(plan.gate.health.size()));
  double alpha = 1 - plan.gate.confidence;  // no strata, no tree (not reached: total > 0)
  if (!tree.nodes.empty()) {
    const GateNode& root = tree.nodes.front();
    const GateNode& first = tree.nodes[root.children.empty() ? 0 : root.children.front()];
    alpha = first.judged ? first.alpha : root.alpha;
  }

  std::vector<uint64_t> asked(stages);
  for (size_t s = 0; s < stages; ++s) {
    const double share = plan.stages[s].count > 0
                             ? std::min(1.0, static_cast<double>(plan.stages[s].count) / total)
                             : plan.stages[s].percent / 100.0;
    asked[s] = s + 1 == stages ? total : static_cast<uint64_t>(std::ceil(total * share - 1e-9));
  }
  for (const auto& [name, members] : groups) {
    uint64_t group_total = 0;
    for (uint32_t j : members) group_total += sizes[j];
    // A group too small for that power with half its devices still gets min_sample: more
    // would not buy the canary a sharper gate, only take the stages away.
    uint32_t gate_min = 0;
    if (stages > 1) {
      const auto n = static_cast<uint32_t>(group_total);
      gate_min = canary_minimum(plan.gate, alpha, n);
      if (gate_min > n / 2) gate_min = std::min(plan.gate.min_sample, n);
    }
    uint64_t previous = 0;
    for (size_t s = 0; s < stages; ++s) {
      // The group's proportional part of the stage, rounded up...
      uint64_t quota = s + 1 == stages ? group_total : (asked[s] * group_total + total - 1) / total;
      quota = std::min(quota, group_total);
      // ...but never fewer than the canary's gate needs, nor than the stage before.
      if (s == 0 && quota < gate_min) {
        quota = gate_min;
        out.notes[s].gate_minimum = true;
      }
      quota = std::max(quota, previous);
      std::vector<uint32_t>& c = out.cumulative[s];
      apportion(members, sizes, keys, group_total, quota, salt ^ (s + 1), c);
      for (uint32_t j : members) {
        if (s == 0 && plan.min_per_stratum > 0 && c[j] < std::min(plan.min_per_stratum, sizes[j])) {
          c[j] = std::min(plan.min_per_stratum, sizes[j]);
          out.notes[s].min_per_stratum = true;
        }
        if (s > 0) c[j] = std::max(c[j], out.cumulative[s - 1][j]);
        if (s + 1 == stages) c[j] = sizes[j];
      }
      previous = 0;
      for (uint32_t j : members) previous += c[j];
    }
    if (stages > 1)
      out.notes[0].gate_minimum_per_group = std::max(out.notes[0].gate_minimum_per_group, gate_min);
  }
  for (size_t s = 0; s < stages; ++s) {
    out.notes[s].asked = static_cast<uint32_t>(asked[s]);
    for (uint32_t c : out.cumulative[s]) out.notes[s].planned += c;
  }
  return out;
}

std::string describe_sizing(const RolloutPlan& plan, const StageNote& note) {
  if (note.planned <= note.asked) return "";
  const std::string group =
      plan.stratify_by.empty() ? "" : std::string(" per ") + to_string(plan.stratify_by.front());
  std::string out;
  auto add = [&](const std::string& part) { out += (out.empty() ? "" : "; ") + part; };
  if (note.gate_minimum)
    add("the gate needs " + std::to_string(note.gate_minimum_per_group) + group);
  if (note.min_per_stratum) add("min_per_stratum " + std::to_string(plan.min_per_stratum));
  // A few over, from rounding each group's share up: not worth a word.
  if (out.empty() && note.planned - note.asked > std::max<uint32_t>(3, note.asked / 100))
    add("each share rounded up" + group + ", or kept from the stage before");
  return out;
}

std::string RevertGap::reason() const {
  return version.empty() ? "ran no version before: nothing to go back to"
                         : "ran " + version + ", which is not uploaded and not kept in a slot";
}

std::vector<RevertGap> revert_gaps(const std::vector<PreviousVersion>& previous,
                                   const std::function<bool(const std::string&)>& uploaded) {
  std::vector<RevertGap> out;
  for (const PreviousVersion& p : previous) {
    const uint32_t without_image = p.devices - p.keep_image;
    if (without_image == 0 || (!p.version.empty() && uploaded(p.version))) continue;
    out.push_back({p.version, without_image, p.examples});
  }
  return out;
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
  std::map<std::string, PreviousVersion, std::less<>> previous;
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
        // A downgrade targets every device not already on the version.
        last_current = v.ok() && (plan.allow_downgrade ? *v == target : !(*v < target));
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
    const std::string* have = d.installed_version(artifact.name);
    const std::string_view from = have != nullptr ? std::string_view(*have) : std::string_view();
    auto at = previous.find(from);
    if (at == previous.end()) at = previous.emplace(std::string(from), PreviousVersion{}).first;
    PreviousVersion& prev = at->second;
    ++prev.devices;
    if (d.keeps_previous && have != nullptr) {
      ++prev.keep_image;
    } else if (prev.examples.size() < kRevertExamples) {
      prev.examples.push_back(d.id);
    }
  }
  for (auto& [version, prev] : previous) {
    prev.version = version;
    out.previous.push_back(std::move(prev));
  }

  // Pass 2: how many of each stratum each stage holds (cumulative), then who: each
  // stratum's members in hash order, stage k taking the next ones.
  for (auto& members : strata) {
    std::sort(members.begin(), members.end(), [&](const Member& a, const Member& b) {
      return a.order != b.order ? a.order < b.order : devices[a.device].id < devices[b.device].id;
    });
  }
  std::vector<uint32_t> sizes(strata.size());
  for (size_t j = 0; j < strata.size(); ++j) sizes[j] = static_cast<uint32_t>(strata[j].size());
  StageSizing sizing = size_stages(plan, keys, sizes, salt);
  const size_t stages = plan.stages.size();
  out.stage_sizes.assign(stages, 0);
  std::vector<uint32_t> stage_of(devices.size(), 0);
  for (size_t j = 0; j < strata.size(); ++j) {
    uint32_t begin = 0;
    for (size_t s = 0; s < stages; ++s) {
      const uint32_t end = sizing.cumulative[s][j];
      for (uint32_t i = begin; i < end; ++i)
        stage_of[strata[j][i].device] = static_cast<uint32_t>(s);
      out.stage_sizes[s] += end - begin;
      begin = end;
    }
  }
  out.stage_notes = std::move(sizing.notes);

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
