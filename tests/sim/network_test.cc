// `drover sim --network` end to end: 240 real agents (Agent, HTTP link, ab-slot module over a
// FileBootloader, each with its own key and state directory) against the real device API on
// loopback run a rollout whose build does not boot on one hardware revision. The outcome must
// be the in-process twin's — the same halted stratum, the same devices rolled back, updated
// and failed, none bricked — and every device's own disk must agree with the server: the
// committed slot holds the exact bytes of the version the server says it runs.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "../common/fleet_fixture.h"
#include "../common/shared_manual_clock.h"
#include "agent/bootloader.h"
#include "agent/update_state.h"
#include "sim/network_fleet.h"
#include "sim/simulator.h"
#include "store/store.h"
#include "transport/http/client.h"
#include "windows_scenario.h"

namespace drover::sim {
namespace {

namespace fs = std::filesystem;

std::string read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

Scenario network_scenario() {
  auto s = load_scenario(std::string(DROVER_SOURCE_DIR) + "/tests/sim/data/network.json");
  EXPECT_TRUE(s.ok()) << s.error().to_string();
  return *s;
}

struct TempDir {
  TempDir() {
    char tmpl[] = "/tmp/drover-sim-net-XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~TempDir() { fs::remove_all(path); }
  std::string path;
};

NetworkSimOptions net_options(std::string dir, uint64_t payload_bytes) {
  NetworkSimOptions o;
  o.dir = std::move(dir);
  o.payload_bytes = payload_bytes;
  return o;
}

std::vector<std::string> outcome_lines(const Report& r) {
  std::vector<std::string> out = {
      "state " + r.rollout_state,
      "eligible " + std::to_string(r.devices_eligible),
      "updated " + std::to_string(r.devices_updated),
      "failed " + std::to_string(r.devices_failed),
      "fell back " + std::to_string(r.devices_fell_back),
      "reverted " + std::to_string(r.devices_reverted + r.devices_unhealthy_reverted),
      "cancelled " + std::to_string(r.devices_cancelled),
      "unreachable " + std::to_string(r.devices_unreachable),
      "bricked " + std::to_string(r.devices_bricked),
      "stages " + std::to_string(r.stages.size()),
  };
  for (const auto& h : r.halted_strata)
    out.push_back("halted " + h.hardware_revision + ": " + h.reason);
  return out;
}

TEST(NetworkSim, TwoHundredFortyAgentsOverLoopbackEndAsTheTwinSays) {
  const Scenario s = network_scenario();
  ASSERT_GE(s.devices, 200u);
  auto twin = run_simulation(s, {});
  ASSERT_TRUE(twin.ok()) << twin.error().to_string();

  TempDir tmp;
  SimOptions o;
  o.store = "sqlite:" + tmp.path + "/server.db";  // kept, to compare with the devices
  o.network = net_options(tmp.path + "/net", 64 * 1024);
  std::vector<std::string> timeline;
  o.timeline = [&](const std::string& line) { timeline.push_back(line); };
  auto net = run_simulation(s, o);
  ASSERT_TRUE(net.ok()) << net.error().to_string();

  // The outcome is the twin's, and so is its time line: the stages, and the instant the
  // broken revision halted (its fifth failed trial boot), which only a faithful account of
  // transfer, install and reboot times reproduces.
  EXPECT_EQ(outcome_lines(*net), outcome_lines(*twin));
  ASSERT_EQ(net->stages.size(), twin->stages.size());
  for (size_t i = 0; i < net->stages.size(); ++i) {
    EXPECT_NEAR(net->stages[i].started_at_s, twin->stages[i].started_at_s, 120) << i;
  }
  ASSERT_EQ(twin->halted_strata.size(), 1u);
  ASSERT_FALSE(net->halted_strata.empty());
  EXPECT_NEAR(net->halted_strata[0].halted_at_s, twin->halted_strata[0].halted_at_s, 60);
  ASSERT_TRUE(net->time_to_50_percent_s && twin->time_to_50_percent_s);
  EXPECT_NEAR(*net->time_to_50_percent_s, *twin->time_to_50_percent_s,
              0.05 * *twin->time_to_50_percent_s);
  ASSERT_EQ(net->halted_strata.size(), 1u);
  EXPECT_EQ(net->halted_strata[0].hardware_revision, "rev-c");
  EXPECT_EQ(net->rollout_state, "completed_partial");
  EXPECT_GT(net->devices_fell_back, 0u);
  EXPECT_EQ(net->devices_bricked, 0u);
  EXPECT_EQ(net->devices_unreachable, 0u);
  EXPECT_GT(net->devices_updated, 150u);
  EXPECT_GT(net->checkins, 5000u);  // the agents really polled, over HTTP
  // Satellite downloads are longer than a link window: they were cut and resumed.
  bool resumed = false;
  for (const auto& line : timeline) {
    if (line.find("[network]") != std::string::npos &&
        line.find("downloads were cut") != std::string::npos) {
      resumed = std::atoi(line.substr(line.find("[network] ") + 10).c_str()) > 0;
    }
  }
  EXPECT_TRUE(resumed) << "no download was cut and resumed";

  // Every device's own disk agrees with the server.
  auto store = open_sqlite_store(tmp.path + "/server.db");
  ASSERT_TRUE(store.ok()) << store.error().to_string();
  auto devices = (*store)->list_devices();
  ASSERT_TRUE(devices.ok());
  ASSERT_EQ(devices->size(), s.devices);
  Artifact next;
  next.name = "firmware";
  next.version = "1.1.0";
  const std::string new_image = artifact_payload(next, 64 * 1024);
  uint32_t on_new = 0, rev_c_tried = 0;
  for (const Device& d : *devices) {
    SCOPED_TRACE(d.id);
    const std::string dir = tmp.path + "/net/devices/" + d.id;
    ASSERT_TRUE(fs::exists(dir + "/data/device.key")) << "the agent never started";
    // Enrolled with its own key, and accepted.
    EXPECT_EQ(d.enrollment, Enrollment::kAccepted);
    EXPECT_FALSE(d.public_key.empty());
    // Not in the middle of anything, with nothing left to tell.
    auto record = agent::UpdateStateFile(real_file_system(), dir + "/data/update.json").load();
    ASSERT_TRUE(record.ok()) << record.error().to_string();
    EXPECT_EQ(record->step, agent::UpdateStep::kIdle);
    EXPECT_FALSE(record->report.has_value());
    // Running the slot it committed, no trial armed: not bricked.
    agent::FileBootloader boot(real_file_system(), dir + "/boot.state");
    auto booted = boot.booted();
    auto committed = boot.committed();
    auto trial = boot.trial();
    ASSERT_TRUE(booted.ok() && committed.ok() && trial.ok());
    EXPECT_EQ(*booted, *committed);
    EXPECT_FALSE(trial->has_value());
    // The version the device says it runs is the server's view of it.
    const auto inventory = nlohmann::json::parse(read(dir + "/data/inventory.json"));
    const std::string version = inventory.at("firmware").get<std::string>();
    std::string server_version;
    for (const auto& c : d.installed)
      if (c.component == "firmware") server_version = c.version;
    EXPECT_EQ(version, server_version);
    const std::string running = read(dir + (*committed == agent::Slot::kA ? "/slot-a" : "/slot-b"));
    if (version == "1.1.0") {
      ++on_new;
      EXPECT_NE(d.hardware_revision, "rev-c");
      EXPECT_EQ(*committed, agent::Slot::kB);
      EXPECT_TRUE(running == new_image) << "the committed slot is not the 1.1.0 image";
    } else {
      EXPECT_EQ(version, "1.0.0");
      EXPECT_EQ(*committed, agent::Slot::kA);
      if (d.hardware_revision == "rev-c" && fs::exists(dir + "/slot-b")) {
        // It wrote the image, failed the trial boot, and fell back.
        EXPECT_TRUE(read(dir + "/slot-b") == new_image);
        ++rev_c_tried;
      }
    }
  }
  // Devices still on 1.1.0: the updated ones and those that became unhealthy on it.
  EXPECT_GE(on_new, net->devices_updated);
  EXPECT_LE(on_new, net->devices_updated + net->devices_failed);
  EXPECT_EQ(rev_c_tried, net->devices_fell_back);
}

// Real agents on satellite links (up 20 minutes at 02:30 and 14:30, windows 22:00-06:00, a
// fifth with quiet hours until 01:00): they hold the verified image for their window and
// install, reboot and commit only inside it — the same zero the twin reaches.
TEST(NetworkSim, RealAgentsOnIntermittentLinksKeepEveryStepInsideTheirWindows) {
  const Scenario s = testing::intermittent_fleet();
  TempDir tmp;
  SimOptions o;
  o.devices = 80;
  o.network = net_options(tmp.path + "/net", 16 * 1024);
  auto r = run_simulation(s, o);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(r->windows.installs_outside, 0u);
  EXPECT_EQ(r->windows.reboots_outside, 0u);
  EXPECT_EQ(r->windows.commits_outside, 0u);
  EXPECT_GT(r->windows.held, 0u);  // those that downloaded at 14:30 waited for the night
  EXPECT_EQ(r->rollout_state, "completed");
  EXPECT_EQ(r->devices_updated, r->devices_eligible);
}

TEST(NetworkSim, SameSeedGivesTheSameReport) {
  const Scenario s = network_scenario();
  SimOptions o;
  o.devices = 60;
  o.network = NetworkSimOptions{};
  auto a = run_simulation(s, o);
  auto b = run_simulation(s, o);
  ASSERT_TRUE(a.ok()) << a.error().to_string();
  ASSERT_TRUE(b.ok()) << b.error().to_string();
  EXPECT_EQ(a->to_json(false), b->to_json(false));
  EXPECT_GT(a->checkins, 0u);
}

TEST(NetworkSim, RefusesWhatItCannotDo) {
  const Scenario s = network_scenario();
  SimOptions preflight;
  preflight.preflight = true;
  preflight.network = NetworkSimOptions{};
  auto r = run_simulation(s, preflight);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);

