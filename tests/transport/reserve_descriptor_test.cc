// The connection the server sheds when it is out of descriptors (ReserveDescriptor): a plain
// HTTP client reads a 503, a TLS client is told with a TLS alert it can report — not plain
// text it would take for a broken handshake.
#include "transport/http/reserve_descriptor.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <thread>

#include "../common/pki.h"
#include "../common/raw_http_client.h"
#include "transport/http/client.h"

namespace drover::http {
namespace {

// A loopback listener on a free port.
struct Listener {
  Listener() {
    fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), len) != 0 || ::listen(fd, 8) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      ADD_FAILURE() << "no loopback listener";
    }
    port = ntohs(addr.sin_port);
  }
  ~Listener() { ::close(fd); }
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

  // Sheds the first connection that arrives within 3 s.
  void shed_next(bool tls) const {
    pollfd p{fd, POLLIN, 0};
    ASSERT_EQ(::poll(&p, 1, 3000), 1) << "no client came";
    ReserveDescriptor reserve;
    reserve.shed(fd, tls);
  }

  int fd = -1;
  uint16_t port = 0;
};

TEST(ReserveDescriptor, APlainClientIsAnswered503) {
  Listener l;
  testing::RawClient c(l.port);
  ASSERT_TRUE(c.connected());
  l.shed_next(false);
  const std::string r = c.response();
  EXPECT_EQ(testing::status_of(r), 503) << r;
  EXPECT_NE(r.find("too many connections"), std::string::npos);
  EXPECT_TRUE(c.closed_within(std::chrono::milliseconds(1000)));
}

TEST(ReserveDescriptor, ATlsClientIsToldWithAnAlert) {
  testing::Pki pki;
  ASSERT_TRUE(pki.ok()) << "openssl could not make the test certificates";
  Listener l;
  std::jthread shedder([&] { l.shed_next(true); });  // joined on every way out
  ClientOptions o;
  o.ca_file = pki.pem("ca");
  o.connect_timeout = seconds(3);
  o.request_timeout = seconds(3);
  auto client = HttpClient::create("https://localhost:" + std::to_string(l.port), o);
  ASSERT_TRUE(client.ok()) << client.error().to_string();
  auto r = (*client)->request("GET", "/");
  shedder.join();
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("alert internal error"), std::string::npos) << r.error().message;
}

}  // namespace
}  // namespace drover::http
