#include "transport/http/device_api.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "../common/fleet_fixture.h"

namespace drover::http {
namespace {

using drover::testing::Fleet;
using drover::testing::simple_plan;
using nlohmann::json;
using security::SigningKey;
using security::to_base64url;

class DeviceApiTest : public ::testing::Test {
 protected:
  DeviceApiTest() { wire(); }
  // The API over the fleet's current services (again after f.restart(), which replaces them).
  void wire() {
    AuthOptions o;
    o.enrollment_tokens = {"factory-token"};
    auth = std::make_unique<DeviceAuth>(*f.service, f.clock,
                                        *security::TokenSigner::create(std::string(32, 'k')), o);
    router = Router{};
    add_device_api(router, *auth, *f.service);
  }

  Response post(const std::string& path, const json& body, const std::string& token = {}) {
    Request r;
    r.method = "POST";
    r.target = path;
    r.body = body.dump();
    if (!token.empty()) r.headers.emplace_back("Authorization", "Bearer " + token);
    return router(r);
  }
  static json parsed(const Response& r) { return json::parse(r.body); }

  Response enroll(const std::string& id, const SigningKey& key, const std::string& token) {
    json body = {{"device_id", id},
                 {"device_type", "ctl"},
                 {"hardware_revision", "rev-a"},
                 {"public_key", to_base64url(key.public_key())},
                 {"installed", {{"firmware", "1.0.0"}, {"bootloader", "2.0.0"}}}};
    if (!token.empty()) body["enrollment_token"] = token;
    return post("/api/device/v1/enroll", body);
  }

  // Challenge, sign, token: the bearer token, or "" on failure.
  std::string login(const std::string& id, const SigningKey& key) {
    const Response c = post("/api/device/v1/auth/challenge", {{"device_id", id}});
    if (c.status != 200) return {};
    const std::string challenge = parsed(c)["challenge"];
    const Response t =
        post("/api/device/v1/auth/token",
             {{"device_id", id},
              {"challenge", challenge},
              {"signature", to_base64url(key.sign(DeviceAuth::challenge_message(id, challenge)))}});
    return t.status == 200 ? parsed(t)["token"].get<std::string>() : std::string();
  }

  Response check_in(const std::string& token, const json& installed) {
    return post("/api/device/v1/checkin", {{"installed", installed}, {"update_state", "idle"}},
                token);
  }

