// An operator API token: who may use the operator API (/api/v1) and with which role. The
// secret itself is never stored: only its SHA-256, so a copy of the database lets nobody in.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/clock.h"
#include "base/result.h"

namespace drover {

// Ordered: each role may do everything the one before it may.
enum class Role : uint8_t {
  kViewer,    // reads everything, changes nothing
  kOperator,  // also runs the fleet: devices, artifacts, rollouts
  kAdmin,     // also manages API tokens
};
const char* to_string(Role r);
Result<Role> parse_role(std::string_view s);

struct ApiToken {
  std::string id;             // public half of the token, e.g. "3f9c0a17b2d4e861"
  std::string name;           // what it is for, e.g. "ci-pipeline"
  Role role = Role::kViewer;  //
  std::string secret_sha256;  // 64 lowercase hex digits
  Timestamp created_at{};
  Timestamp expires_at{};  // zero: never
  Timestamp revoked_at{};  // zero: not revoked
  friend bool operator==(const ApiToken&, const ApiToken&) = default;
};

// Checks the id (16 lowercase hex digits), the name (1..128 printable characters) and the hash.
Status validate(const ApiToken& t);

}  // namespace drover
