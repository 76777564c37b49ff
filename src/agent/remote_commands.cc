#include "agent/remote_commands.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <utility>

#include "base/json_reader.h"
#include "base/utf8.h"

namespace drover::agent {
namespace {

using nlohmann::json;
using Step = JournaledCommand::Step;
using protocol::CommandOutcome;

constexpr const char* kStepNames[] = {"pending", "running", "done", "delivered"};

std::string encode(const std::vector<JournaledCommand>& journal) {
  json list = json::array();
  for (const JournaledCommand& e : journal) {
    json j{{"id", e.command.id},
           {"action", e.command.action},
           {"argument", e.command.argument},
           {"expires_at", e.command.expires_at.time_since_epoch().count()},
           {"step", kStepNames[static_cast<int>(e.step)]}};
    if (e.step == Step::kDone || e.step == Step::kDelivered) {
      j["outcome"] = protocol::to_string(e.outcome);
      j["exit_code"] = e.exit_code;
      j["output"] = e.output;
    }
    list.push_back(std::move(j));
  }
  // Output is what a program printed: bytes that are not UTF-8 are replaced, not refused.
  return json{{"commands", list}}.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
}

Result<std::vector<JournaledCommand>> decode(std::string_view text) {
  auto r = parse_json_document<std::vector<JournaledCommand>>(
      text, "command journal", [](const JsonReader& doc) {
        doc.allow_only({"commands"});
        std::vector<JournaledCommand> out;
        for (const JsonReader& j : doc.array("commands")) {
          JournaledCommand e;
          e.command.id = j.str("id");
          e.command.action = j.str("action");
          e.command.argument = j.str_or("argument", "");
          e.command.expires_at = Timestamp(
              Duration(static_cast<int64_t>(j.uint_or("expires_at", 0, uint64_t{1} << 53))));
          const std::string step = j.str("step");
          const auto* found = std::find(std::begin(kStepNames), std::end(kStepNames), step);
          if (found == std::end(kStepNames)) j.fail("step", "unknown step '" + step + "'");
          e.step = static_cast<Step>(found - std::begin(kStepNames));
          if (e.step == Step::kDone || e.step == Step::kDelivered) {
            e.outcome = j.take("outcome", protocol::parse_command_outcome(j.str("outcome")));
            const double code = j.number_or("exit_code", -1);
            if (code < -1 || code > 255) j.fail("exit_code", "must be from -1 to 255");
            e.exit_code = static_cast<int>(code);
            e.output = j.str_or("output", "");
          }
          out.push_back(std::move(e));
        }
        return out;
      });
  if (!r.ok()) return Error{ErrorCode::kCorruption, r.error().message};
  return r;
}

JournaledCommand ended(JournaledCommand e, CommandOutcome outcome, int exit_code,
                       std::string_view output) {
  e.step = Step::kDone;
  e.outcome = outcome;
  e.exit_code = exit_code;
  e.output = utf8_tail(output, protocol::kMaxCommandOutput);
  return e;
}

}  // namespace

RemoteCommands::RemoteCommands(std::string journal_path, RemoteCommandOptions options,
                               CommandRunner& runner, Clock& clock, FileSystem& fs)
    : path_(std::move(journal_path)),
      o_(std::move(options)),
      runner_(runner),
      clock_(clock),
      fs_(fs) {}

Status RemoteCommands::save() { return write_atomically(fs_, path_, encode(journal_)); }

bool RemoteCommands::has_undelivered() const {
  return std::any_of(journal_.begin(), journal_.end(),
                     [](const JournaledCommand& e) { return e.step != Step::kDelivered; });
}

Status RemoteCommands::start() {
  auto text = fs_.read(path_);
  if (!text.ok()) {
    if (text.error().code != ErrorCode::kNotFound) return text.error();
    journal_.clear();
    return ok_status();
  }
  auto journal = decode(*text);
  if (!journal.ok()) return journal.error();
  journal_ = std::move(*journal);
  bool changed = false;
  for (JournaledCommand& e : journal_) {
    if (e.step != Step::kRunning) continue;
    // Cut short: a reboot did what it was asked (this is the agent after it); anything else
    // may have run in part, and is not run again.
    const std::string& action = e.command.action;
    if (action == protocol::to_string(protocol::CommandAction::kReboot)) {
      e = ended(std::move(e), CommandOutcome::kSucceeded, 0, "the device rebooted");
    } else if (action == protocol::to_string(protocol::CommandAction::kRotateKey)) {
      // The server may or may not have taken the next key: the link logs in with whichever
      // it holds, and the device's record says which.
      e = ended(std::move(e), CommandOutcome::kFailed, -1,
                "cut short: the agent stopped during the key rotation; it logs in with "
                "whichever key the server took (the device's public_key says which)");
    } else if (action == protocol::to_string(protocol::CommandAction::kReapplyConfig)) {
      e = ended(std::move(e), CommandOutcome::kFailed, -1,
                "cut short: the agent stopped while it applied the configuration; the "
                "document that ran before was put back at its start (the device's "
                "config_error says so)");
    } else {
      e = ended(std::move(e), CommandOutcome::kFailed, -1,
                "cut short: the agent stopped while the command ran");
    }
    changed = true;
  }
  return changed ? save() : ok_status();
}

Status RemoteCommands::take(const std::vector<RemoteCommand>& commands) {
  std::vector<JournaledCommand> next = journal_;
  for (const RemoteCommand& c : commands) {
    const bool known = std::any_of(next.begin(), next.end(),
                                   [&](const JournaledCommand& e) { return e.command.id == c.id; });
    if (known) continue;
    JournaledCommand entry;
    entry.command = c;
    next.push_back(std::move(entry));
  }
  if (next.size() == journal_.size()) return ok_status();
  // The oldest delivered ids go first when there are too many to remember.
  size_t delivered =
      static_cast<size_t>(std::count_if(next.begin(), next.end(), [](const JournaledCommand& e) {
        return e.step == Step::kDelivered;
      }));
  for (auto it = next.begin(); delivered > kRememberedIds && it != next.end();) {
    if (it->step == Step::kDelivered) {
      it = next.erase(it);
      --delivered;
    } else {
      ++it;
    }
  }
  // Taken only once the journal says so: a failed write takes nothing.
  DROVER_TRY(write_atomically(fs_, path_, encode(next)));
  journal_ = std::move(next);
  return ok_status();
}

JournaledCommand RemoteCommands::execute(JournaledCommand e, const CommandHooks& hooks) {
  const RemoteCommand& c = e.command;
  if (c.expires_at != Timestamp{} && clock_.now() >= c.expires_at) {
    return ended(std::move(e), CommandOutcome::kExpired, -1,
                 "not run: it expired before the device took it");
  }
  if (!o_.enabled) {
    return ended(std::move(e), CommandOutcome::kRefused, -1,
                 "this agent takes no remote commands (no remote_commands in its configuration)");
  }
  auto action = protocol::parse_command_action(c.action);
  if (!action.ok()) {
    return ended(std::move(e), CommandOutcome::kRefused, -1,
                 "this agent does not know the action '" + c.action + "'");
  }
  auto outcome_of = [&](const Result<CommandResult>& r) {
    if (!r.ok()) return ended(std::move(e), CommandOutcome::kFailed, -1, r.error().to_string());
    std::string output = r->output;
    if (r->timed_out) output += "\n(killed: it ran past its timeout)";
    return ended(std::move(e), r->ok() ? CommandOutcome::kSucceeded : CommandOutcome::kFailed,
                 r->exit_code, output);
  };
  switch (*action) {
    case protocol::CommandAction::kRestartService: {
      const bool allowed =
          !o_.restart_service.empty() &&
          std::find(o_.services.begin(), o_.services.end(), c.argument) != o_.services.end();
      if (!allowed) {
        return ended(std::move(e), CommandOutcome::kRefused, -1,
                     "service '" + c.argument + "' is not among those this agent may restart");
      }
      std::vector<std::string> argv = o_.restart_service;
      argv.push_back(c.argument);
      return outcome_of(runner_.run(argv, o_.restart_timeout));
    }
    case protocol::CommandAction::kRun: {
      auto it = o_.named.find(c.argument);
      if (it == o_.named.end()) {
        return ended(std::move(e), CommandOutcome::kRefused, -1,
                     "no command named '" + c.argument + "' in this agent's configuration");
      }
      return outcome_of(runner_.run(it->second.command, it->second.timeout));
    }
    case protocol::CommandAction::kReboot: {
      if (!o_.allow_reboot || !hooks.reboot) {
        return ended(std::move(e), CommandOutcome::kRefused, -1,
                     "this agent is not configured to reboot the device");
      }
      Status st = hooks.reboot();  // returns only when the reboot did not happen
      return ended(std::move(e), CommandOutcome::kFailed, -1,
                   st.ok() ? "the reboot command returned without rebooting"
                           : "the reboot failed: " + st.error().to_string());
    }
    case protocol::CommandAction::kClearUpdate: {
      if (!hooks.clear_update) {
        return ended(std::move(e), CommandOutcome::kRefused, -1, "this agent cannot clear updates");
      }
      if (!protocol::optional_argument_ok(protocol::CommandAction::kClearUpdate, c.argument)) {
        return ended(std::move(e), CommandOutcome::kRefused, -1,
                     "clear_update takes no argument but 'download', not '" + c.argument + "'");
      }
      auto cleared = hooks.clear_update(c.argument == protocol::kClearDownloadOnly);
      if (!cleared.ok()) {
        return ended(std::move(e), CommandOutcome::kFailed, -1, cleared.error().to_string());
      }
      return ended(std::move(e), CommandOutcome::kSucceeded, 0, *cleared);
    }
    case protocol::CommandAction::kRotateKey: {
      if (!hooks.rotate_key) {
        return ended(std::move(e), CommandOutcome::kRefused, -1,
                     "this agent cannot rotate its key");
      }
      auto rotated = hooks.rotate_key();
      if (!rotated.ok()) {
        // Not set up for it (no key file to rotate): refused, as an action not allowed is.
        const bool cannot = rotated.error().code == ErrorCode::kFailedPrecondition;
        return ended(std::move(e), cannot ? CommandOutcome::kRefused : CommandOutcome::kFailed, -1,
                     "the key was not rotated: " + rotated.error().to_string());
      }
      return ended(std::move(e), CommandOutcome::kSucceeded, 0,
                   "logs in with its new key " + *rotated + " from now on");
    }
    case protocol::CommandAction::kReapplyConfig: {
      if (!hooks.reapply_config) {
        return ended(std::move(e), CommandOutcome::kRefused, -1,
                     "this agent applies no configuration (its \"configuration\" is not set)");
      }
      auto applied = hooks.reapply_config();
      if (!applied.ok()) {
        return ended(std::move(e), CommandOutcome::kFailed, -1, applied.error().to_string());
      }
      return ended(std::move(e), CommandOutcome::kSucceeded, 0, *applied);
    }
    case protocol::CommandAction::kCount:
      break;
  }
  return ended(std::move(e), CommandOutcome::kRefused, -1, "unknown action");
}

Status RemoteCommands::run_pending(const CommandHooks& hooks) {
  for (size_t i = 0; i < journal_.size(); ++i) {
    if (journal_[i].step != Step::kPending) continue;
    journal_[i].step = Step::kRunning;
    if (Status st = save(); !st.ok()) {
      journal_[i].step = Step::kPending;  // not started: it may still run later
      return st;
    }
    journal_[i] = execute(journal_[i], hooks);
    DROVER_TRY(save());
  }
  return ok_status();
}

Status RemoteCommands::deliver(ServerLink& server) {
  Status first = ok_status();  // the first failure worth another try, reported at the end
  for (JournaledCommand& e : journal_) {
    if (e.step != Step::kDone) continue;
    Status sent = server.report_command(e.command.id, e.outcome, e.exit_code, e.output);
    if (!sent.ok()) {
      const ErrorCode code = sent.error().code;
      // Refused for good (the server does not know it, or will never take this result):
      // dropped. Anything else (out of reach, a 5xx) is tried again at the next call; the
      // results after it are not held up.
      const bool for_good = code == ErrorCode::kNotFound || code == ErrorCode::kInvalidArgument ||
                            code == ErrorCode::kPermissionDenied;
      if (!for_good) {
        if (first.ok()) first = sent;
        continue;
      }
    }
    e.step = Step::kDelivered;
    e.output.clear();  // delivered: only the id is worth remembering
    DROVER_TRY(save());
  }
  return first;
}

}  // namespace drover::agent
