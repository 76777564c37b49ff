// HttpClient's bound on what it reads into memory: an answer larger than max_answer_bytes is
// refused before its body is read, and the client goes on working. And the server URLs it
// takes: what parse_url accepts and what it refuses.
#include <gtest/gtest.h>

#include <string>

#include "transport/http/client.h"
#include "transport/http/server.h"

namespace drover::http {
namespace {

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
