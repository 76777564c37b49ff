// DeviceService: every device-facing use case, independent of transport. The HTTP device
// API (next), the MQTT bridge and the simulator all call these methods; none of them holds
// logic of its own.
//
// It owns the registry of devices: an in-memory index loaded from the Store and written
// through to it, so a check-in that changes nothing costs a hash lookup and no I/O. Beside
// each full record it keeps a one-cache-line entry with what every check-in reads (id,
// update state, the inventory as an index into a table of the distinct inventories the
// fleet runs, and the engine's cursor): a check-in that changes nothing reads that line,
// its index slot and the engine's 8 bytes for the device, and nothing else.
//
// Thread-safety: all methods may be called from several threads.
#pragma once

#include <array>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "base/clock.h"
#include "base/flat_index.h"
#include "base/huge_pages.h"
#include "base/mutex.h"
#include "base/result.h"
#include "fleet/config_service.h"
#include "model/command.h"
#include "model/device.h"
#include "rollout/engine.h"
#include "store/store.h"

namespace drover {

struct CheckInRequest {
  std::string_view device_id;
  std::span<const InstalledComponent> installed;  // everything installed, any order
  UpdateState state = UpdateState::kIdle;
  std::string_view holding = {};  // kReady: the rollout whose image the device holds
  bool keeps_previous = false;    // Device::keeps_previous, as the device says now
  // What it says of its configuration; null: nothing (an agent that applies none).
  const protocol::ConfigReport* config = nullptr;
};

struct CheckInResponse {
  std::optional<UpdateOffer> offer;
  std::optional<HoldAnswer> hold;  // to a device that holds an image (kReady)
  std::vector<Command> commands;   // remote commands for it (CommandQueue::for_check_in)
  Duration next_checkin{0};        // when the device should check in again
  // The configuration it should run, when it reported another (ConfigService::target).
  std::optional<ConfigTarget> config;
};

struct StatusReport {
  std::string_view device_id;
  std::string_view rollout_id;
  std::string_view version;  // the version the report is about
  protocol::Report status;
  std::string_view message;  // free text, kept in the deployment's history
  // With "succeeded": the version the device now keeps in its other slot ("" for none), so a
  // fleet revert to it can switch back without a download.
  std::string_view standby = {};
};

// A page of the device listing: devices matching every condition, in id order.
struct DeviceQuery {
  DeviceFilter filter;  // as a rollout's filter: an empty list matches anything
  std::optional<Enrollment> enrollment;
  std::optional<bool> decommissioned;
  std::string after;  // only ids after this one: the previous page's `next`
  size_t limit = 100;
};

// When a device was last heard from, and when it was told to come back (to the second).
// std::nullopt: not since this server started (kept in memory only; a restart relearns both
// at the next check-in).
struct CheckInTimes {
  std::optional<Timestamp> last;
  std::optional<Timestamp> next;
};

struct DevicePage {
  std::vector<Device> devices;
  std::vector<CheckInTimes> check_ins;  // parallel to devices
  size_t matched = 0;  // devices matching the query on all pages (ignoring `after`)
  std::string next;    // pass as `after` for the next page; "" on the last page
};

struct FleetOptions {
  Duration poll_interval = minutes(30);      // the default answer to "when next?"
  Duration busy_poll_interval = minutes(5);  // while an update is under way
};

class CommandQueue;

class DeviceService {
 public:
  DeviceService(Store& store, RolloutEngine& engine, FleetOptions options = {});

  // Check-ins carry the device's remote commands from `commands` from now on (not owned;
  // set before the first check-in). Without one, they carry none.
  void attach_commands(CommandQueue* commands) { commands_ = commands; }
  // Check-ins that report a configuration are answered with their type's (not owned).
  void attach_configs(const ConfigService* configs) { configs_ = configs; }

  // Loads the registry from the store. kIo / kCorruption from the store.
  Status load();

