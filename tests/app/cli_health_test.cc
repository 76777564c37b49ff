// Device health end to end: a real drover-agent on a machine (a fake /sys) whose battery
// drains a point a second sends its readings to a real drover serve; `drover health device`
// shows the battery's forecast as a critical reason, and `drover health fleet` counts the
// device and lists the battery among the failures predicted — the same figures as the API.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "../common/serve_process.h"

namespace drover::testing {
namespace {

using nlohmann::json;

// A machine (a fake /sys under dir/machine) with one discharging battery at `level` percent;
// its root.
std::string battery_machine(const std::string& dir, int level) {
  const std::string root = dir + "/machine";
  write_file(root + "/sys/class/power_supply/BAT0/type", "Battery\n");
  write_file(root + "/sys/class/power_supply/BAT0/capacity", std::to_string(level) + "\n");
  write_file(root + "/sys/class/power_supply/BAT0/status", "Discharging\n");
  return root;
}

// The configuration of sensor-1's agent, reading the machine's battery every second; its path.
std::string agent_config(const std::string& dir, const std::string& url, const std::string& root) {
  const std::string config = dir + "/agent.json";
  write_file(
      config,
      json{{"server", url},
           {"data_dir", dir + "/agent"},
           {"enrollment_token", "factory"},
           {"device", {{"id", "sensor-1"}, {"type", "sensor"}, {"hardware_revision", "A"}}},
           {"installed", {{"firmware", "1.0.0"}}},
           {"poll", {{"default", "1h"}, {"backoff_initial", "200ms"}, {"backoff_max", "1s"}}},
           {"module", {{"type", "file"}, {"target", dir + "/firmware.bin"}}},
           {"telemetry",
            {{"interval", "1s"}, {"collect", {"battery"}}, {"root", root}, {"send_every", "1s"}}}}
          .dump());
  return config;
}

// A process stopped and reaped when the test ends, however it ends.
struct Stopped {
  pid_t pid;
  ~Stopped() {
    ::kill(pid, SIGTERM);
    ::waitpid(pid, nullptr, 0);
  }
};

// A real drover serve in a fresh directory (enrollment token "factory") and the operator
// CLI's command line for it.
struct Served {
  std::string dir = temp_dir();
  ServeProcess serve{dir + "/server", "127.0.0.1:0", "factory"};
  bool listening = serve.wait_for("listening on");
  std::string url = "http://127.0.0.1:" + std::to_string(serve.port());
  std::string admin = listening ? create_token(dir + "/server") : "";
  std::string cli = std::string(DROVER_BIN) + " --server " + url + " --token " + admin;
  bool ready() const { return listening && !admin.empty(); }
};

TEST(CliHealth, ADrainingBatteryIsForecastAndTheFleetViewListsIt) {
  Served at;
  ASSERT_TRUE(at.ready()) << at.serve.output();
  const std::string &dir = at.dir, &url = at.url, &cli = at.cli;
  write_file(dir + "/profile.json", R"({"device_type": "sensor",
                                        "telemetry": {"report_every": "1s", "late_after": "5s"}})");
  ASSERT_EQ(run_command(cli + " profile set " + dir + "/profile.json").code, 0);

  const std::string root = battery_machine(dir, 90);
  const std::string log = dir + "/agent.log";
  // The agent runs until the test ends, however it ends.
  const Stopped agent{spawn_agent(agent_config(dir, url, root), log, false)};
  // Its first reading in (it enrolls first), the battery drains a point a second — and goes
  // on draining while the commands run, down to 30% at most (the forecast stays within a
  // minute or so of 5% however slow the machine).
  ASSERT_TRUE(eventually([&] {
    return run_command(cli + " telemetry latest sensor-1", false)
               .out.find("battery_level_percent") != std::string::npos;
  })) << read_text(log);
  std::atomic<bool> done{false};
  std::thread drain([&] {
    for (int level = 89; level >= 30 && !done.load(); --level) {
      std::this_thread::sleep_for(std::chrono::seconds(1));
      write_file(root + "/sys/class/power_supply/BAT0/capacity", std::to_string(level) + "\n");
    }
  });
  struct Joined {
    std::atomic<bool>& done;
    std::thread& t;
    ~Joined() {
      done = true;
      t.join();
    }
  } joined{done, drain};
  std::this_thread::sleep_for(std::chrono::seconds(14));  // 14 readings on the way down

  const CommandOutcome device = run_command(cli + " health device sensor-1");
  EXPECT_EQ(device.code, 0) << device.out << read_text(log);
  EXPECT_NE(device.out.find("sensor-1 (sensor): critical, score "), std::string::npos)
      << device.out;
  EXPECT_NE(device.out.find("battery BAT0 empty in about"), std::string::npos) << device.out;

  const CommandOutcome doc = run_command(cli + " --json health device sensor-1");
  ASSERT_EQ(doc.code, 0) << doc.out;
  const json d = json::parse(doc.out);
  EXPECT_EQ(d["status"], "critical");
  bool battery_reason = false;
  for (const json& r : d["reasons"]) {
    battery_reason = battery_reason || (r["kind"] == "battery" && r["severity"] == "critical" &&
                                        r["forecast"]["resource"] == "battery BAT0");
  }
  EXPECT_TRUE(battery_reason) << doc.out;
  ASSERT_EQ(d["forecasts"].size(), 1u) << doc.out;
  const json& f = d["forecasts"][0];
  EXPECT_EQ(f["resource"], "battery BAT0");
  EXPECT_EQ(f["limit"], 5.0);
  // About 1%/s: from the last reading (between 30% and 75%) 25 to 70 s to 5%, within a
  // generous bound (the agent samples on its own second, the level changes on the test's).
  EXPECT_NEAR(f["slope_per_hour"].get<double>(), -3600, 1200) << doc.out;
  EXPECT_GT(f["expected_s"].get<double>(), 10) << doc.out;
  EXPECT_LT(f["expected_s"].get<double>(), 200) << doc.out;
  EXPECT_LE(f["earliest_s"].get<double>(), f["expected_s"].get<double>());

