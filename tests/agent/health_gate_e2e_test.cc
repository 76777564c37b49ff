// Health gates end to end over HTTP (docs/gates.md, "Health gates"): the control plane's HTTP
// stack as `drover serve` assembles it (ServerStack: the device API, telemetry ingest, the
// operator API), its rollout engine judging health from the telemetry store
// (TelemetryHealth), and 24 real agents — Agent with its HTTP link and the ab-slot module over
// a file bootloader, TelemetryAgent with the system collectors reading each device's own
// /proc/meminfo — all on one ManualClock. The operator uploads, plans and starts over HTTP
// as the CLI would. A build that leaks memory on the devices that run it is halted in its
// canary on memory_available_bytes, one that reboots its devices on reboots_total (counted
// by the reboots collector from each boot's new boot id); the operator API says why with the
// effect's size, and the agents switch back to the version they ran. A build that changes
// nothing goes through the canary's gate on both metrics and completes.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "../common/fleet_fixture.h"
#include "agent/agent.h"
#include "agent/bootloader.h"
#include "agent/server_link.h"
#include "agent/telemetry_agent.h"
#include "agent/update_module.h"
#include "base/file_system.h"
#include "base/random.h"
#include "health/telemetry_health.h"
#include "telemetry/telemetry_service.h"
#include "telemetry/time_series_store.h"
#include "transport/http/client.h"
#include "transport/http/stack.h"

namespace drover::agent {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr double kMiB = 1024.0 * 1024.0;
const std::string kOld = "1.0.0", kNew = "3.0.0";

// A uniform draw in [-1, 1) from a hash.
double jitter(uint64_t h) { return static_cast<double>(mix64(h) >> 11) * 0x1.0p-52 - 1; }

double days(Duration d) { return std::chrono::duration<double>(d).count() / 86400; }

std::string payload(const std::string& version) {
  std::string s(64 << 10, '\0');
  for (size_t i = 0; i < s.size(); ++i)
    s[i] = static_cast<char>(stable_hash(version, i / 8) >> i % 8);
  return s;
}

// What the new build does on the devices that run it: loses `leak_per_day` of the available
// memory a day; reboots every `reboot_every` (0: never).
struct Build {
  double leak_per_day = 0;
  Duration reboot_every{0};
};

// One device: an update agent and a telemetry agent sharing one HTTP link, its slots, its
// bootloader and the /proc files its collectors read (meminfo, the boot id).
struct Device {
  std::string id, dir;
  uint64_t seed = 0;
  uint64_t boots = 0;
  Timestamp next_reboot{};
  std::unique_ptr<FileBootloader> boot;
  std::unique_ptr<ServerLink> link;
  std::unique_ptr<UpdateModule> module;
  std::unique_ptr<Agent> agent;
  std::unique_ptr<TelemetryAgent> telemetry;
  Timestamp next_step{}, next_collect{};
  std::optional<Timestamp> running_new_since;  // when it was first seen running the new build
};

// The server's side, its fleet of agents, and an operator's HTTP client.
class World {
 public:
  explicit World(Build build) : build_(build) {
    std::string tmpl =
        (fs::exists("/dev/shm") ? "/dev/shm" : "/tmp") + std::string("/drover-health-e2e-XXXXXX");
    if (::mkdtemp(tmpl.data()) == nullptr) {
      ADD_FAILURE() << "mkdtemp " << tmpl << ": " << std::strerror(errno);
      std::abort();
    }
    dir_ = tmpl;
    start_server();
    for (int i = 0; i < 24 && !::testing::Test::HasFatalFailure(); ++i) add_device(i);
  }
  ~World() {
    devices_.clear();
    stack_.reset();
    telemetry_.reset();
    service_.reset();
    engine_.reset();
    health_.reset();
    tsdb_.reset();
    fs::remove_all(dir_);
  }

  // The operator's call, as the CLI makes it; the answer's status and JSON body.
  std::pair<int, json> call(const std::string& method, const std::string& path,
                            const std::string& body = "") {
    auto r = operator_->request(
        method, path, body,
        {{"Authorization", "Bearer " + token_}, {"Content-Type", "application/json"}});
    if (!r.ok()) {
      ADD_FAILURE() << method << " " << path << ": " << r.error().to_string();
      return {0, json()};
    }
    return {r->status, json::parse(r->body, nullptr, false)};
  }

