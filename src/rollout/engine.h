// The rollout engine: the persistent brain that decides which device gets which update when.
//
// It keeps every active rollout and its deployments in memory, mirrored from the Store, and
// writes every change to the Store *before* acting on it (an offer is recorded as offered
// before it is returned; a report is recorded before it is acknowledged). Killing the process
// at any point and calling load() on a new engine over the same store therefore loses no
// deployment and offers nothing twice. Under a GroupCommitStore inside a CommitScope (drover
// serve) "written" means queued: the engine acts at once and the caller answers only once
// the write is durable (store/group_commit.h), so the same holds for everything answered.
//
// Time comes from the injected Clock: the engine schedules its own periodic tick() (gates,
// settling, soak, promotion, completion) on it, so under a ManualClock the whole engine runs
// in simulated time.
//
// Thread-safety: every public method is safe to call from several threads (one mutex).
// The destructor cancels the tick timer; under SystemClock, whose timer thread may be
// running the tick at that moment, stop the clock before destroying the engine.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "base/clock.h"
#include "base/flat_index.h"
#include "base/mutex.h"
#include "base/result.h"
#include "model/artifact.h"
#include "model/device.h"
#include "model/rollout.h"
#include "rollout/deployment_machine.h"
#include "rollout/health_gate.h"
#include "rollout/planner.h"
#include "rollout/rollout_machine.h"
#include "rollout/scheduler.h"
#include "store/store.h"

