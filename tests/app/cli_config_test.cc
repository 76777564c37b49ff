// Device configuration end to end: a real drover serve, the operator CLI and a real
// drover-agent. A document outside the profile's envelope is refused by the server; one inside
// it reaches the device, is written and taken by the apply command; one the server allows but
// the device's own envelope does not is refused by the device, which says why; a file changed
// by hand is put back; `reapply_config` runs the apply command again.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <nlohmann/json.hpp>

#include "../common/serve_process.h"

namespace drover::testing {
namespace {

using nlohmann::json;

struct Stopped {
  pid_t pid;
  ~Stopped() {
    ::kill(pid, SIGTERM);
    ::waitpid(pid, nullptr, 0);
  }
};

size_t count_of(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

TEST(CliConfig, ADocumentReachesARealAgentOnlyInsideBothEnvelopes) {
  const std::string dir = temp_dir();
  // Devices check in every second, so what changes reaches them at once.
  ServeProcess serve{dir + "/server", "127.0.0.1:0", "factory", false, {"--poll-interval", "1s"}};
  ASSERT_TRUE(serve.wait_for("listening on")) << serve.output();
  const std::string url = "http://127.0.0.1:" + std::to_string(serve.port());
  const std::string admin = create_token(dir + "/server");
  ASSERT_FALSE(admin.empty());
  const std::string cli = std::string(DROVER_BIN) + " --server " + url + " --token " + admin;

  // The profile's envelope: a set point from 10 to 30 °C, at most 3 fan stages.
  write_file(dir + "/profile.json", R"({"device_type": "ctl",
     "config": {"fields": [{"name": "setpoint_c", "min": 10, "max": 30, "required": true},
                           {"name": "fan", "kind": "integer", "min": 1, "max": 3}]}})");
  ASSERT_EQ(run_command(cli + " profile set " + dir + "/profile.json").code, 0);
  write_file(dir + "/hot.json", R"({"setpoint_c": 35, "fan": 2})");
  const CommandOutcome hot = run_command(cli + " config set ctl " + dir + "/hot.json");
  EXPECT_NE(hot.code, 0);
  EXPECT_NE(hot.out.find("setpoint_c: 35.0 is above the envelope's maximum 30.0"),
            std::string::npos)
      << hot.out;
  EXPECT_NE(run_command(cli + " config show ctl").code, 0);  // nothing was written
  write_file(dir + "/v1.json", R"({"setpoint_c": 21, "fan": 2})");
  const CommandOutcome v1 =
      run_command(cli + " config set ctl " + dir + "/v1.json --note 'first set points'");
  ASSERT_EQ(v1.code, 0) << v1.out;
  EXPECT_NE(v1.out.find("ctl version 1"), std::string::npos) << v1.out;
  EXPECT_NE(v1.out.find("first set points"), std::string::npos) << v1.out;

  // The device: its own envelope is narrower (at most 26 °C); its apply command logs each
  // document it is given.
  write_file(dir + "/own-envelope.json",
             R"({"fields": [{"name": "setpoint_c", "min": 12, "max": 26},
                            {"name": "fan", "kind": "integer", "min": 1, "max": 3}]})");
  const std::string applied_log = dir + "/applied.log";
  const std::string config_file = dir + "/etc/config.json";
  std::filesystem::create_directories(dir + "/etc");  // the agent writes in, not makes, it
  write_file(
      dir + "/agent.json",
      json{
          {"server", url},
          {"data_dir", dir + "/agent"},
          {"enrollment_token", "factory"},
          {"device", {{"id", "ctl-1"}, {"type", "ctl"}, {"hardware_revision", "A"}}},
          {"installed", {{"firmware", "1.0.0"}}},
          {"poll", {{"default", "1s"}, {"backoff_initial", "200ms"}, {"backoff_max", "1s"}}},
          {"module", {{"type", "file"}, {"target", dir + "/firmware.bin"}}},
          {"remote_commands", json::object()},
          {"configuration",
           {{"path", config_file},
            {"apply",
             {"sh", "-c",
              "echo \"v$DROVER_CONFIG_VERSION $(cat \"$DROVER_CONFIG_PATH\")\" >> " + applied_log}},
            {"envelope", dir + "/own-envelope.json"}}}}
          .dump());
  const std::string log = dir + "/agent.log";
  const Stopped agent{spawn_agent(dir + "/agent.json", log, false)};

