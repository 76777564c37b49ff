// Remote commands end to end: a real drover serve, a real drover-agent, commands queued
// through the operator API. The server is killed with SIGKILL right after it said a command
// was queued, and again after the device reported; the agent is killed by its own reboot.
// Every command runs exactly once, a refused one is not run, and the server's history says
// how each ended.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "../common/serve_process.h"
#include "transport/http/client.h"

namespace drover::testing {
namespace {

using nlohmann::json;

// Runs drover-agent --once to its end; its exit status (128 + signal when killed).
int run_agent_once(const std::string& config, const std::string& log) {
  int status = 0;
  ::waitpid(spawn_agent(config, log), &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

class Server {
 public:
  explicit Server(std::string data, std::vector<std::string> flags = {})
      : data_(std::move(data)), flags_(std::move(flags)) {
    start();
  }
  void start() {
    serve_ = std::make_unique<ServeProcess>(data_, "127.0.0.1:0", "factory", false, flags_);
    ASSERT_TRUE(serve_->wait_for("listening on")) << serve_->output();
  }
  // SIGKILL, then a new server over the same data directory.
  void crash_and_restart() {
    ::kill(serve_->pid(), SIGKILL);
    serve_.reset();
    start();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(serve_->port()); }
  http::ClientResponse call(const std::string& method, const std::string& path,
                            const std::string& token, const json& body = nullptr) {
    return send(method, path, token, body.is_null() ? "" : body.dump());
  }
  http::ClientResponse send(const std::string& method, const std::string& path,
                            const std::string& token, const std::string& body) {
    auto client = http::HttpClient::create(url());
    EXPECT_TRUE(client.ok());
    auto r = (*client)->request(
        method, path, body,
        {{"Authorization", "Bearer " + token}, {"Content-Type", "application/json"}});
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().to_string());
    return r.ok() ? *r : http::ClientResponse{};
  }
  const std::string& output() const { return serve_->output(); }
  // Reads what it printed until `text` shows up (or a timeout); whether it did.
  bool wait_for(const std::string& text) { return serve_->wait_for(text); }

 private:
  std::string data_;
  std::vector<std::string> flags_;
  std::unique_ptr<ServeProcess> serve_;
};

TEST(RemoteCommands, EachRunsOnceThroughServerCrashesAndTheAgentsOwnReboot) {
  const std::string dir = temp_dir();
  Server server(dir + "/server");
  const std::string admin = create_token(dir + "/server");
  ASSERT_FALSE(admin.empty());
  const std::string config = dir + "/agent.json";
  const std::string log = dir + "/agent.log";
  auto write_config = [&] {
    std::ofstream(config)
        << json{{"server", server.url()},
                {"data_dir", dir + "/agent"},
                {"device", {{"id", "pump-7"}, {"type", "pump"}, {"hardware_revision", "rev-a"}}},
                {"enrollment_token", "factory"},
                {"installed", {{"firmware", "1.0.0"}}},
                {"poll",
                 {{"default", "1s"}, {"backoff_initial", "100ms"}, {"backoff_max", "500ms"}}},
                {"module", {{"type", "file"}, {"target", dir + "/firmware.bin"}}},
                {"remote_commands",
                 {// The "service manager" notes each restart; the "reboot" kills the agent, as a
                  // real reboot does.
                  {"restart_service", {"sh", "-c", "echo \"$0\" >> " + dir + "/restarts"}},
                  {"services", {"sensord"}},
                  {"reboot", {"sh", "-c", "echo reboot >> " + dir + "/reboots; kill -9 $PPID"}},
                  {"run",
                   {{"flush-cache",
                     {{"command",
                       {"sh", "-c", "echo flushed >> " + dir + "/flushes; echo done"}}}}}}}}}
               .dump();
  };
  write_config();
  ASSERT_EQ(run_agent_once(config, log), 0) << read_text(log);  // enrolls

  // Four commands, one of them for a service the agent may not touch.
  const std::string path = "/api/v1/devices/pump-7/commands";
  for (const json& body :
       {json{{"action", "run"}, {"argument", "flush-cache"}, {"reason", "cache full"}},
        json{{"action", "restart_service"}, {"argument", "sensord"}},
        json{{"action", "restart_service"}, {"argument", "sshd"}},
        json{{"action", "reboot"}, {"id", "reboot-after-fix"}}}) {
    const auto r = server.call("POST", path, admin, body);
    ASSERT_EQ(r.status, 201) << r.body;
  }
  // Asked again with its id: the same command, not a second one.
  const auto again =
      server.call("POST", path, admin, {{"action", "reboot"}, {"id", "reboot-after-fix"}});
  EXPECT_EQ(again.status, 200) << again.body;

  // Answered means durable: a crash now loses none of them.
  server.crash_and_restart();
  write_config();
  // The agent takes all four, runs them in order, and its reboot kills it before it reports.
  EXPECT_EQ(run_agent_once(config, log), 128 + SIGKILL) << read_text(log);
  EXPECT_EQ(read_text(dir + "/flushes"), "flushed\n");
  EXPECT_EQ(read_text(dir + "/restarts"), "sensord\n");
  EXPECT_EQ(read_text(dir + "/reboots"), "reboot\n");
  json before = json::parse(server.call("GET", path, admin).body);
  for (const json& c : before["commands"]) EXPECT_EQ(c["state"], "sent") << c.dump();

  // Back up: the reboot counts as done, the server (which sends them all again) is told how
  // each ended, and nothing runs a second time.
  ASSERT_EQ(run_agent_once(config, log), 0) << read_text(log);
  server.crash_and_restart();
  write_config();
  ASSERT_EQ(run_agent_once(config, log), 0) << read_text(log);
  EXPECT_EQ(read_text(dir + "/flushes"), "flushed\n");
  EXPECT_EQ(read_text(dir + "/restarts"), "sensord\n");
  EXPECT_EQ(read_text(dir + "/reboots"), "reboot\n");

  const json history = json::parse(server.call("GET", path, admin).body);
  ASSERT_EQ(history["commands"].size(), 4u) << history.dump();
  std::map<std::string, json> by_action;
  for (const json& c : history["commands"])
    by_action[c["action"].get<std::string>() + " " + c["argument"].get<std::string>()] = c;
  const json& flush = by_action["run flush-cache"];
  EXPECT_EQ(flush["state"], "succeeded") << flush.dump();
  EXPECT_EQ(flush["exit_code"], 0);
  EXPECT_EQ(flush["output"], "done\n");
  EXPECT_EQ(flush["reason"], "cache full");
  EXPECT_EQ(by_action["restart_service sensord"]["state"], "succeeded");
  const json& refused = by_action["restart_service sshd"];
  EXPECT_EQ(refused["state"], "refused") << refused.dump();
  EXPECT_NE(refused["output"].get<std::string>().find("not among those"), std::string::npos);
  const json& reboot = by_action["reboot "];
  EXPECT_EQ(reboot["id"], "reboot-after-fix");
  EXPECT_EQ(reboot["state"], "succeeded") << reboot.dump();
  EXPECT_EQ(reboot["output"], "the device rebooted");
  EXPECT_TRUE(reboot["finished_at"].is_number());

  // One command, and the rules of the operator API.
  const auto one = server.call("GET", "/api/v1/commands/reboot-after-fix", admin);
  EXPECT_EQ(one.status, 200);
  EXPECT_EQ(json::parse(one.body)["state"], "succeeded");
  EXPECT_EQ(server.call("POST", "/api/v1/commands/reboot-after-fix/cancel", admin).status, 409);
  EXPECT_EQ(
      server.call("POST", "/api/v1/devices/nope/commands", admin, {{"action", "reboot"}}).status,
      404);
  EXPECT_EQ(server.call("POST", path, admin, {{"action", "format_disk"}}).status, 400);
  EXPECT_EQ(server.call("POST", path, admin, {{"action", "reboot"}, {"argument", "x"}}).status,
            400);
  EXPECT_EQ(server.call("GET", path, "wrong-token").status, 401);
}

// The remote re-enrollment: rotate_key makes the device a new identity key, which the server
// holds from then on (the audit log says so); the agent keeps it and logs in with it after.
TEST(RemoteCommands, RotateKeyReEnrollsTheDeviceWithANewKeyTheServerHoldsAndTheAgentKeeps) {
  const std::string dir = temp_dir();
  Server server(dir + "/server");
  const std::string admin = create_token(dir + "/server");
  ASSERT_FALSE(admin.empty());
  const std::string config = dir + "/agent.json";
  const std::string log = dir + "/agent.log";
  std::ofstream(config) << json{
      {"server", server.url()},
      {"data_dir", dir + "/agent"},
      {"device", {{"id", "pump-9"}, {"type", "pump"}, {"hardware_revision", "rev-a"}}},
      {"enrollment_token", "factory"},
      {"installed", {{"firmware", "1.0.0"}}},
      {"poll", {{"default", "1s"}}},
      {"module", {{"type", "file"}, {"target", dir + "/firmware.bin"}}},
      {"remote_commands",
       json::object()}}.dump();
  ASSERT_EQ(run_agent_once(config, log), 0) << read_text(log);  // enrolls
  auto key_on_server = [&] {
    return json::parse(server.call("GET", "/api/v1/devices/pump-9", admin).body)
        .value("public_key", "");
  };
  const std::string first = key_on_server();
  const std::string first_file = read_text(dir + "/agent/device.key");
  ASSERT_FALSE(first.empty());

  const auto queued = server.call("POST", "/api/v1/devices/pump-9/commands", admin,
                                  {{"action", "rotate_key"}, {"id", "rekey-1"}});
  ASSERT_EQ(queued.status, 201) << queued.body;
  ASSERT_EQ(run_agent_once(config, log), 0) << read_text(log);

  const json done = json::parse(server.call("GET", "/api/v1/commands/rekey-1", admin).body);
  EXPECT_EQ(done["state"], "succeeded") << done.dump();
  const std::string second = key_on_server();
  EXPECT_NE(second, first);
  EXPECT_NE(done["output"].get<std::string>().find(second), std::string::npos) << done.dump();
  EXPECT_NE(read_text(dir + "/agent/device.key"), first_file);
  EXPECT_FALSE(std::filesystem::exists(dir + "/agent/device.key.next"));

  // The audit log names the change, from which key to which.
  const json audit = json::parse(server.call("GET", "/api/v1/audit/entries", admin).body);
  bool named = false;
  for (const json& e : audit["entries"]) {
    if (e.value("action", "") == "device.key_rotated" && e.value("subject", "") == "pump-9") {
      named = e["detail"].value("from", "") == first && e["detail"].value("to", "") == second;
    }
  }
  EXPECT_TRUE(named) << audit.dump();

  // The agent started again logs in with the key it kept: a command queued now is taken and
  // answered (an agent that could not log in would exit 0 too, having heard nothing).
  ASSERT_EQ(server
                .call("POST", "/api/v1/devices/pump-9/commands", admin,
                      {{"action", "clear_update"}, {"id", "after-rekey"}})
                .status,
            201);
  ASSERT_EQ(run_agent_once(config, log), 0) << read_text(log);
  const json after = json::parse(server.call("GET", "/api/v1/commands/after-rekey", admin).body);
  EXPECT_EQ(after["state"], "succeeded") << after.dump() << read_text(log);
  EXPECT_EQ(key_on_server(), second);
}

// A download stuck for good, end to end: the server's copy of the image is cut short (the
// server answers every download 500, its content damaged), so the real agent retries
// forever — checking in between tries that get nowhere — and the real server's update_stuck
// rule, on its own timer, asks it to give the download up; the deployment fails (the rollout
// stops waiting, and its gate sees a delivery nobody could make), and the alert resolves once
// the device reports idle.
// The server's flags for the stuck-download tests: an update-stuck rule waiting `after`,
// everything on a fast timer.
std::vector<std::string> stuck_download_flags(const std::string& dir, const std::string& after) {
  const std::string rules = dir + "/rules.json";
  std::filesystem::create_directories(dir);
  std::ofstream(rules) << R"({"rules": [{"name": "update-stuck", "condition": "update_stuck",
      "after": ")" + after + R"(", "ladder": [{"action": "clear_update", "argument": "download"}],
      "verify": "1m"}]})";
  return {"--remediation-rules",  rules,   "--remediation-interval", "200ms",
          "--tick-interval",      "200ms", "--poll-interval",        "1s",
          "--busy-poll-interval", "1s"};
}

