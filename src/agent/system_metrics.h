// What the device itself reports (docs/agent.md, "System metrics"), read on Linux from /proc
// and /sys under a root that tests replace. Each collector is optional; one whose files are
// absent (no battery, no thermal zone) reports nothing, and an unreadable file is a problem
// for the log, never a failed round.
//
//   cpu          cpu_usage_ratio (0..1 since the previous round)
//   memory       memory_available_bytes, memory_total_bytes, agent_rss_bytes
//   disk         disk_free_bytes{mount}, disk_total_bytes{mount}   (statvfs)
//   temperature  temperature_celsius{zone,type}                    (thermal zones)
//   uptime       uptime_seconds
//   reboots      reboots_total; at the first round after a reboot, urgent:
//                reboot{reason} = reboots_total, reason one of watchdog, kernel_panic,
//                shutdown (the agent was stopped cleanly first), unclean (power cut, reset)
//   link         link_up{iface,type} for the default route's interface (type wifi,
//                cellular, ethernet, other; iface "" and type none without a route);
//                wifi_signal_dbm{iface}, wifi_link_quality{iface} (/proc/net/wireless)
//   battery      battery_level_percent{supply}, battery_voltage_volts{supply},
//                battery_temperature_celsius{supply}, battery_charging{supply},
//                power_online{supply} (mains and USB supplies)
//   modem        (off unless asked for: it runs ModemManager's `mmcli`, not a file read)
//                cellular_modem_present, cellular_registered, cellular_connected (0/1);
//                cellular_signal_quality_percent{tech} (the access technology); from the
//                modem's extended signal report cellular_{rssi,rsrp,rscp}_dbm{tech},
//                cellular_{rsrq,snr,ecio}_db{tech} (the radio family measured)
//
// Thread-compatible.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "agent/command.h"
#include "base/file_system.h"
#include "protocol/telemetry_batch.h"

namespace drover::agent {

struct CollectorOptions {
  std::string root;  // prefixed to every /proc and /sys path ("" = the real ones)
  bool cpu = true, memory = true, disk = true, temperature = true, uptime = true, reboots = true,
       link = true, battery = true, modem = false;
  std::vector<std::string> disks = {"/"};  // mount points (under root)
  // Where the boot count and the clean-stop mark are kept (the agent's data directory).
  std::string boots_file;
  // The modem collector: how long one `mmcli` may take, and the rate (seconds) asked of the
  // modem's extended signal report when it is off (the telemetry interval).
  Duration modem_timeout = seconds(5);
  int64_t modem_signal_rate_s = 60;
};

// `mmcli --output-keyvalue` output: "key : value" lines, the key padded with spaces; a list
// is key.length plus key.value[1..n]. Lines without " : " are skipped; the first of a
// repeated key wins.
std::map<std::string, std::string> parse_mmcli_keyvalue(std::string_view text);

struct Collected {
  std::vector<protocol::TelemetrySeries> routine;
  std::vector<protocol::TelemetrySeries> urgent;
  std::vector<std::string> problems;  // what could not be read or made sense of, for the log
};

class SystemCollector {
 public:
  explicit SystemCollector(CollectorOptions options, FileSystem& fs = real_file_system(),
                           CommandRunner& commands = system_commands());
  // One round of every collector asked for. Reads files only, except the modem collector,
  // which waits for mmcli: at most three runs of `modem_timeout` in one round, after which
  // a hung ModemManager is left alone for ten rounds.
  Collected collect(int64_t t_ms);
  // What collect() returned is queued: a reboot it reported is now on record (the boots
  // file moves on). Until this is called, every round reports the reboot again, so one
  // lost with a failed append or a crash is not lost for good.
  Status boot_recorded();
  // The agent is stopping cleanly: the next boot, if it comes before a new start, was a
  // shutdown, not a crash.
  Status note_clean_stop();

 private:
  void cpu(int64_t t, Collected& out);
  void memory(int64_t t, Collected& out);
  void disk(int64_t t, Collected& out);
  void temperature(int64_t t, Collected& out);
  void uptime(int64_t t, Collected& out);
  void reboots(int64_t t, Collected& out);
  void link(int64_t t, Collected& out);
  void battery(int64_t t, Collected& out);
  void modem(int64_t t, Collected& out);
  void modem_signal(int64_t t, const Environment& env, Collected& out);
  // A problem for the log once, not every round while it lasts.
  void modem_problem(std::string problem, Collected& out);
  std::string path(const std::string& p) const { return o_.root + p; }

  CollectorOptions o_;
  FileSystem& fs_;
  CommandRunner& commands_;
  uint64_t cpu_busy_ = 0, cpu_total_ = 0;  // the previous round's /proc/stat
  bool boot_recorded_ = false;
  uint64_t boots_ = 0;
  std::string boot_id_;
  std::string pstore_seen_;          // the pstore records already blamed for a reboot, comma-joined
  std::string boots_record_;         // the boots file's contents once this boot is on record
  int modem_rest_ = 0;               // rounds the modem is left alone (mmcli failed or hung)
  std::string modem_path_;           // the modem object (its D-Bus path) asked about
  bool signal_setup_asked_ = false;  // --signal-setup asked of this modem object
  bool signal_unsupported_ = false;  // this modem object has no extended signal report
  std::string modem_problem_;        // the last modem problem logged
};

}  // namespace drover::agent
