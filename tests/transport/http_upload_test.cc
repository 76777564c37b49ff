// Large bodies (ServerOptions::LargeBody): admitted on the head before a byte of the body is
// read, spooled to disk as they arrive, and nothing left behind when they are cut or refused.
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>

#include "../common/raw_http_client.h"
#include "security/crypto.h"
#include "transport/http/server.h"

namespace drover::http {
namespace {

namespace fs = std::filesystem;
using drover::testing::body_of;
using drover::testing::RawClient;
using drover::testing::status_of;

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

size_t files_in(const fs::path& dir) {
  std::error_code ec;
  size_t n = 0;
  for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::end(it); it.increment(ec)) ++n;
  return n;
}

// Polls until `dir` is empty (the server removes a spool file on its own thread).
bool empties_within(const fs::path& dir, std::chrono::milliseconds wait) {
  const auto deadline = std::chrono::steady_clock::now() + wait;
  while (files_in(dir) > 0) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

std::string put_head(const std::string& target, size_t length, const std::string& extra = {}) {
  return "PUT " + target + " HTTP/1.1\r\nHost: t\r\nContent-Length: " + std::to_string(length) +
         "\r\n" + extra + "\r\n";
}

class HttpUploadTest : public ::testing::Test {
 protected:
  HttpUploadTest() {
    std::string pattern = (fs::temp_directory_path() / "drover-upload-XXXXXX").string();
    EXPECT_NE(::mkdtemp(pattern.data()), nullptr);
    spool_ = pattern;
    kept_ = spool_.filename().string() + "-kept";
  }
  ~HttpUploadTest() override {
    server_.reset();
    std::error_code ec;
    fs::remove_all(spool_, ec);
  }

  // A server whose PUT /upload/ takes up to `max_bytes`, spooled to spool_, admitted only
  // with "X-Key: yes"; the handler records what it saw and may move the file to `kept_`.
  void start(size_t max_bytes = 64 << 20) {
    ServerOptions o;
    o.header_timeout = Duration(2000);
    o.body_timeout = Duration(2000);
    ServerOptions::LargeBody large;
    large.method = "PUT";
    large.path_prefix = "/upload/";
    large.max_bytes = max_bytes;
    large.timeout = seconds(10);
    large.spool_directory = spool_.string();
    large.admit = [this](Request& head) -> std::optional<Response> {
      ++admits_;
      EXPECT_TRUE(head.body.empty());
      EXPECT_FALSE(head.spooled.has_value());
      if (head.header("X-Key") != "yes") return Response::error(401, "unauthenticated", "no key");
      auto hold = std::make_shared<int>(1);
      head.admission = hold;
      std::lock_guard lock(held_mu_);
      held_ = hold;
      return std::nullopt;
    };
    o.large_bodies.push_back(large);
    auto s = HttpServer::start(o, [this](const Request& r) {
      ++calls_;
      held_in_handler_ = holding();
      if (!r.spooled) return Response::json(200, "\"in memory\"");
      seen_size_ = r.spooled->size;
      seen_sha_ = r.spooled->sha256;
      seen_content_ = read_file(r.spooled->path);
      if (r.path() == "/upload/keep") fs::rename(r.spooled->path, spool_.parent_path() / kept_);
      return Response::json(200, "\"spooled\"");
    });
    ASSERT_TRUE(s.ok()) << s.error().to_string();
    server_ = std::move(*s);
  }

  // Whether the server still holds what the last admission left in Request::admission.
  bool holding() {
    std::lock_guard lock(held_mu_);
    return !held_.expired();
  }

  bool released_within(std::chrono::milliseconds wait) {
    const auto deadline = std::chrono::steady_clock::now() + wait;
    while (holding()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return true;
  }

  fs::path spool_;
  std::string kept_;
  std::mutex held_mu_;
  std::weak_ptr<void> held_;
  std::atomic<bool> held_in_handler_{false};
  std::unique_ptr<HttpServer> server_;
  std::atomic<int> admits_{0};
  std::atomic<int> calls_{0};
  uint64_t seen_size_ = 0;
  std::string seen_sha_;
  std::string seen_content_;
};

// The head is judged before the body: a refused upload declaring 1 GiB is answered at once,
// its body never read and nothing spooled; the handler never runs.
TEST_F(HttpUploadTest, ARefusedHeadIsAnsweredBeforeAByteOfTheBody) {
  start(size_t{2} << 30);
  RawClient c(server_->port());
  ASSERT_TRUE(c.send(put_head("/upload/a", size_t{1} << 30)));
  const auto asked = std::chrono::steady_clock::now();
  const std::string r = c.response();
  EXPECT_EQ(status_of(r), 401) << r;
  EXPECT_LT(std::chrono::steady_clock::now() - asked, std::chrono::seconds(1));
  EXPECT_NE(r.find("X-Request-Id: r"), std::string::npos);
  EXPECT_NE(body_of(r).find("unauthenticated"), std::string::npos);
  EXPECT_TRUE(c.closed_within(std::chrono::milliseconds(3000)));
  EXPECT_EQ(admits_, 1);
  EXPECT_EQ(calls_, 0);
  EXPECT_EQ(files_in(spool_), 0u);
}

// A client that sends its body right behind the head still reads the refusal: the server
// reads and drops what keeps arriving for a while before it closes, instead of resetting the
// connection (a reset can destroy an answer the client has not read yet; RFC 9112 §9.6).
TEST_F(HttpUploadTest, ARefusalReachesAClientThatIsStillSending) {
  start();
  RawClient c(server_->port());
  const size_t length = 4 << 20;
  ASSERT_TRUE(c.send(put_head("/upload/a", length)));
  std::thread sender([&] { c.send(std::string(length, 'z')); });
  sender.join();  // all sent before the client reads: a reset would have destroyed the answer
  const std::string r = c.response(std::chrono::milliseconds(5000));
  EXPECT_EQ(status_of(r), 401) << r;
  // The connection still takes bytes after the answer (a closed one would reset and refuse).
  for (int i = 0; i < 4; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    EXPECT_TRUE(c.send(std::string(64 * 1024, 'z'))) << i;
  }
  EXPECT_TRUE(c.closed_within(std::chrono::milliseconds(4000)));
  EXPECT_EQ(calls_, 0);
}

// What the admit hook leaves in Request::admission (ArtifactService's promise of disk space)
// is held while the body arrives and through the handler, and released after it; a body cut
// short releases it too.
TEST_F(HttpUploadTest, TheAdmissionIsHeldWhileTheBodyArrivesAndReleasedAfter) {
  start();
  const std::string content(200'000, 'a');
  {
    RawClient c(server_->port());
    ASSERT_TRUE(
        c.send(put_head("/upload/a", content.size(), "X-Key: yes\r\n") + content.substr(0, 1000)));
    for (int i = 0; i < 200 && admits_ == 0; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    EXPECT_TRUE(holding());
    ASSERT_TRUE(c.send(content.substr(1000)));
    EXPECT_EQ(status_of(c.response(std::chrono::milliseconds(5000))), 200);
    EXPECT_TRUE(held_in_handler_);
    EXPECT_TRUE(released_within(std::chrono::milliseconds(2000)));  // once the handler is done
  }
  auto cut = std::make_unique<RawClient>(server_->port());
  ASSERT_TRUE(cut->send(put_head("/upload/b", content.size(), "X-Key: yes\r\n") + "partial"));
  for (int i = 0; i < 200 && admits_ < 2; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_TRUE(holding());
  cut.reset();  // the client goes away mid-body
  EXPECT_TRUE(released_within(std::chrono::milliseconds(2000)));
  EXPECT_EQ(calls_, 1);
}

// An admitted body arrives as a file with its size and hash; the file is gone after the
// answer unless the handler moved it.
TEST_F(HttpUploadTest, AnAdmittedBodyIsSpooledToAFileWithItsHash) {
  start();
  std::string content(3'000'000, '\0');
  for (size_t i = 0; i < content.size(); ++i) content[i] = static_cast<char>((i * 7919) >> 3);
  for (const std::string target : {"/upload/drop", "/upload/keep"}) {
    RawClient c(server_->port());
    ASSERT_TRUE(c.send(put_head(target, content.size(), "X-Key: yes\r\n") + content));
    const std::string r = c.response(std::chrono::milliseconds(5000));
    EXPECT_EQ(status_of(r), 200) << r;
    EXPECT_EQ(body_of(r), "\"spooled\"");
    EXPECT_EQ(seen_size_, content.size());
    EXPECT_EQ(seen_sha_, security::sha256(content));
    EXPECT_TRUE(seen_content_ == content) << target;
    EXPECT_TRUE(empties_within(spool_, std::chrono::milliseconds(2000))) << target;
  }
  const fs::path kept = spool_.parent_path() / kept_;
  EXPECT_EQ(read_file(kept).size(), content.size());
  fs::remove(kept);
  // Chunked bodies are spooled too (the admit hook decides whether it wants a length).
  RawClient chunked(server_->port());
  ASSERT_TRUE(chunked.send(
      "PUT /upload/c HTTP/1.1\r\nHost: t\r\nX-Key: yes\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"));
  EXPECT_EQ(status_of(chunked.response()), 200);
  EXPECT_EQ(seen_content_, "hello world");
  EXPECT_EQ(seen_sha_, security::sha256("hello world"));
  EXPECT_EQ(calls_, 3);
}

// A body cut short, or over the route's limit, leaves no file behind and reaches no handler.
TEST_F(HttpUploadTest, ABodyCutShortOrTooLargeLeavesNoFile) {
  start(100'000);
  {
    RawClient c(server_->port());
    ASSERT_TRUE(c.send(put_head("/upload/a", 50'000, "X-Key: yes\r\n") + std::string(20'000, 'x')));
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }  // the client goes away mid-body
  EXPECT_TRUE(empties_within(spool_, std::chrono::milliseconds(2000)));
  RawClient chunked(server_->port());
  std::string body;
  for (int i = 0; i < 120; ++i) body += "3e8\r\n" + std::string(1000, 'b') + "\r\n";
  ASSERT_TRUE(chunked.send(
      "PUT /upload/b HTTP/1.1\r\nHost: t\r\nX-Key: yes\r\nTransfer-Encoding: chunked\r\n\r\n" +
      body + "0\r\n\r\n"));
  EXPECT_EQ(status_of(chunked.response()), 413);
  EXPECT_TRUE(empties_within(spool_, std::chrono::milliseconds(2000)));
  EXPECT_EQ(calls_, 0);
}

// "Expect: 100-continue": the client is told to go on only once the head is admitted, and
// a refused one is refused without the 100.
TEST_F(HttpUploadTest, ExpectContinueIsAnsweredAfterTheHeadIsAdmitted) {
  start();
  RawClient c(server_->port());
  ASSERT_TRUE(c.send(put_head("/upload/a", 5, "X-Key: yes\r\nExpect: 100-continue\r\n")));
  EXPECT_EQ(status_of(c.response()), 100);
  ASSERT_TRUE(c.send("12345"));
  const std::string r = c.response();
  EXPECT_EQ(status_of(r), 200) << r;
  EXPECT_EQ(seen_content_, "12345");

  RawClient refused(server_->port());
  ASSERT_TRUE(refused.send(put_head("/upload/a", 5, "Expect: 100-continue\r\n")));
  EXPECT_EQ(status_of(refused.response()), 401);
}

// A disk that refuses the body (here: the file size limit, EFBIG) is answered 507 and the
// partial file removed; a spool directory that cannot be written is 503.
TEST_F(HttpUploadTest, ADiskThatRefusesTheBodyIs507AndLeavesNothing) {
  start();
  struct rlimit old {};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old), 0);
  auto* previous = ::signal(SIGXFSZ, SIG_IGN);
  struct rlimit small = old;
  small.rlim_cur = 64 * 1024;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
  RawClient c(server_->port());
  const size_t length = 1 << 20;
  ASSERT_TRUE(c.send(put_head("/upload/a", length, "X-Key: yes\r\n")));
  std::thread sender([&] { c.send(std::string(length, 'f')); });
  const std::string r = c.response(std::chrono::milliseconds(5000));
  sender.join();
  ::setrlimit(RLIMIT_FSIZE, &old);
  ::signal(SIGXFSZ, previous);
  EXPECT_EQ(status_of(r), 507) << r;
  EXPECT_NE(body_of(r).find("resource_exhausted"), std::string::npos);
  EXPECT_TRUE(empties_within(spool_, std::chrono::milliseconds(2000)));
  EXPECT_EQ(calls_, 0);

  fs::remove_all(spool_);
  RawClient gone(server_->port());
  ASSERT_TRUE(gone.send(put_head("/upload/a", 5, "X-Key: yes\r\n") + "12345"));
  EXPECT_EQ(status_of(gone.response()), 503);
  EXPECT_EQ(calls_, 0);
}

}  // namespace
}  // namespace drover::http
