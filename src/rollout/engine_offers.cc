// The engine's answers to check-ins: offers (decided by offer_decision.h, written here), the
// windows an offer carries, and what a device holding an image for its window is told.
#include <algorithm>

#include "model/version.h"
#include "rollout/engine.h"
#include "rollout/engine_state.h"
#include "rollout/offer_decision.h"

namespace drover {

std::string StageInsight::bound_by() const {
  if (unsigned_target > 0) return "unsigned";  // nothing is offered until it is signed
  const std::pair<uint64_t, const char*> reasons[] = {
      {window, "window"}, {in_flight, "max_in_flight"}, {rate, "rate"}, {pacing, "pacing"}};
  const auto* top =
      std::max_element(std::begin(reasons), std::end(reasons),
                       [](const auto& a, const auto& b) { return a.first < b.first; });
  return top->first > offers ? top->second : "links";
}

const char* to_string(HoldAnswer::Action a) {
  switch (a) {
    case HoldAnswer::Action::kApply:
      return "apply";
    case HoldAnswer::Action::kWait:
      return "wait";
    case HoldAnswer::Action::kDrop:
      return "drop";
  }
  return "drop";
}

bool RolloutEngine::window_allows_offer(const Rollout& r, std::string_view site, Timestamp now) {
  const DeliveryConstraints& c = r.plan.constraints;
  if (!c.respect_windows) return true;
  if (!ensure_site(site).ok()) return false;
  const Timestamp open = windows_.next_open(site, now);  // now for an unknown site
  if (open == Timestamp::max()) return false;
  return c.download_in_window ? open == now : open - now <= c.download_ahead;
}

std::optional<std::vector<TimeRange>> RolloutEngine::offer_windows(const Rollout& r,
                                                                   const CheckInDevice& device,
                                                                   Timestamp now) {
  std::vector<TimeRange> out;
  if (!r.plan.constraints.respect_windows) return out;
  if (!ensure_site(device.site).ok()) return std::nullopt;  // unknown yet: no offer, wait
  // Windows that open within the week are sent whole (up to a day past it), so that a device
  // judging whether one leaves room for its install never sees one cut short by the horizon.
  const Timestamp horizon = now + kOfferHorizon;
  const Timestamp reach = horizon + hours(24);
  const bool known = windows_.has(device.site);
  const std::vector<MaintenanceWindow>& quiet = device.record.quiet_hours;
  if (!known && quiet.empty()) return out;
  out = windows_.open_between(device.site, now, reach);
  if (!quiet.empty()) {
    // Quiet hours are in the site's local time (UTC without a known site).
    const WindowSchedule quiet_schedule(Site{"quiet", windows_.time_zone(device.site), quiet});
    out = subtract(out, quiet_schedule.open_between(now, reach));
  }
  std::erase_if(out, [&](const TimeRange& w) { return w.from >= horizon; });
  if (out.empty()) return std::nullopt;
  // Always open, nothing quiet: no constraint at all.
  if (out.size() == 1 && out.front().from == now && out.front().until == reach) out.clear();
  if (out.size() > kMaxOfferWindows) out.resize(kMaxOfferWindows);
  // A window open now is sent as open since kClockSkew ago, not since this instant: a device
  // whose clock is behind the server's would otherwise see it open a moment from now — ask
  // again then, and be told the same — for good. (When it opened does not matter: nobody
  // installs in the past.)
  if (!out.empty() && out.front().from == now) out.front().from = now - kClockSkew;
  return out;
}

// decide_offer's questions about deployment i of `a`, answered by the engine. Made and used
// only inside offer_for, under mu_ (which the analysis cannot follow through the interface).
class RolloutEngine::OfferAsker final : public OfferQuestions {
 public:
  OfferAsker(RolloutEngine& engine, Active& a, const CheckInDevice& device, uint32_t i,
             Timestamp now)
      : e_(engine), a_(a), device_(device), i_(i), now_(now) {}

