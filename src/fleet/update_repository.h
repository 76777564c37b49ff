// UpdateRepository: the signed update metadata (TUF, security/tuf_repository.h) that
// `drover serve` publishes for its artifacts, kept in a directory of the data directory:
//
//   metadata/<N>.root.json       every root, signed with the offline root keys
//                                (`drover keys gen`, `drover keys rotate-root`)
//   metadata/<N>.targets.json    the artifacts as targets, and the snapshot naming them
//   metadata/<N>.<role>.json     each delegated targets role's (delegations.json)
//   metadata/<N>.snapshot.json
//   metadata/timestamp.json      naming the snapshot: written last, so it commits a version
//   keys/<key id>.pem            the online private keys (owner-only)
//   delegations.json             the delegated roles (fleet/targets_delegations.h)
//
// Each artifact is the target "<name>/<version>", its length and SHA-256 those of its
// content, and Drover's metadata in `custom` (version, device_types, hardware_revisions,
// depends), so a device checks what it is offered against what was signed. The timestamp
// and snapshot are signed online and signed again once half their lifetime is gone. Each
// targets role (the top-level one, and every role it delegates to, one level deep) lists the
// artifacts it signs — a delegated role those its path patterns match first, the top-level
// role the rest — and is signed online when enough of its keys are in keys/; else it is what
// the operator signs offline (sign_targets_offline, `drover keys sign-targets [--role]`): a
// newer file that verifies is taken at the next publish. An artifact is signed (is_signed)
// when a device searching the served metadata would find it, as it is.
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
  // Whether a delegated role is in the top-level targets served now, as delegations.json
  // (drover keys delegate) has it.
  enum class Delegation {
    kNone,     // a top-level role
    kServed,   // delegated by the targets served now, as configured
    kPending,  // configured, not yet (or otherwise) in the targets served: signed into them at
               // the next publish, or by the next `drover keys sign-targets` when offline
    kRemoved,  // in the targets served, no longer configured
  };
  struct Role {
    std::string name;
    std::vector<std::string> key_ids;
    int threshold = 1;
    size_t online_keys = 0;  // of key_ids, held in keys/
    int64_t version = 0;     // of the file served now (0: none yet)
    Timestamp expires{};
    bool valid = false;  // signed by the keys its role is given now, and not expired
    Delegation delegation = Delegation::kNone;
    std::vector<std::string> paths;  // a delegated role's path patterns
    bool terminating = false;
    // Whether the server cannot sign it itself: the root, and a targets role (top-level or
    // delegated) without enough online keys. Expiry is then the operator's to watch.
    bool signed_offline() const;
  };
  std::vector<Role> roles;  // root, targets, snapshot, timestamp, then delegated roles
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

}  // namespace drover
