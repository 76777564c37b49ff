// The device protocol's vocabulary (docs/api/device.md): the words a device and the control
// plane exchange, each an enum with its one spelling on the wire, and the error envelope
// every answer uses. Header-only, on base/ alone: the agent, the device API, the rollout
// engine and the simulator speak it without the agent linking any server code.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "base/enum_names.h"
#include "base/result.h"

namespace drover::protocol {

// What a device is doing, as it says at each check-in ("update_state").
enum class UpdateState : uint8_t {
  kIdle,
  kDownloading,
  kInstalling,
  kRebooting,    // rebooted into the new image, trial boot not yet committed
  kRollingBack,  // reverting to the previous image
  kReady,        // holds a verified image, waiting for its window to install it
  kCount,        // not a state: how many there are
};
inline constexpr size_t kUpdateStateCount = static_cast<size_t>(UpdateState::kCount);
inline constexpr EnumNames<UpdateState, kUpdateStateCount> kUpdateStateNames{{
    {UpdateState::kIdle, "idle"},
    {UpdateState::kDownloading, "downloading"},
    {UpdateState::kInstalling, "installing"},
    {UpdateState::kRebooting, "rebooting"},
    {UpdateState::kRollingBack, "rolling_back"},
    {UpdateState::kReady, "ready"},
}};
static_assert(names_every_value(kUpdateStateNames));
inline const char* to_string(UpdateState s) { return enum_name(kUpdateStateNames, s); }
inline Result<UpdateState> parse_update_state(std::string_view s) {
  return enum_parse(kUpdateStateNames, s, "update state");
}

// What a device reports about one deployment (a status report's "status"). The first three
// say how far it got; the rest end its attempt, and a device keeps them until delivered.
enum class Report : uint8_t {
  kDownloading,
  kInstalling,
  kRebooting,
  kSucceeded,      // committed the new image (its trial boot and checks passed)
  kInstallFailed,  // could not install; still runs the previous image
  kRolledBack,     // the trial boot failed; back on the previous image
  kUnhealthy,      // committed, then its health checks failed
  kWithdraw,       // dropped the image it held uninstalled: no maintenance window fits
  kCount,          // not a report: how many there are
};
inline constexpr size_t kReportCount = static_cast<size_t>(Report::kCount);
inline constexpr EnumNames<Report, kReportCount> kReportNames{{
    {Report::kDownloading, "downloading"},
    {Report::kInstalling, "installing"},
    {Report::kRebooting, "rebooting"},
    {Report::kSucceeded, "succeeded"},
    {Report::kInstallFailed, "failed"},
    {Report::kRolledBack, "rolled_back"},
    {Report::kUnhealthy, "unhealthy"},
    {Report::kWithdraw, "withdraw"},
}};
static_assert(names_every_value(kReportNames));
inline const char* to_string(Report r) { return enum_name(kReportNames, r); }
inline Result<Report> parse_report(std::string_view s) {
  return enum_parse(kReportNames, s, "status report");
}
// Whether the report ends the device's attempt at the deployment.
constexpr bool is_outcome(Report r) {
  return r != Report::kDownloading && r != Report::kInstalling && r != Report::kRebooting;
}

// What a remote command asks a device to do (a check-in answer's "commands"). The agent runs
// only what its own configuration allows: the server names an action and an argument, never
// a program.
enum class CommandAction : uint8_t {
  kRestartService,  // restart the service named by the argument (from the agent's list)
  kReboot,          // reboot the device
  kClearUpdate,     // give up a download, or an image held for its window (back to idle)
  kRun,             // run the agent's configured command named by the argument
  kRotateKey,       // re-enroll: a new identity key, registered under the device's id
  kReapplyConfig,   // fetch the type's configuration again and apply it, even if it runs it
  kCount,           // not an action: how many there are
};
inline constexpr size_t kCommandActionCount = static_cast<size_t>(CommandAction::kCount);
inline constexpr EnumNames<CommandAction, kCommandActionCount> kCommandActionNames{{
    {CommandAction::kRestartService, "restart_service"},
    {CommandAction::kReboot, "reboot"},
    {CommandAction::kClearUpdate, "clear_update"},
    {CommandAction::kRun, "run"},
    {CommandAction::kRotateKey, "rotate_key"},
    {CommandAction::kReapplyConfig, "reapply_config"},
}};
static_assert(names_every_value(kCommandActionNames));
inline const char* to_string(CommandAction a) { return enum_name(kCommandActionNames, a); }
inline Result<CommandAction> parse_command_action(std::string_view s) {
  return enum_parse(kCommandActionNames, s, "command action");
}
// Whether the action needs an argument (a service or a command name); the others take none,
// but for clear_update's optional kClearDownloadOnly.
constexpr bool takes_argument(CommandAction a) {
  return a == CommandAction::kRestartService || a == CommandAction::kRun;
}
// clear_update's one argument: give up a download under way only — an image that finished
// downloading meanwhile is kept (what a rule on a stuck update asks).
inline constexpr std::string_view kClearDownloadOnly = "download";
// Whether an action that takes no name takes `argument`: none, or clear_update's own.
constexpr bool optional_argument_ok(CommandAction a, std::string_view argument) {
  return argument.empty() || (a == CommandAction::kClearUpdate && argument == kClearDownloadOnly);
}

// How a command ended on the device (its result's "outcome").
enum class CommandOutcome : uint8_t {
  kSucceeded,  // it ran and exited 0 (a reboot: the device came back)
  kFailed,     // it ran and failed, timed out, or was cut short by the agent stopping
  kRefused,    // this device's agent does not allow it (unknown service or command name)
  kExpired,    // it reached the device after its expiry, and was not run
  kCount,      // not an outcome: how many there are
};
inline constexpr size_t kCommandOutcomeCount = static_cast<size_t>(CommandOutcome::kCount);
inline constexpr EnumNames<CommandOutcome, kCommandOutcomeCount> kCommandOutcomeNames{{
    {CommandOutcome::kSucceeded, "succeeded"},
    {CommandOutcome::kFailed, "failed"},
    {CommandOutcome::kRefused, "refused"},
    {CommandOutcome::kExpired, "expired"},
}};
static_assert(names_every_value(kCommandOutcomeNames));
inline const char* to_string(CommandOutcome o) { return enum_name(kCommandOutcomeNames, o); }
inline Result<CommandOutcome> parse_command_outcome(std::string_view s) {
  return enum_parse(kCommandOutcomeNames, s, "command outcome");
}
// The longest output of a command a result carries (its tail is kept).
inline constexpr size_t kMaxCommandOutput = 4096;

// Every error is answered with one JSON shape: {"error": {"code": "<name>", "message": "…"}},
// the code being error_code_name() of the ErrorCode, and one HTTP status per code (several
// codes share a status: a device reads back the kind it can act on, error_code_of_status).
inline constexpr const char* kErrorObject = "error";
inline constexpr const char* kErrorCode = "code";
inline constexpr const char* kErrorMessage = "message";

constexpr int http_status(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument:
      return 400;
    case ErrorCode::kUnauthenticated:
      return 401;
    case ErrorCode::kPermissionDenied:
      return 403;
    case ErrorCode::kNotFound:
      return 404;
    case ErrorCode::kAlreadyExists:
    case ErrorCode::kFailedPrecondition:
    case ErrorCode::kConflict:
      return 409;
    case ErrorCode::kIo:
      return 503;
    case ErrorCode::kResourceExhausted:
      return 507;  // Insufficient Storage
    case ErrorCode::kCorruption:
    case ErrorCode::kInternal:
      return 500;
  }
  return 500;
}

// How a device takes an error answer's status: what it sent was refused (400, and 416, a
// range past the end: kInvalidArgument), it must log in again (401), it may not (403), the
// thing is gone (404), the state does not allow it now (409: kConflict, also for
// kAlreadyExists and kFailedPrecondition); anything else — a 5xx above all, whatever its
// code was — is worth another try later (kIo).
constexpr ErrorCode error_code_of_status(int status) {
  switch (status) {
    case 400:
    case 416:
      return ErrorCode::kInvalidArgument;
    case 401:
      return ErrorCode::kUnauthenticated;
    case 403:
      return ErrorCode::kPermissionDenied;
    case 404:
      return ErrorCode::kNotFound;
    case 409:
      return ErrorCode::kConflict;
    default:
      return ErrorCode::kIo;
  }
}

}  // namespace drover::protocol
