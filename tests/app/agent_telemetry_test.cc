// The real drover-agent sending telemetry to a real drover serve: system metrics from a fake
// /proc and /sys, a program's StatsD line, the profile's rule applied on the device, and a
// server killed with -9 for a while — the agent queues on disk meanwhile and, once the server
// is back, every round of the outage arrives, once.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "../common/serve_process.h"
#include "transport/http/client.h"

namespace drover::testing {
namespace {

using nlohmann::json;

class Operator {
 public:
  Operator(uint16_t port, std::string token) : token_(std::move(token)) { connect(port); }
  void connect(uint16_t port) {
    client_ =
        std::move(http::HttpClient::create("http://127.0.0.1:" + std::to_string(port)).value());
  }
  json call(const std::string& method, const std::string& path, const std::string& body = "") {
    auto r = client_->request(
        method, path, body,
        {{"Authorization", "Bearer " + token_}, {"Content-Type", "application/json"}});
    if (!r.ok() || r->status != 200) return json();
    return json::parse(r->body, nullptr, false);
  }
  // The device's newest values by series ("metric" or "metric{a=b,...}").
  std::map<std::string, double> latest(const std::string& device) {
    std::map<std::string, double> out;
    json j = call("GET", "/api/v1/devices/" + device + "/telemetry");
    if (!j.is_object()) return out;
    for (const json& s : j["series"]) {
      std::string key = s["metric"];
      if (!s["labels"].empty()) {
        std::string labels;
        for (const auto& [name, value] : s["labels"].items())
          labels += (labels.empty() ? "" : ",") + name + "=" + value.get<std::string>();
        key += "{" + labels + "}";
      }
      out[key] = s["value"];
    }
    return out;
  }

 private:
  std::string token_;
  std::unique_ptr<http::HttpClient> client_;
};

TEST(AgentTelemetry, SystemAndStatsdMetricsArriveAndAServerOutageLosesNoRound) {
  const std::string dir = temp_dir();
  auto serve = std::make_unique<ServeProcess>(dir + "/server", "127.0.0.1:0", "factory");
  ASSERT_TRUE(serve->wait_for("listening on")) << serve->output();
  const uint16_t port = serve->port();
  const std::string admin = create_token(dir + "/server");
  ASSERT_FALSE(admin.empty());
  Operator op(port, admin);
  // The operator's rule: the battery as its maximum per 2 s; the rest raw.
  ASSERT_TRUE(op.call("PUT", "/api/v1/profiles/sensor",
                      R"({"device_type": "sensor", "telemetry": {"report_every": "1s"},
                          "metrics": [{"metric": "battery_level_percent", "every": "2s",
                                       "aggregates": ["max"]}]})")
                  .is_object());

  const std::string root = dir + "/machine";
  write_file(root + "/proc/uptime", "100.00 50.00\n");
  write_file(root + "/proc/sys/kernel/random/boot_id", "boot-1\n");
  write_file(root + "/sys/class/power_supply/BAT0/type", "Battery\n");
  write_file(root + "/sys/class/power_supply/BAT0/capacity", "83\n");
  const std::string socket_path = dir + "/statsd.sock";
  const std::string config = dir + "/agent.json";
  write_file(
      config,
      json{{"server", "http://127.0.0.1:" + std::to_string(port)},
           {"data_dir", dir + "/agent"},
           {"enrollment_token", "factory"},
           {"device", {{"id", "sensor-1"}, {"type", "sensor"}, {"hardware_revision", "A"}}},
           {"installed", {{"firmware", "1.0.0"}}},
           {"poll", {{"default", "1h"}, {"backoff_initial", "200ms"}, {"backoff_max", "500ms"}}},
           {"module", {{"type", "file"}, {"target", dir + "/firmware.bin"}}},
           {"telemetry",
            {{"interval", "1s"},
             {"collect", {"uptime", "battery", "reboots"}},
             {"root", root},
             {"statsd_socket", socket_path},
             {"statsd_flush", "1s"},
             {"send_every", "1s"}}}}
          .dump());
  const std::string log = dir + "/agent.log";
  pid_t agent = spawn_agent(config, log, false);
  auto agent_log = [&] {
    std::ifstream in(log);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };

