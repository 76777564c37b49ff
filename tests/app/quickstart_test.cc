// docs/quickstart.md, run as written: every ```sh block of the guide, in order, in one bash
// with `set -euo pipefail`, from a directory laid out like the repository's root (examples/
// and build/src/app/ are links to this build's). `make bin` is the one command replaced: the
// programs are built already. Then what the guide says happened is checked: a real server and
// three real agents, a rollout completed, a failed trial boot halting its stratum.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <string>

#include "../common/serve_process.h"

namespace drover::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// A port nothing listens on now.
uint16_t free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

// The guide's port (":8480") replaced by the test's; the search goes on after each
// replacement, so a port that itself holds "8480" (18480) is not replaced again.
std::string with_port(std::string text, const std::string& port) {
  const std::string from = ":8480";
  const std::string to = ":" + port;
  for (size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size()))
    text.replace(at, from.size(), to);
  return text;
}

// Whether something listens on 127.0.0.1:port.
bool port_taken(uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool taken = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return taken;
}

TEST(Quickstart, TheCommandsOfTheGuideWork) {
  // The guide's port, 8480 (the CLI's default), becomes a free one: in the commands, the
  // example files and the CLI's default ($DROVER_SERVER). Nothing else changes.
  const uint16_t port_number = free_port();
  const std::string port = std::to_string(port_number);
  const std::string guide = read_text(std::string(DROVER_SOURCE_DIR) + "/docs/quickstart.md");
  std::string script =
      "set -euo pipefail\n"
      "export DROVER_SERVER=http://127.0.0.1:" +
      port +
      "\n"
      // Whatever it started stops with it, however it ends.
      "trap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n"
      "trap 'exit 143' TERM\n"
      "make() { [ \"$*\" = bin ] || return 1; echo '(make bin: built already)'; }\n";
  const std::regex block("```sh\n([\\s\\S]*?)```");
  size_t blocks = 0;
  for (auto it = std::sregex_iterator(guide.begin(), guide.end(), block);
       it != std::sregex_iterator(); ++it, ++blocks) {
    script += with_port((*it)[1].str(), port) + "\n";
  }
  ASSERT_GE(blocks, 6u) << "the guide's sh blocks were not found";

  const std::string dir = temp_dir();
  fs::create_directories(dir + "/build/src");
  fs::create_directory_symlink(fs::path(DROVER_BIN).parent_path(), dir + "/build/src/app");
  fs::create_directory(dir + "/examples");
  for (const auto& e : fs::directory_iterator(std::string(DROVER_SOURCE_DIR) + "/examples")) {
    std::ofstream(dir + "/examples/" + e.path().filename().string())
        << with_port(read_text(e.path().string()), port);
  }
  std::ofstream(dir + "/guide.sh") << script;
  const CommandOutcome ran = run_command("cd " + dir + " && timeout -k 5 400 bash guide.sh 2>&1");
  ASSERT_EQ(ran.code, 0) << ran.out;
  const std::string out = ran.out;
  auto has = [&out](const std::string& text) { return out.find(text) != std::string::npos; };
  // Three agents enrolled and checked in.
  for (const char* id : {"thermostat-1", "thermostat-2", "thermostat-3"}) {
    EXPECT_TRUE(has(std::string(id) + "  thermostat  ")) << id << "\n" << out;
  }
  // The twin's prediction on the live fleet: the three devices, all updated, in two stages.
  EXPECT_TRUE(has("prediction on the live fleet: 3 devices in service")) << out;
  EXPECT_TRUE(has("  targets 3; the rollout ends completed")) << out;
  // The first rollout completed (--watch exited 0 under set -e), on every device.
  EXPECT_TRUE(has("  completed  every stage done: 3 of 3 updated")) << out;
  // Every device on 2.0.0 afterwards: the device list printed after the first rollout.
  const size_t listed = out.find("every stage done: 3 of 3 updated");
  const std::string after = out.substr(listed, out.find("== rollout-0001", listed) - listed);
  size_t updated = 0;
  for (size_t at = after.find("firmware@2.0.0  "); at != std::string::npos;
       at = after.find("firmware@2.0.0  ", at + 1))
    ++updated;
  EXPECT_EQ(updated, 3u) << after;
  // The rehearsal: the A/B device's trial boot fell back and halted its stratum.
  EXPECT_TRUE(has("stratum_halted  hardware_revision=rev-b halted")) << out;
  EXPECT_TRUE(has("the rollout did not complete: exit 1")) << out;
  EXPECT_TRUE(
      has("thermostat-3 in rollout-0002: rolled_back (the trial boot of the new image "
          "failed)"))
      << out;
  // What the devices hold now: the file module's target, the A/B device's slots.
  EXPECT_EQ(fs::file_size(dir + "/quickstart/thermostat-1/firmware.bin"), 1'000'000u);
  const std::string boot = read_text(dir + "/quickstart/thermostat-3/bootloader.env");
  EXPECT_NE(boot.find("trial=\n"), std::string::npos) << boot;  // no trial left armed
  // The agents' logs: time, level, step; the failing one's fallback.
  const std::string log = read_text(dir + "/quickstart/agent-ab-failing.log");
  EXPECT_TRUE(
      std::regex_search(log, std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z info  \[)")))
      << log;
  EXPECT_NE(log.find("the trial boot fails (trial_boot \"fails\")"), std::string::npos) << log;
  // Nothing keeps running.
  EXPECT_FALSE(port_taken(port_number));
  fs::remove_all(dir);
}

}  // namespace
}  // namespace drover::testing
