// LinkWatchdog: the device's own remedy for a link that hangs (docs/agent.md, "Link
// watchdog"). A server out of reach cannot send a command, and a modem that hung stays hung
// until something on the device resets it. The watchdog counts silence only while the agent
// tries and gets no answer at all (ServerLink::reach: any HTTP answer, an error status
// included, means the link works — a server that answers 503 is sick, the link is not): from
// the first request left unanswered since the last answer. A device that polls rarely, or
// whose link is down by schedule, is not silent while it does not try. Once silent for
// `reset_after`, it runs the configured reset command (a modem or network restart), and again
// every `reset_after` while the silence lasts; once silent for `reboot_after`, it reboots —
// and, while reboots do not help, the next one waits twice as long (at most a week, or
// reboot_after if longer), so a device whose link is gone for good is not rebooted over and
// over. An optional probe (e.g. a ping of a host beyond the modem) that succeeds holds both
// back: the network is up, the server is what is missing; the silence counts from then.
//
// What it decided is kept in a small file (link.json in the data directory), written before
// it acts: since when the link has been silent, the last reset and reboot, and the reboots
// since the last answer. After a restart or a reboot the silence goes on from that time once
// the agent's first request goes unanswered again (nothing is done before the agent has
// tried), and a reboot that did not help is not repeated at once.
//
// Thread-compatible: the agent's one thread drives it.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "agent/command.h"
#include "agent/server_link.h"
#include "base/clock.h"
#include "base/file_system.h"
#include "base/result.h"

namespace drover::agent {

struct LinkWatchdogOptions {
  Duration reset_after{0};  // 0: no reset
  std::vector<std::string> reset;
  Duration reset_timeout = minutes(2);
  Duration reboot_after{0};        // 0: no reboot
  std::vector<std::string> probe;  // empty: no probe (any silence counts)
  Duration probe_timeout = seconds(30);
};

// The longest wait between two reboots while they do not bring the link back (unless
// reboot_after itself is longer).
inline constexpr Duration kMaxRebootBackoff = days(7);
inline constexpr uint32_t kMaxCountedReboots = 64;

class LinkWatchdog {
 public:
  // `reboot` reboots the device: returns only when it did not.
  LinkWatchdog(std::string state_path, LinkWatchdogOptions options, CommandRunner& runner,
               Clock& clock, std::function<Status()> reboot, FileSystem& fs = real_file_system());

  // Loads what an earlier run decided. A file that does not parse is set aside
  // (link.json.damaged) and the watchdog starts afresh: returned is what to log about it (""
  // when nothing). kIo when the file cannot be read or set aside.
  Result<std::string> start();

  struct Check {
    std::string did;             // what it did, for the log ("" nothing)
    Duration next = minutes(1);  // when to look again at the latest
  };
  // `reach`: what the link knows of reaching the server now. Acts when due.
  Check check(const ServerLink::Reach& reach);

 private:
  Status save();
  // Whether the probe says the network is up (no probe: never); `why` when it does not.
  bool probe_says_up(std::string* why);

  std::string path_;
  LinkWatchdogOptions o_;
  CommandRunner& runner_;
  Clock& clock_;
  std::function<Status()> reboot_;
  FileSystem& fs_;
  // What the file keeps.
  std::optional<Timestamp> silent_since_;  // the first request unanswered since an answer
  Timestamp reset_at_{};                   // the last reset run
  Timestamp reboot_at_{};                  // the last reboot decided
  uint32_t reboots_ = 0;                   // reboots since the last answer
};

}  // namespace drover::agent
