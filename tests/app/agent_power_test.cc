// Power loss, as near as a test can get: the real drover-agent is killed with SIGKILL at
// random instants (seeded) while it downloads, verifies, installs and boots an A/B update
// from a real drover serve, and started again each time. However often and wherever it is
// cut, the device ends on a committed image — the new one — and the server agrees.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <thread>

#include "../common/serve_process.h"
#include "transport/http/client.h"

namespace drover::testing {
namespace {

using nlohmann::json;

TEST(AgentPowerLoss, KilledAtRandomInstantsTheDeviceEndsOnTheCommittedNewImage) {
  const std::string dir = temp_dir();
  ServeProcess serve(dir + "/server", "127.0.0.1:0", "factory", false,
                     {"--tick-interval", "200ms"});
  ASSERT_TRUE(serve.wait_for("listening on")) << serve.output();
  const std::string url = "http://127.0.0.1:" + std::to_string(serve.port());
  const std::string admin = create_token(dir + "/server");
  ASSERT_FALSE(admin.empty());
  auto client = std::move(http::HttpClient::create(url).value());
  auto call = [&](const std::string& method, const std::string& path, const std::string& body) {
    auto r = client->request(
        method, path, body,
        {{"Authorization", "Bearer " + admin}, {"Content-Type", "application/json"}});
    EXPECT_TRUE(r.ok());
    return r.ok() ? *r : http::ClientResponse{};
  };

  // The device: slot A runs 1.0.0; slot B is where 2.0.0 goes.
  std::ofstream(dir + "/slot-a") << "image 1.0.0";
  const std::string config = dir + "/agent.json";
  std::ofstream(config) << json{
      {"server", url},
      {"data_dir", dir + "/agent"},
      {"device", {{"id", "ctl-1"}, {"type", "ctl"}, {"hardware_revision", "rev-a"}}},
      {"enrollment_token", "factory"},
      {"installed", {{"firmware", "1.0.0"}}},
      {"poll", {{"default", "1s"}, {"backoff_initial", "100ms"}, {"backoff_max", "500ms"}}},
      {"module",
       {{"type", "ab-slot"},
        {"slot_a", dir + "/slot-a"},
        {"slot_b", dir + "/slot-b"},
        {"bootloader", "file"},
        {"bootloader_file",
         dir +
             "/boot.state"}}}}.dump();
  const std::string log = dir + "/agent.log";
  {
    const pid_t first = spawn_agent(config, log);  // enrolls
    int status = 0;
    ::waitpid(first, &status, 0);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << read_text(log);
  }

  std::string image(4 << 20, '\0');
  std::mt19937_64 bytes(42);
  for (char& c : image) c = static_cast<char>(bytes());
  ASSERT_EQ(call("PUT", "/api/v1/artifacts/firmware/2.0.0?device_type=ctl", image).status, 201);
  const auto created = call("POST", "/api/v1/rollouts",
                            R"({"name": "p", "artifact": {"name": "firmware", "version": "2.0.0"},
                                "stages": [{"name": "all", "percent": 100}]})");
  ASSERT_EQ(created.status, 201) << created.body;
  const std::string rollout = json::parse(created.body)["id"];
  ASSERT_EQ(call("POST", "/api/v1/rollouts/" + rollout + "/start", "").status, 200);

  // Cut it again and again, at random instants; note the step each cut left behind. When
  // five cuts in a row left it in the same step (a slow machine, a sanitizer build, takes
  // longer than the random instants to fetch 4 MiB), the next cut waits until the agent has
  // written a step no cut has left it in yet and comes a few milliseconds later, so the cuts
  // reach every step however slow the machine.
  std::mt19937 rng(20261126);
  std::map<std::string, int> cut_in;
  const std::string state_file = dir + "/agent/update.json";
  auto step_now = [&] {
    const json state = json::parse(read_text(state_file), nullptr, false);
    return state.is_object() ? state.value("step", "?") : std::string();
  };
  std::string last_step;
  int same_in_a_row = 0;
  for (int i = 0; i < 60; ++i) {
    const pid_t pid = spawn_agent(config, log);
    bool ended = false;
    if (same_in_a_row >= 5) {
      const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(20);
      while (!ended && std::chrono::steady_clock::now() < give_up) {
        ended = ::waitpid(pid, nullptr, WNOHANG) == pid;
        const std::string step = step_now();
        if (!step.empty() && cut_in.count(step) == 0) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
      std::this_thread::sleep_for(std::chrono::microseconds(rng() % 5'000));
    } else {
      std::this_thread::sleep_for(
          std::chrono::microseconds(rng() % (i % 2 == 0 ? 20'000 : 90'000)));
    }
    if (!ended) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
    const std::string step = step_now();
    if (!step.empty()) ++cut_in[step];
    same_in_a_row = step == last_step ? same_in_a_row + 1 : 1;
    last_step = step;
  }
  // Then let it run to the end.
  for (int i = 0; i < 5; ++i) {
    const pid_t pid = spawn_agent(config, log);
    int status = 0;
    ::waitpid(pid, &status, 0);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << read_text(log);
  }

  std::string cuts;
  for (const auto& [step, n] : cut_in) cuts += step + "=" + std::to_string(n) + " ";
  // The cuts landed inside the update, not only before or after it.
  EXPECT_GE(cut_in.size(), 2u) << cuts;
  EXPECT_EQ(read_text(dir + "/boot.state"), "committed=B\nbooted=B\ntrial=\n") << cuts;
  EXPECT_TRUE(read_text(dir + "/slot-b") == image) << cuts;
  EXPECT_EQ(read_text(dir + "/slot-a"), "image 1.0.0");
  EXPECT_EQ(json::parse(read_text(dir + "/agent/inventory.json"))["firmware"], "2.0.0");
  const json status = json::parse(call("GET", "/api/v1/rollouts/" + rollout, "").body);
  EXPECT_EQ(status["progress"]["states"], json({{"succeeded", 1}})) << status.dump() << cuts;
  std::printf("cuts left the agent in: %s\n", cuts.c_str());
}

}  // namespace
}  // namespace drover::testing