namespace drover {

struct UpdateOffer {
  std::string rollout_id;
  std::string component;
  std::string version;
  uint64_t size_bytes = 0;
  std::string sha256;
  bool revert = false;  // a fleet rollback sending the previous version back
  // A revert to the image the device keeps in its other slot: nothing to download (size and
  // sha256 describe the uploaded artifact, if there is one, for a device that lost it).
  bool switch_back = false;
  // When the device may interrupt itself (install, reboot, commit) for this offer: its
  // maintenance windows narrowed by its quiet hours, in UTC, from now to at most a week
  // ahead (at most kMaxOfferWindows of them). Empty: any time.
  std::vector<TimeRange> windows;
};
inline constexpr size_t kMaxOfferWindows = 16;
inline constexpr Duration kOfferHorizon = days(7);
// How far behind the server's a device's clock may be and still see a window that is open
// now as open (RolloutEngine::offer_windows).
inline constexpr Duration kClockSkew = hours(1);

// What a device that holds a verified image until its window (UpdateState::kReady) is told
// when it checks in.
struct HoldAnswer {
  enum class Action : uint8_t {
    kApply,  // go ahead inside `windows` (empty: any time)
    kWait,   // keep the image but do not install it yet (the rollout is paused, or no
             // window opens within a week); ask again at the next check-in
    kDrop,   // the update is off (the group halted, the rollout stopped): delete the image
  };
  std::string rollout_id;
  Action action = Action::kDrop;
  std::vector<TimeRange> windows;
  std::string reason;      // kWait, kDrop: why, for the device's log
  bool withdrawn = false;  // kDrop: this answer withdrew the deployment
};
const char* to_string(HoldAnswer::Action a);

// How a stage went, as far as delivery goes: its size against what was asked, and how
// often a device whose turn had come checked in and was not offered it, by reason — the
// constraint to change to go faster. Kept in memory since the start (not persisted).
struct StageInsight {
  StageNote sizing;        // asked, planned, why (the planner's note at start)
  uint64_t window = 0;     // its window was closed (or opened too late)
  uint64_t in_flight = 0;  // max_in_flight was reached
  uint64_t rate = 0;       // the offer rate limit
  uint64_t pacing = 0;     // the canary's pacing
  uint64_t offers = 0;     // offers made during the stage
  // Check-ins that got no offer because the artifact's target is not signed
  // (EngineOptions::offerable).
  uint64_t unsigned_target = 0;
  // The constraint that turned devices away most ("window", "max_in_flight", "rate",
  // "pacing"; "unsigned" whenever the artifact's target was not signed), or "links" when
  // devices were turned away less often than offered: the stage
  // then waited for devices to check in.
  std::string bound_by() const;
};

// Where a device's deployments sit in the engine's tables, remembered by the caller between
// check-ins (the registry keeps one per device) so that a check-in skips the lookup by id.
// Opaque to the caller. The engine notices by itself when its tables have changed since.
struct DeviceCursor {
  uint32_t epoch = 0;  // 0: never filled
  uint64_t ref = 0;
};

// A device checking in, as the engine sees it. `record` is read only when something may be
// offered (compatibility, installed versions); the rest decides the common "nothing for you".
struct CheckInDevice {
  std::string_view id;
  uint64_t id_hash = 0;  // FlatIndex::hash(id)
  UpdateState state = UpdateState::kIdle;
  std::string_view site;
  const Device& record;
};

// Something worth telling an operator, delivered to the listener as it happens.
struct EngineEvent {
  enum class Kind : uint8_t {
    kStarted,
    kStageStarted,
    kStageSettled,
    kStratumHalted,
    kPaused,
    kResumed,
    kCompleted,
    kFailed,
    kAborted,
    kRollingBack,
    kRolledBack,
    kWatching,
    kCompletedPartial,
    kRollbackIncomplete,
    kRollbackProgress,  // another tenth of a fleet rollback's reverts is over
    kDevicesSilent,
    kTickFailed,  // a periodic tick could not write its decisions; it retries at the next
  };
  Kind kind;
  Timestamp at;
  std::string rollout_id;
  std::string text;  // one readable line
};
const char* to_string(EngineEvent::Kind k);

inline constexpr size_t kDeploymentStateCount = static_cast<size_t>(DeploymentState::kCount);
struct StateCounts {
  std::array<uint32_t, kDeploymentStateCount> n{};
  uint32_t operator[](DeploymentState s) const { return n[static_cast<size_t>(s)]; }
  uint32_t& operator[](DeploymentState s) { return n[static_cast<size_t>(s)]; }
  uint32_t total() const;
  uint32_t finished() const;   // forward install over
  uint32_t in_flight() const;  // offered and not yet done (forward or revert)
  void add(const StateCounts& o);
};

struct StratumProgress {
  std::string key;
  std::string hardware_revision, site, connectivity;
  bool halted = false;
  uint32_t successes = 0, failures = 0;  // forward outcomes judged by the gate
  StateCounts counts;
};

// A health gate at one group on one metric of the plan (docs/gates.md, "Health gates"): the
// pairs so far and the test's evidence against the group's threshold.
struct HealthGateStatus {
  std::string group;    // a gate node's key ("all", "hardware_revision=rev-c")
  uint32_t metric = 0;  // index into the plan's gate.health
  // Pairs of its strata that are not halted; under a halt, of its strata but those below a
  // part halted on its own (LoadedRollout::halted_node_health).
  HealthTally tally;
  double log_evidence = 0;
  double threshold = 0;  // ln(1/alpha): the evidence that halts the group
  bool halted = false;   // the group, or one above it, is halted
};

struct RolloutProgress {
  Rollout rollout;
  RolloutOutcome outcome;
  StateCounts total;
  std::vector<StateCounts> per_stage;
  std::vector<StratumProgress> strata;
  // With health gates: per metric, the whole rollout and each group of the first dimension
  // that holds a test.
  std::vector<HealthGateStatus> health;
  // Committed devices whose pair is not formed yet (their window after the commit runs).
  uint32_t health_waiting = 0;
};

struct RolloutSummary {
  RolloutState state = RolloutState::kCreated;
  uint32_t targets = 0;
  StateCounts total;  // every deployment
  StateCounts live;   // deployments in strata that are not halted
};

struct EngineOptions {
  Duration tick_interval = seconds(60);
  // Terminal rollouts that finished less than this long ago stay loaded, so late reports
  // from their devices are still accepted.
  Duration keep_finished = days(7);
  // Keep every deployment's history (DeploymentStep) in the store. The twin turns it off
  // for fleets too large to hold it in memory.
  bool history = true;
  // Whether an artifact may be installed: with signed update metadata on, only one the signed
  // targets list (UpdateRepository::is_signed). A rollout of any other is refused at
  // create(), and no forward offer of it is made (a revert to what a device ran before is
  // not held back). Empty: every artifact. Called with the engine's lock held.
  std::function<bool(const Artifact&)> offerable;
  // Told of every change to a rollout's state or to its halted strata before it is written
  // (`before` has an empty id for a rollout being created): the audit log's hook. An error
  // stops the change (nothing is written or done). Called with the engine's lock held.
  std::function<Status(const Rollout& before, const Rollout& after)> audit;
  // Where health gates get their numbers (health_gate.h), read by the thread that calls
  // tick() without the engine's lock; it must outlive the engine. None: a plan with health
  // metrics is refused at create().
  HealthSource* health = nullptr;
};

struct LoadedRollout;

class RolloutEngine {
 public:
  RolloutEngine(Store& store, Clock& clock, EngineOptions options = {});
  ~RolloutEngine();
  RolloutEngine(const RolloutEngine&) = delete;
  RolloutEngine& operator=(const RolloutEngine&) = delete;

