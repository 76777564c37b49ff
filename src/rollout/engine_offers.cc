// The engine's answers to check-ins: offers (stage, windows, limits, canary pacing), the
// windows an offer carries, and what a device holding an image for its window is told.
#include <algorithm>

#include "model/version.h"
#include "rollout/engine.h"
#include "rollout/engine_state.h"

namespace drover {

std::string StageInsight::bound_by() const {
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
  return out;
}

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
    const Deployment& d = a.deps[i];  // read only on the way to an offer or a repair
    const Rollout& r = a.rollout;
    // Looked up only where needed: most check-ins are of devices whose turn has not come.
    auto installed_version = [&]() { return device.record.installed_version(a.artifact.name); };
    auto window_open = [&]() REQUIRES(mu_) { return window_allows_offer(r, device.site, now); };
    // The windows the offer carries; nullopt (no offer now) when none opens soon enough.
    auto windows = [&]() REQUIRES(mu_) -> std::optional<std::vector<TimeRange>> {
      auto w = offer_windows(r, device, now);
      if (!w || w->empty()) return w;
      const DeliveryConstraints& c = r.plan.constraints;
      const Timestamp first = w->front().from;
      if (c.download_in_window ? first > now : first - now > c.download_ahead) return std::nullopt;
      return w;
    };
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
    // Back to the version the device ran: by switching slots when it kept that image, else
    // by downloading the uploaded artifact.
    auto revert_offer = [&](const Deployment& dep) REQUIRES(mu_) -> std::optional<UpdateOffer> {
      auto prev = artifact(a.artifact.name, dep.from_version);
      const bool uploaded = prev.ok() && prev->has_value();
      if (!uploaded && !dep.switch_back) return std::nullopt;
      auto w = windows();
      if (!w) return std::nullopt;
      UpdateOffer o;
      o.rollout_id = r.id;
      o.component = a.artifact.name;
      o.version = dep.from_version;
      if (uploaded) {
        o.size_bytes = (**prev).size_bytes;
        o.sha256 = (**prev).sha256;
      }
      o.revert = true;
      o.switch_back = dep.switch_back;
      o.windows = std::move(*w);
      return o;
    };
    // Most check-ins change nothing: the transaction is set up only when one does.
    std::optional<Txn> staging;
    auto txn = [&]() -> Txn& { return staging ? *staging : staging.emplace(); };
    // A silent device checking in idle is offered the update again: as if pending when it
    // never had it, as if offered (a re-send) when it had.
    DeploymentState state = hot.state;
    if (state == DeploymentState::kSilent)
      state = is_zero(d.offered_at) ? DeploymentState::kPending : DeploymentState::kOffered;
    // A device heard again after going silent may take the update while the rollout still
    // watches, too: the rollout then waits for it.
    const bool going =
        r.state == RolloutState::kRunning ||
        (hot.state == DeploymentState::kSilent && r.state == RolloutState::kWatching);
    switch (state) {
      case DeploymentState::kPending: {
        if (!going || hot.stage > r.stage) continue;
        if (a.strata[a.hot[i].stratum].halted) continue;
        StageInsight& held = a.insights[r.stage];
        if (!window_open()) {
          ++held.window;
          continue;
        }
        if (auto st = check_compatible(a.artifact, device.record); !st.ok()) {
          DROVER_TRY(apply_event(a, txn(), i, DeploymentEvent::kSkip, st.error().message));
          DROVER_TRY(commit(a, txn()));
          continue;
        }
        const std::string* installed = installed_version();
        if (installed != nullptr) {
          auto v = Version::parse(*installed);
          if (v.ok() && (r.plan.allow_downgrade ? *v == a.target : !(*v < a.target))) {
            DROVER_TRY(
                apply_event(a, txn(), i, DeploymentEvent::kSkip, "already runs " + *installed));
            DROVER_TRY(commit(a, txn()));
            continue;
          }
        }
        const uint32_t limit = r.plan.constraints.max_in_flight;
        if (limit > 0 && a.in_flight - a.holding >= limit) {
          ++held.in_flight;
          continue;
        }
        // A canary (the first of several stages) starts slow: each group of the first
        // dimension (each hardware revision, by default) has at most min_sample devices in
        // flight, or as many as have finished, whichever is more. Exposure doubles with
        // each round of outcomes, so the gate can stop a bad build before the whole canary
        // has installed it, and a large canary still reaches full speed in a few rounds
        // (docs/gates.md, "Pacing").
        // Devices that have not reported for kStalled free their place, so that a few dead
        // ones cannot hold a revision's canary back.
        if (hot.stage == 0 && r.stage == 0 && r.plan.stages.size() > 1) {
          const Active::Node& pace = a.nodes[a.strata[hot.stratum].pace];
          if (pace.first_stage_in_flight - std::min(pace.first_stage_in_flight, pace.stalled) >=
              std::max(r.plan.gate.min_sample, pace.first_stage_finished)) {
            ++held.pacing;
            continue;
          }
        }
        auto w = windows();
        // A paced canary's places go to devices that can install now (quiet hours too).
        const bool paced = hot.stage == 0 && r.stage == 0 && r.plan.stages.size() > 1;
        if (!w || (paced && !w->empty() && w->front().from > now)) {
          ++held.window;
          continue;
        }
        if (!a.limiter.try_take(now)) {
          ++held.rate;
          continue;
        }
        ++held.offers;
        offers_made_.fetch_add(1, std::memory_order_relaxed);
        Deployment& staged = txn().dep(a, i);
        staged.from_version = installed != nullptr ? *installed : "";
        staged.offers += 1;
        staged.offered_at = now;
        DROVER_TRY(apply_event(a, txn(), i, DeploymentEvent::kOffer, {}));
        DROVER_TRY(commit(a, txn()));
        return std::optional<UpdateOffer>(forward_offer(std::move(*w)));
      }
      case DeploymentState::kOffered:
      case DeploymentState::kDownloading:
      case DeploymentState::kInstalling:
      case DeploymentState::kRebooting: {
        // The device is idle, so it either finished without its report reaching us, or it
        // lost the offer (a restart, a wiped data directory).
        const std::string* installed = installed_version();
        if (installed != nullptr && *installed == a.artifact.version) {
          DROVER_TRY(apply_event(a, txn(), i, DeploymentEvent::kSucceeded, {}));
          DROVER_TRY(commit(a, txn()));
          continue;
        }
        if (!going || a.strata[a.hot[i].stratum].halted) continue;
        if (installed != nullptr) {
          auto v = Version::parse(*installed);
          // Runs something newer: never downgrade, unless that is the point.
          if (v.ok() && !r.plan.allow_downgrade && !(*v < a.target)) continue;
        }
        if (!window_open()) continue;
        auto w = windows();
        if (!w) continue;
        if (hot.state == DeploymentState::kSilent) {
          txn().dep(a, i).offers += 1;
          DROVER_TRY(apply_event(a, txn(), i, DeploymentEvent::kOffer,
                                 "heard again after going silent: offered again"));
          DROVER_TRY(commit(a, txn()));
        }
        return std::optional<UpdateOffer>(forward_offer(std::move(*w)));
      }
      case DeploymentState::kRevertPending: {
        const std::string* installed = installed_version();
        if (installed != nullptr && *installed == d.from_version) {
          // Back already (by hand, say): nothing to send.
          DROVER_TRY(apply_event(a, txn(), i, DeploymentEvent::kOffer, "already back"));
          DROVER_TRY(apply_event(a, txn(), i, DeploymentEvent::kSucceeded,
                                 "runs " + d.from_version + " again"));
          DROVER_TRY(commit(a, txn()));
          continue;
        }
        // Updated since by a later rollout: sending it back would undo that one too.
        if (installed == nullptr || *installed != a.artifact.version) {
          DROVER_TRY(apply_event(a, txn(), i, DeploymentEvent::kSkip,
                                 "not sent back: it runs " +
                                     (installed != nullptr ? *installed : std::string("nothing")) +
                                     " now, not " + a.artifact.version));
          DROVER_TRY(commit(a, txn()));
          continue;
        }
        if (r.state == RolloutState::kPaused || !window_open()) continue;
        auto offer = revert_offer(d);
        if (!offer) continue;
        txn().dep(a, i).offers += 1;
        DROVER_TRY(apply_event(a, txn(), i, DeploymentEvent::kOffer,
                               offer->switch_back ? "switch back to " + offer->version +
                                                        " in the other slot (no download)"
                                                  : "send back " + offer->version));
        DROVER_TRY(commit(a, txn()));
        return offer;
      }
      case DeploymentState::kReverting: {
        const std::string* installed = installed_version();
        if (installed != nullptr && *installed == d.from_version) {
          DROVER_TRY(apply_event(a, txn(), i, DeploymentEvent::kSucceeded, {}));
          DROVER_TRY(commit(a, txn()));
          continue;
        }
        if (r.state == RolloutState::kPaused || !window_open()) continue;
        if (auto offer = revert_offer(d)) return offer;
        continue;
      }
      default:
        continue;
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
