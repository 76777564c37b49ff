// `kill -9` of a real `drover serve` in the middle of a rollout, twice, while devices are
// checking in and reporting: after each restart the rollout carries on, and at the end every
// device installed the update exactly once, every acknowledged report is there, and the
// rollout has exactly one deployment per target.
#include <gtest/gtest.h>

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

constexpr int kDevices = 40;

struct SimDevice {
  std::string id;
  SigningKey key;
  std::string token;
  std::string installed = "1.0.0";
  int installs = 0;  // forward offers of 2.0.0 carried out
};

// The server's address, moved by the killer thread on every restart.
class Target {
 public:
  void set(uint16_t port) { port_ = port; }
  uint16_t port() const { return port_; }

 private:
  std::atomic<uint16_t> port_{0};
};

class Driver {
 public:
  explicit Driver(Target& target) : target_(target) {}

  // One request; std::nullopt while the server is down (the caller tries again).
  std::optional<http::ClientResponse> call(const std::string& method, const std::string& path,
                                           const json& body, const std::string& token) {
    if (!client_ || port_ != target_.port()) {
      port_ = target_.port();
      http::ClientOptions o;
      o.connect_timeout = seconds(2);
      o.request_timeout = seconds(2);
      client_ = std::move(
          http::HttpClient::create("http://127.0.0.1:" + std::to_string(port_), o).value());
    }
    http::Headers headers = {{"Content-Type", "application/json"}};
    if (!token.empty()) headers.emplace_back("Authorization", "Bearer " + token);
    auto r = client_->request(method, path, body.is_null() ? "" : body.dump(), headers);
    if (!r.ok()) {
      client_.reset();
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      return std::nullopt;
    }
    acknowledged_.fetch_add(1);
    return *r;
  }

  // Calls until the server answers (it is being restarted meanwhile).
  http::ClientResponse must(const std::string& method, const std::string& path, const json& body,
                            const std::string& token = {}) {
    for (;;) {
      if (auto r = call(method, path, body, token)) return *r;
    }
  }

  int acknowledged() const { return acknowledged_.load(); }

 private:
  Target& target_;
  uint16_t port_ = 0;
  std::unique_ptr<http::HttpClient> client_;
  std::atomic<int> acknowledged_{0};
};

