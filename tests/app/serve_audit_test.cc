// The audit log of the real `drover serve`: operator requests, enrollment decisions and the
// engine's rollout changes are recorded in order (each request before what it caused), the
// CLI lists, proves and verifies them, and an entry edited in the database behind the
// server's back is caught by `drover audit verify --data` and stops the server's next start.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "../common/device_requests.h"
#include "../common/serve_process.h"

namespace drover::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

CommandOutcome drover(const std::string& args) {
  return run_command(std::string(DROVER_BIN) + " " + args);
}

class ServeAuditTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir = temp_dir();
    data = dir + "/data";
    token = create_token(data, "t", "admin", /*init=*/true);  // recorded too: the first entry
    ASSERT_FALSE(token.empty());
    start();
  }
  void TearDown() override { fs::remove_all(dir); }
  void start() {
    serve = std::make_unique<ServeProcess>(data, "127.0.0.1:0", "t0ken");
    ASSERT_TRUE(serve->wait_for("listening on")) << serve->output();
    url = "http://127.0.0.1:" + std::to_string(serve->port());
  }
  void stop() {
    ::kill(serve->pid(), SIGTERM);
    EXPECT_EQ(serve->exit_code(), 0) << serve->output();
  }
  CommandOutcome as_admin(const std::string& args) {
    return drover(args + " --server " + url + " --token " + token);
  }

  std::string dir, data, url, token;
  std::unique_ptr<ServeProcess> serve;
};

// A request body is recorded as sent when it is small JSON; one with a key twice (which the
// API refuses, and which compacted would read as something else) by its size and SHA-256.
TEST_F(ServeAuditTest, ABodyWithAKeyTwiceIsRecordedByItsDigest) {
  const std::string twice = R"({"name": "patch", "name": "other"})";
  const std::string refused = device_request(serve->port(), "/api/v1/rollouts", twice, token);
  EXPECT_NE(refused.find(" 400 "), std::string::npos) << refused;
  const std::string plain = R"({"name": "x"})";
  device_request(serve->port(), "/api/v1/rollouts", plain, token);
  const CommandOutcome ls = as_admin("audit ls --limit 1000 --json");
  ASSERT_EQ(ls.code, 0) << ls.out;
  std::vector<json> posts;
  const json listed = json::parse(ls.out);
  for (const json& e : listed["entries"]) {
    if (e["action"] == "POST /api/v1/rollouts") posts.push_back(e["detail"]);
  }
  ASSERT_EQ(posts.size(), 2u) << ls.out;
  EXPECT_FALSE(posts[0].contains("body")) << posts[0].dump();
  EXPECT_EQ(posts[0].value("body_sha256", ""), security::to_hex(security::sha256(twice)));
  EXPECT_EQ(posts[0].value("body_bytes", ""), std::to_string(twice.size()));
  EXPECT_EQ(posts[1].value("body", ""), R"({"name":"x"})") << posts[1].dump();
}

