#include "model/alert.h"

#include "model/device.h"

namespace drover {

Status validate(const Alert& a) {
  if (!is_valid_name(a.id)) return invalid_argument("alert id '" + a.id + "' is not valid");
  const std::string where = "alert " + a.id + ": ";
  if (!is_valid_name(a.device_id)) return invalid_argument(where + "device id is not valid");
  if (!is_valid_name(a.rule)) return invalid_argument(where + "rule is not a name");
  if (!is_valid_name(a.condition)) return invalid_argument(where + "condition is not a name");
  for (const std::string* text :
       {&a.summary, &a.escalation, &a.resolution, &a.acknowledged_by, &a.resolved_by}) {
    if (text->size() > kMaxAlertText) {
      return invalid_argument(where + "a text is longer than " + std::to_string(kMaxAlertText) +
                              " bytes");
    }
  }
  if (a.commands.size() > kMaxAlertCommands) {
    return invalid_argument(where + "more than " + std::to_string(kMaxAlertCommands) + " commands");
  }
  for (const std::string& c : a.commands) {
    if (!is_valid_name(c)) return invalid_argument(where + "command id '" + c + "' is not valid");
  }
  if ((a.state == AlertState::kResolved) != (a.resolved_at != Timestamp{})) {
    return invalid_argument(where + "resolved_at must be set exactly when it is resolved");
  }
  if (a.state == AlertState::kAcknowledged && a.acknowledged_at == Timestamp{}) {
    return invalid_argument(where + "an acknowledged alert needs acknowledged_at");
  }
  if (a.version == 0) return invalid_argument(where + "version starts at 1");
  if (a.notified_version > a.version) {
    return invalid_argument(where + "notified_version is past its version");
  }
  return ok_status();
}

}  // namespace drover
