// A configuration document (docs/configuration.md): one version of the values every device of
// a type runs with, checked against the type's envelope (model/device_profile.h) when it was
// written. Versions count up from 1 per type; the newest is the one devices are given. An
// older one is brought back by writing its values again, as a new version.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "base/clock.h"
#include "base/result.h"
#include "protocol/device_config.h"

namespace drover {

struct ConfigDocument {
  std::string device_type;  // with version, the key
  uint64_t version = 0;     // 1, 2, ... per type
  protocol::ConfigValues values;
  std::string sha256;  // protocol::config_sha256(values): what devices report once applied
  Timestamp created_at{};
  std::string author;  // who wrote it (the operator token's name)
  std::string note;    // why, at most kMaxConfigNote bytes
  friend bool operator==(const ConfigDocument&, const ConfigDocument&) = default;
};
inline constexpr size_t kMaxConfigNote = 512;

// Checks the type name, the version (>= 1), the hash against the values, the note's size.
// The envelope is the profile's business (ConfigService checks the values against it).
Status validate(const ConfigDocument& d);

}  // namespace drover