  const std::string canonical_v1 = R"({"fan":2,"setpoint_c":21.0})";
  // The apply command's line is its last act: once it is there, the document was taken.
  ASSERT_TRUE(eventually([&] { return !read_text(applied_log).empty(); })) << read_text(log);
  EXPECT_EQ(read_text(applied_log), "v1 " + canonical_v1 + "\n");
  EXPECT_EQ(read_text(config_file), canonical_v1);
  ASSERT_TRUE(eventually([&] {
    return run_command(cli + " config show ctl", false).out.find("devices: 1 run it") !=
           std::string::npos;
  })) << run_command(cli + " config show ctl").out;
  EXPECT_NE(read_text(log).find("configuration version 1"), std::string::npos) << read_text(log);

  // Changed by hand: the next check-in reports another hash, and the document is put back.
  write_file(config_file, R"({"setpoint_c": 29})");
  ASSERT_TRUE(eventually([&] { return count_of(read_text(applied_log), "v1 ") == 2; }))
      << read_text(log);
  EXPECT_EQ(read_text(config_file), canonical_v1);

  // 28 °C: inside the profile's envelope, outside this hardware's. The device refuses it,
  // keeps what it runs, and says why; the server shows it failed.
  write_file(dir + "/v2.json", R"({"setpoint_c": 28, "fan": 2})");
  ASSERT_EQ(run_command(cli + " config set ctl " + dir + "/v2.json").code, 0);
  ASSERT_TRUE(eventually([&] {
    const std::string out = run_command(cli + " device show ctl-1 --json", false).out;
    return out.find("outside this device's own envelope") != std::string::npos;
  })) << read_text(log);
  EXPECT_EQ(read_text(config_file), canonical_v1);
  const CommandOutcome failed = run_command(cli + " config show ctl");
  EXPECT_NE(failed.out.find("0 run it, 0 not yet, 1 failed to apply it"), std::string::npos)
      << failed.out;
  EXPECT_NE(failed.out.find("failed: ctl-1"), std::string::npos) << failed.out;

  // A version inside both is applied, and the error clears.
  write_file(dir + "/v3.json", R"({"setpoint_c": 24, "fan": 3})");
  ASSERT_EQ(run_command(cli + " config set ctl " + dir + "/v3.json").code, 0);
  const std::string canonical_v3 = R"({"fan":3,"setpoint_c":24.0})";
  ASSERT_TRUE(eventually([&] {
    return run_command(cli + " config show ctl", false).out.find("devices: 1 run it") !=
           std::string::npos;
  })) << read_text(log);
  EXPECT_EQ(read_text(config_file), canonical_v3);
  const json device = json::parse(run_command(cli + " device show ctl-1 --json", false).out);
  EXPECT_FALSE(device.contains("config_error")) << device.dump();

  // reapply_config: in sync, applied again all the same (the apply command runs once more).
  const CommandOutcome asked =
      run_command(cli + " device command ctl-1 reapply_config --command-id reapply-1");
  ASSERT_EQ(asked.code, 0) << asked.out;
  ASSERT_TRUE(eventually([&] {
    return run_command(cli + " device commands ctl-1 --json", false).out.find("succeeded") !=
           std::string::npos;
  })) << read_text(log);
  EXPECT_EQ(count_of(read_text(applied_log), "v3 "), 2u) << read_text(applied_log);
  EXPECT_EQ(read_text(config_file), canonical_v3);

  const CommandOutcome history = run_command(cli + " config history ctl");
  EXPECT_NE(history.out.find("ctl version 3"), std::string::npos) << history.out;
  EXPECT_NE(history.out.find("ctl version 1"), std::string::npos) << history.out;
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace drover::testing
