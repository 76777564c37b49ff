#include "rollout/engine.h"

#include <algorithm>
#include <cmath>
#include <iterator>
#include <map>

#include "base/units.h"
#include "model/version.h"
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

namespace {

// What a deployment contributes to its gate: {successes, failures}. `error` is set exactly
// when the forward install failed, so a reverted device still counts as what it was.
std::pair<int, int> gate_weight(const Deployment& d) {
  if (is_failure(d.state)) return {0, 1};
  if (d.state == DeploymentState::kSucceeded) return {1, 0};
  if (is_revert(d.state)) return d.error.empty() ? std::pair{1, 0} : std::pair{0, 1};
  return {0, 0};
}

std::vector<std::string> split_key(const std::string& key) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    const size_t bar = key.find('|', start);
    parts.push_back(key.substr(start, bar == std::string::npos ? std::string::npos : bar - start));
    if (bar == std::string::npos) break;
    start = bar + 1;
  }
  return parts;
}

std::string percent(double f) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f%%", f * 100);
  return buf;
}

bool is_zero(Timestamp t) { return t == Timestamp{}; }

}  // namespace

// ---------------------------------------------------------------- in-memory state

struct RolloutEngine::Active {
  struct Stratum {
    std::string key, hardware_revision, site, connectivity;
    std::vector<uint32_t> groups;  // coarse pools first, the stratum's own group last
    std::vector<uint32_t> deps;
    std::vector<StateCounts> per_stage;
    int64_t successes = 0, failures = 0;  // forward outcomes of this stratum
    bool halted = false;
    FailurePolicy policy = FailurePolicy::kPause;
  };
  // A gate group pools the outcomes of its strata that are not halted: once a stratum is
  // halted its failures are explained, and must not also condemn the other groups it is in
  // (the sites a broken hardware revision happens to sit in, say).
  struct Group {
    std::string key, hardware_revision, site, connectivity;
    int dimension = -1;  // index into plan.stratify_by for a pool, -1 for a single stratum
    std::vector<uint32_t> strata;
    int64_t successes = 0, failures = 0;
    bool halted = false;
  };

  Rollout rollout;
  Artifact artifact;
  Version target;
  // What a check-in reads of a deployment, 8 bytes apiece: most check-ins end here, without
  // touching the Deployment record. Kept equal to deps by build() and commit().
  struct Hot {
    uint32_t stratum = 0;  // index into strata
    uint8_t stage = 0;     // plans have at most 100 stages
    DeploymentState state = DeploymentState::kPending;
  };

  std::vector<Deployment, HugePageAllocator<Deployment>> deps;  // never resized once built
  std::vector<Hot, HugePageAllocator<Hot>> hot;                 // parallel to deps
  std::vector<Stratum> strata;
  std::vector<uint32_t> halted_strata;    // indexes into strata
  std::vector<StateCounts> stage_totals;  // per stage, over every stratum
  std::vector<Group> groups;
  std::unordered_map<std::string, uint32_t> group_index;  // by key
  RateLimiter limiter;
  uint32_t in_flight = 0;
  uint32_t index = 0;  // position in active_

  void count(const Deployment& d, int sign) {
    Stratum& s = strata[hot[&d - deps.data()].stratum];
    s.per_stage[d.stage][d.state] += sign;
    stage_totals[d.stage][d.state] += sign;
    if (is_in_flight(d.state)) in_flight += sign;
    auto [ok, bad] = d.updated_at >= rollout.gates_from ? gate_weight(d) : std::pair{0, 0};
    s.successes += sign * ok;
    s.failures += sign * bad;
    if (s.halted) return;
    for (uint32_t g : s.groups) {
      groups[g].successes += sign * ok;
      groups[g].failures += sign * bad;
    }
  }

  // Recounts every gate from the deployments, after rollout.gates_from moved.
  void recount_gates() {
    for (auto& s : strata) s.successes = s.failures = 0;
    for (auto& g : groups) g.successes = g.failures = 0;
    for (const Deployment& d : deps) {
      if (d.updated_at < rollout.gates_from) continue;
      auto [ok, bad] = gate_weight(d);
      Stratum& s = strata[hot[&d - deps.data()].stratum];
      s.successes += ok;
      s.failures += bad;
    }
    for (const Stratum& s : strata) {
      if (s.halted) continue;
      for (uint32_t g : s.groups) {
        groups[g].successes += s.successes;
        groups[g].failures += s.failures;
      }
    }
  }

  // Rebuilds halt flags from the persisted list of halted groups.
  void refresh_halts() {
    std::map<std::string, FailurePolicy> halted;
    for (const auto& h : rollout.halted) halted.emplace(h.key, h.policy);
    for (auto& g : groups) g.halted = halted.count(g.key) != 0;
    halted_strata.clear();
    for (auto& s : strata) {
      const bool was_halted = s.halted;
      s.halted = false;
      for (uint32_t g : s.groups) {
        if (groups[g].halted) {
          s.halted = true;
          s.policy = halted.at(groups[g].key);
        }
      }
      if (s.halted) halted_strata.push_back(static_cast<uint32_t>(&s - strata.data()));
      if (s.halted != was_halted) {
        const int sign = s.halted ? -1 : +1;
        for (uint32_t g : s.groups) {
          groups[g].successes += sign * s.successes;
          groups[g].failures += sign * s.failures;
        }
      }
    }
  }

