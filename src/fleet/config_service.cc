#include "fleet/config_service.h"

#include <string>
#include <utility>

namespace drover {
namespace {

// kFailedPrecondition when `envelope` refuses `newest`.
Status envelope_keeps(const protocol::ConfigEnvelope& envelope, const DeviceProfile& profile,
                      const ConfigDocument& newest) {
  if (Status st = protocol::check_config_values(newest.values, envelope); !st.ok()) {
    return Error{ErrorCode::kFailedPrecondition,
                 "the new envelope refuses configuration version " +
                     std::to_string(newest.version) + " of '" + profile.device_type +
                     "', which its devices are given: " + st.error().message +
                     " (write a configuration inside both envelopes first)"};
  }
  return ok_status();
}

}  // namespace

Status envelope_keeps_newest(Store& store, const DeviceProfile& profile) {
  auto newest = store.get_config(profile.device_type, 0);
  if (!newest.ok()) return newest.error();
  return *newest ? envelope_keeps(profile.config, profile, **newest) : ok_status();
}

Result<ConfigService::TypeState*> ConfigService::state_of(const std::string& device_type) {
  auto known = types_.find(device_type);
  if (known != types_.end()) return &known->second;
  TypeState state;
  auto profile = store_.get_profile(device_type);
  if (!profile.ok()) return profile.error();
  if (*profile) state.envelope = std::move((*profile)->config);
  auto newest = store_.get_config(device_type, 0);
  if (!newest.ok()) return newest.error();
  state.newest = std::move(*newest);
  if (!state.envelope && !state.newest) {
    // Nothing of the type: not kept (any name may be asked about); a write keeps it.
    nothing_ = std::move(state);
    return &nothing_;
  }
  return &types_.emplace(device_type, std::move(state)).first->second;
}

Status ConfigService::load() {
  auto profiles = store_.list_profiles();
  if (!profiles.ok()) return profiles.error();
  MutexLock writing(write_mu_);
  types_.clear();
  std::map<std::string, ConfigTarget, std::less<>> targets;
  for (const DeviceProfile& p : *profiles) {
    auto state = state_of(p.device_type);
    if (!state.ok()) return state.error();
    if (const auto& newest = (*state)->newest) {
      targets[p.device_type] = {newest->version, newest->sha256};
    }
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
  auto state = state_of(type);
  if (!state.ok()) return state.error();
  TypeState& s = **state;
  if (!s.envelope) return not_found("no profile for device type '" + type + "'");
  if (s.envelope->empty()) {
    return Error{ErrorCode::kFailedPrecondition,
                 "the profile of '" + type +
                     "' declares no configuration envelope (its \"config\"): a document "
                     "needs one to be checked against"};
  }
  auto read = protocol::decode_config_values(values, *s.envelope);
  if (!read.ok()) {
    return invalid_argument("outside the envelope of '" + type + "': " + read.error().message);
  }
  if (s.newest && s.newest->values == *read) return *s.newest;
  ConfigDocument doc;
  doc.device_type = type;
  doc.version = s.newest ? s.newest->version + 1 : 1;
  doc.values = std::move(*read);
  doc.sha256 = protocol::config_sha256(doc.values);
  doc.created_at = clock_.now();
  doc.author = std::string(author);
  doc.note = std::string(note);
  DROVER_TRY(validate(doc));
  WriteBatch batch;
  batch.configs.push_back(doc);
  DROVER_TRY(store_.apply(batch));
  s.newest = doc;
  MutexLock lock(mu_);
  targets_[type] = {doc.version, doc.sha256};
  return doc;
}

Result<ConfigDocument> ConfigService::get(std::string_view device_type, uint64_t version) {
  const std::string type(device_type);
  if (version == 0) {
    MutexLock writing(write_mu_);
    auto state = state_of(type);
    if (!state.ok()) return state.error();
    if (!(*state)->newest) return not_found("device type '" + type + "' has no configuration");
    return *(*state)->newest;
  }
  auto doc = store_.get_config(type, version);
  if (!doc.ok()) return doc.error();
  if (!*doc) {
    return not_found("device type '" + type + "' has no configuration version " +
                     std::to_string(version));
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

bool ConfigService::differs(std::string_view device_type, std::string_view sha256,
                            ConfigTarget* out) const {
  MutexLock lock(mu_);
  auto it = targets_.find(device_type);
  if (it == targets_.end() || it->second.sha256 == sha256) return false;
  *out = it->second;
  return true;
}

Result<protocol::DeviceConfig> ConfigService::for_device(std::string_view device_type) {
  const std::string type(device_type);
  // The document and the envelope as one: no profile write comes between them.
  MutexLock writing(write_mu_);
  auto state = state_of(type);
  if (!state.ok()) return state.error();
  const TypeState& s = **state;
  if (!s.newest) return not_found("device type '" + type + "' has no configuration");
  if (!s.envelope) return not_found("no profile for device type '" + type + "'");
  return protocol::DeviceConfig{type, s.newest->version, s.newest->sha256, s.newest->values,
                                *s.envelope};
}

Result<DeviceProfile> ConfigService::put_profile(DeviceProfile profile) {
  DROVER_TRY(validate(profile));
  MutexLock writing(write_mu_);
  auto state = state_of(profile.device_type);
  if (!state.ok()) return state.error();
  TypeState& s = **state;
  if (s.newest) DROVER_TRY(envelope_keeps(profile.config, profile, *s.newest));
  WriteBatch batch;
  batch.profiles.push_back(profile);
  DROVER_TRY(store_.apply(batch));
  TypeState& kept = types_[profile.device_type];  // kept from now on (`s` may be nothing_)
  kept.newest = s.newest;
  kept.envelope = profile.config;
  return profile;
}

}  // namespace drover
