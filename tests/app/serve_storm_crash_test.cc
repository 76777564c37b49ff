// kill -9 of a real `drover serve` in the middle of a rollout storm: 16 connections drive 160
// devices through their updates at once, so the group commit has many writers in every
// commit, and the server is killed while they are in flight. After a restart every answer a
// device got is there: each deployment is at least as far as the last report answered 200
// (and a device answered with an offer has its deployment offered) — nothing acknowledged is
// lost, whichever commit the kill cut.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "../common/serve_process.h"
#include "fleet/device_auth.h"
#include "security/crypto.h"
#include "transport/http/client.h"

namespace drover::testing {
namespace {

using nlohmann::json;
using security::SigningKey;
using security::to_base64url;

constexpr int kDevices = 160;
constexpr int kLanes = 16;
// The forward states a device's answers acknowledge, in order.
const std::vector<std::string> kProgress = {"offered", "downloading", "installing", "rebooting",
                                            "succeeded"};

int rank(const std::string& state) {
  auto it = std::find(kProgress.begin(), kProgress.end(), state);
  return it == kProgress.end() ? -1 : static_cast<int>(it - kProgress.begin());
}

std::unique_ptr<http::HttpClient> client_for(uint16_t port) {
  http::ClientOptions o;
  o.connect_timeout = seconds(2);
  o.request_timeout = seconds(5);
  return std::move(http::HttpClient::create("http://127.0.0.1:" + std::to_string(port), o).value());
}

TEST(ServeStormCrash, EveryAcknowledgedReportSurvivesAKillNineMidStorm) {
  const std::string data = temp_dir() + "/data";
  auto serve = std::make_unique<ServeProcess>(data, "127.0.0.1:0", "factory");
  ASSERT_TRUE(serve->wait_for("listening on")) << serve->output();
  const uint16_t port = serve->port();
  const std::string admin = create_token(data);
  ASSERT_FALSE(admin.empty());
  auto setup = client_for(port);
  auto post = [&](http::HttpClient& c, const std::string& path, const json& body,
                  const std::string& token = {}) {
    http::Headers h = {{"Content-Type", "application/json"}};
    if (!token.empty()) h.emplace_back("Authorization", "Bearer " + token);
    return c.request("POST", path, body.is_null() ? "" : body.dump(), h);
  };

  // Enrolled and logged in before the storm.
  std::vector<std::string> ids, tokens;
  for (int i = 0; i < kDevices; ++i) {
    const std::string id = "storm-" + std::to_string(i);
    auto key = std::move(SigningKey::generate()).value();
    auto e = post(*setup, "/api/device/v1/enroll",
                  {{"device_id", id},
                   {"device_type", "ctl"},
                   {"hardware_revision", "rev-a"},
                   {"public_key", to_base64url(key.public_key())},
                   {"enrollment_token", "factory"},
                   {"installed", {{"firmware", "1.0.0"}}}});
    ASSERT_TRUE(e.ok() && e->status == 200);
    auto c = post(*setup, "/api/device/v1/auth/challenge", {{"device_id", id}});
    const std::string challenge = json::parse(c->body)["challenge"];
    auto t =
        post(*setup, "/api/device/v1/auth/token",
             {{"device_id", id},
              {"challenge", challenge},
              {"signature", to_base64url(key.sign(DeviceAuth::challenge_message(id, challenge)))}});
    ASSERT_TRUE(t.ok() && t->status == 200);
    ids.push_back(id);
    tokens.push_back(json::parse(t->body)["token"]);
  }
  auto up = setup->request("PUT", "/api/v1/artifacts/firmware/2.0.0?device_type=ctl",
                           std::string(4096, 'f'), {{"Authorization", "Bearer " + admin}});
  ASSERT_TRUE(up.ok() && up->status == 201);
  auto created = post(*setup, "/api/v1/rollouts",
                      {{"name", "storm"},
                       {"artifact", {{"name", "firmware"}, {"version", "2.0.0"}}},
                       {"stages", {{{"name", "all"}, {"percent", 100}}}}},
                      admin);
  ASSERT_TRUE(created.ok() && created->status == 201);
  const std::string rollout = json::parse(created->body)["id"];
  auto started = post(*setup, "/api/v1/rollouts/" + rollout + "/start", nullptr, admin);
  ASSERT_TRUE(started.ok() && started->status == 200);

  // The storm: each lane drives its devices through their updates, one request at a time,
  // and remembers the furthest state an answer acknowledged.
  std::vector<int> acknowledged(kDevices, -1);  // rank in kProgress; each lane writes its own
  std::atomic<int> answers{0};
  std::vector<std::thread> lanes;
  for (int lane = 0; lane < kLanes; ++lane) {
    lanes.emplace_back([&, lane] {
      auto c = client_for(port);
      for (int i = lane; i < kDevices; i += kLanes) {
        auto offer =
            post(*c, "/api/device/v1/checkin",
                 {{"installed", {{"firmware", "1.0.0"}}}, {"update_state", "idle"}}, tokens[i]);
        if (!offer.ok()) return;  // the server is gone
        if (offer->status != 200 || json::parse(offer->body)["offer"].is_null()) continue;
        acknowledged[i] = 0;
        ++answers;
        for (int step = 1; step < static_cast<int>(kProgress.size()); ++step) {
          auto r = post(*c, "/api/device/v1/deployments/" + rollout + "/status",
                        {{"version", "2.0.0"}, {"status", kProgress[step]}}, tokens[i]);
          if (!r.ok()) return;
          if (r->status != 200) break;
          acknowledged[i] = step;
          ++answers;
        }
      }
    });
  }
  // Killed once the storm is well under way, in the middle of everyone's requests.
  while (answers.load() < kDevices * 3) std::this_thread::yield();
  ::kill(serve->pid(), SIGKILL);
  serve.reset();
  for (auto& t : lanes) t.join();
  const int before_kill = answers.load();
  ASSERT_LT(before_kill, kDevices * static_cast<int>(kProgress.size()))
      << "the storm was over before the kill: nothing was cut";

  auto again = std::make_unique<ServeProcess>(data, "127.0.0.1:0", "factory");
  ASSERT_TRUE(again->wait_for("listening on")) << again->output();
  auto check = client_for(again->port());
  int verified = 0;
  for (int i = 0; i < kDevices; ++i) {
    if (acknowledged[i] < 0) continue;
    auto got = check->request("GET", "/api/v1/rollouts/" + rollout + "/devices/" + ids[i], {},
                              {{"Authorization", "Bearer " + admin}});
    ASSERT_TRUE(got.ok());
    ASSERT_EQ(got->status, 200) << ids[i] << " acknowledged " << kProgress[acknowledged[i]]
                                << " but has no deployment: " << got->body;
    const std::string state = json::parse(got->body)["state"];
    EXPECT_GE(rank(state), acknowledged[i]) << ids[i] << ": " << kProgress[acknowledged[i]]
                                            << " was acknowledged, the store says " << state;
    ++verified;
  }
  EXPECT_GT(verified, kDevices / 2);
  std::printf("%d answers before the kill; %d devices' acknowledged states verified\n", before_kill,
              verified);
}

}  // namespace
}  // namespace drover::testing