  bool all_halted() const { return !strata.empty() && halted_strata.size() == strata.size(); }

  // Counts of one stage (or of all, with stage < 0) in the strata that go on.
  StateCounts live(int stage) const {
    StateCounts c;
    for (size_t k = 0; k < stage_totals.size(); ++k) {
      if (stage < 0 || static_cast<size_t>(stage) == k) c.add(stage_totals[k]);
    }
    for (uint32_t si : halted_strata) {
      for (size_t k = 0; k < stage_totals.size(); ++k) {
        if (stage >= 0 && static_cast<size_t>(stage) != k) continue;
        for (size_t st = 0; st < kDeploymentStateCount; ++st)
          c.n[st] -= strata[si].per_stage[k].n[st];
      }
    }
    return c;
  }

  StateCounts total() const {
    StateCounts c;
    for (const auto& t : stage_totals) c.add(t);
    return c;
  }
};

// Changes staged for one atomic commit: copies of the records as they will be.
struct RolloutEngine::Txn {
  WriteBatch batch;
  std::vector<uint32_t> dep_index;              // parallel to batch.deployments
  std::unordered_map<uint32_t, size_t> staged;  // dep index -> position in batch
  std::vector<EngineEvent> events;

  Deployment& dep(Active& a, uint32_t i) {
    auto [it, fresh] = staged.emplace(i, batch.deployments.size());
    if (fresh) {
      batch.deployments.push_back(a.deps[i]);
      dep_index.push_back(i);
    }
    return batch.deployments[it->second];
  }
  const Deployment& current(const Active& a, uint32_t i) const {
    auto it = staged.find(i);
    return it == staged.end() ? a.deps[i] : batch.deployments[it->second];
  }
  Rollout& rollout(Active& a) {
    if (batch.rollouts.empty()) batch.rollouts.push_back(a.rollout);
    return batch.rollouts.front();
  }
};

// ---------------------------------------------------------------- lifecycle

RolloutEngine::RolloutEngine(Store& store, Clock& clock, EngineOptions options)
    : store_(store), clock_(clock), options_(options) {}

RolloutEngine::~RolloutEngine() {
  if (ticking_) clock_.cancel(timer_);
}

void RolloutEngine::schedule_tick() {
  ticking_ = true;
  timer_ = clock_.schedule_after(options_.tick_interval, [this] {
    tick();
    schedule_tick();
  });
}

void RolloutEngine::set_listener(std::function<void(const EngineEvent&)> listener) {
  std::lock_guard lock(mu_);
  listener_ = std::move(listener);
}

void RolloutEngine::emit(EngineEvent::Kind kind, const Active& a, std::string text) {
  if (listener_) listener_(EngineEvent{kind, clock_.now(), a.rollout.id, std::move(text)});
}

Status RolloutEngine::load() {
  std::lock_guard lock(mu_);
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
  return assemble(std::move(r), std::move(**art), std::move(*deps));
}

Result<std::unique_ptr<RolloutEngine::Active>> RolloutEngine::assemble(
    Rollout r, Artifact artifact, std::vector<Deployment> deps) {
  auto a = std::make_unique<Active>();
  a->artifact = std::move(artifact);
  a->target = Version::parse(a->artifact.version).value();
  a->deps.assign(std::make_move_iterator(deps.begin()), std::make_move_iterator(deps.end()));
  deps = {};
  a->rollout = std::move(r);
  a->limiter = RateLimiter(a->rollout.plan.constraints, a->rollout.started_at);
  const RolloutPlan& plan = a->rollout.plan;
  const size_t stages = plan.stages.size();
  if (stages == 0 || stages > 100) {
    return Error{ErrorCode::kCorruption,
                 "rollout " + a->rollout.id + " has " + std::to_string(stages) + " stages"};
  }

  // Strata come from the deployments' keys; groups are each stratum plus, for every
  // dimension, the pool of strata sharing that dimension's value.
  std::unordered_map<std::string, uint32_t> stratum_ids;
  std::map<std::string, uint32_t> group_ids;
  auto group_for = [&](const std::string& key, const std::string& hw, const std::string& site,
                       const std::string& conn, int dimension) {
    auto [it, fresh] = group_ids.emplace(key, static_cast<uint32_t>(a->groups.size()));
    if (fresh) {
      a->groups.push_back({key, hw, site, conn, dimension, {}, 0, 0, false});
      a->group_index.emplace(key, it->second);
    }
    return it->second;
  };
  a->hot.resize(a->deps.size());
  a->stage_totals.resize(stages);
  for (uint32_t i = 0; i < a->deps.size(); ++i) {
    const Deployment& d = a->deps[i];
    auto [it, fresh] = stratum_ids.try_emplace(d.stratum, static_cast<uint32_t>(a->strata.size()));
    if (fresh) {
      Active::Stratum s;
      s.key = d.stratum;
      s.per_stage.resize(stages);
      const auto parts = split_key(d.stratum);
      for (size_t k = 0; k < plan.stratify_by.size() && k < parts.size(); ++k) {
        switch (plan.stratify_by[k]) {
          case StratumDimension::kHardwareRevision:
            s.hardware_revision = parts[k];
            s.groups.push_back(
                group_for("hardware_revision=" + parts[k], parts[k], "", "", static_cast<int>(k)));
            break;
          case StratumDimension::kSite:
            s.site = parts[k];
            s.groups.push_back(
                group_for("site=" + parts[k], "", parts[k], "", static_cast<int>(k)));
            break;
          case StratumDimension::kConnectivity:
            s.connectivity = parts[k];
            s.groups.push_back(
                group_for("connectivity=" + parts[k], "", "", parts[k], static_cast<int>(k)));
            break;
        }
      }
      if (plan.stratify_by.size() != 1) {
        s.groups.push_back(group_for(d.stratum, s.hardware_revision, s.site, s.connectivity, -1));
      }
      for (uint32_t g : s.groups)
        a->groups[g].strata.push_back(static_cast<uint32_t>(a->strata.size()));
      a->strata.push_back(std::move(s));
    }
    if (d.stage >= stages) {
      return Error{ErrorCode::kCorruption, "deployment " + d.rollout_id + "/" + d.device_id +
                                               " has stage " + std::to_string(d.stage) +
                                               " beyond the plan"};
    }
    a->hot[i] = {it->second, static_cast<uint8_t>(d.stage), d.state};
    a->strata[it->second].deps.push_back(i);
    a->count(d, +1);
  }
  a->refresh_halts();
  return a;
}