  // (Re)builds the in-memory state from the store and starts ticking. Call once, at
  // start-up, before anything else (it replaces what is in memory; it does not run in the
  // middle of a start's planning). kIo / kCorruption from the store.
  Status load();

  // Validates the plan, checks the artifact exists, and records a new rollout (kCreated).
  // `created_by` (the operator's token name, "" for a local command) is recorded with it.
  Result<Rollout> create(RolloutPlan plan, std::string created_by = {});
  // Computes the target set and cohorts and starts the first stage. The rollout and all its
  // deployments are written in one batch. The planning (reading the fleet from the store,
  // choosing targets, building the strata) runs outside the engine's lock, so check-ins go on
  // meanwhile; an abort of the rollout is refused (kFailedPrecondition) until it is done.
  // kFailedPrecondition when another rollout of the same component that is not over holds any of
  // the targets (one at a time per device).
  Status start(const std::string& rollout_id);
  Status pause(const std::string& rollout_id);
  // Resumes a paused rollout, and lifts halts of policy `pause` on its strata.
  Status resume(const std::string& rollout_id);
  // Stops offering; devices not yet offered are cancelled.
  Status abort(const std::string& rollout_id);
  // Cancels what was not offered and offers the previous version to every updated device.
  // A rollout over long enough ago to be unloaded (keep_finished) is loaded again for it.
  // kFailedPrecondition while a later rollout of the component that is not over holds any
  // of those devices, or when an updated device cannot be sent back (the version it ran
  // before is not uploaded, or it ran none): the message names them, nothing changes.
  Status rollback(const std::string& rollout_id);

  // Check-in: the offer for `device` now, if any. Records the offer before returning it.
  // std::nullopt when there is nothing to do (or the device is busy: not kIdle).
  Result<std::optional<UpdateOffer>> offer_for(const Device& device);
  // The same for the registry's check-in path: the device's hot fields come ready, and
  // `cursor` (optional) remembers where its deployments are for the next check-in.
  Result<std::optional<UpdateOffer>> offer_for(const CheckInDevice& device,
                                               DeviceCursor* cursor = nullptr);

  // A device's status report about `version` of rollout `rollout_id`. Returns the
  // deployment's state afterwards. Repeated and late reports are accepted and change
  // nothing; kNotFound when the device has no deployment in that (loaded) rollout;
  // kConflict when the report makes no sense in the current state.
  // A "succeeded" whose `standby` is the version the device ran before marks the
  // deployment switch_back: a revert will need no download. `message` goes into the
  // deployment's history (cut to kMaxStepMessage bytes, control characters replaced).
  // A "withdraw" from a device that holds the image uninstalled (no window fits its install)
  // cancels the deployment: never offered, for the reason its message opens with.
  Result<DeploymentState> report(const Device& device, std::string_view rollout_id,
                                 std::string_view version, protocol::Report status,
                                 std::string_view message = {}, std::string_view standby = {});