TEST(ServeCrash, ARolloutSurvivesKillNineWithNothingLostOrDuplicated) {
  const std::string data = temp_dir() + "/data";
  const std::vector<std::string> extra = {"--tick-interval", "200ms"};
  auto serve = std::make_unique<ServeProcess>(data, "127.0.0.1:0", "factory", false, extra);
  ASSERT_TRUE(serve->wait_for("listening on")) << serve->output();
  Target target;
  target.set(serve->port());
  Driver d(target);
  const std::string admin = create_token(data);
  ASSERT_FALSE(admin.empty());

  std::vector<SimDevice> devices;
  for (int i = 0; i < kDevices; ++i) {
    SimDevice dev{"ctl-" + std::to_string(100 + i), std::move(SigningKey::generate()).value(), "",
                  "1.0.0", 0};
    const auto e = d.must("POST", "/api/device/v1/enroll",
                          {{"device_id", dev.id},
                           {"device_type", "ctl"},
                           {"hardware_revision", i % 2 == 0 ? "rev-a" : "rev-b"},
                           {"public_key", to_base64url(dev.key.public_key())},
                           {"enrollment_token", "factory"},
                           {"installed", {{"firmware", "1.0.0"}}}});
    ASSERT_EQ(e.status, 200) << e.body;
    devices.push_back(std::move(dev));
  }
  auto upload = [&] {
    for (;;) {
      auto client = http::HttpClient::create("http://127.0.0.1:" + std::to_string(target.port()));
      auto r = (*client)->request("PUT", "/api/v1/artifacts/firmware/2.0.0?device_type=ctl",
                                  std::string(4096, 'f'), {{"Authorization", "Bearer " + admin}});
      if (r.ok()) return r->status;
    }
  };
  ASSERT_EQ(upload(), 201);
  const json plan = {
      {"name", "patch"},
      {"artifact", {{"name", "firmware"}, {"version", "2.0.0"}}},
      {"stratify_by", {"hardware_revision"}},
      {"stages", {{{"name", "canary"}, {"percent", 25}}, {{"name", "all"}, {"percent", 100}}}},
      {"gate", {{"min_sample", 3}}}};
  const auto created = d.must("POST", "/api/v1/rollouts", plan, admin);
  ASSERT_EQ(created.status, 201) << created.body;
  const std::string rollout = json::parse(created.body)["id"];
  ASSERT_EQ(d.must("POST", "/api/v1/rollouts/" + rollout + "/start", nullptr, admin).status, 200);

  // Two kill -9s at points chosen by how far the devices have got, from another thread, so
  // they land in the middle of requests as well as between them.
  std::atomic<int> restarts{0};
  std::thread killer([&] {
    for (int threshold : {60, 150}) {
      while (d.acknowledged() < threshold)
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      ::kill(serve->pid(), SIGKILL);
      serve.reset();  // reaps it
      serve = std::make_unique<ServeProcess>(data, "127.0.0.1:0", "factory", false, extra);
      if (!serve->wait_for("listening on")) return;
      target.set(serve->port());
      restarts.fetch_add(1);
    }
  });

  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  auto all_updated = [&] {
    for (const auto& dev : devices) {
      if (dev.installed != "2.0.0") return false;
    }
    return true;
  };
  while (!all_updated() && std::chrono::steady_clock::now() < deadline) {
    for (SimDevice& dev : devices) {
      if (dev.token.empty()) {
        const auto c = d.must("POST", "/api/device/v1/auth/challenge", {{"device_id", dev.id}});
        ASSERT_EQ(c.status, 200) << c.body;
        const std::string challenge = json::parse(c.body)["challenge"];
        const auto t = d.must(
            "POST", "/api/device/v1/auth/token",
            {{"device_id", dev.id},
             {"challenge", challenge},
             {"signature",
              to_base64url(dev.key.sign(DeviceAuth::challenge_message(dev.id, challenge)))}});
        // A challenge lost with a killed server is refused by the new one: ask again.
        if (t.status != 200) continue;
        dev.token = json::parse(t.body)["token"];
      }
      const auto c = d.must(
          "POST", "/api/device/v1/checkin",
          {{"installed", {{"firmware", dev.installed}}}, {"update_state", "idle"}}, dev.token);
      ASSERT_EQ(c.status, 200) << c.body;
      const json offer = json::parse(c.body)["offer"];
      if (offer.is_null()) continue;
      ASSERT_EQ(offer["version"], "2.0.0");
      ASSERT_NE(dev.installed, "2.0.0") << dev.id << " was offered an update it had installed";
      for (const char* status : {"downloading", "installing", "rebooting", "succeeded"}) {
        const auto r = d.must("POST", "/api/device/v1/deployments/" + rollout + "/status",
                              {{"version", "2.0.0"}, {"status", status}}, dev.token);
        ASSERT_EQ(r.status, 200) << dev.id << " " << status << ": " << r.body;
      }
      dev.installed = "2.0.0";
      ++dev.installs;
    }
  }
  killer.join();
  ASSERT_TRUE(all_updated()) << "not every device was updated within the deadline";
  for (const auto& dev : devices) EXPECT_EQ(dev.installs, 1) << dev.id;

  // The server's view: one deployment per target, every one succeeded, the rollout complete.
  json status;
  for (int i = 0; i < 100; ++i) {
    status = json::parse(d.must("GET", "/api/v1/rollouts/" + rollout, nullptr, admin).body);
    if (status["state"] == "completed") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(status["state"], "completed") << status.dump();
  EXPECT_EQ(status["targets"], kDevices);
  EXPECT_EQ(status["progress"]["devices"], kDevices);
  EXPECT_EQ(status["progress"]["states"], json({{"succeeded", kDevices}})) << status.dump();
  EXPECT_EQ(restarts.load(), 2);  // both kills happened during the rollout
}

}  // namespace
}  // namespace drover::testing
