#include "rollout/offer_decision.h"

#include <algorithm>
#include <utility>

namespace drover {

namespace {

OfferDecision held(OfferHeld why) { return {OfferAct::kNothing, why, {}, {}, {}}; }
OfferDecision act(OfferAct a, std::string message = {}) {
  return {a, OfferHeld::kNo, std::move(message), {}, {}};
}

// Looked up only where needed: most check-ins are of devices whose turn has not come.
const std::string* installed_version(const OfferFacts& f) {
  return f.device->installed_version(f.artifact->name);
}

// Not before the deployment's stage, not to a halted group, only through an open window, only
// what suits the device and it does not run already, within max_in_flight, the canary's pace
// and the rate limit: then the offer.
OfferDecision pending(const OfferFacts& f, OfferQuestions& q, bool going) {
  if (!going || f.stage > f.rollout_stage || q.halted()) return {};
  if (!q.window_open()) return held(OfferHeld::kWindow);
  if (Status st = check_compatible(*f.artifact, *f.device); !st.ok())
    return act(OfferAct::kSkip, st.error().message);
  if (const std::string* installed = installed_version(f)) {
    auto v = Version::parse(*installed);
    if (v.ok() && (f.allow_downgrade ? *v == *f.target : !(*v < *f.target)))
      return act(OfferAct::kSkip, "already runs " + *installed);
  }
  if (f.max_in_flight > 0 && f.in_flight - f.holding >= f.max_in_flight)
    return held(OfferHeld::kInFlight);
  // A canary (the first of several stages) starts slow: each group of the first dimension
  // (each hardware revision, by default) has at most min_sample devices in flight, or as many
  // as have finished, whichever is more. Exposure doubles with each round of outcomes, so the
  // gate can stop a bad build before the whole canary has installed it, and a large canary
  // still reaches full speed in a few rounds (docs/gates.md, "Pacing"). Devices that have
  // not reported for a while (stalled) free their place, so that a few dead ones cannot hold
  // a revision's canary back.
  const bool paced = f.stage == 0 && f.rollout_stage == 0 && f.stages > 1;
  if (paced) {
    const PacingCounts p = q.pacing();
    if (p.in_flight - std::min(p.in_flight, p.stalled) >= std::max(f.min_sample, p.finished))
      return held(OfferHeld::kPacing);
  }
  auto w = q.windows();
  // A paced canary's places go to devices that can install now (quiet hours too).
  if (!w || (paced && !w->empty() && w->front().from > f.now)) return held(OfferHeld::kWindow);
  if (!q.take_rate()) return held(OfferHeld::kRate);
  OfferDecision d = act(OfferAct::kOffer);
  d.windows = std::move(*w);
  return d;
}

// The device is idle, so it either finished without its report reaching the server, or it
// lost the offer (a restart, a wiped data directory): succeeded, or the offer again.
OfferDecision in_flight(const OfferFacts& f, OfferQuestions& q, bool going) {
  const std::string* installed = installed_version(f);
  if (installed != nullptr && *installed == f.artifact->version) return act(OfferAct::kSucceeded);
  if (!going || q.halted()) return {};
  if (installed != nullptr) {
    auto v = Version::parse(*installed);
    // Runs something newer: never downgrade, unless that is the point.
    if (v.ok() && !f.allow_downgrade && !(*v < *f.target)) return {};
  }
  if (!q.window_open()) return {};
  auto w = q.windows();
  if (!w) return {};
  OfferDecision d = f.state == DeploymentState::kSilent
                        ? act(OfferAct::kReoffer, "heard again after going silent: offered again")
                        : act(OfferAct::kResend);
  d.windows = std::move(*w);
  return d;
}

OfferDecision revert_pending(const OfferFacts& f, OfferQuestions& q) {
  const std::string* installed = installed_version(f);
  // Back already (by hand, say): nothing to send.
  const std::string& from = f.deployment->from_version;
  if (installed != nullptr && *installed == from)
    return act(OfferAct::kAlreadyBack, "runs " + from + " again");
  // Updated since by a later rollout: sending it back would undo that one too.
  if (installed == nullptr || *installed != f.artifact->version) {
    return act(OfferAct::kSkip, "not sent back: it runs " +
                                    (installed != nullptr ? *installed : std::string("nothing")) +
                                    " now, not " + f.artifact->version);
  }
  if (f.rollout_state == RolloutState::kPaused || !q.window_open()) return {};
  auto offer = q.revert_offer();
  if (!offer) return {};
  OfferDecision d =
      act(OfferAct::kRevert, offer->switch_back ? "switch back to " + offer->version +
                                                      " in the other slot (no download)"
                                                : "send back " + offer->version);
  d.revert = std::move(offer);
  return d;
}

OfferDecision reverting(const OfferFacts& f, OfferQuestions& q) {
  const std::string* installed = installed_version(f);
  if (installed != nullptr && *installed == f.deployment->from_version)
    return act(OfferAct::kSucceeded);
  if (f.rollout_state == RolloutState::kPaused || !q.window_open()) return {};
  OfferDecision d;
  d.revert = q.revert_offer();
  if (d.revert) d.act = OfferAct::kRevertResend;
  return d;
}

}  // namespace

OfferDecision decide_offer(const OfferFacts& f, OfferQuestions& q) {
  // A silent device checking in idle is offered the update again: as if pending when it
  // never had it, as if offered (a re-send) when it had. Heard again, it may take the update
  // while the rollout still watches, too: the rollout then waits for it.
  const bool silent = f.state == DeploymentState::kSilent;
  const bool going = f.rollout_state == RolloutState::kRunning ||
                     (silent && f.rollout_state == RolloutState::kWatching);
  DeploymentState state = f.state;
  if (silent) {
    state = f.deployment->offered_at == Timestamp{} ? DeploymentState::kPending
                                                    : DeploymentState::kOffered;
  }
  switch (state) {
    case DeploymentState::kPending:
      return pending(f, q, going);
    case DeploymentState::kOffered:
    case DeploymentState::kDownloading:
    case DeploymentState::kInstalling:
    case DeploymentState::kRebooting:
      return in_flight(f, q, going);
    case DeploymentState::kRevertPending:
      return revert_pending(f, q);
    case DeploymentState::kReverting:
      return reverting(f, q);
    default:
      return {};
  }
}

}  // namespace drover
