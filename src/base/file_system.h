// The file operations whose failures matter (power cuts, full disks), behind an interface so
// that tests can cut a write in half or fail any step. Paths are plain strings.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/result.h"

namespace drover {

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
// is removed (a full disk is not made fuller by a failed write).
Status write_atomically(FileSystem& fs, const std::string& path, std::string_view data);

}  // namespace drover
