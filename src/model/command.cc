#include "model/command.h"

#include "base/utf8.h"
#include "model/device.h"

namespace drover {

CommandState state_of(protocol::CommandOutcome outcome) {
  switch (outcome) {
    case protocol::CommandOutcome::kSucceeded:
      return CommandState::kSucceeded;
    case protocol::CommandOutcome::kFailed:
      return CommandState::kFailed;
    case protocol::CommandOutcome::kRefused:
      return CommandState::kRefused;
    case protocol::CommandOutcome::kExpired:
    case protocol::CommandOutcome::kCount:
      break;
  }
  return CommandState::kExpired;
}

Status validate(const Command& c) {
  if (!is_valid_name(c.id) || c.id.size() > kMaxCommandId) {
    return invalid_argument("command id '" + c.id + "' must be 1 to " +
                            std::to_string(kMaxCommandId) + " characters of [A-Za-z0-9._:-]");
  }
  return validate_content(c);
}

Status validate_content(const Command& c) {
  if (!is_valid_name(c.device_id)) {
    return invalid_argument("command " + c.id + ": device id '" + c.device_id + "' is not valid");
  }
  if (protocol::takes_argument(c.action)) {
    if (!is_valid_name(c.argument)) {
      return invalid_argument("command " + c.id + ": " + to_string(c.action) +
                              " needs a name as its argument (1 to 128 of [A-Za-z0-9._:-]), "
                              "not '" +
                              c.argument + "'");
    }
  } else if (!protocol::optional_argument_ok(c.action, c.argument)) {
    return invalid_argument("command " + c.id + ": " + to_string(c.action) +
                            (c.action == protocol::CommandAction::kClearUpdate
                                 ? " takes no argument but 'download'"
                                 : " takes no argument"));
  }
  if (c.requested_by.size() > 256) {
    return invalid_argument("command " + c.id + ": requested_by is longer than 256 bytes");
  }
  if (c.reason.size() > kMaxCommandReason) {
    return invalid_argument("command " + c.id + ": reason is longer than " +
                            std::to_string(kMaxCommandReason) + " bytes");
  }
  if (c.output.size() > protocol::kMaxCommandOutput) {
    return invalid_argument("command " + c.id + ": output is longer than " +
                            std::to_string(protocol::kMaxCommandOutput) + " bytes");
  }
  if (c.cancelled_by.size() > 256) {
    return invalid_argument("command " + c.id + ": cancelled_by is longer than 256 bytes");
  }
  for (const std::string* text : {&c.requested_by, &c.reason, &c.output, &c.cancelled_by}) {
    if (!is_valid_utf8(*text)) return invalid_argument("command " + c.id + ": text is not UTF-8");
  }
  if (c.expires_at <= c.created_at) {
    return invalid_argument("command " + c.id + ": expires_at must be after created_at");
  }
  if (is_open(c.state) != (c.finished_at == Timestamp{})) {
    return invalid_argument("command " + c.id + ": finished_at must be set exactly when it is " +
                            "no longer queued or sent");
  }
  return ok_status();
}

}  // namespace drover
