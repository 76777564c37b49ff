// ArtifactService: the update files operators upload and devices download. Content lives in
// one directory, one file per distinct content named by its SHA-256 (so no artifact name or
// version ever becomes part of a path); the metadata record lives in the Store. Artifacts
// are immutable: the same name and version cannot be uploaded again with other content.
//
// Persist, then act: the file is written (temp, fsync, rename) before the record that points
// at it, so a crash never leaves a record without its content.
//
// Thread-safety: all methods may be called from several threads.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/mutex.h"
#include "base/result.h"
#include "model/artifact.h"
#include "rollout/engine.h"
#include "store/store.h"

namespace drover {

class ArtifactService {
 public:
  // `directory` is created when missing.
  ArtifactService(Store& store, RolloutEngine& engine, std::string directory);

  // Stores `content` as artifact meta.name@meta.version. meta.size_bytes and meta.sha256
  // are computed here; `expected_sha256`, when not empty, must match the content (an upload
  // cut or changed on the way is refused). Uploading the identical artifact again returns
  // it unchanged. kInvalidArgument for bad metadata or a hash mismatch, kAlreadyExists when
  // the version exists with other content, kIo when the file or record cannot be written;
  // nothing is recorded on error.
  Result<Artifact> upload(Artifact meta, std::string_view content,
                          std::string_view expected_sha256 = {});

  Result<std::vector<Artifact>> list();
  // kNotFound when absent.
  Result<Artifact> get(std::string_view name, std::string_view version);

  // Deletes an artifact no rollout needs (RolloutEngine::remove_artifact decides, under its
  // lock), then its content when no other artifact shares it. kNotFound when absent.
  Status remove(std::string_view name, std::string_view version);

  // Where the content of `a` is kept.
  std::string path_of(const Artifact& a) const;

 private:
  Store& store_;
  RolloutEngine& engine_;
  std::string directory_;
  Mutex mu_;  // one upload or removal at a time
};

}  // namespace drover
