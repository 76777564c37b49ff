// RemoteCommands: the device's side of remote commands (docs/agent.md "Remote commands").
// The server names an action and an argument; the agent runs only what its configuration
// allows — the services restart_service may restart, the named commands "run" may run, a
// reboot if it knows how — and refuses the rest. Each command id is run at most once:
//
//   taken (journaled "pending") → "running" journaled → run → "done" journaled with the
//   outcome → reported → "delivered" (its id kept, so a resend is not run again)
//
// The journal (commands.json in the data directory) is written atomically before each step.
// An agent killed while a command ran finds it "running" at start: a reboot is then done
// (the device came back), anything else failed ("cut short"), never run again.
//
// Thread-compatible: the agent's one thread drives it.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "agent/command.h"
#include "agent/server_link.h"
#include "base/clock.h"
#include "base/file_system.h"
#include "base/result.h"
#include "protocol/device.h"

namespace drover::agent {

struct NamedCommand {
  std::vector<std::string> command;  // argv
  Duration timeout = minutes(5);
};

struct RemoteCommandOptions {
  // Whether this agent takes remote commands at all (its configuration has
  // "remote_commands"). False: every command is refused, and the refusal reported.
  bool enabled = false;
  // restart_service: this argv with the service's name appended (e.g. systemctl restart);
  // only the names in `services` are taken. Empty: restart_service is refused.
  std::vector<std::string> restart_service = {"systemctl", "restart"};
  std::vector<std::string> services;
  Duration restart_timeout = minutes(2);
  // run: the argument names one of these.
  std::map<std::string, NamedCommand> named;
  // Whether a reboot is allowed (the agent's reboot function must be given too).
  bool allow_reboot = true;
};

// How an action that reaches into the agent itself is done.
struct CommandHooks {
  // Reboots the device: returns only on failure (the reboot command could not be started).
  std::function<Status()> reboot;
  // Gives up a download under way or an image the device holds for its maintenance window;
  // what it did ("nothing to clear" when idle). kFailedPrecondition when the update is past
  // the point of giving up (installing, rebooting). Commands arrive only at check-ins, which
  // a device makes while idle, holding an image, or retrying a download that failed.
  // `download_only` (the argument "download"): a download under way only, anything else is
  // left as it is (succeeded, saying so).
  std::function<Result<std::string>(bool download_only)> clear_update;
  // Re-enrolls the device with a new identity key (ServerLink::rotate_key): the new public
  // key (base64url).
  std::function<Result<std::string>()> rotate_key;
  // Fetches the type's configuration and applies it again (ConfigApplier::reapply): what it
  // did. kFailedPrecondition: the document is refused. Empty: the agent applies none.
  std::function<Result<std::string>()> reapply_config;
};

// One entry of the journal, as the agent keeps it.
struct JournaledCommand {
  enum class Step : uint8_t { kPending, kRunning, kDone, kDelivered };
  RemoteCommand command;
  Step step = Step::kPending;
  protocol::CommandOutcome outcome = protocol::CommandOutcome::kSucceeded;
  int exit_code = -1;
  std::string output;
};

class RemoteCommands {
 public:
  // Delivered ids kept so that a resent command is recognised.
  static constexpr size_t kRememberedIds = 256;

  RemoteCommands(std::string journal_path, RemoteCommandOptions options, CommandRunner& runner,
                 Clock& clock, FileSystem& fs = real_file_system());

  // Loads the journal (none: empty) and settles a command cut short by a stop or a reboot.
  // kCorruption for a journal that does not parse; kIo when it cannot be read or written.
  Status start();

  // Journals the commands not seen before (a known id, however far along, is ignored).
  // kIo when the journal cannot be written: none is taken then (nothing changes), and the
  // server sends them again.
  Status take(const std::vector<RemoteCommand>& commands);

  // Runs every pending command, oldest first, journaling before and after each. Stops at
  // the first journal write that fails (kIo): what ran is then reported "failed" at the next
  // start, never run again.
  Status run_pending(const CommandHooks& hooks);

  // Reports every finished command not yet delivered. A refusal for good (kNotFound: the
  // server does not know it; kInvalidArgument, kPermissionDenied: it will never take it)
  // drops the report; any other failure keeps it for the next call, and returns the first
  // such error once every other result was tried.
  Status deliver(ServerLink& server);

  const std::vector<JournaledCommand>& journal() const { return journal_; }
  bool has_undelivered() const;

 private:
  // One pending command, run now: its outcome, exit code and output.
  JournaledCommand execute(JournaledCommand entry, const CommandHooks& hooks);
  Status save();

  std::string path_;
  RemoteCommandOptions o_;
  CommandRunner& runner_;
  Clock& clock_;
  FileSystem& fs_;
  std::vector<JournaledCommand> journal_;  // oldest first
};

}  // namespace drover::agent
