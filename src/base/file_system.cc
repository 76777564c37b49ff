#include "base/file_system.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <utility>

namespace drover {
namespace {

Error io_error(const std::string& what, const std::string& path) {
  return Error{ErrorCode::kIo, what + " " + path + ": " + errno_text(errno)};
}

class RealAppendFile final : public AppendFile {
 public:
  RealAppendFile(int fd, std::string path, uint64_t size)
      : fd_(fd), path_(std::move(path)), size_(size) {}
  ~RealAppendFile() override { ::close(fd_); }
  RealAppendFile(const RealAppendFile&) = delete;
  RealAppendFile& operator=(const RealAppendFile&) = delete;

  Status append(std::string_view data) override {
    size_t off = 0;
    while (off < data.size()) {
      const ssize_t n = ::write(fd_, data.data() + off, data.size() - off);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return io_error("cannot append to", path_);
      off += static_cast<size_t>(n);
      size_ += static_cast<uint64_t>(n);
    }
    return ok_status();
  }
  Status sync() override {
    if (::fdatasync(fd_) != 0) return io_error("cannot fdatasync", path_);
    return ok_status();
  }
  uint64_t size() const override { return size_; }

 private:
  int fd_;
  std::string path_;
  uint64_t size_;
};

class RealReadFile final : public ReadFile {
 public:
  RealReadFile(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  ~RealReadFile() override { ::close(fd_); }
  RealReadFile(const RealReadFile&) = delete;
  RealReadFile& operator=(const RealReadFile&) = delete;

  Result<std::string> read_at(uint64_t offset, size_t length) const override {
    std::string out(length, '\0');
    size_t got = 0;
    while (got < length) {
      const ssize_t n =
          ::pread(fd_, out.data() + got, length - got, static_cast<off_t>(offset + got));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return io_error("cannot read", path_);
      if (n == 0) break;
      got += static_cast<size_t>(n);
    }
    out.resize(got);
    return out;
  }
  uint64_t size() const override {
    struct stat st {};
    return ::fstat(fd_, &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
  }

 private:
  int fd_;
  std::string path_;
};

class RealFileSystem final : public FileSystem {
 public:
  Result<std::unique_ptr<AppendFile>> open_append(const std::string& path) override {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0) return io_error("cannot open", path);
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
      Error e = io_error("cannot stat", path);
      ::close(fd);
      return e;
    }
    return std::unique_ptr<AppendFile>(
        std::make_unique<RealAppendFile>(fd, path, static_cast<uint64_t>(st.st_size)));
  }

  Result<std::unique_ptr<ReadFile>> open_read(const std::string& path) override {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      if (errno == ENOENT) return not_found(path + " does not exist");
      return io_error("cannot open", path);
    }
    return std::unique_ptr<ReadFile>(std::make_unique<RealReadFile>(fd, path));
  }

  Result<std::vector<std::string>> list(const std::string& dir) override {
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) {
      if (errno == ENOENT) return not_found(dir + " does not exist");
      return io_error("cannot open", dir);
    }
    std::vector<std::string> names;
    // readdir on a stream this thread alone uses is safe (glibc); readdir_r is deprecated.
    while (const dirent* e = ::readdir(d)) {  // NOLINT(concurrency-mt-unsafe)
      std::string name = e->d_name;
      if (name != "." && name != "..") names.push_back(std::move(name));
    }
    ::closedir(d);
    return names;
  }

  Status make_dir(const std::string& dir) override {
    if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) return io_error("cannot create", dir);
    return ok_status();
  }

  Status truncate(const std::string& path, uint64_t size) override {
    if (::truncate(path.c_str(), static_cast<off_t>(size)) != 0) {
      return io_error("cannot truncate", path);
    }
    return ok_status();
  }

  Result<std::string> read(const std::string& path) override {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      if (errno == ENOENT) return not_found(path + " does not exist");
      return io_error("cannot open", path);
    }
    std::string out;
    char buf[65536];
    while (true) {
      const ssize_t n = ::read(fd, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        Error e = io_error("cannot read", path);
        ::close(fd);
        return e;
      }
      if (n == 0) break;
      out.append(buf, static_cast<size_t>(n));
    }
    ::close(fd);
    return out;
  }

  Status write(const std::string& path, std::string_view data) override {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return io_error("cannot create", path);
    size_t off = 0;
    while (off < data.size()) {
      const ssize_t n = ::write(fd, data.data() + off, data.size() - off);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        Error e = io_error("cannot write", path);
        ::close(fd);
        return e;
      }
      off += static_cast<size_t>(n);
    }
    if (::close(fd) != 0) return io_error("cannot close", path);
    return ok_status();
  }

  Status sync(const std::string& path) override { return sync_path(path, O_RDONLY); }
  Status sync_dir(const std::string& dir) override {
    return sync_path(dir, O_RDONLY | O_DIRECTORY);
  }

  Status rename(const std::string& from, const std::string& to) override {
    if (::rename(from.c_str(), to.c_str()) != 0)
      return io_error("cannot rename to " + to + ":", from);
    return ok_status();
  }

  Status remove(const std::string& path) override {
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) return io_error("cannot remove", path);
    return ok_status();
  }

 private:
  static Status sync_path(const std::string& path, int flags) {
    const int fd = ::open(path.c_str(), flags | O_CLOEXEC);
    if (fd < 0) return io_error("cannot open", path);
    const int rc = ::fsync(fd);
    Status st = rc == 0 ? ok_status() : Status(io_error("cannot fsync", path));
    ::close(fd);
    return st;
  }
};

}  // namespace

Result<uint64_t> free_bytes(const std::string& path) {
  struct statvfs fs {};
  if (::statvfs(path.c_str(), &fs) != 0) return io_error("cannot tell the free space of", path);
  return static_cast<uint64_t>(fs.f_bavail) * fs.f_frsize;
}

bool is_out_of_space(int error_number) {
  return error_number == ENOSPC || error_number == EDQUOT || error_number == EFBIG;
}

FileSystem& real_file_system() {
  static RealFileSystem fs;
  return fs;
}

ForwardingFileSystem::ForwardingFileSystem(FileSystem& target) : target_(target) {}
ForwardingFileSystem::ForwardingFileSystem() : target_(real_file_system()) {}

Status write_atomically(FileSystem& fs, const std::string& path, std::string_view data,
                        std::string_view temp_suffix) {
  const std::string temp = path + std::string(temp_suffix);
  const size_t slash = path.rfind('/');
  const std::string dir =
      slash == std::string::npos ? "." : path.substr(0, std::max<size_t>(slash, 1));
  Status written = fs.write(temp, data);
  if (written.ok()) written = fs.sync(temp);
  if (written.ok()) written = fs.rename(temp, path);
  if (!written.ok()) {
    (void)fs.remove(temp);  // best effort: the error that matters is the first one
    return written;
  }
  return fs.sync_dir(dir);
}

}  // namespace drover
