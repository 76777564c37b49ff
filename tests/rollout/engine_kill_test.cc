// A real process is killed with SIGKILL in the middle of a rollout on the SQLite store; a new
// engine over the same file must hold everything the dead one acknowledged: every target
// still has exactly one deployment, every offer it handed out is recorded, every report it
// acknowledged is recorded, and a device whose success was acknowledged is never offered the
// update again.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <map>
#include <set>

#include "../common/fleet_fixture.h"
#include "base/random.h"

namespace drover::testing {
namespace {

constexpr int kDevices = 400;

std::unique_ptr<Store> open_store(const std::string& path) {
  auto s = open_sqlite_store(path);
  EXPECT_TRUE(s.ok()) << s.error().to_string();
  return std::move(*s);
}

// The child: drives devices through the rollout forever, writing one line per acknowledged
// step to `out` ("O dev" offered, "S dev" success acknowledged) before the next step.
[[noreturn]] void drive(const std::string& path, int out, uint64_t seed) {
  Fleet f(at("2026-06-01T12:00:00Z"), open_store(path));
  std::vector<std::string> ids;
  for (int i = 0; i < kDevices; ++i) ids.push_back("dev-" + std::to_string(i));
  const std::string id = f.engine->loaded_rollouts().front();
  Rng rng(seed);
  std::map<std::string, std::optional<UpdateOffer>> holding;
  std::map<std::string, std::string> firmware;
  auto emit = [&](char what, const std::string& dev) {
    const std::string line = std::string(1, what) + " " + dev + "\n";
    if (write(out, line.data(), line.size()) != static_cast<ssize_t>(line.size())) _exit(3);
  };
  while (true) {
    const std::string& dev = ids[rng.below(ids.size())];
    if (!firmware.count(dev)) firmware[dev] = "1.0.0";
    if (holding[dev]) {
      const UpdateOffer o = *holding[dev];
      const auto e =
          rng.chance(0.5) ? protocol::Report::kDownloading : protocol::Report::kSucceeded;
      auto r = f.report(dev, o, e);
      if (!r.ok()) _exit(4);
      if (e == protocol::Report::kSucceeded) {
        firmware[dev] = o.version;
        holding[dev].reset();
        emit('S', dev);
      }
    } else {
      std::vector<InstalledComponent> inv{{"bootloader", "2.0.0"}, {"firmware", firmware[dev]}};
      auto r = f.service->check_in({dev, inv, UpdateState::kIdle});
      if (!r.ok()) _exit(5);
      if (r->offer) {
        holding[dev] = r->offer;
        emit('O', dev);
      }
    }
    f.clock.advance(seconds(10));
  }
}

TEST(EngineKill, SigkillMidRolloutLosesNothingAcknowledged) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("drover-kill-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "fleet.db").string();
  std::string rollout;
  {
    Fleet f(at("2026-06-01T12:00:00Z"), open_store(path));
    std::vector<Device> ds;
    for (int i = 0; i < kDevices; ++i) {
      Device d;
      d.id = "dev-" + std::to_string(i);
      d.device_type = "ctl";
      d.hardware_revision = "rev-a";
      d.site = "open";
      d.installed = {{"bootloader", "2.0.0"}, {"firmware", "1.0.0"}};
      ds.push_back(d);
    }
    ASSERT_TRUE(f.service->provision(ds).ok());
    rollout = f.start(simple_plan({{"all", 100, 0, Duration(0)}}));
  }

  for (uint64_t round = 1; round <= 6; ++round) {
    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    const pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      close(fds[0]);
      drive(path, fds[1], round);
    }
    close(fds[1]);
    // Let the child get some way into its work (a few acknowledged steps, more each
    // round), then kill it wherever it is.
    std::string log;
    char buf[4096];
    const size_t wanted_lines = 3 + 4 * round;
    while (static_cast<size_t>(std::count(log.begin(), log.end(), '\n')) < wanted_lines) {
      const ssize_t n = read(fds[0], buf, sizeof buf);
      if (n <= 0) break;
      log.append(buf, static_cast<size_t>(n));
    }
    usleep(static_cast<useconds_t>(1000 * round));
    kill(child, SIGKILL);
    int status = 0;
    waitpid(child, &status, 0);
    ASSERT_TRUE(WIFSIGNALED(status)) << "the child died on its own: " << status;
    for (ssize_t n; (n = read(fds[0], buf, sizeof buf)) > 0;)
      log.append(buf, static_cast<size_t>(n));
    close(fds[0]);

    // What the dead process acknowledged must be in the store.
    std::set<std::string> offered, succeeded;
    for (size_t pos = 0; pos + 2 < log.size();) {
      const size_t nl = log.find('\n', pos);
      if (nl == std::string::npos) break;  // a line cut by the kill was never acknowledged
      (log[pos] == 'O' ? offered : succeeded).insert(log.substr(pos + 2, nl - pos - 2));
      pos = nl + 1;
    }
    Fleet f(at("2026-06-01T12:00:00Z"), open_store(path));
    auto deps = f.store().list_deployments(rollout);
    ASSERT_TRUE(deps.ok());
    ASSERT_EQ(deps->size(), static_cast<size_t>(kDevices)) << "round " << round;
    std::map<std::string, DeploymentState> state;
    for (const auto& d : *deps) ASSERT_TRUE(state.emplace(d.device_id, d.state).second);
    for (const auto& dev : offered)
      EXPECT_NE(state[dev], DeploymentState::kPending) << dev << " round " << round;
    for (const auto& dev : succeeded) {
      EXPECT_EQ(state[dev], DeploymentState::kSucceeded) << dev << " round " << round;
      std::vector<InstalledComponent> inv{{"bootloader", "2.0.0"}, {"firmware", "2.0.0"}};
      auto r = f.service->check_in({dev, inv, UpdateState::kIdle});
      ASSERT_TRUE(r.ok());
      EXPECT_FALSE(r->offer.has_value()) << dev << " was offered again after its success";
    }
    EXPECT_GE(static_cast<size_t>(std::count(log.begin(), log.end(), '\n')), wanted_lines)
        << "round " << round;
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace drover::testing
