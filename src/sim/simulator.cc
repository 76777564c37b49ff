// The twin's run: it sets up the world, the control plane and the device side, starts the
// rollout when the scenario says, runs the devices' events and the plane's timers in time
// order until the rollout is over (or the horizon), lets the devices deliver what they
// still hold, and builds the report.
//
// The parts, each its own unit, with one-way dependencies:
//   FleetWorld (fleet_world.h)      the generated fleet, links, windows, defects, event queue
//   ControlPlane (control_plane.h)  the real services here (LocalControlPlane) or a server
//                                   elsewhere (RemoteControlPlane)
//   DeviceSide (device_side.h)      the devices: the in-process DeviceModel, or AgentDevices
//   Narrator (narrator.h)           the timeline
//   build_report (report_builder.h) the report
#include "sim/simulator.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>

#include "base/random.h"
#include "sim/agent_devices.h"
#include "sim/device_model.h"
#include "sim/fleet_health.h"
#include "sim/fleet_world.h"
#include "sim/local_plane.h"
#include "sim/narrator.h"
#include "sim/remote_plane.h"
#include "sim/report_builder.h"

namespace drover::sim {
namespace {

class Simulator {
 public:
  Simulator(const Scenario& scenario, const SimOptions& options)
      : sc_(scenario),
        opt_(options),
        seed_(options.seed.value_or(scenario.seed)),
        clock_(scenario.start),
        world_(scenario, seed_, options.preflight, clock_),
        narrator_(scenario.start, clock_, options.timeline, options.network.has_value()) {}
  ~Simulator();
  Simulator(const Simulator&) = delete;
  Simulator& operator=(const Simulator&) = delete;

  Result<Report> run();

 private:
  Status set_up();
  // The control plane of the run: in this process (the plain twin; a network run's server on
  // loopback), or a server elsewhere.
  Result<std::unique_ptr<ControlPlane>> make_plane();
  // Network runs: the agents' directory.
  Status prepare_net_dir();
  void schedule_rollout();                       // created and started at rollout_start_after
  std::string payload(const Artifact& a) const;  // what it carries over the wire
  bool remote() const { return opt_.network && !opt_.network->server.empty(); }
  void handle(const Event& e);
  // Tells the fleet's milestones and whether the rollout is over.
  void check_done();
  // While draining: whether no device is mid-update or holding a report.
  bool drained() const;

