#include "rollout/engine.h"

#include <algorithm>
#include <map>
#include <utility>

#include "base/units.h"
#include "model/version.h"
#include "rollout/engine_state.h"
#include "rollout/gates.h"

namespace drover {

// ---------------------------------------------------------------- small helpers

const char* to_string(EngineEvent::Kind k) {
  using K = EngineEvent::Kind;
  switch (k) {
    case K::kStarted:
      return "started";
    case K::kStageStarted:
      return "stage_started";
    case K::kStageSettled:
      return "stage_settled";
    case K::kStratumHalted:
      return "stratum_halted";
    case K::kPaused:
      return "paused";
    case K::kResumed:
      return "resumed";
    case K::kCompleted:
      return "completed";
    case K::kFailed:
      return "failed";
    case K::kAborted:
      return "aborted";
    case K::kRollingBack:
      return "rolling_back";
    case K::kRolledBack:
      return "rolled_back";
    case K::kWatching:
      return "watching";
    case K::kCompletedPartial:
      return "completed_partial";
    case K::kRollbackIncomplete:
      return "rollback_incomplete";
    case K::kRollbackProgress:
      return "rollback_progress";
    case K::kDevicesSilent:
      return "devices_silent";
    case K::kTickFailed:
      return "tick_failed";
  }
  return "unknown";
}

uint32_t StateCounts::total() const {
  uint32_t t = 0;
  for (uint32_t v : n) t += v;
  return t;
}

uint32_t StateCounts::finished() const {
  uint32_t t = 0;
  for (size_t i = 0; i < n.size(); ++i) {
    if (is_finished(static_cast<DeploymentState>(i))) t += n[i];
  }
  return t;
}

uint32_t StateCounts::in_flight() const {
  uint32_t t = 0;
  for (size_t i = 0; i < n.size(); ++i) {
    if (is_in_flight(static_cast<DeploymentState>(i))) t += n[i];
  }
  return t;
}

void StateCounts::add(const StateCounts& o) {
  for (size_t i = 0; i < n.size(); ++i) n[i] += o.n[i];
}

// ---------------------------------------------------------------- lifecycle

RolloutEngine::RolloutEngine(Store& store, Clock& clock, EngineOptions options)
    : store_(store), clock_(clock), options_(std::move(options)) {}

RolloutEngine::~RolloutEngine() {
  if (ticking_) clock_.cancel(timer_);
}

void RolloutEngine::schedule_tick() {
  ticking_ = true;
  timer_ = clock_.schedule_after(options_.tick_interval, [this] {
    if (Status st = tick(); !st.ok()) {
      MutexLock lock(mu_);
      if (listener_) {
        listener_(EngineEvent{EngineEvent::Kind::kTickFailed, clock_.now(), "",
                              "tick failed, retried at the next: " + st.error().to_string()});
      }
    }
    schedule_tick();
  });
}

void RolloutEngine::set_listener(std::function<void(const EngineEvent&)> listener) {
  MutexLock lock(mu_);
  listener_ = std::move(listener);
}

void RolloutEngine::emit(EngineEvent::Kind kind, const Active& a, std::string text) {
  if (listener_) listener_(EngineEvent{kind, clock_.now(), a.rollout.id, std::move(text)});
}

Status RolloutEngine::load() {
  MutexLock one_start(start_mu_);  // not in the middle of a start's planning
  MutexLock lock(mu_);
  active_.clear();
  by_device_.clear();
  next_epoch();
  artifacts_.clear();
  auto sites = store_.list_sites();
  if (!sites.ok()) return sites.error();
  for (const Site& s : *sites) windows_.put(s);
  auto rollouts = store_.list_rollouts();
  if (!rollouts.ok()) return rollouts.error();
  const Timestamp now = clock_.now();
  for (Rollout& r : *rollouts) {
    if (is_terminal(r.state) && now - r.finished_at > options_.keep_finished) continue;
    DROVER_TRY(load_rollout(std::move(r)));
  }
  if (!ticking_) schedule_tick();
  return ok_status();
}

Status RolloutEngine::load_rollout(Rollout r) {
  auto built = build(std::move(r));
  if (!built.ok()) return built.error();
  install(std::move(*built), static_cast<uint32_t>(active_.size()));
  return ok_status();
}

void RolloutEngine::next_epoch() {
  if (++epoch_ == 0) epoch_ = 1;  // 0 marks a cursor never filled
}

void RolloutEngine::install(std::unique_ptr<Active> a, uint32_t index) {
  next_epoch();
  a->index = index;
  by_device_.reserve(by_device_.size() + a->deps.size());
  for (uint32_t i = 0; i < a->deps.size(); ++i) {
    by_device_.insert(FlatIndex::hash(a->deps[i].device_id), (uint64_t{index} << 32) | i);
  }
  if (index == active_.size()) {
    active_.push_back(std::move(a));
  } else {
    active_[index] = std::move(a);
  }
}

Result<std::unique_ptr<RolloutEngine::Active>> RolloutEngine::build(Rollout r) {
  auto art = store_.get_artifact(r.plan.artifact_name, r.plan.artifact_version);
  if (!art.ok()) return art.error();
  if (!art->has_value()) {
    return Error{ErrorCode::kCorruption, "rollout " + r.id + ": artifact " + r.plan.artifact_name +
                                             "@" + r.plan.artifact_version + " is gone"};
  }
  auto deps = store_.list_deployments(r.id);
  if (!deps.ok()) return deps.error();
  return assemble_rollout(std::move(r), std::move(**art), std::move(*deps), clock_.now());
}

RolloutEngine::Active* RolloutEngine::find(std::string_view rollout_id) {
  for (auto& a : active_) {
    if (a->rollout.id == rollout_id) return a.get();
  }
  return nullptr;
}

Status RolloutEngine::commit(Active& a, Txn& txn) {
  if (!txn.batch.empty()) {
    if (!txn.batch.rollouts.empty()) DROVER_TRY(audit(a.rollout, txn.batch.rollouts.front()));
    DROVER_TRY(store_.apply(txn.batch));
    for (size_t k = 0; k < txn.dep_index.size(); ++k) {
      const uint32_t i = txn.dep_index[k];
      a.count(a.deps[i], -1);
      a.deps[i] = std::move(txn.batch.deployments[k]);
      a.hot[i].stage = static_cast<uint8_t>(a.deps[i].stage);
      a.hot[i].state = a.deps[i].state;
      if (a.hot[i].holding) {
        a.hot[i].holding = false;
        --a.holding;
      }
      a.count(a.deps[i], +1);
    }
    if (!txn.batch.rollouts.empty()) {
      const Timestamp gates_from = a.rollout.gates_from;
      a.rollout = std::move(txn.batch.rollouts.front());
      a.refresh_halts();
      if (a.rollout.gates_from != gates_from) a.recount_gates();
    }
  }
  for (auto& e : txn.events) {
    if (listener_) listener_(e);
  }
  txn = Txn{};
  return ok_status();
}

// ---------------------------------------------------------------- operator commands

Result<Rollout> RolloutEngine::create(RolloutPlan plan, std::string created_by) {
  DROVER_TRY(validate(plan));
  // The id first, outside the lock: taking it is a write of its own (a refused plan leaves
  // a gap in the numbers, never a repeat).
  auto seq = store_.next_sequence("rollout");
  if (!seq.ok()) return seq.error();
  MutexLock lock(mu_);
  auto art = artifact(plan.artifact_name, plan.artifact_version);
  if (!art.ok()) return art.error();
  if (!art->has_value()) {
    return Error{ErrorCode::kFailedPrecondition, "artifact " + plan.artifact_name + "@" +
                                                     plan.artifact_version + " is not uploaded"};
  }
  if (!plan.gate.health.empty() && options_.health == nullptr) {
    return Error{ErrorCode::kFailedPrecondition,
                 "the plan has health gates, and this server has no health data to judge them "
                 "by"};
  }
  if (options_.offerable && !options_.offerable(**art)) {
    return Error{ErrorCode::kFailedPrecondition,
                 "artifact " + (*art)->key() +
                     " is not in the signed update metadata (its target is not signed), so no "
                     "device would take it"};
  }
  char id[32];
  std::snprintf(id, sizeof id, "rollout-%04llu", static_cast<unsigned long long>(*seq));
  Rollout r;
  r.id = id;
  r.plan = std::move(plan);
  r.state = RolloutState::kCreated;
  r.created_at = clock_.now();
  r.created_by = std::move(created_by);
  WriteBatch batch;
  batch.rollouts.push_back(r);
  DROVER_TRY(audit(Rollout{}, r));
  DROVER_TRY(store_.apply(batch));
  // From what is already in hand, not read back: once the write has succeeded, a failed
  // read must not leave the store ahead of memory.
  auto built = assemble_rollout(r, std::move(**art), {}, clock_.now());
  if (!built.ok()) return built.error();
  install(std::move(*built), static_cast<uint32_t>(active_.size()));
  return r;
}

Status RolloutEngine::start(const std::string& rollout_id) {
  // Planning a large fleet takes a while: it works outside the engine lock, on the fleet as
  // stored now, so check-ins go on meanwhile. Starts plan one at a time (the overlap check
  // below must see every other start's devices), and the rollout is marked so that nothing
  // else changes it until this start is done.
  MutexLock one_start(start_mu_);
  Rollout r;
  Artifact art;
  {
    MutexLock lock(mu_);
    Active* a = find(rollout_id);
    if (a == nullptr) return not_found("no active rollout '" + rollout_id + "'");
    auto next = next_state(a->rollout.state, RolloutEvent::kStart);
    if (!next.ok()) return next.error();
    r = a->rollout;
    r.state = *next;
    art = a->artifact;
    a->starting = true;
    left_while_planning_.emplace();  // from before the fleet is read
  }
  // However this start ends (an error, an exception), the rollout is no longer starting.
  struct Starting {
    RolloutEngine& engine;
    const std::string& id;
    ~Starting() {
      MutexLock lock(engine.mu_);
      if (Active* a = engine.find(id)) a->starting = false;
      engine.left_while_planning_.reset();
    }
  } starting{*this, rollout_id};

  // Departures from here on are recorded (above); one made just before has its write queued
  // already, and the snapshot waits for it.
  DROVER_TRY(store_.settle_all());
  auto devices = store_.list_devices();
  if (!devices.ok()) return devices.error();
  TargetSet targets = plan_targets(r.plan, art, *devices, rollout_id);
  devices = std::vector<Device>{};  // a million devices is a lot to hold on to

  // One rollout per component per device at a time: a device would otherwise be offered two
  // versions of one component and end on whichever came last.
  std::vector<std::string_view> ids;
  ids.reserve(targets.deployments.size());
  for (const Deployment& d : targets.deployments) ids.push_back(d.device_id);
  {
    MutexLock lock(mu_);
    const Active* a = find(rollout_id);
    if (a == nullptr) return not_found("no active rollout '" + rollout_id + "'");
    DROVER_TRY(refuse_overlap(*a, ids, "start"));
  }
  ids = {};

  const Timestamp now = clock_.now();
  r.started_at = now;
  r.stage = 0;
  r.targets = static_cast<uint32_t>(targets.deployments.size());
  r.stages = {StageProgress{r.plan.stages[0].name, now, {}, {}, targets.stage_sizes[0]}};
  WriteBatch batch;
  batch.rollouts.push_back(r);
  for (Deployment& d : targets.deployments) d.updated_at = now;
  batch.deployments = std::move(targets.deployments);
  // Written before anything is offered: nothing writes this rollout meanwhile (it is
  // starting), and its first offer comes after install() below.
  {
    MutexLock lock(mu_);
    const Active* a = find(rollout_id);
    if (a == nullptr) return not_found("no active rollout '" + rollout_id + "'");
    DROVER_TRY(audit(a->rollout, r));
  }
  DROVER_TRY(store_.apply(batch));

  // Built from what was just written, not read back: no read can fail between the write and
  // memory.
  auto built = assemble_rollout(std::move(batch.rollouts.front()), art,
                                std::move(batch.deployments), clock_.now());
  if (!built.ok()) return built.error();

  MutexLock lock(mu_);
  const Active* created = find(rollout_id);
  if (created == nullptr) return not_found("no active rollout '" + rollout_id + "'");
  // The created rollout had no deployments, so nothing of it is in by_device_.
  const uint32_t index = created->index;
  install(std::move(*built), index);
  Active& started = *active_[index];
  // What left the fleet after the snapshot was read is out of this rollout too, as
  // device_left() would have taken it out had the rollout been installed then. The rollout
  // runs from here on whatever happens: a failed write is reported after it is announced.
  Status skipped = ok_status();
  for (const auto& [id, reason] : *left_while_planning_) {
    for (uint64_t ref : deployments_of(id)) {
      if (ref >> 32 != index) continue;
      left_.insert(id);
      Status st = skip_departed(started, static_cast<uint32_t>(ref & 0xffffffffu), reason);
      if (skipped.ok() && !st.ok()) skipped = std::move(st);
    }
  }
  for (size_t k = 0; k < targets.stage_notes.size() && k < started.insights.size(); ++k)
    started.insights[k].sizing = targets.stage_notes[k];

  std::string text = std::to_string(r.targets) + " devices targeted in " +
                     std::to_string(started.strata.size()) + " strata";
  if (!targets.excluded.empty())
    text += ", " + std::to_string(targets.excluded.size()) + " incompatible";
  if (targets.already_current > 0)
    text += ", " + std::to_string(targets.already_current) + " already current";
  if (r.plan.allow_downgrade) {
    text += "; a downgrade to " + started.artifact.version + ", created by " +
            (r.created_by.empty() ? std::string("a local command") : r.created_by);
  }
  // Said before anything is offered: which devices a fleet revert could not send back.
  // (Called by revert_gaps within this function, which holds mu_: the analysis cannot
  // follow a callback through it.)
  const auto gaps =
      revert_gaps(targets.previous, [&](const std::string& version) NO_THREAD_SAFETY_ANALYSIS {
        auto got = artifact(started.artifact.name, version);
        return got.ok() && got->has_value();
      });
  for (const RevertGap& g : gaps) {
    text += "; a rollback could not send back " + std::to_string(g.devices) + " (" +
            g.examples.front() + (g.devices > 1 ? " and others" : "") + "): they " + g.reason();
  }
  emit(EngineEvent::Kind::kStarted, started, text);
  emit(EngineEvent::Kind::kStageStarted, started,
       "stage " + r.plan.stages[0].name + ": " + std::to_string(r.stages[0].devices) + " devices");
  return skipped;
}

Status RolloutEngine::audit(const Rollout& before, const Rollout& after) const {
  if (!options_.audit) return ok_status();
  if (!before.id.empty() && before.state == after.state && before.halted == after.halted) {
    return ok_status();
  }
  return options_.audit(before, after);
}

Status RolloutEngine::transition(Active& a, Txn& txn, RolloutEvent event,
                                 const std::function<void(Rollout&)>& also) {
  auto next = next_state(txn.current_rollout(a).state, event);
  if (!next.ok()) return next.error();
  Rollout& r = txn.rollout(a);
  r.state = *next;
  if (is_terminal(*next)) {
    r.finished_at = clock_.now();
    if (!r.stages.empty() && is_zero(r.stages.back().finished_at))
      r.stages.back().finished_at = clock_.now();
  }
  if (also) also(r);
  return ok_status();
}

Status RolloutEngine::transition(Active& a, RolloutEvent event,
                                 const std::function<void(Rollout&)>& also) {
  Txn txn;
  DROVER_TRY(transition(a, txn, event, also));
  return commit(a, txn);
}

Status RolloutEngine::pause(const std::string& rollout_id) {
  MutexLock lock(mu_);
  Active* a = find(rollout_id);
  if (a == nullptr) return not_found("no active rollout '" + rollout_id + "'");
  DROVER_TRY(transition(*a, RolloutEvent::kPause));
  emit(EngineEvent::Kind::kPaused, *a, "paused by operator");
  return ok_status();
}

Status RolloutEngine::resume(const std::string& rollout_id) {
  MutexLock lock(mu_);
  Active* a = find(rollout_id);
  if (a == nullptr) return not_found("no active rollout '" + rollout_id + "'");
  DROVER_TRY(transition(*a, RolloutEvent::kResume, [&](Rollout& r) {
    std::erase_if(r.halted,
                  [](const HaltedStratum& h) { return h.policy == FailurePolicy::kPause; });
    r.gates_from = clock_.now();
  }));
  emit(EngineEvent::Kind::kResumed, *a, "resumed by operator");
  return ok_status();
}

// ---------------------------------------------------------------- device side

void RolloutEngine::site_changed(const Site& site) {
  MutexLock lock(mu_);
  if (windows_.has(site.name)) windows_.put(site);
}

Status RolloutEngine::ensure_site(std::string_view site) {
  if (site.empty() || windows_.has(site)) return ok_status();
  auto s = store_.get_site(site);
  if (!s.ok()) return s.error();
  if (s->has_value()) windows_.put(**s);
  return ok_status();
}

Status RolloutEngine::apply_event(Active& a, Txn& txn, uint32_t i, DeploymentEvent event,
                                  std::string_view message) {
  const Deployment& cur = txn.current(a, i);
  auto next = next_state(cur.state, event);
  if (!next.ok()) return next.error();
  if (*next == cur.state) return ok_status();
  Deployment& d = txn.dep(a, i);
  d.state = *next;
  d.updated_at = clock_.now();
  if (is_failure(d.state) || d.state == DeploymentState::kSkipped ||
      event == DeploymentEvent::kWithdraw || event == DeploymentEvent::kCancel)
    d.error = message.empty() ? std::string(to_string(event)) : step_message(message);
  // A device that completes the update in a stratum being rolled back goes straight back.
  if (d.state == DeploymentState::kSucceeded || d.state == DeploymentState::kUnhealthy) {
    const auto& s = a.strata[a.hot[i].stratum];
    const bool rolling_back = a.rollout.state == RolloutState::kRollingBack ||
                              (s.halted && s.policy == FailurePolicy::kRollback);
    if (rolling_back && !left_.contains(d.device_id) && revert_possible(a, d))
      d.state = next_state(d.state, DeploymentEvent::kRevert).value();
  }
  record_step(txn, d, event, message);
  return ok_status();
}

Result<DeploymentState> RolloutEngine::report(const Device& device, std::string_view rollout_id,
                                              std::string_view version, protocol::Report status,
                                              std::string_view message, std::string_view standby) {
  const DeploymentEvent event = event_of(status);
  if (event == DeploymentEvent::kCount) return invalid_argument("not a status report");
  MutexLock lock(mu_);
  Active* a = find(rollout_id);
  if (a == nullptr) return not_found("no active rollout '" + std::string(rollout_id) + "'");
  uint32_t i = UINT32_MAX;
  by_device_.find(FlatIndex::hash(device.id), [&](uint64_t ref) {
    if ((ref >> 32) != a->index || a->deps[ref & 0xffffffffu].device_id != device.id) return false;
    i = static_cast<uint32_t>(ref & 0xffffffffu);
    return true;
  });
  if (i == UINT32_MAX)
    return not_found("device '" + device.id + "' is not in rollout " + a->rollout.id);
  a->hear(i, clock_.now());
  const Deployment& d = a->deps[i];
  const bool reverting = is_revert(d.state);
  const std::string& expected = reverting ? d.from_version : a->artifact.version;
  if (version != expected) {
    // A device on its way back that reports the new version unhealthy: a failure of the
    // new version all the same (it counts in the gates and the outcome). Any other late
    // report about the other direction of this deployment changes nothing.
    if (reverting && version == a->artifact.version && event == DeploymentEvent::kUnhealthy &&
        d.error.empty() && d.state != DeploymentState::kRevertFailed) {
      Txn txn;
      Deployment& staged = txn.dep(*a, i);
      staged.error = message.empty() ? "unhealthy" : step_message(message);
      record_step(txn, staged, event, message);
      DROVER_TRY(commit(*a, txn));
      return a->deps[i].state;
    }
    if (reverting && version == a->artifact.version) return d.state;
    return invalid_argument("report is about version " + std::string(version) + ", deployment " +
                            a->rollout.id + " is about " + expected);
  }
  // A withdrawn deployment (cancelled after its offer) still hears the device: it may have
  // installed without hearing the drop.
  if (d.state == DeploymentState::kPending || d.state == DeploymentState::kSkipped ||
      ((d.state == DeploymentState::kCancelled || d.state == DeploymentState::kSilent) &&
       d.offers == 0)) {
    return conflict("device '" + device.id + "' was never offered " + a->rollout.id);
  }
  const Active::Stratum& stratum = a->strata[a->hot[i].stratum];
  const GateCounts before = stratum.gate;
  Txn txn;
  if (!reverting && event == DeploymentEvent::kSucceeded && !standby.empty()) {
    // The device keeps what it ran before in its other slot: a revert can switch back. A
    // success that names nothing (a repeat, say) changes nothing.
    const bool keeps = standby == d.from_version;
    if (keeps != d.switch_back) txn.dep(*a, i).switch_back = keeps;
  } else if (reverting && d.switch_back &&
             (event == DeploymentEvent::kInstallFailed || event == DeploymentEvent::kRolledBack)) {
    // The switch back failed: a retry downloads the previous version instead, if uploaded.
    txn.dep(*a, i).switch_back = false;
  }
  DROVER_TRY(apply_event(*a, txn, i, event, message));
  if (event == DeploymentEvent::kWithdraw && !txn.batch.deployments.empty()) {
    // The device dropped the image uninstalled (no window fits its install, say): never
    // offered; its whole message is in the history. (A revert it gives up on has failed.)
    // A fixed vocabulary: device-written text would make one reason per device.
    constexpr std::string_view kNoWindow = "no maintenance window fits the install";
    if (txn.current(*a, i).state == DeploymentState::kCancelled) {
      txn.dep(*a, i).error = message.starts_with(kNoWindow)
                                 ? "withdrawn by the device: " + std::string(kNoWindow)
                                 : std::string("withdrawn by the device");
    }
  }
  DROVER_TRY(commit(*a, txn));

  // A new outcome: judge the gates it feeds, the root first, while the rollout is still
  // deciding (a late report to a finished rollout changes its counts, not its course). Only
  // a failure raises the evidence, but a success can bring a group to min_sample. A halt
  // that fails to persist is retried at the next tick; the report is already recorded.
  const RolloutState rs = a->rollout.state;
  if (stratum.gate.finished + stratum.gate.failures > before.finished + before.failures &&
      (rs == RolloutState::kRunning || rs == RolloutState::kPaused ||
       rs == RolloutState::kWatching)) {
    for (uint32_t n : stratum.path) {
      if (a->nodes[n].halted) break;
      auto judged = judge_node(*a, n);
      if (!judged.ok() || *judged != GateOutcome::kPassed) break;
    }
  }
  return a->deps[i].state;
}

}  // namespace drover