RolloutEngine::Active* RolloutEngine::find(std::string_view rollout_id) {
  for (auto& a : active_) {
    if (a->rollout.id == rollout_id) return a.get();
  }
  return nullptr;
}

Status RolloutEngine::commit(Active& a, Txn& txn) {
  if (!txn.batch.empty()) {
    DROVER_TRY(store_.apply(txn.batch));
    for (size_t k = 0; k < txn.dep_index.size(); ++k) {
      const uint32_t i = txn.dep_index[k];
      a.count(a.deps[i], -1);
      a.deps[i] = std::move(txn.batch.deployments[k]);
      a.hot[i].stage = static_cast<uint8_t>(a.deps[i].stage);
      a.hot[i].state = a.deps[i].state;
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

Result<Rollout> RolloutEngine::create(RolloutPlan plan) {
  DROVER_TRY(validate(plan));
  std::lock_guard lock(mu_);
  auto art = artifact(plan.artifact_name, plan.artifact_version);
  if (!art.ok()) return art.error();
  if (!art->has_value()) {
    return Error{ErrorCode::kFailedPrecondition, "artifact " + plan.artifact_name + "@" +
                                                     plan.artifact_version + " is not uploaded"};
  }
  auto seq = store_.next_sequence("rollout");
  if (!seq.ok()) return seq.error();
  char id[32];
  std::snprintf(id, sizeof id, "rollout-%04llu", static_cast<unsigned long long>(*seq));
  Rollout r;
  r.id = id;
  r.plan = std::move(plan);
  r.state = RolloutState::kCreated;
  r.created_at = clock_.now();
  WriteBatch batch;
  batch.rollouts.push_back(r);
  DROVER_TRY(store_.apply(batch));
  // From what is already in hand, not read back: once the write has succeeded, a failed
  // read must not leave the store ahead of memory.
  auto built = assemble(r, std::move(**art), {});
  if (!built.ok()) return built.error();
  install(std::move(*built), static_cast<uint32_t>(active_.size()));
  return r;
}

Status RolloutEngine::start(const std::string& rollout_id) {
  std::lock_guard lock(mu_);
  Active* a = find(rollout_id);
  if (a == nullptr) return not_found("no active rollout '" + rollout_id + "'");
  auto next = next_state(a->rollout.state, RolloutEvent::kStart);
  if (!next.ok()) return next.error();

  auto devices = store_.list_devices();
  if (!devices.ok()) return devices.error();
  TargetSet targets = plan_targets(a->rollout.plan, a->artifact, *devices, rollout_id);
  devices = std::vector<Device>{};  // a million devices is a lot to hold on to

  const Timestamp now = clock_.now();
  Rollout r = a->rollout;
  r.state = *next;
  r.started_at = now;
  r.stage = 0;
  r.targets = static_cast<uint32_t>(targets.deployments.size());
  r.stages = {StageProgress{r.plan.stages[0].name, now, {}, {}, targets.stage_sizes[0]}};
  WriteBatch batch;
  batch.rollouts.push_back(r);
  for (Deployment& d : targets.deployments) d.updated_at = now;
  batch.deployments = std::move(targets.deployments);
  DROVER_TRY(store_.apply(batch));

  // The created rollout had no deployments, so nothing of it is in by_device_. Built from
  // what was just written, not read back: no read can fail between the write and memory.
  auto built =
      assemble(std::move(batch.rollouts.front()), a->artifact, std::move(batch.deployments));
  if (!built.ok()) return built.error();
  const uint32_t index = a->index;
  install(std::move(*built), index);
  Active& started = *active_[index];

  std::string text = std::to_string(r.targets) + " devices targeted in " +
                     std::to_string(started.strata.size()) + " strata";
  if (!targets.excluded.empty())
    text += ", " + std::to_string(targets.excluded.size()) + " incompatible";
  if (targets.already_current > 0)
    text += ", " + std::to_string(targets.already_current) + " already current";
  emit(EngineEvent::Kind::kStarted, started, text);
  emit(EngineEvent::Kind::kStageStarted, started,
       "stage " + r.plan.stages[0].name + ": " + std::to_string(r.stages[0].devices) + " devices");
  return ok_status();
}

Status RolloutEngine::transition(Active& a, RolloutEvent event,
                                 const std::function<void(Rollout&)>& also) {
  auto next = next_state(a.rollout.state, event);
  if (!next.ok()) return next.error();
  Txn txn;
  Rollout& r = txn.rollout(a);
  r.state = *next;
  if (is_terminal(*next)) {
    r.finished_at = clock_.now();
    if (!r.stages.empty() && is_zero(r.stages.back().finished_at))
      r.stages.back().finished_at = clock_.now();
  }
  if (also) also(r);
  return commit(a, txn);
}

Status RolloutEngine::pause(const std::string& rollout_id) {
  std::lock_guard lock(mu_);
  Active* a = find(rollout_id);
  if (a == nullptr) return not_found("no active rollout '" + rollout_id + "'");
  DROVER_TRY(transition(*a, RolloutEvent::kPause));
  emit(EngineEvent::Kind::kPaused, *a, "paused by operator");
  return ok_status();
}

Status RolloutEngine::resume(const std::string& rollout_id) {
  std::lock_guard lock(mu_);
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

Status RolloutEngine::abort(const std::string& rollout_id) {
  std::lock_guard lock(mu_);
  Active* a = find(rollout_id);
  if (a == nullptr) return not_found("no active rollout '" + rollout_id + "'");
  DROVER_TRY(next_state(a->rollout.state, RolloutEvent::kAbort));
  Txn txn;
  for (uint32_t s = 0; s < a->strata.size(); ++s)
    revert_or_cancel(*a, txn, s, FailurePolicy::kAbort);
  Rollout& r = txn.rollout(*a);
  r.state = RolloutState::kAborted;
  r.finished_at = clock_.now();
  if (!r.stages.empty() && is_zero(r.stages.back().finished_at))
    r.stages.back().finished_at = clock_.now();
  DROVER_TRY(commit(*a, txn));
  emit(EngineEvent::Kind::kAborted, *a, "aborted by operator");
  return ok_status();
}

Status RolloutEngine::rollback(const std::string& rollout_id) {
  std::lock_guard lock(mu_);
  Active* a = find(rollout_id);
  if (a == nullptr) return not_found("no active rollout '" + rollout_id + "'");
  auto next = next_state(a->rollout.state, RolloutEvent::kRollback);
  if (!next.ok()) return next.error();
  Txn txn;
  for (uint32_t s = 0; s < a->strata.size(); ++s)
    revert_or_cancel(*a, txn, s, FailurePolicy::kRollback);
  txn.rollout(*a).state = *next;
  const size_t reverts = txn.batch.deployments.size();
  DROVER_TRY(commit(*a, txn));
  emit(EngineEvent::Kind::kRollingBack, *a,
       "rollback by operator: " + std::to_string(reverts) + " deployments changed");
  return ok_status();
}

// ---------------------------------------------------------------- device side

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
  std::lock_guard lock(mu_);
  const std::string key = name + "@" + version;
  auto rollouts = store_.list_rollouts();
  if (!rollouts.ok()) return rollouts.error();
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

void RolloutEngine::site_changed(const Site& site) {
  std::lock_guard lock(mu_);
  if (windows_.has(site.name)) windows_.put(site);
}

Status RolloutEngine::ensure_site(std::string_view site) {
  if (site.empty() || windows_.has(site)) return ok_status();
  auto s = store_.get_site(site);
  if (!s.ok()) return s.error();
  if (s->has_value()) windows_.put(**s);
  return ok_status();
}

bool RolloutEngine::revert_possible(Active& a, const Deployment& d) {
  if (d.from_version.empty()) return false;
  auto prev = artifact(a.artifact.name, d.from_version);
  return prev.ok() && prev->has_value();
}

void RolloutEngine::revert_or_cancel(Active& a, Txn& txn, uint32_t stratum, FailurePolicy policy) {
  if (policy == FailurePolicy::kPause) return;
  for (uint32_t i : a.strata[stratum].deps) {
    const Deployment& d = txn.current(a, i);
    if (d.state == DeploymentState::kPending) {
      Deployment& s = txn.dep(a, i);
      s.state = DeploymentState::kCancelled;
      s.updated_at = clock_.now();
    } else if (policy == FailurePolicy::kRollback &&
               (d.state == DeploymentState::kSucceeded || d.state == DeploymentState::kUnhealthy)) {
      if (!revert_possible(a, d)) continue;
      Deployment& s = txn.dep(a, i);
      s.state = next_state(s.state, DeploymentEvent::kRevert).value();
      s.updated_at = clock_.now();
    }
  }
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
  if (is_failure(d.state))
    d.error = message.empty() ? std::string(to_string(event)) : std::string(message);
  // A device that completes the update in a stratum being rolled back goes straight back.
  if (d.state == DeploymentState::kSucceeded || d.state == DeploymentState::kUnhealthy) {
    const auto& s = a.strata[a.hot[i].stratum];
    const bool rolling_back = a.rollout.state == RolloutState::kRollingBack ||
                              (s.halted && s.policy == FailurePolicy::kRollback);
    if (rolling_back && revert_possible(a, d))
      d.state = next_state(d.state, DeploymentEvent::kRevert).value();
  }
  return ok_status();
}

Result<std::optional<UpdateOffer>> RolloutEngine::offer_for(const Device& device) {
  return offer_for(CheckInDevice{device.id, FlatIndex::hash(device.id), device.update_state,
                                 device.site, device});
}

Result<std::optional<UpdateOffer>> RolloutEngine::offer_for(const CheckInDevice& device,
                                                            DeviceCursor* cursor) {
  constexpr uint64_t kNoRef = UINT64_MAX;         // cursor: the device is in no rollout
  constexpr uint64_t kManyRefs = UINT64_MAX - 1;  // cursor: several, look them up
  std::lock_guard lock(mu_);
  if (by_device_.size() == 0 || device.state != UpdateState::kIdle) {
    return std::optional<UpdateOffer>{};
  }
  const Timestamp now = clock_.now();
  // The device's deployments, in the order their rollouts were loaded.
  uint64_t refs_inline[8];
  std::vector<uint64_t> refs_more;
  size_t refs = 0;
  if (cursor != nullptr && cursor->epoch == epoch_ && cursor->ref != kManyRefs) {
    if (cursor->ref == kNoRef) return std::optional<UpdateOffer>{};
    refs_inline[refs++] = cursor->ref;
  } else {
    by_device_.find(device.id_hash, [&](uint64_t ref) {
      if (active_[ref >> 32]->deps[ref & 0xffffffffu].device_id != device.id) return false;
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
  for (size_t k = 0; k < refs; ++k) {
    const uint64_t ref = k < 8 ? refs_inline[k] : refs_more[k - 8];
    Active& a = *active_[ref >> 32];
    const auto i = static_cast<uint32_t>(ref & 0xffffffffu);
    const Active::Hot hot = a.hot[i];
    const Deployment& d = a.deps[i];  // read only on the way to an offer or a repair
    const Rollout& r = a.rollout;
    // Looked up only where needed: most check-ins are of devices whose turn has not come.
    auto installed_version = [&]() { return device.record.installed_version(a.artifact.name); };
    auto window_open = [&]() {
      if (!r.plan.constraints.respect_windows) return true;
      if (auto open = windows_.open_if_known(device.site, now)) return *open;
      if (!ensure_site(device.site).ok()) return false;
      return windows_.is_open(device.site, now);
    };
    auto forward_offer = [&]() {
      return UpdateOffer{
          r.id, a.artifact.name, a.artifact.version, a.artifact.size_bytes, a.artifact.sha256,
          false};
    };
    auto revert_offer = [&](const Deployment& dep) -> std::optional<UpdateOffer> {
      auto prev = artifact(a.artifact.name, dep.from_version);
      if (!prev.ok() || !prev->has_value()) return std::nullopt;
      const Artifact& p = **prev;
      return UpdateOffer{r.id, p.name, p.version, p.size_bytes, p.sha256, true};
    };
    // Most check-ins change nothing: the transaction is set up only when one does.
    std::optional<Txn> staging;
    auto txn = [&]() -> Txn& { return staging ? *staging : staging.emplace(); };
    switch (hot.state) {
      case DeploymentState::kPending: {
        if (r.state != RolloutState::kRunning || hot.stage > r.stage) continue;
        if (a.strata[a.hot[i].stratum].halted) continue;
        if (!window_open()) continue;
        if (auto st = check_compatible(a.artifact, device.record); !st.ok()) {
          DROVER_TRY(apply_event(a, txn(), i, DeploymentEvent::kSkip, st.error().message));
          DROVER_TRY(commit(a, txn()));
          continue;
        }
        const std::string* installed = installed_version();
        if (installed != nullptr) {
          auto v = Version::parse(*installed);
          if (v.ok() && !(*v < a.target)) {
            DROVER_TRY(
                apply_event(a, txn(), i, DeploymentEvent::kSkip, "already runs " + *installed));
            DROVER_TRY(commit(a, txn()));
            continue;
          }
        }
        const uint32_t limit = r.plan.constraints.max_in_flight;
        if (limit > 0 && a.in_flight >= limit) continue;
        if (!a.limiter.try_take(now)) continue;
        Deployment& staged = txn().dep(a, i);
        staged.from_version = installed != nullptr ? *installed : "";
        staged.offers += 1;
        DROVER_TRY(apply_event(a, txn(), i, DeploymentEvent::kOffer, {}));
        DROVER_TRY(commit(a, txn()));
        return std::optional<UpdateOffer>(forward_offer());
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
        if (r.state != RolloutState::kRunning || a.strata[a.hot[i].stratum].halted) continue;
        if (installed != nullptr) {
          auto v = Version::parse(*installed);
          if (v.ok() && !(*v < a.target)) continue;  // runs something newer: never downgrade
        }
        if (!window_open()) continue;
        return std::optional<UpdateOffer>(forward_offer());
      }
      case DeploymentState::kRevertPending: {
        if (r.state == RolloutState::kPaused || !window_open()) continue;
        auto offer = revert_offer(d);
        if (!offer) continue;
        txn().dep(a, i).offers += 1;
        DROVER_TRY(apply_event(a, txn(), i, DeploymentEvent::kOffer, {}));
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
  std::lock_guard lock(mu_);
  for (const DeviceCursor* c : cursors) {
    if (c->epoch != epoch_ || (c->ref >> 32) >= active_.size()) continue;
    __builtin_prefetch(&active_[c->ref >> 32]->hot[c->ref & 0xffffffffu]);
  }
}

Result<DeploymentState> RolloutEngine::report(const Device& device, std::string_view rollout_id,
                                              std::string_view version, DeploymentEvent event,
                                              std::string_view message) {
  if (event == DeploymentEvent::kOffer || event == DeploymentEvent::kCancel ||
      event == DeploymentEvent::kSkip || event == DeploymentEvent::kRevert) {
    return invalid_argument(std::string("'") + to_string(event) + "' is not a device report");
  }
  std::lock_guard lock(mu_);
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
  const Deployment& d = a->deps[i];
  const bool reverting = is_revert(d.state);
  const std::string& expected = reverting ? d.from_version : a->artifact.version;
  if (version != expected) {
    // A late report about the other direction of this deployment changes nothing.
    if (reverting && version == a->artifact.version) return d.state;
    return invalid_argument("report is about version " + std::string(version) + ", deployment " +
                            a->rollout.id + " is about " + expected);
  }
  if (d.state == DeploymentState::kPending || d.state == DeploymentState::kCancelled ||
      d.state == DeploymentState::kSkipped) {
    return conflict("device '" + device.id + "' was never offered " + a->rollout.id);
  }
  Txn txn;
  DROVER_TRY(apply_event(*a, txn, i, event, message));
  DROVER_TRY(commit(*a, txn));
  const DeploymentState now_state = a->deps[i].state;

  // Judge the gates this outcome feeds, coarse pools first, while the rollout is still
  // deciding (a late report to a finished rollout changes its counts, not its course). A
  // halt that fails to persist is retried at the next tick; the report is already recorded.
  const RolloutState rs = a->rollout.state;
  if (is_finished(now_state) && (rs == RolloutState::kRunning || rs == RolloutState::kPaused)) {
    const Active::Stratum& s = a->strata[a->hot[i].stratum];
    for (size_t k = 0; k < s.groups.size() && !s.halted; ++k) {
      if (judge_group(*a, s.groups[k]) != GateOutcome::kPassed) break;
    }
  }
  return a->deps[i].state;
}

namespace {
const std::string& dimension_value(const RolloutPlan& plan, int dimension, const std::string& hw,
                                   const std::string& site, const std::string& conn) {
  switch (plan.stratify_by[static_cast<size_t>(dimension)]) {
    case StratumDimension::kHardwareRevision:
      return hw;
    case StratumDimension::kSite:
      return site;
    case StratumDimension::kConnectivity:
      return conn;
  }
  return hw;
}
}  // namespace

// A pool can fail its gate only because it contains much of another pool that is the real
// cause: "connectivity=ethernet" fails because most of the broken rev-c devices are on
// ethernet. For each other dimension, take the value with the most failures inside this
// pool; if the pool passes without it, and that value also fails outside this pool, the
// failure belongs to that value's pool, not to this one (its own gate will halt it). When
// the value has devices outside this pool but too few outcomes to tell yet, the verdict
// waits for more data.
RolloutEngine::Explanation RolloutEngine::explain(Active& a, uint32_t g) {
  const Active::Group& grp = a.groups[g];
  const RolloutPlan& plan = a.rollout.plan;
  const GatePolicy& gate = plan.gate;
  for (int dim = 0; dim < static_cast<int>(plan.stratify_by.size()); ++dim) {
    if (dim == grp.dimension) continue;
    std::map<std::string, std::pair<int64_t, int64_t>> by_value;  // value -> {successes, failures}
    for (uint32_t si : grp.strata) {
      const auto& s = a.strata[si];
      if (s.halted) continue;
      auto& c = by_value[dimension_value(plan, dim, s.hardware_revision, s.site, s.connectivity)];
      c.first += s.successes;
      c.second += s.failures;
    }
    const std::string* worst = nullptr;
    std::pair<int64_t, int64_t> inside{0, 0};
    for (const auto& [value, c] : by_value) {
      if (worst == nullptr || c.second > inside.second) {
        worst = &value;
        inside = c;
      }
    }
    if (worst == nullptr || inside.second == 0) continue;
    const int64_t rest_fail = grp.failures - inside.second;
    const auto rest_n =
        static_cast<uint32_t>(grp.successes + grp.failures - inside.first - inside.second);
    if (judge(static_cast<uint32_t>(rest_fail), rest_n, gate.max_failure_rate, gate.confidence,
              gate.min_sample)
            .failed) {
      continue;  // the pool fails even without that value
    }
    const std::string pool_key =
        std::string(to_string(plan.stratify_by[static_cast<size_t>(dim)])) + "=" + *worst;
    auto it = a.group_index.find(pool_key);
    if (it == a.group_index.end()) continue;
    const Active::Group& pool = a.groups[it->second];
    // Devices of that value outside this pool that have, or can still get, an outcome.
    int64_t can_report_outside = 0;
    for (uint32_t si : pool.strata) {
      const auto& s = a.strata[si];
      if (s.halted || std::find(grp.strata.begin(), grp.strata.end(), si) != grp.strata.end())
        continue;
      for (const StateCounts& c : s.per_stage) {
        can_report_outside +=
            c.total() - c[DeploymentState::kCancelled] - c[DeploymentState::kSkipped];
      }
    }
    // Too few to ever tell: the two are confounded, and this pool is as good a culprit.
    if (can_report_outside < gate.min_sample) continue;
    const int64_t out_fail = pool.failures - inside.second;
    const int64_t out_n = pool.successes + pool.failures - inside.first - inside.second;
    if (out_n < gate.min_sample) return Explanation::kWait;
    if (static_cast<double>(out_fail) / static_cast<double>(out_n) > gate.max_failure_rate) {
      return Explanation::kOtherPool;
    }
  }
  return Explanation::kNone;
}

RolloutEngine::GateOutcome RolloutEngine::judge_group(Active& a, uint32_t g) {
  const Active::Group& grp = a.groups[g];
  if (grp.halted || grp.failures == 0) return GateOutcome::kPassed;
  const GatePolicy& gate = a.rollout.plan.gate;
  const auto n = static_cast<uint32_t>(grp.successes + grp.failures);
  const GateVerdict v = judge(static_cast<uint32_t>(grp.failures), n, gate.max_failure_rate,
                              gate.confidence, gate.min_sample);
  if (!v.failed) return GateOutcome::kPassed;
  if (grp.dimension >= 0 && explain(a, g) != Explanation::kNone) return GateOutcome::kPassed;
  const std::string reason = std::to_string(grp.failures) + " of " + std::to_string(n) +
                             " failed (" + percent(v.rate) + "; " + percent(gate.confidence) +
                             " lower bound " + percent(v.bounds.lower) + " > " +
                             percent(gate.max_failure_rate) + ")";
  return halt_group(a, g, reason).ok() ? GateOutcome::kHalted : GateOutcome::kError;
}

Status RolloutEngine::halt_group(Active& a, uint32_t g, const std::string& reason) {
  const Active::Group& grp = a.groups[g];
  const FailurePolicy policy = a.rollout.plan.on_failure;
  Txn txn;
  Rollout& r = txn.rollout(a);
  r.halted.push_back(
      {grp.key, grp.hardware_revision, grp.site, grp.connectivity, reason, policy, clock_.now()});
  for (uint32_t s : grp.strata) {
    if (!a.strata[s].halted) revert_or_cancel(a, txn, s, policy);
  }
  uint32_t cancelled = 0, reverts = 0;
  for (const Deployment& d : txn.batch.deployments) {
    if (d.state == DeploymentState::kCancelled) ++cancelled;
    if (d.state == DeploymentState::kRevertPending) ++reverts;
  }
  std::string text = grp.key + " halted: " + reason + "; policy " + to_string(policy);
  if (policy != FailurePolicy::kPause) text += ", " + std::to_string(cancelled) + " not offered";
  if (policy == FailurePolicy::kRollback) text += ", " + std::to_string(reverts) + " to revert";
  txn.events.push_back({EngineEvent::Kind::kStratumHalted, clock_.now(), a.rollout.id, text});
  DROVER_TRY(commit(a, txn));
  return fail_if_all_halted(a);
}

Status RolloutEngine::fail_if_all_halted(Active& a) {
  const RolloutState st = a.rollout.state;
  if (a.all_halted() && (st == RolloutState::kRunning || st == RolloutState::kPaused)) {
    DROVER_TRY(transition(a, RolloutEvent::kAllHalted));
    emit(EngineEvent::Kind::kFailed, a, "every stratum halted");
  }
  return ok_status();
}

// ---------------------------------------------------------------- time-driven decisions

void RolloutEngine::tick() {
  std::lock_guard lock(mu_);
  for (auto& a : active_) tick_rollout(*a);
}

void RolloutEngine::tick_rollout(Active& a) {
  const RolloutPlan& plan = a.rollout.plan;
  const RolloutState state = a.rollout.state;
  const Timestamp now = clock_.now();

  // Gates are judged on every tick too, so a halt whose write failed is retried.
  if (state == RolloutState::kRunning || state == RolloutState::kPaused) {
    for (uint32_t g = 0; g < a.groups.size(); ++g) {
      if (judge_group(a, g) == GateOutcome::kError) return;
    }
    // Also retries a failed-rollout transition whose write failed after its halt landed.
    if (!fail_if_all_halted(a).ok()) return;
    if (a.rollout.state != state) return;  // the gates ended it; the rest is for next tick
  }

  // What is still outstanding, in strata that go on and anywhere a revert is due.
  const StateCounts all = a.total();
  const StateCounts live_all = a.live(-1);
  const StateCounts live_stage = a.live(static_cast<int>(a.rollout.stage));
  const uint32_t reverts_due =
      all[DeploymentState::kRevertPending] + all[DeploymentState::kReverting];
  const uint32_t outstanding = live_all[DeploymentState::kPending] + live_all.in_flight();

  if (state == RolloutState::kRollingBack) {
    // Devices still installing the new version must finish (and be sent back) first.
    if (reverts_due == 0 && all.in_flight() == 0 && transition(a, RolloutEvent::kComplete).ok()) {
      emit(EngineEvent::Kind::kRolledBack, a,
           "every updated device is back on its previous version");
    }
    return;
  }
  if (state != RolloutState::kRunning) return;

  const uint32_t stage = a.rollout.stage;
  const StageProgress& sp = a.rollout.stages[stage];
  const StageSpec& spec = plan.stages[stage];
  if (is_zero(sp.settled_at)) {
    const uint32_t cohort = live_stage.total();
    const uint32_t done = live_stage.finished();
    const auto needed = static_cast<uint32_t>(std::ceil(plan.settle_fraction * cohort - 1e-9));
    if (cohort == 0 || done >= needed) {
      Txn txn;
      txn.rollout(a).stages[stage].settled_at = now;
      txn.events.push_back({EngineEvent::Kind::kStageSettled, now, a.rollout.id,
                            "stage " + spec.name + " settled: " + std::to_string(done) + " of " +
                                std::to_string(cohort) + " finished; soaking " +
                                format_duration(spec.soak)});
      if (!commit(a, txn).ok()) return;
    }
    return;
  }
  if (is_zero(sp.finished_at) && now >= sp.settled_at + spec.soak) {
    Txn txn;
    Rollout& r = txn.rollout(a);
    r.stages[stage].finished_at = now;
    if (stage + 1 < plan.stages.size()) {
      uint32_t devices = 0;
      for (const auto& s : a.strata) devices += s.per_stage[stage + 1].total();
      r.stage = stage + 1;
      r.stages.push_back({plan.stages[stage + 1].name, now, {}, {}, devices});
      txn.events.push_back(
          {EngineEvent::Kind::kStageStarted, now, a.rollout.id,
           "stage " + plan.stages[stage + 1].name + ": " + std::to_string(devices) + " devices"});
    }
    if (!commit(a, txn).ok()) return;
  }
  const bool last_done =
      a.rollout.stage + 1 == plan.stages.size() && !is_zero(a.rollout.stages.back().finished_at);
  if (last_done && outstanding == 0 && reverts_due == 0 &&
      transition(a, RolloutEvent::kComplete).ok()) {
    emit(EngineEvent::Kind::kCompleted, a, "every device in a healthy stratum is done");
  }
}

// ---------------------------------------------------------------- queries

Result<Rollout> RolloutEngine::get(const std::string& rollout_id) {
  {
    std::lock_guard lock(mu_);
    if (Active* a = find(rollout_id)) return a->rollout;
  }
  auto r = store_.get_rollout(rollout_id);
  if (!r.ok()) return r.error();
  if (!r->has_value()) return not_found("no rollout '" + rollout_id + "'");
  return std::move(**r);
}

Result<RolloutProgress> RolloutEngine::progress(const std::string& rollout_id) {
  std::lock_guard lock(mu_);
  Active* a = find(rollout_id);
  if (a == nullptr) return not_found("no active rollout '" + rollout_id + "'");
  RolloutProgress p;
  p.rollout = a->rollout;
  p.per_stage.resize(a->rollout.plan.stages.size());
  for (const auto& s : a->strata) {
    StratumProgress sp;
    sp.key = s.key;
    sp.hardware_revision = s.hardware_revision;
    sp.site = s.site;
    sp.connectivity = s.connectivity;
    sp.halted = s.halted;
    for (size_t k = 0; k < s.per_stage.size(); ++k) {
      sp.counts.add(s.per_stage[k]);
      p.per_stage[k].add(s.per_stage[k]);
    }
    sp.successes = static_cast<uint32_t>(s.successes);
    sp.failures = static_cast<uint32_t>(s.failures);
    p.total.add(sp.counts);
    p.strata.push_back(std::move(sp));
  }
  return p;
}

Result<RolloutSummary> RolloutEngine::summary(const std::string& rollout_id) {
  std::lock_guard lock(mu_);
  Active* a = find(rollout_id);
  if (a == nullptr) return not_found("no active rollout '" + rollout_id + "'");
  return RolloutSummary{a->rollout.state, a->rollout.targets, a->total(), a->live(-1)};
}

std::vector<std::string> RolloutEngine::loaded_rollouts() {
  std::lock_guard lock(mu_);
  std::vector<std::string> ids;
  for (const auto& a : active_) ids.push_back(a->rollout.id);
  return ids;
}

}  // namespace drover
