// The `drover` CLI against a real `drover serve`: tokens made beside the running server,
// the verbs' tables and JSON, and roles enforced end to end.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "../common/serve_process.h"

namespace drover::testing {
namespace {

using nlohmann::json;

using Outcome = CommandOutcome;

// Runs the drover binary with `args` (a shell fragment).
Outcome drover(const std::string& args) {
  return run_command(std::string(DROVER_BIN) + " " + args);
}

// The token `drover token create` prints; a failure to make one fails the test.
std::string make_token(const std::string& data, const std::string& name, const std::string& role) {
  const std::string token = create_token(data, name, role);
  EXPECT_FALSE(token.empty()) << "drover token create failed";
  return token;
}

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir = temp_dir();
    data = dir + "/data";
    serve = std::make_unique<ServeProcess>(data, "127.0.0.1:0");
    ASSERT_TRUE(serve->wait_for("listening on")) << serve->output();
    server = "--server http://127.0.0.1:" + std::to_string(serve->port());
  }
  Outcome as(const std::string& token, const std::string& args) {
    return drover(args + " " + server + " --token " + token);
  }
  std::string file(const std::string& name, const std::string& content) {
    const std::string path = dir + "/" + name;
    std::ofstream(path, std::ios::binary) << content;
    return path;
  }

  std::string dir, data, server;
  std::unique_ptr<ServeProcess> serve;
};

