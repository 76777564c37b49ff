// What an idle device's check-in gets from one of its deployments: the decision behind
// RolloutEngine::offer_for, pure. It reads the facts the engine has at hand (OfferFacts) and
// asks the rest only when the decision comes to it (OfferQuestions: windows, the rate limit,
// a revert's image), so that the check-ins of devices whose turn has not come
// end after a few comparisons. No I/O, clock or lock here: the engine answers the questions
// and writes what is decided.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/clock.h"
#include "base/result.h"
#include "model/artifact.h"
#include "model/device.h"
#include "model/rollout.h"
#include "model/version.h"
#include "rollout/engine.h"

namespace drover {

struct OfferFacts {
  // The deployment's state and stage as the engine keeps them at hand; its record is read
  // only on the way to an offer or a repair (a cache miss most check-ins do without).
  DeploymentState state = DeploymentState::kPending;  // kSilent as it is
  uint32_t stage = 0;
  const Deployment* deployment = nullptr;
  RolloutState rollout_state = RolloutState::kRunning;
  uint32_t rollout_stage = 0;
  size_t stages = 1;
  bool allow_downgrade = false;
  const Device* device = nullptr;      // as it checked in
  const Artifact* artifact = nullptr;  // what the rollout installs...
  const Version* target = nullptr;     // ...its version, parsed
  uint32_t max_in_flight = 0;          // 0: no limit
  uint32_t in_flight = 0;              // the rollout's deployments in flight...
  uint32_t holding = 0;                // ...of which hold their image for a window
  uint32_t min_sample = 0;             // the gate's: a paced canary's first allowance
  Timestamp now{};
};

// A canary's first-level group (stage 0 of several): its forward offers in flight, how many
// of those went quiet (stalled), and how many have finished.
struct PacingCounts {
  uint32_t in_flight = 0;
  uint32_t stalled = 0;
  uint32_t finished = 0;
};

// Asked only on the way to an offer or a repair: most check-ins are of devices whose turn has
// not come, and answering these reads records such a check-in otherwise does without.
class OfferQuestions {
 public:
  virtual ~OfferQuestions() = default;
  // Whether the deployment's stratum is halted.
  virtual bool halted() = 0;
  virtual PacingCounts pacing() = 0;
  // Whether the device's site lets the update go to it now (its windows, download_ahead).
  virtual bool window_open() = 0;
  // The windows an offer carries (empty: any time); nullopt when none opens soon enough.
  virtual std::optional<std::vector<TimeRange>> windows() = 0;
  // Takes one offer from the rollout's rate limit: false when none is left now.
  virtual bool take_rate() = 0;
  // The offer that sends the device back to what it ran (Deployment::from_version);
  // nullopt when there is no image to send or no window for it.
  virtual std::optional<UpdateOffer> revert_offer() = 0;
};

enum class OfferAct : uint8_t {
  kNothing,      // nothing for this deployment now
  kSkip,         // it is skipped: `message` says why
  kSucceeded,    // it runs what it was to run (forward or back): succeeded
  kOffer,        // the first offer of the update, with `windows` (written)
  kResend,       // the same offer again, with `windows` (nothing written)
  kReoffer,      // the offer again, to a device heard after going silent (written)
  kAlreadyBack,  // a revert that finds the device back already: offered and succeeded at once
  kRevert,       // the revert offer, `revert` (written)
  kRevertResend  // the revert offer again, `revert` (nothing written)
};

// Why a pending deployment got no offer although its stage has come (StageInsight).
enum class OfferHeld : uint8_t { kNo, kWindow, kInFlight, kPacing, kRate };

struct OfferDecision {
  OfferAct act = OfferAct::kNothing;
  OfferHeld held = OfferHeld::kNo;
  std::string message;  // kSkip's reason; the history line of kReoffer, kAlreadyBack, kRevert
  std::vector<TimeRange> windows;
  std::optional<UpdateOffer> revert;
};

OfferDecision decide_offer(const OfferFacts& f, OfferQuestions& q);

}  // namespace drover
