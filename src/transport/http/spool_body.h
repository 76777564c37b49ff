// SpoolBody: a Beast body type that writes a request body to a file as it arrives and hashes
// it on the way (SHA-256), so that an upload of any size costs a bounded buffer of memory and
// its hash is ready when the last byte is. Internal to the HTTP server (it includes Beast).
//
// The file is created by SpoolBody::open (O_EXCL, owner-only through the process umask) and
// removed by the value's destructor when it is still there (the handler may move it away).
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/optional.hpp>
#include <cerrno>
#include <cstdint>
#include <memory>
#include <string>

#include "security/crypto.h"

namespace drover::http {

struct SpoolBody {
  struct File {
    int fd = -1;
    std::string path;
    uint64_t size = 0;
    security::Sha256 hash;
    int write_error = 0;  // errno of a failed write (the disk, not the client, failed)
    ~File() {
      if (fd >= 0) ::close(fd);
      if (!path.empty()) ::unlink(path.c_str());  // a no-op once the handler moved it
    }
  };
  // Movable (Beast moves messages); empty until open().
  using value_type = std::unique_ptr<File>;

  // Creates `path`; errno's error on failure.
  static boost::beast::error_code open(value_type& body, const std::string& path) {
    auto f = std::make_unique<File>();
    f->fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (f->fd < 0) return {errno, boost::system::system_category()};
    f->path = path;
    body = std::move(f);
    return {};
  }

  class reader {  // NOLINT(readability-identifier-naming): the name Beast's Body concept asks
   public:
    template <bool isRequest, class Fields>
    reader(boost::beast::http::header<isRequest, Fields>&, value_type& body) : body_(body) {}

    void init(const boost::optional<std::uint64_t>&, boost::beast::error_code& ec) {
      ec = body_ ? boost::beast::error_code{}
                 : boost::beast::error_code{EBADF, boost::system::system_category()};
    }

    template <class ConstBufferSequence>
    std::size_t put(const ConstBufferSequence& buffers, boost::beast::error_code& ec) {
      ec = {};
      std::size_t taken = 0;
      for (const auto b : boost::beast::buffers_range_ref(buffers)) {
        const char* p = static_cast<const char*>(b.data());
        std::size_t left = b.size();
        while (left > 0) {
          const ssize_t n = ::write(body_->fd, p, left);
          if (n < 0) {
            if (errno == EINTR) continue;
            body_->write_error = errno;
            ec = {errno, boost::system::system_category()};
            return taken;
          }
          body_->hash.update(std::string_view(p, static_cast<std::size_t>(n)));
          body_->size += static_cast<uint64_t>(n);
          p += n;
          left -= static_cast<std::size_t>(n);
          taken += static_cast<std::size_t>(n);
        }
      }
      return taken;
    }

    void finish(boost::beast::error_code& ec) { ec = {}; }

   private:
    value_type& body_;
  };
};

}  // namespace drover::http
