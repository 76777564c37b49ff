#include "fleet/profile_service.h"

#include <string>

#include "fleet/config_service.h"

namespace drover {

Result<DeviceProfile> ProfileService::get(std::string_view device_type) {
  auto p = store_.get_profile(device_type);
  if (!p.ok()) return p.error();
  if (!*p) return not_found("no profile for device type '" + std::string(device_type) + "'");
  return **p;
}

Result<DeviceProfile> ProfileService::put(DeviceProfile profile) {
  if (configs_ != nullptr) return configs_->put_profile(std::move(profile));
  DROVER_TRY(validate(profile));
  DROVER_TRY(envelope_keeps_newest(store_, profile));
  WriteBatch batch;
  batch.profiles.push_back(profile);
  DROVER_TRY(store_.apply(batch));
  return profile;
}

}  // namespace drover
