// Delegated targets roles (TUF specification 1.0.x, "delegations"): which team or device
// family signs which artifacts. The operator names them in the repository's
// delegations.json (`drover keys delegate`, `drover keys undelegate`):
//
//   {"roles": [{"name": "thermostats", "paths": ["thermostat-*/*"], "terminating": true,
//               "threshold": 1, "keys": [{"keytype": "ed25519", "scheme": "ed25519",
//                                         "keyval": {"public": "…"}}]}]}
//
// The top-level targets carry them to devices, signed; each artifact (target path
// "<name>/<version>") is signed by the first role, in this order, whose patterns match its
// path ("*" within one path segment, "?" one character), and by the top-level targets when
// none does. A device searches the same way (pre-order, top-level first), so it finds each
// artifact where the repository put it; a terminating role ends the search for the paths it
// matches.
//
// Thread-compatible.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/file_system.h"
#include "base/result.h"
#include "security/tuf_metadata.h"
#include "security/tuf_repository.h"

namespace drover {

// The most delegated roles a repository configures: a device searches at most 32 roles for
// one target (tuf::UpdaterLimits::max_delegations), the top-level targets included.
inline constexpr size_t kMaxDelegatedRoles = 31;

// A role name Drover accepts for a delegated role: 1 to 64 of a-z 0-9 and "-", starting
// with a letter or digit, and none of the top-level roles' names (root, timestamp,
// snapshot, targets). kInvalidArgument saying which rule it breaks.
Status check_delegated_role_name(std::string_view name);

// A path pattern: 1 to 255 bytes, printable ASCII, no empty segment, and no "." or ".."
// segment (no artifact path has one). kInvalidArgument saying why.
Status check_path_pattern(std::string_view pattern);

// The roles in <dir>/delegations.json, in their search order; none when there is no file.
// kCorruption, naming the file and the field, for anything that is not such a file (a role
// without keys or paths, a threshold above its keys, a name twice, a bad name or pattern).
Result<std::vector<security::tuf::DelegationSpec>> load_delegations(FileSystem& fs,
                                                                    const std::string& dir);

// Writes `roles` to <dir>/delegations.json atomically.
Status save_delegations(FileSystem& fs, const std::string& dir,
                        const std::vector<security::tuf::DelegationSpec>& roles);

// The delegation a device reads for `spec`: its name, patterns, terminating flag, key ids
// and threshold.
security::tuf::DelegatedRole as_delegated_role(const security::tuf::DelegationSpec& spec);

// The role that signs `target_path`: the first of `roles` trusted for it, or "targets".
std::string signing_role(const std::vector<security::tuf::DelegatedRole>& roles,
                         std::string_view target_path);

// Whether the delegation `served` (parsed from signed targets) is `wanted`: the same name,
// patterns, terminating flag, threshold and keys.
bool same_delegation(const security::tuf::DelegatedRole& served,
                     const security::tuf::DelegationSpec& wanted);

// Whether the delegations `served` (parsed from signed targets) are `wanted`: the same
// roles in the same order, each the same_delegation.
bool same_delegations(const std::optional<security::tuf::Delegations>& served,
                      const std::vector<security::tuf::DelegationSpec>& wanted);

}  // namespace drover
