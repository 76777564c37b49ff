// The life of one device's deployment, as one (state, event) -> state table.
//
// Events come from two sides: the engine (offer, cancel, skip, revert, silence, withdraw) and
// the device's status reports (protocol::Report: downloading ... succeeded, failed, rolled
// back, unhealthy, withdraw; event_of() says which event each is). Reports travel
// over lossy networks and are retried, so a report that repeats or trails the current state
// is an explicit "stay" row in the table. A pair missing from the table is refused with
// kConflict and changes nothing.
#pragma once

#include <cstdint>
#include <string_view>

#include "base/result.h"
#include "model/rollout.h"
#include "protocol/device.h"

namespace drover {

enum class DeploymentEvent : uint8_t {
  kOffer,        // engine: the offer (or its re-send) goes to the device
  kDownloading,  // device reports
  kInstalling,
  kRebooting,
  kSucceeded,      // committed the image
  kInstallFailed,  // could not install; still on the previous image
  kRolledBack,     // trial boot failed; back on the previous image
  kUnhealthy,      // committed, later reported itself unhealthy
  kCancel,         // engine: stratum or rollout stopped before the offer
  kSkip,           // engine: no longer a target (incompatible when its turn came, or it
                   // left the fleet: then also from flight, and a revert becomes revert_failed)
  kRevert,         // engine: fleet rollback of a device that runs the new image
  kWithdraw,       // a device holding the image drops it uninstalled: the engine tells it
                   // to (the rollout stopped, its group halted), or it reports it did (no
                   // maintenance window fits its install)
  kSilence,        // engine: silent past its check-in contract (docs/gates.md, "Silent devices")
  kCount,          // not an event: how many there are
};
inline constexpr int kDeploymentEventCount = static_cast<int>(DeploymentEvent::kCount);

const char* to_string(DeploymentEvent e);
Result<DeploymentEvent> parse_deployment_event(std::string_view s);

// The event a device's report is (kCount for R::kCount, which is none). The engine's own
// events (offer, cancel, skip, revert, silence) are no report, so no device can send them.
constexpr DeploymentEvent event_of(protocol::Report r) {
  using R = protocol::Report;
  switch (r) {
    case R::kDownloading:
      return DeploymentEvent::kDownloading;
    case R::kInstalling:
      return DeploymentEvent::kInstalling;
    case R::kRebooting:
      return DeploymentEvent::kRebooting;
    case R::kSucceeded:
      return DeploymentEvent::kSucceeded;
    case R::kInstallFailed:
      return DeploymentEvent::kInstallFailed;
    case R::kRolledBack:
      return DeploymentEvent::kRolledBack;
    case R::kUnhealthy:
      return DeploymentEvent::kUnhealthy;
    case R::kWithdraw:
      return DeploymentEvent::kWithdraw;
    case R::kCount:  // not a report
      break;
  }
  return DeploymentEvent::kCount;
}

// The state after `event` in `state`. kConflict when the table has no such row.
Result<DeploymentState> next_state(DeploymentState state, DeploymentEvent event);

// Groupings of states used by counters and the offer path.
bool is_in_flight(DeploymentState s);      // offered, not finished (forward or revert)
bool is_finished(DeploymentState s);       // the forward install is over (whatever came after)
bool is_failure(DeploymentState s);        // the forward install failed
bool is_revert(DeploymentState s);         // on the fleet-rollback path
bool runs_new_version(DeploymentState s);  // the device committed the rollout's image

}  // namespace drover
