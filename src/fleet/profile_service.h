// ProfileService: the device profiles — per device type, the telemetry contract its devices
// are judged against and the metric rules their agents follow (model/device_profile.h).
#pragma once

#include <optional>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "model/device_profile.h"
#include "store/store.h"

namespace drover {
class ConfigService;
}  // namespace drover

namespace drover {

class ProfileService {
 public:
  explicit ProfileService(Store& store) : store_(store) {}

  Result<std::vector<DeviceProfile>> list() { return store_.list_profiles(); }
  // kNotFound when the type has no profile.
  Result<DeviceProfile> get(std::string_view device_type);
  // Creates the profile or replaces it whole. kInvalidArgument: it is not valid;
  // kFailedPrecondition: its configuration envelope refuses the type's newest configuration
  // document (ConfigService::put_profile). Nothing is written then.
  Result<DeviceProfile> put(DeviceProfile profile);
  // Profile writes go through `configs` (serialized with document writes). Not owned.
  void attach_configs(ConfigService* configs) { configs_ = configs; }

 private:
  Store& store_;
  ConfigService* configs_ = nullptr;
};

}  // namespace drover
