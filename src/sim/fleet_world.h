// The twin's physical world: the fleet it generates from a scenario (sites, hardware, links,
// who keeps an A/B slot), every device's state, when each link is up and each device inside
// its own window, which devices a defect strikes, and the queue of what each device does
// next. Both kinds of device side (the in-process model, real agents) act in it; neither
// decides anything the world decides. Not thread-safe: one thread drives a run.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/clock.h"
#include "base/huge_pages.h"
#include "base/random.h"
#include "model/device.h"
#include "model/site.h"
#include "rollout/engine.h"
#include "rollout/scheduler.h"
#include "sim/device_world.h"
#include "sim/event_queue.h"
#include "sim/scenario.h"

namespace drover::sim {

// Where a device stands in an update.
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
// same versions. The world draws a device's site, link, revision, quiet hours and slots at
// generation and marks it dark; the device side keeps the rest (what it runs, where it
// stands in an update).
struct SimDevice {
  uint32_t inventory = 0;  // index into the world's inventories
  uint32_t site = 0;
  uint16_t connectivity = 0;
  uint16_t hardware_revision = 0;  // index into the world's revisions
  Phase phase = Phase::kIdle;
  int8_t pending_report = -1;    // protocol::Report not yet delivered (the link was down)
  bool unhealthy_held = false;   // an unhealthy report waits behind pending_report
  bool installed_new = false;    // booted into the rollout's version at least once
  uint8_t quiet = 0;             // 1 + index into the world's quiet-hour sets; 0: none
  bool windowed = false;         // the offer being worked on came with windows
  bool waiting = false;          // holding: the server said not to install yet
  bool keeps = false;            // keeps its previous image in an A/B slot
  bool switching = false;        // the offer being worked on boots the kept image
  bool dark = false;             // gone dark: never checks in or reports again
  int32_t offer = -1;            // the offer being worked on (the device side's index)
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
  std::string_view given;  // a given fleet's id (Scenario::fleet), kept by the world
  std::string_view view() const { return given.empty() ? std::string_view(text, size) : given; }
  std::string str() const { return std::string(view()); }
};

using Inventory = std::vector<InstalledComponent>;

class FleetWorld final : public DeviceWorld {
 public:
  // `preflight`: no defect strikes. The world's draws come from `seed`: the fleet's in the
  // order generate() makes them, each device's own (its polls' jitter, its defects) as hashes
  // of the seed, the device and the moment — so a run with the same seed is the same.
  FleetWorld(const Scenario& scenario, uint64_t seed, bool preflight, ManualClock& clock);

  // Generates `n` devices and the scenario's sites, or takes the scenario's given fleet
  // (Scenario::fleet, whatever `n`); `out` gets their records for the control plane.
  void generate(uint32_t n, std::vector<Device>& out);
  // Each device's first check-in, spread over one poll interval (an intermittent one's when
  // its link first comes up), and the moment a lost device goes dark.
  void schedule_arrivals();

  const Scenario& scenario() const { return sc_; }
  uint32_t size() const { return static_cast<uint32_t>(devices_.size()); }
  SimDevice& device(uint32_t dev) { return devices_[dev]; }
  const SimDevice& device(uint32_t dev) const { return devices_[dev]; }
  std::span<const SimDevice> devices() const { return devices_; }
  DeviceName name_of(uint32_t dev) const;
  // The index of the device with this id, or std::nullopt.
  std::optional<uint32_t> index_of(std::string_view id) const;
  const std::vector<std::string>& revisions() const { return revisions_; }
  const std::string& revision(uint32_t dev) const {
    return revisions_[devices_[dev].hardware_revision];
  }
  const Site& site(uint32_t dev) const { return sites_[devices_[dev].site]; }
  // The sites the control plane knows (without the stand-in for a given device without one).
  std::vector<Site> plane_sites() const;
  const ConnectivitySpec& link(uint32_t dev) const {
    return sc_.connectivity[devices_[dev].connectivity];
  }

  // What devices run: a handful of distinct lists, each with its index.
  const Inventory& inventory(uint32_t id) const { return inventories_[id]; }
  uint32_t intern(Inventory inventory);
  bool inventory_runs(uint32_t id, std::string_view component, std::string_view version) const;

  // The device goes dark for good: nothing it does reaches anyone any more.
  void go_dark(uint32_t dev);
  uint32_t dark() const { return dark_; }