  // Registers (or updates) devices: all are validated first, then written in one batch.
  // kInvalidArgument names the first bad device; nothing is written then. `with` holds other
  // records written in the same batch (an enrollment token's use); its devices and removals are
  // ignored.
  Status provision(std::vector<Device> devices, WriteBatch with = {});

  // A device checks in: its reported inventory is recorded (written when it changed; a new
  // update state alone is kept in memory until the record's next write), and it gets its
  // update offer, if any — or, holding an image (kReady), what to do with it — and when to
  // come back.
  // kNotFound for an unknown device, kFailedPrecondition for a decommissioned one,
  // kInvalidArgument for a malformed inventory (nothing is recorded then).
  // Then its open remote commands, if a queue is attached (taken after the registry's
  // lock is released); a store error there fails the check-in.
  Result<CheckInResponse> check_in(const CheckInRequest& request);

  // A deployment status report; returns the deployment's state afterwards. Errors as
  // RolloutEngine::report, plus kNotFound for an unknown device.
  Result<DeploymentState> report_status(const StatusReport& report);

  // A hint that these devices will check in soon (the twin knows its next second of events):
  // what their check-ins read is fetched into the CPU cache, a whole batch of lookups in
  // flight at once instead of one after the other. No effect on behaviour.
  void warm(std::span<const std::string_view> device_ids);

  // Changes one device atomically: `change` edits a copy of its record (under the registry
  // lock: it must be quick and must not call back), which is validated and written before
  // the registry takes it. An error from `change` is returned and nothing is written.
  // Returns the record as written. kNotFound for an unknown device, unless `created` is
  // given: then an unknown device is created from Device{id} (in the same critical section,
  // so nothing can enroll the id in between) and *created says whether it was.
  // `with` holds other records written in the same batch (as provision()).
  Result<Device> update(std::string_view id, const std::function<Status(Device&)>& change,
                        bool* created = nullptr, WriteBatch with = {});

  // Takes a device out of service for good: its check-ins and tokens are refused from then
  // on, and its deployments without an outcome leave their rollouts
  // (RolloutEngine::device_left). Decommissioning twice changes nothing. kNotFound for an
  // unknown device.
  Result<Device> decommission(std::string_view id);

  // Removes the devices pending enrollment since before `enrolled_before`: from the store, in
  // one batch, then from the registry. They may enroll again as new. A pending device without
  // an enrollment time (kept since) is given `now`, written in the same batch. Returns the
  // ids removed. O(1) while no pending device can be due, else O(devices).
  Result<std::vector<std::string>> expire_pending(Timestamp enrolled_before, Timestamp now);

  // One page of the registry. A scan of every device: O(devices · log limit). limit 0
  // counts only (no devices, no next).
  DevicePage list(const DeviceQuery& query) const;

  // Whether a device may act (for every authenticated request): its enrollment and whether
  // it is decommissioned, without copying its record. std::nullopt for an unknown device.
  struct Standing {
    Enrollment enrollment = Enrollment::kAccepted;
    bool decommissioned = false;
    // The start of the device's public key (base64url, kKeyTagSize characters; shorter or
    // empty when it has none): device tokens name the key they were issued for, and one
    // issued before a rotation no longer matches.
    std::string key_tag;
  };
  static constexpr size_t kKeyTagSize = 11;  // 64 bits of the key

  // Devices that wait for an operator (enrolled without a token), kept count of as they
  // change: DeviceAuth bounds how many may wait.
  size_t pending_count() const;
  std::optional<Standing> standing(std::string_view id) const;

  // Where the fleet stands (for metrics), by a scan of the registry: devices in service by
  // update state, and those pending enrollment or decommissioned.
  struct Census {
    std::array<uint64_t, protocol::kUpdateStateCount> by_state{};  // indexed by UpdateState
    uint64_t pending = 0;
    uint64_t decommissioned = 0;
  };
  Census census() const;

