#include "rollout/rollout_machine.h"

#include <string>

namespace drover {
namespace {

using S = RolloutState;
using E = RolloutEvent;

struct Row {
  S from;
  E event;
  S to;
};

constexpr Row kTable[] = {
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

}  // namespace

const char* to_string(RolloutEvent e) {
  switch (e) {
    case E::kStart:
      return "start";
    case E::kPause:
      return "pause";
    case E::kResume:
      return "resume";
    case E::kAbort:
      return "abort";
    case E::kRollback:
      return "rollback";
    case E::kComplete:
      return "complete";
    case E::kAllHalted:
      return "all_halted";
    case E::kWatch:
      return "watch";
    case E::kCompletePartial:
      return "complete_partial";
  }
  return "unknown";
}

Result<RolloutState> next_state(RolloutState state, RolloutEvent event) {
  for (const Row& r : kTable) {
    if (r.from == state && r.event == event) return r.to;
  }
  return conflict(std::string("cannot ") + to_string(event) + " a rollout that is " +
                  to_string(state));
}

}  // namespace drover
