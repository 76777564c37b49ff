// `kill -9` of a real `drover serve` while devices send telemetry, twice: each device sends
// its batches one at a time and sends a batch again until it is answered, as the agent's
// queue does. After the restarts every sample sent is stored exactly once — the ones whose
// answer the kill cut off were either durable (the retry is recognised and not stored
// again) or lost with the unanswered request (the retry stores them) — and the operator API
// reads them back in order.
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
#include "protocol/telemetry_batch.h"
#include "security/crypto.h"
#include "transport/http/client.h"

namespace drover::testing {
namespace {

using nlohmann::json;
using security::SigningKey;
using security::to_base64url;

constexpr int kDevices = 4;
constexpr int kSamplesPerBatch = 50;

class Target {
 public:
  void set(uint16_t port) { port_ = port; }
  uint16_t port() const { return port_; }

 private:
  std::atomic<uint16_t> port_{0};
};

// One request at the current server; std::nullopt while it is down.
std::optional<http::ClientResponse> call(const Target& target, const std::string& method,
                                         const std::string& path, const std::string& body,
                                         http::Headers headers) {
  http::ClientOptions o;
  o.connect_timeout = seconds(2);
  o.request_timeout = seconds(5);
  auto client = http::HttpClient::create("http://127.0.0.1:" + std::to_string(target.port()), o);
  if (!client.ok()) return std::nullopt;
  auto r = (*client)->request(method, path, body, headers);
  if (!r.ok()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    return std::nullopt;
  }
  return *r;
}

http::ClientResponse must(const Target& target, const std::string& method, const std::string& path,
                          const std::string& body, http::Headers headers = {}) {
  for (;;) {
    if (auto r = call(target, method, path, body, headers)) return *r;
  }
}

TEST(TelemetryCrash, EverySampleSentIsStoredOnceAcrossKillNine) {
  const std::string data = temp_dir() + "/data";
  auto serve = std::make_unique<ServeProcess>(data, "127.0.0.1:0", "factory");
  ASSERT_TRUE(serve->wait_for("listening on")) << serve->output();
  Target target;
  target.set(serve->port());
  const std::string admin = create_token(data);
  ASSERT_FALSE(admin.empty());
  const http::Headers json_headers = {{"Content-Type", "application/json"}};

  std::vector<std::string> tokens;
  for (int i = 0; i < kDevices; ++i) {
    const std::string id = "probe-" + std::to_string(i);
    SigningKey key = std::move(SigningKey::generate()).value();
    auto e = must(target, "POST", "/api/device/v1/enroll",
                  json{{"device_id", id},
                       {"device_type", "probe"},
                       {"hardware_revision", "rev-a"},
                       {"public_key", to_base64url(key.public_key())},
                       {"enrollment_token", "factory"},
                       {"installed", {{"firmware", "1.0.0"}}}}
                      .dump(),
                  json_headers);
    ASSERT_EQ(e.status, 200) << e.body;
    auto c = must(target, "POST", "/api/device/v1/auth/challenge", json{{"device_id", id}}.dump(),
                  json_headers);
    const std::string challenge = json::parse(c.body)["challenge"];
    auto t = must(
        target, "POST", "/api/device/v1/auth/token",
        json{{"device_id", id},
             {"challenge", challenge},
             {"signature", to_base64url(key.sign(DeviceAuth::challenge_message(id, challenge)))}}
            .dump(),
        json_headers);
    ASSERT_EQ(t.status, 200) << t.body;
    tokens.push_back(json::parse(t.body)["token"]);
  }

  std::atomic<int> answered{0};
  std::atomic<int> retries_recognised{0};
  std::atomic<bool> stop{false};
  const int64_t t0 = std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count() -
                     3'600'000;
  std::vector<int> batches_sent(kDevices, 0);
  std::vector<std::thread> senders;
  for (int i = 0; i < kDevices; ++i) {
    senders.emplace_back([&, i] {
      for (uint64_t seq = 1; !stop; ++seq) {
        protocol::TelemetryBatch b;
        b.stream = 1000 + static_cast<uint64_t>(i);
        b.sequence = seq;
        b.series.push_back({"moisture", {}, {}});
        for (int k = 0; k < kSamplesPerBatch; ++k) {
          const int64_t n = static_cast<int64_t>(seq - 1) * kSamplesPerBatch + k;
          b.series[0].samples.push_back({t0 + n * 10, static_cast<double>(n % 1000) / 10.0});
        }
        const std::string body = protocol::encode_telemetry_batch(b);
        // Sent until answered: the answer may be lost with a killed server.
        for (int attempt = 0;; ++attempt) {
          auto r = call(target, "POST", "/api/device/v1/telemetry", body,
                        {{"Content-Type", "application/cbor"},
                         {"Content-Encoding", "zstd"},
                         {"Authorization", "Bearer " + tokens[static_cast<size_t>(i)]}});
          if (!r) continue;
          ASSERT_EQ(r->status, 200) << r->body;
          json a = json::parse(r->body);
          if (a["retry"] == true) {
            ASSERT_GT(attempt, 0) << "a first send was taken for a retry";
            retries_recognised.fetch_add(1);
          } else {
            ASSERT_EQ(a["accepted"], kSamplesPerBatch) << r->body;
          }
          break;
        }
        answered.fetch_add(1);
        batches_sent[static_cast<size_t>(i)] = static_cast<int>(seq);
      }
    });
  }

  int restarts = 0;
  for (int threshold : {100, 250}) {
    while (answered.load() < threshold) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    ::kill(serve->pid(), SIGKILL);
    serve.reset();
    serve = std::make_unique<ServeProcess>(data, "127.0.0.1:0", "factory");
    ASSERT_TRUE(serve->wait_for("listening on")) << serve->output();
    target.set(serve->port());
    ++restarts;
  }
  while (answered.load() < 400) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  stop = true;
  for (auto& s : senders) s.join();
  EXPECT_EQ(restarts, 2);

  for (int i = 0; i < kDevices; ++i) {
    const std::string id = "probe-" + std::to_string(i);
    auto r = must(target, "GET",
                  "/api/v1/devices/" + id + "/telemetry/moisture?resolution=raw&from=" +
                      std::to_string(t0 - 1) + "&until=" + std::to_string(t0 + 100'000'000),
                  "", {{"Authorization", "Bearer " + admin}});
    ASSERT_EQ(r.status, 200) << r.body;
    const json points = json::parse(r.body)["points"];
    const int want = batches_sent[static_cast<size_t>(i)] * kSamplesPerBatch;
    ASSERT_EQ(static_cast<int>(points.size()), want) << id << ": lost or duplicated samples";
    for (int n = 0; n < want; ++n) {
      ASSERT_EQ(points[static_cast<size_t>(n)]["t"], t0 + n * 10) << id << " sample " << n;
      ASSERT_EQ(points[static_cast<size_t>(n)]["value"], static_cast<double>(n % 1000) / 10.0);
    }
  }
  std::printf("%d batches answered, %d retries recognised as stored\n", answered.load(),
              retries_recognised.load());
}

}  // namespace
}  // namespace drover::testing
