#include "model/enrollment_token.h"

#include <algorithm>

#include "model/device.h"

namespace drover {
namespace {

bool lower_hex(std::string_view s, size_t length) {
  return s.size() == length && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

Status check_scope(std::vector<std::string>& names, const char* what) {
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  for (const std::string& n : names) {
    if (!is_valid_name(n)) {
      return invalid_argument(std::string("enrollment token ") + what + " '" + n +
                              "' is not a valid name");
    }
  }
  return ok_status();
}

}  // namespace

Status validate(EnrollmentToken& t) {
  if (!lower_hex(t.id, 16)) {
    return invalid_argument("enrollment token id must be 16 lowercase hex digits");
  }
  if (t.name.empty() || t.name.size() > 128) {
    return invalid_argument("enrollment token name must be 1 to 128 characters");
  }
  for (unsigned char c : t.name) {
    if (c < 0x20 || c == 0x7f) {
      return invalid_argument("enrollment token name has a control character");
    }
  }
  if (!lower_hex(t.secret_sha256, 64)) {
    return invalid_argument("enrollment token secret_sha256 must be 64 lowercase hex digits");
  }
  DROVER_TRY(check_scope(t.device_types, "device type"));
  DROVER_TRY(check_scope(t.hardware_revisions, "hardware revision"));
  DROVER_TRY(check_scope(t.sites, "site"));
  if (t.max_uses != 0 && t.uses > t.max_uses) {
    return invalid_argument("enrollment token has more uses than its limit");
  }
  return ok_status();
}

}  // namespace drover