  // Every agent's steps and every collector round that falls due within `span`, in time order.
  void run(Duration span) {
    const Timestamp until = clock_.now() + span;
    while (!::testing::Test::HasFatalFailure()) {
      Timestamp next = until;
      for (Device& d : devices_) next = std::min({next, d.next_step, d.next_collect});
      clock_.advance_to(std::max(next, clock_.now()));
      const Timestamp now = clock_.now();
      for (Device& d : devices_) {
        if (d.running_new_since && build_.reboot_every > Duration(0) && d.next_reboot <= now) {
          reboot(d);
          if (::testing::Test::HasFatalFailure()) return;
        }
        if (d.next_step <= now) {
          d.next_step = now + std::max(d.agent->run_once(), seconds(1));
          const bool runs_new = d.agent->inventory().at("firmware") == kNew;
          if (runs_new && !d.running_new_since) {
            d.running_new_since = now;
            d.next_reboot = now + build_.reboot_every;
          }
          if (!runs_new) d.running_new_since.reset();
        }
        if (d.next_collect <= now) {
          write_meminfo(d, now);
          d.next_collect = now + std::max(d.telemetry->run_once(), seconds(1));
        }
      }
      if (now >= until) return;
    }
  }

  // Creates and starts the plan over the operator API: half the fleet as a canary soaking an
  // hour, gated on `health` (a plan's gate.health entry) over 2 h windows, rolled back on a
  // halt.
  std::string start_rollout(const std::string& health) {
    const auto [created, rollout] = call("POST", "/api/v1/rollouts", R"({
        "name": "patch", "artifact": {"name": "firmware", "version": "3.0.0"},
        "stages": [{"name": "canary", "percent": 50, "soak": "1h"},
                   {"name": "all", "percent": 100}],
        "gate": {"min_sample": 3, "max_failure_rate": 0.1, "health_window": "2h",
                 "health": [)" + health + R"(]},
        "on_failure": "rollback"})");
    EXPECT_EQ(created, 201) << rollout.dump();
    const std::string id = rollout.value("id", "");
    EXPECT_EQ(call("POST", "/api/v1/rollouts/" + id + "/start").first, 200);
    return id;
  }

  size_t running(const std::string& version) const {
    return static_cast<size_t>(std::count_if(
        devices_.begin(), devices_.end(),
        [&](const Device& d) { return d.agent->inventory().at("firmware") == version; }));
  }
  size_t ever_ran_new() const { return ran_new_.size(); }
  uint64_t samples_sent() const {
    uint64_t n = 0;
    for (const Device& d : devices_) n += d.telemetry->status().samples_sent;
    return n;
  }

 private:
  void start_server() {
    auto opened = telemetry::TimeSeriesStore::open(real_file_system(), dir_ + "/tsdb", clock_);
    ASSERT_TRUE(opened.ok()) << opened.error().to_string();
    tsdb_ = std::move(*opened);
    health_ = std::make_unique<health::TelemetryHealth>(*tsdb_);
    WriteBatch b;
    b.sites.push_back(Site{"open", "UTC", {}});
    ASSERT_TRUE(store_->apply(b).ok());
    EngineOptions eo;
    eo.health = health_.get();
    engine_ = std::make_unique<RolloutEngine>(*store_, clock_, eo);
    ASSERT_TRUE(engine_->load().ok());
    FleetOptions fo;
    fo.poll_interval = minutes(10);
    service_ = std::make_unique<DeviceService>(*store_, *engine_, fo);
    ASSERT_TRUE(service_->load().ok());
    telemetry_ = std::make_unique<telemetry::TelemetryService>(*tsdb_, *service_, *store_, clock_);
    http::StackOptions so;
    so.server.threads = 1;
    so.artifact_dir = dir_ + "/artifacts";
    so.token_secret = std::string(32, 'k');
    so.auth.enrollment_tokens = {"factory"};
    so.telemetry = telemetry_.get();
    auto stack = http::ServerStack::start(*store_, nullptr, *engine_, *service_, clock_, so);
    ASSERT_TRUE(stack.ok()) << stack.error().to_string();
    stack_ = std::move(*stack);
    url_ = "http://127.0.0.1:" + std::to_string(stack_->port());
    auto token = stack_->tokens().create("release", Role::kOperator, hours(24 * 30));
    ASSERT_TRUE(token.ok()) << token.error().to_string();
    token_ = token->text;
    operator_ = std::move(http::HttpClient::create(url_).value());
    for (const std::string& v : {kOld, kNew}) {
      const auto [status, body] =
          call("PUT", "/api/v1/artifacts/firmware/" + v + "?device_type=ctl", payload(v));
      ASSERT_EQ(status, 201) << body.dump();
    }
  }

  void add_device(int i) {
    Device& d = devices_.emplace_back();
    d.id = "ctl-" + std::to_string(100 + i);
    d.dir = dir_ + "/" + d.id;
    d.seed = static_cast<uint64_t>(i) + 1;
    fs::create_directories(d.dir + "/root/proc/sys/kernel/random");
    fs::create_directories(d.dir + "/data");
    std::ofstream(d.dir + "/slot-a") << payload(kOld);
    power_on(d);
  }

