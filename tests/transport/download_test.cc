// Artifact downloads over real sockets: whole and ranged, resumed after a cut, ETag and
// If-Range, 416 and 400 for ranges that cannot be served, and the device checks; with the
// HttpClient the agent uses.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "../common/fleet_fixture.h"
#include "security/crypto.h"
#include "transport/http/client.h"
#include "transport/http/device_api.h"
#include "transport/http/range.h"

namespace drover::http {
namespace {

using drover::testing::Fleet;
using nlohmann::json;
using security::SigningKey;
using security::to_base64url;

// Content whose every byte depends on its position, so a misplaced range shows.
std::string pattern(size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 131 + i / 251) & 0xff);
  return s;
}

class DownloadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/drover-download-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    artifacts_ = std::make_unique<ArtifactService>(f_.store(), *f_.engine, dir_ + "/artifacts");
    Artifact meta;
    meta.name = "firmware";
    meta.version = "3.0.0";
    meta.device_types = {"ctl"};
    meta.hardware_revisions = {"rev-a"};
    content_ = pattern(1'000'003);  // several 64 KiB pieces and an odd tail
    auto stored = artifacts_->upload(meta, content_);
    ASSERT_TRUE(stored.ok()) << stored.error().to_string();
    etag_ = "\"" + stored->sha256 + "\"";
    meta.version = "3.0.1";
    meta.hardware_revisions = {"rev-z"};
    ASSERT_TRUE(artifacts_->upload(meta, "other").ok());

    AuthOptions o;
    o.enrollment_tokens = {"t"};
    auth_ = std::make_unique<DeviceAuth>(*f_.service, f_.clock,
                                         *security::TokenSigner::create(std::string(32, 'k')), o);
    add_device_api(router_, *auth_, *f_.service, artifacts_.get());
    auto server = HttpServer::start({}, [this](const Request& r) { return router_(r); });
    ASSERT_TRUE(server.ok());
    server_ = std::move(*server);
    auto client = HttpClient::create("http://127.0.0.1:" + std::to_string(server_->port()));
    ASSERT_TRUE(client.ok());
    client_ = std::move(*client);
    token_ = enroll_and_login("dev-a");
  }
  void TearDown() override {
    server_->stop();
    std::filesystem::remove_all(dir_);
  }

  std::string enroll_and_login(const std::string& id) {
    const SigningKey key = std::move(SigningKey::generate()).value();
    json body = {{"device_id", id},
                 {"device_type", "ctl"},
                 {"hardware_revision", "rev-a"},
                 {"public_key", to_base64url(key.public_key())},
                 {"enrollment_token", "t"}};
    if (post("/api/device/v1/enroll", body).status != 200) return {};
    const json c = json::parse(post("/api/device/v1/auth/challenge", {{"device_id", id}}).body);
    const std::string challenge = c["challenge"];
    const json t = json::parse(
        post("/api/device/v1/auth/token",
             {{"device_id", id},
              {"challenge", challenge},
              {"signature", to_base64url(key.sign(DeviceAuth::challenge_message(id, challenge)))}})
            .body);
    return t["token"];
  }
  ClientResponse post(const std::string& path, const json& body) {
    auto r = client_->request("POST", path, body.dump(), {{"Content-Type", "application/json"}});
    EXPECT_TRUE(r.ok());
    return r.ok() ? *r : ClientResponse{};
  }
  ClientResponse get(const std::string& path, Headers headers = {}) {
    headers.emplace_back("Authorization", "Bearer " + token_);
    auto r = client_->request("GET", path, {}, headers);
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().to_string());
    return r.ok() ? *r : ClientResponse{};
  }

  static constexpr const char* kPath = "/api/device/v1/artifacts/firmware/3.0.0";
  Fleet f_;
  std::string dir_, content_, etag_, token_;
  std::unique_ptr<ArtifactService> artifacts_;
  std::unique_ptr<DeviceAuth> auth_;
  Router router_;
  std::unique_ptr<HttpServer> server_;
  std::unique_ptr<HttpClient> client_;
};