TEST_F(CliTest, AnOperatorRunsARolloutFromTheCommandLine) {
  // Made while the server runs: the server reads tokens from the store, so it works at once.
  const std::string admin = make_token(data, "first-admin", "admin");
  ASSERT_EQ(admin.rfind("drover_", 0), 0u) << admin;

  ASSERT_EQ(
      as(admin, "site put " + file("site.json", R"({"name": "bldg-1", "time_zone": "UTC"})")).code,
      0);
  for (const char* id : {"ctl-1", "ctl-2", "ctl-3", "ctl-4"}) {
    const Outcome add = as(admin, std::string("device add ") + id +
                                      " --type ctl --revision rev-b --site bldg-1 --tag north");
    ASSERT_EQ(add.code, 0) << add.out;
  }
  const Outcome table = as(admin, "device ls --tag north");
  ASSERT_EQ(table.code, 0) << table.out;
  EXPECT_NE(table.out.find("ID"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("ctl-4"), std::string::npos) << table.out;
  const Outcome page = as(admin, "device ls --limit 3 --json");
  ASSERT_EQ(page.code, 0) << page.out;
  const json doc = json::parse(page.out);
  EXPECT_EQ(doc["devices"].size(), 3u);
  EXPECT_EQ(doc["matched"], 4);
  const Outcome every = as(admin, "device ls --limit 3 --all --json");
  EXPECT_EQ(json::parse(every.out)["devices"].size(), 4u) << every.out;

  const std::string image = file("fw.bin", std::string(200'000, 'x'));
  const Outcome upload =
      as(admin, "artifact upload " + image + " --name firmware --version 2.0.0 --device-type ctl");
  ASSERT_EQ(upload.code, 0) << upload.out;
  EXPECT_NE(as(admin, "artifact ls").out.find("firmware  2.0.0"), std::string::npos);

  const std::string plan = file("plan.json", R"({"name": "patch",
      "artifact": {"name": "firmware", "version": "2.0.0"},
      "stratify_by": ["hardware_revision"],
      "stages": [{"name": "canary", "count": 1}, {"name": "all", "count": 4}],
      "gate": {"min_sample": 1}})");
  const Outcome dry = as(admin, "rollout create " + plan + " --dry-run --json");
  ASSERT_EQ(dry.code, 0) << dry.out;
  EXPECT_EQ(json::parse(dry.out)["targets"], 4);
  // The dry run created nothing.
  EXPECT_EQ(as(admin, "rollout ls --json").out.find("rollout-"), std::string::npos);
  // Devices that run no firmware yet have nothing to go back to: said before anything starts.
  const Outcome dry_text = as(admin, "rollout create " + plan + " --dry-run");
  ASSERT_EQ(dry_text.code, 0) << dry_text.out;
  EXPECT_NE(dry_text.out.find("4 could NOT be sent back"), std::string::npos) << dry_text.out;
  EXPECT_NE(dry_text.out.find("ran no version before: nothing to go back to"), std::string::npos)
      << dry_text.out;

  const Outcome started = as(admin, "rollout create " + plan + " --start");
  ASSERT_EQ(started.code, 0) << started.out;
  EXPECT_NE(started.out.find("state     running"), std::string::npos) << started.out;
  EXPECT_NE(started.out.find("rev-b"), std::string::npos) << started.out;  // the stratum
  const Outcome status = as(admin, "rollout status rollout-0001 --json");
  ASSERT_EQ(status.code, 0) << status.out;
  const json s = json::parse(status.out);
  EXPECT_EQ(s["progress"]["devices"], 4);
  EXPECT_EQ(s["progress"]["stages"][0]["devices"], 1);
  EXPECT_NE(started.out.find("4 could NOT be sent back"), std::string::npos) << started.out;
  // Which device stands where, and one device's history.
  const Outcome devices = as(admin, "rollout devices rollout-0001");
  ASSERT_EQ(devices.code, 0) << devices.out;
  EXPECT_NE(devices.out.find("ctl-3"), std::string::npos) << devices.out;
  EXPECT_NE(devices.out.find("4 matched"), std::string::npos) << devices.out;
  const Outcome none = as(admin, "rollout devices rollout-0001 --state failed --json");
  ASSERT_EQ(none.code, 0) << none.out;
  EXPECT_EQ(json::parse(none.out)["matched"], 0);
  const Outcome history = as(admin, "rollout history rollout-0001 ctl-2");
  ASSERT_EQ(history.code, 0) << history.out;
  EXPECT_NE(history.out.find("ctl-2 in rollout-0001: pending"), std::string::npos) << history.out;
  EXPECT_NE(history.out.find("not offered yet"), std::string::npos) << history.out;
  EXPECT_EQ(as(admin, "rollout history rollout-0001 nobody").code, 1);
  const Outcome paused = as(admin, "rollout pause rollout-0001");
  EXPECT_NE(paused.out.find("state     paused"), std::string::npos) << paused.out;
  const Outcome again = as(admin, "rollout start rollout-0001");  // it has started already
  EXPECT_EQ(again.code, 1);
  EXPECT_NE(again.out.find("HTTP 409"), std::string::npos) << again.out;

  // In use: refused, and still there.
  const Outcome rm = as(admin, "artifact rm firmware 2.0.0");
  EXPECT_EQ(rm.code, 1);
  EXPECT_NE(rm.out.find("rollout-0001"), std::string::npos) << rm.out;
}

TEST_F(CliTest, AViewerReadsButCannotChangeAnything) {
  const std::string admin = make_token(data, "admin", "admin");
  const std::string viewer = make_token(data, "dashboard", "viewer");
  ASSERT_EQ(as(admin, "device add ctl-1 --type ctl --revision rev-a").code, 0);

  EXPECT_EQ(as(viewer, "device ls").code, 0);
  const Outcome add = as(viewer, "device add ctl-2 --type ctl --revision rev-a");
  EXPECT_EQ(add.code, 1);
  EXPECT_NE(add.out.find("permission_denied"), std::string::npos) << add.out;
  const Outcome decommission = as(viewer, "device decommission ctl-1");
  EXPECT_EQ(decommission.code, 1);
  const Outcome tokens = as(viewer, "token ls");
  EXPECT_EQ(tokens.code, 1);
  const json after = json::parse(as(admin, "device ls --json").out);
  ASSERT_EQ(after["devices"].size(), 1u);
  EXPECT_FALSE(after["devices"][0].contains("decommissioned"));

  // Revoked: refused at once.
  const std::string viewer_id = viewer.substr(7, 16);
  ASSERT_EQ(as(admin, "token revoke " + viewer_id).code, 0);
  const Outcome revoked = as(viewer, "device ls");
  EXPECT_EQ(revoked.code, 1);
  EXPECT_NE(revoked.out.find("HTTP 401"), std::string::npos) << revoked.out;
}

TEST_F(CliTest, ErrorsAreClearAndExitNonZero) {
  const Outcome no_token = drover("device ls " + server);
  EXPECT_EQ(no_token.code, 1);
  EXPECT_NE(no_token.out.find("--token"), std::string::npos) << no_token.out;
  const Outcome no_server = drover("device ls --server http://127.0.0.1:1 --token x");
  EXPECT_EQ(no_server.code, 1);
  EXPECT_NE(no_server.out.find("is the server at http://127.0.0.1:1 running?"), std::string::npos)
      << no_server.out;
  const Outcome bad_url = drover("device ls --server ftp://x --token x");
  EXPECT_EQ(bad_url.code, 1);
  EXPECT_NE(bad_url.out.find("scheme"), std::string::npos) << bad_url.out;
  const Outcome bad_role = drover("token create --data " + data + " --name x --role root");
  EXPECT_EQ(bad_role.code, 1);
  EXPECT_NE(bad_role.out.find("unknown role"), std::string::npos) << bad_role.out;
}

}  // namespace
}  // namespace drover::testing