  // Prefetches the deployments of devices that will check in soon, by their cursors. No
  // effect on behaviour.
  void warm(std::span<const DeviceCursor* const> cursors);

  // A device holding a verified image of `rollout_id` until its window checks in: it is
  // told to apply it (with its windows brought up to date), to wait, or to drop it. A
  // device told to drop an image it never installed has its deployment withdrawn
  // (cancelled, recorded before the answer): it counts as never offered, not as a failure.
  Result<HoldAnswer> hold_for(const CheckInDevice& device, std::string_view rollout_id);

  // Judges gates, settles, soaks and promotes stages and completes rollouts, at clock.now().
  // Runs by itself every tick_interval (an error then goes to the listener as kTickFailed);
  // public for tests and operators. Returns the first error, after every rollout has had its
  // turn, and only once its writes are durable (it holds no lock while it waits for them).
  Status tick();

  // The rollout as last persisted (loaded or not).
  Result<Rollout> get(const std::string& rollout_id);
  // Live progress of a loaded rollout, stratum by stratum.
  Result<RolloutProgress> progress(const std::string& rollout_id);
  // The cheap part of progress(): kept up to date incrementally, no per-stratum work.
  Result<RolloutSummary> summary(const std::string& rollout_id);
  // The engine's clock.
  Timestamp now() const { return clock_.now(); }
  // Per stage so far: its sizing and what held its offers back (see StageInsight).
  Result<std::vector<StageInsight>> stage_insights(const std::string& rollout_id);
  // Ids of the loaded rollouts, in creation order.
  std::vector<std::string> loaded_rollouts();
  // Forward offers made since the start (for metrics).
  uint64_t offers_made() const { return offers_made_.load(std::memory_order_relaxed); }

  // Deletes an artifact no rollout needs: kFailedPrecondition when a rollout installs it, or
  // could still send it back (a rollout of the same component that is not over, or is over
  // but still loaded and so may be rolled back); kNotFound when absent. Under the engine's
  // lock, so no create() can name the artifact between the check and the delete.
  Status remove_artifact(const std::string& name, const std::string& version);

  // A device left the fleet (decommissioned, or no longer accepted): its deployments that
  // have no outcome yet — pending, in flight, or waiting for a revert — are skipped with
  // `reason`, which takes them out of every gate's and stage's counts, so no rollout waits
  // for it. Outcomes it already reported stand. Idempotent. Errors from the store.
  Status device_left(std::string_view device_id, const std::string& reason);
  // A device that had left is in the fleet again (accepted once more): a revert may reach
  // it again.
  void device_returned(std::string_view device_id);

  // A site was written to the store: offers follow its new maintenance windows from now on.
  void site_changed(const Site& site);

  // Receives every EngineEvent. Called with the engine's lock held: it must not call back.
  void set_listener(std::function<void(const EngineEvent&)> listener);

 private:
  using Active = LoadedRollout;  // loaded_rollout.h
  struct Txn;
  class OfferAsker;

 public:
  enum class GateOutcome { kPassed, kHalted };

