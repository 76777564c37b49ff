#include "fleet/artifact_service.h"

#include <algorithm>
#include <filesystem>
#include <optional>
#include <set>

#include "base/file_system.h"
#include "base/units.h"
#include "fleet/update_repository.h"
#include "security/crypto.h"

namespace drover {

namespace {

bool is_content_name(const std::string& name) {
  return name.size() == 64 && std::all_of(name.begin(), name.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

}  // namespace

ArtifactService::ArtifactService(Store& store, RolloutEngine& engine, std::string directory,
                                 ArtifactSpace space)
    : store_(store), engine_(engine), directory_(std::move(directory)), space_(std::move(space)) {
  if (!space_.free_bytes) space_.free_bytes = free_bytes;
}

std::string ArtifactService::path_of(const Artifact& a) const {
  return (std::filesystem::path(directory_) / a.sha256).string();
}

std::string ArtifactService::incoming_directory() const {
  return (std::filesystem::path(directory_) / "incoming").string();
}

namespace {

// The bytes of the files in `directory` (0 when it cannot be listed).
uint64_t bytes_in(const std::string& directory) {
  uint64_t total = 0;
  std::error_code ec;
  for (std::filesystem::directory_iterator it(directory, ec), end; !ec && it != end;
       it.increment(ec)) {
    std::error_code size_ec;
    const uint64_t size = it->is_regular_file(size_ec) ? it->file_size(size_ec) : 0;
    if (!size_ec) total += size;
  }
  return total;
}

// Releases an admitted upload's promise when the upload is over.
class PromiseHold {
 public:
  explicit PromiseHold(std::function<void()> release) : release_(std::move(release)) {}
  PromiseHold(const PromiseHold&) = delete;
  PromiseHold& operator=(const PromiseHold&) = delete;
  ~PromiseHold() { release_(); }

 private:
  std::function<void()> release_;
};

}  // namespace

Result<std::shared_ptr<void>> ArtifactService::admit(uint64_t bytes) {
  std::error_code ec;
  std::filesystem::create_directories(incoming_directory(), ec);
  if (ec) return io_error("cannot create " + incoming_directory() + ": " + ec.message());
  MutexLock lock(promises_->mu);
  DROVER_TRY(fits(bytes));
  promises_->bytes += bytes;
  return std::shared_ptr<void>(std::make_shared<PromiseHold>([promises = promises_, bytes] {
    MutexLock release(promises->mu);
    promises->bytes -= bytes;
  }));
}

uint64_t ArtifactService::promised_bytes() const {
  MutexLock lock(promises_->mu);
  return promises_->bytes;
}

// Room for `bytes` more once every admitted upload has arrived (statvfs and the promises
// judged together, under promises_->mu).
Status ArtifactService::fits(uint64_t bytes) const {
  std::error_code ec;
  std::filesystem::create_directories(directory_, ec);
  if (ec) return io_error("cannot create " + directory_ + ": " + ec.message());
  auto free = space_.free_bytes(directory_);
  if (!free.ok()) return free.error();
  // What admitted uploads have spooled already is counted by the file system: only the
  // rest of their promise is still to come.
  const uint64_t spooled = bytes_in(incoming_directory());
  const uint64_t promised = promises_->bytes > spooled ? promises_->bytes - spooled : 0;
  const uint64_t spare = space_.reserve_bytes + promised;
  if (*free < spare || *free - spare < bytes) {
    std::string already;
    if (promised > 0) already = " and " + format_bytes(promised) + " promised to uploads arriving";
    return Error{ErrorCode::kResourceExhausted,
                 "no room for " + format_bytes(bytes) + ": " + format_bytes(*free) +
                     " free on the server's disk, of which " + format_bytes(space_.reserve_bytes) +
                     " stay in reserve for the store" + already +
                     "; delete artifacts no rollout needs"};
  }
  return ok_status();
}

// Validates the upload against what exists: the artifact itself when it is already stored
// identically, nullopt when it is new.
Result<std::optional<Artifact>> ArtifactService::check(Artifact& meta,
                                                       std::string_view expected_sha256) {
  if (!expected_sha256.empty() && expected_sha256 != meta.sha256) {
    return invalid_argument("the content's sha256 is " + meta.sha256 + ", not the expected " +
                            std::string(expected_sha256));
  }
  DROVER_TRY(validate(meta));
  // A record this process queued may not be durable yet, and the store's reads see only what
  // is (group commit): those are looked up here first.
  std::optional<Artifact> known;
  if (auto queued = recorded_.find(meta.key()); queued != recorded_.end()) known = queued->second;
  if (!known) {
    auto existing = store_.get_artifact(meta.name, meta.version);
    if (!existing.ok()) return existing.error();
    known = std::move(*existing);
  }
  if (known) {
    if (*known == meta) return known;
    return Error{ErrorCode::kAlreadyExists,
                 "artifact " + meta.key() +
                     " exists with other content or metadata; artifacts are immutable, upload a "
                     "new version"};
  }
  return std::optional<Artifact>();
}

Result<Artifact> ArtifactService::upload(Artifact meta, std::string_view content,
                                         std::string_view expected_sha256) {
  meta.size_bytes = content.size();
  meta.sha256 = security::to_hex(security::sha256(content));
  MutexLock lock(mu_);
  auto known = check(meta, expected_sha256);
  if (!known.ok()) return known.error();
  if (*known) return std::move(**known);
  std::error_code ec;
  const std::string path = path_of(meta);
  if (!std::filesystem::exists(path, ec) ||
      std::filesystem::file_size(path, ec) != content.size()) {
    {
      MutexLock promised(promises_->mu);
      DROVER_TRY(fits(content.size()));
    }
    DROVER_TRY(write_atomically(real_file_system(), path, content));
  }
  return record(meta);
}

Result<Artifact> ArtifactService::upload_file(Artifact meta, const std::string& file, uint64_t size,
                                              std::string_view sha256,
                                              std::string_view expected_sha256) {
  meta.size_bytes = size;
  meta.sha256 = security::to_hex(sha256);
  MutexLock lock(mu_);
  auto known = check(meta, expected_sha256);
  if (!known.ok()) return known.error();
  if (*known) return std::move(**known);
  std::error_code ec;
  const std::string path = path_of(meta);
  if (!std::filesystem::exists(path, ec) || std::filesystem::file_size(path, ec) != size) {
    FileSystem& fs = real_file_system();
    DROVER_TRY(fs.sync(file));
    DROVER_TRY(fs.rename(file, path));
    DROVER_TRY(fs.sync_dir(directory_));
  }
  return record(meta);
}

// The content is in place: now the record that points at it.
Result<Artifact> ArtifactService::record(const Artifact& meta) {
  WriteBatch batch;
  batch.artifacts.push_back(meta);
  DROVER_TRY(store_.apply(batch));
  recorded_.insert_or_assign(meta.key(), meta);
  (void)publish_locked();  // on failure, the repository's refresh publishes it
  return meta;
}

void ArtifactService::publish_to(UpdateRepository* repository) { repository_ = repository; }

Status ArtifactService::publish() {
  MutexLock lock(mu_);
  return publish_locked();
}

// This thread's own writes are read back (store.h: read-committed with its queued writes),
// so the list holds what was just recorded or removed.
Status ArtifactService::publish_locked() {
  if (repository_ == nullptr) return ok_status();
  auto all = store_.list_artifacts();
  if (!all.ok()) return all.error();
  return repository_->publish(*all);
}

std::optional<bool> ArtifactService::is_signed(const Artifact& a) const {
  if (repository_ == nullptr) return std::nullopt;
  return repository_->is_signed(a);
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
  recorded_.erase(found->key());
  (void)publish_locked();  // a target left behind is harmless: no record, no offer
  // The content goes only when no other artifact shares it. A crash before this leaves an
  // unreferenced file, which the next sweep() removes; never a record without its file.
  auto rest = store_.list_artifacts();
  if (rest.ok() && std::none_of(rest->begin(), rest->end(),
                                [&](const Artifact& a) { return a.sha256 == found->sha256; })) {
    std::error_code ignored;
    std::filesystem::remove(path_of(*found), ignored);
  }
  return ok_status();
}

Result<ArtifactService::Swept> ArtifactService::sweep() {
  MutexLock lock(mu_);
  Swept swept;
  std::error_code ec;
  if (!std::filesystem::exists(directory_, ec)) return swept;
  auto all = store_.list_artifacts();
  if (!all.ok()) return all.error();
  std::set<std::string> named;
  for (const Artifact& a : *all) named.insert(a.sha256);
  auto drop = [&](const std::filesystem::directory_entry& entry) {
    std::error_code size_ec, remove_ec;
    const uint64_t bytes = entry.file_size(size_ec);
    if (std::filesystem::remove(entry.path(), remove_ec)) {
      ++swept.files;
      swept.bytes += size_ec ? 0 : bytes;
    }
  };
  std::error_code list_ec;
  for (auto it = std::filesystem::directory_iterator(directory_, list_ec);
       !list_ec && it != std::filesystem::directory_iterator(); it.increment(list_ec)) {
    std::error_code entry_ec;
    if (!it->is_regular_file(entry_ec)) continue;
    const std::string name = it->path().filename().string();
    if (name.ends_with(".tmp") || (is_content_name(name) && !named.contains(name))) drop(*it);
  }
  if (list_ec) return io_error("cannot list " + directory_ + ": " + list_ec.message());
  std::error_code incoming_ec;
  for (auto it = std::filesystem::directory_iterator(incoming_directory(), incoming_ec);
       !incoming_ec && it != std::filesystem::directory_iterator(); it.increment(incoming_ec)) {
    std::error_code entry_ec;
    if (it->is_regular_file(entry_ec)) drop(*it);
  }
  return swept;
}

}  // namespace drover
