// The life of a rollout, as one (state, event) -> state table. Operator commands and the
// engine's own judgements are the events; a pair missing from the table is refused with
// kConflict ("cannot resume a completed rollout") and changes nothing.
#pragma once

#include <cstdint>

#include "base/result.h"
#include "model/rollout.h"

namespace drover {

enum class RolloutEvent : uint8_t {
  kStart,            // operator
  kPause,            // operator
  kResume,           // operator
  kAbort,            // operator
  kRollback,         // operator: revert every updated device
  kComplete,         // engine: the last stage finished and nothing is left in flight
  kAllHalted,        // engine: every stratum halted
  kWatch,            // engine: the last stage finished; the watch after commit begins
  kCompletePartial,  // engine: as kComplete, with groups halted or devices failed
  kCount,            // not an event: how many there are
};

const char* to_string(RolloutEvent e);
Result<RolloutState> next_state(RolloutState state, RolloutEvent event);

}  // namespace drover