 private:
  Status load_rollout(Rollout r) REQUIRES(mu_);
  // A rollout's in-memory state from the store: its artifact and deployments, assembled.
  Result<std::unique_ptr<Active>> build(Rollout r) REQUIRES(mu_);
  void install(std::unique_ptr<Active> a, uint32_t index) REQUIRES(mu_);
  void next_epoch() REQUIRES(mu_);
  // Judges gate node `node` (docs/gates.md) and halts it when its test says so.
  Result<GateOutcome> judge_node(Active& a, uint32_t node) REQUIRES(mu_);
  Active* find(std::string_view rollout_id) REQUIRES(mu_);
  Status commit(Active& a, Txn& txn) REQUIRES(mu_);
  // options_.audit, when the change is one it is told of.
  Status audit(const Rollout& before, const Rollout& after) const;
  Status apply_event(Active& a, Txn& txn, uint32_t dep, DeploymentEvent event,
                     std::string_view message) REQUIRES(mu_);
  // The rollout's one way to change state: its table (rollout_machine.h) decides, in the
  // caller's transaction; the second form commits a transaction of its own.
  Status transition(Active& a, Txn& txn, RolloutEvent event,
                    const std::function<void(Rollout&)>& also = {}) REQUIRES(mu_);
  Status transition(Active& a, RolloutEvent event, const std::function<void(Rollout&)>& also = {})
      REQUIRES(mu_);
  struct HealthReads;  // engine_state.h
  Status tick_rollout(Active& a, HealthReads& health_answers) REQUIRES(mu_);
  // Where a device's deployments are in the loaded rollouts: (rollout index << 32) | index.
  std::vector<uint64_t> deployments_of(std::string_view device_id) const REQUIRES(mu_);
  // A device that left the fleet: its deployment `i` of `a`, if still open, is skipped.
  Status skip_departed(Active& a, uint32_t i, const std::string& reason) REQUIRES(mu_);
  // A fleet rollback's progress, told each time another tenth of its reverts is over.
  void tell_rollback_progress(Active& a, const StateCounts& all) REQUIRES(mu_);
  // Takes devices silent past their check-in contract out of the counts (or, within their
  // watch after a commit, counts them as failures): docs/gates.md, "Silent devices".
  Status judge_silence(Active& a, Timestamp now) REQUIRES(mu_);
  // Health gates (docs/gates.md, "Health gates"; engine_health.cc). The source is read
  // without the lock (it may read a disk for seconds while check-ins wait): what each
  // rollout's pass will ask is planned under the lock, read by read_health(), and the pairs
  // formed from the answers under the lock again.
  HealthReads plan_health_reads(Timestamp now) REQUIRES(mu_);
  static void read_health(HealthSource& source, HealthReads& reads);
  // Pairs each updated device whose window after its commit has passed with a not-yet-updated
  // device of its stratum, from `answers`, and writes the pair's values. A rollout the tick
  // did not plan waits for the next tick; so does a device whose values were not read (what
  // the plan expected changed meanwhile); one the source could not read waits a pass.
  Status form_health_pairs(Active& a, HealthReads& answers) REQUIRES(mu_);
  // The pass's predicates, shared by the plan and the pairing: deployment i is due for its
  // pair; deployment j could be the partner of a pair over [from, to).
  bool health_due(const Active& a, uint32_t i, Timestamp now) const REQUIRES(mu_);
  bool health_partner_free(const Active& a, uint32_t j, Timestamp from, Timestamp to) const
      REQUIRES(mu_);
  // Whether another loaded rollout's update of `device` overlaps [from, to): a pair over it
  // would not compare this build alone (an update of another component, say).
  bool touched_elsewhere(const Active& a, std::string_view device, Timestamp from,
                         Timestamp to) const REQUIRES(mu_);
  // Judges every gate node on every health metric, and halts the one a regression is on.
  Status judge_health_gates(Active& a) REQUIRES(mu_);
  // A health halt's reason: metric k's effect over node x's pairs, with its interval.
  std::string health_reason(const Active& a, uint32_t x, size_t k) const REQUIRES(mu_);
  // How the targets stand, from the incremental counts (no pass over the deployments).
  RolloutOutcome outcome_of(const Active& a) const REQUIRES(mu_);
  // The last stage is over and nothing is outstanding: completed, or completed_partial when
  // groups halted or devices failed. `why` opens the event's text.
  Status complete(Active& a, const std::string& why) REQUIRES(mu_);
  // `unexplained`: halted on its own evidence without being shown worse than its siblings.
  Status halt_node(Active& a, uint32_t node, const std::string& reason, bool unexplained = false)
      REQUIRES(mu_);
  Status fail_if_all_halted(Active& a) REQUIRES(mu_);
  // Updated devices a revert cannot reach: no previous image kept and the version they ran
  // not uploaded, or gone from the fleet.
  struct RevertGaps {
    uint32_t no_image = 0, departed = 0;
    RevertGaps& operator+=(const RevertGaps& o) {
      no_image += o.no_image;
      departed += o.departed;
      return *this;
    }
  };
  // Cancels the stratum's pending (and silent) deployments, with `cause` as their reason,
  // and, with policy kRollback, sends its updated devices back (`why` goes into their
  // history). Returns the updated devices it could not send back.
  RevertGaps revert_or_cancel(Active& a, Txn& txn, uint32_t stratum, FailurePolicy policy,
                              std::string_view cause, std::string_view why) REQUIRES(mu_);
  // Appends a step to deployment `d`'s history in `txn` (EngineOptions::history).
  void record_step(Txn& txn, const Deployment& d, DeploymentEvent event, std::string_view message);
  // kFailedPrecondition naming the rollout when another unfinished rollout of the same
  // component holds any of `device_ids`; `what` is the refused command ("start").
  Status refuse_overlap(const Active& a, std::span<const std::string_view> device_ids,
                        const char* what) REQUIRES(mu_);
  bool revert_possible(Active& a, const Deployment& d) REQUIRES(mu_);
  Result<std::optional<Artifact>> artifact(const std::string& name, const std::string& version)
      REQUIRES(mu_);
  Status ensure_site(std::string_view site) REQUIRES(mu_);
  // Whether rollout `r` may offer `device` its update now, as far as windows go: with
  // respect_windows, its site's window is open (download_in_window) or opens within
  // download_ahead. Cheap: cached per site.
  bool window_allows_offer(const Rollout& r, std::string_view site, Timestamp now) REQUIRES(mu_);
  // The windows an offer of `r` to `device` carries (UpdateOffer::windows); std::nullopt
  // when the device has a constraint but no window within a week.
  std::optional<std::vector<TimeRange>> offer_windows(const Rollout& r, const CheckInDevice& device,
                                                      Timestamp now) REQUIRES(mu_);
  void emit(EngineEvent::Kind kind, const Active& a, std::string text) REQUIRES(mu_);
  void schedule_tick();

