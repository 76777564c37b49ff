// A file system in memory: what the twin's thousands of devices keep their files in (a
// queue each), where a real directory per device would cost a disk's worth of syncs. Every
// operation succeeds at once; a sync is durable by definition. Thread-compatible.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "base/file_system.h"

namespace drover {

class MemoryFileSystem final : public FileSystem {
 public:
  Result<std::string> read(const std::string& path) override;
  Status write(const std::string& path, std::string_view data) override;
  Status sync(const std::string&) override { return ok_status(); }
  Status rename(const std::string& from, const std::string& to) override;
  Status sync_dir(const std::string&) override { return ok_status(); }
  Status remove(const std::string& path) override;
  Result<std::unique_ptr<AppendFile>> open_append(const std::string& path) override;
  Result<std::unique_ptr<ReadFile>> open_read(const std::string& path) override;
  Result<std::vector<std::string>> list(const std::string& dir) override;
  Status make_dir(const std::string&) override { return ok_status(); }
  Status truncate(const std::string& path, uint64_t size) override;

  // The bytes all files hold.
  uint64_t bytes() const;

 private:
  // Files share their contents with open handles: an append through a handle is seen by
  // every later read.
  using Contents = std::shared_ptr<std::string>;
  std::map<std::string, Contents> files_;
};

}  // namespace drover
