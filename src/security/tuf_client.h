// The client side of signed update metadata: TUF specification 1.0.x, section 5 ("Detailed
// client workflow"), against a repository reached through a MetadataFetcher.
//
// refresh() is one update cycle, every step against the time it started at:
//   root       versions N+1, N+2, ... fetched until none is found (at most
//              max_root_rotations); each signed by a threshold of the trusted root's root
//              keys *and* of its own, with exactly the next version; the final root unexpired.
//   timestamp  signed by the root's timestamp keys; not older than the trusted one (the
//              same version keeps the trusted file); the snapshot version it names not
//              older; unexpired.
//   snapshot   the length and hashes the timestamp lists; signed; exactly the version the
//              timestamp names; every targets role of the trusted snapshot still there and
//              not older; unexpired.
//   targets    the length and hashes the snapshot lists; signed; exactly the version the
//              snapshot names; unexpired.
// A file is kept (metadata_dir/<role>.json, written atomically) only once every check of
// its own passed: a cycle that fails part-way keeps what it trusted before the failure (the
// root versions it walked, a new timestamp whose snapshot then failed), as the
// specification has it, and nothing of the step that failed. The trusted timestamp and
// snapshot of an earlier cycle are used as the baseline against rollback only if they
// verify under the current root: after their keys were rotated they are ignored, which is
// how a client recovers from a fast-forward attack. Expiry is judged at the time refresh()
// started; find_target() and download_target() use what that refresh() trusted, so a
// long-lived client refreshes before each use.
//
// find_target() searches the delegations pre-order, depth first, each delegated role
// loaded (and checked like targets) as the search reaches it, a terminating delegation
// ending the search below it, visiting at most max_delegations roles and none twice.
//
// Not thread-safe: one refresh or lookup at a time.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include "base/clock.h"
#include "base/file_system.h"
#include "base/result.h"
#include "security/tuf_metadata.h"

namespace drover::security::tuf {

// How the client reaches the repository. The client's sink counts what arrives and fails
// once a file passes its limit (or arrives too slowly), and an implementation stops reading
// at the sink's first error: an endless or trickling response costs at most the limit.
class MetadataFetcher {
 public:
  using Sink = std::function<Status(std::string_view)>;
  virtual ~MetadataFetcher() = default;
  // Streams the body at `url` to `sink`. kNotFound when the repository has no such file
  // (HTTP 403 or 404), the sink's first error as it is, kIo for anything else.
  virtual Status fetch_to(const std::string& url, const Sink& sink) = 0;
};

struct ClientLimits {
  int max_root_rotations = 256;
  int max_delegations = 32;            // roles visited in one target search
  uint64_t root_max_length = 512'000;  // bytes, for files whose length nothing lists
  uint64_t timestamp_max_length = 16'384;
  // Also the most a listed length may say: a snapshot or targets file listed as longer is
  // refused before it is fetched (a compromised online key cannot make a device hold 1 GB).
  uint64_t snapshot_max_length = 2'000'000;
  uint64_t targets_max_length = 5'000'000;
  // Slow retrieval: a file must arrive within `grace` plus its limit at this rate.
  uint64_t min_bytes_per_second = 1024;
  Duration grace = seconds(60);
};

struct ClientOptions {
  std::string metadata_dir;  // the trusted metadata; root.json must be there
  std::string metadata_url;  // the repository's metadata, e.g. "https://host/tuf/"
  ClientLimits limits;
};

struct TargetInfo {
  std::string path;
  TargetFile file;
  std::string role;  // the role whose signed metadata lists it
};

class Updater {
 public:
  // Trusts `root` (the bytes of a root metadata file) for the first time: it must be root
  // metadata signed by a threshold of its own root keys. Writes metadata_dir/root.json and
  // removes any other trusted metadata there. Nothing is fetched. kInvalidArgument,
  // kUnauthenticated, kIo.
  static Status init(FileSystem& fs, const std::string& metadata_dir, std::string_view root);

  // Reads the trusted root (kNotFound without one; it must verify under its own keys).
  static Result<Updater> open(ClientOptions options, MetadataFetcher& fetcher, Clock& clock,
                              FileSystem& fs = real_file_system());

  // One update cycle, as above. kUnauthenticated (too few valid signatures),
  // kFailedPrecondition (rollback, version or hash mismatch, expired metadata),
  // kInvalidArgument (malformed metadata), kResourceExhausted (a file longer than allowed),
  // kNotFound (a file the repository must have), kIo (the network, the disk).
  Status refresh();

  // The signed description of the target at `path`, after refresh(). kNotFound when no role
  // trusted for the path lists it; the errors of refresh() for a delegated role that does
  // not verify.
  Result<TargetInfo> find_target(std::string_view path);

  // Where the repository serves a target: `base_url` + its path, each segment
  // percent-encoded, with the file name prefixed by its hash when the root asks for
  // consistent snapshots.
  std::string target_url(const TargetInfo& target, std::string_view base_url) const;

  // Fetches the target into `target_dir` (as encode_name(path)), streamed to a temporary
  // file while its length and hashes are checked, and renamed into place only when they
  // match. A file already there with the right length and hashes is not fetched again; a
  // bad download leaves the file there as it was.
  Status download_target(const TargetInfo& target, std::string_view base_url,
                         const std::string& target_dir);

  const Metadata& root() const { return root_; }
  // The trusted top-level metadata after a refresh() that succeeded; null before.
  const Metadata* timestamp() const { return timestamp_ ? &*timestamp_ : nullptr; }
  const Metadata* snapshot() const { return snapshot_ ? &*snapshot_ : nullptr; }
  const Metadata* targets() const { return targets_ ? &*targets_ : nullptr; }

 private:
  Updater(ClientOptions options, MetadataFetcher& fetcher, Clock& clock, FileSystem& fs,
          Metadata root);
  Status update_root();
  Status update_timestamp();
  Status update_snapshot();
  // Loads the targets metadata of `role` (top-level "targets" or a delegated role) as
  // delegated by `keys` and `role_keys`, from disk if it is the version the snapshot names,
  // else from the repository.
  Result<const Metadata*> load_targets(const std::string& role,
                                       const std::map<std::string, PublicKey>& keys,
                                       const RoleKeys& role_keys);
  // A trusted file of an earlier cycle, if it parses and verifies under `keys`.
  std::optional<Metadata> local(const std::string& file, const std::string& type,
                                const std::map<std::string, PublicKey>& keys,
                                const RoleKeys& role_keys);
  Status check_unexpired(const Metadata& m, std::string_view role) const;
  Status persist(const std::string& file, std::string_view bytes);
  std::string path_of(const std::string& file) const;
  // A metadata file, whole, at most `max_length` bytes.
  Result<std::string> fetch(const std::string& file, uint64_t max_length);
  // Streams `url` through `check` (the length limit) to `sink`, within the slow-retrieval
  // deadline for `max_length` bytes.
  Status fetch_checked(const std::string& url, uint64_t max_length, StreamCheck& check,
                       const MetadataFetcher::Sink& sink);

  ClientOptions o_;
  MetadataFetcher* fetcher_;
  Clock* clock_;
  FileSystem* fs_;
  Timestamp cycle_start_{};
  Metadata root_;
  std::optional<Metadata> timestamp_, snapshot_, targets_;
  std::map<std::string, Metadata> delegated_;  // loaded in this cycle, by role name
};

}  // namespace drover::security::tuf
