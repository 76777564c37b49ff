// The repository side of signed update metadata (TUF specification 1.0.x, section 4): the
// four roles' files built from what a repository holds and signed, ready to serve. The
// counterpart of tuf_client.h, and pure: keys, targets, versions and times in; signed files
// out. Where the files live, when versions move and which keys are online is the server's.
//
// Every file comes out in canonical JSON, so its bytes are what its signatures are over and
// what the snapshot's and timestamp's hashes describe.
//
// Thread-compatible.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "base/clock.h"
#include "base/result.h"
#include "security/crypto.h"
#include "security/tuf_key.h"
#include "security/tuf_metadata.h"

namespace drover::security::tuf {

inline constexpr std::string_view kSpecVersion = "1.0.31";

// The keys a root gives a role, and how many of them must sign.
struct RoleSpec {
  std::vector<PublicKey> keys;
  int threshold = 1;
};

struct RootSpec {
  int64_t version = 1;
  Timestamp expires{};
  bool consistent_snapshot = true;
  RoleSpec root, timestamp, snapshot, targets;
};

// A role delegated by a targets role: trusted for `paths` (or hash prefixes), signed by
// `keys.threshold` of `keys.keys`.
struct DelegationSpec {
  std::string name;
  RoleSpec keys;
  bool terminating = false;
  std::vector<std::string> paths;
  std::vector<std::string> path_hash_prefixes;
};

struct TargetsSpec {
  int64_t version = 1;
  Timestamp expires{};
  std::map<std::string, TargetFile> targets;  // TargetFile::custom: canonical JSON or ""
  std::vector<DelegationSpec> delegations;    // in search order
};

// A root signed by `signers`, checked as a client would check it before it is returned, so
// an operator learns of a missing signature before a device does: the new root's own root
// threshold, and with `previous` (the root it follows) that root's root threshold too and a
// version exactly one above it. kInvalidArgument for a spec that cannot be a root (no keys
// for a role, a threshold above its keys, a version below 1), kUnauthenticated naming the
// threshold that is short, kFailedPrecondition for a version that does not follow.
Result<std::string> sign_root(const RootSpec& spec, const Metadata* previous,
                              const std::vector<const SigningKey*>& signers);

// Targets metadata (top-level or a delegated role's) signed by `signers`. kInvalidArgument
// for a target with a custom value that is not JSON or without hashes, a delegation without
// keys or with both or neither of paths and prefixes, or a name a client could not store.
Result<std::string> sign_targets(const TargetsSpec& spec,
                                 const std::vector<const SigningKey*>& signers);

// What the snapshot (or the timestamp) says of a metadata file it lists: its version, and
// its length and SHA-256, so a client takes only these very bytes.
MetaFile describe(std::string_view file, int64_t version);

// Snapshot metadata listing each targets role's file ("targets.json", "<role>.json").
Result<std::string> sign_snapshot(int64_t version, Timestamp expires,
                                  const std::map<std::string, MetaFile>& meta,
                                  const std::vector<const SigningKey*>& signers);

// Timestamp metadata naming the snapshot.
Result<std::string> sign_timestamp(int64_t version, Timestamp expires, const MetaFile& snapshot,
                                   const std::vector<const SigningKey*>& signers);

// Whether metadata expiring at `expires`, signed for `lifetime`, should be signed again at
// `now`: once less than half its lifetime is left, so a repository that re-signs on a timer
// of a quarter of the lifetime never serves a file close to expiry, and a missed timer or
// two still leave time.
bool due_for_resigning(Timestamp expires, Duration lifetime, Timestamp now);

}  // namespace drover::security::tuf
