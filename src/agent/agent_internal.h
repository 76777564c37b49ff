// What the agent's sources share (src/agent/agent.cc, agent_install.cc,
// agent_commands.cc); not for use outside the agent.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "agent/update_machine.h"
#include "base/clock.h"
#include "protocol/device.h"

namespace drover::agent::internal {

// What the server is told the device is doing, from the step it is in.
inline protocol::UpdateState wire_state(UpdateStep s) {
  using W = protocol::UpdateState;
  switch (s) {
    case UpdateStep::kIdle:
      return W::kIdle;
    case UpdateStep::kDownloading:
    case UpdateStep::kVerifying:
      return W::kDownloading;
    case UpdateStep::kReady:
      return W::kReady;
    case UpdateStep::kInstalling:
      return W::kInstalling;
    case UpdateStep::kRebooting:
    case UpdateStep::kCommitting:
      return W::kRebooting;
    case UpdateStep::kRollingBack:
      return W::kRollingBack;
    case UpdateStep::kCount:  // not a step
      break;
  }
  return W::kIdle;
}

inline int64_t ms(Timestamp t) { return t.time_since_epoch().count(); }

// What an offer is known by (its failures, its backoff): the rollout, the component, the
// version and the image's digest.
inline std::string offer_key(std::string_view rollout, std::string_view component,
                             std::string_view version, std::string_view sha256) {
  return std::string(rollout) + "/" + std::string(component) + "@" + std::string(version) + "/" +
         std::string(sha256);
}

}  // namespace drover::agent::internal