  const Scenario& sc_;
  const SimOptions& opt_;
  uint64_t seed_;
  ManualClock clock_;
  FleetWorld world_;
  Narrator narrator_;  // before the plane, which may speak until it is gone
  RunState run_;
  FleetHealth health_{world_, run_, seed_};  // the battery data health gates judge
  std::string net_dir_;                      // network runs: the agents' and the server's files
  bool remove_net_dir_ = false;
  std::unique_ptr<ControlPlane> plane_;
  std::unique_ptr<DeviceSide> devices_;  // declared after the plane: the agents go first
  bool rollout_over_ = false;            // terminal, nothing left in flight
  int next_milestone_ = 1;               // tenths of the eligible fleet
  // The least an artifact carries over the wire in a network run: a cut download keeps
  // the share of it that arrived, so the payload must not be too coarse.
  static constexpr uint64_t kMinPayload = 4096;
  // Events prepared for at a time: enough lookups in flight to overlap their cache misses,
  // few enough that what they fetch is still cached when they run (64 measured best).
  static constexpr size_t kWarmBatch = 64;
};

Simulator::~Simulator() {
  devices_.reset();  // the agents, then the plane they talk to
  plane_.reset();
  if (remove_net_dir_) {
    std::error_code ec;
    std::filesystem::remove_all(net_dir_, ec);
  }
}

// ---------------------------------------------------------------- set-up

Status Simulator::set_up() {
  if (remote()) {
    if (opt_.store != "memory")
      return invalid_argument(
          "--store is the in-process server's; with --server the server has its own");
    if (opt_.network->enrollment_token.empty())
      return invalid_argument("--server needs the server's enrollment token for the agents");
  }
  if (opt_.network) DROVER_TRY(prepare_net_dir());  // before anything is written or sent
  std::vector<Device> fleet;
  world_.generate(opt_.devices.value_or(sc_.devices), fleet);
  auto plane = make_plane();
  if (!plane.ok()) return plane.error();
  plane_ = std::move(*plane);
  if (opt_.network) {
    DROVER_TRY(
        plane_->set_up(world_.plane_sites(), sc_.artifacts, fleet));  // a copy: agents need it
    const AgentAccess server = plane_->agent_access();
    NetworkFleetOptions fo;
    fo.dir = net_dir_ + "/devices";
    fo.server = server.url;
    fo.enrollment_token = server.enrollment_token;
    fo.ca_file = server.ca_file;
    fo.initial_root = server.initial_root;
    fo.timeout = plane_->answer_timeout();
    fo.component = sc_.rollout.artifact_name;
    for (const auto& c : sc_.installed) fo.installed[c.component] = c.version;
    fo.seed = seed_;
    devices_ =
        std::make_unique<AgentDevices>(std::move(fo), fleet, world_, clock_, narrator_, run_);
  } else {
    DROVER_TRY(plane_->set_up(world_.plane_sites(), sc_.artifacts, std::move(fleet)));
    devices_ = std::make_unique<DeviceModel>(world_, *plane_->devices(), clock_, narrator_, run_);
  }
  // The set-up took its time on the clock the plane keeps: the fleet starts now.
  if (const Timestamp now = plane_->now(); now > clock_.now()) clock_.advance_to(now);
  world_.schedule_arrivals();
  schedule_rollout();
  return ok_status();
}

Result<std::unique_ptr<ControlPlane>> Simulator::make_plane() {
  auto content = [this](const Artifact& a) { return payload(a); };
  if (remote()) {
    // A server elsewhere, on its own clock (NetworkSimOptions::server_clock).
    const NetworkSimOptions& no = *opt_.network;
    auto plane =
        RemoteControlPlane::create({no.server, no.token, no.enrollment_token, no.ca_file,
                                    no.initial_root, no.server_clock, content},
                                   [this](const std::string& line) { narrator_.say(line); });
    if (!plane.ok()) return plane.error();
    return std::unique_ptr<ControlPlane>(std::move(*plane));
  }
  LocalPlaneOptions lo;
  lo.store = opt_.store;
  lo.engine_tick = sc_.engine_tick;
  lo.history = world_.size() <= Report::kHistoryDevices;
  lo.health = &health_;
  if (opt_.network) {
    lo.server_dir = net_dir_ + "/server/artifacts";
    lo.enrollment_token = "sim-" + std::to_string(mix64(seed_ ^ stable_hash(net_dir_)));
    lo.content = content;
  }
  auto plane = LocalControlPlane::create(
      clock_, std::move(lo), [this](const EngineEvent& e) { narrator_.engine_event(e); });
  if (!plane.ok()) return plane.error();
  return std::unique_ptr<ControlPlane>(std::move(*plane));
}

Status Simulator::prepare_net_dir() {
  const NetworkSimOptions& no = *opt_.network;
  if (no.payload_bytes < kMinPayload)
    return invalid_argument("the payload must be at least " + std::to_string(kMinPayload) +
                            " bytes");
  namespace fs = std::filesystem;
  std::error_code ec;
  net_dir_ = no.dir;
  if (net_dir_.empty()) {
    // tmpfs when there is one: thousands of agents fsync their state at every step.
    const std::string base =
        ::access("/dev/shm", W_OK) == 0 ? "/dev/shm" : fs::temp_directory_path(ec).string();
    std::string tmpl = base + "/drover-sim-XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) return io_error("cannot make a directory in " + base);
    net_dir_ = tmpl;
    remove_net_dir_ = true;
  } else if (fs::exists(net_dir_, ec) && !fs::is_empty(net_dir_, ec)) {
    return invalid_argument("the network directory '" + net_dir_ + "' is not empty");
  }
  // Each agent may hold a connection open, and the server its other end.
  rlimit files{};
  if (::getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
    files.rlim_cur = files.rlim_max;
    (void)::setrlimit(RLIMIT_NOFILE, &files);
  }
  return ok_status();
}

void Simulator::schedule_rollout() {
  clock_.schedule_at(clock_.now() + sc_.rollout_start_after, [this] {
    auto id = plane_->start_rollout(sc_.rollout);
    if (!id.ok()) {
      narrator_.say("rollout could not start: " + id.error().to_string());
      rollout_over_ = true;
      return;
    }
    run_.rollout_id = *id;
    run_.rollout_started = clock_.now();
  });
}

std::string Simulator::payload(const Artifact& a) const {
  return artifact_payload(
      a, std::max<uint64_t>(1, std::min(a.size_bytes, opt_.network->payload_bytes)));
}

// ---------------------------------------------------------------- the loop

void Simulator::handle(const Event& e) {
  if (world_.device(e.device).dark) return;  // nothing it does reaches anyone any more
  if (static_cast<EventKind>(e.kind) == EventKind::kLost) {
    world_.go_dark(e.device);
    return;
  }
  devices_->handle(e);
}

bool Simulator::drained() const {
  return std::none_of(world_.devices().begin(), world_.devices().end(), [](const SimDevice& d) {
    return d.phase != Phase::kIdle || d.pending_report >= 0;
  });
}

void Simulator::check_done() {
  if (run_.rollout_id.empty() || rollout_over_) return;
  auto p = plane_->summary(run_.rollout_id);
  if (!p.ok()) return;
  const uint32_t live = p->live.total();
  const uint32_t updated = p->total[DeploymentState::kSucceeded];
  while (next_milestone_ <= 10 && live > 0 &&
         updated * 10 >= static_cast<uint32_t>(next_milestone_) * live) {
    narrator_.say("[progress] " + std::to_string(next_milestone_ * 10) +
                  "% of the devices in healthy strata updated (" + std::to_string(updated) +
                  " of " + std::to_string(live) + ")");
    ++next_milestone_;
  }
  const uint32_t moving = p->total.in_flight() + p->total[DeploymentState::kRevertPending];
  if (is_terminal(p->state) && moving == 0) rollout_over_ = true;
  if (opt_.progress) {
    opt_.progress(static_cast<double>((clock_.now() - sc_.start).count()) /
                      static_cast<double>(sc_.horizon.count()),
                  updated, p->targets);
  }
}

Result<Report> Simulator::run() {
  const auto wall_start = std::chrono::steady_clock::now();
  DROVER_TRY(set_up());
  const Timestamp horizon = clock_.now() + sc_.horizon;  // the start, after a remote set-up
  Timestamp stop = horizon;
  bool all_settled = false;
  int64_t watches = 0;
  const Duration watch_every = plane_->watch_every();
  std::function<void()> watch = [&] {
    check_done();
    if (run_.draining && ++watches % plane_->watches_per_drain_check() == 0)
      all_settled = drained();
    clock_.schedule_after(watch_every, watch);
  };
  clock_.schedule_after(watch_every, watch);

  EventQueue& queue = world_.queue();
  while (true) {
    if (!run_.draining && (rollout_over_ || clock_.now() >= horizon)) {
      run_.draining = true;
      stop = clock_.now() + sc_.drain;
    }
    const Timestamp next_event =
        queue.empty() ? Timestamp::max() : Timestamp(Duration(queue.top().at_ms));
    const Timestamp next_timer = clock_.next_due();
    const Timestamp next = std::min(next_event, next_timer);
    if (next == Timestamp::max() || next > stop) break;
    if (run_.draining && (queue.empty() || all_settled)) break;
    plane_->keep_pace(next);  // a server elsewhere: the pace of its clock
    if (next_timer <= next_event) {
      clock_.run_next();
      narrator_.flush_engine_lines();
      continue;
    }
    const Event e = queue.top();
    if (auto batch = queue.upcoming(kWarmBatch); !batch.empty()) devices_->warm(batch);
    queue.pop();
    clock_.advance_to(Timestamp(Duration(e.at_ms)));
    handle(e);
    narrator_.flush_engine_lines();
  }
  const double wall =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
  check_done();
  if (run_.self_rollbacks > 0) {
    narrator_.say("[devices] " + std::to_string(run_.self_rollbacks) +
                  " failed their trial boot and fell back by themselves");
  }
  if (run_.reverts > 0) {
    narrator_.say("[devices] " + std::to_string(run_.reverts) +
                  " were sent back by the fleet rollback");
  }
  if (const uint64_t cut = devices_->downloads_cut(); cut > 0) {
    narrator_.say("[network] " + std::to_string(cut) +
                  " downloads were cut when a link went down, and resumed with Range requests");
  }
  return build_report({seed_, opt_.preflight, world_, *devices_, run_, *plane_, narrator_},
                      clock_.now(), wall);
}

}  // namespace

// Measured 2026-11-30 at 2476c8b: peak RSS 219,880 KiB at 100,000 devices and 1,770,660 KiB
// at 1,000,000, i.e. 1,764 bytes per device and about 46 MiB besides.
constexpr uint64_t kMeasuredBytesPerDevice = 1764;

uint64_t estimate_memory_bytes(uint32_t devices) {
  // Peak resident size of `drover sim scenarios/million.json --devices N`, measured at
  // 100,000 and 1,000,000 devices (docs/scenarios.md, "Limits"), with a quarter added for
  // what other scenarios (more sites, longer inventories) may need.
  constexpr uint64_t kFixed = 64ull << 20;
  constexpr uint64_t kPerDevice = kMeasuredBytesPerDevice + kMeasuredBytesPerDevice / 4;
  return kFixed + kPerDevice * devices;
}

Result<Report> run_simulation(const Scenario& scenario, const SimOptions& options) {
  if (options.devices && *options.devices == 0)
    return invalid_argument("--devices must be at least 1");
  const uint32_t devices = scenario.fleet.empty() ? options.devices.value_or(scenario.devices)
                                                  : static_cast<uint32_t>(scenario.fleet.size());
  if (options.memory_available && estimate_memory_bytes(devices) > *options.memory_available) {
    auto gib = [](uint64_t b) {
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.1f GiB", static_cast<double>(b) / (1ull << 30));
      return std::string(buf);
    };
    return Error{ErrorCode::kFailedPrecondition,
                 "a fleet of " + std::to_string(devices) + " devices needs about " +
                     gib(estimate_memory_bytes(devices)) + " on the twin, and this machine has " +
                     gib(*options.memory_available) +
                     " available: run fewer devices (--devices) or on a larger machine"};
  }
  if (options.network && options.preflight)
    return invalid_argument("a pre-flight runs on the twin, not over the network");
  if (options.network && !options.network->server.empty()) {
    // The server elsewhere runs on its clock (the wall clock unless one is given): the
    // scenario starts now.
    std::optional<SystemClock> wall;
    Clock* server_clock = options.network->server_clock;
    if (server_clock == nullptr) server_clock = &wall.emplace();
    SimOptions remote = options;
    remote.network->server_clock = server_clock;
    Scenario now = scenario;
    now.start = std::chrono::floor<std::chrono::seconds>(server_clock->now());
    Simulator sim(now, remote);
    return sim.run();
  }
  Simulator sim(scenario, options);
  return sim.run();
}

}  // namespace drover::sim