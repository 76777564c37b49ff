#include "sim/agent_devices.h"

#include <algorithm>
#include <iterator>

namespace drover::sim {
namespace {

// Where the twin counts a device whose agent stands at each step of its update machine.
constexpr Phase kPhaseOf[] = {
    Phase::kIdle,         // kIdle
    Phase::kDownloading,  // kDownloading
    Phase::kDownloading,  // kVerifying
    Phase::kHolding,      // kReady
    Phase::kInstalling,   // kInstalling
    Phase::kRebooting,    // kRebooting
    Phase::kRebooting,    // kCommitting
    Phase::kRollingBack,  // kRollingBack
};
static_assert(std::size(kPhaseOf) == agent::kUpdateStepCount, "a phase for every step");

}  // namespace

AgentDevices::AgentDevices(NetworkFleetOptions options, const std::vector<Device>& fleet,
                           FleetWorld& world, ManualClock& clock, Narrator& narrator, RunState& run)
    : world_(world),
      clock_(clock),
      narrator_(narrator),
      run_(run),
      fleet_(std::make_unique<NetworkFleet>(std::move(options), world, clock)),
      unhealthy_(fleet.size()) {
  for (uint32_t i = 0; i < fleet.size(); ++i) {
    const ConnectivitySpec& link = world.link(i);
    fleet_->add({fleet[i].id, fleet[i].device_type, fleet[i].hardware_revision, link.poll_interval,
                 link.kind == LinkKind::kIntermittent});
  }
}

void AgentDevices::handle(const Event& e) {
  switch (static_cast<EventKind>(e.kind)) {
    case EventKind::kUnhealthy:
      report_unhealthy(e.device);
      return;
    case EventKind::kGoesDark:
      world_.go_dark(e.device);  // the agent's inventory is its own: it shows regardless
      return;
    case EventKind::kLost:
      return;  // the run's
    case EventKind::kCheckIn:
    case EventKind::kPhaseDone:
    case EventKind::kApply:
      step(e.device);
      return;
  }
}

void AgentDevices::step(uint32_t dev) {
  SimDevice& d = world_.device(dev);
  // Once the fleet is done, devices only deliver the news they hold.
  if (run_.draining && d.phase == Phase::kIdle && d.pending_report < 0) return;
  auto s = fleet_->step(dev);
  if (!s.ok()) {
    narrator_.tell_device(world_, dev, "its agent cannot start: " + s.error().to_string(),
                          run_.agent_failures);
    return;  // the device falls silent
  }
  const Phase before = d.phase;
  const Timestamp now = clock_.now();
  const Phase phase = s->step == agent::UpdateStep::kCount  // not a step
                          ? before
                          : kPhaseOf[static_cast<size_t>(s->step)];
  if (phase == Phase::kIdle && before == Phase::kHolding) {
    narrator_.tell_device(world_, dev,
                          "dropped its image of " + s->version + " before installing it",
                          run_.withdrawn);
  }
  // Counted once, when the agent first waits with the image (apply_at_ms marks it).
  if (s->step == agent::UpdateStep::kReady && s->wait > Duration(0) && d.apply_at_ms < 0) {
    ++run_.windows.held;
    d.apply_at_ms = 0;
  }
  // The agent moved in (the install itself runs in its next step, right away).
  if (phase == Phase::kInstalling && before != Phase::kInstalling && !world_.in_window(dev, now))
    ++run_.windows.installs_outside;
  if (phase == Phase::kRebooting && !s->revert && s->rollout_id == run_.rollout_id)
    d.installed_new = true;
  d.phase = phase;
  if (s->step != agent::UpdateStep::kReady) d.apply_at_ms = -1;
  d.pending_report = s->report_pending ? 0 : -1;
  const Timestamp done = clock_.now() + s->busy;
  if (s->rebooted && !world_.in_window(dev, now)) ++run_.windows.reboots_outside;
  if (s->committed && !world_.in_window(dev, done)) ++run_.windows.commits_outside;
  if (s->trial_failed) {
    narrator_.tell_device(world_, dev,
                          "trial boot of " + s->version + " failed; back on the previous slot",
                          run_.self_rollbacks);
  }
  if (s->committed) {
    if (!s->revert && s->rollout_id == run_.rollout_id) {
      d.committed_at_ms = (done - run_.rollout_started).count();
    } else {
      if (s->revert) {
        narrator_.tell_device(world_, dev, "back on " + s->version + " after the fleet rollback",
                              run_.reverts);
      }
      d.committed_at_ms = -1;
    }
    UpdateOffer offer;
    offer.version = s->version;
    offer.revert = s->revert;
    Duration after{0};
    if (world_.defect(dev, offer, DefectKind::kFailsAfter, &after)) {
      unhealthy_[dev] = {s->rollout_id, s->version};
      world_.schedule(dev, done + after, EventKind::kUnhealthy);
    }
    if (world_.defect(dev, offer, DefectKind::kGoesSilent, &after))
      world_.schedule(dev, done + after, EventKind::kGoesDark);
  }
  Timestamp at = s->link_down ? world_.next_online(dev, done) : done + s->wait;
  // Holding, it wakes for its window whether or not the link is up by then.
  if (s->step == agent::UpdateStep::kReady) at = std::min(at, done + s->wait);
  world_.schedule(dev, at, EventKind::kCheckIn);
}

void AgentDevices::report_unhealthy(uint32_t dev) {
  const auto& [rollout, version] = unhealthy_[dev];
  const Status st = fleet_->report_unhealthy(dev, rollout, version);
  if (!st.ok() && st.error().code == ErrorCode::kIo) {
    // The link is down: the monitor tells the server when it is back.
    world_.schedule(dev, std::max(world_.next_online(dev, clock_.now()), clock_.now() + minutes(1)),
                    EventKind::kUnhealthy);
  }
}

}  // namespace drover::sim
