// A test file system that can leave behind what a power cut would (see the class).
#pragma once

#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <shared_mutex>
#include <string>

#include "base/file_system.h"

namespace drover::testing {

namespace fs = std::filesystem;

// The real file system, remembering how much of each file is known durable, so a test can
// leave behind exactly what a power cut would: every file cut back to what was synced, and
// a file created (or renamed into place) since its directory was last synced gone. Every
// operation holds a shared lock and a power cut an exclusive one, so the cut falls between
// operations, as an instant does.
class PowerCutFileSystem final : public ForwardingFileSystem {
 public:
  class File final : public AppendFile {
   public:
    File(PowerCutFileSystem& owner, std::string path, std::unique_ptr<AppendFile> inner)
        : owner_(owner), path_(std::move(path)), inner_(std::move(inner)) {}
    Status append(std::string_view data) override {
      std::shared_lock lock(owner_.mu_);
      return inner_->append(data);
    }
    Status sync() override {
      std::shared_lock lock(owner_.mu_);
      DROVER_TRY(inner_->sync());
      std::lock_guard g(owner_.synced_mu_);
      owner_.synced_[path_] = inner_->size();
      return ok_status();
    }
    uint64_t size() const override { return inner_->size(); }

   private:
    PowerCutFileSystem& owner_;
    std::string path_;
    std::unique_ptr<AppendFile> inner_;
  };

  Result<std::unique_ptr<AppendFile>> open_append(const std::string& path) override {
    std::shared_lock lock(mu_);
    auto inner = ForwardingFileSystem::open_append(path);
    if (!inner.ok()) return inner.error();
    {
      std::lock_guard g(synced_mu_);
      // What was there before is durable; a new file's name is not, until its directory is.
      if (synced_.try_emplace(path, (*inner)->size()).second && (*inner)->size() == 0) {
        unnamed_.insert(path);
      }
    }
    return std::unique_ptr<AppendFile>(std::make_unique<File>(*this, path, std::move(*inner)));
  }
  Status write(const std::string& path, std::string_view data) override {
    std::shared_lock lock(mu_);
    DROVER_TRY(ForwardingFileSystem::write(path, data));
    std::lock_guard g(synced_mu_);
    synced_[path] = 0;
    unnamed_.insert(path);
    return ok_status();
  }
  Status sync(const std::string& path) override {
    std::shared_lock lock(mu_);
    DROVER_TRY(ForwardingFileSystem::sync(path));
    std::lock_guard g(synced_mu_);
    synced_[path] = fs::file_size(path);
    return ok_status();
  }
  Status rename(const std::string& from, const std::string& to) override {
    std::shared_lock lock(mu_);
    DROVER_TRY(ForwardingFileSystem::rename(from, to));
    std::lock_guard g(synced_mu_);
    auto it = synced_.find(from);
    if (it != synced_.end()) {
      synced_[to] = it->second;
      synced_.erase(from);
    }
    unnamed_.erase(from);
    unnamed_.insert(to);
    return ok_status();
  }
  Status sync_dir(const std::string& dir) override {
    std::shared_lock lock(mu_);
    DROVER_TRY(ForwardingFileSystem::sync_dir(dir));
    std::lock_guard g(synced_mu_);
    for (auto it = unnamed_.begin(); it != unnamed_.end();) {
      it = fs::path(*it).parent_path() == fs::path(dir) ? unnamed_.erase(it) : std::next(it);
    }
    return ok_status();
  }
  Status truncate(const std::string& path, uint64_t size) override {
    std::shared_lock lock(mu_);
    DROVER_TRY(ForwardingFileSystem::truncate(path, size));
    std::lock_guard g(synced_mu_);
    synced_[path] = std::min(synced_[path], size);
    return ok_status();
  }

  // Copies `dir` to `copy` as a power cut at this instant would leave it: each file holds
  // only what was synced.
  void cut_power_into(const std::string& dir, const std::string& copy) {
    std::unique_lock lock(mu_);
    std::lock_guard g(synced_mu_);
    fs::remove_all(copy);
    fs::copy(dir, copy, fs::copy_options::recursive);
    for (const auto& entry : fs::recursive_directory_iterator(copy)) {
      if (!entry.is_regular_file()) continue;
      std::string original = dir + entry.path().string().substr(copy.size());
      // A file this file system never touched was there, durable, before it.
      auto it = synced_.find(original);
      uint64_t keep = it == synced_.end() ? fs::file_size(entry.path()) : it->second;
      if (fs::file_size(entry.path()) > keep) fs::resize_file(entry.path(), keep);
    }
    for (const std::string& original : unnamed_) fs::remove(copy + original.substr(dir.size()));
  }

 private:
  std::shared_mutex mu_;
  std::mutex synced_mu_;
  std::map<std::string, uint64_t> synced_;
  std::set<std::string> unnamed_;  // files whose directory entry is not yet durable
};

}  // namespace drover::testing
