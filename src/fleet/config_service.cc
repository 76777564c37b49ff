#include "fleet/config_service.h"

#include <string>
#include <utility>

namespace drover {

Status envelope_keeps_newest(Store& store, const DeviceProfile& profile) {
  auto newest = store.get_config(profile.device_type, 0);
  if (!newest.ok()) return newest.error();
  if (!*newest) return ok_status();
  if (Status st = protocol::check_config_values((*newest)->values, profile.config); !st.ok()) {
    return Error{ErrorCode::kFailedPrecondition,
                 "the new envelope refuses configuration version " +
                     std::to_string((*newest)->version) + " of '" + profile.device_type +
                     "', which its devices are given: " + st.error().message +
                     " (write a configuration inside both envelopes first)"};
  }
  return ok_status();
}

Status ConfigService::load() {
  auto profiles = store_.list_profiles();
  if (!profiles.ok()) return profiles.error();
  std::map<std::string, ConfigTarget, std::less<>> targets;
  for (const DeviceProfile& p : *profiles) {
    auto newest = store_.get_config(p.device_type, 0);
    if (!newest.ok()) return newest.error();
    if (*newest) targets[p.device_type] = {(*newest)->version, (*newest)->sha256};
  }
  MutexLock lock(mu_);
  targets_ = std::move(targets);
  return ok_status();
}

Result<ConfigDocument> ConfigService::put(std::string_view device_type, std::string_view values,
                                          std::string_view author, std::string_view note) {
  const std::string type(device_type);
  if (note.size() > kMaxConfigNote) return invalid_argument("the note is at most 512 bytes");
  MutexLock writing(write_mu_);
  auto profile = store_.get_profile(type);
  if (!profile.ok()) return profile.error();
  if (!*profile) return not_found("no profile for device type '" + type + "'");
  if ((*profile)->config.empty()) {
    return Error{ErrorCode::kFailedPrecondition,
                 "the profile of '" + type +
                     "' declares no configuration envelope (its \"config\"): a document "
                     "needs one to be checked against"};
  }
  auto read = protocol::decode_config_values(values, (*profile)->config);
  if (!read.ok())
    return invalid_argument("outside the envelope of '" + type + "': " + read.error().message);
  auto newest = store_.get_config(type, 0);
  if (!newest.ok()) return newest.error();
  if (*newest && (*newest)->values == *read) return **newest;
  ConfigDocument doc;
  doc.device_type = type;
  doc.version = *newest ? (*newest)->version + 1 : 1;
  doc.values = std::move(*read);
  doc.sha256 = protocol::config_sha256(doc.values);
  doc.created_at = clock_.now();
  doc.author = std::string(author);
  doc.note = std::string(note);
  DROVER_TRY(validate(doc));
  WriteBatch batch;
  batch.configs.push_back(doc);
  DROVER_TRY(store_.apply(batch));
  MutexLock lock(mu_);
  targets_[type] = {doc.version, doc.sha256};
  return doc;
}

Result<ConfigDocument> ConfigService::get(std::string_view device_type, uint64_t version) {
  auto doc = store_.get_config(device_type, version);
  if (!doc.ok()) return doc.error();
  if (!*doc) {
    return not_found(version == 0
                         ? "device type '" + std::string(device_type) + "' has no configuration"
                         : "device type '" + std::string(device_type) +
                               "' has no configuration version " + std::to_string(version));
  }
  return std::move(**doc);
}

Result<std::vector<ConfigDocument>> ConfigService::history(std::string_view device_type) {
  return store_.list_configs(device_type);
}

std::optional<ConfigTarget> ConfigService::target(std::string_view device_type) const {
  MutexLock lock(mu_);
  auto it = targets_.find(device_type);
  if (it == targets_.end()) return std::nullopt;
  return it->second;
}

Result<protocol::DeviceConfig> ConfigService::for_device(std::string_view device_type) {
  auto doc = get(device_type);
  if (!doc.ok()) return doc.error();
  auto profile = store_.get_profile(device_type);
  if (!profile.ok()) return profile.error();
  if (!*profile) return not_found("no profile for device type '" + std::string(device_type) + "'");
  return protocol::DeviceConfig{doc->device_type, doc->version, doc->sha256, std::move(doc->values),
                                std::move((*profile)->config)};
}

Result<DeviceProfile> ConfigService::put_profile(DeviceProfile profile) {
  DROVER_TRY(validate(profile));
  MutexLock writing(write_mu_);
  DROVER_TRY(envelope_keeps_newest(store_, profile));
  WriteBatch batch;
  batch.profiles.push_back(profile);
  DROVER_TRY(store_.apply(batch));
  return profile;
}

}  // namespace drover
