// A remote command: something the control plane asks one device to do — restart a service,
// reboot, give up a stuck update, run a command its agent is configured with. It is queued
// (written before any device can see it), sent in the device's check-in answers until the
// device reports how it ended or it expires, and kept afterwards as the device's remediation
// history. The device's agent runs each id at most once (docs/api/device.md, "Commands").
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/clock.h"
#include "base/enum_names.h"
#include "base/result.h"
#include "protocol/device.h"

namespace drover {

enum class CommandState : uint8_t {
  kQueued,     // waiting for the device's next check-in
  kSent,       // in a check-in answer at least once, no result yet
  kSucceeded,  // the device ran it: exit 0 (a reboot: back up)
  kFailed,     // the device ran it and it failed, timed out or was cut short
  kRefused,    // the device's agent does not allow it
  kExpired,    // not run: its expiry passed before the device took it
  kCancelled,  // an operator withdrew it before the device reported
  kCount,      // not a state: how many there are
};
inline constexpr size_t kCommandStateCount = static_cast<size_t>(CommandState::kCount);
inline constexpr EnumNames<CommandState, kCommandStateCount> kCommandStateNames{{
    {CommandState::kQueued, "queued"},
    {CommandState::kSent, "sent"},
    {CommandState::kSucceeded, "succeeded"},
    {CommandState::kFailed, "failed"},
    {CommandState::kRefused, "refused"},
    {CommandState::kExpired, "expired"},
    {CommandState::kCancelled, "cancelled"},
}};
static_assert(names_every_value(kCommandStateNames));
inline const char* to_string(CommandState s) { return enum_name(kCommandStateNames, s); }
inline Result<CommandState> parse_command_state(std::string_view s) {
  return enum_parse(kCommandStateNames, s, "command state");
}
// Whether the command may still be sent (queued or sent).
constexpr bool is_open(CommandState s) {
  return s == CommandState::kQueued || s == CommandState::kSent;
}
// The state a device's outcome puts a command in.
CommandState state_of(protocol::CommandOutcome outcome);

struct Command {
  std::string id;  // unique; the device runs an id at most once (is_valid_name, ≤ 64)
  std::string device_id;
  protocol::CommandAction action = protocol::CommandAction::kReboot;
  std::string argument;      // the service or command name; "" for actions without one
  std::string requested_by;  // e.g. "token:3f9c0a17b2d4e861 (operator)", "rule:stuck-device"
  std::string reason;        // why, for the history (free text, ≤ 512 bytes)
  CommandState state = CommandState::kQueued;
  Timestamp created_at{};
  Timestamp expires_at{};   // not sent after this; a device that has it does not run it
  Timestamp sent_at{};      // first sent; zero: never
  Timestamp finished_at{};  // its result, expiry or cancellation; zero: open
  int exit_code = -1;       // from the device's result; -1: none (or killed)
  std::string output;       // the tail of what it printed (≤ kMaxCommandOutput bytes)
  std::string cancelled_by;
  bool reported = false;  // the device's result arrived (a later one changes nothing)
  friend bool operator==(const Command&, const Command&) = default;
};
inline constexpr size_t kMaxCommandId = 64;
inline constexpr size_t kMaxCommandReason = 512;

// Checks the id and device id (is_valid_name; the id at most kMaxCommandId), the argument
// (an is_valid_name for actions that take one, empty otherwise), the text fields' sizes and
// UTF-8,
// expires_at after created_at, and that finished_at is set exactly when the state is closed.
Status validate(const Command& c);
// The same checks but the id's: what a request is checked by before it is given one.
Status validate_content(const Command& c);

}  // namespace drover
