#include "sim/simulator.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string_view>
#include <thread>

#include "base/clock.h"
#include "base/huge_pages.h"
#include "base/random.h"
#include "base/units.h"
#include "fleet/device_service.h"
#include "rollout/engine.h"
#include "rollout/scheduler.h"
#include "sim/event_queue.h"
#include "sim/network_fleet.h"
#include "sim/remote_plane.h"
#include "store/store.h"

namespace drover::sim {
namespace {

enum class Phase : uint8_t {
  kIdle,
  kDownloading,
  kHolding,  // holds the verified image until a window opens that the install fits in
  kInstalling,
  kRebooting,
  kRollingBack,
};

enum class EventKind : uint8_t {
  kCheckIn,    // poll the server (or wait for the link to come up)
  kPhaseDone,  // the current download / install / reboot step is over (or resumes)
  kUnhealthy,  // a fails_after defect shows itself
  kApply,      // a holding device's window opens: the install starts
};

// 56 bytes, so a million devices' state stays small enough to walk through quickly; the
// id is derived from the index and the inventory is shared with every device that runs the
// same versions.
struct SimDevice {
  uint32_t inventory = 0;  // index into Simulator::inventories_
  uint32_t site = 0;
  uint16_t connectivity = 0;
  uint16_t hardware_revision = 0;  // index into Simulator::revisions_
  Phase phase = Phase::kIdle;
  int8_t pending_report = -1;    // DeploymentEvent not yet delivered (the link was down)
  bool unhealthy_held = false;   // an unhealthy report waits behind pending_report
  bool installed_new = false;    // booted into the rollout's version at least once
  uint8_t quiet = 0;             // 1 + index into Scenario::quiet_hours; 0: none
  bool windowed = false;         // the offer being worked on came with windows
  bool waiting = false;          // holding: the server said not to install yet
  int32_t offer = -1;            // the offer being worked on (index into offers_)
  int32_t report_offer = -1;     // the offer an undelivered report is about
  int32_t unhealthy_offer = -1;  // the offer whose fails_after defect is pending
  uint64_t bytes_left = 0;
  int64_t committed_at_ms = -1;  // when it committed the rollout's version
  int64_t apply_at_ms = -1;      // holding: when its install starts (ms since the epoch)
};

// A device id ("dev-" and the index from 1, zero-padded) without an allocation.
struct DeviceName {
  char text[32];
  size_t size;
  std::string_view view() const { return {text, size}; }
  std::string str() const { return std::string(view()); }
};

using Inventory = std::vector<InstalledComponent>;

std::string pad(uint64_t n, int width) {
  std::string s = std::to_string(n);
  return s.size() >= static_cast<size_t>(width) ? s : std::string(width - s.size(), '0') + s;
}

template <typename T>
size_t pick_share(Rng& rng, const std::vector<T>& items) {
  double total = 0;
  for (const auto& i : items) total += i.share;
  double x = rng.uniform() * total;
  for (size_t k = 0; k < items.size(); ++k) {
    x -= items[k].share;
    if (x < 0) return k;
  }
  return items.size() - 1;
}

class Simulator final : public DeviceWorld {
 public:
  Simulator(const Scenario& scenario, const SimOptions& options)
      : sc_(scenario),
        opt_(options),
        seed_(options.seed.value_or(scenario.seed)),
        rng_(seed_),
        clock_(scenario.start),
        queue_(scenario.start.time_since_epoch().count()) {}
  ~Simulator() override;

  Result<Report> run();

  // DeviceWorld: the agents' surroundings in a network run.
  bool online(uint32_t dev, Timestamp t) override;
  Timestamp online_until(uint32_t dev, Timestamp t) override;
  Timestamp link_up_at(uint32_t dev, Timestamp t) override { return link_open_at_or_after(dev, t); }
  uint64_t bandwidth_bps(uint32_t dev) override;
  uint64_t declared_size(const std::string& component, const std::string& version) override;
  bool defective(uint32_t dev, const std::string& version, bool revert, DefectKind kind) override;
  Duration next_poll(uint32_t dev) override;
  Duration install_time() override { return sc_.install_time; }
  Duration reboot_time() override { return sc_.reboot_time; }

 private:
  Status set_up();
  // Network runs: the server on loopback, the artifacts' content, one agent per device.
  Status set_up_network(const std::vector<Device>& fleet);
  Status set_up_remote();
  Status prepare_net_dir();
  Status start_agents(const std::vector<Device>& fleet, const std::string& server,
                      const std::string& enrollment_token, const std::string& ca_file);
  void schedule_first_check_ins();
  void schedule_rollout();  // created and started at rollout_start_after
  Result<std::string> start_rollout();
  std::string payload(const Artifact& a) const;  // what it carries over the wire
  bool remote() const { return opt_.network && !opt_.network->server.empty(); }
  // The rollout's summary, from the engine or the remote server (narrating what changed).
  Result<RolloutSummary> summary();
  Result<RolloutProgress> progress();
  void narrate(const RolloutProgress& now);
  void step_agent(uint32_t dev);
  void agent_unhealthy(uint32_t dev);
  void generate_fleet(std::vector<Device>& out);
  void schedule(uint32_t dev, Timestamp at, EventKind kind);
  void handle(const Event& e);
  void check_in(uint32_t dev);
  void next_check_in(uint32_t dev);
  void start_offer(uint32_t dev, const UpdateOffer& offer);
  // Holding a verified image: asks the server whether and when to install it.
  void hold_check_in(uint32_t dev);
  void begin_install(uint32_t dev);
  // Whether `t` is inside the device's site window and outside its quiet hours: the twin's
  // own judgement, independent of the windows the server sent.
  bool in_window(uint32_t dev, Timestamp t);
  void continue_download(uint32_t dev);
  void phase_done(uint32_t dev);
  void deliver(uint32_t dev, DeploymentEvent event, int32_t offer);
  bool flush_report(uint32_t dev);
  Timestamp next_online(uint32_t dev, Timestamp t);
  // When the device's link is next up at or after t (no jitter); t for an always-on link.
  Timestamp link_open_at_or_after(uint32_t dev, Timestamp t);
  bool defect(uint32_t dev, const UpdateOffer& offer, DefectKind kind, Duration* after = nullptr);
  Duration jittered(Duration d);
  void on_engine_event(const EngineEvent& e);
  void flush_engine_lines();  // network runs: the lines the engine said on the server's thread
  void check_done();
  void say(const std::string& line);
  // Device-level lines: the first few of each kind, then a count at the end.
  void tell_device(uint32_t dev, const std::string& what, uint32_t& told);
  std::string stamp(Timestamp t) const;
  Report finish(double wall_seconds);
  bool links_ever_meet(uint32_t dev);
  void warm(std::span<const Event> events);
  DeviceName name_of(uint32_t dev) const;
  uint32_t intern(Inventory inventory);

  const Scenario& sc_;
  const SimOptions& opt_;
  uint64_t seed_;
  Rng rng_;
  ManualClock clock_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<RolloutEngine> engine_;
  std::unique_ptr<DeviceService> service_;

