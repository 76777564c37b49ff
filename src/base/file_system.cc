#include "base/file_system.h"

#include <fcntl.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace drover {
namespace {

Error io_error(const std::string& what, const std::string& path) {
  return Error{ErrorCode::kIo, what + " " + path + ": " + errno_text(errno)};
}

class RealFileSystem final : public FileSystem {
 public:
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

Status write_atomically(FileSystem& fs, const std::string& path, std::string_view data) {
  const std::string temp = path + ".tmp";
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
