#include "rollout/deployment_machine.h"

#include <array>

#include "base/enum_names.h"
#include "base/state_table.h"

namespace drover {
namespace {

using S = DeploymentState;
using E = DeploymentEvent;

constexpr EnumNames<DeploymentEvent, kDeploymentEventCount> kEventNames{{
    {E::kOffer, "offer"},
    {E::kDownloading, "downloading"},
    {E::kInstalling, "installing"},
    {E::kRebooting, "rebooting"},
    {E::kSucceeded, "succeeded"},
    {E::kInstallFailed, "failed"},
    {E::kRolledBack, "rolled_back"},
    {E::kUnhealthy, "unhealthy"},
    {E::kCancel, "cancel"},
    {E::kSkip, "skip"},
    {E::kRevert, "revert"},
    {E::kWithdraw, "withdraw"},
    {E::kSilence, "silence"},
}};
static_assert(names_every_value(kEventNames));

// The whole table. Rows where `to == from` are deliberate: a retried or late report.
constexpr Transition<S, E> kRows[] = {
    // Waiting for its turn.
    {S::kPending, E::kOffer, S::kOffered},
    {S::kPending, E::kCancel, S::kCancelled},
    {S::kPending, E::kSkip, S::kSkipped},

    // Offered: the device may report any step, or skip straight to the outcome.
    {S::kOffered, E::kOffer, S::kOffered},  // re-send: the device lost the first offer
    {S::kOffered, E::kDownloading, S::kDownloading},
    {S::kOffered, E::kInstalling, S::kInstalling},
    {S::kOffered, E::kRebooting, S::kRebooting},
    {S::kOffered, E::kSucceeded, S::kSucceeded},
    {S::kOffered, E::kInstallFailed, S::kFailed},
    {S::kOffered, E::kRolledBack, S::kRolledBack},
    {S::kOffered, E::kCancel, S::kOffered},      // already with the device: let it finish
    {S::kOffered, E::kSkip, S::kSkipped},        // the device left the fleet
    {S::kOffered, E::kWithdraw, S::kCancelled},  // not installed yet: it drops the image

    {S::kDownloading, E::kDownloading, S::kDownloading},
    {S::kDownloading, E::kInstalling, S::kInstalling},
    {S::kDownloading, E::kRebooting, S::kRebooting},
    {S::kDownloading, E::kSucceeded, S::kSucceeded},
    {S::kDownloading, E::kInstallFailed, S::kFailed},
    {S::kDownloading, E::kRolledBack, S::kRolledBack},
    {S::kDownloading, E::kCancel, S::kDownloading},
    {S::kDownloading, E::kSkip, S::kSkipped},
    {S::kDownloading, E::kWithdraw, S::kCancelled},

    {S::kInstalling, E::kDownloading, S::kInstalling},  // late report
    {S::kInstalling, E::kInstalling, S::kInstalling},
    {S::kInstalling, E::kRebooting, S::kRebooting},
    {S::kInstalling, E::kSucceeded, S::kSucceeded},
    {S::kInstalling, E::kInstallFailed, S::kFailed},
    {S::kInstalling, E::kRolledBack, S::kRolledBack},
    {S::kInstalling, E::kCancel, S::kInstalling},
    {S::kInstalling, E::kSkip, S::kSkipped},

    {S::kRebooting, E::kDownloading, S::kRebooting},
    {S::kRebooting, E::kInstalling, S::kRebooting},
    {S::kRebooting, E::kRebooting, S::kRebooting},
    {S::kRebooting, E::kSucceeded, S::kSucceeded},
    {S::kRebooting, E::kInstallFailed, S::kRolledBack},  // a failed commit check reverts the slot
    {S::kRebooting, E::kRolledBack, S::kRolledBack},
    {S::kRebooting, E::kCancel, S::kRebooting},
    {S::kRebooting, E::kSkip, S::kSkipped},

    // Outcomes. Late progress reports and repeats change nothing.
    {S::kSucceeded, E::kDownloading, S::kSucceeded},
    {S::kSucceeded, E::kInstalling, S::kSucceeded},
    {S::kSucceeded, E::kRebooting, S::kSucceeded},
    {S::kSucceeded, E::kSucceeded, S::kSucceeded},
    {S::kSucceeded, E::kUnhealthy, S::kUnhealthy},
    {S::kSucceeded, E::kCancel, S::kSucceeded},
    {S::kSucceeded, E::kRevert, S::kRevertPending},

    {S::kUnhealthy, E::kSucceeded, S::kUnhealthy},
    {S::kUnhealthy, E::kUnhealthy, S::kUnhealthy},
    {S::kUnhealthy, E::kCancel, S::kUnhealthy},
    {S::kUnhealthy, E::kRevert, S::kRevertPending},

    {S::kFailed, E::kDownloading, S::kFailed},
    {S::kFailed, E::kInstalling, S::kFailed},
    {S::kFailed, E::kInstallFailed, S::kFailed},
    {S::kFailed, E::kCancel, S::kFailed},
    {S::kFailed, E::kRevert, S::kFailed},  // nothing to revert: it never left the old image

    {S::kRolledBack, E::kDownloading, S::kRolledBack},
    {S::kRolledBack, E::kInstalling, S::kRolledBack},
    {S::kRolledBack, E::kRebooting, S::kRolledBack},
    {S::kRolledBack, E::kInstallFailed, S::kRolledBack},
    {S::kRolledBack, E::kRolledBack, S::kRolledBack},
    {S::kRolledBack, E::kCancel, S::kRolledBack},
    {S::kRolledBack, E::kRevert, S::kRolledBack},

    {S::kCancelled, E::kCancel, S::kCancelled},
    {S::kCancelled, E::kRevert, S::kCancelled},
    {S::kCancelled, E::kWithdraw, S::kCancelled},
    // Withdrawn, yet the device installed (the drop answer never reached it): its reports
    // still count (the engine accepts them only from a device that was offered).
    {S::kCancelled, E::kDownloading, S::kCancelled},
    {S::kCancelled, E::kInstalling, S::kInstalling},
    {S::kCancelled, E::kRebooting, S::kRebooting},
    {S::kCancelled, E::kSucceeded, S::kSucceeded},
    {S::kCancelled, E::kInstallFailed, S::kFailed},
    {S::kCancelled, E::kRolledBack, S::kRolledBack},
    {S::kSkipped, E::kSkip, S::kSkipped},
    {S::kSkipped, E::kCancel, S::kSkipped},
    {S::kSkipped, E::kRevert, S::kSkipped},

    // Fleet rollback: the previous version goes back through the same steps.
    {S::kRevertPending, E::kOffer, S::kReverting},
    {S::kRevertPending, E::kSucceeded, S::kRevertPending},  // late report of the forward install
    {S::kRevertPending, E::kUnhealthy, S::kRevertPending},
    {S::kRevertPending, E::kRevert, S::kRevertPending},
    {S::kRevertPending, E::kCancel, S::kRevertPending},
    {S::kRevertPending, E::kSkip, S::kRevertFailed},  // left the fleet: never reverted

    {S::kReverting, E::kOffer, S::kReverting},
    {S::kReverting, E::kDownloading, S::kReverting},
    {S::kReverting, E::kInstalling, S::kReverting},
    {S::kReverting, E::kRebooting, S::kReverting},
    {S::kReverting, E::kSucceeded, S::kReverted},
    {S::kReverting, E::kInstallFailed, S::kRevertFailed},
    {S::kReverting, E::kRolledBack,
     S::kRevertFailed},  // the old image did not boot: still on the new one
    {S::kReverting, E::kUnhealthy, S::kReverting},
    {S::kReverting, E::kRevert, S::kReverting},
    {S::kReverting, E::kCancel, S::kReverting},
    {S::kReverting, E::kSkip, S::kRevertFailed},
    {S::kReverting, E::kWithdraw, S::kRevertFailed},  // no window fits the revert's install

    {S::kReverted, E::kSucceeded, S::kReverted},
    {S::kReverted, E::kRevert, S::kReverted},
    {S::kReverted, E::kCancel, S::kReverted},
    {S::kRevertFailed, E::kInstallFailed, S::kRevertFailed},
    {S::kRevertFailed, E::kRolledBack, S::kRevertFailed},
    {S::kRevertFailed, E::kRevert, S::kRevertPending},  // an operator's rollback retries it
    {S::kRevertFailed, E::kCancel, S::kRevertFailed},
    {S::kRevertFailed, E::kSilence, S::kRevertFailed},

    // Silent past its contract. Whoever was waiting for it stops; it is heard again by
    // reporting (its update went on meanwhile) or by checking in idle (offered afresh).
    {S::kPending, E::kSilence, S::kSilent},
    {S::kOffered, E::kSilence, S::kSilent},
    {S::kDownloading, E::kSilence, S::kSilent},
    {S::kInstalling, E::kSilence, S::kSilent},
    {S::kRebooting, E::kSilence, S::kSilent},
    {S::kSucceeded, E::kSilence, S::kLost},              // within its watch: a failure
    {S::kRevertPending, E::kSilence, S::kRevertFailed},  // the revert cannot reach it
    {S::kReverting, E::kSilence, S::kRevertFailed},
    {S::kSilent, E::kSilence, S::kSilent},
    {S::kSilent, E::kOffer, S::kOffered},
    {S::kSilent, E::kDownloading, S::kDownloading},
    {S::kSilent, E::kInstalling, S::kInstalling},
    {S::kSilent, E::kRebooting, S::kRebooting},
    {S::kSilent, E::kSucceeded, S::kSucceeded},
    {S::kSilent, E::kInstallFailed, S::kFailed},
    {S::kSilent, E::kRolledBack, S::kRolledBack},
    {S::kSilent, E::kUnhealthy, S::kUnhealthy},  // committed while out of reach
    {S::kSilent, E::kCancel, S::kCancelled},     // reports after an offer still count (above)
    {S::kSilent, E::kSkip, S::kSkipped},
    {S::kSilent, E::kWithdraw, S::kCancelled},
    {S::kSilent, E::kRevert, S::kSilent},  // not known to run the new version
    // Back after going silent in its watch: the failure stands (the silence was the outage
    // the watch is there to catch); its later reports change nothing.
    {S::kLost, E::kSilence, S::kLost},
    {S::kLost, E::kDownloading, S::kLost},
    {S::kLost, E::kInstalling, S::kLost},
    {S::kLost, E::kRebooting, S::kLost},
    {S::kLost, E::kSucceeded, S::kLost},
    {S::kLost, E::kUnhealthy, S::kLost},
    {S::kLost, E::kCancel, S::kLost},
    {S::kLost, E::kRevert, S::kRevertPending},
};

constexpr StateTable<S, E> kMachine{kRows};

}  // namespace

const char* to_string(DeploymentEvent e) { return enum_name(kEventNames, e); }
Result<DeploymentEvent> parse_deployment_event(std::string_view s) {
  return enum_parse(kEventNames, s, "deployment event");
}

Result<DeploymentState> next_state(DeploymentState state, DeploymentEvent event) {
  if (auto to = kMachine.next(state, event)) return *to;
  return conflict(std::string("deployment cannot take '") + to_string(event) + "' while " +
                  to_string(state));
}

bool is_in_flight(DeploymentState s) {
  return s == S::kOffered || s == S::kDownloading || s == S::kInstalling || s == S::kRebooting ||
         s == S::kReverting;
}

bool is_finished(DeploymentState s) {
  return s != S::kPending && s != S::kOffered && s != S::kDownloading && s != S::kInstalling &&
         s != S::kRebooting;
}

bool is_failure(DeploymentState s) {
  return s == S::kFailed || s == S::kRolledBack || s == S::kUnhealthy || s == S::kLost;
}

bool is_revert(DeploymentState s) {
  return s == S::kRevertPending || s == S::kReverting || s == S::kReverted || s == S::kRevertFailed;
}

bool runs_new_version(DeploymentState s) {
  return s == S::kSucceeded || s == S::kUnhealthy || s == S::kLost || s == S::kRevertPending ||
         s == S::kRevertFailed;
}

}  // namespace drover
