// An enrollment token: what a device brings to enroll without waiting for an operator. Each
// is scoped (the device types, hardware revisions and sites it may enroll), limited in uses
// and lifetime, and revocable; only the SHA-256 of its text is stored, so a copy of the
// database admits nobody. A device enrolled with one is recorded with the token's id.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/clock.h"
#include "base/result.h"

namespace drover {

struct EnrollmentToken {
  std::string id;             // public half of the token: 16 lowercase hex digits
  std::string name;           // what it is for, e.g. "line-3-thermostats"
  std::string secret_sha256;  // SHA-256 of the whole token text, 64 lowercase hex digits
  // The scope. Empty: any. A device enrolled with the token must match every list given.
  std::vector<std::string> device_types;        // sorted, unique
  std::vector<std::string> hardware_revisions;  // sorted, unique
  std::vector<std::string> sites;               // sorted, unique
  uint64_t max_uses = 0;                        // devices it may enroll; 0: no limit
  uint64_t uses = 0;                            // devices it has enrolled
  Timestamp created_at{};
  Timestamp expires_at{};  // zero: never
  Timestamp revoked_at{};  // zero: not revoked
  std::string created_by;  // who made it, e.g. "token:3f9c0a17b2d4e861 (admin)"
  friend bool operator==(const EnrollmentToken&, const EnrollmentToken&) = default;
};

// Checks the id, name (1..128 printable characters), hash and scope names (is_valid_name),
// and that uses <= max_uses when there is a limit; sorts and de-duplicates the scope lists.
Status validate(EnrollmentToken& t);

}  // namespace drover