  std::vector<Site> sites_;
  std::vector<std::string> site_group_;  // per site: the prefix of its group
  std::vector<std::string> revisions_;
  std::vector<SimDevice, HugePageAllocator<SimDevice>> devices_;
  int id_width_ = 6;                    // digits in a device id
  std::vector<Inventory> inventories_;  // what devices run: a handful of distinct lists
  std::map<Inventory, uint32_t> inventory_ids_;
  std::vector<UpdateOffer> offers_;
  std::map<std::string, int32_t> offer_index_;
  WindowCache links_;        // online windows of intermittent links, per (site, class)
  WindowCache maintenance_;  // each site's maintenance windows
  WindowCache quiet_;        // quiet hours, per (site, Scenario::quiet_hours entry)
  std::vector<std::string> link_keys_;
  EventQueue queue_;
  uint64_t seq_ = 0;

  // Network runs only. Declared after the services, so they go first.
  std::string net_dir_;
  bool remove_net_dir_ = false;
  std::unique_ptr<LoopbackServer> server_;
  std::unique_ptr<RemoteControlPlane> remote_;
  std::optional<RolloutProgress> seen_;  // the remote rollout as last read
  std::unique_ptr<NetworkFleet> net_;
  std::vector<std::pair<std::string, std::string>> net_unhealthy_;  // (rollout, version)
  std::mutex held_mu_;
  std::vector<std::string> held_lines_;  // GUARDED_BY(held_mu_)