  Store& store_;
  Clock& clock_;
  EngineOptions options_;
  // The engine's lock; a DeviceService takes its registry's lock before this one (a
  // check-in), never after (the order is base/lock_order.h's, checked at every lock()).
  Mutex mu_{LockLevel::kRolloutEngine};
  // One start() plans at a time.
  Mutex start_mu_ ACQUIRED_BEFORE(mu_){LockLevel::kRolloutStart};
  std::vector<std::unique_ptr<Active>> active_ GUARDED_BY(mu_);
  FlatIndex by_device_ GUARDED_BY(mu_);  // device id -> (rollout index << 32) | deployment index
  uint32_t epoch_ GUARDED_BY(mu_) = 1;   // moves whenever by_device_ or active_ changes
  std::unordered_map<std::string, std::optional<Artifact>> artifacts_ GUARDED_BY(mu_);
  WindowCache windows_ GUARDED_BY(mu_);
  // Devices that left the fleet (device_left): no revert is sent to them, since they will
  // not check in to take it; a rollback counts them as not sent back instead.
  std::unordered_set<std::string> left_ GUARDED_BY(mu_);
  // Devices that left while a start() planned from its snapshot of the fleet (which still
  // holds them): the start takes them out of its rollout once it is installed.
  std::optional<std::map<std::string, std::string>> left_while_planning_
      GUARDED_BY(mu_);  // id -> reason
  std::function<void(const EngineEvent&)> listener_ GUARDED_BY(mu_);
  Clock::TimerId timer_ = 0;
  bool ticking_ = false;
  std::atomic<uint64_t> offers_made_{0};
};

}  // namespace drover