TEST_F(DownloadTest, TheWholeContentWithItsETag) {
  const ClientResponse r = get(kPath);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body.size(), content_.size());
  EXPECT_TRUE(r.body == content_);
  EXPECT_EQ(r.header("ETag"), etag_);
  EXPECT_EQ(r.header("Accept-Ranges"), "bytes");
  EXPECT_EQ(r.header("Content-Type"), "application/octet-stream");
  // The connection stays usable after a streamed body.
  EXPECT_EQ(get(kPath, {{"Range", "bytes=0-0"}}).status, 206);
}

TEST_F(DownloadTest, RangesAreServedExactly) {
  struct Case {
    const char* range;
    uint64_t first, length;
  };
  const uint64_t n = content_.size();
  for (const Case& c : {Case{"bytes=0-99", 0, 100}, Case{"bytes=65530-65545", 65530, 16},
                        Case{"bytes=999000-", 999000, n - 999000}, Case{"bytes=-10", n - 10, 10},
                        Case{"bytes=5-99999999", 5, n - 5}, Case{"bytes=-99999999", 0, n}}) {
    const ClientResponse r = get(kPath, {{"Range", c.range}});
    ASSERT_EQ(r.status, 206) << c.range << ": " << r.body;
    EXPECT_TRUE(r.body == content_.substr(c.first, c.length)) << c.range;
    EXPECT_EQ(r.header("Content-Range"), "bytes " + std::to_string(c.first) + "-" +
                                             std::to_string(c.first + c.length - 1) + "/" +
                                             std::to_string(n))
        << c.range;
  }
}

