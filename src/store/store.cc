#include "store/store.h"

namespace drover {

Status check_keys(const WriteBatch& batch) {
  for (const auto& d : batch.devices) {
    if (d.id.empty()) return invalid_argument("a device with an empty id");
  }
  for (const auto& id : batch.removed_devices) {
    if (id.empty()) return invalid_argument("a device to remove with an empty id");
  }
  for (const auto& p : batch.profiles) {
    if (p.device_type.empty()) return invalid_argument("a profile with an empty device type");
  }
  for (const auto& s : batch.sites) {
    if (s.name.empty()) return invalid_argument("a site with an empty name");
  }
  for (const auto& a : batch.artifacts) {
    if (a.name.empty() || a.version.empty())
      return invalid_argument("an artifact with an empty name or version");
  }
  for (const auto& r : batch.rollouts) {
    if (r.id.empty()) return invalid_argument("a rollout with an empty id");
  }
  for (const auto& d : batch.deployments) {
    if (d.rollout_id.empty() || d.device_id.empty()) {
      return invalid_argument("a deployment with an empty rollout or device id");
    }
  }
  for (const auto& t : batch.api_tokens) {
    if (t.id.empty()) return invalid_argument("an api token with an empty id");
  }
  for (const auto& a : batch.alerts) {
    if (a.id.empty()) return invalid_argument("an alert with an empty id");
  }
  for (const auto& c : batch.commands) {
    if (c.id.empty()) return invalid_argument("a command with an empty id");
  }
  for (const auto& c : batch.configs) {
    if (c.device_type.empty() || c.version == 0)
      return invalid_argument("a configuration with an empty device type or version 0");
  }
  for (const auto& t : batch.enrollment_tokens) {
    if (t.id.empty()) return invalid_argument("an enrollment token with an empty id");
  }
  for (const auto& h : batch.held_conditions) {
    if (h.rule.empty()) return invalid_argument("a held condition with an empty rule");
  }
  for (const auto& [device, rule] : batch.removed_held_conditions) {
    if (rule.empty()) return invalid_argument("a held condition to remove with an empty rule");
  }
  for (const auto& s : batch.steps) {
    if (s.rollout_id.empty() || s.device_id.empty()) {
      return invalid_argument("a deployment step with an empty rollout or device id");
    }
  }
  return ok_status();
}

// Every field of a batch is merged below: a field added to WriteBatch must be added there
// too (this fails to compile until the count is changed with it).
static_assert(sizeof(WriteBatch) == 15 * sizeof(std::vector<std::string>),
              "a WriteBatch field is missing from Store::apply_all's merge");

Status Store::apply_all(std::span<const WriteBatch* const> batches) {
  if (batches.size() == 1) return apply(*batches.front());
  WriteBatch all;
  auto append = [](auto& to, const auto& from) { to.insert(to.end(), from.begin(), from.end()); };
  for (const WriteBatch* b : batches) {
    append(all.devices, b->devices);
    append(all.sites, b->sites);
    append(all.profiles, b->profiles);
    append(all.artifacts, b->artifacts);
    append(all.rollouts, b->rollouts);
    append(all.deployments, b->deployments);
    append(all.api_tokens, b->api_tokens);
    append(all.enrollment_tokens, b->enrollment_tokens);
    append(all.commands, b->commands);
    append(all.alerts, b->alerts);
    append(all.configs, b->configs);
    append(all.steps, b->steps);
    // A removal cancels the same device's records before it; a later record brings the
    // device back. The combined batch then holds each id on one side only, in either order.
    for (const Device& d : b->devices) std::erase(all.removed_devices, d.id);
    for (const std::string& id : b->removed_devices) {
      std::erase_if(all.devices, [&](const Device& d) { return d.id == id; });
      all.removed_devices.push_back(id);
    }
    // Held conditions likewise, by (device_id, rule).
    for (const HeldCondition& h : b->held_conditions) {
      std::erase_if(all.removed_held_conditions, [&](const auto& key) {
        return key.first == h.device_id && key.second == h.rule;
      });
      all.held_conditions.push_back(h);
    }
    for (const auto& key : b->removed_held_conditions) {
      std::erase_if(all.held_conditions, [&](const HeldCondition& h) {
        return h.device_id == key.first && h.rule == key.second;
      });
      all.removed_held_conditions.push_back(key);
    }
  }
  return apply(all);
}

}  // namespace drover
