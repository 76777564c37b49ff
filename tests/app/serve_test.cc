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
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "../common/device_requests.h"
#include "../common/raw_http_client.h"
#include "../common/serve_process.h"
#include "fleet/device_auth.h"
#include "security/crypto.h"
#include "store/store.h"
#include "transport/http/alert_webhook.h"
#include "transport/http/server.h"

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

// GET /metrics from loopback, as Prometheus scrapes it: the requests so far by route and
// status, the group commit's counters, and an exposition promtool accepts.
TEST(Serve, MetricsAreAValidPrometheusExposition) {
  const std::string data = temp_dir() + "/data";
  ServeProcess serve(data, "127.0.0.1:0");
  ASSERT_TRUE(serve.wait_for("listening on")) << serve.output();
  RawClient c(serve.port());
  ASSERT_TRUE(c.send("GET /api/v1/health HTTP/1.1\r\nHost: t\r\n\r\n"));
  EXPECT_EQ(status_of(c.response()), 200);
  ASSERT_TRUE(c.send("GET /api/v1/devices/some-device HTTP/1.1\r\nHost: t\r\n\r\n"));
  EXPECT_EQ(status_of(c.response()), 401);
  ASSERT_TRUE(c.send("GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n"));
  const std::string scraped = c.response();
  ASSERT_EQ(status_of(scraped), 200) << scraped;
  EXPECT_NE(scraped.find("Content-Type: text/plain; version=0.0.4"), std::string::npos);
  const std::string body = body_of(scraped);
  EXPECT_NE(
      body.find(
          R"(drover_http_requests_total{method="GET",route="/api/v1/health",status="200"} 1)"),
      std::string::npos)
      << body;
  // The route's pattern, never the id in the path.
  EXPECT_NE(body.find(R"(route="/api/v1/devices/{id}",status="401"} 1)"), std::string::npos)
      << body;
  EXPECT_EQ(body.find("some-device"), std::string::npos);
  EXPECT_NE(body.find("drover_store_commits_total "), std::string::npos);
  EXPECT_NE(body.find("drover_devices{state=\"idle\"} 0"), std::string::npos);

  const std::string file = temp_dir() + "/metrics.txt";
  std::ofstream(file) << body;
  const int rc =
      std::system(("promtool check metrics < " + file + " > " + file + ".out 2>&1").c_str());
  std::ifstream said(file + ".out");
  const std::string complaints((std::istreambuf_iterator<char>(said)),
                               std::istreambuf_iterator<char>());
  EXPECT_EQ(rc, 0) << complaints;
  EXPECT_EQ(complaints, "") << "promtool's lint found problems";
}

TEST(Serve, BadListenAddressesAndTakenPortsAreClearErrors) {
  const std::string data = temp_dir();
  {
    ServeProcess serve(data, "no-port-here");
    EXPECT_EQ(serve.exit_code(), 1) << serve.output();
    EXPECT_TRUE(serve.wait_for("--listen must be HOST:PORT")) << serve.output();
  }
  ServeProcess first(data + "/a", "127.0.0.1:0");
  ASSERT_TRUE(first.wait_for("listening on"));
  ServeProcess second(data + "/b", "127.0.0.1:" + std::to_string(first.port()));
  EXPECT_EQ(second.exit_code(), 1) << second.output();
  EXPECT_TRUE(second.wait_for("cannot bind")) << second.output();
  std::filesystem::remove_all(data);
}

