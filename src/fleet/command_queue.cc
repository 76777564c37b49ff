#include "fleet/command_queue.h"

#include <algorithm>
#include <utility>

#include "base/units.h"
#include "base/utf8.h"
#include "store/group_commit.h"

namespace drover {
CommandQueue::CommandQueue(Store& store, Clock& clock, CommandLimits limits)
    : store_(store), clock_(clock), limits_(limits) {}

Status CommandQueue::load() {
  auto open = store_.list_open_commands();
  if (!open.ok()) return open.error();
  std::sort(open->begin(), open->end(), [](const Command& a, const Command& b) {
    return a.created_at != b.created_at ? a.created_at < b.created_at : a.id < b.id;
  });
  MutexLock lock(mu_);
  open_.clear();
  for (Command& c : *open) open_[c.device_id].push_back(std::move(c));
  open_total_.store(open->size(), std::memory_order_relaxed);
  return ok_status();
}

Command* CommandQueue::find_open(std::string_view device_id, std::string_view id) {
  auto it = open_.find(std::string(device_id));
  if (it == open_.end()) return nullptr;
  for (Command& c : it->second) {
    if (c.id == id) return &c;
  }
  return nullptr;
}

void CommandQueue::forget_closed(const std::string& device_id) {
  auto it = open_.find(device_id);
  if (it == open_.end()) return;
  auto& list = it->second;
  const size_t before = list.size();
  list.erase(
      std::remove_if(list.begin(), list.end(), [](const Command& c) { return !is_open(c.state); }),
      list.end());
  open_total_.fetch_sub(before - list.size(), std::memory_order_relaxed);
  if (list.empty()) open_.erase(it);
}

Result<Command> CommandQueue::queue(CommandRequest request, bool* created) {
  if (created != nullptr) *created = false;
  const Duration lifetime =
      request.lifetime == Duration{0} ? limits_.default_lifetime : request.lifetime;
  if (lifetime <= Duration{0} || lifetime > limits_.max_lifetime) {
    return invalid_argument("a command's lifetime must be more than 0 and at most " +
                            format_duration(limits_.max_lifetime));
  }
  const Timestamp now = clock_.now();
  Command c;
  c.id = request.id;
  c.device_id = std::move(request.device_id);
  c.action = request.action;
  c.argument = std::move(request.argument);
  c.requested_by = std::move(request.requested_by);
  c.reason = std::move(request.reason);
  c.created_at = now;
  c.expires_at = now + lifetime;
  if (c.id.empty()) {
    // Checked before an id is drawn: a bad request uses up no number of the sequence.
    DROVER_TRY(validate_content(c));
    auto n = store_.next_sequence("command");
    if (!n.ok()) return n.error();
    c.id = "cmd-" + std::to_string(*n);
  }
  DROVER_TRY(validate(c));

  MutexLock lock(mu_);
  // An id seen before: open ones are in memory (a write another request queued but that is
  // not yet durable included), ended ones in the store.
  std::optional<Command> earlier;
  for (const auto& [device, list] : open_) {
    for (const Command& o : list) {
      if (o.id == c.id) earlier = o;
    }
  }
  if (!earlier) {
    auto stored = store_.get_command(c.id);
    if (!stored.ok()) return stored.error();
    earlier = std::move(*stored);
  }
  if (earlier) {
    if (earlier->device_id == c.device_id && earlier->action == c.action &&
        earlier->argument == c.argument) {
      return *earlier;
    }
    return Error{ErrorCode::kAlreadyExists,
                 "command id '" + c.id + "' is already used by another command (" +
                     to_string(earlier->action) + " for device " + earlier->device_id + ")"};
  }
  auto& list = open_[c.device_id];
  if (list.size() >= limits_.max_open_per_device) {
    Error full{ErrorCode::kResourceExhausted,
               "device " + c.device_id + " already has " + std::to_string(list.size()) +
                   " commands waiting (at most " + std::to_string(limits_.max_open_per_device) +
                   ")"};
    if (list.empty()) open_.erase(c.device_id);
    return full;
  }

  WriteBatch batch;
  batch.commands.push_back(c);
  if (Status st = store_.apply(batch); !st.ok()) {
    if (list.empty()) open_.erase(c.device_id);
    return st.error();
  }
  list.push_back(c);
  open_total_.fetch_add(1, std::memory_order_relaxed);
  if (created != nullptr) *created = true;
  return c;
}

Result<std::vector<Command>> CommandQueue::for_check_in(std::string_view device_id) {
  std::vector<Command> out;
  if (open_total_.load(std::memory_order_relaxed) == 0) return out;
  MutexLock lock(mu_);
  auto it = open_.find(std::string(device_id));
  if (it == open_.end()) return out;
  const Timestamp now = clock_.now();
  std::vector<Command> changed = it->second;
  WriteBatch batch;
  for (Command& c : changed) {
    if (now >= c.expires_at) {
      c.state = CommandState::kExpired;
      c.finished_at = now;
      batch.commands.push_back(c);
      continue;
    }
    if (c.state == CommandState::kQueued) {
      c.state = CommandState::kSent;
      c.sent_at = now;
      batch.commands.push_back(c);
    }
    out.push_back(c);
  }
  if (!batch.empty()) {
    if (Status st = store_.apply(batch); !st.ok()) return st.error();
  }
  it->second = std::move(changed);
  forget_closed(std::string(device_id));
  return out;
}

Result<Command> CommandQueue::record_result(const CommandResult& result) {
  const Timestamp now = clock_.now();
  MutexLock lock(mu_);
  Command* open = find_open(result.device_id, result.command_id);
  Command c;
  if (open != nullptr) {
    c = *open;
  } else {
    auto stored = store_.get_command(result.command_id);
    if (!stored.ok()) return stored.error();
    if (!*stored || (*stored)->device_id != result.device_id) {
      return not_found("device " + std::string(result.device_id) + " has no command '" +
                       std::string(result.command_id) + "'");
    }
    c = std::move(**stored);
    if (c.reported) return c;  // a result sent again changes nothing
  }
  c.state = state_of(result.outcome);
  c.finished_at = now;
  c.reported = true;
  c.exit_code = result.exit_code;
  c.output = utf8_tail(result.output, protocol::kMaxCommandOutput);
  WriteBatch batch;
  batch.commands.push_back(c);
  DROVER_TRY(store_.apply(batch));
  if (open != nullptr) {
    *open = c;
    forget_closed(c.device_id);
  }
  return c;
}

Result<Command> CommandQueue::cancel(std::string_view id, std::string_view by) {
  const Timestamp now = clock_.now();
  MutexLock lock(mu_);
  Command* open = nullptr;
  for (auto& [device, list] : open_) {
    for (Command& c : list) {
      if (c.id == id) open = &c;
    }
  }
  if (open == nullptr) {
    auto stored = store_.get_command(id);
    if (!stored.ok()) return stored.error();
    if (!*stored) return not_found("no command '" + std::string(id) + "'");
    return Error{ErrorCode::kFailedPrecondition, "command '" + std::string(id) +
                                                     "' has already ended (" +
                                                     to_string((*stored)->state) + ")"};
  }
  Command c = *open;
  c.state = CommandState::kCancelled;
  c.finished_at = now;
  c.cancelled_by = std::string(by.substr(0, 256));
  WriteBatch batch;
  batch.commands.push_back(c);
  DROVER_TRY(store_.apply(batch));
  *open = c;
  forget_closed(c.device_id);
  return c;
}

Result<size_t> CommandQueue::expire_due() {
  if (open_total_.load(std::memory_order_relaxed) == 0) return size_t{0};
  // Queued under the lock, waited for after it (store/group_commit.h): check-ins go on.
  CommitScope scope;
  auto n = expire_due_locked();
  if (!n.ok()) return n;
  DROVER_TRY(scope.wait());
  return n;
}

Result<size_t> CommandQueue::expire_due_locked() {
  const Timestamp now = clock_.now();
  MutexLock lock(mu_);
  WriteBatch batch;
  for (const auto& [device, list] : open_) {
    for (const Command& c : list) {
      if (now < c.expires_at) continue;
      Command closed = c;
      closed.state = CommandState::kExpired;
      closed.finished_at = now;
      batch.commands.push_back(std::move(closed));
    }
  }
  if (batch.empty()) return size_t{0};
  DROVER_TRY(store_.apply(batch));
  for (const Command& closed : batch.commands) {
    if (Command* open = find_open(closed.device_id, closed.id)) *open = closed;
  }
  for (const Command& closed : batch.commands) forget_closed(closed.device_id);
  return batch.commands.size();
}

Result<std::optional<Command>> CommandQueue::get(std::string_view id) {
  {
    MutexLock lock(mu_);
    for (const auto& [device, list] : open_) {
      for (const Command& c : list) {
        if (c.id == id) return std::optional<Command>(c);
      }
    }
  }
  return store_.get_command(id);
}

Result<std::vector<Command>> CommandQueue::history(std::string_view device_id, size_t limit,
                                                   std::string_view after_id) {
  if (after_id.empty()) return store_.list_commands(device_id, limit);
  auto cursor = get(after_id);
  if (!cursor.ok()) return cursor.error();
  if (!*cursor || (*cursor)->device_id != device_id) {
    return not_found("device " + std::string(device_id) + " has no command '" +
                     std::string(after_id) + "'");
  }
  return store_.list_commands(device_id, limit, (*cursor)->created_at, after_id);
}

std::vector<Command> CommandQueue::open_for(std::string_view device_id) const {
  MutexLock lock(mu_);
  auto it = open_.find(std::string(device_id));
  if (it == open_.end()) return {};
  return it->second;
}

}  // namespace drover