TEST_F(ServeAuditTest, WhatWasDoneIsRecordedInOrderAndVerifies) {
  const std::string file = dir + "/fw";
  std::ofstream(file, std::ios::binary) << std::string(5000, 'f');
  ASSERT_EQ(
      as_admin("artifact upload " + file + " --name firmware --version 2.0.0 --device-type ctl")
          .code,
      0);
  auto key = security::SigningKey::generate();
  const std::string enrolled = enroll(serve->port(), "dev-1", *key, "t0ken");
  ASSERT_NE(enrolled.find("accepted"), std::string::npos) << enrolled;
  const std::string plan = dir + "/plan.json";
  std::ofstream(plan) << R"({"name": "patch", "artifact": {"name": "firmware", "version": "2.0.0"},
                             "stages": [{"name": "all", "count": 1}]})";
  const CommandOutcome created = as_admin("rollout create " + plan + " --start --json");
  ASSERT_EQ(created.code, 0) << created.out;
  const std::string id = json::parse(created.out)["id"].get<std::string>();
  ASSERT_EQ(as_admin("rollout pause " + id).code, 0);
  // A viewer's refused attempt is recorded as well: who tried what, and that it was refused.
  const CommandOutcome viewer_token = run_command(
      std::string(DROVER_BIN) + " token create --data " + data + " --name val --role viewer",
      false);
  ASSERT_EQ(viewer_token.code, 0) << viewer_token.out;
  std::string viewer = viewer_token.out;
  viewer.erase(viewer.find_last_not_of("\n") + 1);
  EXPECT_NE(drover("rollout abort " + id + " --server " + url + " --token " + viewer).code, 0);

  const CommandOutcome ls = as_admin("audit ls --limit 1000 --json");
  ASSERT_EQ(ls.code, 0) << ls.out;
  const json entries = json::parse(ls.out)["entries"];
  std::vector<std::string> seen;
  for (const json& e : entries) {
    std::string what =
        e["actor"].get<std::string>().substr(0, 5) + " " + e["action"].get<std::string>();
    if (e["action"] == "rollout.state") what += " " + e["detail"]["to"].get<std::string>();
    if (e["action"] == "result") what += " " + e["detail"]["status"].get<std::string>();
    seen.push_back(what);
  }
  const std::vector<std::string> want = {"cli:u token.create",
                                         "token PUT /api/v1/artifacts/{name}/{version}",
                                         "token result 201",
                                         "serve device.enrolled",
                                         "token POST /api/v1/rollouts",
                                         "serve rollout.state created",
                                         "token result 201",
                                         "token POST /api/v1/rollouts/{id}/start",
                                         "serve rollout.state running",
                                         "token result 200",
                                         "token POST /api/v1/rollouts/{id}/pause",
                                         "serve rollout.state paused",
                                         "token result 200",
                                         "cli:u token.create",
                                         "token POST /api/v1/rollouts/{id}/abort",
                                         "token result 403"};
  EXPECT_EQ(seen, want) << ls.out;

  // One entry with its inclusion proof, checked by the CLI against the signed checkpoint.
  const CommandOutcome show = as_admin("audit show 10");
  EXPECT_EQ(show.code, 0) << show.out;
  EXPECT_NE(show.out.find("included in the signed log of 16 entries"), std::string::npos)
      << show.out;
  EXPECT_NE(show.out.find("/pause"), std::string::npos) << show.out;

  const CommandOutcome saved = as_admin("audit checkpoint");
  ASSERT_EQ(saved.code, 0);
  const std::string checkpoint = dir + "/checkpoint.json";
  std::ofstream(checkpoint) << saved.out;
  const CommandOutcome verified = as_admin("audit verify --checkpoint " + checkpoint);
  EXPECT_EQ(verified.code, 0) << verified.out;
  EXPECT_NE(verified.out.find("verified: 16 entries"), std::string::npos) << verified.out;
  stop();

  EXPECT_EQ(drover("audit verify --data " + data + " --checkpoint " + checkpoint).code, 0);

  // The pause made to look like the viewer's, in the database, with the server stopped.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((data + "/drover.db").c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db,
                         "UPDATE audit_log SET entry = replace(entry, '\"role\":\"admin\"', "
                         "'\"role\":\"viewer\"') "
                         "WHERE idx = 10",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  EXPECT_EQ(sqlite3_changes(db), 1);
  sqlite3_close(db);
  const CommandOutcome caught = drover("audit verify --data " + data);
  EXPECT_EQ(caught.code, 1) << caught.out;
  EXPECT_NE(caught.out.find("entry 10"), std::string::npos) << caught.out;
  // And the server will not sign on top of it.
  ServeProcess refused(data, "127.0.0.1:0", "t0ken");
  EXPECT_EQ(refused.exit_code(), 1) << refused.output();
  EXPECT_NE(refused.output().find("audit log"), std::string::npos) << refused.output();
}

}  // namespace
}  // namespace drover::testing
