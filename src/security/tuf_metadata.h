// Signed update metadata (TUF specification 1.0.x, section 4): the four top-level roles
// (root, timestamp, snapshot, targets) and delegated targets roles, read from their JSON
// files strictly, and the signature threshold check every one of them goes through.
//
// A file is `{"signatures": [{"keyid", "sig"}], "signed": {"_type", "spec_version",
// "version", "expires", ...}}`; the signatures are over the canonical JSON of "signed"
// (security/canonical_json.h). Fields this reader does not know are kept in the signed
// bytes (and so covered by the signatures) and otherwise ignored, as the specification
// asks. Everything else is checked here, before any of it is trusted: the type, a spec
// version of major 1, versions and thresholds of at least 1, expiry times in the
// specification's form, key objects (security/tuf_key.h), hashes in hex of the right
// length.
//
// Thread-compatible value types.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/clock.h"
#include "base/result.h"
#include "security/crypto.h"
#include "security/tuf_key.h"

namespace drover::security::tuf {

// The hash algorithms a metadata or target file may be checked with: sha256 and sha512.
// An entry naming another algorithm is refused (it could not be checked).
using Hashes = std::map<std::string, std::string>;  // algorithm -> raw digest

struct RoleKeys {
  std::vector<std::string> keyids;  // distinct
  int threshold = 1;
};

// An entry of timestamp's or snapshot's "meta": what the named metadata file must be.
struct MetaFile {
  int64_t version = 0;
  std::optional<uint64_t> length;  // optional in the specification
  Hashes hashes;                   // may be empty
};

struct TargetFile {
  uint64_t length = 0;
  Hashes hashes;       // at least one
  std::string custom;  // the "custom" value's canonical JSON; "" without one
};

struct DelegatedRole {
  std::string name;
  RoleKeys keys;
  bool terminating = false;
  // Which target paths the role is trusted for: shell-style patterns (`*` matches within a
  // path segment, `?` one character), or prefixes of the SHA-256 (hex) of the path.
  std::vector<std::string> paths;
  std::vector<std::string> path_hash_prefixes;
  bool trusted_for(std::string_view target_path) const;
};

// Succinct hash-bin delegations (specification 1.0.30 on): 2^bit_length roles named
// "<name_prefix>-<bin>", the bin in lower-case hex of as many digits as the last bin needs,
// each trusted for the target paths whose SHA-256's first bit_length bits are its number;
// all signed by the same keys, none terminating.
struct SuccinctRoles {
  RoleKeys keys;
  int bit_length = 1;  // 1..32
  std::string name_prefix;
  // The role of the bin `target_path` falls in.
  std::string role_for(std::string_view target_path) const;
  // Whether `name` is one of its roles ("<name_prefix>-<bin>" with a bin in range).
  bool is_role(std::string_view name) const;
};

struct Delegations {
  std::map<std::string, PublicKey> keys;             // by key id
  std::map<std::string, std::string> unusable_keys;  // key id -> why it cannot vote
  std::vector<DelegatedRole> roles;                  // in order: the search order
  std::optional<SuccinctRoles> succinct;             // instead of `roles`
  // The roles trusted for `target_path`, in search order.
  std::vector<DelegatedRole> roles_for(std::string_view target_path) const;
  // The delegation to the role `name`, if this makes one.
  std::optional<DelegatedRole> role(std::string_view name) const;
};

// One metadata file, parsed. Which fields mean something depends on `type`.
struct Metadata {
  std::string type;          // root, timestamp, snapshot or targets (delegated roles too)
  std::string spec_version;  // "1.0.x"
  int64_t version = 0;
  Timestamp expires{};
  std::string signed_bytes;  // the canonical JSON the signatures are over
  std::vector<std::pair<std::string, std::string>> signatures;  // key id, raw signature

  // root
  bool consistent_snapshot = false;
  std::map<std::string, PublicKey> keys;             // by key id
  std::map<std::string, std::string> unusable_keys;  // key id -> why it cannot vote
  std::map<std::string, RoleKeys> roles;             // root, timestamp, snapshot, targets: all four
  // timestamp ("snapshot.json"; other entries are ignored) and snapshot ("<role>.json" for
  // every targets role, by the role's plain name)
  std::map<std::string, MetaFile> meta;
  // targets
  std::map<std::string, TargetFile> targets;
  std::optional<Delegations> delegations;
};

struct ParseLimits {
  size_t max_bytes = size_t{16} << 20;
};

// Parses one metadata file of `expected_type` ("root", "timestamp", "snapshot" or
// "targets"; a delegated role's file is of type "targets"). kInvalidArgument, saying what
// is wrong, for anything that is not such a file. Signatures are not checked here. A key
// that cannot be used (unknown type, bad material) does not refuse the file: it is listed
// in `unusable_keys` and can never vote. Names and paths are checked where they are used
// (encode_name), so one odd target does not refuse the others.
Result<Metadata> parse_metadata(std::string_view bytes, std::string_view expected_type,
                                ParseLimits limits = {});

// Whether `threshold` distinct keys among `role.keyids` (looked up in `keys`) signed
// `m.signed_bytes`. A key counts once however many of its signatures or key ids appear
// (two key ids naming one key are one key). kUnauthenticated, naming the role and how many
// valid signatures were found, when they fall short.
Status verify_signatures(const Metadata& m, const std::map<std::string, PublicKey>& keys,
                         const RoleKeys& role, std::string_view role_name);

// The metadata file for `signed_part` (the "signed" object), signed by each of `keys`
// (Ed25519, named by their key ids): canonical JSON, as Drover serves it. kInvalidArgument
// if `signed_part` is not an object or holds a floating-point number.
Result<std::string> sign_metadata(const nlohmann::json& signed_part,
                                  const std::vector<const SigningKey*>& keys);

// A file's length and hashes checked as its bytes come, for files too large to hold in
// memory (targets). Not thread-safe.
class StreamCheck {
 public:
  StreamCheck(std::optional<uint64_t> length, const Hashes& hashes);
  ~StreamCheck();
  StreamCheck(StreamCheck&&) noexcept;
  StreamCheck& operator=(StreamCheck&&) noexcept;
  // kResourceExhausted once the bytes pass the length (the piece is not taken).
  Status update(std::string_view piece);
  // The length and every hash, as check_length_and_hashes says.
  Status finish();
  uint64_t bytes() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Whether `bytes` has the length and every hash an entry lists. kInvalidArgument saying
// which differs, or naming an algorithm this client cannot compute (only sha256, sha512).
Status check_length_and_hashes(std::string_view bytes, std::optional<uint64_t> length,
                               const Hashes& hashes);

// A role name or target path as one URL path segment and one file name: percent-encoded
// except A-Z a-z 0-9 - . _ ~ (so "/" is %2F, and "../x" stays in its directory); a name
// that would then be "." or ".." has its dots encoded too. kInvalidArgument for an empty
// name, or one whose encoding is longer than `max_bytes` (a file name's 255 bytes, less
// what is added to it: ".json", a temporary file's ".tmp").
Result<std::string> encode_name(std::string_view name, size_t max_bytes = 255);

}  // namespace drover::security::tuf
