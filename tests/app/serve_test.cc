// `drover serve` as a real process: it listens, answers, and stops cleanly on SIGTERM.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include "../common/raw_http_client.h"
#include "../common/serve_process.h"
#include "fleet/device_auth.h"
#include "security/crypto.h"

namespace drover::testing {
namespace {

TEST(Serve, ServesHealthAndStopsCleanlyOnSigterm) {
  const std::string data = temp_dir() + "/data";  // created by serve
  ServeProcess serve(data, "127.0.0.1:0", "none-given", /*debug=*/true);
  ASSERT_TRUE(serve.wait_for("listening on")) << serve.output();
  ASSERT_NE(serve.port(), 0);

  RawClient c(serve.port());
  ASSERT_TRUE(c.send("GET /api/v1/health HTTP/1.1\r\nHost: t\r\n\r\n"));
  const std::string health = c.response();
  EXPECT_EQ(status_of(health), 200);
  EXPECT_EQ(body_of(health), R"({"status":"ok","devices":0,"rollouts":0})");
  ASSERT_TRUE(c.send("GET /api/v1/nothing HTTP/1.1\r\nHost: t\r\n\r\n"));
  EXPECT_EQ(status_of(c.response()), 404);
  // The OpenAPI document, as in docs/api/openapi.json.
  ASSERT_TRUE(c.send("GET /api/openapi.json HTTP/1.1\r\nHost: t\r\n\r\n"));
  const std::string openapi = c.response();
  EXPECT_EQ(status_of(openapi), 200);
  std::ifstream doc(OPENAPI_JSON);
  const std::string expected((std::istreambuf_iterator<char>(doc)),
                             std::istreambuf_iterator<char>());
  EXPECT_FALSE(expected.empty());
  EXPECT_TRUE(body_of(openapi) == expected) << "the served document is not docs/api/openapi.json";

  // --debug: one JSON access-log line per request.
  EXPECT_TRUE(serve.wait_for(R"("method":"GET","msg":"request","path":"/api/v1/health")"))
      << serve.output();
  EXPECT_TRUE(serve.wait_for(R"("path":"/api/v1/nothing")")) << serve.output();

  ::kill(serve.pid(), SIGTERM);
  EXPECT_EQ(serve.exit_code(), 0) << serve.output();
  EXPECT_TRUE(serve.wait_for("stopped")) << serve.output();
  EXPECT_TRUE(c.closed_within(std::chrono::milliseconds(2000)));
  EXPECT_TRUE(std::filesystem::exists(data + "/drover.db"));
  std::filesystem::remove_all(std::filesystem::path(data).parent_path());
}

TEST(Serve, BadListenAddressesAndTakenPortsAreClearErrors) {
  const std::string data = temp_dir();
  {
    ServeProcess serve(data, "no-port-here");
    EXPECT_EQ(serve.exit_code(), 1);
    EXPECT_TRUE(serve.wait_for("--listen must be HOST:PORT")) << serve.output();
  }
  ServeProcess first(data + "/a", "127.0.0.1:0");
  ASSERT_TRUE(first.wait_for("listening on"));
  ServeProcess second(data + "/b", "127.0.0.1:" + std::to_string(first.port()));
  EXPECT_EQ(second.exit_code(), 1);
  EXPECT_TRUE(second.wait_for("cannot bind")) << second.output();
  std::filesystem::remove_all(data);
}

// A device enrolls, logs in and checks in over real HTTP; the server is killed with SIGKILL
// and restarted on the same data: the device's identity survived and it logs in again.
TEST(Serve, ADeviceEnrollsLogsInAndChecksInAcrossAKill) {
  const std::string data = temp_dir();
  auto key = std::move(security::SigningKey::generate()).value();
  const std::string pub = security::to_base64url(key.public_key());
  auto request = [](uint16_t port, const std::string& path, const std::string& body,
                    const std::string& token = {}) {
    RawClient c(port);
    std::string head =
        "POST " + path + " HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n";
    if (!token.empty()) head += "Authorization: Bearer " + token + "\r\n";
    c.send(head + "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body);
    return c.response();
  };
  auto field = [](const std::string& response, const std::string& name) {
    const std::string b = body_of(response);
    const size_t at = b.find("\"" + name + "\":\"");
    if (at == std::string::npos) return std::string();
    const size_t start = at + name.size() + 4;
    return b.substr(start, b.find('"', start) - start);
  };
  auto login = [&](uint16_t port) {
    const std::string c =
        request(port, "/api/device/v1/auth/challenge", R"({"device_id":"dev-1"})");
    const std::string challenge = field(c, "challenge");
    const std::string sig =
        security::to_base64url(key.sign(DeviceAuth::challenge_message("dev-1", challenge)));
    return field(request(port, "/api/device/v1/auth/token",
                         R"({"device_id":"dev-1","challenge":")" + challenge +
                             R"(","signature":")" + sig + "\"}"),
                 "token");
  };
  {
    ServeProcess serve(data, "127.0.0.1:0", "t0ken");
    ASSERT_TRUE(serve.wait_for("listening on")) << serve.output();
    const std::string enrolled = request(
        serve.port(), "/api/device/v1/enroll",
        R"({"device_id":"dev-1","device_type":"ctl","hardware_revision":"rev-a","public_key":")" +
            pub + R"(","enrollment_token":"t0ken","installed":{"firmware":"1.0.0"}})");
    ASSERT_EQ(status_of(enrolled), 200) << enrolled;
    EXPECT_EQ(field(enrolled, "enrollment"), "accepted");
    const std::string token = login(serve.port());
    ASSERT_FALSE(token.empty());
    const std::string checked = request(serve.port(), "/api/device/v1/checkin",
                                        R"({"installed":{"firmware":"1.0.0"}})", token);
    EXPECT_EQ(status_of(checked), 200) << checked;
    EXPECT_NE(body_of(checked).find("\"offer\":null"), std::string::npos) << checked;
    EXPECT_EQ(status_of(request(serve.port(), "/api/device/v1/checkin", "{}")), 401);
    ::kill(serve.pid(), SIGKILL);
    EXPECT_EQ(serve.exit_code(), 128 + SIGKILL);
  }
  ServeProcess again(data, "127.0.0.1:0", "t0ken");
  ASSERT_TRUE(again.wait_for("listening on")) << again.output();
  EXPECT_FALSE(login(again.port()).empty());  // acknowledged before the kill, still there
  const std::string health = [&] {
    RawClient c(again.port());
    c.send("GET /api/v1/health HTTP/1.1\r\nHost: t\r\n\r\n");
    return c.response();
  }();
  EXPECT_NE(body_of(health).find("\"devices\":1"), std::string::npos) << health;
  std::filesystem::remove_all(data);
}

}  // namespace
}  // namespace drover::testing
