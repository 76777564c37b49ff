// ReserveDescriptor: one file descriptor the HTTP server keeps open for the moment it runs out
// of them (EMFILE/ENFILE). Accepting again at once would fail again at once — a core spinning
// at 100% while every client waits — so the server gives the reserve up, accepts the first
// waiting connection with it, answers it 503 (on a TLS port: a TLS alert) and closes it, then
// takes the reserve back.
// Internal to the server (server.cc); POSIX only.
#pragma once

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <string_view>

namespace drover::http {

class ReserveDescriptor {
 public:
  ReserveDescriptor() = default;
  ReserveDescriptor(const ReserveDescriptor&) = delete;
  ReserveDescriptor& operator=(const ReserveDescriptor&) = delete;
  ~ReserveDescriptor() {
    if (fd_ >= 0) ::close(fd_);
  }

  // Holds a descriptor (again); another thread may have taken the one given up last time.
  void take() {
    if (fd_ < 0) fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  }

  // Sheds the first connection waiting on `listen_fd` (non-blocking): an HTTP 503, or on a
  // TLS port (`tls`) a fatal internal_error alert, which a TLS client reports as such
  // (plain HTTP would reach it as garbage: "wrong version number").
  void shed(int listen_fd, bool tls) {
    take();
    if (fd_ < 0) return;
    ::close(fd_);
    fd_ = -1;
    const int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd >= 0) {
      static const std::string kBusy = [] {
        const std::string body =
            R"({"error":{"code":"overloaded","message":"too many connections; try again later"}})";
        return "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
               "Connection: close\r\nContent-Length: " +
               std::to_string(body.size()) + "\r\n\r\n" + body;
      }();
      const std::string_view answer = tls ? kTlsAlert : std::string_view(kBusy);
      (void)::send(fd, answer.data(), answer.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      ::close(fd);
    }
    take();
  }

 private:
  // A TLS record before any handshake (RFC 8446 §5.1, 6): content type alert (21), legacy
  // version 3.3, length 2; level fatal (2), description internal_error (80).
  static constexpr std::string_view kTlsAlert{"\x15\x03\x03\x00\x02\x02\x50", 7};

  int fd_ = -1;
};

}  // namespace drover::http
