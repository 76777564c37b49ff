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

}  // namespace
}  // namespace drover::testing