  TempDir tmp;
  std::ofstream(tmp.path + "/something") << "x";
  SimOptions busy;
  busy.devices = 5;
  busy.network = net_options(tmp.path, 4096);
  r = run_simulation(s, busy);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(r.error().message.find("not empty"), std::string::npos) << r.error().message;
  EXPECT_EQ(read(tmp.path + "/something"), "x");  // nothing touched

  SimOptions empty;
  empty.devices = 5;
  empty.network = net_options("", 1024);  // too coarse to cut a download at
  r = run_simulation(s, empty);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
}

TEST(NetworkSim, AGivenDirectoryIsKeptForInspection) {
  const Scenario s = network_scenario();
  TempDir tmp;
  SimOptions o;
  o.devices = 8;
  o.network = net_options(tmp.path + "/kept", 4096);
  auto r = run_simulation(s, o);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_TRUE(fs::exists(tmp.path + "/kept/devices/dev-000001/data/device.key"));
  EXPECT_TRUE(fs::exists(tmp.path + "/kept/server/artifacts"));
}

// The twin's server is the one `drover serve` assembles: besides the device API its agents
// use, the operator API, /metrics and the health check answer on it, over the twin's fleet.
TEST(NetworkSim, TheLoopbackServerIsTheWholeServerStack) {
  drover::testing::Fleet f;
  f.add_devices(3, "rev-a");
  TempDir tmp;
  auto server = start_loopback_server(f.store(), *f.engine, *f.service, f.clock,
                                      tmp.path + "/artifacts", "sim-token");
  ASSERT_TRUE(server.ok()) << server.error().to_string();
  auto token = (*server)->tokens().create("twin", Role::kViewer, Duration(0));
  ASSERT_TRUE(token.ok());
  auto client = http::HttpClient::create(loopback_url(**server));
  ASSERT_TRUE(client.ok());
  const http::Headers bearer = {{"Authorization", "Bearer " + token->text}};

  auto devices = (*client)->request("GET", "/api/v1/devices", {}, bearer);
  ASSERT_TRUE(devices.ok()) << devices.error().to_string();
  ASSERT_EQ(devices->status, 200) << devices->body;
  EXPECT_EQ(nlohmann::json::parse(devices->body)["devices"].size(), 3u);
  auto anonymous = (*client)->request("GET", "/api/v1/devices");
  ASSERT_TRUE(anonymous.ok());
  EXPECT_EQ(anonymous->status, 401);

  auto health = (*client)->request("GET", "/api/v1/health");
  ASSERT_TRUE(health.ok());
  EXPECT_EQ(nlohmann::json::parse(health->body)["devices"], 3);
  auto metrics = (*client)->request("GET", "/metrics");  // loopback: no token needed
  ASSERT_TRUE(metrics.ok());
  EXPECT_EQ(metrics->status, 200);
  // The requests above were counted, by route.
  EXPECT_NE(
      metrics->body.find("drover_http_requests_total{method=\"GET\",route=\"/api/v1/devices\","
                         "status=\"200\"} 1"),
      std::string::npos)
      << metrics->body.substr(0, 2000);
}

// The twin's view of a server's simulated clock: waiting for a time moves the server there
// (its engine's ticks run on the way), so a run against it takes no real time.
class DrivingClock final : public Clock {
 public:
  explicit DrivingClock(drover::testing::SharedManualClock& server) : server_(server) {}
  Timestamp now() const override { return server_.now(); }
  TimerId schedule_at(Timestamp at, Callback cb) override {
    if (at > server_.now()) server_.advance(at - server_.now());
    ++waits;
    cb();
    return waits;
  }
  bool cancel(TimerId) override { return false; }
  uint64_t waits = 0;

