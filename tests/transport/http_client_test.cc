// HttpClient's bound on what it reads into memory: an answer larger than max_answer_bytes is
// refused before its body is read, and the client goes on working; an error answer keeps its
// status whatever its size; a stalled server times out; a server that refuses an upload
// early is heard. And the server URLs it takes: what parse_url accepts and what it refuses.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>

#include "transport/http/client.h"
#include "transport/http/server.h"

namespace drover::http {
namespace {

// A listening socket on a free loopback port, for servers written by hand in these tests
// (misbehaving on purpose); closed when it goes.
struct RawListener {
  explicit RawListener(int backlog) {
    fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    EXPECT_GE(fd, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    EXPECT_EQ(::listen(fd, backlog), 0);
    EXPECT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
    port = ntohs(addr.sin_port);
  }
  ~RawListener() { ::close(fd); }
  RawListener(const RawListener&) = delete;
  RawListener& operator=(const RawListener&) = delete;
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port); }
  int accept() const { return ::accept(fd, nullptr, nullptr); }
  void stop() const { ::shutdown(fd, SHUT_RDWR); }  // a blocked accept() returns
  int fd = -1;
  uint16_t port = 0;
};

TEST(HttpClient, AnAnswerOverTheLimitIsRefusedAndTheClientGoesOn) {
  auto server = HttpServer::start({}, [](const Request& r) {
    if (r.path() == "/big") return Response::json(200, std::string(3 << 20, 'x'));
    return Response::json(200, "\"small\"");
  });
  ASSERT_TRUE(server.ok()) << server.error().to_string();
  ClientOptions o;
  o.max_answer_bytes = 1 << 20;
  auto client = HttpClient::create("http://127.0.0.1:" + std::to_string((*server)->port()), o);
  ASSERT_TRUE(client.ok());
  auto big = (*client)->request("GET", "/big");
  ASSERT_FALSE(big.ok());
  EXPECT_EQ(big.error().code, ErrorCode::kIo);
  EXPECT_NE(big.error().message.find("larger than 1048576 bytes"), std::string::npos)
      << big.error().message;
  auto small = (*client)->request("GET", "/small");
  ASSERT_TRUE(small.ok()) << small.error().to_string();
  EXPECT_EQ(small->body, "\"small\"");
  // At the limit exactly, the answer is read.
  o.max_answer_bytes = 3 << 20;
  auto roomy = HttpClient::create("http://127.0.0.1:" + std::to_string((*server)->port()), o);
  ASSERT_TRUE(roomy.ok());
  auto whole = (*roomy)->request("GET", "/big");
  ASSERT_TRUE(whole.ok()) << whole.error().to_string();
  EXPECT_EQ(whole->body.size(), size_t{3} << 20);
}

// A streamed GET answered with an error: its status is the answer, whatever the size of
// the error document (a metadata client must tell "not found" from a broken link); only the
// first 64 KiB are kept and the rest is not waited for.
TEST(HttpClient, AnErrorAnswerOfAnySizeKeepsItsStatus) {
  auto server = HttpServer::start({}, [](const Request& r) {
    if (r.path() == "/missing") return Response::json(404, std::string(8 << 20, 'x'));
    return Response::json(200, "\"small\"");
  });
  ASSERT_TRUE(server.ok()) << server.error().to_string();
  auto client = HttpClient::create("http://127.0.0.1:" + std::to_string((*server)->port()), {});
  ASSERT_TRUE(client.ok());
  size_t to_sink = 0;
  auto missing = (*client)->get_to("/missing", {}, [&](std::string_view piece) {
    to_sink += piece.size();
    return ok_status();
  });
  ASSERT_TRUE(missing.ok()) << missing.error().to_string();
  EXPECT_EQ(missing->status, 404);
  EXPECT_EQ(missing->body.size(), size_t{64} << 10);
  EXPECT_EQ(to_sink, 0u);
  auto small = (*client)->request("GET", "/small");
  ASSERT_TRUE(small.ok()) << small.error().to_string();
  EXPECT_EQ(small->body, "\"small\"");
}

// A server whose error document never ends (chunks sent until the client hangs up): the
// client answers with the status once it has kept 64 KiB, instead of reading for ever.
TEST(HttpClient, AnEndlessErrorAnswerIsCutOff) {
  const RawListener listener(1);
  std::atomic<size_t> sent{0};
  std::thread trickler([&] {
    const int c = listener.accept();
    if (c < 0) return;
    char request[4096];
    (void)::recv(c, request, sizeof request, 0);
    const std::string head =
        "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n";
    const std::string chunk = "4000\r\n" + std::string(0x4000, 'x') + "\r\n";
    bool ok = ::send(c, head.data(), head.size(), MSG_NOSIGNAL) > 0;
    // Far more than anyone should read, so that a client that reads it all is caught.
    while (ok && sent < (size_t{1} << 30)) {
      ok =
          ::send(c, chunk.data(), chunk.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(chunk.size());
      if (ok) sent += chunk.size();
    }
    ::close(c);
  });
  auto client = HttpClient::create(listener.url(), {});
  ASSERT_TRUE(client.ok());
  auto answer = (*client)->get_to("/1.root.json", {}, [](std::string_view) { return ok_status(); });
  listener.stop();
  trickler.join();
  ASSERT_TRUE(answer.ok()) << answer.error().to_string();
  EXPECT_EQ(answer->status, 404);
  EXPECT_EQ(answer->body.size(), size_t{64} << 10);
  EXPECT_LT(sent.load(), size_t{64} << 20);  // the server was cut off long before its gigabyte
}

// A server that accepts the connection, reads the request and then says nothing (a hung
// process, a half-open link): every request ends after the client's request timeout with an
// I/O error naming the timeout, and the client goes on working with the next server.
// A blocking read would wait for ever here.
TEST(HttpClient, AServerThatStallsTimesOut) {
  const RawListener listener(4);
  // Two connections: one silent after the request, one that sends half a body and stops.
  std::thread staller([&] {
    for (int i = 0; i < 2; ++i) {
      const int c = listener.accept();
      if (c < 0) return;
      char request[4096];
      (void)::recv(c, request, sizeof request, 0);
      if (i == 1) {
        const std::string half = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789";
        (void)::send(c, half.data(), half.size(), MSG_NOSIGNAL);
      }
      char rest[64];
      while (::recv(c, rest, sizeof rest, 0) > 0) {
      }
      ::close(c);
    }
  });
  ClientOptions o;
  o.request_timeout = Duration(300);
  auto client = HttpClient::create(listener.url(), o);
  ASSERT_TRUE(client.ok());
  const auto started = std::chrono::steady_clock::now();
  auto silent = (*client)->request("GET", "/v1/checkin");
  auto half = (*client)->get_to("/artifact", {}, [](std::string_view) { return ok_status(); });
  const auto took = std::chrono::steady_clock::now() - started;
  listener.stop();
  staller.join();
  ASSERT_FALSE(silent.ok());
  EXPECT_EQ(silent.error().code, ErrorCode::kIo);
  EXPECT_NE(silent.error().message.find("timeout"), std::string::npos) << silent.error().message;
  ASSERT_FALSE(half.ok());
  EXPECT_NE(half.error().message.find("timeout"), std::string::npos) << half.error().message;
  EXPECT_LT(took, std::chrono::seconds(20));  // two timeouts, not a hang
  // The client is usable against a server that answers.
  auto server = HttpServer::start({}, [](const Request&) { return Response::json(200, "1"); });
  ASSERT_TRUE(server.ok()) << server.error().to_string();
  auto other = HttpClient::create("http://127.0.0.1:" + std::to_string((*server)->port()), o);
  ASSERT_TRUE(other.ok());
  auto fine = (*other)->request("GET", "/x");
  ASSERT_TRUE(fine.ok()) << fine.error().to_string();
  EXPECT_EQ(fine->body, "1");
}

// A server that refuses an upload on its head (a bad token, no room) answers and closes
// without reading the body: the client, whose write then fails, reports the server's answer
// rather than the broken pipe.
TEST(HttpClient, AnUploadRefusedBeforeItsBodyIsReadGetsTheServersAnswer) {
  const RawListener listener(1);
  std::thread refuser([&] {
    const int c = listener.accept();
    if (c < 0) return;
    std::string head;
    char piece[4096];
    while (head.find("\r\n\r\n") == std::string::npos) {
      const ssize_t n = ::recv(c, piece, sizeof piece, 0);
      if (n <= 0) break;
      head.append(piece, static_cast<size_t>(n));
    }
    const std::string answer =
        "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: 21\r\n"
        "Connection: close\r\n\r\n{\"error\":\"go away\"}  ";
    (void)::send(c, answer.data(), answer.size(), MSG_NOSIGNAL);
    ::shutdown(c, SHUT_WR);
    ::close(c);  // with the body unread: the kernel resets the connection
  });
  auto client = HttpClient::create(listener.url(), {});
  ASSERT_TRUE(client.ok());
  const std::string body(32u << 20, 'x');  // far more than the socket buffers hold
  auto answer = (*client)->request("PUT", "/api/v1/artifacts/fw/1.0.0", body);
  refuser.join();
  ASSERT_TRUE(answer.ok()) << answer.error().to_string();
  EXPECT_EQ(answer->status, 401);
  EXPECT_EQ(answer->body, "{\"error\":\"go away\"}  ");
}

TEST(ParseUrl, TakesHttpAndHttpsWithNamesAndAddresses) {
  auto u = parse_url("http://ctl.example-1.com:8480/drover/");
  ASSERT_TRUE(u.ok()) << u.error().to_string();
  EXPECT_EQ(u->scheme, "http");
  EXPECT_EQ(u->host, "ctl.example-1.com");
  EXPECT_EQ(u->port, 8480);
  EXPECT_EQ(u->prefix, "/drover");
  u = parse_url("https://10.0.0.7");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->port, 443);
  u = parse_url("http://[fe80::1]:9000");
  ASSERT_TRUE(u.ok()) << u.error().to_string();
  EXPECT_EQ(u->host, "fe80::1");
  EXPECT_EQ(u->port, 9000);
  EXPECT_TRUE(parse_url("http://drover_server:8480").ok());  // a container's name
}

TEST(ParseUrl, RefusesWhatIsNotAServerUrl) {
  for (const char* bad : {"ctl:8480", "ftp://ctl", "http://", "http://:80", "http://ctl:0",
                          "http://ctl:65536", "http://ctl:80x", "http://[::1", "http://[::1]x",
                          "http://user@ctl", "http://ct l", "http://ctl\x01", "http://\xff\xfftest",
                          "http://[::1 ]", "http://[fe80::1%eth0]", "http://[ctl]"}) {
    auto u = parse_url(bad);
    ASSERT_FALSE(u.ok()) << bad;
    EXPECT_EQ(u.error().code, ErrorCode::kInvalidArgument) << bad;
  }
}

}  // namespace
}  // namespace drover::http
