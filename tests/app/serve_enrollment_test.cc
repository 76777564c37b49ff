// Device identity on the real `drover serve` with real `drover-agent`s: a scoped, limited
// enrollment token made with `drover enrollment-token create` admits its device and refuses
// the one past its limit; a device with a manufacturer's certificate (`--factory-ca`) enrolls
// with no shared secret; a rejection is undone by an admin only; and each decision is in the
// audit log with what vouched for the device.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <thread>

#include "../common/device_requests.h"
#include "../common/factory_pki.h"
#include "../common/serve_process.h"

namespace drover::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

class ServeEnrollmentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(pki.ok());
    dir = temp_dir();
    data = dir + "/data";
    token = create_token(data, "t", "admin", /*init=*/true);
    ASSERT_FALSE(token.empty());
    serve = std::make_unique<ServeProcess>(
        data, "127.0.0.1:0", "none-given", false,
        std::vector<std::string>{"--factory-ca", pki.pem("maker-ca")});
    ASSERT_TRUE(serve->wait_for("listening on")) << serve->output();
    url = "http://127.0.0.1:" + std::to_string(serve->port());
  }
  void TearDown() override {
    for (pid_t pid : agents) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
    fs::remove_all(dir);
  }
  CommandOutcome cli(const std::string& args, const std::string& as = {}) {
    return run_command(std::string(DROVER_BIN) + " " + args + " --server " + url + " --token " +
                       (as.empty() ? token : as));
  }
  // The device's record as the operator API shows it; null when there is none.
  json device(const std::string& id) {
    const CommandOutcome shown = cli("device show " + id + " --json");
    if (shown.code == 0) return json::parse(shown.out, nullptr, false);
    // Only the server's "no such device" means none, not a CLI or server failure.
    EXPECT_NE(shown.out.find("HTTP 404"), std::string::npos) << shown.out;
    return json();
  }
  // Starts a real agent for `id` with extra configuration; its log is dir/<id>.log.
  void start_agent(const std::string& id, const std::string& type, const json& extra) {
    json config = {
        {"server", url},
        {"data_dir", dir + "/" + id},
        {"device", {{"id", id}, {"type", type}, {"hardware_revision", "rev-a"}}},
        {"installed", {{"firmware", "1.0.0"}}},
        {"poll", {{"default", "1h"}, {"backoff_initial", "200ms"}, {"backoff_max", "500ms"}}},
        {"module", {{"type", "file"}, {"target", dir + "/" + id + ".bin"}}}};
    config.update(extra);
    const std::string path = dir + "/" + id + ".json";
    std::ofstream(path) << config.dump();
    const std::string log = dir + "/" + id + ".log";
    const pid_t pid = ::fork();
    if (pid == 0) {
      const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      ::dup2(fd, STDOUT_FILENO);
      ::dup2(fd, STDERR_FILENO);
      ::execl(DROVER_AGENT_BIN, "drover-agent", "--config", path.c_str(), nullptr);
      ::_exit(127);
    }
    agents.push_back(pid);
  }
  std::string agent_log(const std::string& id) { return read_text(dir + "/" + id + ".log"); }
  // The device's enrollment state ("" for no such device).
  std::string enrollment(const std::string& id) {
    const json d = device(id);
    return d.is_object() ? d.value("enrollment", "accepted") : "";
  }

  FactoryPki pki;
  std::string dir, data, url, token;
  std::unique_ptr<ServeProcess> serve;
  std::vector<pid_t> agents;
};

