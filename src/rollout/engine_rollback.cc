// The engine's ways back: an operator's abort and rollback, the revert a halt sends, who may
// be sent back (a kept slot or an uploaded artifact) and who has left the fleet, and each
// deployment's history (docs/architecture.md, "Rollback"); and devices silent past their
// check-in contract (docs/gates.md, "Silent devices").
#include <algorithm>
#include <map>

#include "base/units.h"
#include "rollout/engine.h"
#include "rollout/engine_state.h"

namespace drover {

Status RolloutEngine::refuse_overlap(const Active& a, std::span<const std::string_view> device_ids,
                                     const char* what) {
  for (const auto& other : active_) {
    if (other.get() == &a || other->artifact.name != a.artifact.name) continue;
    if (is_terminal(other->rollout.state) || other->rollout.state == RolloutState::kCreated)
      continue;
    size_t shared = 0;
    std::string example;
    for (std::string_view id : device_ids) {
      by_device_.find(FlatIndex::hash(id), [&](uint64_t ref) {
        if ((ref >> 32) != other->index) return false;
        if (other->deps[ref & 0xffffffffu].device_id != id) return false;
        if (shared++ == 0) example = std::string(id);
        return true;
      });
    }
    if (shared > 0) {
      return Error{ErrorCode::kFailedPrecondition,
                   std::string("cannot ") + what + " " + a.rollout.id + ": " +
                       std::to_string(shared) + " of its devices (" + example +
                       (shared > 1 ? " and others" : "") + ") are in " + other->rollout.id +
                       ", which is " + to_string(other->rollout.state) + " and also updates " +
                       a.artifact.name + "; let it finish, or abort it, first"};
    }
  }
  return ok_status();
}

Status RolloutEngine::abort(const std::string& rollout_id) {
  MutexLock lock(mu_);
  Active* a = find(rollout_id);
  if (a == nullptr) return not_found("no active rollout '" + rollout_id + "'");
  if (a->starting) {
    return Error{ErrorCode::kFailedPrecondition,
                 rollout_id +
                     " is being started (its targets are being planned); abort it once "
                     "the start has answered"};
  }
  Txn txn;
  DROVER_TRY(transition(*a, txn, RolloutEvent::kAbort));
  for (uint32_t s = 0; s < a->strata.size(); ++s)
    revert_or_cancel(*a, txn, s, FailurePolicy::kAbort, "aborted by operator", {});
  DROVER_TRY(commit(*a, txn));
  emit(EngineEvent::Kind::kAborted, *a, "aborted by operator");
  return ok_status();
}

Status RolloutEngine::rollback(const std::string& rollout_id) {
  MutexLock lock(mu_);
  Active* a = find(rollout_id);
  if (a == nullptr) {
    // Over long enough ago to be unloaded (EngineOptions::keep_finished): its devices can
    // still be sent back, so it is loaded again.
    auto stored = store_.get_rollout(rollout_id);
    if (!stored.ok()) return stored.error();
    if (!stored->has_value()) return not_found("no rollout '" + rollout_id + "'");
    if (auto st = next_state((**stored).state, RolloutEvent::kRollback); !st.ok())
      return st.error();
    DROVER_TRY(load_rollout(std::move(**stored)));
    a = find(rollout_id);
  }
  auto next = next_state(a->rollout.state, RolloutEvent::kRollback);
  if (!next.ok()) return next.error();
  // A start of the component being planned (outside the lock) checked its devices against
  // this rollout while it was over: sending them back now would overlap it.
  for (const auto& other : active_) {
    if (other->starting && other->artifact.name == a->artifact.name) {
      return Error{ErrorCode::kFailedPrecondition, "cannot roll back " + rollout_id + ": " +
                                                       other->rollout.id + ", which also updates " +
                                                       a->artifact.name +
                                                       ", is being started; try again once it has"};
    }
  }
  const bool retry = a->rollout.state == RolloutState::kRollbackIncomplete ||
                     a->rollout.state == RolloutState::kRollingBack;
  // Sending the old version back while a later rollout of the component is updating the
  // same devices would have them offered two versions at once.
  std::vector<std::string_view> ids;
  for (const Deployment& d : a->deps) {
    if (runs_new_version(d.state)) ids.push_back(d.device_id);
  }
  DROVER_TRY(refuse_overlap(*a, ids, "roll back"));
  // A rollback that cannot send every updated device back must not answer success and
  // then leave them on the new version: say which, and what is missing.
  std::map<std::string, std::pair<size_t, std::string>> missing;  // version -> {count, a device}
  // A retry also takes the devices whose revert failed, unless they left the fleet.
  std::vector<uint32_t> again;
  for (uint32_t i = 0; retry && i < a->deps.size(); ++i) {
    const Deployment& d = a->deps[i];
    if (d.state != DeploymentState::kRevertFailed || left_.contains(d.device_id)) continue;
    // Only a device that still runs this rollout's version: one that a later rollout has
    // updated since is not sent back behind its back.
    auto device = store_.get_device(d.device_id);
    if (!device.ok()) return device.error();
    // Gone from the fleet (also while the rollout was not loaded): nobody to send back.
    const bool present = device->has_value() && !(*device)->decommissioned &&
                         (*device)->enrollment == Enrollment::kAccepted;
    const std::string* runs = present ? (*device)->installed_version(a->artifact.name) : nullptr;
    if (runs != nullptr && *runs == a->artifact.version) again.push_back(i);
  }
  // A device that left the fleet is nobody's to send back: it does not block the rest
  // (the rollback then ends rollback_incomplete, counting it).
  Status looked_up = ok_status();
  auto check = [&](const Deployment& d) REQUIRES(mu_) {
    if (left_.contains(d.device_id) || revert_possible(*a, d)) return;
    // Gone from the fleet while the rollout was not loaded (left_ did not hear of it)?
    auto device = store_.get_device(d.device_id);
    if (!device.ok()) {
      looked_up = device.error();
      return;
    }
    if (!device->has_value() || (*device)->decommissioned ||
        (*device)->enrollment != Enrollment::kAccepted) {
      left_.emplace(d.device_id);
      return;
    }
    auto& m = missing[d.from_version];
    if (m.first++ == 0) m.second = d.device_id;
  };
  for (const Deployment& d : a->deps) {
    if (d.state == DeploymentState::kSucceeded || d.state == DeploymentState::kUnhealthy ||
        d.state == DeploymentState::kLost)
      check(d);
  }
  for (uint32_t i : again) check(a->deps[i]);
  if (!looked_up.ok()) return looked_up;
  if (!missing.empty()) {
    std::string what;
    for (const auto& [version, m] : missing) {
      if (!what.empty()) what += "; ";
      what +=
          std::to_string(m.first) + " (" + m.second + (m.first > 1 ? " and others" : "") + ") " +
          (version.empty() ? "ran no " + a->artifact.name + " before: nothing to go back to"
                           : "ran " + a->artifact.name + "@" + version + ", which is not uploaded");
    }
    return Error{ErrorCode::kFailedPrecondition,
                 "cannot roll back " + a->rollout.id + ": updated devices cannot be sent back: " +
                     what + ". Upload the previous version, then roll back"};
  }
  Txn txn;
  for (uint32_t s = 0; s < a->strata.size(); ++s)
    revert_or_cancel(*a, txn, s, FailurePolicy::kRollback, "rolled back by operator",
                     "rollback by operator");
  for (uint32_t i : again)
    DROVER_TRY(apply_event(*a, txn, i, DeploymentEvent::kRevert, "rollback retried by operator"));
  DROVER_TRY(transition(*a, txn, RolloutEvent::kRollback));
  const size_t reverts = txn.batch.deployments.size();
  DROVER_TRY(commit(*a, txn));
  a->rollback_tenths = 0;  // a retry tells its progress anew
  emit(EngineEvent::Kind::kRollingBack, *a,
       "rollback by operator: " + std::to_string(reverts) + " deployments changed");
  return ok_status();
}

Result<std::optional<Artifact>> RolloutEngine::artifact(const std::string& name,
                                                        const std::string& version) {
  const std::string key = name + "@" + version;
  auto it = artifacts_.find(key);
  if (it != artifacts_.end()) return it->second;
  auto got = store_.get_artifact(name, version);
  if (!got.ok()) return got.error();
  // Only what exists is remembered: an artifact uploaded after a failed lookup is found.
  if (got->has_value()) artifacts_.emplace(key, *got);
  return *got;
}

Status RolloutEngine::remove_artifact(const std::string& name, const std::string& version) {
  MutexLock lock(mu_);
  const std::string key = name + "@" + version;
  auto rollouts = store_.list_rollouts();
  if (!rollouts.ok()) return rollouts.error();
  // Loaded rollouts too: one just created may not be committed (so not listed) yet.
  for (const auto& a : active_) rollouts->push_back(a->rollout);
  for (const Rollout& r : *rollouts) {
    if (r.plan.artifact_name != name) continue;
    if (r.plan.artifact_version == version) {
      return Error{ErrorCode::kFailedPrecondition,
                   "artifact " + key + " is installed by rollout " + r.id};
    }
    if (!is_terminal(r.state) || find(r.id) != nullptr) {
      return Error{ErrorCode::kFailedPrecondition,
                   "artifact " + key + " may still be sent back by a rollback of " + r.id};
    }
  }
  DROVER_TRY(store_.delete_artifact(name, version));
  artifacts_.erase(key);
  return ok_status();
}

void RolloutEngine::device_returned(std::string_view device_id) {
  MutexLock lock(mu_);
  if (!left_.empty()) left_.erase(std::string(device_id));
  if (left_while_planning_) left_while_planning_->erase(std::string(device_id));
}

std::vector<uint64_t> RolloutEngine::deployments_of(std::string_view device_id) const {
  std::vector<uint64_t> refs;
  const auto* active = active_.data();  // under mu_, which the callback cannot show
  by_device_.find(FlatIndex::hash(device_id), [&](uint64_t ref) {
    if (active[ref >> 32]->deps[ref & 0xffffffffu].device_id == device_id) refs.push_back(ref);
    return false;
  });
  return refs;
}

Status RolloutEngine::skip_departed(Active& a, uint32_t i, const std::string& reason) {
  const DeploymentState st = a.deps[i].state;
  const bool open = st == DeploymentState::kPending || is_in_flight(st) ||
                    st == DeploymentState::kRevertPending || st == DeploymentState::kSilent;
  if (!open) return ok_status();
  Txn txn;
  DROVER_TRY(apply_event(a, txn, i, DeploymentEvent::kSkip, reason));
  return commit(a, txn);
}

Status RolloutEngine::device_left(std::string_view device_id, const std::string& reason) {
  MutexLock lock(mu_);
  // A start planning from a snapshot that may still hold the device hears of it too.
  if (left_while_planning_) (*left_while_planning_)[std::string(device_id)] = reason;
  const std::vector<uint64_t> refs = deployments_of(device_id);
  // Remembered only while a loaded rollout holds it: planning leaves departed devices out,
  // so the set stays as small as the departures among current targets.
  if (!refs.empty()) left_.emplace(device_id);
  for (uint64_t ref : refs) {
    DROVER_TRY(
        skip_departed(*active_[ref >> 32], static_cast<uint32_t>(ref & 0xffffffffu), reason));
  }
  return ok_status();
}

Status RolloutEngine::judge_silence(Active& a, Timestamp now) {
  using S = DeploymentState;
  const RolloutState rs = a.rollout.state;
  const bool deciding =
      rs == RolloutState::kRunning || rs == RolloutState::kPaused || rs == RolloutState::kWatching;
  if (!deciding && rs != RolloutState::kRollingBack) return ok_status();
  const Duration watch = a.rollout.plan.watch;
  Txn txn;
  uint32_t silent = 0, lost = 0, reverts = 0;
  for (uint32_t i = 0; i < a.deps.size(); ++i) {
    const Active::Hot h = a.hot[i];
    const bool due = h.state == S::kPending && rs == RolloutState::kRunning &&
                     h.stage <= a.rollout.stage && !a.strata[h.stratum].halted;
    const bool watched = h.state == S::kSucceeded && deciding && watch.count() > 0;
    const bool waited_for = due || watched || (h.state != S::kPending && is_in_flight(h.state)) ||
                            h.state == S::kRevertPending;
    if (!waited_for) continue;
    const Duration contract = a.contract_of(h.contract);
    Timestamp heard = a.last_heard(i);
    if (contract.count() == 0 || now - heard <= contract) continue;
    const Deployment& d = a.deps[i];
    // A revert gets a whole contract from when it became due to reach its device.
    if (is_revert(h.state)) {
      heard = std::max(heard, d.updated_at);
      if (now - heard <= contract) continue;
    }
    // Silent since before its watch ended: the update may be what silenced it.
    if (watched && heard - d.updated_at >= watch) continue;
    std::string why = "silent for " + format_duration(now - heard) + " (last heard " +
                      format_utc_timestamp(heard) + "); its check-in contract allows " +
                      format_duration(contract);
    if (watched) {
      why = "went silent " + format_duration(std::max(heard - d.updated_at, Duration(0))) +
            " after its commit, within its " + format_duration(watch) +
            " watch: counted as a failure; " + why;
      ++lost;
    } else if (is_revert(h.state)) {
      why = "the revert cannot reach it: " + why;
      ++reverts;
    } else {
      why += "; out of the counts until it is heard again";
      ++silent;
    }
    DROVER_TRY(apply_event(a, txn, i, DeploymentEvent::kSilence, why));
  }
  if (txn.batch.deployments.empty()) return ok_status();
  std::string text;
  auto add = [&](uint32_t n, const char* what) {
    if (n == 0) return;
    if (!text.empty()) text += "; ";
    text += std::to_string(n) + what;
  };
  add(silent,
      " device(s) silent past their check-in contract: out of the gates and settling "
      "until heard again");
  add(lost, " device(s) went silent within their watch after committing: counted as failures");
  add(reverts, " revert(s) cannot reach silent devices: counted as failed reverts");
  txn.events.push_back({EngineEvent::Kind::kDevicesSilent, now, a.rollout.id, text});
  return commit(a, txn);
}

bool RolloutEngine::revert_possible(Active& a, const Deployment& d) {
  if (d.from_version.empty()) return false;
  if (d.switch_back) return true;
  auto prev = artifact(a.artifact.name, d.from_version);
  return prev.ok() && prev->has_value();
}

RolloutEngine::RevertGaps RolloutEngine::revert_or_cancel(Active& a, Txn& txn, uint32_t stratum,
                                                          FailurePolicy policy,
                                                          std::string_view cause,
                                                          std::string_view why) {
  if (policy == FailurePolicy::kPause) return {};
  RevertGaps gaps;
  for (uint32_t i : a.strata[stratum].deps) {
    const Deployment& d = txn.current(a, i);
    // A silent device that was offered the update may have installed it: it is not "never
    // offered", and stays silent (counted so) until it is heard again.
    if (d.state == DeploymentState::kSilent && !is_zero(d.offered_at)) continue;
    if (policy == FailurePolicy::kRollback &&
        (d.state == DeploymentState::kSucceeded || d.state == DeploymentState::kUnhealthy ||
         d.state == DeploymentState::kLost)) {
      if (left_.contains(d.device_id)) {  // gone: it will not take a revert
        ++gaps.departed;
        continue;
      }
      if (!revert_possible(a, d)) {
        ++gaps.no_image;
        continue;
      }
      DROVER_CHECK(apply_event(a, txn, i, DeploymentEvent::kRevert, why).ok());
      continue;
    }
    // The table says what a cancel does: what was never offered is cancelled; what is with
    // its device or over stays as it is.
    DROVER_CHECK(apply_event(a, txn, i, DeploymentEvent::kCancel, cause).ok());
  }
  return gaps;
}

std::string step_message(std::string_view m) {
  if (m.size() > kMaxStepMessage) {
    size_t cut = kMaxStepMessage;
    while (cut > 0 && (static_cast<unsigned char>(m[cut]) & 0xC0) == 0x80) --cut;
    m = m.substr(0, cut);
  }
  std::string out(m);
  for (char& c : out) {
    const auto u = static_cast<unsigned char>(c);
    if ((u < 0x20 && c != '\n' && c != '\t') || u == 0x7F) c = '?';
  }
  return out;
}

void RolloutEngine::record_step(Txn& txn, const Deployment& d, DeploymentEvent event,
                                std::string_view message) {
  if (!options_.history) return;
  txn.batch.steps.push_back(
      {d.rollout_id, d.device_id, clock_.now(), to_string(event), d.state, step_message(message)});
}

}  // namespace drover
