// A simulation scenario: the fleet (device types, hardware revisions, sites, connectivity),
// the artifacts, the rollout plan, and the defects to inject. Scenario files are JSON (with
// comments allowed); the format is documented in docs/scenarios.md.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/clock.h"
#include "base/result.h"
#include "model/artifact.h"
#include "model/device.h"
#include "model/rollout.h"
#include "model/site.h"

namespace drover::sim {

struct Share {
  std::string name;
  double share = 1;
};

struct DeviceTypeSpec {
  std::string name;
  double share = 1;
  std::vector<Share> hardware_revisions;
};

struct SiteGroupSpec {
  std::string prefix;  // sites are named prefix-001, prefix-002, ...
  uint32_t count = 1;
  std::string time_zone = "UTC";
  std::vector<MaintenanceWindow> maintenance_windows;
};

enum class LinkKind : uint8_t {
  kAlwaysOn,      // polls every poll_interval
  kCellular,      // the same, over a slower link
  kIntermittent,  // online only inside its daily windows (site local time)
};

struct ConnectivitySpec {
  std::string name;
  LinkKind kind = LinkKind::kAlwaysOn;
  double share = 1;
  Duration poll_interval = minutes(15);
  uint64_t bandwidth_bps = 10'000'000;
  std::vector<MaintenanceWindow> online;  // kIntermittent only
};

enum class DefectKind : uint8_t {
  kInstallFails,   // the install step fails; the device stays on its image
  kBootFails,      // the trial boot fails; the device returns to the previous slot
  kFailsAfter,     // commits, then reports itself unhealthy after `after`
  kGoesSilent,     // commits, then goes dark after `after`: never checks in again (a radio
                   // driver that hangs, a watchdog that never fires)
  kDrainsBattery,  // commits and works, but its battery drains `factor` times as fast (a
                   // radio that no longer sleeps): only a health gate sees it
  kLeaksMemory,    // commits and works, but loses `bytes_per_day` of available memory a day
  kReboots,        // commits and works, but reboots `factor` times as often
  kCrashes,        // commits and works, but its application crashes `factor` times as often
  kGlitches,       // commits and works, but its metrics raise `factor` times as many
                   // anomaly alarms (a sensor driver that returns spikes)
};

// A defect of a version, on the devices that match every scope field given (empty: any).
struct DefectSpec {
  std::string hardware_revision;  // empty: every revision
  std::string site_prefix;        // the site group it hits (SiteGroupSpec::prefix)
  std::string time_zone;          // the sites in this IANA zone (a DST bug, say)
  std::string connectivity;       // the connectivity class (ConnectivitySpec::name)
  std::string version;            // empty: the rollout's version
  DefectKind kind = DefectKind::kBootFails;
  double probability = 1;
  Duration after{0};         // kFailsAfter, kGoesSilent
  double factor = 1;         // kDrainsBattery, kReboots, kCrashes, kGlitches
  double bytes_per_day = 0;  // kLeaksMemory
};

// Devices lost whatever they run (a dead battery, a cut cable, a stolen truck): this share
// of the fleet, drawn at random, goes dark for good at a random time within `within` of the
// start.
struct LostSpec {
  double share = 0;
  Duration within = hours(24);
};

// Devices with their own quiet hours (a vehicle's owner, a shift not to be interrupted):
// this share of the fleet, drawn at random, carries `windows` (site local time).
struct QuietHoursSpec {
  double share = 0;
  std::vector<MaintenanceWindow> windows;
};

// A device of a fleet given one by one (Scenario::fleet) rather than drawn from shares: the
// live fleet a server predicts a rollout on (sim/live_fleet.h).
struct GivenDevice {
  // Its id, type, revision, site (one of Scenario::sites, or none), connectivity (a class of
  // Scenario::connectivity; none or an unknown one: the first class), what it runs, its
  // quiet hours and whether it keeps its previous image.
  Device record;
  // When it first checks in, after the start; none: at a uniformly drawn time within one
  // poll interval, as a drawn device does.
  std::optional<Duration> first_check_in;
  bool dark = false;  // never checks in (long overdue: the contract says it is gone)
};

struct Scenario {
  std::string name;
  uint64_t seed = 1;
  Timestamp start{};
  Duration horizon = hours(72);  // the simulation stops here at the latest
  Duration drain = hours(6);     // then lets devices mid-update finish for this long
  Duration rollout_start_after{0};
  Duration engine_tick = seconds(60);  // how often the engine judges gates and stages
  uint32_t devices = 100;
  std::vector<DeviceTypeSpec> device_types;
  std::vector<SiteGroupSpec> site_groups;
  std::vector<ConnectivitySpec> connectivity;
  double checkin_jitter = 0.1;  // +/- this fraction of the poll interval
  Duration install_time = minutes(2);
  Duration reboot_time = seconds(90);
  std::vector<InstalledComponent> installed;  // what every device runs at the start
  std::vector<Artifact> artifacts;
  RolloutPlan rollout;
  std::vector<DefectSpec> defects;
  std::vector<QuietHoursSpec> quiet_hours;  // shares sum to at most 1
  // The share of devices that keep their previous image in an A/B slot: a fleet revert
  // switches them back without a download.
  double keeps_previous = 1.0;
  LostSpec lost;
  // Set: the fleet as given, device by device, with `sites` for its sites; `devices`,
  // `device_types`, `site_groups`, `installed`, `quiet_hours` and `keeps_previous` then play
  // no part. Only built in code (a scenario file draws its fleet).
  std::vector<GivenDevice> fleet;
  std::vector<Site> sites;
};

// Parses and validates a scenario document. kInvalidArgument names the field at fault.
Result<Scenario> parse_scenario(std::string_view json_text);
// Reads and parses a file. kIo if it cannot be read.
Result<Scenario> load_scenario(const std::string& path);

const char* to_string(LinkKind k);
const char* to_string(DefectKind k);

}  // namespace drover::sim
