#include "fleet/artifact_service.h"

#include <algorithm>
#include <filesystem>

#include "base/file_system.h"
#include "security/crypto.h"

namespace drover {

ArtifactService::ArtifactService(Store& store, RolloutEngine& engine, std::string directory)
    : store_(store), engine_(engine), directory_(std::move(directory)) {}

std::string ArtifactService::path_of(const Artifact& a) const {
  return (std::filesystem::path(directory_) / a.sha256).string();
}

Result<Artifact> ArtifactService::upload(Artifact meta, std::string_view content,
                                         std::string_view expected_sha256) {
  meta.size_bytes = content.size();
  meta.sha256 = security::to_hex(security::sha256(content));
  if (!expected_sha256.empty() && expected_sha256 != meta.sha256) {
    return invalid_argument("the content's sha256 is " + meta.sha256 + ", not the expected " +
                            std::string(expected_sha256));
  }
  DROVER_TRY(validate(meta));
  MutexLock lock(mu_);
  auto existing = store_.get_artifact(meta.name, meta.version);
  if (!existing.ok()) return existing.error();
  if (existing->has_value()) {
    if (**existing == meta) return meta;
    return Error{ErrorCode::kAlreadyExists,
                 "artifact " + meta.key() +
                     " exists with other content or metadata; artifacts are immutable, upload a "
                     "new version"};
  }
  std::error_code ec;
  std::filesystem::create_directories(directory_, ec);
  if (ec) return io_error("cannot create " + directory_ + ": " + ec.message());
  const std::string path = path_of(meta);
  if (!std::filesystem::exists(path, ec) ||
      std::filesystem::file_size(path, ec) != content.size()) {
    DROVER_TRY(write_atomically(real_file_system(), path, content));
  }
  WriteBatch batch;
  batch.artifacts.push_back(meta);
  DROVER_TRY(store_.apply(batch));
  return meta;
}

Result<std::vector<Artifact>> ArtifactService::list() { return store_.list_artifacts(); }

Result<Artifact> ArtifactService::get(std::string_view name, std::string_view version) {
  auto found = store_.get_artifact(name, version);
  if (!found.ok()) return found.error();
  if (!found->has_value()) {
    return not_found("no artifact " + std::string(name) + "@" + std::string(version));
  }
  return std::move(**found);
}

Status ArtifactService::remove(std::string_view name, std::string_view version) {
  MutexLock lock(mu_);
  auto found = get(name, version);
  if (!found.ok()) return found.error();
  DROVER_TRY(engine_.remove_artifact(found->name, found->version));
  // The content goes only when no other artifact shares it. A crash before this leaves an
  // unreferenced file, never a record without its file.
  auto rest = store_.list_artifacts();
  if (rest.ok() && std::none_of(rest->begin(), rest->end(),
                                [&](const Artifact& a) { return a.sha256 == found->sha256; })) {
    std::error_code ignored;
    std::filesystem::remove(path_of(*found), ignored);
  }
  return ok_status();
}

}  // namespace drover
