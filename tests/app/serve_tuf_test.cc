// Signed update metadata from the real `drover serve`: `drover keys gen` makes the keys, an
// uploaded artifact becomes a signed target that the agent's TUF client (`drover-agent tuf`)
// trusts, its content is served to the devices it is built for, and an artifact whose target
// is not signed (the targets key taken offline) is shown unsigned and cannot be rolled out.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "../common/device_requests.h"
#include "../common/serve_process.h"

namespace drover::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

CommandOutcome drover(const std::string& args) {
  return run_command(std::string(DROVER_BIN) + " " + args);
}
CommandOutcome agent(const std::string& args) {
  return run_command(std::string(DROVER_AGENT_BIN) + " " + args);
}

class ServeTufTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir = temp_dir();
    data = dir + "/data";
    const CommandOutcome gen =
        drover("keys gen --data " + data + " --root-key-dir " + dir + "/offline");
    ASSERT_EQ(gen.code, 0) << gen.out;
    EXPECT_NE(gen.out.find("move them off this machine"), std::string::npos) << gen.out;
    start();
    token = create_token(data);
    ASSERT_FALSE(token.empty());
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
  // Uploads `content` as firmware@`version` for device type ctl; the artifact's JSON.
  json upload(const std::string& version, const std::string& content) {
    const std::string file = dir + "/fw-" + version;
    std::ofstream(file, std::ios::binary) << content;
    const CommandOutcome r = run_command(
        std::string(DROVER_BIN) + " artifact upload " + file + " --name firmware --version " +
            version + " --device-type ctl --json" + " --server " + url + " --token " + token,
        false);
    EXPECT_EQ(r.code, 0) << r.out;
    return r.code == 0 ? json::parse(r.out) : json();
  }
  CommandOutcome as_operator(const std::string& args) {
    return drover(args + " --server " + url + " --token " + token);
  }

  std::string dir, data, url, token;
  std::unique_ptr<ServeProcess> serve;
};