// A device enrolls, logs in and checks in over real HTTP; the server is killed with SIGKILL
// and restarted on the same data: the device's identity survived and it logs in again.
TEST(Serve, ADeviceEnrollsLogsInAndChecksInAcrossAKill) {
  const std::string data = temp_dir();
  auto key = std::move(security::SigningKey::generate()).value();
  auto request = [](uint16_t port, const std::string& path, const std::string& body,
                    const std::string& token = {}) {
    return device_request(port, path, body, token);
  };
  auto field = string_field;
  auto login = [&](uint16_t port) { return field(log_in(port, "dev-1", key), "token"); };
  {
    ServeProcess serve(data, "127.0.0.1:0", "t0ken");
    ASSERT_TRUE(serve.wait_for("listening on")) << serve.output();
    const std::string enrolled = enroll(serve.port(), "dev-1", key, "t0ken");
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

// Devices that poll less often than every 15 minutes would log in at every check-in; the
// operator can give their tokens a longer life (and the server refuses one too short to renew).
TEST(Serve, DeviceTokenLifetimeIsTheOperatorsChoice) {
  const std::string data = temp_dir();
  auto key = std::move(security::SigningKey::generate()).value();
  ServeProcess serve(data, "127.0.0.1:0", "t0ken", false, {"--device-token-lifetime", "2h"});
  ASSERT_TRUE(serve.wait_for("listening on")) << serve.output();
  ASSERT_EQ(status_of(enroll(serve.port(), "dev-1", key, "t0ken")), 200);
  const std::string answer = log_in(serve.port(), "dev-1", key);
  ASSERT_EQ(status_of(answer), 200) << answer;
  const std::string b = body_of(answer);
  const size_t at = b.find("\"expires_at\":");
  ASSERT_NE(at, std::string::npos) << b;
  const int64_t expires_ms = std::stoll(b.substr(at + 13));
  const int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
  EXPECT_NEAR(static_cast<double>(expires_ms - now_ms), 2.0 * 3600 * 1000, 60'000.0);

  ServeProcess too_short(data + "-2", "127.0.0.1:0", "t0ken", false,
                         {"--device-token-lifetime", "30s"});
  EXPECT_TRUE(too_short.wait_for("--device-token-lifetime must be")) << too_short.output();
  EXPECT_EQ(too_short.exit_code(), 1) << too_short.output();
  std::filesystem::remove_all(data);
  std::filesystem::remove_all(data + "-2");
}

}  // namespace
}  // namespace drover::testing

namespace drover::testing {
namespace {

// The bound on devices waiting for an operator is the operator's to set; a nonsensical limit
// is refused before anything starts. (The rate limits exempt loopback, the only address a
// test can rely on: their flags are checked here for parsing and range only; the limiter
// itself is tested in tests/transport/device_limits_test.cc.)
TEST(Serve, ThePendingDeviceCapAndTheRateLimitsAreFlags) {
  const std::string data = temp_dir();
  auto key = std::move(security::SigningKey::generate()).value();
  ServeProcess serve(data, "127.0.0.1:0", "t0ken", false,
                     {"--max-pending-devices", "2", "--enroll-rate", "1", "--enroll-burst", "1",
                      "--login-rate", "1", "--login-burst", "2"});
  ASSERT_TRUE(serve.wait_for("listening on")) << serve.output();
  EXPECT_EQ(string_field(enroll(serve.port(), "p-1", key, ""), "enrollment"), "pending");
  EXPECT_EQ(string_field(enroll(serve.port(), "p-2", key, ""), "enrollment"), "pending");
  const std::string third = enroll(serve.port(), "p-3", key, "");
  EXPECT_EQ(status_of(third), 507) << third;
  EXPECT_NE(third.find("2 devices wait for an operator"), std::string::npos) << third;
  // A device with a token is not pending, so not bounded by it.
  EXPECT_EQ(status_of(enroll(serve.port(), "t-1", key, "t0ken")), 200);
  ::kill(serve.pid(), SIGTERM);
  EXPECT_EQ(serve.exit_code(), 0) << serve.output();

  for (const std::vector<std::string>& bad :
       {std::vector<std::string>{"--max-pending-devices", "0"},
        std::vector<std::string>{"--enroll-rate", "-1"},
        std::vector<std::string>{"--login-burst", "lots"}}) {
    ServeProcess refused(data + "-bad", "127.0.0.1:0", "t0ken", false, bad);
    EXPECT_NE(refused.exit_code(), 0) << bad[0];
    EXPECT_TRUE(refused.wait_for(bad[0])) << refused.output();
    EXPECT_FALSE(std::filesystem::exists(data + "-bad")) << "nothing was started";
  }
  // The alert webhook's flags, each refusal saying what is wrong.
  const std::string hook = "http://127.0.0.1:9/hook";
  for (const auto& [flags, why] : std::vector<std::pair<std::vector<std::string>, std::string>>{
           {{"--alert-webhook", hook}, "needs --alert-webhook-secret-file"},
           {{"--alert-webhook", "mailto:ops@example.com", "--alert-webhook-secret-file", "k"},
            "--alert-webhook: "},
           {{"--alert-webhook", hook, "--alert-webhook-secret-file", "/nonexistent/key"},
            "--alert-webhook-secret-file: "},
           {{"--alert-webhook", hook, "--alert-webhook-secret-file", "/dev/null"},
            "the key must be at least 16 bytes"},
           {{"--alert-webhook", hook, "--no-remediation"}, "no alerts with --no-remediation"}}) {
    ServeProcess refused(data + "-bad", "127.0.0.1:0", "t0ken", false, flags);
    EXPECT_NE(refused.exit_code(), 0) << why;
    EXPECT_TRUE(refused.wait_for(why)) << refused.output();
    EXPECT_FALSE(std::filesystem::exists(data + "-bad")) << "nothing was started";
  }
  std::filesystem::remove_all(data);
}

// The remediation rules from a file are the ones the server runs: it says so at start, the API
// gives them back as the file has them, and `drover alert rules` lists them; a bad file, or
// one given with --no-remediation or --remediate-service, stops it before anything is made.
TEST(Serve, RemediationRulesFromAFileAreTheOnesItRunsAndShows) {
  const std::string dir = temp_dir();
  const std::string data = dir + "/data";
  const std::string rules =
      std::string(DROVER_SOURCE_DIR) + "/docs/examples/remediation-rules.json";
  {
    ServeProcess serve(data, "127.0.0.1:0", "t0ken", false, {"--remediation-rules", rules});
    ASSERT_TRUE(serve.wait_for("listening on")) << serve.output();
    EXPECT_NE(serve.output().find(R"("msg":"remediation rules")"), std::string::npos);
    EXPECT_NE(serve.output().find(
                  R"("rules":["no-data","disk-full","reboot-loop","update-stuck","offline"])"),
              std::string::npos)
        << serve.output();
    const std::string token = create_token(data, "ops", "viewer");
    const std::string url = "http://127.0.0.1:" + std::to_string(serve.port());
    auto client = http::HttpClient::create(url);
    ASSERT_TRUE(client.ok());
    auto got = (*client)->request("GET", "/api/v1/remediation/rules", "",
                                  {{"Authorization", "Bearer " + token}});
    ASSERT_TRUE(got.ok());
    ASSERT_EQ(got->status, 200) << got->body;
    auto served = nlohmann::json::parse(got->body);
    std::ifstream in(rules);
    auto written = nlohmann::json::parse(in, nullptr, true, true);
    EXPECT_EQ(served["rules"][0]["ladder"], written["rules"][0]["ladder"]) << got->body;
    EXPECT_EQ(served["rules"][0]["after"], "30m");
    EXPECT_EQ(served["rules"][1]["condition"], "disk");
    EXPECT_EQ(served["rules"][3]["condition"], "update_stuck");
    EXPECT_EQ(served["rules"][4]["name"], "offline");
    EXPECT_EQ(served["limits"]["max_actions_per_day"], 3);
    const CommandOutcome listed = run_command(std::string(DROVER_BIN) + " --server " + url +
                                              " --token " + token + " alert rules");
    ASSERT_EQ(listed.code, 0) << listed.out;
    EXPECT_NE(listed.out.find("run clean-logs, reboot, then a person"), std::string::npos)
        << listed.out;
    EXPECT_NE(listed.out.find("at most 3 automatic actions a device a day"), std::string::npos)
        << listed.out;
    ::kill(serve.pid(), SIGTERM);
    EXPECT_EQ(serve.exit_code(), 0) << serve.output();
  }
  const std::string bad = dir + "/bad-rules.json";
  std::ofstream(bad) << R"({"rules": [{"name": "r", "condition": "no_data", "after": "1h",
                           "ladder": [{"action": "reboot", "argumnet": "now"}]}]})";
  for (const auto& [flags, why] : std::vector<std::pair<std::vector<std::string>, std::string>>{
           {{"--remediation-rules", bad}, "rules[0].ladder[0].argumnet: unknown field"},
           {{"--remediation-rules", dir + "/none.json"}, "--remediation-rules: "},
           {{"--remediation-rules", rules, "--no-remediation"}, "no rules run with"},
           {{"--remediation-rules", rules, "--remediate-service", "x"}, "names its own"}}) {
    ServeProcess refused(dir + "/bad", "127.0.0.1:0", "t0ken", false, flags);
    EXPECT_NE(refused.exit_code(), 0) << why;
    EXPECT_TRUE(refused.wait_for(why)) << refused.output();
    EXPECT_FALSE(std::filesystem::exists(dir + "/bad")) << "nothing was started";
  }
  std::filesystem::remove_all(dir);
}

