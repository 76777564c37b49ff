// The file operations whose failures matter (power cuts, full disks), behind an interface so
// that tests can cut a write in half or fail any step. Paths are plain strings.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace drover {

// A file open for appending (a log): writes go to its end. Not thread-safe.
class AppendFile {
 public:
  virtual ~AppendFile() = default;
  // kIo on failure; the file may then end with any prefix of `data`.
  virtual Status append(std::string_view data) = 0;
  // fdatasync: what was appended is on disk.
  virtual Status sync() = 0;
  // The file's length, what was appended included.
  virtual uint64_t size() const = 0;
};

// A file open for reading at any offset. Thread-safe (pread).
class ReadFile {
 public:
  virtual ~ReadFile() = default;
  // Up to `length` bytes from `offset`: fewer only where the file ends. kIo on failure.
  virtual Result<std::string> read_at(uint64_t offset, size_t length) const = 0;
  // The file's length now (0 when it cannot be told).
  virtual uint64_t size() const = 0;
};

class FileSystem {
 public:
  virtual ~FileSystem() = default;
  // The whole file. kNotFound when it does not exist, kIo on any other failure.
  virtual Result<std::string> read(const std::string& path) = 0;
  // Creates or truncates `path` and writes `data`. kIo on failure (the file may then hold
  // any prefix of `data`).
  virtual Status write(const std::string& path, std::string_view data) = 0;
  virtual Status sync(const std::string& path) = 0;  // fsync: the data is on disk
  virtual Status rename(const std::string& from, const std::string& to) = 0;  // atomic
  virtual Status sync_dir(const std::string& dir) = 0;  // the directory entry is on disk
  virtual Status remove(const std::string& path) = 0;   // ok when it is already absent
  // Opens `path` for appending, creating it (owner-only) when absent.
  virtual Result<std::unique_ptr<AppendFile>> open_append(const std::string& path) = 0;
  // kNotFound when it does not exist.
  virtual Result<std::unique_ptr<ReadFile>> open_read(const std::string& path) = 0;
  // The names in `dir` (no "." or ".."), unsorted. kNotFound when it does not exist.
  virtual Result<std::vector<std::string>> list(const std::string& dir) = 0;
  // Creates the directory (owner-only); ok when it exists.
  virtual Status make_dir(const std::string& dir) = 0;
  // Cuts `path` to `size` bytes (a torn log tail).
  virtual Status truncate(const std::string& path, uint64_t size) = 0;
};

// Passes every operation to another file system (the real one unless told otherwise): the
// base of test file systems that fail some operations and let the rest through.
class ForwardingFileSystem : public FileSystem {
 public:
  explicit ForwardingFileSystem(FileSystem& target);
  ForwardingFileSystem();  // the real file system
  Result<std::string> read(const std::string& path) override { return target_.read(path); }
  Status write(const std::string& path, std::string_view data) override {
    return target_.write(path, data);
  }
  Status sync(const std::string& path) override { return target_.sync(path); }
  Status rename(const std::string& from, const std::string& to) override {
    return target_.rename(from, to);
  }
  Status sync_dir(const std::string& dir) override { return target_.sync_dir(dir); }
  Status remove(const std::string& path) override { return target_.remove(path); }
  Result<std::unique_ptr<AppendFile>> open_append(const std::string& path) override {
    return target_.open_append(path);
  }
  Result<std::unique_ptr<ReadFile>> open_read(const std::string& path) override {
    return target_.open_read(path);
  }
  Result<std::vector<std::string>> list(const std::string& dir) override {
    return target_.list(dir);
  }
  Status make_dir(const std::string& dir) override { return target_.make_dir(dir); }
  Status truncate(const std::string& path, uint64_t size) override {
    return target_.truncate(path, size);
  }

 private:
  FileSystem& target_;
};

// The operating system's file system. Thread-safe.
FileSystem& real_file_system();

// The bytes an unprivileged writer may still use on the file system that holds `path`
// (statvfs's f_bavail). kIo when that cannot be told.
Result<uint64_t> free_bytes(const std::string& path);

// Whether a write failed with `error_number` (errno) for want of room: a full disk, a quota,
// a file size limit. Such a failure does not go away by retrying.
bool is_out_of_space(int error_number);

// Replaces `path` with `data` so that after a crash or power cut at any instant the file
// holds either its old contents or `data`, never a mix: a temporary file beside it, fsync,
// rename over, fsync the directory. On failure the old contents remain and the temporary file
// is removed (a full disk is not made fuller by a failed write). The temporary file is `path`
// + `temp_suffix`: writers in several processes give each their own suffix, so that none
// renames another's half-written file into place.
Status write_atomically(FileSystem& fs, const std::string& path, std::string_view data,
                        std::string_view temp_suffix = ".tmp");

}  // namespace drover
