#include "store/store.h"

namespace drover {

Status check_keys(const WriteBatch& batch) {
  for (const auto& d : batch.devices) {
    if (d.id.empty()) return invalid_argument("a device with an empty id");
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
  for (const auto& s : batch.steps) {
    if (s.rollout_id.empty() || s.device_id.empty()) {
      return invalid_argument("a deployment step with an empty rollout or device id");
    }
  }
  return ok_status();
}

}  // namespace drover