TEST_F(ServeEnrollmentTest, AScopedTokenAdmitsItsDevicesUpToItsLimit) {
  const CommandOutcome made =
      cli("enrollment-token create --name line-3 --device-type sensor --max-uses 1 --lifetime 1h "
          "--json");
  ASSERT_EQ(made.code, 0) << made.out;
  const json created = json::parse(made.out);
  const std::string text = created["token"].get<std::string>();
  const std::string id = created["id"].get<std::string>();
  EXPECT_EQ(created["uses"], 0);
  // Another device type is outside its scope: refused, and no use is spent.
  security::SigningKey key = std::move(security::SigningKey::generate()).value();
  const std::string outside = enroll(serve->port(), "ctl-1", key, text);
  EXPECT_NE(outside.find("403"), std::string::npos) << outside;
  EXPECT_NE(outside.find("does not admit device type 'ctl'"), std::string::npos) << outside;

  start_agent("sensor-1", "sensor", {{"enrollment_token", text}});
  ASSERT_TRUE(eventually([&] { return enrollment("sensor-1") == "accepted"; }))
      << agent_log("sensor-1");
  EXPECT_EQ(device("sensor-1")["enrolled_by"], "token:" + id);

  // The token's one use is spent: the next device is refused, and says why.
  start_agent("sensor-2", "sensor", {{"enrollment_token", text}});
  ASSERT_TRUE(eventually([&] {
    return agent_log("sensor-2").find("used up") != std::string::npos;
  })) << agent_log("sensor-2");
  EXPECT_TRUE(device("sensor-2").is_null());

  const CommandOutcome listed = cli("enrollment-token ls --json");
  ASSERT_EQ(listed.code, 0) << listed.out;
  const json tokens = json::parse(listed.out)["enrollment_tokens"];
  ASSERT_EQ(tokens.size(), 1u);
  EXPECT_EQ(tokens[0]["uses"], 1);
  EXPECT_EQ(tokens[0]["max_uses"], 1);
  EXPECT_EQ(tokens[0]["device_types"], json::array({"sensor"}));
  EXPECT_EQ(listed.out.find(text), std::string::npos) << "the secret is not kept";
  const CommandOutcome table = cli("enrollment-token ls");
  EXPECT_NE(table.out.find("1/1"), std::string::npos) << table.out;

  ASSERT_EQ(cli("enrollment-token revoke " + id).code, 0);
  const json revoked = json::parse(cli("enrollment-token ls --json").out)["enrollment_tokens"];
  EXPECT_FALSE(revoked[0]["revoked_at"].is_null());

  // Its token used up and revoked, the device it enrolled still comes back after a restart of
  // its agent (which enrolls again at start, with its own key): it checks in again.
  ::kill(agents.front(), SIGKILL);
  ::waitpid(agents.front(), nullptr, 0);
  agents.erase(agents.begin());
  const json before = device("sensor-1")["last_seen"];
  ASSERT_TRUE(before.is_number()) << device("sensor-1").dump();
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));  // last_seen is to the second
  start_agent("sensor-1", "sensor", {{"enrollment_token", text}});
  EXPECT_TRUE(eventually([&] {
    const json now = device("sensor-1")["last_seen"];
    return now.is_number() && now.get<int64_t>() > before.get<int64_t>();
  })) << agent_log("sensor-1");

  // The audit log names what vouched for the device.
  const json entries = json::parse(cli("audit ls --limit 1000 --json").out)["entries"];
  bool recorded = false;
  for (const json& e : entries) {
    recorded = recorded || (e["action"] == "device.enrolled" && e["subject"] == "sensor-1" &&
                            e["detail"]["by"] == "token:" + id);
  }
  EXPECT_TRUE(recorded) << entries.dump(1);
}

TEST_F(ServeEnrollmentTest, ADeviceWithAFactoryCertificateEnrollsWithoutASecret) {
  ASSERT_TRUE(pki.device("pump-7", "/CN=pump-7/OU=type=pump/OU=revision=rev-a"));
  std::ofstream(dir + "/pump-7-chain.pem") << pki.chain("pump-7");
  start_agent("pump-7", "pump",
              {{"factory_identity",
                {{"certificate", dir + "/pump-7-chain.pem"}, {"key", pki.key("pump-7")}}}});
  ASSERT_TRUE(eventually([&] { return enrollment("pump-7") == "accepted"; }))
      << agent_log("pump-7") << serve->output();
  const std::string by = device("pump-7")["enrolled_by"].get<std::string>();
  EXPECT_TRUE(by.starts_with("factory:")) << by;
  // The key bound is the agent's own (not the certificate's): it logs in with it.
  auto agent_key = security::SigningKey::from_pem(read_text(dir + "/pump-7/device.key"));
  ASSERT_TRUE(agent_key.ok());
  EXPECT_NE(log_in(serve->port(), "pump-7", *agent_key).find("200 OK"), std::string::npos);

  // A certificate for another id does not enroll this one.
  start_agent("pump-8", "pump",
              {{"factory_identity",
                {{"certificate", dir + "/pump-7-chain.pem"}, {"key", pki.key("pump-7")}}}});
  ASSERT_TRUE(eventually([&] {
    return agent_log("pump-8").find("not what the enrollment claims") != std::string::npos;
  })) << agent_log("pump-8");
  EXPECT_TRUE(device("pump-8").is_null());
}

TEST_F(ServeEnrollmentTest, OnlyAnAdminUndoesARejection) {
  security::SigningKey key = std::move(security::SigningKey::generate()).value();
  ASSERT_NE(enroll(serve->port(), "ctl-1", key, "").find("pending"), std::string::npos);
  ASSERT_EQ(cli("device reject ctl-1").code, 0);
  EXPECT_NE(log_in(serve->port(), "ctl-1", key).find("403"), std::string::npos);

  const CommandOutcome op_token = run_command(
      std::string(DROVER_BIN) + " token create --data " + data + " --name ops --role operator",
      false);
  ASSERT_EQ(op_token.code, 0);
  std::string operator_token = op_token.out;
  operator_token.erase(operator_token.find_last_not_of('\n') + 1);
  const CommandOutcome refused = cli("device unreject ctl-1", operator_token);
  EXPECT_NE(refused.code, 0);
  EXPECT_NE(refused.out.find("403"), std::string::npos) << refused.out;
  EXPECT_EQ(enrollment("ctl-1"), "rejected");

  const CommandOutcome undone = cli("device unreject ctl-1");
  EXPECT_EQ(undone.code, 0) << undone.out;
  EXPECT_EQ(enrollment("ctl-1"), "pending");
  ASSERT_EQ(cli("device accept ctl-1").code, 0);
  EXPECT_NE(log_in(serve->port(), "ctl-1", key).find("200 OK"), std::string::npos);
}

}  // namespace
}  // namespace drover::testing
