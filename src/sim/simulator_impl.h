// The twin's Simulator: its per-device state and the class that runs a scenario. Private to
// src/sim: simulator.cc (set-up, device behaviour, the loop), simulator_network.cc (network
// runs: real agents against the real server) and simulator_report.cc (narration and the
// report) share it.
#pragma once

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
#include <string_view>
#include <thread>

#include "base/clock.h"
#include "base/huge_pages.h"
#include "base/mutex.h"
#include "base/random.h"
#include "base/units.h"
#include "fleet/device_service.h"
#include "rollout/engine.h"
#include "rollout/scheduler.h"
#include "sim/control_plane.h"
#include "sim/event_queue.h"
#include "sim/network_fleet.h"
#include "sim/simulator.h"
#include "store/store.h"

namespace drover::sim::detail {

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
  kLost,       // the device goes dark for good (Scenario::lost)
  kGoesDark,   // a goes_silent defect shows itself: dark, if it still runs that version
};

// 64 bytes, so a million devices' state stays small enough to walk through quickly; the
// id is derived from the index and the inventory is shared with every device that runs the
// same versions.
struct SimDevice {
  uint32_t inventory = 0;  // index into Simulator::inventories_
  uint32_t site = 0;
  uint16_t connectivity = 0;
  uint16_t hardware_revision = 0;  // index into Simulator::revisions_
  Phase phase = Phase::kIdle;
  int8_t pending_report = -1;    // protocol::Report not yet delivered (the link was down)
  bool unhealthy_held = false;   // an unhealthy report waits behind pending_report
  bool installed_new = false;    // booted into the rollout's version at least once
  uint8_t quiet = 0;             // 1 + index into Scenario::quiet_hours; 0: none
  bool windowed = false;         // the offer being worked on came with windows
  bool waiting = false;          // holding: the server said not to install yet
  bool keeps = false;            // keeps its previous image in an A/B slot
  bool switching = false;        // the offer being worked on boots the kept image
  bool dark = false;             // gone dark: never checks in or reports again
  int32_t offer = -1;            // the offer being worked on (index into offers_)
  int32_t report_offer = -1;     // the offer an undelivered report is about
  int32_t unhealthy_offer = -1;  // the offer whose fails_after defect is pending
  int32_t kept = -1;             // keeps: the inventory its other slot holds (-1: none)
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

inline std::string pad(uint64_t n, int width) {
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
  bool keeps_previous(uint32_t dev) override { return devices_[dev].keeps; }
  Duration install_time() override { return sc_.install_time; }
  Duration reboot_time() override { return sc_.reboot_time; }

 private:
  Status set_up();
  // The control plane of the run: in this process (the plain twin; a network run's server on
  // loopback), or a server elsewhere.
  Result<std::unique_ptr<ControlPlane>> make_plane();
  // Network runs: the agents' directory, and one agent per device.
  Status prepare_net_dir();
  Status start_agents(const std::vector<Device>& fleet, const AgentAccess& server);
  void schedule_first_check_ins();
  void schedule_rollout();                       // created and started at rollout_start_after
  std::string payload(const Artifact& a) const;  // what it carries over the wire
  bool remote() const { return opt_.network && !opt_.network->server.empty(); }
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
  void deliver(uint32_t dev, protocol::Report event, int32_t offer);
  bool flush_report(uint32_t dev);
  // The key of the device's link schedule in links_; nullptr for a link that is always up.
  const std::string* link_key(uint32_t dev) const;
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
  std::unique_ptr<ControlPlane> plane_;
  DeviceService* service_ = nullptr;  // the plane's device side, for the in-process devices

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

  // Network runs only. Declared after the plane, so they go first.
  std::string net_dir_;
  bool remove_net_dir_ = false;
  std::unique_ptr<NetworkFleet> net_;
  std::vector<std::pair<std::string, std::string>> net_unhealthy_;  // (rollout, version)
  Mutex held_mu_;
  std::vector<std::string> held_lines_ GUARDED_BY(held_mu_);

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
  uint32_t dark_ = 0;       // devices gone dark (Scenario::lost, goes_silent defects)
  WindowReport windows_report_;
  static constexpr uint32_t kDeviceLines = 3;
  // The least an artifact carries over the wire in a network run: a cut download keeps
  // the share of it that arrived, so the payload must not be too coarse.
  static constexpr uint64_t kMinPayload = 4096;
  // Events prepared for at a time: enough lookups in flight to overlap their cache misses,
  // few enough that what they fetch is still cached when they run (64 measured best).
  static constexpr size_t kWarmBatch = 64;
};

}  // namespace drover::sim::detail
