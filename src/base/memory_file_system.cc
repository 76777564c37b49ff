#include "base/memory_file_system.h"

#include <algorithm>

namespace drover {
namespace {

class MemoryAppendFile final : public AppendFile {
 public:
  explicit MemoryAppendFile(std::shared_ptr<std::string> contents)
      : contents_(std::move(contents)) {}
  Status append(std::string_view data) override {
    contents_->append(data);
    return ok_status();
  }
  Status sync() override { return ok_status(); }
  uint64_t size() const override { return contents_->size(); }

 private:
  std::shared_ptr<std::string> contents_;
};

class MemoryReadFile final : public ReadFile {
 public:
  explicit MemoryReadFile(std::shared_ptr<std::string> contents) : contents_(std::move(contents)) {}
  Result<std::string> read_at(uint64_t offset, size_t length) const override {
    if (offset >= contents_->size()) return std::string();
    return contents_->substr(offset, length);
  }
  uint64_t size() const override { return contents_->size(); }

 private:
  std::shared_ptr<std::string> contents_;
};

}  // namespace

Result<std::string> MemoryFileSystem::read(const std::string& path) {
  auto it = files_.find(path);
  if (it == files_.end()) return not_found(path + " does not exist");
  return *it->second;
}

Status MemoryFileSystem::write(const std::string& path, std::string_view data) {
  auto& contents = files_[path];
  if (contents) {
    contents->assign(data);  // open handles see it, as with O_TRUNC on the same file
  } else {
    contents = std::make_shared<std::string>(data);
  }
  return ok_status();
}

Status MemoryFileSystem::rename(const std::string& from, const std::string& to) {
  auto it = files_.find(from);
  if (it == files_.end()) return not_found(from + " does not exist");
  Contents contents = it->second;
  files_.erase(it);
  files_[to] = std::move(contents);
  return ok_status();
}

Status MemoryFileSystem::remove(const std::string& path) {
  files_.erase(path);
  return ok_status();
}

Result<std::unique_ptr<AppendFile>> MemoryFileSystem::open_append(const std::string& path) {
  auto& contents = files_[path];
  if (!contents) contents = std::make_shared<std::string>();
  return std::unique_ptr<AppendFile>(std::make_unique<MemoryAppendFile>(contents));
}

Result<std::unique_ptr<ReadFile>> MemoryFileSystem::open_read(const std::string& path) {
  auto it = files_.find(path);
  if (it == files_.end()) return not_found(path + " does not exist");
  return std::unique_ptr<ReadFile>(std::make_unique<MemoryReadFile>(it->second));
}

Result<std::vector<std::string>> MemoryFileSystem::list(const std::string& dir) {
  std::vector<std::string> out;
  const std::string prefix = dir.empty() || dir.back() == '/' ? dir : dir + "/";
  for (const auto& [path, contents] : files_) {
    if (path.size() > prefix.size() && path.compare(0, prefix.size(), prefix) == 0 &&
        path.find('/', prefix.size()) == std::string::npos) {
      out.push_back(path.substr(prefix.size()));
    }
  }
  return out;
}

Status MemoryFileSystem::truncate(const std::string& path, uint64_t size) {
  auto it = files_.find(path);
  if (it == files_.end()) return not_found(path + " does not exist");
  if (it->second->size() > size) it->second->resize(size);
  return ok_status();
}

uint64_t MemoryFileSystem::bytes() const {
  uint64_t total = 0;
  for (const auto& [path, contents] : files_) total += contents->size();
  return total;
}

}  // namespace drover
