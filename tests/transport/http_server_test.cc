#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "../common/raw_http_client.h"
#include "../common/shared_manual_clock.h"
#include "transport/http/server.h"

namespace drover::http {
namespace {

using drover::testing::body_of;
using drover::testing::RawClient;
using drover::testing::SharedManualClock;
using drover::testing::status_of;

std::string get(const std::string& target, const std::string& extra = {}) {
  return "GET " + target + " HTTP/1.1\r\nHost: test\r\n" + extra + "\r\n";
}

ServerOptions small_limits() {
  ServerOptions o;
  o.max_header_bytes = 1024;
  o.max_body_bytes = 1024;
  o.header_timeout = Duration(300);
  o.body_timeout = Duration(300);
  o.idle_timeout = Duration(500);
  o.drain_timeout = Duration(3000);
  return o;
}

// Echoes what it was asked, so tests can check what the handler saw.
Response echo(const Request& r) {
  if (r.path() == "/boom") throw std::runtime_error("handler failed");
  if (r.path() == "/slow") std::this_thread::sleep_for(std::chrono::milliseconds(400));
  return Response::json(200,
                        "{\"method\":\"" + r.method + "\",\"path\":\"" + std::string(r.path()) +
                            "\",\"query\":\"" + std::string(r.query()) + "\",\"x\":\"" +
                            std::string(r.header("x-test")) + "\",\"body\":\"" + r.body + "\"}");
}

std::unique_ptr<HttpServer> serve(ServerOptions o = small_limits(), Handler h = echo) {
  auto s = HttpServer::start(std::move(o), std::move(h));
  EXPECT_TRUE(s.ok()) << s.error().to_string();
  return std::move(*s);
}

TEST(HttpServer, AnswersAndKeepsTheConnectionAlive) {
  auto server = serve();
  RawClient c(server->port());
  ASSERT_TRUE(c.connected());
  ASSERT_TRUE(c.send(get("/a/b?x=1", "X-Test: hello\r\n")));
  const std::string first = c.response();
  EXPECT_EQ(status_of(first), 200);
  EXPECT_EQ(body_of(first),
            R"({"method":"GET","path":"/a/b","query":"x=1","x":"hello","body":""})");
  EXPECT_NE(first.find("Content-Type: application/json"), std::string::npos);
  // The same connection serves the next request, with a body.
  ASSERT_TRUE(c.send("POST /c HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc"));
  EXPECT_EQ(body_of(c.response()),
            R"({"method":"POST","path":"/c","query":"","x":"","body":"abc"})");
  EXPECT_EQ(server->connections(), 1u);
}

TEST(HttpServer, TheAccessLogGetsOneRecordPerRequestWithoutTheQuery) {
  std::mutex mu;
  std::vector<AccessRecord> records;
  ServerOptions o = small_limits();
  o.access_log = [&](const AccessRecord& r) {
    std::lock_guard lock(mu);
    records.push_back(r);
  };
  auto server = serve(o);
  RawClient c(server->port());
  ASSERT_TRUE(c.send("POST /a?token=secret HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc"));
  const std::string first = c.response();
  ASSERT_TRUE(c.send(get("/boom")));
  c.response();
  std::lock_guard lock(mu);
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[0].method, "POST");
  EXPECT_EQ(records[0].path, "/a");
  EXPECT_EQ(records[0].status, 200);
  EXPECT_EQ(records[0].request_bytes, 3u);
  EXPECT_EQ(records[0].response_bytes, body_of(first).size());
  EXPECT_EQ(records[0].remote.rfind("127.0.0.1:", 0), 0u);
  EXPECT_EQ(records[1].status, 500);
}

TEST(HttpServer, PipelinedRequestsAreAnsweredInOrder) {
  auto server = serve();
  RawClient c(server->port());
  ASSERT_TRUE(c.send(get("/one") + get("/two")));
  EXPECT_NE(c.response().find("\"path\":\"/one\""), std::string::npos);
  EXPECT_NE(c.response().find("\"path\":\"/two\""), std::string::npos);
}

TEST(HttpServer, ABodyOverTheLimitIs413AndNothingReachesTheHandler) {
  std::atomic<int> calls{0};
  auto server = serve(small_limits(), [&](const Request& r) {
    ++calls;
    return echo(r);
  });
  RawClient c(server->port());
  ASSERT_TRUE(c.send("POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\n\r\n" +
                     std::string(5000, 'a')));
  const std::string r = c.response();
  EXPECT_EQ(status_of(r), 413);
  EXPECT_NE(body_of(r).find("\"code\":\"body_too_large\""), std::string::npos);
  EXPECT_TRUE(c.closed_within(std::chrono::milliseconds(2000)));
  EXPECT_EQ(calls, 0);
}

// large_bodies: one route takes larger bodies; every other keeps the small limit, and the
// large route its own. A Content-Length is judged before any of the body is read.
TEST(HttpServer, OnlyTheLargeBodyRouteTakesLargeBodies) {
  std::atomic<int> calls{0};
  ServerOptions o = small_limits();
  o.large_bodies.push_back({"PUT", "/upload/", 20'000, seconds(5), nullptr, ""});
  auto server = serve(o, [&](const Request& r) {
    ++calls;
    return Response::json(200, std::to_string(r.body.size()));
  });
  {
    RawClient c(server->port());
    ASSERT_TRUE(c.send("PUT /upload/a?x=1 HTTP/1.1\r\nHost: t\r\nContent-Length: 15000\r\n\r\n" +
                       std::string(15000, 'a')));
    const std::string r = c.response();
    EXPECT_EQ(status_of(r), 200) << r;
    EXPECT_EQ(body_of(r), "15000");
  }
  struct Case {
    const char* head;
    size_t length;
  };
  for (const Case& c :
       {Case{"PUT /upload/a HTTP/1.1", 25'000}, Case{"POST /upload/a HTTP/1.1", 15'000},
        Case{"PUT /elsewhere HTTP/1.1", 15'000}}) {
    RawClient client(server->port());
    ASSERT_TRUE(client.send(std::string(c.head) + "\r\nHost: t\r\nContent-Length: " +
                            std::to_string(c.length) + "\r\n\r\n"));
    const std::string r = client.response();
    EXPECT_EQ(status_of(r), 413) << c.head;
  }
  // Chunked, with no length up front: cut when it passes the route's limit.
  RawClient chunked(server->port());
  std::string body;
  for (int i = 0; i < 30; ++i) body += "3e8\r\n" + std::string(1000, 'b') + "\r\n";
  ASSERT_TRUE(
      chunked.send("PUT /upload/b HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n" +
                   body + "0\r\n\r\n"));
  EXPECT_EQ(status_of(chunked.response()), 413);
  EXPECT_EQ(calls, 1);
}

TEST(HttpServer, AHeadOverTheLimitIs431) {
  auto server = serve();
  RawClient c(server->port());
  ASSERT_TRUE(c.send(get("/x", "X-Big: " + std::string(4000, 'b') + "\r\n")));
  const std::string r = c.response();
  EXPECT_EQ(status_of(r), 431);
  EXPECT_NE(body_of(r).find("header_too_large"), std::string::npos);
}

TEST(HttpServer, AMalformedRequestIs400AndTheServerGoesOn) {
  auto server = serve();
  {
    RawClient c(server->port());
    ASSERT_TRUE(c.send("THIS IS NOT HTTP\r\n\r\n"));
    const std::string r = c.response();
    EXPECT_EQ(status_of(r), 400);
    EXPECT_NE(body_of(r).find("bad_request"), std::string::npos);
  }
  {
    RawClient c(server->port());
    ASSERT_TRUE(c.send("POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: nope\r\n\r\n"));
    EXPECT_EQ(status_of(c.response()), 400);
  }
  RawClient c(server->port());
  ASSERT_TRUE(c.send(get("/still-here")));
  EXPECT_EQ(status_of(c.response()), 200);
}

// The read deadlines run on simulated time (ServerOptions::deadline_clock): each test waits
// until the server has armed the deadline it means, then moves time to just before it
// (nothing happens) and past it.
const Timestamp kStart{seconds(1'773'108'000)};
constexpr auto kQuiet = std::chrono::milliseconds(150);  // real time for "nothing happens"

ServerOptions on_simulated_time(SharedManualClock& clock) {
  ServerOptions o = small_limits();
  o.deadline_clock = &clock;
  return o;
}

TEST(HttpServer, ASlowHeadIsCutWith408WhileOthersAreServed) {
  SharedManualClock clock(kStart);
  auto server = serve(on_simulated_time(clock));
  RawClient slow(server->port());
  ASSERT_TRUE(slow.send("GET /x HTTP/1.1\r\nHost: t\r\n"));  // and never the blank line
  ASSERT_TRUE(clock.wait_for_timer(kStart + Duration(300))) << "the header deadline is armed";
  clock.advance(Duration(299));
  RawClient other(server->port());
  ASSERT_TRUE(other.send(get("/y")));
  EXPECT_EQ(status_of(other.response()), 200);
  EXPECT_EQ(slow.response(kQuiet), "") << "not before its deadline";
  clock.advance(Duration(1));
  EXPECT_EQ(status_of(slow.response()), 408);
  EXPECT_TRUE(slow.closed_within(std::chrono::milliseconds(2000)));
}

TEST(HttpServer, ASlowBodyIsCutWith408) {
  SharedManualClock clock(kStart);
  ServerOptions o = on_simulated_time(clock);
  o.body_timeout = Duration(400);  // told apart from the header's 300 ms
  auto server = serve(o);
  RawClient c(server->port());
  ASSERT_TRUE(c.send("POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nonly part"));
  ASSERT_TRUE(clock.wait_for_timer(kStart + Duration(400))) << "the body deadline is armed";
  clock.advance(Duration(399));
  EXPECT_EQ(c.response(kQuiet), "");
  clock.advance(Duration(1));
  EXPECT_EQ(status_of(c.response()), 408);
}

TEST(HttpServer, AnIdleKeepAliveConnectionIsClosed) {
  SharedManualClock clock(kStart);
  auto server = serve(on_simulated_time(clock));
  RawClient c(server->port());
  ASSERT_TRUE(c.send(get("/x")));
  EXPECT_EQ(status_of(c.response()), 200);
  ASSERT_TRUE(clock.wait_for_timer(kStart + Duration(500))) << "the idle deadline is armed";
  clock.advance(Duration(499));
  EXPECT_FALSE(c.closed_within(kQuiet)) << "closed by the idle timeout, not at once";
  ASSERT_TRUE(c.send(get("/x")));  // a second request in time is served, and rearms it
  EXPECT_EQ(status_of(c.response()), 200);
  ASSERT_TRUE(clock.wait_for_timer(kStart + Duration(999)));
  clock.advance(Duration(499));
  EXPECT_FALSE(c.closed_within(kQuiet));
  clock.advance(Duration(1));
  EXPECT_TRUE(c.closed_within(std::chrono::milliseconds(2000)));
}

// A connection that never sends a request is closed after first_request_timeout, well before
// the idle timeout of a connection that has been served.
TEST(HttpServer, AStrangerThatSendsNothingIsClosedSooner) {
  SharedManualClock clock(kStart);
  ServerOptions o = on_simulated_time(clock);
  o.first_request_timeout = Duration(400);  // told apart from the header's 300 ms
  o.idle_timeout = Duration(5000);
  auto server = serve(o);
  RawClient served(server->port());
  ASSERT_TRUE(served.send(get("/x")));
  EXPECT_EQ(status_of(served.response()), 200);
  ASSERT_TRUE(clock.wait_for_timer(kStart + Duration(5000)));
  RawClient silent(server->port());
  ASSERT_TRUE(clock.wait_for_timer(kStart + Duration(400)));
  clock.advance(Duration(399));
  EXPECT_FALSE(silent.closed_within(kQuiet));
  clock.advance(Duration(1));
  EXPECT_TRUE(silent.closed_within(std::chrono::milliseconds(2000)));
  EXPECT_FALSE(served.closed_within(kQuiet)) << "served, it waits its idle timeout";
  clock.advance(Duration(4599));
  EXPECT_FALSE(served.closed_within(kQuiet));
  clock.advance(Duration(1));
  EXPECT_TRUE(served.closed_within(std::chrono::milliseconds(2000)));
}

TEST(HttpServer, ConnectionsBeyondTheLimitGet503) {
  ServerOptions o = small_limits();
  o.max_connections = 2;
  o.idle_timeout = Duration(5000);
  auto server = serve(o);
  RawClient a(server->port()), b(server->port());
  ASSERT_TRUE(a.send(get("/a")));
  ASSERT_TRUE(b.send(get("/b")));
  EXPECT_EQ(status_of(a.response()), 200);
  EXPECT_EQ(status_of(b.response()), 200);
  RawClient c(server->port());
  const std::string r = c.response();
  EXPECT_EQ(status_of(r), 503);
  EXPECT_NE(body_of(r).find("overloaded"), std::string::npos);
}

TEST(HttpServer, AHandlerThatThrowsGives500WithItsRequestIdAndLogsWhatItThrew) {
  std::mutex mu;
  std::vector<std::pair<std::string, std::string>> logged;
  ServerOptions o = small_limits();
  o.error_log = [&](std::string_view id, std::string_view what) {
    std::lock_guard lock(mu);
    logged.emplace_back(id, what);
  };
  auto server = serve(o);
  RawClient c(server->port());
  ASSERT_TRUE(c.send(get("/boom")));
  const std::string r = c.response();
  EXPECT_EQ(status_of(r), 500);
  // The client learns nothing of the exception, only which request to look up.
  EXPECT_EQ(body_of(r).find("handler failed"), std::string::npos) << r;
  const size_t at = r.find("X-Request-Id: ");
  ASSERT_NE(at, std::string::npos) << r;
  const std::string id = r.substr(at + 14, r.find("\r\n", at) - at - 14);
  EXPECT_NE(body_of(r).find("(request " + id + ")"), std::string::npos) << r;
  {
    std::lock_guard lock(mu);
    ASSERT_EQ(logged.size(), 1u);
    EXPECT_EQ(logged[0].first, id);
    EXPECT_EQ(logged[0].second, "handler failed");
  }
  // Ids differ from request to request.
  ASSERT_TRUE(c.send(get("/fine")));
  const std::string next = c.response();
  EXPECT_NE(next.find("X-Request-Id: "), std::string::npos);
  EXPECT_EQ(next.find("X-Request-Id: " + id + "\r\n"), std::string::npos);
}

TEST(HttpServer, StopFinishesTheRequestInFlightAndClosesIdleConnections) {
  auto server = serve();
  const uint16_t port = server->port();
  RawClient idle(port);
  ASSERT_TRUE(idle.send(get("/x")));
  ASSERT_EQ(status_of(idle.response()), 200);
  RawClient busy(port);
  ASSERT_TRUE(busy.send(get("/slow")));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // the handler is running
  const auto before = std::chrono::steady_clock::now();
  server->stop();
  EXPECT_GE(std::chrono::steady_clock::now() - before, std::chrono::milliseconds(200));
  const std::string r = busy.response();
  EXPECT_EQ(status_of(r), 200);
  EXPECT_NE(r.find("Connection: close"), std::string::npos);
  EXPECT_TRUE(idle.closed_within(std::chrono::milliseconds(1000)));
  EXPECT_FALSE(RawClient(port).connected());  // no longer accepting
}

TEST(HttpServer, BadListenAddressesAreClearErrors) {
  ServerOptions o;
  o.host = "no-such-host.invalid";
  auto bad = HttpServer::start(o, echo);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, ErrorCode::kInvalidArgument);
  auto first = serve();
  ServerOptions taken;
  taken.port = first->port();
  auto clash = HttpServer::start(taken, echo);
  ASSERT_FALSE(clash.ok());
  EXPECT_EQ(clash.error().code, ErrorCode::kIo);
}

// Out of file descriptors, the acceptor neither spins nor leaves clients hanging: it backs
// off, sheds waiting connections with a 503 through a reserve descriptor, and serves again
// once descriptors free up. Clients run in a child process (their own descriptor table), so
// only the server runs out.
TEST(HttpServer, OutOfDescriptorsTheServerShedsAndBacksOffInsteadOfSpinning) {
  ServerOptions o = small_limits();
  o.idle_timeout = seconds(30);
  o.first_request_timeout = seconds(30);
  auto server = serve(o);
  const uint16_t port = server->port();
  struct rlimit old {};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &old), 0);
  // A limit that leaves the server 16 free descriptor numbers (new ones take the lowest
  // free number, and the limit bounds the number; pipes for the child take 4 more).
  int limit = 0;
  for (int free_slots = 0; free_slots < 16 + 4; ++limit)
    free_slots += ::fcntl(limit, F_GETFD) == -1 ? 1 : 0;
  struct rlimit tight = old;
  tight.rlim_cur = static_cast<rlim_t>(limit);
  int to_child[2], from_child[2];
  ASSERT_EQ(::pipe(to_child), 0);
  ASSERT_EQ(::pipe(from_child), 0);
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &tight), 0);  // the server's limit from now on
  const pid_t child = ::fork();
  if (child == 0) {
    ::setrlimit(RLIMIT_NOFILE, &old);  // the clients' is not
    // 60 connections that stay open and send nothing; then, told to, one that asks.
    std::vector<std::unique_ptr<RawClient>> held;
    for (int i = 0; i < 60; ++i) held.push_back(std::make_unique<RawClient>(port));
    char go = 0;
    (void)::write(from_child[1], "r", 1);
    (void)::read(to_child[0], &go, 1);  // the parent has measured
    // A held connection beyond the server's descriptors was shed: it reads a 503 or a close.
    int shed = 0;
    for (auto& c : held) {
      const std::string r = c->response(std::chrono::milliseconds(50));
      shed += status_of(r) == 503 ? 1 : 0;
    }
    held.clear();  // every descriptor comes back to the server
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    RawClient fresh(port);
    fresh.send(get("/after"));
    const int status = status_of(fresh.response(std::chrono::milliseconds(3000)));
    const char out[2] = {static_cast<char>(shed), static_cast<char>(status == 200 ? 1 : 0)};
    (void)::write(from_child[1], out, 2);
    ::_exit(0);
  }
  ASSERT_GE(child, 0);
  char ready = 0;
  ASSERT_EQ(::read(from_child[0], &ready, 1), 1);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // the server at its limit
  struct rusage before {
  }, after{};
  ::getrusage(RUSAGE_SELF, &before);
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  ::getrusage(RUSAGE_SELF, &after);
  auto cpu_ms = [](const struct rusage& u) {
    return (u.ru_utime.tv_sec + u.ru_stime.tv_sec) * 1000.0 +
           (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1000.0;
  };
  const double used = cpu_ms(after) - cpu_ms(before);
  ASSERT_EQ(::write(to_child[1], "g", 1), 1);
  char result[2] = {0, 0};
  ASSERT_EQ(::read(from_child[0], result, 2), 2);
  int status = 0;
  ::waitpid(child, &status, 0);
  ::setrlimit(RLIMIT_NOFILE, &old);
  std::printf("at the descriptor limit: %.0f ms of CPU in 1 s; %d connections shed with 503\n",
              used, result[0]);
  EXPECT_LT(used, 300) << "the acceptor spins at the descriptor limit";
  EXPECT_GT(result[0], 0) << "no waiting connection was told 503";
  EXPECT_EQ(result[1], 1) << "the server did not serve again once descriptors came back";
}

}  // namespace
}  // namespace drover::http
