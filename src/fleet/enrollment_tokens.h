// Scoped enrollment tokens (model/enrollment_token.h): making one, and deciding whether one
// admits a device. A token's text is "drover_enroll_<id>_<secret>": the id names the record,
// the secret (32 random bytes, base64url) proves possession, and only the SHA-256 of the
// whole text is stored. DeviceAuth keeps them (create, list, revoke, and the uses it counts
// in the same write as the device it enrolls).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/clock.h"
#include "base/result.h"
#include "model/device.h"
#include "model/enrollment_token.h"

namespace drover {

struct EnrollmentTokenSpec {
  std::string name;
  std::vector<std::string> device_types;  // empty: any (and so for the two below)
  std::vector<std::string> hardware_revisions;
  std::vector<std::string> sites;
  uint64_t max_uses = 0;  // 0: no limit
  Duration lifetime{0};   // 0: never expires
  std::string created_by;
};

struct CreatedEnrollmentToken {
  EnrollmentToken record;
  std::string text;  // the token itself: shown once, never stored
};

// A new token (not yet stored). kInvalidArgument for a bad name or scope, or a negative
// lifetime; the system's random source's errors.
Result<CreatedEnrollmentToken> make_enrollment_token(EnrollmentTokenSpec spec, Timestamp now);

// Whether `text` has the form of a scoped token; its id if so.
std::optional<std::string_view> enrollment_token_id(std::string_view text);

// Whether `text` (what a device brought) is `token` and the token is usable at `now`.
// kUnauthenticated when `text` is not this token's (the message says only "not valid"); for
// the right text, kUnauthenticated naming why it is no longer usable (revoked, expired, used
// up).
Status usable(const EnrollmentToken& token, std::string_view text, Timestamp now);

// Whether a usable token admits `device` (its type, hardware revision and site as they will
// be recorded): kPermissionDenied naming the scope it is outside of.
Status admits(const EnrollmentToken& token, const Device& device);

}  // namespace drover