  bool halted() override { return a_.strata[a_.hot[i_].stratum].halted; }
  PacingCounts pacing() override {
    const GateNode& pace = a_.nodes[a_.strata[a_.hot[i_].stratum].pace];
    return {pace.first_stage_in_flight, pace.stalled, pace.first_stage_finished};
  }
  bool window_open() override {
    e_.mu_.assert_held();
    return e_.window_allows_offer(a_.rollout, device_.site, now_);
  }
  std::optional<std::vector<TimeRange>> windows() override {
    e_.mu_.assert_held();
    auto w = e_.offer_windows(a_.rollout, device_, now_);
    if (!w || w->empty()) return w;
    const DeliveryConstraints& c = a_.rollout.plan.constraints;
    const Timestamp first = w->front().from;
    if (c.download_in_window ? first > now_ : first - now_ > c.download_ahead) return std::nullopt;
    return w;
  }
  bool take_rate() override { return a_.limiter.try_take(now_); }
  // Back to the version the device ran: by switching slots when it kept that image, else by
  // downloading the uploaded artifact.
  std::optional<UpdateOffer> revert_offer() override {
    e_.mu_.assert_held();
    const Deployment& dep = a_.deps[i_];
    auto prev = e_.artifact(a_.artifact.name, dep.from_version);
    const bool uploaded = prev.ok() && prev->has_value();
    if (!uploaded && !dep.switch_back) return std::nullopt;
    auto w = windows();
    if (!w) return std::nullopt;
    UpdateOffer o;
    o.rollout_id = a_.rollout.id;
    o.component = a_.artifact.name;
    o.version = dep.from_version;
    if (uploaded) {
      o.size_bytes = (**prev).size_bytes;
      o.sha256 = (**prev).sha256;
    }
    o.revert = true;
    o.switch_back = dep.switch_back;
    o.windows = std::move(*w);
    return o;
  }