  // The device's next event; at Timestamp::max() (a link that never comes up) none.
  void schedule(uint32_t dev, Timestamp at, EventKind kind);
  EventQueue& queue() { return queue_; }

  // Links and windows.
  // When the device is next online at or after t, with a minute or so of spread when its
  // link has to come up first (devices on one schedule do not all connect in one second).
  Timestamp next_online(uint32_t dev, Timestamp t);
  // Whether `t` is inside the device's site window and outside its quiet hours: the twin's
  // own judgement, independent of the windows the server sent.
  bool in_window(uint32_t dev, Timestamp t);
  // Within a week from now, whether the device is ever online while its site's window is open.
  bool links_ever_meet(uint32_t dev);
  // `d` spread by the scenario's check-in jitter (at least a second): the device's own draw
  // for now, a hash of the run's seed, the device and the time — however many times, in
  // whatever order, the twin or the agents in a network run ask (so the two draw the same).
  Duration jittered(uint32_t dev, Duration d);
  // A uniform draw in [0, 1) of the device at `t` (`salt`: which draw).
  double draw(uint32_t dev, Timestamp t, uint64_t salt) const;
  // Whether the scenario's defect of `kind` strikes the device with `offer` (one draw per
  // device and defect, independent of event order); `after` gets its delay.
  // The scenario's defect of `kind` that strikes the device with `offer`, or nullptr.
  const DefectSpec* defect_spec(uint32_t dev, const UpdateOffer& offer, DefectKind kind) const;
  bool defect(uint32_t dev, const UpdateOffer& offer, DefectKind kind,
              Duration* after = nullptr) const;

  // DeviceWorld: the agents' surroundings in a network run.
  bool online(uint32_t dev, Timestamp t) override;
  Timestamp online_until(uint32_t dev, Timestamp t) override;
  Timestamp link_up_at(uint32_t dev, Timestamp t) override;
  uint64_t bandwidth_bps(uint32_t dev) override { return link(dev).bandwidth_bps; }
  uint64_t declared_size(const std::string& component, const std::string& version) override;
  bool defective(uint32_t dev, const std::string& version, bool revert, DefectKind kind) override;
  Duration next_poll(uint32_t dev) override { return jittered(dev, link(dev).poll_interval); }
  bool keeps_previous(uint32_t dev) override { return devices_[dev].keeps; }
  Duration install_time() override { return sc_.install_time; }
  Duration reboot_time() override { return sc_.reboot_time; }

 private:
  // The key of the device's link schedule in links_; nullptr for a link that is always up.
  const std::string* link_key(uint32_t dev) const;
  // generate() for a given fleet.
  void take_given(std::vector<Device>& out);
  // Index of the quiet hours `windows` in quiet_sets_ plus 1 (0: none).
  uint8_t quiet_index(const std::vector<MaintenanceWindow>& windows);
  void index_windows();  // links_, maintenance_ and quiet_ from sites_ and quiet_sets_

  const Scenario& sc_;
  uint64_t seed_;
  Timestamp arrived_{};  // when the devices were first scheduled: the scenario's start
  bool preflight_;
  Rng rng_;
  ManualClock& clock_;
  std::vector<Site> sites_;
  std::vector<std::string> site_group_;  // per site: the prefix of its group
  bool siteless_ = false;  // a given fleet: sites_ ends with a stand-in for devices without one
  std::vector<std::vector<MaintenanceWindow>> quiet_sets_;      // what SimDevice::quiet indexes
  std::vector<std::string> given_ids_;                          // a given fleet's ids
  std::unordered_map<std::string_view, uint32_t> given_index_;  // into given_ids_
  std::vector<std::string> revisions_;
  std::vector<SimDevice, HugePageAllocator<SimDevice>> devices_;
  int id_width_ = 6;                    // digits in a device id
  std::vector<Inventory> inventories_;  // what devices run: a handful of distinct lists
  std::map<Inventory, uint32_t> inventory_ids_;
  WindowCache links_;        // online windows of intermittent links, per (site, class)
  WindowCache maintenance_;  // each site's maintenance windows
  WindowCache quiet_;        // quiet hours, per (site, quiet_sets_ entry)
  std::vector<std::string> link_keys_;
  EventQueue queue_;
  uint64_t seq_ = 0;
  uint32_t dark_ = 0;
};

}  // namespace drover::sim