// The alert webhook of the real binary: an alert change the last run could not deliver (the
// store says so) reaches the receiver signed with the key from the file once serve starts, is
// recorded as delivered, and is not sent again by the next run.
TEST(Serve, TheAlertWebhookDeliversWhatWasLeftUndeliveredAndRecordsIt) {
  const std::string dir = temp_dir();
  const std::string data = dir + "/data";
  std::filesystem::create_directories(data);
  {
    auto store = open_sqlite_store(data + "/drover.db");
    ASSERT_TRUE(store.ok()) << store.error().to_string();
    Alert a;
    a.id = "alert-1";
    a.device_id = "dev-1";
    a.rule = "offline";
    a.condition = "offline";
    a.escalated = true;
    a.escalation = "this rule calls a person at once";
    // Changed an hour ago: within the day a change is tried for.
    a.opened_at = a.updated_at = Timestamp(seconds(::time(nullptr) - 3600));
    a.version = 2;
    a.notified_version = 1;
    WriteBatch b;
    b.alerts = {a};
    ASSERT_TRUE((*store)->apply(b).ok());
  }
  const std::string key_file = dir + "/webhook-key";
  std::ofstream(key_file) << "a-key-of-more-than-16-bytes\n";
  std::mutex mu;
  std::vector<std::pair<http::Request, int>> got;
  auto receiver = http::HttpServer::start({}, [&](const http::Request& r) {
    std::lock_guard lock(mu);
    got.emplace_back(r, 0);
    return http::Response::json(204, "");
  });
  ASSERT_TRUE(receiver.ok());
  const std::string url =
      "http://127.0.0.1:" + std::to_string((*receiver)->port()) + "/hooks/drover";
  auto received = [&] {
    std::lock_guard lock(mu);
    return got.size();
  };
  const std::vector<std::string> flags = {"--alert-webhook", url, "--alert-webhook-secret-file",
                                          key_file};
  {
    ServeProcess serve(data, "127.0.0.1:0", "t0ken", false, flags);
    ASSERT_TRUE(serve.wait_for("listening on")) << serve.output();
    for (int i = 0; i < 500 && received() == 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ::kill(serve.pid(), SIGTERM);
    EXPECT_EQ(serve.exit_code(), 0) << serve.output();
    ASSERT_EQ(received(), 1u) << serve.output();
  }
  {
    std::lock_guard lock(mu);
    const http::Request& r = got[0].first;
    EXPECT_EQ(r.method, "POST");
    EXPECT_EQ(r.target, "/hooks/drover");
    EXPECT_EQ(r.header("X-Drover-Delivery"), "alert-1.2");
    const int64_t at = std::stoll(std::string(r.header("X-Drover-Timestamp")));
    EXPECT_NEAR(static_cast<double>(at), static_cast<double>(::time(nullptr)), 60);
    EXPECT_EQ(r.header("X-Drover-Signature"),
              http::AlertWebhook::signature("a-key-of-more-than-16-bytes", at, r.body));
    EXPECT_NE(r.body.find(R"("escalation":"this rule calls a person at once")"), std::string::npos)
        << r.body;
  }
  {
    auto store = open_sqlite_store(data + "/drover.db");
    ASSERT_TRUE(store.ok());
    auto a = (*store)->get_alert("alert-1");
    ASSERT_TRUE(a.ok() && *a);
    EXPECT_EQ((*a)->notified_version, 2u);
    EXPECT_EQ((*a)->version, 2u);
  }
  // The next run has nothing left to send; a person's acknowledgement is sent at once — the
  // only delivery of that run.
  ServeProcess again(data, "127.0.0.1:0", "t0ken", false, flags);
  ASSERT_TRUE(again.wait_for("listening on")) << again.output();
  const std::string token = create_token(data, "ops", "operator");
  auto client = http::HttpClient::create("http://127.0.0.1:" + std::to_string(again.port()));
  ASSERT_TRUE(client.ok());
  auto ack = (*client)->request("POST", "/api/v1/alerts/alert-1/acknowledge", "",
                                {{"Authorization", "Bearer " + token}});
  ASSERT_TRUE(ack.ok());
  EXPECT_EQ(ack->status, 200) << ack->body;
  EXPECT_TRUE(eventually([&] { return received() >= 2; }));
  ::kill(again.pid(), SIGTERM);
  EXPECT_EQ(again.exit_code(), 0) << again.output();
  {
    std::lock_guard lock(mu);
    ASSERT_EQ(got.size(), 2u);
    EXPECT_EQ(got[1].first.header("X-Drover-Delivery"), "alert-1.3");
    EXPECT_NE(got[1].first.body.find(R"("state":"acknowledged")"), std::string::npos)
        << got[1].first.body;
  }
  (*receiver)->stop();
  std::filesystem::remove_all(dir);
}

// Enrollment tokens from a file (kept out of the process list), and a data directory only
// its owner can read.
TEST(Serve, EnrollmentTokensFromAFileAndAnOwnerOnlyDataDirectory) {
  const std::string dir = temp_dir();
  const std::string data = dir + "/data";
  const std::string tokens = dir + "/enrollment-tokens";
  std::ofstream(tokens) << "# factory line 1\n  line-one-token  \n\nline-two-token # spare\n";
  ServeProcess serve(data, "127.0.0.1:0", "from-the-command-line", false,
                     {"--enrollment-token-file", tokens});
  ASSERT_TRUE(serve.wait_for("listening on")) << serve.output();
  auto key = std::move(security::SigningKey::generate()).value();
  const std::string first = enroll(serve.port(), "dev-1", key, "line-one-token");
  EXPECT_EQ(status_of(first), 200) << first;
  EXPECT_EQ(string_field(first, "enrollment"), "accepted");
  EXPECT_EQ(string_field(enroll(serve.port(), "dev-2", key, "line-two-token"), "enrollment"),
            "accepted");
  EXPECT_EQ(status_of(enroll(serve.port(), "dev-3", key, "# factory line 1")), 401);

  namespace fs = std::filesystem;
  const auto others = fs::perms::group_all | fs::perms::others_all;
  EXPECT_EQ(fs::status(data).permissions() & others, fs::perms::none);
  for (const char* file : {"/drover.db", "/drover.db-wal", "/token-secret"}) {
    ASSERT_TRUE(fs::exists(data + file)) << file;
    EXPECT_EQ(fs::status(data + file).permissions() & others, fs::perms::none) << file;
  }
  ::kill(serve.pid(), SIGTERM);
  EXPECT_EQ(serve.exit_code(), 0) << serve.output();

  std::ofstream(tokens) << "# nothing but comments\n";
  ServeProcess empty(data, "127.0.0.1:0", "x", false, {"--enrollment-token-file", tokens});
  EXPECT_EQ(empty.exit_code(), 1) << empty.output();
  EXPECT_TRUE(empty.wait_for("holds no token")) << empty.output();
  fs::remove_all(dir);
}

// Artifact uploads are judged on their head: no token, no length or no room is answered
// before a byte of the body is read. An accepted one is spooled to disk, moved into place and
// served back byte for byte; what a crash left in the artifact directory is swept at start.
TEST(Serve, ArtifactUploadsAreJudgedOnTheHeadAndSpooledToDisk) {
  namespace fs = std::filesystem;
  const std::string dir = temp_dir();
  const std::string data = dir + "/data";
  fs::create_directories(data + "/artifacts/incoming");
  std::ofstream(data + "/artifacts/" + std::string(64, 'a')) << "left by a crash";
  std::ofstream(data + "/artifacts/incoming/r7-1.part") << "half an upload";
  FILE* created = ::popen((std::string(DROVER_BIN) + " token create --data " + data +
                           " --name uploader --role operator --init 2>/dev/null")
                              .c_str(),
                          "r");
  ASSERT_NE(created, nullptr);
  char line[512] = {};
  ASSERT_NE(std::fgets(line, sizeof line, created), nullptr);
  ::pclose(created);
  std::string token(line);
  token.erase(token.find_last_not_of("\r\n") + 1);

  ServeProcess serve(data, "127.0.0.1:0", "none-given", /*debug=*/true);
  ASSERT_TRUE(serve.wait_for("listening on")) << serve.output();
  EXPECT_TRUE(serve.wait_for(R"("bytes":29,"files":2)")) << serve.output();
  EXPECT_FALSE(fs::exists(data + "/artifacts/" + std::string(64, 'a')));
  const std::string target =
      "PUT /api/v1/artifacts/fw/1.0.0?device_type=ctl HTTP/1.1\r\nHost: t\r\n";
  const std::string auth = "Authorization: Bearer " + token + "\r\n";
  {
    RawClient c(serve.port());
    ASSERT_TRUE(c.send(target + "Content-Length: 1073741824\r\n\r\n"));
    const std::string r = c.response();
    EXPECT_EQ(status_of(r), 401) << r;
  }
  {
    RawClient c(serve.port());
    ASSERT_TRUE(c.send(target + auth + "Transfer-Encoding: chunked\r\n\r\n"));
    EXPECT_EQ(status_of(c.response()), 411);
  }
  std::string image(5'000'000, '\0');
  for (size_t i = 0; i < image.size(); ++i) image[i] = static_cast<char>(i * 131 + (i >> 9));
  RawClient c(serve.port());
  ASSERT_TRUE(c.send(target + auth + "Content-Length: " + std::to_string(image.size()) +
                     "\r\n\r\n" + image));
  const std::string r = c.response(std::chrono::milliseconds(10'000));
  ASSERT_EQ(status_of(r), 201) << r;
  const std::string sha = security::to_hex(security::sha256(image));
  EXPECT_NE(body_of(r).find(sha), std::string::npos) << r;
  std::ifstream stored(data + "/artifacts/" + sha, std::ios::binary);
  const std::string on_disk((std::istreambuf_iterator<char>(stored)),
                            std::istreambuf_iterator<char>());
  EXPECT_TRUE(on_disk == image);
  EXPECT_TRUE(fs::is_empty(data + "/artifacts/incoming"));
  ::kill(serve.pid(), SIGTERM);
  EXPECT_EQ(serve.exit_code(), 0) << serve.output();
  fs::remove_all(dir);
}

}  // namespace
}  // namespace drover::testing