 private:
  RolloutEngine& e_;
  Active& a_;
  const CheckInDevice& device_;
  uint32_t i_;
  Timestamp now_;
};

Result<std::optional<UpdateOffer>> RolloutEngine::offer_for(const Device& device) {
  return offer_for(CheckInDevice{device.id, FlatIndex::hash(device.id), device.update_state,
                                 device.site, device});
}

Result<std::optional<UpdateOffer>> RolloutEngine::offer_for(const CheckInDevice& device,
                                                            DeviceCursor* cursor) {
  constexpr uint64_t kNoRef = UINT64_MAX;         // cursor: the device is in no rollout
  constexpr uint64_t kManyRefs = UINT64_MAX - 1;  // cursor: several, look them up
  MutexLock lock(mu_);
  if (by_device_.size() == 0) return std::optional<UpdateOffer>{};
  const Timestamp now = clock_.now();
  // The device's deployments, in the order their rollouts were loaded.
  uint64_t refs_inline[8];
  std::vector<uint64_t> refs_more;
  size_t refs = 0;
  if (cursor != nullptr && cursor->epoch == epoch_ && cursor->ref != kManyRefs) {
    if (cursor->ref == kNoRef) return std::optional<UpdateOffer>{};
    refs_inline[refs++] = cursor->ref;
  } else {
    const auto* active = active_.data();  // under mu_, which the callback cannot show
    by_device_.find(device.id_hash, [&](uint64_t ref) {
      if (active[ref >> 32]->deps[ref & 0xffffffffu].device_id != device.id) return false;
      if (refs < 8) {
        refs_inline[refs] = ref;
      } else {
        refs_more.push_back(ref);
      }
      ++refs;
      return false;
    });
    if (refs > 8) {
      // Rarely more than eight: then all of them go into one list, ordered as a whole.
      refs_more.insert(refs_more.end(), refs_inline, refs_inline + 8);
      std::sort(refs_more.begin(), refs_more.end());
      std::copy_n(refs_more.begin(), 8, refs_inline);
      refs_more.erase(refs_more.begin(), refs_more.begin() + 8);
    } else if (refs > 1) {
      std::sort(refs_inline, refs_inline + refs);
    }
    if (cursor != nullptr) {
      cursor->epoch = epoch_;
      cursor->ref = refs == 0 ? kNoRef : refs == 1 ? refs_inline[0] : kManyRefs;
    }
  }
  // Every check-in keeps the device's deployments from being judged silent.
  for (size_t k = 0; k < refs; ++k) {
    const uint64_t ref = k < 8 ? refs_inline[k] : refs_more[k - 8];
    Active& a = *active_[ref >> 32];
    const auto i = static_cast<uint32_t>(ref & 0xffffffffu);
    a.heard_from(i, now, device.record.connectivity);
  }
  if (device.state != UpdateState::kIdle) return std::optional<UpdateOffer>{};
  for (size_t k = 0; k < refs; ++k) {
    const uint64_t ref = k < 8 ? refs_inline[k] : refs_more[k - 8];
    Active& a = *active_[ref >> 32];
    const auto i = static_cast<uint32_t>(ref & 0xffffffffu);
    const Active::Hot hot = a.hot[i];
    const Rollout& r = a.rollout;
    // Every field given, so nothing is zeroed first on the check-in path.
    const OfferFacts facts{.state = hot.state,
                           .stage = hot.stage,
                           .deployment = &a.deps[i],
                           .rollout_state = r.state,
                           .rollout_stage = r.stage,
                           .stages = r.plan.stages.size(),
                           .allow_downgrade = r.plan.allow_downgrade,
                           .device = &device.record,
                           .artifact = &a.artifact,
                           .target = &a.target,
                           .max_in_flight = r.plan.constraints.max_in_flight,
                           .in_flight = a.in_flight,
                           .holding = a.holding,
                           .min_sample = r.plan.gate.min_sample,
                           .now = now};
    OfferAsker ask(*this, a, device, i, now);
    OfferDecision decided = decide_offer(facts, ask);
    // An artifact whose target is not signed is offered to nobody (the rate limit's token
    // the decision took is then spent on nothing: nothing is offered until it is signed).
    // Reverts, and what a device reports of itself, go on.
    const bool forward = decided.act == OfferAct::kOffer || decided.act == OfferAct::kReoffer ||
                         decided.act == OfferAct::kResend;
    if (forward && options_.offerable && !options_.offerable(a.artifact)) {
      ++a.insights[r.stage].unsigned_target;
      continue;
    }

    StageInsight& insight = a.insights[r.stage];
    switch (decided.held) {
      case OfferHeld::kNo:
        break;
      case OfferHeld::kWindow:
        ++insight.window;
        break;
      case OfferHeld::kInFlight:
        ++insight.in_flight;
        break;
      case OfferHeld::kPacing:
        ++insight.pacing;
        break;
      case OfferHeld::kRate:
        ++insight.rate;
        break;
    }
    auto forward_offer = [&](std::vector<TimeRange> w) {
      UpdateOffer o;
      o.rollout_id = r.id;
      o.component = a.artifact.name;
      o.version = a.artifact.version;
      o.size_bytes = a.artifact.size_bytes;
      o.sha256 = a.artifact.sha256;
      o.windows = std::move(w);
      return o;
    };
    // Most check-ins change nothing: a transaction is set up only when one does.
    std::optional<Txn> staging;
    auto txn = [&]() -> Txn& { return staging ? *staging : staging.emplace(); };
    switch (decided.act) {
      case OfferAct::kNothing:
        continue;
      case OfferAct::kSkip:
        DROVER_TRY(apply_event(a, txn(), i, DeploymentEvent::kSkip, decided.message));
        DROVER_TRY(commit(a, txn()));
        continue;
      case OfferAct::kSucceeded:
        DROVER_TRY(apply_event(a, txn(), i, DeploymentEvent::kSucceeded, {}));
        DROVER_TRY(commit(a, txn()));
        continue;
      case OfferAct::kAlreadyBack:
        DROVER_TRY(apply_event(a, txn(), i, DeploymentEvent::kOffer, "already back"));
        DROVER_TRY(apply_event(a, txn(), i, DeploymentEvent::kSucceeded, decided.message));
        DROVER_TRY(commit(a, txn()));
        continue;
      case OfferAct::kOffer: {
        ++insight.offers;
        offers_made_.fetch_add(1, std::memory_order_relaxed);
        const std::string* installed = device.record.installed_version(a.artifact.name);
        Deployment& staged = txn().dep(a, i);
        staged.from_version = installed != nullptr ? *installed : "";
        staged.offers += 1;
        staged.offered_at = now;
        DROVER_TRY(apply_event(a, txn(), i, DeploymentEvent::kOffer, {}));
        DROVER_TRY(commit(a, txn()));
        return std::optional<UpdateOffer>(forward_offer(std::move(decided.windows)));
      }
      case OfferAct::kReoffer:
        txn().dep(a, i).offers += 1;
        DROVER_TRY(apply_event(a, txn(), i, DeploymentEvent::kOffer, decided.message));
        DROVER_TRY(commit(a, txn()));
        [[fallthrough]];
      case OfferAct::kResend:
        return std::optional<UpdateOffer>(forward_offer(std::move(decided.windows)));
      case OfferAct::kRevert:
        txn().dep(a, i).offers += 1;
        DROVER_TRY(apply_event(a, txn(), i, DeploymentEvent::kOffer, decided.message));
        DROVER_TRY(commit(a, txn()));
        [[fallthrough]];
      case OfferAct::kRevertResend:
        return std::move(decided.revert);
    }
  }
  return std::optional<UpdateOffer>{};
}

void RolloutEngine::warm(std::span<const DeviceCursor* const> cursors) {
  MutexLock lock(mu_);
  for (const DeviceCursor* c : cursors) {
    if (c->epoch != epoch_ || (c->ref >> 32) >= active_.size()) continue;
    __builtin_prefetch(&active_[c->ref >> 32]->hot[c->ref & 0xffffffffu]);
    __builtin_prefetch(&active_[c->ref >> 32]->heard[c->ref & 0xffffffffu], 1);
  }
}

Result<HoldAnswer> RolloutEngine::hold_for(const CheckInDevice& device,
                                           std::string_view rollout_id) {
  MutexLock lock(mu_);
  HoldAnswer out;
  out.rollout_id = std::string(rollout_id);
  Active* a = find(rollout_id);
  uint32_t i = UINT32_MAX;
  if (a != nullptr) {
    by_device_.find(device.id_hash, [&](uint64_t ref) {
      if ((ref >> 32) != a->index || a->deps[ref & 0xffffffffu].device_id != device.id)
        return false;
      i = static_cast<uint32_t>(ref & 0xffffffffu);
      return true;
    });
  }
  if (i == UINT32_MAX) {
    out.reason = "no active rollout " + out.rollout_id + " includes this device";
    return out;
  }
  const Rollout& r = a->rollout;
  const Timestamp now = clock_.now();
  a->heard_from(i, now, device.record.connectivity);
  DeploymentState state = a->deps[i].state;
  if (state == DeploymentState::kSilent && !is_zero(a->deps[i].offered_at)) {
    // Holding the image all along, out of reach: back in the counts.
    Txn txn;
    DROVER_TRY(apply_event(*a, txn, i, DeploymentEvent::kOffer,
                           "heard again after going silent: holds the image for its window"));
    DROVER_TRY(commit(*a, txn));
    state = a->deps[i].state;
  }
  const bool forward = state == DeploymentState::kOffered || state == DeploymentState::kDownloading;
  if (!forward && state != DeploymentState::kReverting) {
    out.reason = std::string("its deployment is ") + to_string(state);
    return out;
  }
  const bool going = r.state == RolloutState::kRunning || r.state == RolloutState::kWatching ||
                     (!forward && r.state == RolloutState::kRollingBack);
  const bool halted = a->strata[a->hot[i].stratum].halted;
  if (r.state == RolloutState::kPaused) {
    out.action = HoldAnswer::Action::kWait;
    out.reason = r.id + " is paused";
    return out;
  }
  if (forward && halted && a->strata[a->hot[i].stratum].policy == FailurePolicy::kPause && going) {
    // A halt that only pauses its group may be resumed: keep the image, install nothing.
    out.action = HoldAnswer::Action::kWait;
    out.reason = r.id + ": its group is halted (paused)";
    return out;
  }
  if (forward && (!going || halted)) {
    // Not installed yet: the stop takes effect on this device too.
    // The deployment's reason names no rollout, so that it counts as one reason of many
    // devices (RolloutOutcome::never_offered_why).
    const std::string why = halted ? std::string("its group was halted")
                                   : std::string("the rollout is ") + to_string(r.state);
    out.reason = r.id + ": " + why;
    Txn txn;
    DROVER_TRY(apply_event(*a, txn, i, DeploymentEvent::kWithdraw,
                           "withdrawn before the install: " + why));
    DROVER_TRY(commit(*a, txn));
    out.withdrawn = true;
    return out;
  }
  if (!a->hot[i].holding) {
    a->hot[i].holding = true;
    ++a->holding;
  }
  auto w = offer_windows(r, device, now);
  if (!w) {
    out.action = HoldAnswer::Action::kWait;
    out.reason = "no maintenance window within a week";
    return out;
  }
  out.action = HoldAnswer::Action::kApply;
  out.windows = std::move(*w);
  // Told it need not check in before its window opens (DeviceService): its silence counts
  // from then.
  if (!out.windows.empty() && out.windows.front().from > now) a->hear(i, out.windows.front().from);
  return out;
}

}  // namespace drover
