// CommandQueue: remote commands (model/command.h) from the moment they are asked for to the
// device's result. A command is written before it is queued in memory, so no device can be
// sent one the store does not hold; it travels in every check-in answer of its device until
// the device reports how it ended, it expires or it is cancelled, and each change of state is
// written before it is told. The device's agent runs an id at most once, so sending one again
// (after a lost answer, or a server restart) never runs it twice.
//
// The open commands are held in memory by device (loaded from the store at start), so a
// check-in costs one atomic load while no device has an open command. Closed commands are
// read from the store.
//
// Thread-safety: all methods may be called from several threads.
#pragma once

#include <atomic>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/clock.h"
#include "base/mutex.h"
#include "base/result.h"
#include "model/command.h"
#include "store/store.h"

namespace drover {

struct CommandLimits {
  size_t max_open_per_device = 16;  // more queued at once is refused (kResourceExhausted)
  Duration default_lifetime = hours(24);
  Duration max_lifetime = days(30);
};

struct CommandRequest {
  std::string id;  // "" for a new id ("cmd-<n>"); given, a retry with it returns the first
  std::string device_id;
  protocol::CommandAction action = protocol::CommandAction::kReboot;
  std::string argument;
  Duration lifetime{0};  // 0: CommandLimits::default_lifetime
  std::string requested_by;
  std::string reason;
};

struct CommandResult {
  std::string_view device_id;  // who reports: only the command's own device may
  std::string_view command_id;
  protocol::CommandOutcome outcome = protocol::CommandOutcome::kSucceeded;
  int exit_code = -1;
  std::string_view output;  // its tail is kept (kMaxCommandOutput bytes)
};

class CommandQueue {
 public:
  CommandQueue(Store& store, Clock& clock, CommandLimits limits = {});

  // Loads the open commands. kIo / kCorruption from the store.
  Status load() EXCLUDES(mu_);

  // Queues a command for a device the caller has checked may take one; written before this
  // returns (inside a CommitScope: queued for writing, the scope waits). With an id already
  // used: that command when it is the same request (same device, action and argument; a
  // retry), *created false; kAlreadyExists when it is another. kInvalidArgument for a bad
  // id, argument or lifetime; kResourceExhausted when the device has max_open_per_device open
  // commands. Errors from the store change nothing.
  Result<Command> queue(CommandRequest request, bool* created = nullptr) EXCLUDES(mu_);

  // What a device's check-in answer carries: its open commands not yet expired, oldest
  // first. Each one's first send (state sent) and any expiry found are written before this
  // returns; on a store error nothing changes and nothing is to be sent. One atomic load
  // when no device has an open command.
  Result<std::vector<Command>> for_check_in(std::string_view device_id) EXCLUDES(mu_);

  // The device's result. A command already ended by a result is returned as it is (a resent
  // result changes nothing); one closed by expiry or cancellation takes the result (what the
  // device did is what happened). kNotFound when the device has no such command.
  Result<Command> record_result(const CommandResult& result) EXCLUDES(mu_);

  // An operator withdraws an open command; a device that already has it may still run it
  // (and its result is then recorded). kNotFound; kFailedPrecondition when it has ended.
  Result<Command> cancel(std::string_view id, std::string_view by) EXCLUDES(mu_);

  // Closes every open command past its expiry; returns how many.
  Result<size_t> expire_due() EXCLUDES(mu_);

  // One command, or std::nullopt.
  Result<std::optional<Command>> get(std::string_view id);
  // A device's commands, newest first (Store::list_commands), after the command `after_id`
  // of that order when it is given. kNotFound when `after_id` is not the device's command.
  Result<std::vector<Command>> history(std::string_view device_id, size_t limit,
                                       std::string_view after_id = {});
  // Commands open now, all devices.
  size_t open_count() const { return open_total_.load(std::memory_order_relaxed); }
  // A copy of one device's open commands, oldest first.
  std::vector<Command> open_for(std::string_view device_id) const EXCLUDES(mu_);

 private:
  // The open command `id` of the device, or null.
  Command* find_open(std::string_view device_id, std::string_view id) REQUIRES(mu_);
  Result<size_t> expire_due_locked() EXCLUDES(mu_);
  // Drops the closed commands of a device's list (after they were written).
  void forget_closed(const std::string& device_id) REQUIRES(mu_);

  Store& store_;
  Clock& clock_;
  CommandLimits limits_;
  mutable Mutex mu_{LockLevel::kCommandQueue};
  // device id -> its open commands, oldest first.
  std::unordered_map<std::string, std::vector<Command>> open_ GUARDED_BY(mu_);
  std::atomic<size_t> open_total_{0};
};

}  // namespace drover