  const CommandOutcome fleet = run_command(cli + " --json health fleet --days 1");
  ASSERT_EQ(fleet.code, 0) << fleet.out;
  const json v = json::parse(fleet.out);
  EXPECT_EQ(v["devices"], 1);
  EXPECT_EQ(v["by_status"]["critical"], 1);
  EXPECT_EQ(v["lost"], 0);
  ASSERT_EQ(v["predicted_failures"].size(), 1u) << fleet.out;
  EXPECT_EQ(v["predicted_failures"][0]["device"], "sensor-1");
  EXPECT_EQ(v["at_risk"][0]["device"], "sensor-1");
  const CommandOutcome table = run_command(cli + " health fleet");
  EXPECT_NE(table.out.find("1 devices: 0 healthy, 0 degraded, 1 critical, 0 unknown"),
            std::string::npos)
      << table.out;

  // The cohort's filters reach the server: the device's revision keeps it, another's leaves
  // none, and a version without its component is a usage error.
  const auto devices_in = [&](const std::string& flags) {
    const CommandOutcome out = run_command(cli + " --json health fleet " + flags);
    EXPECT_EQ(out.code, 0) << flags << out.out;
    return out.code == 0 ? json::parse(out.out)["devices"].get<int>() : -1;
  };
  EXPECT_EQ(devices_in("--revision A"), 1);
  EXPECT_EQ(devices_in("--revision B"), 0);
  EXPECT_EQ(devices_in("--tag greenhouse"), 0);
  EXPECT_EQ(devices_in("--type sensor --revision A"), 1);
  EXPECT_EQ(run_command(cli + " health fleet --version 1.0").code, 2);

  const CommandOutcome missing = run_command(cli + " health device nobody");
  EXPECT_EQ(missing.code, 1);
  EXPECT_NE(missing.out.find("not_found"), std::string::npos) << missing.out;
  const CommandOutcome bad = run_command(cli + " health fleet --days 0");
  EXPECT_EQ(bad.code, 2) << bad.out;

  std::printf("%s\n%s", device.out.c_str(), table.out.c_str());
}

// The checks a profile declares on a device's own metrics, end to end: `drover profile set`
// shows them as the server stored them, a bad one is refused with the reason and changes
// nothing, and a real agent's battery reading below the profile's floor is a critical `limit`
// in `drover health device`.
TEST(CliHealth, AProfilesChecksAreShownAndAReadingPastItsLimitIsAReason) {
  Served at;
  ASSERT_TRUE(at.ready()) << at.serve.output();
  const std::string &dir = at.dir, &url = at.url, &cli = at.cli;
  write_file(dir + "/profile.json", R"({"device_type": "sensor",
      "telemetry": {"report_every": "1s", "late_after": "5s"},
      "health": [{"metric": "battery_level_percent", "below": 85, "frozen_after": "10m"},
                 {"metric": "signal_dbm", "below": -110, "drift": true}]})");
  const CommandOutcome set = run_command(cli + " profile set " + dir + "/profile.json");
  ASSERT_EQ(set.code, 0) << set.out;
  const std::string shown =
      "  health battery_level_percent: below 85, frozen after 10m\n"
      "  health signal_dbm: below -110, drift against its site's devices of the type\n";
  EXPECT_NE(set.out.find(shown), std::string::npos) << set.out;
  EXPECT_NE(run_command(cli + " profile show sensor").out.find(shown), std::string::npos);

  write_file(dir + "/bad.json", R"({"device_type": "sensor",
      "health": [{"metric": "battery_level_percent", "below": 85, "above": 80}]})");
  const CommandOutcome bad = run_command(cli + " profile set " + dir + "/bad.json");
  EXPECT_EQ(bad.code, 1);
  EXPECT_NE(bad.out.find("below must be less than above"), std::string::npos) << bad.out;
  EXPECT_NE(run_command(cli + " profile show sensor").out.find(shown), std::string::npos);

  const std::string root = battery_machine(dir, 90);
  const std::string log = dir + "/agent.log";
  const Stopped agent{spawn_agent(agent_config(dir, url, root), log, false)};
  ASSERT_TRUE(eventually([&] {
    return run_command(cli + " telemetry latest sensor-1", false)
               .out.find("battery_level_percent") != std::string::npos;
  })) << read_text(log);
  const CommandOutcome above = run_command(cli + " --json health device sensor-1");
  ASSERT_EQ(above.code, 0) << above.out;
  const json above_doc = json::parse(above.out);  // kept: the loop reads into it
  for (const json& r : above_doc["reasons"]) EXPECT_NE(r["kind"], "limit") << r;

  write_file(root + "/sys/class/power_supply/BAT0/capacity", "80\n");
  CommandOutcome below;
  EXPECT_TRUE(eventually([&] {
    below = run_command(cli + " health device sensor-1");
    return below.out.find(
               "battery_level_percent{supply=BAT0} below its limit now (80 at its "
               "newest reading; the limit is 85)") != std::string::npos;
  })) << below.out;
  EXPECT_NE(below.out.find("sensor-1 (sensor): critical"), std::string::npos) << below.out;
  std::printf("%s%s", set.out.c_str(), below.out.c_str());
}

}  // namespace
}  // namespace drover::testing
