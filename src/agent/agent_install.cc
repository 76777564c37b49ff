// The agent's install, from the image written to the other slot to the commit or the way
// back (docs/agent.md, "Updating"): installing, rebooting, committing, rolling back.
#include <nlohmann/json.hpp>

#include "agent/agent.h"
#include "agent/agent_internal.h"
#include "base/units.h"

namespace drover::agent {
using internal::ms;
using internal::wire_state;
namespace {

// A failed health check in the server's words: the command, how it ended (exit code, timeout
// or why it could not run) and the tail of its output, within kMaxReportMessage bytes.
std::string health_check_failure(const HealthCheck& check, const Result<CommandResult>& r) {
  std::string out =
      "health check '" + (check.command.empty() ? "" : check.command.front()) + "' failed: ";
  if (!r.ok()) return out + r.error().message;
  if (r->timed_out) {
    out += "timed out after " + format_duration(check.timeout);
  } else {
    out += r->exit_code >= 0 ? "exit " + std::to_string(r->exit_code) : "killed by a signal";
  }
  std::string_view tail = r->output;
  while (!tail.empty() && (tail.back() == '\n' || tail.back() == ' ')) tail.remove_suffix(1);
  if (tail.empty()) return out;
  constexpr std::string_view kEnds = "; output ends: ...";
  const size_t room = kMaxReportMessage - std::min(kMaxReportMessage, out.size() + kEnds.size());
  if (tail.size() > room) {
    tail.remove_prefix(tail.size() - room);
    // Start on a whole UTF-8 character.
    while (!tail.empty() && (static_cast<unsigned char>(tail.front()) & 0xC0) == 0x80)
      tail.remove_prefix(1);
    return out + std::string(kEnds) + std::string(tail);
  }
  return out + "; output: " + std::string(tail);
}

}  // namespace

Duration Agent::installing() {
  if (!run_state_script(UpdateStep::kInstalling)) return fail(last_error_);
  best_effort_report(protocol::Report::kInstalling);
  UpdateRecord working = record_;
  if (record_.switch_back) {
    // Nothing is written: the trial boots the image the other slot keeps. From here that
    // slot is the trial's, and keeps nothing to switch back to (written before acting).
    if (Status st = save_kept({}); !st.ok()) return retry_later(st.error());
    if (Status st = module_.switch_to_kept(working); !st.ok()) {
      // Refused before arming anything (the named slot is the running one, say): there is
      // no trial to undo, so the rollback that follows must not touch a slot.
      record_.slot.clear();
      return fail("switch back: " + st.error().message);
    }
  } else {
    // The other slot is about to be overwritten: it keeps nothing from here on (written
    // before the first byte goes to the slot).
    if (Status st = save_kept({}); !st.ok()) return retry_later(st.error());
    if (Status st = module_.install(path("download.part"), working); !st.ok()) {
      record_.slot = working.slot;
      return fail("install: " + st.error().message);
    }
  }
  if (!advance(UpdateEvent::kInstalled, [&](UpdateRecord& r) { r.slot = working.slot; })) {
    return retry_later(Error{ErrorCode::kIo, last_error_});
  }
  return Duration(0);
}

Duration Agent::rebooting() {
  auto state = module_.boot_state(record_);
  if (!state.ok()) return fail("boot: " + state.error().message);
  switch (*state) {
    case BootState::kNew:
      if (!advance(UpdateEvent::kBootedNew, [&](UpdateRecord& r) {
            r.deadline_ms = ms(clock_.now() + o_.commit_timeout);
          })) {
        return retry_later(Error{ErrorCode::kIo, last_error_});
      }
      return Duration(0);
    case BootState::kOld:
      if (!advance(UpdateEvent::kBootedOld, [&](UpdateRecord& r) {
            r.report = protocol::Report::kRolledBack;
            r.message = "the trial boot of the new image failed";
          })) {
        return retry_later(Error{ErrorCode::kIo, last_error_});
      }
      return Duration(0);
    case BootState::kPending:
      break;
  }
  // Up to three tries at the reboot (each restart of the agent in this step counts one).
  if (record_.entries > 3) return fail("the reboot into the new image did not happen");
  if (!run_state_script(UpdateStep::kRebooting)) return fail(last_error_);
  best_effort_report(protocol::Report::kRebooting);
  if (Status st = module_.reboot(); !st.ok()) return fail("reboot: " + st.error().message);
  ++record_.entries;  // the next look after this one counts as another try
  (void)state_.save(record_);
  return o_.check_retry;  // a real reboot ends this process long before
}

Duration Agent::committing() {
  if (!run_state_script(UpdateStep::kCommitting)) return fail(last_error_);
  for (const HealthCheck& check : o_.health_checks) {
    auto r = commands_.run(check.command, check.timeout);
    if (!r.ok() || !r->ok()) return fail(health_check_failure(check, r));
  }
  // Built in: the server is reachable from the new image.
  Status reachable = server_.connect(inventory_);
  if (reachable.ok()) {
    // A probe: its answer is not acted on (commands and configuration wait for the next).
    auto answer = server_.check_in(inventory_, wire_state(record_.step), "",
                                   module_.keeps_previous(), nullptr);
    if (!answer.ok()) reachable = answer.error();
  }
  if (!reachable.ok()) {
    if (ms(clock_.now()) >= record_.deadline_ms) {
      if (!advance(UpdateEvent::kCommitTimeout, [&](UpdateRecord& r) {
            r.report = protocol::Report::kRolledBack;
            r.message = "the server was not reachable before the commit timeout: " +
                        reachable.error().message;
          })) {
        return retry_later(Error{ErrorCode::kIo, last_error_});
      }
      return Duration(0);
    }
    last_error_ = reachable.error().to_string();
    return std::min(o_.check_retry, Duration(record_.deadline_ms - ms(clock_.now())));
  }
  if (Status st = module_.commit(record_); !st.ok()) return fail("commit: " + st.error().message);
  // What ran before, written before the inventory moves on (a re-install of the same
  // version changes nothing: the way back stays where it was).
  if (!record_.from_version.empty() && record_.from_version != record_.version) {
    Inventory before = previous_;
    before[record_.component] = record_.from_version;
    nlohmann::json j = nlohmann::json::object();
    for (const auto& [component, version] : before) j[component] = version;
    if (Status st = write_atomically(fs_, path("previous.json"), j.dump() + "\n"); !st.ok())
      return retry_later(st.error());
    previous_ = std::move(before);
  }
  inventory_[record_.component] = record_.version;
  if (Status st = save_inventory(); !st.ok()) return retry_later(st.error());
  if (module_.keeps_previous()) {
    // The slot left behind keeps what ran before. Not saved: only a download at a revert.
    Kept left;
    auto slot = parse_slot(record_.slot);
    if (!record_.from_version.empty() && slot.ok())
      left = {record_.component, record_.from_version, to_string(other(*slot))};
    if (Status st = save_kept(std::move(left)); !st.ok())
      last_error_ = "saving kept.json: " + st.error().to_string();
  }
  if (!advance(UpdateEvent::kCommitted, [&](UpdateRecord& r) {
        r.report = protocol::Report::kSucceeded;
        r.message.clear();
      })) {
    return retry_later(Error{ErrorCode::kIo, last_error_});
  }
  std::error_code ec;
  std::filesystem::remove(path("download.part"), ec);
  return Duration(0);
}

Duration Agent::rolling_back() {
  if (!run_state_script(UpdateStep::kRollingBack)) {
    // Rolling back cannot be refused: the script is told, and the rollback goes on.
    record_.message += (record_.message.empty() ? "" : "; ") + last_error_;
  }
  auto done = module_.roll_back(record_);
  if (!done.ok()) return retry_later(done.error());
  if (!*done) {
    if (record_.entries > 3) {
      last_error_ = "the reboot into the previous image did not happen";
      return retry_later(Error{ErrorCode::kIo, last_error_});
    }
    ++record_.entries;
    (void)state_.save(record_);
    return o_.check_retry;  // rebooting into the previous image
  }
  std::error_code ec;
  std::filesystem::remove(path("download.part"), ec);
  // The kept image did not come up: it is not offered for a switch back again.
  if (record_.switch_back) {
    if (Status st = save_kept({}); !st.ok()) return retry_later(st.error());
  }
  if (!advance(UpdateEvent::kRolledBack)) return retry_later(Error{ErrorCode::kIo, last_error_});
  return Duration(0);
}

}  // namespace drover::agent