 private:
  drover::testing::SharedManualClock& server_;
};

// A run against a server elsewhere keeps pace with that server's clock, whichever it is:
// here a simulated one, so the real-time scenario runs without waiting for the wall clock,
// at the scenario's own date, and ends as the twin does — on the server's books too.
// A server on a simulated clock, with the whole server stack on loopback, for a run against
// it as against a server elsewhere.
struct SimulatedServer {
  explicit SimulatedServer(Timestamp start) : server_clock(start), pace(server_clock) {
    engine_options.tick_interval = seconds(1);  // as the scenario's engine_tick
    engine = std::make_unique<RolloutEngine>(*store, server_clock, engine_options);
    EXPECT_TRUE(engine->load().ok());
    service = std::make_unique<DeviceService>(*store, *engine);
    EXPECT_TRUE(service->load().ok());
    auto started = start_loopback_server(*store, *engine, *service, server_clock,
                                         tmp.path + "/server", "factory-secret");
    EXPECT_TRUE(started.ok()) << started.error().to_string();
    if (started.ok()) server = std::move(*started);
  }
  // Options for a run against it, its agents' files under `tmp`.
  SimOptions options() {
    SimOptions o;
    o.network = net_options(tmp.path + "/net", 4096);
    o.network->server = loopback_url(*server);
    auto token = server->tokens().create("sim", Role::kOperator, Duration(0));
    EXPECT_TRUE(token.ok());
    o.network->token = token.ok() ? token->text : "";
    o.network->enrollment_token = "factory-secret";
    o.network->server_clock = &pace;
    return o;
  }