  Fleet f;
  std::unique_ptr<DeviceAuth> auth;
  Router router;
  SigningKey key_a = std::move(SigningKey::generate()).value();
  SigningKey key_b = std::move(SigningKey::generate()).value();
};

TEST_F(DeviceApiTest, EnrollLoginCheckInAndReport) {
  const Response e = enroll("dev-a", key_a, "factory-token");
  ASSERT_EQ(e.status, 200) << e.body;
  EXPECT_EQ(parsed(e)["enrollment"], "accepted");
  const std::string token = login("dev-a", key_a);
  ASSERT_FALSE(token.empty());

  const json installed = {{"firmware", "1.0.0"}, {"bootloader", "2.0.0"}};
  Response c = check_in(token, installed);
  ASSERT_EQ(c.status, 200) << c.body;
  EXPECT_TRUE(parsed(c)["offer"].is_null());
  EXPECT_EQ(parsed(c)["commands"], json::array());
  EXPECT_EQ(parsed(c)["next_checkin_s"], 1800);

  const std::string rollout = f.start(simple_plan({{"all", 100, 0, Duration(0)}}));
  c = check_in(token, installed);
  ASSERT_EQ(c.status, 200) << c.body;
  const json offer = parsed(c)["offer"];
  ASSERT_TRUE(offer.is_object()) << c.body;
  EXPECT_EQ(offer["rollout_id"], rollout);
  EXPECT_EQ(offer["version"], "2.0.0");

  for (const char* status : {"downloading", "installing", "rebooting", "succeeded"}) {
    const Response r = post("/api/device/v1/deployments/" + rollout + "/status",
                            {{"version", "2.0.0"}, {"status", status}}, token);
    ASSERT_EQ(r.status, 200) << status << ": " << r.body;
  }
  EXPECT_EQ(f.state_of(rollout, "dev-a"), DeploymentState::kSucceeded);
}

// The offer says when to install (windows in ms since the epoch, UTC); a device holding the
// image checks in as "ready" naming the rollout, and is told to apply, wait or drop.
TEST_F(DeviceApiTest, OffersCarryWindowsAndAHoldingDeviceIsAnswered) {
  f.add_site(Site{"berlin", "Europe/Berlin", {{0x7f, 2 * 60, 120}}});  // 00:00-02:00 UTC
  wire();  // add_site restarted the services
  ASSERT_EQ(enroll("dev-a", key_a, "factory-token").status, 200);
  ASSERT_TRUE(f.service
                  ->update("dev-a",
                           [](Device& d) {
                             d.site = "berlin";
                             return ok_status();
                           })
                  .ok());
  const std::string token = login("dev-a", key_a);
  const json installed = {{"firmware", "1.0.0"}, {"bootloader", "2.0.0"}};
  const std::string rollout = f.start(simple_plan({{"all", 100, 0, Duration(0)}}));
  Response c = check_in(token, installed);
  ASSERT_EQ(c.status, 200) << c.body;
  const json windows = parsed(c)["offer"]["windows"];
  ASSERT_TRUE(windows.is_array() && !windows.empty()) << c.body;
  EXPECT_EQ(windows[0]["from"],
            drover::testing::at("2026-06-02T00:00:00Z").time_since_epoch().count());
  EXPECT_EQ(windows[0]["until"],
            drover::testing::at("2026-06-02T02:00:00Z").time_since_epoch().count());
  ASSERT_EQ(post("/api/device/v1/deployments/" + rollout + "/status",
                 {{"version", "2.0.0"}, {"status", "downloading"}}, token)
                .status,
            200);
  const auto ready = [&](const json& holding) {
    json body = {{"installed", installed}, {"update_state", "ready"}};
    if (!holding.is_null()) body["holding"] = holding;
    return post("/api/device/v1/checkin", body, token);
  };
  c = ready(rollout);
  ASSERT_EQ(c.status, 200) << c.body;
  EXPECT_EQ(parsed(c)["hold"]["action"], "apply");
  EXPECT_EQ(parsed(c)["hold"]["windows"], windows);
  // "ready" without naming the rollout, or naming one while idle: 400, nothing changes.
  EXPECT_EQ(ready(nullptr).status, 400);
  EXPECT_EQ(post("/api/device/v1/checkin",
                 {{"installed", installed}, {"update_state", "idle"}, {"holding", rollout}}, token)
                .status,
            400);
  ASSERT_TRUE(f.engine->abort(rollout).ok());
  c = ready(rollout);
  ASSERT_EQ(c.status, 200) << c.body;
  EXPECT_EQ(parsed(c)["hold"]["action"], "drop");
  EXPECT_NE(parsed(c)["hold"]["reason"].get<std::string>().find("aborted"), std::string::npos)
      << c.body;
  EXPECT_EQ(f.state_of(rollout, "dev-a"), DeploymentState::kCancelled);
}

// An A/B device says it keeps its previous image; its success names what the other slot
// keeps; a fleet rollback then offers a switch back. A standby that is no version is
// refused and changes nothing; a message too long is cut, never refused.
TEST_F(DeviceApiTest, AKeptImageIsReportedAndARollbackOffersASwitchBack) {
  ASSERT_EQ(enroll("dev-a", key_a, "factory-token").status, 200);
  const std::string token = login("dev-a", key_a);
  const json installed = {{"firmware", "1.0.0"}, {"bootloader", "2.0.0"}};
  ASSERT_EQ(
      post("/api/device/v1/checkin",
           {{"installed", installed}, {"update_state", "idle"}, {"keeps_previous", true}}, token)
          .status,
      200);
  EXPECT_TRUE(f.service->device("dev-a")->keeps_previous);
  const std::string rollout = f.start(simple_plan({{"all", 100, 0, Duration(0)}}));
  ASSERT_EQ(check_in(token, installed).status, 200);
  const std::string status = "/api/device/v1/deployments/" + rollout + "/status";
  EXPECT_EQ(post(status, {{"version", "2.0.0"}, {"status", "succeeded"}, {"standby", "one"}}, token)
                .status,
            400);
  EXPECT_EQ(f.state_of(rollout, "dev-a"), DeploymentState::kOffered) << "nothing changed";
  // The engine's own events are no word of the device protocol: a device cannot send them.
  for (const char* engine_word : {"offer", "cancel", "skip", "revert", "silence"}) {
    const Response r = post(status, {{"version", "2.0.0"}, {"status", engine_word}}, token);
    EXPECT_EQ(r.status, 400) << engine_word;
    EXPECT_NE(r.body.find("unknown status report"), std::string::npos) << r.body;
  }
  EXPECT_EQ(f.state_of(rollout, "dev-a"), DeploymentState::kOffered) << "nothing changed";
  ASSERT_EQ(
      post(status, {{"version", "2.0.0"}, {"status", "succeeded"}, {"standby", "1.0.0"}}, token)
          .status,
      200);
  // A message longer than the server keeps is cut, not refused: the outcome it comes with
  // must not be lost.
  EXPECT_EQ(
      post(status,
           {{"version", "2.0.0"}, {"status", "succeeded"}, {"message", std::string(5000, 'x')}},
           token)
          .status,
      200);
  ASSERT_TRUE(f.engine->rollback(rollout).ok());
  const Response c = post("/api/device/v1/checkin",
                          {{"installed", {{"firmware", "2.0.0"}, {"bootloader", "2.0.0"}}},
                           {"update_state", "idle"},
                           {"keeps_previous", true}},
                          token);
  ASSERT_EQ(c.status, 200) << c.body;
  const json offer = parsed(c)["offer"];
  EXPECT_EQ(offer["version"], "1.0.0");
  EXPECT_EQ(offer["revert"], true);
  EXPECT_EQ(offer["switch_back"], true);
}

// What a device says of its configuration is kept on its record; a malformed hash is refused
// and changes nothing; an error too long, or not UTF-8, is kept readable and cut at its end.
TEST_F(DeviceApiTest, AConfigurationReportIsKeptAndAMalformedOneRefused) {
  ASSERT_EQ(enroll("dev-a", key_a, "factory-token").status, 200);
  const std::string token = login("dev-a", key_a);
  const json installed = {{"firmware", "1.0.0"}};
  const std::string sha(64, 'c');
  const Response ok =
      post("/api/device/v1/checkin",
           {{"installed", installed},
            {"config", {{"sha256", sha}, {"error", "refused: " + std::string(600, 'x')}}}},
           token);
  ASSERT_EQ(ok.status, 200) << ok.body;
  EXPECT_FALSE(parsed(ok).contains("config")) << "no configuration service: nothing to run";
  const Device d = *f.service->device("dev-a");
  EXPECT_EQ(d.config_sha256, sha);
  EXPECT_EQ(d.config_error.size(), protocol::kMaxConfigError);
  EXPECT_EQ(d.config_error.substr(0, 9), "refused: ");  // its start kept
  for (const json& bad : {json{{"sha256", "ABC"}}, json{{"sha256", std::string(64, 'G')}},
                          json{{"sha256", sha}, {"why", "x"}}, json("yes")}) {
    const Response r =
        post("/api/device/v1/checkin", {{"installed", installed}, {"config", bad}}, token);
    EXPECT_EQ(r.status, 400) << bad.dump();
  }
  EXPECT_EQ(f.service->device("dev-a")->config_sha256, sha) << "nothing changed";
}

TEST_F(DeviceApiTest, EveryDeviceRequestNeedsItsOwnValidToken) {
  ASSERT_EQ(enroll("dev-a", key_a, "factory-token").status, 200);
  ASSERT_EQ(enroll("dev-b", key_b, "factory-token").status, 200);
  const json installed = {{"firmware", "1.0.0"}};
  EXPECT_EQ(check_in("", installed).status, 401);
  EXPECT_EQ(check_in("forged.1.x", installed).status, 401);
  // A's key cannot log in as B.
  EXPECT_TRUE(login("dev-b", key_a).empty());
  // A's token acts for A only: B's records are untouched by A's check-in.
  const std::string token_a = login("dev-a", key_a);
  ASSERT_EQ(check_in(token_a, {{"firmware", "1.5.0"}}).status, 200);
  EXPECT_EQ(*f.service->device("dev-a")->installed_version("firmware"), "1.5.0");
  EXPECT_EQ(*f.service->device("dev-b")->installed_version("firmware"), "1.0.0");
  // Decommissioned: refused with the token it holds.
  Device d = *f.service->device("dev-a");
  d.decommissioned = true;
  ASSERT_TRUE(f.service->provision({d}).ok());
  const Response refused = check_in(token_a, installed);
  EXPECT_EQ(refused.status, 403);
  EXPECT_EQ(parsed(refused)["error"]["code"], "permission_denied");
}

TEST_F(DeviceApiTest, BadRequestsAreClear4xxAndWriteNothing) {
  EXPECT_EQ(enroll("dev-a", key_a, "wrong-token").status, 401);
  EXPECT_EQ(post("/api/device/v1/enroll", json::parse("[1,2]")).status, 400);
  Request raw;
  raw.method = "POST";
  raw.target = "/api/device/v1/enroll";
  raw.body = "{not json";
  EXPECT_EQ(router(raw).status, 400);
  json unknown_field = {{"device_id", "d"},
                        {"device_type", "t"},
                        {"hardware_revision", "r"},
                        {"public_key", to_base64url(key_a.public_key())},
                        {"admin", true}};
  EXPECT_EQ(post("/api/device/v1/enroll", unknown_field).status, 400);
  json wrong_type = {{"device_id", 7},
                     {"device_type", "t"},
                     {"hardware_revision", "r"},
                     {"public_key", to_base64url(key_a.public_key())}};
  EXPECT_EQ(post("/api/device/v1/enroll", wrong_type).status, 400);
  json bad_key = {{"device_id", "d"},
                  {"device_type", "t"},
                  {"hardware_revision", "r"},
                  {"public_key", "not base64url!"}};
  EXPECT_EQ(post("/api/device/v1/enroll", bad_key).status, 400);
  EXPECT_EQ(f.service->device_count(), 0u);
  // Pending devices cannot log in; unknown ones get no challenge.
  ASSERT_EQ(enroll("dev-p", key_a, "").status, 200);
  EXPECT_TRUE(login("dev-p", key_a).empty());
  EXPECT_EQ(post("/api/device/v1/auth/challenge", {{"device_id", "nobody"}}).status, 404);
}

TEST_F(DeviceApiTest, KeyRotationIsSignedByTheCurrentKeyAndKeepsTheDevice) {
  ASSERT_EQ(enroll("dev-a", key_a, "factory-token").status, 200);
  const std::string token = login("dev-a", key_a);
  const std::string new_pub = key_b.public_key();
  auto rotate = [&](const SigningKey& signer, const std::string& bearer) {
    return post(
        "/api/device/v1/auth/rotate",
        {{"public_key", to_base64url(new_pub)},
         {"signature", to_base64url(signer.sign(DeviceAuth::rotation_message("dev-a", new_pub)))}},
        bearer);
  };
  EXPECT_EQ(rotate(key_a, "").status, 401);     // no token
  EXPECT_EQ(rotate(key_b, token).status, 401);  // signed by the new key only
  EXPECT_FALSE(login("dev-a", key_a).empty());
  const Response ok = rotate(key_a, token);
  ASSERT_EQ(ok.status, 200) << ok.body;
  EXPECT_TRUE(login("dev-a", key_a).empty());
  EXPECT_FALSE(login("dev-a", key_b).empty());
}

TEST_F(DeviceApiTest, InventoryReplacesWhatIsReportedAndKeepsTheRest) {
  ASSERT_EQ(enroll("dev-a", key_a, "factory-token").status, 200);
  ASSERT_EQ(enroll("dev-b", key_b, "factory-token").status, 200);
  const std::string token = login("dev-a", key_a);
  Response r = post("/api/device/v1/inventory",
                    {{"attributes", {{"os", "linux-6.1"}, {"ram_mb", "512"}}}}, token);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(parsed(r)["attributes"], json({{"os", "linux-6.1"}, {"ram_mb", "512"}}));
  EXPECT_EQ(parsed(r)["installed"], json({{"bootloader", "2.0.0"}, {"firmware", "1.0.0"}}));
  r = post("/api/device/v1/inventory", {{"installed", {{"firmware", "1.1.0"}}}}, token);
  ASSERT_EQ(r.status, 200) << r.body;
  const Device a = *f.service->device("dev-a");
  EXPECT_EQ(a.installed, (std::vector<InstalledComponent>{{"firmware", "1.1.0"}}));
  ASSERT_EQ(a.attributes.size(), 2u);  // left out: kept
  EXPECT_EQ(a.attributes[0].key, "os");
  // Only the token's device: B is untouched.
  EXPECT_TRUE(f.service->device("dev-b")->attributes.empty());

  const Device before = *f.service->device("dev-a");
  for (const json& bad :
       {json{{"attributes", {{"bad name!", "x"}}}}, json{{"attributes", {{"os", 5}}}},
        json{{"attributes", {{"os", std::string(257, 'x')}}}},
        json{{"attributes", {{"os", "a\nb"}}}}, json{{"attributes", "os=linux"}},
        json{{"installed", {{"firmware", "not-a-version"}}}}, json{{"serial", "123"}}}) {
    EXPECT_EQ(post("/api/device/v1/inventory", bad, token).status, 400) << bad.dump();
  }
  json many = json::object();
  for (int i = 0; i < 65; ++i) many["k" + std::to_string(i)] = "v";
  EXPECT_EQ(post("/api/device/v1/inventory", {{"attributes", many}}, token).status, 400);
  EXPECT_EQ(*f.service->device("dev-a"), before);
  EXPECT_EQ(post("/api/device/v1/inventory", {{"attributes", json::object()}}, "").status, 401);
}

}  // namespace
}  // namespace drover::http