  // The device boots: a new boot id, and its agents start over what is on its disk.
  void power_on(Device& d) {
    std::ofstream(d.dir + "/root/proc/sys/kernel/random/boot_id") << d.id << "-boot-" << d.boots;
    d.boot = std::make_unique<FileBootloader>(real_file_system(), d.dir + "/boot.state");
    auto key = load_or_create_key(real_file_system(), d.dir + "/device.key");
    ASSERT_TRUE(key.ok()) << key.error().to_string();
    HttpLinkOptions lo;
    lo.server = url_;
    lo.device_id = d.id;
    lo.device_type = "ctl";
    lo.hardware_revision = "rev-a";
    lo.site = "open";
    lo.enrollment_token = "factory";
    auto link = make_http_link(lo, std::move(*key), clock_);
    ASSERT_TRUE(link.ok()) << link.error().to_string();
    d.link = std::move(*link);
    Device* dev = &d;
    d.module = make_ab_slot_module(
        {d.dir + "/slot-a", d.dir + "/slot-b", [dev] { return dev->boot->boot(true); }}, *d.boot);
    AgentOptions ao;
    ao.data_dir = d.dir + "/data";
    ao.default_poll = minutes(10);
    d.agent = std::make_unique<Agent>(ao, *d.link, *d.module, system_commands(), clock_, d.seed);
    const Status started = d.agent->start({{"firmware", kOld}});
    ASSERT_TRUE(started.ok()) << started.error().to_string();
    TelemetryOptions to;
    to.collectors.root = d.dir + "/root";
    to.collectors.boots_file = d.dir + "/boots";
    to.collectors.cpu = to.collectors.disk = to.collectors.temperature = false;
    to.collectors.uptime = to.collectors.link = to.collectors.battery = false;
    to.interval = minutes(5);
    to.send_every = minutes(30);
    to.queue.dir = d.dir + "/queue";
    to.queue.stream_seed = d.seed;
    d.telemetry = std::make_unique<TelemetryAgent>(to, *d.link, clock_, d.seed);
    write_meminfo(d, clock_.now());
    ASSERT_TRUE(d.telemetry->start().ok());
    d.next_step = d.next_collect = clock_.now();
  }

  // A reboot the build causes: everything in memory is gone (unsent samples are on disk).
  void reboot(Device& d) {
    d.telemetry.reset();
    d.agent.reset();
    d.module.reset();
    d.link.reset();
    d.boot.reset();
    ++d.boots;
    d.next_reboot = clock_.now() + build_.reboot_every;
    power_on(d);
  }

  // The device's memory now: 300 MiB available, a trend of its own (within ±2 MiB a day),
  // 1 MiB of noise; the build's leak a day less while it runs the new build.
  void write_meminfo(Device& d, Timestamp now) {
    const uint64_t h = stable_hash(d.id);
    double available = 300 * kMiB + 2 * kMiB * jitter(h) * days(now - start_) +
                       kMiB * jitter(h ^ static_cast<uint64_t>(now.time_since_epoch().count()));
    if (d.running_new_since) {
      available -= build_.leak_per_day * days(now - *d.running_new_since);
      ran_new_.insert(d.id);
    }
    std::ofstream(d.dir + "/root/proc/meminfo")
        << "MemTotal: 1048576 kB\nMemAvailable: " << static_cast<int64_t>(available / 1024)
        << " kB\n";
  }

  Build build_;
  std::string dir_, url_, token_;
  ManualClock clock_{drover::testing::at("2026-06-01T00:00:00Z")};
  const Timestamp start_ = clock_.now();
  std::unique_ptr<Store> store_ = make_memory_store();
  std::unique_ptr<telemetry::TimeSeriesStore> tsdb_;
  std::unique_ptr<health::TelemetryHealth> health_;
  std::unique_ptr<RolloutEngine> engine_;
  std::unique_ptr<DeviceService> service_;
  std::unique_ptr<telemetry::TelemetryService> telemetry_;
  std::unique_ptr<http::ServerStack> stack_;
  std::unique_ptr<http::HttpClient> operator_;
  std::deque<Device> devices_;  // a deque: the module's reboot holds its device's address
  std::set<std::string> ran_new_;
};

// The plan watches both: the memory's slope and the reboots' increase.
const std::string kHealth =
    R"({"metric": "memory_available_bytes", "measure": "slope", "worse": "lower"},
       {"metric": "reboots_total", "measure": "increase", "worse": "higher"})";

// The gate's status on `metric` at the rollout's root, from GET /api/v1/rollouts/{id}.
json health_on(const json& progress, const std::string& metric) {
  for (const json& h : progress["health"]) {
    if (h.value("metric", "") == metric && h.value("group", "") == "all") return h;
  }
  ADD_FAILURE() << "no health gate on " << metric << ": " << progress.dump(2);
  return json::object();
}