TEST_F(DownloadTest, ADownloadCutHalfWayResumesWhereItStopped) {
  std::string received;
  // The sink stops after ~300 KB, as a lost link would.
  auto cut = client_->get_to(kPath, {{"Authorization", "Bearer " + token_}},
                             [&](std::string_view piece) -> Status {
                               received.append(piece);
                               if (received.size() > 300'000) return io_error("link lost");
                               return ok_status();
                             });
  ASSERT_FALSE(cut.ok());
  ASSERT_GT(received.size(), 300'000u);
  ASSERT_LT(received.size(), content_.size());
  auto rest = client_->get_to(kPath,
                              {{"Authorization", "Bearer " + token_},
                               {"Range", "bytes=" + std::to_string(received.size()) + "-"},
                               {"If-Range", etag_}},
                              [&](std::string_view piece) -> Status {
                                received.append(piece);
                                return ok_status();
                              });
  ASSERT_TRUE(rest.ok()) << rest.error().to_string();
  EXPECT_EQ(rest->status, 206);
  EXPECT_EQ(received.size(), content_.size());
  EXPECT_TRUE(received == content_);
}

// A streamed GET hands only 2xx bodies to its sink: an error document is not content.
TEST_F(DownloadTest, AnErrorAnswerIsNeverWrittenAsContent) {
  std::string received;
  auto r = client_->get_to(kPath,
                           {{"Authorization", "Bearer " + token_},
                            {"Range", "bytes=" + std::to_string(content_.size()) + "-"}},
                           [&](std::string_view piece) -> Status {
                             received.append(piece);
                             return ok_status();
                           });
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(r->status, 416);
  EXPECT_TRUE(received.empty());
  EXPECT_NE(r->body.find("range_not_satisfiable"), std::string::npos) << r->body;
  // And the connection is still good for the next one.
  auto whole = client_->get_to(kPath, {{"Authorization", "Bearer " + token_}},
                               [&](std::string_view piece) -> Status {
                                 received.append(piece);
                                 return ok_status();
                               });
  ASSERT_TRUE(whole.ok());
  EXPECT_EQ(received.size(), content_.size());
}

TEST_F(DownloadTest, AStaleIfRangeGetsTheWholeNewContent) {
  const ClientResponse r =
      get(kPath, {{"Range", "bytes=100-"}, {"If-Range", "\"" + std::string(64, '0') + "\""}});
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body.size(), content_.size());
}

TEST_F(DownloadTest, RangesThatCannotBeServedAreRefusedClearly) {
  const std::string size = std::to_string(content_.size());
  for (const char* unsatisfiable : {"bytes=1000003-", "bytes=2000000-2000010", "bytes=-0"}) {
    const ClientResponse r = get(kPath, {{"Range", unsatisfiable}});
    EXPECT_EQ(r.status, 416) << unsatisfiable;
    EXPECT_EQ(r.header("Content-Range"), "bytes */" + size) << unsatisfiable;
    EXPECT_NE(r.body.find("\"error\""), std::string::npos) << unsatisfiable;
  }
  for (const char* several : {"bytes=0-10,5-20", "bytes=0-1,0-1,0-1", "bytes=0-,-5"}) {
    const ClientResponse r = get(kPath, {{"Range", several}});
    EXPECT_EQ(r.status, 416) << several;
    EXPECT_NE(r.body.find("one range per request"), std::string::npos) << several;
  }
  for (const char* malformed : {"bytes=abc", "bytes=10-5", "items=0-10", "bytes=", "bytes=-",
                                "bytes=+1-2", "bytes=0x10-20", "bytes=18446744073709551616-"}) {
    const ClientResponse r = get(kPath, {{"Range", malformed}});
    EXPECT_EQ(r.status, 400) << malformed;
  }
  // The server is still serving.
  EXPECT_EQ(get(kPath).status, 200);
}

TEST_F(DownloadTest, OnlyDevicesTheArtifactIsBuiltForMayDownloadIt) {
  EXPECT_EQ(get("/api/device/v1/artifacts/firmware/3.0.1").status, 403);  // rev-z only
  EXPECT_EQ(get("/api/device/v1/artifacts/firmware/9.9.9").status, 404);
  auto anonymous = client_->request("GET", kPath);
  ASSERT_TRUE(anonymous.ok());
  EXPECT_EQ(anonymous->status, 401);
  auto forged = client_->request("GET", kPath, {}, {{"Authorization", "Bearer x.1.y"}});
  ASSERT_TRUE(forged.ok());
  EXPECT_EQ(forged->status, 401);
}

TEST_F(DownloadTest, PathTricksNeverLeaveTheArtifactDirectory) {
  // A file beside the artifact directory that a traversal would reach.
  std::ofstream(dir_ + "/secret") << "secret";
  for (const char* trick :
       {"/api/device/v1/artifacts/..%2F..%2Fsecret/1.0.0", "/api/device/v1/artifacts/../secret",
        "/api/device/v1/artifacts/firmware/..%2f..%2fsecret", "/api/device/v1/artifacts/%2e%2e/x",
        "/api/device/v1/artifacts/firmware/3.0.0%00"}) {
    const ClientResponse r = get(trick);
    EXPECT_GE(r.status, 400) << trick;
    EXPECT_LT(r.status, 500) << trick;
    EXPECT_EQ(r.header("Content-Type"), "application/json") << trick;  // an error, not a file
    EXPECT_NE(r.body, "secret") << trick;
  }
}

TEST(ResolveRange, EdgeCases) {
  EXPECT_FALSE(resolve_range("", 10).range.has_value());
  EXPECT_FALSE(resolve_range("", 10).error.has_value());
  EXPECT_EQ(resolve_range("bytes=0-", 0).error, RangeError::kUnsatisfiable);
  EXPECT_EQ(resolve_range("bytes=-5", 0).error, RangeError::kUnsatisfiable);
  const RangeResult last = resolve_range("BYTES=9-9", 10);
  ASSERT_TRUE(last.range.has_value()) << "the unit is case-insensitive";
  EXPECT_EQ(last.range->first, 9u);
  EXPECT_EQ(last.range->length, 1u);
  EXPECT_EQ(resolve_range("bytes=10-10", 10).error, RangeError::kUnsatisfiable);
  EXPECT_EQ(resolve_range("bytes=18446744073709551615-", 10).error, RangeError::kUnsatisfiable);
}

}  // namespace
}  // namespace drover::http