// pump-3's agent configuration, for the server at `url`.
void write_pump_config(const std::string& dir, const std::string& url) {
  std::ofstream(dir + "/agent.json") << json{
      {"server", url},
      {"data_dir", dir + "/agent"},
      {"device", {{"id", "pump-3"}, {"type", "pump"}, {"hardware_revision", "rev-a"}}},
      {"enrollment_token", "factory"},
      {"installed", {{"firmware", "1.0.0"}}},
      {"poll", {{"default", "1s"}, {"backoff_initial", "100ms"}, {"backoff_max", "500ms"}}},
      {"module", {{"type", "file"}, {"target", dir + "/firmware.bin"}}},
      {"remote_commands", json::object()}}.dump();
}

// Enrolls pump-3 (its configuration written for `serve`), uploads firmware 2.0.0, cuts the
// server's stored copy short (it answers every download of it 500, for good), and starts a
// rollout of it to the whole fleet, whose id it sets.
void start_undeliverable_rollout(Server& serve, const std::string& dir, const std::string& admin,
                                 std::string* rollout) {
  write_pump_config(dir, serve.url());
  ASSERT_EQ(run_agent_once(dir + "/agent.json", dir + "/agent.log"), 0)
      << read_text(dir + "/agent.log");
  auto call = [&](const std::string& method, const std::string& path, const std::string& body) {
    return serve.send(method, path, admin, body);
  };
  const std::string image(1 << 20, 'x');
  ASSERT_EQ(call("PUT", "/api/v1/artifacts/firmware/2.0.0?device_type=pump", image).status, 201);
  // The stored copy loses its second half: the server refuses to serve it (500) for good.
  std::string stored;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir + "/server")) {
    if (e.is_regular_file() && e.file_size() == image.size() && read_text(e.path()) == image)
      stored = e.path().string();
  }
  ASSERT_FALSE(stored.empty());
  std::filesystem::resize_file(stored, image.size() / 2);
  const auto created = call("POST", "/api/v1/rollouts",
                            R"({"name": "p", "artifact": {"name": "firmware", "version": "2.0.0"},
                                "stages": [{"name": "all", "percent": 100}]})");
  ASSERT_EQ(created.status, 201) << created.body;
  *rollout = json::parse(created.body)["id"];
  ASSERT_EQ(call("POST", "/api/v1/rollouts/" + *rollout + "/start", "").status, 200);
}

