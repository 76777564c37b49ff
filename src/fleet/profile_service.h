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

class ProfileService {
 public:
  explicit ProfileService(Store& store) : store_(store) {}

  Result<std::vector<DeviceProfile>> list() { return store_.list_profiles(); }
  // kNotFound when the type has no profile.
  Result<DeviceProfile> get(std::string_view device_type);
  // Creates the profile or replaces it whole. kInvalidArgument: it is not valid; nothing is
  // written then.
  Result<DeviceProfile> put(DeviceProfile profile);

 private:
  Store& store_;
};

}  // namespace drover