  // The devices in service whose last check-in since this server started reported `state`,
  // with when that check-in was (to the second), ordered by id. For a state other than idle,
  // only the devices not idle are read (a set the registry keeps); for idle, every device.
  struct Reported {
    std::string id;
    Timestamp at;
  };
  std::vector<Reported> in_update_state(UpdateState state) const;
  // The devices in service whose last report of their configuration named an error (the
  // apply command failed, or the device's own envelope refused the values), said since this
  // server started; by id, each with when it said so last and the error.
  struct ConfigFailure {
    std::string id;
    Timestamp at;
    std::string error;
  };
  std::vector<ConfigFailure> config_failures() const;

  // The fleet at a glance (GET /api/v1/fleet/summary, the web console's overview): devices
  // in service counted by update state, enrollment, type, revision, site, connectivity and
  // installed version, and by when they last checked in. One scan of the registry under its
  // lock; names are copied out only once per distinct value.
  struct Summary {
    uint64_t in_service = 0;
    uint64_t decommissioned = 0;
    std::array<uint64_t, protocol::kUpdateStateCount> by_state{};  // indexed by UpdateState
    std::array<uint64_t, 3> by_enrollment{};                       // accepted, pending, rejected
    std::map<std::string, uint64_t> by_device_type;
    std::map<std::string, uint64_t> by_hardware_revision;
    std::map<std::string, uint64_t> by_site;  // "" for devices without a site
    std::map<std::string, uint64_t> by_connectivity;
    // component -> version -> devices that run it
    std::map<std::string, std::map<std::string, uint64_t>> by_installed;
    // By their last check-in (kept in memory since the server started): within the hour,
    // within the day, before, none; overdue: past the check-in they were told to make by
    // more than kOverdueGrace.
    uint64_t seen_last_hour = 0;
    uint64_t seen_last_day = 0;
    uint64_t seen_before = 0;
    uint64_t never_seen = 0;
    uint64_t overdue = 0;
  };
  static constexpr Duration kOverdueGrace = seconds(60);
  Summary summary(Timestamp now) const;

  // A copy of the registry's record, or std::nullopt.
  std::optional<Device> device(std::string_view id) const;
  // The devices of a type (not decommissioned) by what they say of their configuration
  // against `sha256`, the one they should run: running it; not running it, without an error
  // (on the way, or an agent that applies none); refusing it or failing to apply it (the
  // first few ids of each kind kept, to show an operator).
  struct ConfigTally {
    uint64_t in_sync = 0, pending = 0, failed = 0;
    std::vector<std::string> some_pending, some_failed;  // at most kConfigTallyIds each
  };
  static constexpr size_t kConfigTallyIds = 20;
  ConfigTally config_tally(std::string_view device_type, std::string_view sha256) const;
  // When the device last checked in (to the second), or std::nullopt: unknown device, or
  // none since this server started.
  std::optional<Timestamp> last_check_in(std::string_view id) const;
  // Its last check-in and the next one it was told to make; std::nullopt: unknown device.
  std::optional<CheckInTimes> check_in_times(std::string_view id) const;
  size_t device_count() const;
  // How many distinct inventories the registry holds (shared between devices that run the
  // same versions; one is dropped when its last device moves on).
  size_t distinct_inventories() const;

 private:
  // Takes a decommissioned or not (or no longer) accepted device out of its rollouts; tells
  // the engine a device in the fleet is in it (again).
  Status leave_rollouts_if_out(const Device& d) REQUIRES(mu_);