TEST(RemoteCommands, AStuckDownloadIsGivenUpByTheRuleAndTheDeploymentFails) {
  const std::string dir = temp_dir();
  Server serve(dir + "/server", stuck_download_flags(dir, "2s"));
  const std::string admin = create_token(dir + "/server");
  ASSERT_FALSE(admin.empty());
  auto call = [&](const std::string& method, const std::string& path, const std::string& body) {
    return serve.send(method, path, admin, body);
  };
  const std::string config = dir + "/agent.json";
  const std::string log = dir + "/agent.log";
  std::string rollout;
  ASSERT_NO_FATAL_FAILURE(start_undeliverable_rollout(serve, dir, admin, &rollout));

  const pid_t agent = spawn_agent(config, log, false);
  json alert;
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < give_up) {
    const json listed = json::parse(call("GET", "/api/v1/alerts?state=all", "").body);
    if (!listed["alerts"].empty() && listed["alerts"][0]["state"] == "resolved") {
      alert = listed["alerts"][0];
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  ::kill(agent, SIGTERM);
  ::waitpid(agent, nullptr, 0);
  ASSERT_FALSE(alert.is_null()) << read_text(log) << serve.output();
  EXPECT_EQ(alert["device_id"], "pump-3");
  EXPECT_EQ(alert["condition"], "update_stuck");
  EXPECT_EQ(alert["resolution"], "cleared after clear_update download (step 1 of 1)")
      << alert.dump();
  ASSERT_EQ(alert["commands"].size(), 1u);
  const json command = json::parse(
      call("GET", "/api/v1/commands/" + alert["commands"][0].get<std::string>(), "").body);
  EXPECT_EQ(command["state"], "succeeded") << command.dump();
  EXPECT_NE(command["output"].get<std::string>().find("gave up the download of firmware@2.0.0"),
            std::string::npos)
      << command.dump();
  const json status = json::parse(call("GET", "/api/v1/rollouts/" + rollout, "").body);
  // A delivery nobody could make counts as failed: the rollout's gate sees it.
  EXPECT_EQ(status["progress"]["states"], json({{"failed", 1}})) << status.dump();
  EXPECT_FALSE(std::filesystem::exists(dir + "/agent/download.part"));
  EXPECT_EQ(json::parse(read_text(dir + "/agent/update.json"))["step"], "idle");
  // The server's log tells the story: the alert opened, then resolved saying after what.
  EXPECT_TRUE(serve.wait_for(R"("state":"resolved","text":"cleared after clear_update download)"))
      << serve.output();
  EXPECT_NE(serve.output().find(R"("rule":"update-stuck","state":"open")"), std::string::npos)
      << serve.output();
}

// The same stuck download on a server killed with SIGKILL every 6 seconds (and started again
// over its data directory, its agent after it): the rule waits 12 seconds, longer than a
// life of the server, and still acts — the held condition carries the count across the
// crashes, the time each crash took not counted. A restarted server's log says it went on
// counting.
TEST(RemoteCommands, AStuckDownloadIsGivenUpThoughTheServerIsKilledEvery6s) {
  const std::string dir = temp_dir();
  Server serve(dir + "/server", stuck_download_flags(dir, "12s"));
  const std::string admin = create_token(dir + "/server");
  ASSERT_FALSE(admin.empty());
  const std::string config = dir + "/agent.json";
  const std::string log = dir + "/agent.log";
  std::string rollout;
  ASSERT_NO_FATAL_FAILURE(start_undeliverable_rollout(serve, dir, admin, &rollout));

  json alert;
  int crashes = 0;
  bool went_on = false;  // a restarted server said it went on counting
  for (; crashes < 12; ++crashes) {
    const pid_t agent = spawn_agent(config, log, false);
    const auto life_ends = std::chrono::steady_clock::now() + std::chrono::seconds(6);
    while (alert.is_null() && std::chrono::steady_clock::now() < life_ends) {
      const json listed =
          json::parse(serve.call("GET", "/api/v1/alerts?state=all", admin).body, nullptr, false);
      if (listed.is_object() && !listed["alerts"].empty() &&
          listed["alerts"][0]["state"] == "resolved")
        alert = listed["alerts"][0];
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    ::kill(agent, SIGTERM);
    ::waitpid(agent, nullptr, 0);
    if (!alert.is_null()) break;
    ASSERT_NO_FATAL_FAILURE(serve.crash_and_restart());
    write_pump_config(dir, serve.url());
    went_on |= serve.output().find("remediation goes on counting") != std::string::npos;
  }
  ASSERT_FALSE(alert.is_null()) << read_text(log) << serve.output();
  // One life of 6 seconds (and the moments its agent takes to stop) cannot count 12.
  EXPECT_GE(crashes, 1);
  EXPECT_TRUE(went_on);
  EXPECT_EQ(alert["device_id"], "pump-3");
  EXPECT_EQ(alert["resolution"], "cleared after clear_update download (step 1 of 1)")
      << alert.dump();
  ASSERT_EQ(alert["commands"].size(), 1u);
  EXPECT_EQ(json::parse(read_text(dir + "/agent/update.json"))["step"], "idle");
}

}  // namespace
}  // namespace drover::testing
