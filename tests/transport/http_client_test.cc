// HttpClient's bound on what it reads into memory: an answer larger than max_answer_bytes is
// refused before its body is read, and the client goes on working.
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

}  // namespace
}  // namespace drover::http