  std::string rollout_id_;
  Timestamp rollout_started_{};
  bool rollout_over_ = false;  // terminal, nothing left in flight
  bool draining_ = false;
  uint64_t checkins_ = 0;
  uint64_t reports_ = 0;
  int next_milestone_ = 1;  // tenths of the eligible fleet
  uint32_t self_rollbacks_ = 0;
  uint32_t reverts_ = 0;
  uint32_t agent_failures_ = 0;
  uint32_t withdrawn_ = 0;  // held images the server called off
  WindowReport windows_report_;
  static constexpr uint32_t kDeviceLines = 3;
  // The least an artifact carries over the wire in a network run: a cut download keeps
  // the share of it that arrived, so the payload must not be too coarse.
  static constexpr uint64_t kMinPayload = 4096;
  // Events prepared for at a time: enough lookups in flight to overlap their cache misses,
  // few enough that what they fetch is still cached when they run (64 measured best).
  static constexpr size_t kWarmBatch = 64;
};

// ---------------------------------------------------------------- set-up

void Simulator::generate_fleet(std::vector<Device>& out) {
  for (const auto& g : sc_.site_groups) {
    const int width = std::max<int>(3, static_cast<int>(std::to_string(g.count).size()));
    for (uint32_t k = 1; k <= g.count; ++k) {
      sites_.push_back(Site{g.prefix + "-" + pad(k, width), g.time_zone, g.maintenance_windows});
      site_group_.push_back(g.prefix);
    }
  }
  std::map<std::string, uint16_t> rev_ids;
  const uint32_t n = opt_.devices.value_or(sc_.devices);
  id_width_ = std::max<int>(6, static_cast<int>(std::to_string(n).size()));
  Inventory initial = sc_.installed;
  std::sort(initial.begin(), initial.end(),
            [](const auto& a, const auto& b) { return a.component < b.component; });
  const uint32_t initial_id = intern(std::move(initial));
  devices_.resize(n);
  out.reserve(n);
  for (uint32_t i = 0; i < n; ++i) {
    const auto& type = sc_.device_types[pick_share(rng_, sc_.device_types)];
    const auto& rev = type.hardware_revisions[pick_share(rng_, type.hardware_revisions)];
    const auto site = static_cast<uint32_t>(rng_.below(sites_.size()));
    const auto conn = static_cast<uint16_t>(pick_share(rng_, sc_.connectivity));
    Device d;
    d.id = name_of(i).str();
    d.device_type = type.name;
    d.hardware_revision = rev.name;
    d.site = sites_[site].name;
    d.connectivity = sc_.connectivity[conn].name;
    d.installed = sc_.installed;
    uint8_t quiet = 0;
    if (!sc_.quiet_hours.empty()) {
      double u = rng_.uniform();
      for (size_t k = 0; k < sc_.quiet_hours.size() && quiet == 0; ++k) {
        u -= sc_.quiet_hours[k].share;
        if (u < 0) {
          quiet = static_cast<uint8_t>(k + 1);
          d.quiet_hours = sc_.quiet_hours[k].windows;
        }
      }
    }
    auto [it, fresh] = rev_ids.emplace(rev.name, static_cast<uint16_t>(revisions_.size()));
    if (fresh) revisions_.push_back(rev.name);
    SimDevice& s = devices_[i];
    s.inventory = initial_id;
    s.site = site;
    s.connectivity = conn;
    s.hardware_revision = it->second;
    s.quiet = quiet;
    out.push_back(std::move(d));
  }
  for (const Site& site : sites_) {
    maintenance_.put(site);
    for (size_t k = 0; k < sc_.quiet_hours.size(); ++k)
      quiet_.put(
          Site{site.name + "#" + std::to_string(k), site.time_zone, sc_.quiet_hours[k].windows});
  }
  // Intermittent links are online in windows of the site's local time.
  link_keys_.resize(sites_.size() * sc_.connectivity.size());
  for (size_t s = 0; s < sites_.size(); ++s) {
    for (size_t c = 0; c < sc_.connectivity.size(); ++c) {
      if (sc_.connectivity[c].kind != LinkKind::kIntermittent) continue;
      std::string key = sites_[s].name + "#" + sc_.connectivity[c].name;
      links_.put(Site{key, sites_[s].time_zone, sc_.connectivity[c].online});
      link_keys_[s * sc_.connectivity.size() + c] = std::move(key);
    }
  }
}

DeviceName Simulator::name_of(uint32_t dev) const {
  // id_width_ has room for the largest index, so the digits fill it from the right.
  DeviceName name;
  std::memcpy(name.text, "dev-", 4);
  name.size = 4 + static_cast<size_t>(id_width_);
  uint32_t n = dev + 1;
  for (size_t k = name.size; k > 4; --k, n /= 10)
    name.text[k - 1] = static_cast<char>('0' + n % 10);
  return name;
}

uint32_t Simulator::intern(Inventory inventory) {
  auto [it, fresh] = inventory_ids_.emplace(inventory, static_cast<uint32_t>(inventories_.size()));
  if (fresh) inventories_.push_back(std::move(inventory));
  return it->second;
}

Status Simulator::set_up() {
  if (remote()) return set_up_remote();
  if (opt_.network) DROVER_TRY(prepare_net_dir());  // before anything is written
  if (opt_.store == "memory") {
    store_ = make_memory_store();
  } else if (opt_.store.starts_with("sqlite:")) {
    const std::string path = opt_.store.substr(7);
    if (std::filesystem::exists(path))
      return invalid_argument("sqlite store '" + path + "' already exists");
    SqliteOptions so;
    so.synchronous_full = false;  // the twin needs crash safety, not power-loss safety
    auto s = open_sqlite_store(path, so);
    if (!s.ok()) return s.error();
    store_ = std::move(*s);
  } else {
    return invalid_argument("unknown store '" + opt_.store + "' (use memory or sqlite:PATH)");
  }

  std::vector<Device> fleet;
  generate_fleet(fleet);
  WriteBatch batch;
  batch.sites = sites_;
  if (!opt_.network) batch.artifacts = sc_.artifacts;  // a network run uploads real content
  DROVER_TRY(store_->apply(batch));

  EngineOptions engine_options;
  engine_options.tick_interval = sc_.engine_tick;
  engine_ = std::make_unique<RolloutEngine>(*store_, clock_, engine_options);
  engine_->set_listener([this](const EngineEvent& e) { on_engine_event(e); });
  DROVER_TRY(engine_->load());
  service_ = std::make_unique<DeviceService>(*store_, *engine_);
  if (opt_.network) DROVER_TRY(set_up_network(fleet));
  DROVER_TRY(service_->provision(std::move(fleet)));
  schedule_first_check_ins();
  schedule_rollout();
  return ok_status();
}

void Simulator::schedule_rollout() {
  clock_.schedule_at(clock_.now() + sc_.rollout_start_after, [this] {
    auto id = start_rollout();
    if (!id.ok()) {
      say("rollout could not start: " + id.error().to_string());
      rollout_over_ = true;
      return;
    }
    rollout_id_ = *id;
    rollout_started_ = clock_.now();
    if (remote_) say("[started] rollout " + rollout_id_ + " (" + sc_.rollout.name + ")");
  });
}

Result<std::string> Simulator::start_rollout() {
  if (remote_) return remote_->start_rollout(sc_.rollout);
  auto created = engine_->create(sc_.rollout);
  if (!created.ok()) return created.error();
  DROVER_TRY(engine_->start(created->id));
  return created->id;
}

std::string Simulator::payload(const Artifact& a) const {
  return artifact_payload(
      a, std::max<uint64_t>(1, std::min(a.size_bytes, opt_.network->payload_bytes)));
}

void Simulator::schedule_first_check_ins() {
  // Devices first appear spread over one poll interval (intermittent ones when their link
  // first comes up).
  for (uint32_t i = 0; i < devices_.size(); ++i) {
    const auto& link = sc_.connectivity[devices_[i].connectivity];
    const Timestamp start = clock_.now();  // the scenario's start (a remote run: after set-up)
    Timestamp first =
        start + Duration(static_cast<int64_t>(rng_.uniform() * link.poll_interval.count()));
    if (link.kind == LinkKind::kIntermittent) first = next_online(i, start);
    schedule(i, first, EventKind::kCheckIn);
  }
}

// A server elsewhere: the fleet is set up through its operator API, and the run keeps pace
// with the wall clock (the server's engine runs on it).
Status Simulator::set_up_remote() {
  const NetworkSimOptions& no = *opt_.network;
  if (opt_.store != "memory")
    return invalid_argument(
        "--store is the in-process server's; with --server the server has its own");
  if (no.enrollment_token.empty())
    return invalid_argument("--server needs the server's enrollment token for the agents");
  DROVER_TRY(prepare_net_dir());  // before anything is sent
  auto plane = RemoteControlPlane::create(no.server, no.token, no.ca_file);
  if (!plane.ok()) return plane.error();
  remote_ = std::move(*plane);
  std::vector<Device> fleet;
  generate_fleet(fleet);
  if (!fleet.empty()) DROVER_TRY(remote_->check_absent(fleet.front().id));
  for (const Site& site : sites_) DROVER_TRY(remote_->put_site(site));
  for (const Artifact& a : sc_.artifacts) {
    auto uploaded = remote_->upload(a, payload(a));
    if (!uploaded.ok()) return uploaded.error();
  }
  for (const Device& d : fleet) DROVER_TRY(remote_->register_device(d));
  say("[network] " + std::to_string(fleet.size()) + " devices, " + std::to_string(sites_.size()) +
      " sites and " + std::to_string(sc_.artifacts.size()) + " artifacts set up on " + no.server);
  DROVER_TRY(start_agents(fleet, no.server, no.enrollment_token, no.ca_file));
  // The set-up took its time on the wall clock the server keeps: the fleet starts now.
  const Timestamp now = std::chrono::floor<Duration>(std::chrono::system_clock::now());
  if (now > clock_.now()) clock_.advance_to(now);
  schedule_first_check_ins();
  schedule_rollout();
  return ok_status();
}

// ---------------------------------------------------------------- time and links

void Simulator::schedule(uint32_t dev, Timestamp at, EventKind kind) {
  if (at == Timestamp::max()) return;  // a link that never comes up: the device stays silent
  queue_.push(Event{at.time_since_epoch().count(), seq_++, dev, static_cast<uint8_t>(kind)});
}

Duration Simulator::jittered(Duration d) {
  const double f = 1 + sc_.checkin_jitter * (2 * rng_.uniform() - 1);
  return Duration(
      std::max<int64_t>(1000, static_cast<int64_t>(static_cast<double>(d.count()) * f)));
}

bool Simulator::online(uint32_t dev, Timestamp t) {
  const SimDevice& d = devices_[dev];
  if (sc_.connectivity[d.connectivity].kind != LinkKind::kIntermittent) return true;
  return links_.is_open(link_keys_[d.site * sc_.connectivity.size() + d.connectivity], t);
}

Timestamp Simulator::next_online(uint32_t dev, Timestamp t) {
  const SimDevice& d = devices_[dev];
  if (sc_.connectivity[d.connectivity].kind != LinkKind::kIntermittent) return t;
  const Timestamp open =
      links_.next_open(link_keys_[d.site * sc_.connectivity.size() + d.connectivity], t);
  if (open == t || open == Timestamp::max()) return open;
  // Devices on the same schedule do not all connect in the same second.
  return open +
         Duration(static_cast<int64_t>(rng_.uniform() * 60'000 * (1 + 4 * sc_.checkin_jitter)));
}

Timestamp Simulator::link_open_at_or_after(uint32_t dev, Timestamp t) {
  const SimDevice& d = devices_[dev];
  if (sc_.connectivity[d.connectivity].kind != LinkKind::kIntermittent) return t;
  return links_.next_open(link_keys_[d.site * sc_.connectivity.size() + d.connectivity], t);
}

Timestamp Simulator::online_until(uint32_t dev, Timestamp t) {
  const SimDevice& d = devices_[dev];
  if (sc_.connectivity[d.connectivity].kind != LinkKind::kIntermittent) return Timestamp::max();
  return links_.open_until(link_keys_[d.site * sc_.connectivity.size() + d.connectivity], t);
}

// ---------------------------------------------------------------- device behaviour

void Simulator::handle(const Event& e) {
  if (net_) {
    if (static_cast<EventKind>(e.kind) == EventKind::kUnhealthy) {
      agent_unhealthy(e.device);
    } else {
      step_agent(e.device);
    }
    return;
  }
  switch (static_cast<EventKind>(e.kind)) {
    case EventKind::kCheckIn:
      if (draining_) {
        // The fleet is done: no new offers, but news held while offline still goes out.
        SimDevice& d = devices_[e.device];
        if (d.pending_report < 0) return;
        if (!online(e.device, clock_.now()) || !flush_report(e.device)) {
          schedule(e.device,
                   std::max(next_online(e.device, clock_.now()), clock_.now() + minutes(1)),
                   EventKind::kCheckIn);
        }
        return;
      }
      check_in(e.device);
      return;
    case EventKind::kPhaseDone:
      phase_done(e.device);
      return;
    case EventKind::kApply: {
      // Only the latest plan counts: a later answer may have moved or cancelled this one.
      const SimDevice& d = devices_[e.device];
      if (d.phase != Phase::kHolding || d.waiting || d.apply_at_ms != e.at_ms) return;
      // As the agent does: ask first when the link is up (the update may have been called
      // off); out of reach, the windows it has hold.
      if (online(e.device, clock_.now())) {
        hold_check_in(e.device);
      } else {
        begin_install(e.device);
      }
      return;
    }
    case EventKind::kUnhealthy: {
      // Only if it still runs the version that carries the defect.
      const SimDevice& d = devices_[e.device];
      const UpdateOffer& o = offers_[d.unhealthy_offer];
      for (const auto& c : inventories_[d.inventory]) {
        if (c.component == o.component && c.version == o.version && d.phase == Phase::kIdle) {
          deliver(e.device, DeploymentEvent::kUnhealthy, d.unhealthy_offer);
        }
      }
      return;
    }
  }
}

void Simulator::next_check_in(uint32_t dev) {
  const auto& link = sc_.connectivity[devices_[dev].connectivity];
  Timestamp at = clock_.now() + jittered(link.poll_interval);
  if (link.kind == LinkKind::kIntermittent && !online(dev, at)) at = next_online(dev, at);
  if (at != Timestamp::max()) schedule(dev, at, EventKind::kCheckIn);
}

bool Simulator::flush_report(uint32_t dev) {
  SimDevice& d = devices_[dev];
  if (d.pending_report < 0) return true;
  const UpdateOffer& o = offers_[d.report_offer];
  ++reports_;
  const DeviceName name = name_of(dev);
  auto r = service_->report_status({name.view(), o.rollout_id, o.version,
                                    static_cast<DeploymentEvent>(d.pending_report),
                                    "reported by the twin"});
  if (!r.ok() && r.error().code == ErrorCode::kIo) return false;  // try again next time
  d.pending_report = -1;
  if (d.unhealthy_held) {
    d.unhealthy_held = false;
    d.pending_report = static_cast<int8_t>(DeploymentEvent::kUnhealthy);
    d.report_offer = d.unhealthy_offer;
    return flush_report(dev);
  }
  return true;
}

void Simulator::deliver(uint32_t dev, DeploymentEvent event, int32_t offer) {
  SimDevice& d = devices_[dev];
  if (event == DeploymentEvent::kUnhealthy && d.pending_report >= 0) {
    // The outcome it follows has not gone out yet: both are held, in order.
    d.unhealthy_held = true;
    if (online(dev, clock_.now())) flush_report(dev);
    return;
  }
  // Only the latest news matters: the table accepts an outcome without the steps before it.
  d.pending_report = static_cast<int8_t>(event);
  d.report_offer = offer;
  if (online(dev, clock_.now())) flush_report(dev);
}

void Simulator::check_in(uint32_t dev) {
  SimDevice& d = devices_[dev];
  if (d.phase == Phase::kHolding) {
    hold_check_in(dev);
    return;
  }
  if (d.phase != Phase::kIdle) return;
  if (!online(dev, clock_.now())) {
    const Timestamp at = next_online(dev, clock_.now());
    if (at != Timestamp::max()) schedule(dev, at, EventKind::kCheckIn);
    return;
  }
  flush_report(dev);
  ++checkins_;
  const DeviceName name = name_of(dev);
  auto r = service_->check_in({name.view(), inventories_[d.inventory], UpdateState::kIdle, {}});
  if (r.ok() && r->offer) {
    start_offer(dev, *r->offer);
    return;
  }
  if (!r.ok()) say("check-in of " + name.str() + " failed: " + r.error().to_string());
  next_check_in(dev);
}

void Simulator::start_offer(uint32_t dev, const UpdateOffer& offer) {
  const std::string key = offer.rollout_id + "|" + offer.version + (offer.revert ? "|revert" : "");
  auto [it, fresh] = offer_index_.emplace(key, static_cast<int32_t>(offers_.size()));
  if (fresh) offers_.push_back(offer);
  SimDevice& d = devices_[dev];
  d.offer = it->second;
  d.phase = Phase::kDownloading;
  d.windowed = !offer.windows.empty();
  d.waiting = false;
  d.apply_at_ms = -1;
  d.bytes_left = offer.size_bytes;
  deliver(dev, DeploymentEvent::kDownloading, d.offer);
  continue_download(dev);
}

bool Simulator::in_window(uint32_t dev, Timestamp t) {
  const SimDevice& d = devices_[dev];
  const std::string& site = sites_[d.site].name;
  if (!maintenance_.is_open(site, t)) return false;
  return d.quiet == 0 || !quiet_.is_open(site + "#" + std::to_string(d.quiet - 1), t);
}

void Simulator::begin_install(uint32_t dev) {
  SimDevice& d = devices_[dev];
  const Timestamp now = clock_.now();
  d.phase = Phase::kInstalling;
  d.apply_at_ms = -1;
  if (!in_window(dev, now)) ++windows_report_.installs_outside;
  deliver(dev, DeploymentEvent::kInstalling, d.offer);
  schedule(dev, now + sc_.install_time, EventKind::kPhaseDone);
}

void Simulator::hold_check_in(uint32_t dev) {
  SimDevice& d = devices_[dev];
  const Timestamp now = clock_.now();
  if (!online(dev, now)) {
    schedule(dev, next_online(dev, now), EventKind::kCheckIn);
    return;
  }
  flush_report(dev);
  ++checkins_;
  const DeviceName name = name_of(dev);
  const UpdateOffer& offer = offers_[d.offer];
  auto r = service_->check_in(
      {name.view(), inventories_[d.inventory], UpdateState::kReady, offer.rollout_id});
  if (!r.ok() || !r->hold) {
    if (!r.ok()) say("check-in of " + name.str() + " failed: " + r.error().to_string());
    next_check_in(dev);
    return;
  }
  const HoldAnswer& h = *r->hold;
  switch (h.action) {
    case HoldAnswer::Action::kDrop:
      d.phase = Phase::kIdle;
      d.apply_at_ms = -1;
      if (h.withdrawn) {
        tell_device(dev,
                    "dropped its image of " + offer.version + " before installing it: " + h.reason,
                    withdrawn_);
      }
      next_check_in(dev);
      return;
    case HoldAnswer::Action::kWait:
      d.waiting = true;
      d.apply_at_ms = -1;
      break;
    case HoldAnswer::Action::kApply: {
      d.waiting = false;
      // The first window that still has room for the install and the reboot.
      const Duration span = sc_.install_time + sc_.reboot_time;
      Timestamp at = h.windows.empty() ? now : Timestamp::max();
      for (const TimeRange& w : h.windows) {
        const Timestamp start = std::max(now, w.from);
        if (w.until - start < span) continue;
        // The commit needs the server: a device that knows its link will be down from the
        // end of the reboot until the window closes waits for a window where it is not.
        if (link_open_at_or_after(dev, start + span) >= w.until) continue;
        at = start;
        break;
      }
      if (at == now) {
        begin_install(dev);
        return;
      }
      if (at == Timestamp::max()) {
        d.apply_at_ms = -1;  // none in sight: ask again at the next poll
        break;
      }
      if (d.apply_at_ms < 0) ++windows_report_.held;
      // Nothing to ask until then: the server's next word matters at the window.
      d.apply_at_ms = at.time_since_epoch().count();
      schedule(dev, at, EventKind::kApply);
      return;
    }
  }
  next_check_in(dev);
}

void Simulator::continue_download(uint32_t dev) {
  SimDevice& d = devices_[dev];
  const Timestamp now = clock_.now();
  if (!online(dev, now)) {
    schedule(dev, next_online(dev, now), EventKind::kPhaseDone);
    return;
  }
  const double bps = static_cast<double>(sc_.connectivity[d.connectivity].bandwidth_bps);
  const auto need =
      Duration(static_cast<int64_t>(std::ceil(static_cast<double>(d.bytes_left) * 8000.0 / bps)));
  const Timestamp until = online_until(dev, now);
  if (until == Timestamp::max() || now + need <= until) {
    d.bytes_left = 0;
    schedule(dev, now + need, EventKind::kPhaseDone);
    return;
  }
  // The link drops first: keep what arrived and resume at the next window (HTTP Range).
  const auto got = static_cast<uint64_t>(static_cast<double>((until - now).count()) * bps / 8000.0);
  d.bytes_left -= std::min(got, d.bytes_left - 1);
  schedule(dev, next_online(dev, until), EventKind::kPhaseDone);
}

bool Simulator::defect(uint32_t dev, const UpdateOffer& offer, DefectKind kind, Duration* after) {
  if (opt_.preflight || offer.revert) return false;
  const SimDevice& d = devices_[dev];
  for (size_t k = 0; k < sc_.defects.size(); ++k) {
    const DefectSpec& spec = sc_.defects[k];
    if (spec.kind != kind) continue;
    if (!spec.hardware_revision.empty() &&
        spec.hardware_revision != revisions_[d.hardware_revision])
      continue;
    if (!spec.connectivity.empty() && spec.connectivity != sc_.connectivity[d.connectivity].name)
      continue;
    if (!spec.time_zone.empty() && spec.time_zone != sites_[d.site].time_zone) continue;
    if (!spec.site_prefix.empty() && site_group_[d.site] != spec.site_prefix) continue;
    if (!(spec.version.empty() ? offer.version == sc_.rollout.artifact_version
                               : offer.version == spec.version)) {
      continue;
    }
    // One draw per (device, defect): independent of event order.
    const uint64_t h =
        mix64(seed_ ^ mix64(stable_hash(name_of(dev).view()) ^ (k + 1) * 0x9e3779b97f4a7c15ULL));
    const double u = static_cast<double>(h >> 11) * 0x1.0p-53;
    if (u < spec.probability) {
      if (after != nullptr) *after = spec.after;
      return true;
    }
  }
  return false;
}

void Simulator::phase_done(uint32_t dev) {
  SimDevice& d = devices_[dev];
  const UpdateOffer& offer = offers_[d.offer];
  const Timestamp now = clock_.now();
  switch (d.phase) {
    case Phase::kDownloading:
      if (d.bytes_left > 0) {
        continue_download(dev);
        return;
      }
      if (d.windowed) {
        // Verified: it waits for its window (and asks the server whether the update stands).
        d.phase = Phase::kHolding;
        hold_check_in(dev);
        return;
      }
      begin_install(dev);
      return;
    case Phase::kInstalling:
      if (defect(dev, offer, DefectKind::kInstallFails)) {
        d.phase = Phase::kIdle;
        deliver(dev, DeploymentEvent::kInstallFailed, d.offer);
        next_check_in(dev);
        return;
      }
      d.phase = Phase::kRebooting;
      if (!offer.revert) d.installed_new = true;
      if (!in_window(dev, now)) ++windows_report_.reboots_outside;
      deliver(dev, DeploymentEvent::kRebooting, d.offer);
      schedule(dev, now + sc_.reboot_time, EventKind::kPhaseDone);
      return;
    case Phase::kRebooting: {
      if (defect(dev, offer, DefectKind::kBootFails)) {
        // The trial boot fails: the bootloader falls back to the previous slot.
        d.phase = Phase::kRollingBack;
        if (!in_window(dev, now)) ++windows_report_.reboots_outside;
        schedule(dev, now + sc_.reboot_time, EventKind::kPhaseDone);
        return;
      }
      if (!online(dev, now)) {
        // The new image commits only once it reaches the server (the agent's own check).
        schedule(dev, next_online(dev, now), EventKind::kPhaseDone);
        return;
      }
      Inventory now_running = inventories_[d.inventory];
      auto it = std::lower_bound(
          now_running.begin(), now_running.end(), offer.component,
          [](const InstalledComponent& c, const std::string& n) { return c.component < n; });
      if (it != now_running.end() && it->component == offer.component) {
        it->version = offer.version;
      } else {
        now_running.insert(it, {offer.component, offer.version});
      }
      d.inventory = intern(std::move(now_running));
      d.phase = Phase::kIdle;
      if (!in_window(dev, now)) ++windows_report_.commits_outside;
      if (!offer.revert && offer.rollout_id == rollout_id_) {
        d.committed_at_ms = (now - rollout_started_).count();
      } else {
        if (offer.revert)
          tell_device(dev, "back on " + offer.version + " after the fleet rollback", reverts_);
        d.committed_at_ms = -1;
      }
      deliver(dev, DeploymentEvent::kSucceeded, d.offer);
      Duration after{0};
      if (defect(dev, offer, DefectKind::kFailsAfter, &after)) {
        d.unhealthy_offer = d.offer;
        schedule(dev, now + after, EventKind::kUnhealthy);
      }
      next_check_in(dev);
      return;
    }
    case Phase::kRollingBack:
      d.phase = Phase::kIdle;
      tell_device(dev, "trial boot of " + offer.version + " failed; back on the previous slot",
                  self_rollbacks_);
      deliver(dev, DeploymentEvent::kRolledBack, d.offer);
      next_check_in(dev);
      return;
    case Phase::kIdle:
    case Phase::kHolding:  // its install starts with a kApply event
      return;
  }
}

// ---------------------------------------------------------------- network runs

Simulator::~Simulator() {
  net_.reset();  // the agents, then the server they talk to, then the services below it
  server_.reset();
  if (remove_net_dir_) {
    std::error_code ec;
    std::filesystem::remove_all(net_dir_, ec);
  }
}

Status Simulator::set_up_network(const std::vector<Device>& fleet) {
  const std::string token = "sim-" + std::to_string(mix64(seed_ ^ stable_hash(net_dir_)));
  auto server = LoopbackServer::start(*store_, *engine_, *service_, clock_,
                                      net_dir_ + "/server/artifacts", token);
  if (!server.ok()) return server.error();
  server_ = std::move(*server);
  for (const Artifact& a : sc_.artifacts) {
    auto uploaded = server_->artifacts().upload(a, payload(a));
    if (!uploaded.ok()) return uploaded.error();
  }
  return start_agents(fleet, server_->url(), token, "");
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

Status Simulator::start_agents(const std::vector<Device>& fleet, const std::string& server,
                               const std::string& enrollment_token, const std::string& ca_file) {
  NetworkFleetOptions fo;
  fo.dir = net_dir_ + "/devices";
  fo.server = server;
  fo.enrollment_token = enrollment_token;
  fo.ca_file = ca_file;
  // On loopback in this process an answer never takes long; a timeout would let the clock
  // move while a request is still being served.
  fo.timeout = remote_ ? seconds(30) : minutes(10);
  fo.component = sc_.rollout.artifact_name;
  for (const auto& c : sc_.installed) fo.installed[c.component] = c.version;
  fo.seed = seed_;
  net_ = std::make_unique<NetworkFleet>(std::move(fo), *this, clock_);
  for (size_t i = 0; i < fleet.size(); ++i) {
    const ConnectivitySpec& link = sc_.connectivity[devices_[i].connectivity];
    net_->add({fleet[i].id, fleet[i].device_type, fleet[i].hardware_revision, link.poll_interval,
               link.kind == LinkKind::kIntermittent});
  }
  net_unhealthy_.resize(fleet.size());
  return ok_status();
}

void Simulator::step_agent(uint32_t dev) {
  SimDevice& d = devices_[dev];
  // Once the fleet is done, devices only deliver the news they hold.
  if (draining_ && d.phase == Phase::kIdle && d.pending_report < 0) return;
  auto s = net_->step(dev);
  if (!s.ok()) {
    tell_device(dev, "its agent cannot start: " + s.error().to_string(), agent_failures_);
    return;  // the device falls silent
  }
  const Phase before = d.phase;
  const Timestamp now = clock_.now();
  switch (s->step) {
    case agent::UpdateStep::kIdle:
      if (before == Phase::kHolding) {
        tell_device(dev, "dropped its image of " + s->version + " before installing it",
                    withdrawn_);
      }
      d.phase = Phase::kIdle;
      break;
    case agent::UpdateStep::kDownloading:
    case agent::UpdateStep::kVerifying:
      d.phase = Phase::kDownloading;
      break;
    case agent::UpdateStep::kReady:
      // Counted once, when the agent first waits with the image (apply_at_ms marks it).
      if (s->wait > Duration(0) && d.apply_at_ms < 0) {
        ++windows_report_.held;
        d.apply_at_ms = 0;
      }
      d.phase = Phase::kHolding;
      break;
    case agent::UpdateStep::kInstalling:
      // The agent moved in (the install itself runs in its next step, right away).
      if (before != Phase::kInstalling && !in_window(dev, now)) ++windows_report_.installs_outside;
      d.phase = Phase::kInstalling;
      break;
    case agent::UpdateStep::kRebooting:
    case agent::UpdateStep::kCommitting:
      d.phase = Phase::kRebooting;
      if (!s->revert && s->rollout_id == rollout_id_) d.installed_new = true;
      break;
    case agent::UpdateStep::kRollingBack:
      d.phase = Phase::kRollingBack;
      break;
  }
  if (s->step != agent::UpdateStep::kReady) d.apply_at_ms = -1;
  d.pending_report = s->report_pending ? 0 : -1;
  const Timestamp done = clock_.now() + s->busy;
  if (s->rebooted && !in_window(dev, now)) ++windows_report_.reboots_outside;
  if (s->committed && !in_window(dev, done)) ++windows_report_.commits_outside;
  if (s->trial_failed) {
    tell_device(dev, "trial boot of " + s->version + " failed; back on the previous slot",
                self_rollbacks_);
  }
  if (s->committed) {
    if (!s->revert && s->rollout_id == rollout_id_) {
      d.committed_at_ms = (done - rollout_started_).count();
    } else {
      if (s->revert)
        tell_device(dev, "back on " + s->version + " after the fleet rollback", reverts_);
      d.committed_at_ms = -1;
    }
    UpdateOffer offer;
    offer.version = s->version;
    offer.revert = s->revert;
    Duration after{0};
    if (defect(dev, offer, DefectKind::kFailsAfter, &after)) {
      net_unhealthy_[dev] = {s->rollout_id, s->version};
      schedule(dev, done + after, EventKind::kUnhealthy);
    }
  }
  Timestamp at = s->link_down ? next_online(dev, done) : done + s->wait;
  // Holding, it wakes for its window whether or not the link is up by then.
  if (s->step == agent::UpdateStep::kReady) at = std::min(at, done + s->wait);
  schedule(dev, at, EventKind::kCheckIn);
}

void Simulator::agent_unhealthy(uint32_t dev) {
  const auto& [rollout, version] = net_unhealthy_[dev];
  const Status st = net_->report_unhealthy(dev, rollout, version);
  if (!st.ok() && st.error().code == ErrorCode::kIo) {
    // The link is down: the monitor tells the server when it is back.
    schedule(dev, std::max(next_online(dev, clock_.now()), clock_.now() + minutes(1)),
             EventKind::kUnhealthy);
  }
}

uint64_t Simulator::bandwidth_bps(uint32_t dev) {
  return sc_.connectivity[devices_[dev].connectivity].bandwidth_bps;
}

uint64_t Simulator::declared_size(const std::string& component, const std::string& version) {
  for (const Artifact& a : sc_.artifacts) {
    if (a.name == component && a.version == version) return a.size_bytes;
  }
  return 0;
}

bool Simulator::defective(uint32_t dev, const std::string& version, bool revert, DefectKind kind) {
  UpdateOffer o;
  o.version = version;
  o.revert = revert;
  return defect(dev, o, kind);
}

Duration Simulator::next_poll(uint32_t dev) {
  return jittered(sc_.connectivity[devices_[dev].connectivity].poll_interval);
}

// ---------------------------------------------------------------- narration

std::string Simulator::stamp(Timestamp t) const {
  const int64_t s = std::chrono::duration_cast<std::chrono::seconds>(t - sc_.start).count();
  char buf[64];
  std::snprintf(buf, sizeof buf, "T+%02lld:%02lld:%02lld", static_cast<long long>(s / 3600),
                static_cast<long long>(s / 60 % 60), static_cast<long long>(s % 60));
  return std::string(buf) + "  " + format_utc_timestamp(t).substr(11, 5) + "Z";
}

void Simulator::say(const std::string& line) {
  if (opt_.timeline) opt_.timeline(stamp(clock_.now()) + "  " + line);
}

void Simulator::tell_device(uint32_t dev, const std::string& what, uint32_t& told) {
  if (++told > kDeviceLines) return;
  const SimDevice& d = devices_[dev];
  say("[device] " + name_of(dev).str() + " (" + revisions_[d.hardware_revision] + ", " +
      sites_[d.site].name + "): " + what +
      (told == kDeviceLines ? " (further devices like this are counted, not listed)" : ""));
}

void Simulator::on_engine_event(const EngineEvent& e) {
  std::string line = stamp(e.at) + "  [" + to_string(e.kind) + "] " + e.text;
  if (!server_) {
    if (opt_.timeline) opt_.timeline(line);
    return;
  }
  // A network run: the engine may speak on the server's thread; the driving thread tells.
  std::lock_guard lock(held_mu_);
  held_lines_.push_back(std::move(line));
}

void Simulator::flush_engine_lines() {
  if (!server_) return;
  std::vector<std::string> lines;
  {
    std::lock_guard lock(held_mu_);
    lines.swap(held_lines_);
  }
  if (opt_.timeline)
    for (const auto& line : lines) opt_.timeline(line);
}

void Simulator::check_done() {
  if (rollout_id_.empty() || rollout_over_) return;
  auto p = summary();
  if (!p.ok()) return;
  const uint32_t live = p->live.total();
  const uint32_t updated = p->total[DeploymentState::kSucceeded];
  while (next_milestone_ <= 10 && live > 0 &&
         updated * 10 >= static_cast<uint32_t>(next_milestone_) * live) {
    say("[progress] " + std::to_string(next_milestone_ * 10) +
        "% of the devices in healthy strata updated (" + std::to_string(updated) + " of " +
        std::to_string(live) + ")");
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

Result<RolloutSummary> Simulator::summary() {
  if (!remote_) return engine_->summary(rollout_id_);
  auto p = progress();
  if (!p.ok()) return p.error();
  return summarize(*p);
}

Result<RolloutProgress> Simulator::progress() {
  if (!remote_) return engine_->progress(rollout_id_);
  auto p = remote_->progress(rollout_id_);
  if (!p.ok()) {
    if (seen_) return *seen_;  // a blip: what was last seen
    return p.error();
  }
  narrate(*p);
  seen_ = *p;
  return p;
}

// The engine's decisions as the remote server's record shows them change.
void Simulator::narrate(const RolloutProgress& now) {
  const Rollout& r = now.rollout;
  const Rollout* was = seen_ ? &seen_->rollout : nullptr;
  for (size_t i = was ? was->stages.size() : 0; i < r.stages.size(); ++i)
    say("[stage_started] stage " + r.stages[i].name + ": " + std::to_string(r.stages[i].devices) +
        " devices");
  for (size_t i = was ? was->halted.size() : 0; i < r.halted.size(); ++i)
    say("[halted] " + r.halted[i].key + ": " + r.halted[i].reason);
  if (was == nullptr || was->state != r.state)
    say(std::string("[state] rollout ") + r.id + " is " + to_string(r.state));
}

// ---------------------------------------------------------------- the loop

Result<Report> Simulator::run() {
  const auto wall_start = std::chrono::steady_clock::now();
  DROVER_TRY(set_up());
  const Timestamp horizon = clock_.now() + sc_.horizon;  // the start, after a remote set-up
  Timestamp stop = horizon;
  bool drained = false;
  int64_t watches = 0;
  // A remote server is asked every couple of seconds (its scenarios run in real time).
  const Duration watch_every = remote_ ? seconds(2) : minutes(1);
  std::function<void()> watch = [&] {
    check_done();
    // While draining, stop as soon as no device is mid-update or holding a report.
    if (draining_ && (remote_ || ++watches % 10 == 0)) {
      drained = std::none_of(devices_.begin(), devices_.end(), [](const SimDevice& d) {
        return d.phase != Phase::kIdle || d.pending_report >= 0;
      });
    }
    clock_.schedule_after(watch_every, watch);
  };
  clock_.schedule_after(watch_every, watch);

  while (true) {
    if (!draining_ && (rollout_over_ || clock_.now() >= horizon)) {
      draining_ = true;
      stop = clock_.now() + sc_.drain;
    }
    const Timestamp next_event =
        queue_.empty() ? Timestamp::max() : Timestamp(Duration(queue_.top().at_ms));
    const Timestamp next_timer = clock_.next_due();
    const Timestamp next = std::min(next_event, next_timer);
    if (next == Timestamp::max() || next > stop) break;
    if (draining_ && (queue_.empty() || drained)) break;
    // Against a server elsewhere, the fleet keeps the wall clock's pace.
    if (remote_) std::this_thread::sleep_until(std::chrono::system_clock::time_point(next));
    if (next_timer <= next_event) {
      clock_.run_next();
      flush_engine_lines();
      continue;
    }
    const Event e = queue_.top();
    if (auto batch = queue_.upcoming(kWarmBatch); !net_ && !batch.empty()) warm(batch);
    queue_.pop();
    clock_.advance_to(Timestamp(Duration(e.at_ms)));
    handle(e);
    flush_engine_lines();
  }
  const double wall =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
  check_done();
  if (self_rollbacks_ > 0) {
    say("[devices] " + std::to_string(self_rollbacks_) +
        " failed their trial boot and fell back by themselves");
  }
  if (reverts_ > 0)
    say("[devices] " + std::to_string(reverts_) + " were sent back by the fleet rollback");
  if (net_ && net_->downloads_cut() > 0) {
    say("[network] " + std::to_string(net_->downloads_cut()) +
        " downloads were cut when a link went down, and resumed with Range requests");
  }
  return finish(wall);
}

// The next events' devices are known: fetch their records (the twin's and the service's)
// into the cache together rather than one cache miss after another.
void Simulator::warm(std::span<const Event> events) {
  thread_local std::vector<DeviceName> names;
  thread_local std::vector<std::string_view> ids;
  names.clear();
  ids.clear();
  for (const Event& e : events) {
    __builtin_prefetch(&devices_[e.device]);
    names.push_back(name_of(e.device));
  }
  for (const DeviceName& n : names) ids.push_back(n.view());
  service_->warm(ids);
}

bool Simulator::links_ever_meet(uint32_t dev) {
  // Within a week, is the device ever online while its site's window is open?
  const SimDevice& d = devices_[dev];
  WindowCache site_windows;
  site_windows.put(sites_[d.site]);
  for (Timestamp t = clock_.now(); t < clock_.now() + hours(24 * 7); t += minutes(1)) {
    if (online(dev, t) && site_windows.is_open(sites_[d.site].name, t)) return true;
  }
  return false;
}

Report Simulator::finish(double wall_seconds) {
  Report r;
  r.scenario = sc_.name;
  r.seed = seed_;
  r.devices_total = static_cast<uint32_t>(devices_.size());
  r.simulated_seconds = to_seconds(clock_.now() - sc_.start);
  r.checkins = net_ ? net_->checkins() : checkins_;
  r.status_reports = net_ ? net_->reports() : reports_;
  r.wall_seconds = wall_seconds;
  r.windows = windows_report_;
  r.checkins_per_wall_second =
      wall_seconds > 0 ? static_cast<double>(r.checkins) / wall_seconds : 0;
  for (const auto& d : devices_) {
    if (d.phase == Phase::kRebooting || d.phase == Phase::kRollingBack) ++r.devices_bricked;
  }
  if (rollout_id_.empty()) return r;
  auto p = remote_ ? remote_->progress(rollout_id_) : engine_->progress(rollout_id_);
  if (!p.ok() && remote_ && seen_) {
    say("[network] the rollout's final status could not be read (" + p.error().to_string() +
        "); the report shows it as last read");
    p = *seen_;
  }
  if (!p.ok()) return r;
  const Rollout& ro = p->rollout;
  const StateCounts& t = p->total;
  using S = DeploymentState;
  r.rollout_state = to_string(ro.state);
  r.rollout_started_at_s = to_seconds(rollout_started_ - sc_.start);
  r.devices_eligible = ro.targets;
  r.outcome = p->outcome;
  r.devices_updated = p->outcome.updated;
  r.devices_failed = p->outcome.failed();
  r.devices_fell_back = p->outcome.fell_back;
  r.devices_reverted = p->outcome.reverted;
  r.devices_unhealthy_reverted = p->outcome.unhealthy_reverted;
  r.devices_cancelled = t[S::kCancelled];
  r.devices_withdrawn = withdrawn_;
  uint32_t live = 0;
  for (const auto& s : p->strata) {
    if (s.halted) continue;
    live += s.counts.total();
    r.devices_unreachable += s.counts[S::kPending] + s.counts.in_flight();
  }
  for (const auto& h : ro.halted) {
    HaltedStratumReport hr{h.key,    0,
                           0,        h.hardware_revision,
                           h.site,   h.connectivity,
                           h.reason, to_seconds(h.halted_at - sc_.start)};
    for (const auto& oh : p->outcome.halted) {
      if (oh.group == h.key) {
        hr.devices = oh.devices;
        hr.never_offered = oh.never_offered;
      }
    }
    r.halted_strata.push_back(std::move(hr));
  }
  auto insights = remote_ ? Result<std::vector<StageInsight>>(not_found("remote"))
                          : engine_->stage_insights(rollout_id_);
  for (size_t k = 0; k < ro.stages.size(); ++k) {
    const StageProgress& s = ro.stages[k];
    StageReport sr;
    sr.name = s.name;
    sr.started_at_s = to_seconds(s.started_at - sc_.start);
    sr.devices = s.devices;
    if (s.finished_at != Timestamp{}) sr.finished_at_s = to_seconds(s.finished_at - sc_.start);
    if (insights.ok() && k < insights->size()) {
      const StageInsight& in = (*insights)[k];
      sr.asked = in.sizing.asked;
      sr.planned = in.sizing.planned;
      sr.why = describe_sizing(ro.plan, in.sizing);
      sr.bound_by = in.bound_by();
      sr.held_by_window = in.window;
      sr.held_by_in_flight = in.in_flight;
      sr.held_by_rate = in.rate;
      sr.held_by_pacing = in.pacing;
    }
    r.stages.push_back(sr);
  }
  // Commit times of the devices that still run the new version, in strata that went on.
  std::vector<int64_t> commits;
  if (remote_) {
    // The server's deployments are not at hand: a device's stratum is found from its
    // attributes (a stratum names the dimensions it is keyed on).
    for (uint32_t i = 0; i < devices_.size(); ++i) {
      const SimDevice& d = devices_[i];
      if (d.committed_at_ms < 0 || !net_unhealthy_[i].first.empty()) continue;
      const bool in_halted = std::any_of(p->strata.begin(), p->strata.end(), [&](const auto& s) {
        return s.halted &&
               (s.hardware_revision.empty() ||
                s.hardware_revision == revisions_[d.hardware_revision]) &&
               (s.site.empty() || s.site == sites_[d.site].name) &&
               (s.connectivity.empty() || s.connectivity == sc_.connectivity[d.connectivity].name);
      });
      if (!in_halted) commits.push_back(d.committed_at_ms);
    }
  }
  auto deps = remote_ ? Result<std::vector<Deployment>>(std::vector<Deployment>{})
                      : store_->list_deployments(rollout_id_);
  r.revisions.resize(revisions_.size());
  for (size_t k = 0; k < revisions_.size(); ++k) r.revisions[k].hardware_revision = revisions_[k];
  for (const SimDevice& d : devices_) {
    RevisionReport& rr = r.revisions[d.hardware_revision];
    ++rr.devices;
    rr.installed += d.installed_new ? 1 : 0;
  }
  if (deps.ok()) {
    std::map<std::string, bool> halted;
    for (const auto& s : p->strata) halted[s.key] = s.halted;
    for (const Deployment& dep : *deps) {
      const uint32_t idx =
          static_cast<uint32_t>(std::strtoul(dep.device_id.c_str() + 4, nullptr, 10)) - 1;
      if (idx >= devices_.size()) continue;
      RevisionReport& rr = r.revisions[devices_[idx].hardware_revision];
      rr.offered += dep.offers > 0 ? 1 : 0;
      rr.updated += dep.state == S::kSucceeded ? 1 : 0;
      rr.failed += is_failure(dep.state) || (is_revert(dep.state) && !dep.error.empty()) ? 1 : 0;
      if (dep.state == S::kSucceeded && !halted[dep.stratum] &&
          devices_[idx].committed_at_ms >= 0) {
        commits.push_back(devices_[idx].committed_at_ms);
      }
      if (opt_.preflight && !halted[dep.stratum] &&
          (dep.state == S::kPending || is_in_flight(dep.state))) {
        const bool intermittent =
            sc_.connectivity[devices_[idx].connectivity].kind == LinkKind::kIntermittent;
        std::string why = "not reached within the horizon (" + format_duration(sc_.horizon) + ")";
        if (intermittent && !links_ever_meet(idx)) {
          why = "its link is never online during its site's maintenance window";
        }
        r.never_reached.push_back({dep.device_id, why});
      }
    }
  }
  std::sort(commits.begin(), commits.end());
  auto time_to = [&](double share) -> std::optional<double> {
    if (live == 0) return std::nullopt;
    const auto need = static_cast<size_t>(std::ceil(share * live - 1e-9));
    if (need == 0 || commits.size() < need) return std::nullopt;
    return static_cast<double>(commits[need - 1]) / 1000.0;
  };
  r.time_to_50_percent_s = time_to(0.5);
  r.time_to_95_percent_s = time_to(0.95);
  r.time_to_100_percent_s = time_to(1.0);
  return r;
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
  const uint32_t devices = options.devices.value_or(scenario.devices);
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
    // The server elsewhere runs on the wall clock: the scenario starts now.
    Scenario now = scenario;
    now.start = std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
    Simulator sim(now, options);
    return sim.run();
  }
  Simulator sim(scenario, options);
  return sim.run();
}

}  // namespace drover::sim
