#include "model/config_document.h"

#include "model/device.h"

namespace drover {

Status validate(const ConfigDocument& d) {
  if (!is_valid_name(d.device_type)) {
    return invalid_argument("config: device type '" + d.device_type + "' is not a valid name");
  }
  if (d.version == 0) return invalid_argument("config: versions count from 1");
  if (d.sha256 != protocol::config_sha256(d.values)) {
    return invalid_argument("config: sha256 does not match the values");
  }
  if (d.note.size() > kMaxConfigNote)
    return invalid_argument("config: the note is at most 512 bytes");
  if (d.author.size() > 256) return invalid_argument("config: the author is at most 256 bytes");
  return ok_status();
}

}  // namespace drover