  using Inventory = std::vector<InstalledComponent>;
  struct alignas(64) Entry {
    std::string id;
    uint32_t inventory = 0;  // index into inventories_
    uint32_t site = 0;       // index into site_names_
    UpdateState state = UpdateState::kIdle;
    bool decommissioned : 1 = false;
    bool keeps_previous : 1 = false;  // Device::keeps_previous: compared at every check-in
    // When it was told to come back, after seen_s: encode_wait()'s two bytes; 0 when its
    // last check-in was not answered (an error).
    uint16_t next_wait = 0;
    // The last check-in, in seconds since kSeenEpoch; 0: none since the server started
    // (kept in memory only: a restart relearns it at the next check-in).
    uint32_t seen_s = 0;
    DeviceCursor cursor;
  };
  // One cache line per device: the check-in path reads and writes nothing else.
  static_assert(sizeof(Entry) == 64);
  static constexpr int64_t kSeenEpoch = 1'577'836'800;  // 2020-01-01T00:00:00Z
  CheckInTimes check_in_times(const Entry& e) const;

 public:
  // A wait in two bytes: whole seconds up to 9 hours, then minutes (rounded up) up to 22
  // days (clamped). A wait under a second is 0 (every answer asks for 1 s or more).
  static uint16_t encode_wait(Duration wait);
  static Duration decode_wait(uint16_t code);

 private:
  struct SharedInventory {
    Inventory components;
    uint32_t users = 0;  // entries that point here; 0: free for reuse
  };

  static constexpr uint32_t kNone = UINT32_MAX;
  uint32_t find(std::string_view id, uint64_t id_hash) const REQUIRES(mu_);  // or kNone
  uint32_t find(std::string_view id) const REQUIRES(mu_) { return find(id, FlatIndex::hash(id)); }
  // Adds a record (new) or replaces one (at `pos`), keeping its entry in step.
  void put(uint32_t pos, Device d) REQUIRES(mu_);
  uint32_t share_inventory(const Inventory& components) REQUIRES(mu_);
  void release_inventory(uint32_t id) REQUIRES(mu_);
  uint32_t site_id(const std::string& name) REQUIRES(mu_);

  // check_in() before the remote commands.
  Result<CheckInResponse> answer_check_in(const CheckInRequest& request);

  Store& store_;
  RolloutEngine& engine_;
  FleetOptions options_;
  CommandQueue* commands_ = nullptr;
  const ConfigService* configs_ = nullptr;
  // The registry's lock. Taken before the engine's (check-ins call the engine with it held;
  // the engine never calls back): base/lock_order.h's order, checked at every lock().
  mutable Mutex mu_{LockLevel::kDeviceRegistry};
  // devices_ and entries_ are parallel. They shrink only when expire_pending() removes
  // devices: positions then move and the index is rebuilt, so nothing keeps a position
  // past the lock.
  std::vector<Device, HugePageAllocator<Device>> devices_ GUARDED_BY(mu_);
  std::vector<Entry, HugePageAllocator<Entry>> entries_ GUARDED_BY(mu_);
  // The positions of the entries in service whose update state is not idle: what
  // in_update_state reads
  // (a rule's tick every minute) instead of every entry of the fleet.
  std::unordered_set<uint32_t> busy_ GUARDED_BY(mu_);
  // The positions of the entries in service whose record holds a configuration error: what
  // config_failures() reads.
  std::unordered_set<uint32_t> config_failing_ GUARDED_BY(mu_);
  size_t pending_ GUARDED_BY(mu_) = 0;  // pending and in service (see pending_count)
  // No device pending (and in service) enrolled before this: expire_pending() has nothing
  // to look for until its cut-off passes it.
  Timestamp oldest_pending_ GUARDED_BY(mu_) = Timestamp::max();
  FlatIndex index_ GUARDED_BY(mu_);  // id -> position
  std::vector<SharedInventory> inventories_ GUARDED_BY(mu_);
  std::vector<uint32_t> free_inventories_ GUARDED_BY(mu_);
  std::map<Inventory, uint32_t> inventory_ids_ GUARDED_BY(mu_);
  uint32_t last_shared_ GUARDED_BY(mu_) = kNone;  // what share_inventory() last handed out
  std::vector<std::string> site_names_ GUARDED_BY(mu_);
  std::unordered_map<std::string, uint32_t> site_ids_ GUARDED_BY(mu_);
};

}  // namespace drover
