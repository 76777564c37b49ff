// LinkWatchdog: the device's own remedy for a link that hangs (docs/agent.md, "Link
// watchdog"). A server out of reach cannot send a command, and a modem that hung stays hung
// until something on the device resets it. The agent looks at when the server last answered
// anything (ServerLink::last_answer: any HTTP answer, an error status included — a server
// that answers 503 is sick, the link is not); once it has heard nothing for `reset_after`,
// the watchdog runs the configured reset command (a modem or network restart), and again
// every `reset_after` while nothing is heard; once nothing was heard for `reboot_after`, it
// reboots the device — and, while reboots do not help, the next one waits twice as long
// (at most a week), so a device whose link is gone for good is not rebooted over and over.
// An optional probe (e.g. a ping of the local gateway) that succeeds holds everything back:
// the link is up, the server is what is missing.
//
// What it decided is kept in a small file (link.json in the data directory), written before
// it acts: the last answer heard (at most hourly while answers come), the last reset and
// reboot and the reboots since the last answer. After a reboot the count of silence goes on
// from the last answer, not from the boot, and a reboot that did not help is not repeated at
// once.
//
// Thread-compatible: the agent's one thread drives it.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "agent/command.h"
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

// The longest wait between two reboots while they do not bring the link back.
inline constexpr Duration kMaxRebootBackoff = days(7);

class LinkWatchdog {
 public:
  // `reboot` reboots the device: returns only when it did not.
  LinkWatchdog(std::string state_path, LinkWatchdogOptions options, CommandRunner& runner,
               Clock& clock, std::function<Status()> reboot, FileSystem& fs = real_file_system());

  // Loads what an earlier run decided (none: silence counts from now). kCorruption for a
  // file that does not parse; kIo when it cannot be read.
  Status start();

  struct Check {
    std::string did;             // what it did, for the log ("" nothing)
    Duration next = minutes(1);  // when to look again
  };
  // `last_answer`: when the server last answered (the link's own count; nullopt: not since
  // this start). Acts when due.
  Check check(std::optional<Timestamp> last_answer);

 private:
  Status save();
  // Whether the probe says the link is up (no probe: never).
  bool probe_says_up(std::string* why);

  std::string path_;
  LinkWatchdogOptions o_;
  CommandRunner& runner_;
  Clock& clock_;
  std::function<Status()> reboot_;
  FileSystem& fs_;
  // What the file keeps.
  Timestamp heard_{};        // the last answer known
  Timestamp saved_heard_{};  // ... as last written
  Timestamp reset_at_{};     // the last reset run
  Timestamp reboot_at_{};    // the last reboot decided
  uint32_t reboots_ = 0;     // reboots since the last answer
};

}  // namespace drover::agent
