// `drover sim --network` as a user runs it: the real binary, real agents over loopback, a
// report on disk; and a clear refusal when it cannot run.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "../common/serve_process.h"

namespace drover::testing {
namespace {

const std::string kScenario = std::string(DROVER_SOURCE_DIR) + "/tests/sim/data/network.json";

TEST(SimCli, NetworkRunPrintsTheOutcomeAndWritesTheReport) {
  const std::string dir = temp_dir();
  const CommandOutcome r =
      run_command(std::string(DROVER_BIN) + " sim " + kScenario + " --devices 40 --network" +
                  " --network-dir " + dir + "/net --report-json " + dir + "/report.json");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("check-ins by agents over HTTP"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("[stage_started]"), std::string::npos) << r.out;  // the engine's timeline
  std::ifstream in(dir + "/report.json");
  std::stringstream text;
  text << in.rdbuf();
  const auto report = nlohmann::json::parse(text.str());
  EXPECT_EQ(report.at("devices_total"), 40);
  EXPECT_EQ(report.at("devices_bricked"), 0);
  EXPECT_GT(report.at("checkins").get<int>(), 0);
  // The agents' state directories were kept, one per device.
  size_t devices = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir + "/net/devices")) {
    devices += e.is_directory() ? 1 : 0;
  }
  EXPECT_EQ(devices, 40u);
  std::filesystem::remove_all(dir);
}

TEST(SimCli, NetworkRunRefusesADirectoryInUse) {
  const std::string dir = temp_dir();
  std::ofstream(dir + "/precious") << "keep me";
  const CommandOutcome r = run_command(std::string(DROVER_BIN) + " sim " + kScenario +
                                       " --devices 5 --network --quiet --network-dir " + dir);
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("is not empty"), std::string::npos) << r.out;
  EXPECT_TRUE(std::filesystem::exists(dir + "/precious"));
  EXPECT_FALSE(std::filesystem::exists(dir + "/devices"));
  std::filesystem::remove_all(dir);
}

// Against a real `drover serve` elsewhere (here: a child process): the fleet is set up
// through the operator API, the agents enroll with the server's enrollment token, and the run
// keeps the wall clock's pace (the scenario takes seconds). The outcome is the twin's, and the
// server's own status says the same.
TEST(SimCli, NetworkRunAgainstARunningServerEndsAsTheTwinSays) {
  const std::string dir = temp_dir();
  const std::string bin = DROVER_BIN;
  // With signed update metadata: the agents trust the server's root and install only what
  // its signed targets list.
  const CommandOutcome keys =
      run_command(bin + " keys gen --data " + dir + "/data --root-key-dir " + dir + "/root-keys");
  ASSERT_EQ(keys.code, 0) << keys.out;
  ServeProcess serve(dir + "/data", "127.0.0.1:0", "factory-secret", false,
                     {"--tick-interval", "1s"});
  ASSERT_TRUE(serve.wait_for("listening on")) << serve.output();
  const std::string url = "http://127.0.0.1:" + std::to_string(serve.port());
  const std::string token = create_token(dir + "/data", "sim", "operator");
  ASSERT_FALSE(token.empty());
  const std::string scenario = std::string(DROVER_SOURCE_DIR) + "/tests/sim/data/realtime.json";

  const CommandOutcome twin =
      run_command(bin + " sim " + scenario + " --quiet --report-json " + dir + "/twin.json");
  ASSERT_EQ(twin.code, 0) << twin.out;
  const CommandOutcome remote = run_command(
      bin + " sim " + scenario + " --server " + url + " --token " + token +
      " --enrollment-token factory-secret --network-dir " + dir + "/net --report-json " + dir +
      "/remote.json --initial-root " + dir + "/data/tuf/metadata/1.root.json");
  ASSERT_EQ(remote.code, 0) << remote.out;

  EXPECT_NE(remote.out.find("set up on " + url), std::string::npos) << remote.out;
  EXPECT_NE(remote.out.find("[halted] hardware_revision=rev-c"), std::string::npos) << remote.out;

  auto load = [](const std::string& path) {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    return nlohmann::json::parse(text.str());
  };
  const auto t = load(dir + "/twin.json");
  const auto r = load(dir + "/remote.json");
  for (const char* field :
       {"rollout_state", "devices_eligible", "devices_updated", "devices_failed",
        "devices_fell_back", "devices_reverted", "devices_unhealthy_reverted", "devices_cancelled",
        "devices_unreachable", "devices_bricked"}) {
    EXPECT_EQ(r.at(field), t.at(field)) << field << "\n" << remote.out;
  }
  ASSERT_EQ(r.at("halted_strata").size(), 1u);
  EXPECT_EQ(r.at("halted_strata")[0].at("hardware_revision"), "rev-c");
  EXPECT_EQ(r.at("devices_bricked"), 0);
  EXPECT_GT(r.at("devices_fell_back").get<int>(), 0);
  EXPECT_EQ(r.at("rollout_state"), "completed_partial");
  // Every agent that updated refreshed the signed metadata and checked its offer against
  // the signed targets first.
  int checked = 0;
  for (const auto& device : std::filesystem::directory_iterator(dir + "/net/devices")) {
    std::ifstream in(device.path() / "data/tuf/targets.json");
    std::stringstream targets;
    targets << in.rdbuf();
    if (targets.str().find("\"firmware/") != std::string::npos) ++checked;
  }
  EXPECT_GE(checked, r.at("devices_updated").get<int>());

  // The server's own view of the rollout is the report's.
  const CommandOutcome status = run_command(
      bin + " rollout status rollout-0001 --json --server " + url + " --token " + token, false);
  ASSERT_EQ(status.code, 0) << status.out;
  const auto s = nlohmann::json::parse(status.out);
  const auto& states = s.at("progress").at("states");
  EXPECT_EQ(states.value("succeeded", 0), r.at("devices_updated").get<int>());
  EXPECT_EQ(states.value("rolled_back", 0), r.at("devices_fell_back").get<int>());
  EXPECT_EQ(s.at("progress").at("outcome"), r.at("outcome"));
  // The twin's account matches the real server's, number for number (the halt's wording
  // carries timings, which real time does not repeat).
  for (const auto& [key, value] : t.at("outcome").items()) {
    if (key != "halted") {
      EXPECT_EQ(r.at("outcome").at(key), value) << key;
    }
  }
  EXPECT_EQ(s.at("state"), "completed_partial");
  EXPECT_EQ(states.value("cancelled", 0), r.at("devices_cancelled").get<int>());

  // The same fleet again: the devices are taken, and the run says so instead of clashing.
  const CommandOutcome again =
      run_command(bin + " sim " + scenario + " --quiet --server " + url + " --token " + token +
                  " --enrollment-token factory-secret");
  EXPECT_EQ(again.code, 1) << again.out;
  EXPECT_NE(again.out.find("already has device dev-000001"), std::string::npos) << again.out;
  // A token that is not one: refused before anything is set up.
  const CommandOutcome forged =
      run_command(bin + " sim " + scenario + " --quiet --devices 3 --server " + url +
                  " --token drover_0000000000000000_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" +
                  " --enrollment-token factory-secret");
  EXPECT_EQ(forged.code, 1) << forged.out;
  EXPECT_NE(forged.out.find("HTTP 401"), std::string::npos) << forged.out;
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace drover::testing