  drover::testing::SharedManualClock server_clock;
  DrivingClock pace;
  std::unique_ptr<Store> store = make_memory_store();
  EngineOptions engine_options;
  std::unique_ptr<RolloutEngine> engine;
  std::unique_ptr<DeviceService> service;
  TempDir tmp;
  std::unique_ptr<http::ServerStack> server;
};

// The twin's outcome and a run of real agents against a server agree, line by line.
void expect_same_outcome(const Report& remote, const Report& twin) {
  EXPECT_EQ(outcome_lines(remote).size(), outcome_lines(twin).size());
  for (const std::string& field :
       {std::string("state "), std::string("eligible "), std::string("updated "),
        std::string("failed "), std::string("fell back "), std::string("bricked ")}) {
    auto line = [&](const Report& r) {
      for (const std::string& l : outcome_lines(r))
        if (l.starts_with(field)) return l;
      return std::string("(none)");
    };
    EXPECT_EQ(line(remote), line(twin));
  }
}

// A run against a server elsewhere keeps pace with that server's clock, whichever it is:
// here a simulated one, so the real-time scenario runs without waiting for the wall clock,
// at the scenario's own date, and ends as the twin does — on the server's books too.
TEST(NetworkSim, ARemoteRunKeepsThePaceOfTheServersClock) {
  auto scenario = load_scenario(std::string(DROVER_SOURCE_DIR) + "/tests/sim/data/realtime.json");
  ASSERT_TRUE(scenario.ok()) << scenario.error().to_string();
  auto twin = run_simulation(*scenario, {});
  ASSERT_TRUE(twin.ok()) << twin.error().to_string();

  SimulatedServer at(scenario->start);
  ASSERT_NE(at.server, nullptr);
  auto remote = run_simulation(*scenario, at.options());
  ASSERT_TRUE(remote.ok()) << remote.error().to_string();

  expect_same_outcome(*remote, *twin);
  ASSERT_EQ(remote->halted_strata.size(), 1u);
  EXPECT_EQ(remote->halted_strata[0].hardware_revision, "rev-c");
  // The run waited on the server's clock, which it moved from the scenario's date to its end
  // (the wall clock, months later, played no part).
  EXPECT_GT(at.pace.waits, 0u);
  EXPECT_GE(at.server_clock.now(),
            scenario->start + seconds(static_cast<int64_t>(remote->simulated_seconds)));
  EXPECT_LT(at.server_clock.now(), scenario->start + hours(1));
  // The server's own books agree.
  auto progress = at.engine->progress("rollout-0001");
  ASSERT_TRUE(progress.ok()) << progress.error().to_string();
  EXPECT_EQ(progress->total[DeploymentState::kSucceeded], remote->devices_updated);
}

// The devices a run sets up on a server carry the scenario's quiet hours (and tags), which
// the server then narrows their windows by: here an hour at noon, far from the run's minutes,
// so the rollout ends as without them — its offers carrying windows, the first open since
// before now, which the agents take as open.
TEST(NetworkSim, ARemoteRunRegistersTheDevicesQuietHours) {
  auto scenario = load_scenario(std::string(DROVER_SOURCE_DIR) + "/tests/sim/data/realtime.json");
  ASSERT_TRUE(scenario.ok()) << scenario.error().to_string();
  const MaintenanceWindow noon{0x7f, 12 * 60, 60};
  scenario->quiet_hours = {QuietHoursSpec{1.0, {noon}}};
  SimulatedServer at(scenario->start);
  ASSERT_NE(at.server, nullptr);
  auto remote = run_simulation(*scenario, at.options());
  ASSERT_TRUE(remote.ok()) << remote.error().to_string();
  auto devices = at.store->list_devices();
  ASSERT_TRUE(devices.ok());
  ASSERT_EQ(devices->size(), 40u);
  for (const Device& d : *devices) {
    ASSERT_EQ(d.quiet_hours.size(), 1u) << d.id;
    EXPECT_EQ(d.quiet_hours[0], noon) << d.id;
  }
  EXPECT_EQ(remote->rollout_state, "completed_partial");
  EXPECT_GT(remote->devices_updated, 0u);
  EXPECT_EQ(remote->devices_unreachable, 0u);
  // And it ends as the twin does with the same quiet hours.
  auto twin = run_simulation(*scenario, {});
  ASSERT_TRUE(twin.ok()) << twin.error().to_string();
  expect_same_outcome(*remote, *twin);
}

}  // namespace
}  // namespace drover::sim