TEST_F(ServeTufTest, AnUploadedArtifactIsASignedTargetTheAgentTrusts) {
  EXPECT_TRUE(serve->wait_for("signed update metadata published")) << serve->output();
  const std::string image(70'000, 'i');
  const json a = upload("2.0.0", image);
  EXPECT_EQ(a.value("signed", false), true) << a.dump();

  // The agent's client, trusting root version 1 as a device would from its factory.
  const std::string meta =
      " --metadata-dir " + dir + "/device --metadata-url " + url + "/tuf/metadata";
  const CommandOutcome init =
      agent("tuf --metadata-dir " + dir + "/device init " + data + "/tuf/metadata/1.root.json");
  ASSERT_EQ(init.code, 0) << init.out;
  const CommandOutcome refreshed = agent("tuf" + meta + " refresh");
  ASSERT_EQ(refreshed.code, 0) << refreshed.out;
  const json targets =
      json::parse(std::ifstream(dir + "/device/targets.json"))["signed"]["targets"];
  ASSERT_TRUE(targets.contains("firmware/2.0.0")) << targets.dump();
  EXPECT_EQ(targets["firmware/2.0.0"]["hashes"]["sha256"], a["sha256"]);
  EXPECT_EQ(targets["firmware/2.0.0"]["custom"]["device_types"], json::array({"ctl"}));

  // The content, at its consistent-snapshot name, to an enrolled device it is built for.
  auto key = std::move(security::SigningKey::generate()).value();
  ASSERT_EQ(status_of(enroll(serve->port(), "ctl-1", key, "t0ken")), 200);
  const std::string device_token = string_field(log_in(serve->port(), "ctl-1", key), "token");
  const std::string path = "/tuf/targets/firmware/" + a["sha256"].get<std::string>() + ".2.0.0";
  const std::string got = device_get(serve->port(), path, device_token);
  EXPECT_EQ(status_of(got), 200);
  EXPECT_EQ(body_of(got), image);
  EXPECT_EQ(status_of(device_get(serve->port(), path)), 401);  // no token, no firmware
  std::string wrong = path;
  wrong[22] = wrong[22] == '0' ? '1' : '0';  // another hash
  EXPECT_EQ(status_of(device_get(serve->port(), wrong, device_token)), 404);
  // The online keys are files beside the metadata: no name reaches them.
  for (const auto& entry : fs::directory_iterator(data + "/tuf/keys")) {
    const std::string name = entry.path().filename().string();
    for (const std::string& probe :
         {"..%2Fkeys%2F" + name, "1.root.json%2F..%2F..%2Fkeys%2F" + name, "%2E%2E/keys/" + name,
          "../keys/" + name}) {
      EXPECT_EQ(status_of(device_get(serve->port(), "/tuf/metadata/" + probe)), 404) << probe;
    }
  }
  // A target built for another device type is not served to this one.
  std::ofstream(dir + "/inverter-fw", std::ios::binary) << "inverter image";
  const CommandOutcome other = as_operator("artifact upload " + dir +
                                           "/inverter-fw --name inverter-fw --version 1.0.0 "
                                           "--device-type inverter --json");
  ASSERT_EQ(other.code, 0) << other.out;
  const std::string other_sha = json::parse(other.out)["sha256"];
  EXPECT_EQ(status_of(device_get(serve->port(), "/tuf/targets/inverter-fw/" + other_sha + ".1.0.0",
                                 device_token)),
            403);

  // Removed, it is no longer a target.
  ASSERT_EQ(as_operator("artifact rm firmware 2.0.0").code, 0);
  ASSERT_EQ(agent("tuf" + meta + " refresh").code, 0);
  EXPECT_FALSE(
      json::parse(std::ifstream(dir + "/device/targets.json"))["signed"]["targets"].contains(
          "firmware/2.0.0"));
  stop();
}

TEST_F(ServeTufTest, AnArtifactWithoutASignedTargetIsNotRolledOut) {
  ASSERT_EQ(upload("2.0.0", "signed image").value("signed", false), true);
  // The targets key goes offline: what is uploaded from now on is not signed.
  stop();
  const CommandOutcome listed = drover("keys list --json --data " + data);
  ASSERT_EQ(listed.code, 0) << listed.out;
  const json keys = json::parse(listed.out);
  for (const json& role : keys["roles"]) {
    if (role["role"] != "targets") continue;
    for (const json& id : role["key_ids"]) {
      const std::string key_file = data + "/tuf/keys/" + id.get<std::string>() + ".pem";
      ASSERT_TRUE(fs::exists(key_file));
      fs::rename(key_file, dir + "/offline/targets.pem");
    }
  }
  start();
  const json unsigned_one = upload("3.0.0", "image nobody signed");
  EXPECT_EQ(unsigned_one.value("signed", true), false) << unsigned_one.dump();
  const std::string table = as_operator("artifact show firmware 2.0.0 --json").out;
  EXPECT_NE(table.find("\"signed\": true"), std::string::npos) << table;

  auto plan = [&](const std::string& version) {
    const std::string file = dir + "/plan-" + version + ".json";
    std::ofstream(file) << R"({"name": "patch", "artifact": {"name": "firmware", "version": ")"
                        << version << R"("}, "stages": [{"name": "all", "count": 1}]})";
    return file;
  };
  const CommandOutcome refused = as_operator("rollout create " + plan("3.0.0"));
  EXPECT_NE(refused.code, 0);
  EXPECT_NE(refused.out.find("not in the signed update metadata"), std::string::npos)
      << refused.out;
  const CommandOutcome created = as_operator("rollout create " + plan("2.0.0"));
  EXPECT_EQ(created.code, 0) << created.out;

  // The operator signs the targets with the offline key, beside the running server; the
  // server takes them at its next publish (here: the next upload) and 3.0.0 is signed.
  const CommandOutcome wrong =
      drover("keys sign-targets --data " + data + " --targets-key " + data + "/tuf/keys/" +
             fs::directory_iterator(data + "/tuf/keys")->path().filename().string());
  EXPECT_EQ(wrong.code, 1) << wrong.out;  // a timestamp or snapshot key is no targets key
  const CommandOutcome signed_offline =
      drover("keys sign-targets --data " + data + " --targets-key " + dir + "/offline/targets.pem");
  ASSERT_EQ(signed_offline.code, 0) << signed_offline.out;
  EXPECT_NE(signed_offline.out.find("firmware/3.0.0"), std::string::npos) << signed_offline.out;
  upload("3.0.1", "the next image");  // publishes: takes the targets signed offline
  const std::string now_signed = as_operator("artifact show firmware 3.0.0 --json").out;
  EXPECT_NE(now_signed.find("\"signed\": true"), std::string::npos) << now_signed;
  EXPECT_EQ(as_operator("rollout create " + plan("3.0.0")).code, 0);
  stop();
}

