#include "agent/update_machine.h"

#include <array>
#include <string>

#include "base/enum_names.h"
#include "base/state_table.h"

namespace drover::agent {
namespace {

using S = UpdateStep;
using E = UpdateEvent;

// The whole flow. Read it top to bottom; every pair not listed is refused.
constexpr Transition<S, E> kRows[] = {
    {S::kIdle, E::kOffer, S::kDownloading},
    {S::kIdle, E::kOfferKept, S::kReady},  // a switch back: the image is in the other slot
    {S::kDownloading, E::kDownloaded, S::kVerifying},
    {S::kDownloading, E::kFailed, S::kIdle},   // nothing written to a slot yet
    {S::kDownloading, E::kDropped, S::kIdle},  // given up by a command (clear_update)
    {S::kVerifying, E::kVerified, S::kReady},
    {S::kVerifying, E::kFailed, S::kIdle},  // a bad hash is dropped, never installed
    {S::kReady, E::kWindowOpen, S::kInstalling},
    {S::kReady, E::kDropped, S::kIdle},  // the slots were never touched
    {S::kReady, E::kFailed, S::kIdle},
    {S::kInstalling, E::kInstalled, S::kRebooting},
    {S::kInstalling, E::kFailed, S::kRollingBack},  // the inactive slot may be half written
    {S::kRebooting, E::kBootedNew, S::kCommitting},
    {S::kRebooting, E::kBootedOld, S::kRollingBack},  // the trial boot failed
    {S::kRebooting, E::kFailed, S::kRollingBack},     // could not switch slots
    {S::kCommitting, E::kCommitted, S::kIdle},
    {S::kCommitting, E::kFailed, S::kRollingBack},  // a health check failed
    {S::kCommitting, E::kCommitTimeout, S::kRollingBack},
    {S::kRollingBack, E::kRolledBack, S::kIdle},
};
constexpr StateTable<S, E> kMachine{kRows};

constexpr EnumNames<UpdateStep, kUpdateStepCount> kStepNames{{
    {S::kIdle, "idle"},
    {S::kDownloading, "downloading"},
    {S::kVerifying, "verifying"},
    {S::kReady, "ready"},
    {S::kInstalling, "installing"},
    {S::kRebooting, "rebooting"},
    {S::kCommitting, "committing"},
    {S::kRollingBack, "rolling_back"},
}};

constexpr EnumNames<UpdateEvent, kUpdateEventCount> kEventNames{{
    {E::kOffer, "offer"},
    {E::kDownloaded, "downloaded"},
    {E::kVerified, "verified"},
    {E::kInstalled, "installed"},
    {E::kBootedNew, "booted_new"},
    {E::kBootedOld, "booted_old"},
    {E::kCommitted, "committed"},
    {E::kFailed, "failed"},
    {E::kCommitTimeout, "commit_timeout"},
    {E::kRolledBack, "rolled_back"},
    {E::kWindowOpen, "window_open"},
    {E::kDropped, "dropped"},
    {E::kOfferKept, "offer_kept"},
}};
static_assert(names_every_value(kStepNames));
static_assert(names_every_value(kEventNames));

}  // namespace

const char* to_string(UpdateStep s) { return enum_name(kStepNames, s); }
const char* to_string(UpdateEvent e) { return enum_name(kEventNames, e); }
Result<UpdateStep> parse_update_step(std::string_view s) {
  return enum_parse(kStepNames, s, "update step");
}

Result<UpdateStep> next_step(UpdateStep step, UpdateEvent event) {
  if (auto to = kMachine.next(step, event)) return *to;
  return Error{ErrorCode::kConflict,
               std::string("no transition from ") + to_string(step) + " on " + to_string(event)};
}

bool touches_slots(UpdateStep step) {
  return step == S::kInstalling || step == S::kRebooting || step == S::kCommitting ||
         step == S::kRollingBack;
}

}  // namespace drover::agent
