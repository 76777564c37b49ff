// A test file system that can leave behind what a power cut would (see the class).
#pragma once

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <shared_mutex>
#include <sstream>
#include <string>

#include "base/file_system.h"

namespace drover::testing {

namespace fs = std::filesystem;

// The real file system, remembering how much of each file is known durable, so a test can
// leave behind exactly what a power cut would: every file cut back to what was synced; a
// file created (or renamed into place) since its directory was last synced gone — or, if
// the rename replaced a file, that file's durable contents back; a file removed since its
// directory was last synced back. Every operation holds a shared lock and a power cut an
// exclusive one, so the cut falls between operations, as an instant does.
//
// fail_after(n) switches the power off after n more operations: every later one fails, as
// the device would have died there — so a test can cut inside a call, between its writes.
class PowerCutFileSystem final : public ForwardingFileSystem {
 public:
  class File final : public AppendFile {
   public:
    File(PowerCutFileSystem& owner, std::string path, std::unique_ptr<AppendFile> inner)
        : owner_(owner), path_(std::move(path)), inner_(std::move(inner)) {}
    Status append(std::string_view data) override {
      std::shared_lock lock(owner_.mu_);
      DROVER_TRY(owner_.spend());
      return inner_->append(data);
    }
    Status sync() override {
      std::shared_lock lock(owner_.mu_);
      DROVER_TRY(owner_.spend());
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

  // Every operation after the next `n` fails. -1: the power stays on.
  void fail_after(int64_t n) { budget_.store(n); }

  Result<std::unique_ptr<AppendFile>> open_append(const std::string& path) override {
    std::shared_lock lock(mu_);
    DROVER_TRY(spend());
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
    DROVER_TRY(spend());
    {
      std::lock_guard g(synced_mu_);
      remember_replaced(path);
    }
    DROVER_TRY(ForwardingFileSystem::write(path, data));
    std::lock_guard g(synced_mu_);
    synced_[path] = 0;
    unnamed_.insert(path);
    return ok_status();
  }
  Status sync(const std::string& path) override {
    std::shared_lock lock(mu_);
    DROVER_TRY(spend());
    DROVER_TRY(ForwardingFileSystem::sync(path));
    std::lock_guard g(synced_mu_);
    synced_[path] = fs::file_size(path);
    return ok_status();
  }
  Status rename(const std::string& from, const std::string& to) override {
    std::shared_lock lock(mu_);
    DROVER_TRY(spend());
    {
      std::lock_guard g(synced_mu_);
      remember_replaced(to);
    }
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
    DROVER_TRY(spend());
    DROVER_TRY(ForwardingFileSystem::sync_dir(dir));
    std::lock_guard g(synced_mu_);
    auto in_dir = [&](const std::string& p) { return fs::path(p).parent_path() == fs::path(dir); };
    for (auto it = unnamed_.begin(); it != unnamed_.end();) {
      it = in_dir(*it) ? unnamed_.erase(it) : std::next(it);
    }
    for (auto it = replaced_.begin(); it != replaced_.end();) {
      it = in_dir(it->first) ? replaced_.erase(it) : std::next(it);
    }
    for (auto it = removed_.begin(); it != removed_.end();) {
      it = in_dir(it->first) ? removed_.erase(it) : std::next(it);
    }
    return ok_status();
  }
  Status remove(const std::string& path) override {
    std::shared_lock lock(mu_);
    DROVER_TRY(spend());
    {
      std::lock_guard g(synced_mu_);
      // Until its directory is synced, a removed file may come back with a power cut.
      if (fs::exists(path) && unnamed_.count(path) == 0) removed_[path] = durable(path);
      unnamed_.erase(path);
      synced_.erase(path);
    }
    return ForwardingFileSystem::remove(path);
  }
  Status make_dir(const std::string& dir) override {
    std::shared_lock lock(mu_);
    DROVER_TRY(spend());
    return ForwardingFileSystem::make_dir(dir);
  }
  Status truncate(const std::string& path, uint64_t size) override {
    std::shared_lock lock(mu_);
    DROVER_TRY(spend());
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
    auto put_back = [&](const std::string& original, const std::string& contents) {
      std::ofstream(copy + original.substr(dir.size()), std::ios::binary | std::ios::trunc)
          << contents;
    };
    for (const std::string& original : unnamed_) {
      if (original.rfind(dir, 0) != 0) continue;
      fs::remove(copy + original.substr(dir.size()));
      if (auto old = replaced_.find(original); old != replaced_.end())
        put_back(original, old->second);
    }
    for (const auto& [original, contents] : removed_) {
      if (original.rfind(dir, 0) == 0) put_back(original, contents);
    }
  }

 private:
  Status spend() {
    int64_t left = budget_.load();
    while (left >= 0) {
      if (left == 0) return io_error("the power is off");
      if (budget_.compare_exchange_weak(left, left - 1)) return ok_status();
    }
    return ok_status();
  }
  // What of `path` would survive a power cut now. synced_mu_ held.
  std::string durable(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    std::string contents = s.str();
    auto it = synced_.find(path);
    if (it != synced_.end() && it->second < contents.size()) contents.resize(it->second);
    return contents;
  }
  // `path` is about to be replaced: if its name is durable, a power cut before the directory
  // is synced brings its durable contents back. synced_mu_ held.
  void remember_replaced(const std::string& path) {
    if (!fs::exists(path) || unnamed_.count(path) > 0 || replaced_.count(path) > 0) return;
    replaced_[path] = durable(path);
  }

  std::shared_mutex mu_;
  std::mutex synced_mu_;
  std::atomic<int64_t> budget_{-1};
  std::map<std::string, uint64_t> synced_;
  std::set<std::string> unnamed_;                // files whose directory entry is not durable
  std::map<std::string, std::string> replaced_;  // durable files a rename or write replaced
  std::map<std::string, std::string> removed_;   // durable files removed since the dir sync
};

}  // namespace drover::testing
