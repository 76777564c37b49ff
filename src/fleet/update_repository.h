// UpdateRepository: the signed update metadata (TUF, security/tuf_repository.h) that
// `drover serve` publishes for its artifacts, kept in a directory of the data directory:
//
//   metadata/<N>.root.json       every root, signed with the offline root keys
//                                (`drover keys gen`, `drover keys rotate-root`)
//   metadata/<N>.targets.json    the artifacts as targets, and the snapshot naming them
//   metadata/<N>.snapshot.json
//   metadata/timestamp.json      naming the snapshot: written last, so it commits a version
//   keys/<key id>.pem            the online private keys (owner-only)
//
// Each artifact is the target "<name>/<version>", its length and SHA-256 those of its
// content, and Drover's metadata in `custom` (version, device_types, hardware_revisions,
// depends), so a device checks what it is offered against what was signed. The timestamp
// and snapshot are signed online and signed again once half their lifetime is gone; targets
// are signed online when the root's targets keys are in keys/; else they are what the
// operator signs offline (sign_targets_offline, `drover keys sign-targets`): a newer targets
// file that verifies is taken at the next publish, and an artifact the served targets do not
// list is not signed (is_signed).
//
// Persist, then publish: every file is written atomically before anything names it, and
// versions only grow (past any file found, even one a crash left unnamed), so no client ever
// sees one version with two contents.
//
// Thread-safety: all methods may be called from several threads.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/clock.h"
#include "base/file_system.h"
#include "base/mutex.h"
#include "base/result.h"
#include "model/artifact.h"

namespace drover {

struct UpdateRepositoryOptions {
  Duration timestamp_lifetime = days(1);
  Duration snapshot_lifetime = days(7);
  Duration targets_lifetime = days(90);  // online targets only
  // Older targets and snapshot files kept for clients in the middle of a refresh.
  size_t keep_versions = 8;
};

// What the repository signs and with what: for `drover keys list` and the operator API.
struct RepositoryState {
  struct Role {
    std::string name;
    std::vector<std::string> key_ids;
    int threshold = 1;
    size_t online_keys = 0;  // of key_ids, held in keys/
    int64_t version = 0;     // of the file served now (0: none yet)
    Timestamp expires{};
    bool valid = false;  // signed by the keys the root names now, and not expired
  };
  std::vector<Role> roles;  // root, targets, snapshot, timestamp
  size_t signed_targets = 0;
};

class UpdateRepository {
 public:
  // The repository in `dir` (<data>/tuf). kNotFound when no root was made there (signed
  // metadata is off until `drover keys gen`), kCorruption for a root chain that does not
  // verify or online keys that cannot be read. Call publish() before serving.
  static Result<std::unique_ptr<UpdateRepository>> open(FileSystem& fs, std::string dir,
                                                        Clock& clock,
                                                        UpdateRepositoryOptions options = {});
  ~UpdateRepository();
  UpdateRepository(const UpdateRepository&) = delete;
  UpdateRepository& operator=(const UpdateRepository&) = delete;

  // Takes a newer root a `drover keys rotate-root` wrote (checked as a client checks it: the
  // old root's threshold and its own), then signs what is out of date: the targets, when
  // their keys are online and `artifacts` differ from what they list or they are due; the
  // snapshot and the timestamp when what they name changed or they are due. Everything is
  // on disk when it returns. kFailedPrecondition when the timestamp or snapshot keys the
  // root names are not online (fewer than its threshold), kIo when a file cannot be written.
  Status publish(const std::vector<Artifact>& artifacts);
  // The same with the artifacts last published: what a timer calls.
  Status refresh();

  // A metadata file by the name a client asks for ("timestamp.json", "3.snapshot.json",
  // "2.root.json"): kNotFound for any other name or a version not kept.
  Result<std::string> metadata(std::string_view file) const;

  // Whether the targets served now list `a`, with its length and hash.
  bool is_signed(const Artifact& a) const;
  // The target path of `a`: "<name>/<version>".
  static std::string target_path(const Artifact& a);
  // The custom value signed for `a` (canonical JSON).
  static std::string target_custom(const Artifact& a);

  RepositoryState state() const;

 private:
  struct Impl;
  explicit UpdateRepository(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

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

// Signs targets offline (`drover keys sign-targets`, on the server's machine with the targets
// keys brought from where they are kept): `artifacts` as targets version N+1 (N the highest
// on disk), expiring `lifetime` after `now`, signed by every key in `key_files` (PEM) the
// current root gives the targets role, written to <dir>/metadata/<N+1>.targets.json. A
// running server whose targets keys are not online takes it at its next publish and signs a
// snapshot and timestamp naming it. Returns N+1. kFailedPrecondition when the root's targets
// keys are online (the server signs targets itself: move them out of keys/ first);
// kUnauthenticated, nothing written, when the keys given do not meet the targets threshold;
// kInvalidArgument for a key file that is not an Ed25519 private key; kNotFound without a
// repository.
Result<int64_t> sign_targets_offline(FileSystem& fs, const std::string& dir,
                                     const std::vector<Artifact>& artifacts,
                                     const std::vector<std::string>& key_files, Duration lifetime,
                                     Timestamp now);

}  // namespace drover