  ASSERT_TRUE(eventually([&] {
    auto v = op.latest("sensor-1");
    return v.count("uptime_seconds") > 0 && v.count("battery_level_percent{agg=max,supply=BAT0}");
  })) << agent_log();
  EXPECT_EQ(op.latest("sensor-1").count("battery_level_percent{supply=BAT0}"), 0u)
      << "the rule aggregates on the device";

  // A program's counter, through the socket.
  const int s = ::socket(AF_UNIX, SOCK_DGRAM, 0);
  sockaddr_un to{};
  to.sun_family = AF_UNIX;
  std::strncpy(to.sun_path, socket_path.c_str(), sizeof to.sun_path - 1);
  const std::string line = "door.open:1|c|#door:north\ndoor.open:2|c|#door:north";
  ASSERT_EQ(::sendto(s, line.data(), line.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to),
            static_cast<ssize_t>(line.size()));
  ::close(s);
  EXPECT_TRUE(eventually([&] { return op.latest("sensor-1")["door_open_total{door=north}"] == 3; }))
      << agent_log();

  // The server is killed and stays down for 4 s; the agent keeps collecting into its queue.
  const auto before = std::chrono::system_clock::now();
  ::kill(serve->pid(), SIGKILL);
  serve.reset();
  std::this_thread::sleep_for(std::chrono::seconds(4));
  serve = std::make_unique<ServeProcess>(dir + "/server", "127.0.0.1:" + std::to_string(port),
                                         "factory");
  ASSERT_TRUE(serve->wait_for("listening on")) << serve->output();
  op.connect(port);
  const int64_t outage_start =
      std::chrono::duration_cast<std::chrono::milliseconds>(before.time_since_epoch()).count();
  // Every second of the outage is there once the queue drained: uptime samples one interval
  // apart (the collector runs every 1 s), none missing, none twice.
  json points;
  ASSERT_TRUE(eventually([&] {
    points = op.call("GET", "/api/v1/devices/sensor-1/telemetry/uptime_seconds?from=" +
                                std::to_string(outage_start - 3000) + "&until=" +
                                std::to_string(outage_start + 7000) + "&resolution=raw");
    return points.is_object() && points["points"].size() >= 9;
  })) << points.dump()
      << agent_log();
  int64_t previous = 0;
  for (const json& p : points["points"]) {
    const int64_t t = p["t"];
    if (previous != 0) {
      EXPECT_GT(t, previous);
      EXPECT_LE(t - previous, 1500) << "a round of the outage is missing: " << points.dump();
    }
    previous = t;
  }
  EXPECT_NE(agent_log().find("telemetry: sending batch"), std::string::npos)
      << "the agent says why it holds batches: " << agent_log();

  // What an operator sees from the CLI.
  const std::string cli_env = "DROVER_SERVER=http://127.0.0.1:" + std::to_string(port) +
                              " DROVER_TOKEN=" + admin + " " + std::string(DROVER_BIN) + " ";
  CommandOutcome shown = run_command(cli_env + "profile show sensor");
  EXPECT_EQ(shown.code, 0) << shown.out;
  EXPECT_NE(shown.out.find("sensor: report every 1s"), std::string::npos) << shown.out;
  EXPECT_NE(shown.out.find("every 2s: max"), std::string::npos) << shown.out;
  CommandOutcome latest = run_command(cli_env + "telemetry latest sensor-1");
  EXPECT_EQ(latest.code, 0) << latest.out;
  EXPECT_NE(latest.out.find("door_open_total{door=north}"), std::string::npos) << latest.out;
  EXPECT_NE(latest.out.find("battery_level_percent{agg=max,supply=BAT0}"), std::string::npos)
      << latest.out;
  CommandOutcome fresh = run_command(cli_env + "telemetry freshness --type sensor");
  EXPECT_EQ(fresh.code, 0) << fresh.out;
  EXPECT_NE(fresh.out.find("sensor-1"), std::string::npos) << fresh.out;
  CommandOutcome range = run_command(cli_env + "telemetry range sensor-1 uptime_seconds --from 1m");
  EXPECT_EQ(range.code, 0) << range.out;
  EXPECT_NE(range.out.find("uptime_seconds at raw resolution"), std::string::npos) << range.out;

  ::kill(agent, SIGTERM);
  int status = 0;
  ::waitpid(agent, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << agent_log();
}

}  // namespace
}  // namespace drover::testing
