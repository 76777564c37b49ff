// ArtifactService: the update files operators upload and devices download. Content lives in
// one directory, one file per distinct content named by its SHA-256 (so no artifact name or
// version ever becomes part of a path); the metadata record lives in the Store. Artifacts
// are immutable: the same name and version cannot be uploaded again with other content.
//
// Persist, then act: the file is written (temp, fsync, rename) before the record that points
// at it, so a crash never leaves a record without its content; what a crash leaves the other
// way (content without a record, a partial upload) is swept at the next start.
//
// Room on the disk: an upload is refused (kResourceExhausted) when it would leave less than a
// reserve free, so that the store, and with it a DELETE that frees space, can still write; a
// write that fails half-way removes what it wrote. Uploads admitted and still arriving hold
// their declared size as promised, less what they have spooled to incoming/ already (which
// the file system counts): several at once cannot each be admitted against the same free
// space.
//
// Thread-safety: all methods may be called from several threads.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/mutex.h"
#include "base/result.h"
#include "model/artifact.h"
#include "rollout/engine.h"
#include "store/store.h"

namespace drover {

class UpdateRepository;

struct ArtifactSpace {
  // Kept free on the artifacts' file system after every upload.
  uint64_t reserve_bytes = 64ull << 20;
  // The free bytes of the file system that holds `path` (statvfs's f_bavail; tests inject a
  // full disk). Empty: the operating system's answer.
  std::function<Result<uint64_t>(const std::string& path)> free_bytes;
};

class ArtifactService {
 public:
  // `directory` and its incoming/ subdirectory are created when missing.
  ArtifactService(Store& store, RolloutEngine& engine, std::string directory,
                  ArtifactSpace space = {});

  // Whether an upload of `bytes` may be spooled to incoming_directory() (created here):
  // kResourceExhausted when it would leave less than the reserve free once every upload
  // admitted before it has arrived (the message says how much is free), kIo when that cannot
  // be told. Admitted, the bytes stay promised until the returned hold is destroyed (when
  // the upload has been stored or has failed).
  Result<std::shared_ptr<void>> admit(uint64_t bytes);
  // Bytes promised to admitted uploads that have not released them yet.
  uint64_t promised_bytes() const;

  // Stores `content` as artifact meta.name@meta.version. meta.size_bytes and meta.sha256
  // are computed here; `expected_sha256`, when not empty, must match the content (an upload
  // cut or changed on the way is refused). Uploading the identical artifact again returns
  // it unchanged. kInvalidArgument for bad metadata or a hash mismatch, kAlreadyExists when
  // the version exists with other content, kIo when the file or record cannot be written;
  // nothing is recorded on error.
  Result<Artifact> upload(Artifact meta, std::string_view content,
                          std::string_view expected_sha256 = {});
  // The same for content already written to `file` in incoming_directory() (an upload
  // spooled as it arrived), of `size` bytes with SHA-256 `sha256` (32 raw bytes): the file is
  // made durable and moved into place, not copied. The caller removes it on error.
  Result<Artifact> upload_file(Artifact meta, const std::string& file, uint64_t size,
                               std::string_view sha256, std::string_view expected_sha256 = {});
  // Where uploads are spooled: on the same file system as the content, so a move is a rename.
  std::string incoming_directory() const;

  // What crashes left behind, removed before serving: partial uploads in incoming/,
  // temporary files, and content files no artifact record names. Other files are left alone.
  struct Swept {
    size_t files = 0;
    uint64_t bytes = 0;
  };
  Result<Swept> sweep();

  Result<std::vector<Artifact>> list();
  // kNotFound when absent.
  Result<Artifact> get(std::string_view name, std::string_view version);

  // Deletes an artifact no rollout needs (RolloutEngine::remove_artifact decides, under its
  // lock), then its content when no other artifact shares it. kNotFound when absent.
  Status remove(std::string_view name, std::string_view version);

  // Where the content of `a` is kept.
  std::string path_of(const Artifact& a) const;

  // With signed update metadata on: every upload and removal publishes the artifacts as
  // signed targets (a failure leaves the artifact unsigned until the repository's next
  // refresh publishes it; the upload itself stands). Set before serving.
  void publish_to(UpdateRepository* repository);
  // Publishes the artifacts now (at start). ok without a repository.
  Status publish();
  // Whether `a` is in the signed targets; nullopt when signed metadata is off.
  std::optional<bool> is_signed(const Artifact& a) const;

 private:
  Store& store_;
  RolloutEngine& engine_;
  // The promises of admitted uploads; shared with their holds, which may outlive the service.
  struct Promises {
    Mutex mu;
    uint64_t bytes GUARDED_BY(mu) = 0;
  };
  std::shared_ptr<Promises> promises_ = std::make_shared<Promises>();
  Status fits(uint64_t bytes) const REQUIRES(promises_->mu);
  Result<std::optional<Artifact>> check(Artifact& meta, std::string_view expected_sha256)
      REQUIRES(mu_);
  Result<Artifact> record(const Artifact& meta) REQUIRES(mu_);
  Status publish_locked() REQUIRES(mu_);

  std::string directory_;
  ArtifactSpace space_;
  Mutex mu_{LockLevel::kArtifacts};  // one upload or removal at a time
  // What this process recorded, by key: the immutability check must see records still
  // queued for the disk (artifacts are few; this is never large).
  std::map<std::string, Artifact, std::less<>> recorded_ GUARDED_BY(mu_);
  UpdateRepository* repository_ = nullptr;  // set before serving, then read only
};

}  // namespace drover
