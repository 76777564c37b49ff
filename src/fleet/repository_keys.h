// What `drover keys` does to a signed update metadata repository (<data>/tuf,
// fleet/update_repository.h) beside, or without, a running server: make it, rotate its root,
// sign targets with keys kept offline, and delegate targets to roles with keys of their own.
// A running server takes what these write at its next publish.
//
// Thread-compatible: one operation at a time per repository (each is one CLI command).
#pragma once

#include <string>
#include <vector>

#include "base/clock.h"
#include "base/file_system.h"
#include "base/result.h"
#include "model/artifact.h"

namespace drover {

// The keys of signed update metadata, as `drover keys` makes them.
struct KeySetup {
  int root_keys = 1;       // made, written to the offline directory
  int root_threshold = 1;  // of them needed to sign a root
  Duration root_lifetime = days(365);
};

// Makes a repository in `dir`: the root keys written to `offline_dir` as PEM files named by
// role and key id (root-<first 16 hex digits of the key id>.pem), the online keys to
// <dir>/keys/, and root version 1 signed by every root key. Returns the files it wrote to
// `offline_dir`. kAlreadyExists when `dir` holds a root already, kInvalidArgument for a
// threshold outside 1..root_keys.
Result<std::vector<std::string>> create_repository(FileSystem& fs, const std::string& dir,
                                                   const std::string& offline_dir,
                                                   const KeySetup& setup, Timestamp now);

// What changes in a root rotation.
struct RootRotation {
  std::vector<std::string> signing_key_files;  // private keys: enough of the old root's and
                                               // the new root's root keys
  int new_root_keys = 0;                       // > 0: that many new root keys replace the old ones
  int new_root_threshold = 0;                  // > 0: the new root threshold
  std::vector<std::string> new_online_roles;   // of timestamp, snapshot, targets: new keys
  Duration root_lifetime = days(365);
};

// Writes root version N+1 to `dir` (a running server takes it at its next refresh). New
// root keys are written to `offline_dir`, new online keys to <dir>/keys/ before the root
// that names them. The root is signed by every key in `signing_key_files` the old or new
// root names, and refused (kUnauthenticated, nothing written but new key files) unless both
// the old and the new root thresholds are met. Returns the files written to `offline_dir`.
Result<std::vector<std::string>> rotate_root(FileSystem& fs, const std::string& dir,
                                             const std::string& offline_dir,
                                             const RootRotation& rotation, Timestamp now);

// Signs targets offline (`drover keys sign-targets`, on the server's machine with the keys
// brought from where they are kept): the artifacts `role` signs ("targets", the top-level
// role, with the delegations of delegations.json; or a delegated role named there) as its
// version N+1 (N the highest on disk), expiring `lifetime` after `now`, signed by every key
// in `key_files` (PEM) the role is given, written to <dir>/metadata/<N+1>.<role>.json. A
// running server that cannot sign the role itself takes it at its next publish and signs a
// snapshot and timestamp naming it. Returns N+1 and the targets it lists. kFailedPrecondition when
// the role's keys are online (the server signs it itself: move them out of keys/ first);
// kUnauthenticated, nothing written, when the keys given do not meet its threshold;
// kInvalidArgument for a key file that is not an Ed25519 private key; kNotFound without a
// repository or for a role that is not delegated.
struct SignedTargets {
  int64_t version = 0;
  std::vector<std::string> targets;  // the target paths listed
  std::vector<std::string> sha256;   // and their hashes (hex), for whoever signs to check
  // The top-level targets: the delegations signed into them, in search order, one line each
  // ("thermostats: thermostat-*/* terminating, 1 of keys 3f9c0a17b2d4e861").
  std::vector<std::string> delegations;
};
Result<SignedTargets> sign_targets_offline(FileSystem& fs, const std::string& dir,
                                           const std::vector<Artifact>& artifacts,
                                           const std::vector<std::string>& key_files,
                                           Duration lifetime, Timestamp now,
                                           const std::string& role = "targets");

// A delegated targets role to add (drover keys delegate).
struct TargetsDelegation {
  std::string role;                // check_delegated_role_name
  std::vector<std::string> paths;  // patterns of the artifacts it signs ("<name>/<version>")
  bool terminating = false;        // a device looks no further for the paths it matches
  int keys = 1;                    // new Ed25519 keys made for it
  int threshold = 1;               // of them needed to sign
  // Where its keys are written: "" keeps them online in <dir>/keys (the server signs the
  // role); a directory gives them to whoever signs offline (drover keys sign-targets --role).
  std::string offline_dir;
  bool replace = false;  // a role of that name is replaced (new keys, new paths) in its place
};

struct DelegatedKeys {
  std::vector<std::string> written;  // the role's new key files
  // Online key files of a role replaced that nothing else uses: kept until the targets are
  // signed without them (see undelegate_targets), for the operator to remove then.
  std::vector<std::string> unused;
};

// Adds `d` to <dir>/delegations.json (after its keys are written). The top-level targets
// carry it from their next signing (at the server's next publish, or the next `drover keys
// sign-targets` when they are signed offline). kAlreadyExists for a role of that name
// (unless `replace`), kInvalidArgument for a bad name, pattern, key count or threshold, or
// a role more than kMaxDelegatedRoles; kNotFound without a repository.
Result<DelegatedKeys> delegate_targets(FileSystem& fs, const std::string& dir,
                                       const TargetsDelegation& d);

// Removes the role `role` from <dir>/delegations.json. Devices keep finding its artifacts
// through it until the top-level targets are signed without it (by the server at its next
// publish when their keys are online; by the next `drover keys sign-targets` when they are
// offline); its artifacts then go back to the top-level targets. Returns its online key
// files, which nothing else uses: they are kept (the role's file must be signed until the
// targets no longer delegate to it), for the operator to remove once `drover keys list`
// no longer lists the role. kNotFound for a role not delegated.
Result<std::vector<std::string>> undelegate_targets(FileSystem& fs, const std::string& dir,
                                                    const std::string& role);

}  // namespace drover