// The rollout of `build` after the window before the offer, the canary and its windows; what
// the operator API says of it then.
json roll_out(World& w, Duration after) {
  if (::testing::Test::HasFatalFailure()) return json::object();  // the world was not built
  w.run(hours(3));                                                // the window before the offer
  const std::string id = w.start_rollout(kHealth);
  w.run(after);
  const auto [status, rollout] = w.call("GET", "/api/v1/rollouts/" + id);
  EXPECT_EQ(status, 200) << rollout.dump();
  return rollout;
}

// The rollout halted in its canary on `metric` alone: the reason names it and the effect's
// size (returned: the median change of an updated device less its partner's); the group's
// gate keeps the pairs that halted it; the other half never offered; every device that took
// the build back on the one it ran.
double expect_halted_on(World& w, const json& rollout, const std::string& metric,
                        const std::string& heading) {
  const json& progress = rollout["progress"];
  const json& halted = progress["outcome"]["halted"];
  if (halted.size() != 1) {
    ADD_FAILURE() << progress.dump(2);
    return 0;
  }
  const std::string why = halted[0].value("reason", "");
  std::printf("halted: %s\n", why.c_str());
  EXPECT_EQ(why.rfind("health: " + metric + " (" + heading + ")", 0), 0u) << why;
  EXPECT_NE(why.find("the updated device was the worse in 12 of 12 untied pairs (0 tied)"),
            std::string::npos)
      << why;
  const json h = health_on(progress, metric);
  EXPECT_TRUE(h.value("halted", false)) << h.dump();
  EXPECT_EQ(h.value("pairs", 0), 12) << "a halted group keeps the pairs that halted it";
  EXPECT_EQ(h.value("worse", 0), 12) << h.dump();
  EXPECT_GE(h.value("evidence", 0.0), h.value("threshold", 1e9)) << h.dump();
  EXPECT_EQ(halted[0].value("never_offered", 0), 12) << halted.dump();
  EXPECT_EQ(halted[0].value("not_reverted", -1), 0) << halted.dump();
  EXPECT_EQ(w.ever_ran_new(), 12u);
  EXPECT_EQ(w.running(kNew), 0u);
  EXPECT_EQ(w.running(kOld), 24u);
  double shift = 0;
  const size_t at = why.find("median change updated - not updated ");
  EXPECT_NE(at, std::string::npos) << why;
  if (at == std::string::npos ||
      std::sscanf(why.c_str() + at, "median change updated - not updated %lf", &shift) != 1) {
    ADD_FAILURE() << why;
  }
  return shift;
}

TEST(HealthGateE2e, ABuildThatLeaksMemoryIsHaltedInItsCanaryAndTheAgentsSwitchBack) {
  World w(Build{48 * kMiB, Duration(0)});
  const json rollout = roll_out(w, hours(6));
  const double shift = expect_halted_on(w, rollout, "memory_available_bytes",
                                        "slope over 2h windows, lower is worse");
  // The updated devices lose 48 MiB a day more than their partners, within the noise of a
  // slope over 24 readings.
  EXPECT_LT(shift, -30 * kMiB);
  EXPECT_GT(shift, -66 * kMiB);
  EXPECT_GT(w.samples_sent(), 24u * 9 * 12 * 2) << "a reading every 5 minutes for 9 h";
}

// Every 40 minutes a device on the new build reboots: its agents start again over their
// disk, its boot id is new, and the reboots collector counts one more.
TEST(HealthGateE2e, ABuildThatRebootsIsHaltedOnTheRebootsItsDevicesCount) {
  World w(Build{0, minutes(40)});
  const json rollout = roll_out(w, hours(6));
  const double shift =
      expect_halted_on(w, rollout, "reboots_total", "increase over 2h windows, higher is worse");
  EXPECT_GE(shift, 2);  // two or three reboots counted in a 2 h window, the partners none
  EXPECT_LE(shift, 4);
}

TEST(HealthGateE2e, ABuildThatChangesNothingPassesTheCanaryAndCompletes) {
  World w(Build{});
  const json rollout = roll_out(w, hours(12));
  EXPECT_EQ(rollout.value("state", ""), "completed") << rollout.dump(2);
  for (const std::string metric : {"memory_available_bytes", "reboots_total"}) {
    const json h = health_on(rollout["progress"], metric);
    EXPECT_FALSE(h.value("halted", true)) << h.dump();
    EXPECT_EQ(h.value("pairs", 0), 12) << h.dump();
  }
  EXPECT_EQ(w.running(kNew), 24u);
}

}  // namespace
}  // namespace drover::agent