TEST_F(ServeTufTest, ATeamSignsItsOwnArtifactsOfflineThroughADelegatedRole) {
  // Beside the running server, the operator delegates the thermostat firmware to a team
  // whose key is written away from the server.
  const std::string team = dir + "/thermostat-team";
  const CommandOutcome delegated =
      drover("keys delegate --data " + data + " --role thermostats --path 'thermostat-*/*' " +
             "--terminating --key-dir " + team);
  ASSERT_EQ(delegated.code, 0) << delegated.out;
  EXPECT_NE(delegated.out.find(team + "/thermostats-"), std::string::npos) << delegated.out;
  EXPECT_NE(delegated.out.find("are NOT signed"), std::string::npos) << delegated.out;
  EXPECT_EQ(drover("keys delegate --data " + data + " --role thermostats --path 'x/*'").code, 1);
  EXPECT_EQ(drover("keys delegate --data " + data + " --role ../x --path 'x/*'").code, 1);
  EXPECT_EQ(drover("keys delegate --data " + data + " --role t --path 'x/*' --key-dir " + data +
                   "/inside")
                .code,
            1);  // keys kept with the server are online keys

  // Uploaded, the team's artifact is not signed (the team has not signed it); the others are.
  std::ofstream(dir + "/thermo", std::ios::binary) << "thermostat image";
  const CommandOutcome up = as_operator("artifact upload " + dir +
                                        "/thermo --name thermostat-fw --version 1.0.0 "
                                        "--device-type ctl --json");
  ASSERT_EQ(up.code, 0) << up.out;
  EXPECT_EQ(json::parse(up.out).value("signed", true), false) << up.out;
  const std::string thermo_sha = json::parse(up.out)["sha256"];
  EXPECT_EQ(upload("2.0.0", "image").value("signed", false), true);
  const CommandOutcome listed = drover("keys list --data " + data);
  EXPECT_NE(listed.out.find("delegated thermostats: thermostat-*/* (terminating), keys offline; "
                            "delegated by the targets served now"),
            std::string::npos)
      << listed.out;

  // The team signs with its key; the server takes it at its next publish.
  std::string key;
  for (const auto& entry : fs::directory_iterator(team)) key = entry.path().string();
  const CommandOutcome wrong =
      drover("keys sign-targets --data " + data + " --role thermostats --targets-key " + dir +
             "/offline/" + fs::directory_iterator(dir + "/offline")->path().filename().string());
  EXPECT_EQ(wrong.code, 1) << wrong.out;
  const CommandOutcome signed_by_team =
      drover("keys sign-targets --data " + data + " --role thermostats --targets-key " + key);
  ASSERT_EQ(signed_by_team.code, 0) << signed_by_team.out;
  EXPECT_NE(signed_by_team.out.find("thermostats version 1 signed for 1 artifacts"),
            std::string::npos)
      << signed_by_team.out;
  EXPECT_EQ(signed_by_team.out.find("firmware/2.0.0"), std::string::npos) << signed_by_team.out;
  // Each target with its hash, for the team to check against what it uploaded.
  EXPECT_NE(signed_by_team.out.find("thermostat-fw/1.0.0 sha256 " + thermo_sha), std::string::npos)
      << signed_by_team.out;
  upload("2.0.1", "the next image");  // publishes
  const std::string shown = as_operator("artifact show thermostat-fw 1.0.0 --json").out;
  EXPECT_NE(shown.find("\"signed\": true"), std::string::npos) << shown;
  const CommandOutcome roles = drover("keys list --json --data " + data);
  ASSERT_EQ(roles.code, 0) << roles.out;
  bool found = false;
  const json parsed = json::parse(roles.out);
  for (const json& r : parsed["roles"]) {
    if (r["role"] != "thermostats") continue;
    found = true;
    EXPECT_EQ(r["version"], 1);
    EXPECT_EQ(r["valid"], true);
    EXPECT_EQ(r["delegation"], "served");
  }
  EXPECT_TRUE(found) << roles.out;

  // Removed, the artifact goes back to the top-level targets the server signs.
  const CommandOutcome removed = drover("keys undelegate --data " + data + " --role thermostats");
  ASSERT_EQ(removed.code, 0) << removed.out;
  EXPECT_NE(drover("keys list --data " + data).out.find("delegated thermostats"),
            std::string::npos);
  upload("2.0.2", "another image");
  EXPECT_EQ(drover("keys list --data " + data).out.find("delegated thermostats"),
            std::string::npos);
  EXPECT_NE(as_operator("artifact show thermostat-fw 1.0.0 --json").out.find("\"signed\": true"),
            std::string::npos);
  stop();
}

TEST_F(ServeTufTest, ARootThatExpiresSoonIsWarnedAbout) {
  const std::string soon = dir + "/soon";
  ASSERT_EQ(drover("keys gen --data " + soon + " --root-key-dir " + dir +
                   "/offline-soon --root-lifetime 10d")
                .code,
            0);
  const CommandOutcome listed = drover("keys list --data " + soon);
  EXPECT_NE(listed.out.find("EXPIRES SOON: root version 1"), std::string::npos) << listed.out;
  EXPECT_EQ(drover("keys list --data " + data).out.find("EXPIRES SOON"), std::string::npos);
  ServeProcess warned(soon, "127.0.0.1:0");
  EXPECT_TRUE(warned.wait_for("the root of the signed update metadata expires soon"))
      << warned.output();
  EXPECT_NE(warned.output().find("\"days_left\":9"), std::string::npos) << warned.output();
}

}  // namespace
}  // namespace drover::testing
