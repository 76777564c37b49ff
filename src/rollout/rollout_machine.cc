#include "rollout/rollout_machine.h"

#include <string>

#include "base/enum_names.h"
#include "base/state_table.h"

namespace drover {
namespace {

using S = RolloutState;
using E = RolloutEvent;

constexpr Transition<S, E> kRows[] = {
    {S::kCreated, E::kStart, S::kRunning},
    {S::kCreated, E::kAbort, S::kAborted},

    {S::kRunning, E::kPause, S::kPaused},
    {S::kRunning, E::kResume, S::kRunning},  // idempotent; also clears paused strata
    {S::kRunning, E::kAbort, S::kAborted},
    {S::kRunning, E::kRollback, S::kRollingBack},
    {S::kRunning, E::kComplete, S::kCompleted},
    {S::kRunning, E::kCompletePartial, S::kCompletedPartial},
    {S::kRunning, E::kAllHalted, S::kFailed},
    {S::kRunning, E::kWatch, S::kWatching},

    {S::kWatching, E::kPause, S::kPaused},  // resumed, it watches again from the resume
    {S::kWatching, E::kResume, S::kWatching},
    {S::kWatching, E::kAbort, S::kAborted},
    {S::kWatching, E::kRollback, S::kRollingBack},
    {S::kWatching, E::kComplete, S::kCompleted},
    {S::kWatching, E::kCompletePartial, S::kCompletedPartial},
    {S::kWatching, E::kAllHalted, S::kFailed},

    {S::kPaused, E::kPause, S::kPaused},
    {S::kPaused, E::kResume, S::kRunning},
    {S::kPaused, E::kAbort, S::kAborted},
    {S::kPaused, E::kRollback, S::kRollingBack},
    {S::kPaused, E::kAllHalted, S::kFailed},

    {S::kCompleted, E::kRollback, S::kRollingBack},
    {S::kCompletedPartial, E::kRollback, S::kRollingBack},
    {S::kFailed, E::kRollback, S::kRollingBack},
    {S::kAborted, E::kRollback, S::kRollingBack},

    {S::kRollingBack, E::kRollback, S::kRollingBack},
    {S::kRollingBack, E::kComplete, S::kRolledBack},
    {S::kRollingBack, E::kAllHalted, S::kRollingBack},
    {S::kRollingBack, E::kCompletePartial, S::kRollbackIncomplete},
    {S::kRollbackIncomplete, E::kRollback, S::kRollingBack},  // retries the failed reverts
};
constexpr StateTable<S, E> kMachine{kRows};

constexpr EnumNames<E, static_cast<size_t>(E::kCount)> kEventNames{{
    {E::kStart, "start"},
    {E::kPause, "pause"},
    {E::kResume, "resume"},
    {E::kAbort, "abort"},
    {E::kRollback, "rollback"},
    {E::kComplete, "complete"},
    {E::kAllHalted, "all_halted"},
    {E::kWatch, "watch"},
    {E::kCompletePartial, "complete_partial"},
}};
static_assert(names_every_value(kEventNames));

}  // namespace

const char* to_string(RolloutEvent e) { return enum_name(kEventNames, e); }

Result<RolloutState> next_state(RolloutState state, RolloutEvent event) {
  if (auto to = kMachine.next(state, event)) return *to;
  return conflict(std::string("cannot ") + to_string(event) + " a rollout that is " +
                  to_string(state));
}

}  // namespace drover
