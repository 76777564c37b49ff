// A rollout: the plan an operator writes (what, to whom, in which stages, under which gates
// and constraints) and the persistent runtime records the engine keeps for it: the rollout
// itself and one Deployment per targeted device.
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "base/clock.h"
#include "base/result.h"
#include "model/device.h"

namespace drover {

// ---------------------------------------------------------------- the plan

enum class FailurePolicy : uint8_t {
  kPause,     // stop offering in the failing stratum; an operator may resume it
  kAbort,     // stop the stratum for good; devices not yet offered are cancelled
  kRollback,  // abort, and offer the previous version to devices that installed the new one
};
const char* to_string(FailurePolicy p);
Result<FailurePolicy> parse_failure_policy(std::string_view s);

// The attributes a stratum is made of. Cohorts sample every stratum; gates judge each one.
enum class StratumDimension : uint8_t { kHardwareRevision, kSite, kConnectivity };
const char* to_string(StratumDimension d);
Result<StratumDimension> parse_stratum_dimension(std::string_view s);

// Which devices a rollout may reach. An empty list means "any"; `tags` must all be present.
struct DeviceFilter {
  std::vector<std::string> device_types;
  std::vector<std::string> hardware_revisions;
  std::vector<std::string> sites;
  std::vector<std::string> connectivity;
  std::vector<std::string> tags;
  bool matches(const Device& d) const;
  friend bool operator==(const DeviceFilter&, const DeviceFilter&) = default;
};

// Stages are cumulative: "canary 1%, early 10%, broad 50%, all 100%". A stage is sized by
// `percent` of each stratum, or by `count` devices over the whole target set (spread over
// the strata in proportion). The last stage must reach everything (100% or the whole set).
struct StageSpec {
  std::string name;
  double percent = 0;  // (0, 100]; used when count == 0
  uint32_t count = 0;  // > 0 selects count sizing
  Duration soak{0};    // wait after the stage settles before the next one starts
  friend bool operator==(const StageSpec&, const StageSpec&) = default;
};

// How a rollout judges the outcomes of its devices (docs/gates.md). Every group of devices
// (the whole target set, each hardware revision, each site within it, ...) is watched by a
// sequential test that may look after every outcome. `max_failure_rate` is the tolerance:
// a group whose true failure rate is above it is halted once its outcomes show it (how soon
// depends on how far above; docs/gates.md has the figures). `acceptable_failure_rate` is
// what a healthy build fails at anyway (flaky power, bad flash): when every group's true
// rate is at most that, the probability that the rollout halts anything, over all its
// groups and all its looks, is at most 1 - `confidence`. Between the two lies the zone
// where either decision is tolerable.
// ---------------------------------------------------------------- health gates
// (docs/gates.md, "Health gates"): updated devices compared with not-yet-updated devices of
// their stratum on a health metric.

// Which way a health metric gets worse.
enum class HealthDirection : uint8_t {
  kHigherIsWorse,  // drain, reboots, crashes, memory growth, anomalies
  kLowerIsWorse,   // battery slope, signal strength, free disk
};
const char* to_string(HealthDirection d);  // "higher", "lower"
Result<HealthDirection> parse_health_direction(std::string_view s);

// What one window of a device's samples of the metric becomes: their mean, their slope (a
// least-squares line, per day), or a counter's increase (last minus first, a reset counting
// from zero).
// kAnomalies: the generic anomaly detector's alarms a day (docs/health.md, "The generic
// detector") — an anomaly rate, each series learnt over the three days before the window.
enum class HealthMeasure : uint8_t { kMean, kSlope, kIncrease, kAnomalies };
const char* to_string(HealthMeasure m);  // "mean", "slope", "increase", "anomalies"
Result<HealthMeasure> parse_health_measure(std::string_view s);

// A health metric a rollout's gates watch: a telemetry metric (the device's own series,
// every label set), how a window of it is measured, and which way is worse.
struct HealthMetric {
  std::string metric;
  HealthMeasure measure = HealthMeasure::kSlope;
  HealthDirection worse = HealthDirection::kHigherIsWorse;
  friend bool operator==(const HealthMetric&, const HealthMetric&) = default;
};
inline constexpr size_t kMaxHealthMetrics = 8;

// One pair of a health gate on one metric: the updated device's change over the pair's
// windows, and its partner's (NaN: no data on that side).
struct HealthPair {
  double updated = std::numeric_limits<double>::quiet_NaN();
  double control = std::numeric_limits<double>::quiet_NaN();
  friend bool operator==(const HealthPair& a, const HealthPair& b) {
    auto same = [](double x, double y) { return x == y || (x != x && y != y); };
    return same(a.updated, b.updated) && same(a.control, b.control);
  }
};

struct GatePolicy {
  double max_failure_rate = 0.05;      // 0: no failure tolerated, any one halts (after min_sample)
  double acceptable_failure_rate = 0;  // 0: a third of max_failure_rate
  double confidence = 0.95;
  // No group is halted before this many of its devices have an outcome; a canary's pacing
  // starts at this many devices in flight per group of the first dimension.
  uint32_t min_sample = 5;
  // Health gates: each metric's test shares the false-halt budget with the failure test
  // (split equally), and each updated device is paired once its window after the commit
  // has passed (and an hour more, for late telemetry).
  std::vector<HealthMetric> health;
  Duration health_window = hours(24);  // within [1h, 14d]
  double acceptable() const {
    return acceptable_failure_rate > 0 ? acceptable_failure_rate : max_failure_rate / 3;
  }
  friend bool operator==(const GatePolicy&, const GatePolicy&) = default;
};

// With `respect_windows`, the steps that interrupt a device (install, reboot, commit) happen
// only inside its site's maintenance windows, narrowed by its own quiet hours: the offer
// carries the device's next windows and the device holds the verified image until one
// opens that is long enough. The download runs ahead of the window (when it opens within
// `download_ahead`) or, with `download_in_window`, only inside it.
struct DeliveryConstraints {
  bool respect_windows = true;
  bool download_in_window = false;
  Duration download_ahead = hours(24);  // 0 < download_ahead <= 7 days
  double max_per_minute = 0;            // offers per minute over the whole rollout; 0 = no limit
  double ramp_from_per_minute = 0;      // with ramp_over: the rate starts here and grows linearly
  Duration ramp_over{0};                //   to max_per_minute over this long after the start
  uint32_t max_in_flight = 0;           // devices offered but not finished; 0 = no limit
  friend bool operator==(const DeliveryConstraints&, const DeliveryConstraints&) = default;
};

// How long a device may go without checking in before a rollout stops waiting for it (its
// check-in contract). A device whose turn has come, or whose update is under way, and that
// stays silent longer leaves the counts of gates and settling (state `silent`) until it is
// heard again; one that goes silent within its watch after committing counts as a failure
// of the new version (state `lost`). A sleeping sensor or a satellite link that checks in
// twice a day needs a longer contract than a wired controller: `by_connectivity` sets one
// per connectivity class (docs/gates.md, "Silent devices").
struct CheckInContract {
  Duration max_silence = hours(24);  // 0: nobody is ever judged silent
  struct Class {
    std::string connectivity;
    Duration max_silence{0};
    friend bool operator==(const Class&, const Class&) = default;
  };
  std::vector<Class> by_connectivity;  // unique classes
  // The contract of a device of connectivity class `c`.
  Duration for_connectivity(std::string_view c) const;
  friend bool operator==(const CheckInContract&, const CheckInContract&) = default;
};
inline constexpr size_t kMaxContractClasses = 32;

struct RolloutPlan {
  std::string name;
  std::string artifact_name;
  std::string artifact_version;
  DeviceFilter filter;
  std::vector<StratumDimension> stratify_by{StratumDimension::kHardwareRevision,
                                            StratumDimension::kSite,
                                            StratumDimension::kConnectivity};
  std::vector<StageSpec> stages;
  GatePolicy gate;
  FailurePolicy on_failure = FailurePolicy::kRollback;
  DeliveryConstraints constraints;
  // A stage settles (its soak starts) once this share of its cohort has finished.
  double settle_fraction = 0.9;
  // Each stratum puts at least this many devices in the first stage (when it has them).
  uint32_t min_per_stratum = 0;
  // After a device commits, a failure it reports within this long (unhealthy, say) counts
  // against the new version, and the rollout stays `watching` after its last stage until
  // the watch has passed, still judging, halting and rolling back. 0: no watch.
  Duration watch{0};
  // The target version may be older than what devices run: a deliberate downgrade. Only an
  // admin may create such a rollout, and the rollout records who did (Rollout::created_by).
  bool allow_downgrade = false;
  CheckInContract contract;
  friend bool operator==(const RolloutPlan&, const RolloutPlan&) = default;
};

// Checks every field; a failure names the field and the rule.
Status validate(const RolloutPlan& p);

// ---------------------------------------------------------------- runtime records

enum class RolloutState : uint8_t {
  kCreated,           // planned, not started
  kRunning,           // stages advancing
  kPaused,            // operator pause: no new offers anywhere
  kCompleted,         // the last stage finished: every target updated or excluded by a rule
  kFailed,            // every stratum halted
  kAborted,           // operator abort: pending devices cancelled
  kRollingBack,       // operator rollback: every updated device is offered the previous version
  kRolledBack,        // the operator rollback finished
  kWatching,          // every stage done; gates still judge late failures until watch_until
  kCompletedPartial,  // the last stage finished, but groups halted or devices failed
  // An operator rollback ended with devices still on the new version (their revert failed,
  // or they left the fleet first). Another rollback retries those that can be sent back.
  kRollbackIncomplete,
  kCount,  // not a state: how many there are
};
const char* to_string(RolloutState s);
Result<RolloutState> parse_rollout_state(std::string_view s);
bool is_terminal(RolloutState s);

struct StageProgress {
  std::string name;
  Timestamp started_at{};
  Timestamp settled_at{};   // soak began; zero while not settled
  Timestamp finished_at{};  // promoted or the rollout ended; zero while running
  uint32_t devices = 0;     // cohort size (new devices this stage adds)
  friend bool operator==(const StageProgress&, const StageProgress&) = default;
};

// A stratum that stopped receiving the update.
struct HaltedStratum {
  std::string key;                // the gate node, e.g. "hardware_revision=rev-c|site=bldg-017"
  std::string hardware_revision;  // the stratum's attributes (empty when not stratified by it)
  std::string site;
  std::string connectivity;
  std::string reason;
  FailurePolicy policy = FailurePolicy::kPause;
  Timestamp halted_at{};
  // Halted on its own evidence without being shown worse than the rest of its parent: the
  // parent then judges what is left against a plain 5% test (docs/gates.md, "Blame").
  bool unexplained = false;
  friend bool operator==(const HaltedStratum&, const HaltedStratum&) = default;
};

struct Rollout {
  std::string id;
  RolloutPlan plan;
  RolloutState state = RolloutState::kCreated;
  uint32_t stage = 0;  // index of the current stage
  Timestamp created_at{};
  Timestamp started_at{};
  Timestamp finished_at{};
  std::vector<StageProgress> stages;  // one per stage started so far
  std::vector<HaltedStratum> halted;
  uint32_t targets = 0;  // devices in the target set
  // Gates count only devices first offered at or after this instant. An operator's resume
  // sets it: what happened before was seen by whoever resumed, and judging it again would
  // halt the resumed strata on the spot. Each window is a fresh sequential test
  // (docs/gates.md).
  Timestamp gates_from{};
  Timestamp watch_until{};  // set on entering kWatching: when the watch ends
  std::string created_by;   // who created it: the operator API token's name ("" locally)
  friend bool operator==(const Rollout&, const Rollout&) = default;
};

enum class DeploymentState : uint8_t {
  kPending,  // in a cohort, not yet offered
  kOffered,  // the offer was handed to the device
  kDownloading,
  kInstalling,
  kRebooting,      // trial boot of the new image
  kSucceeded,      // committed
  kFailed,         // the install failed; the device still runs the previous version
  kUnhealthy,      // committed, then reported itself unhealthy; runs the new version
  kRolledBack,     // the device's trial boot failed and it returned to the previous image
  kCancelled,      // never offered: the stratum or the rollout stopped
  kSkipped,        // no longer compatible when its turn came
  kRevertPending,  // fleet rollback: the previous version is to be offered
  kReverting,      // the previous version was offered / is being installed
  kReverted,       // back on the previous version
  kRevertFailed,
  // Its turn had come (pending or in flight), then it stayed silent past its check-in
  // contract: out of the gates' and settling's counts until it is heard again.
  kSilent,
  // Committed, then went silent past its contract within its watch: a failure of the new
  // version (as far as anyone knows it still runs it).
  kLost,
  kCount,  // not a state: how many there are
};
const char* to_string(DeploymentState s);
Result<DeploymentState> parse_deployment_state(std::string_view s);

// How a rollout's targets ended up (or stand now), in the words an operator needs: every
// target is in exactly one of these. The API, the CLI and the simulator's report all show
// this (docs/scenarios.md, "The report"; the JSON in docs/api/operator.md).
struct RolloutOutcome {
  uint32_t targets = 0;
  uint32_t updated = 0;             // run the new version
  uint32_t install_failed = 0;      // the install failed; still on the previous version
  uint32_t fell_back = 0;           // the trial boot failed; the device fell back by itself
  uint32_t unhealthy = 0;           // committed, then reported itself unhealthy; runs it still
  uint32_t unhealthy_reverted = 0;  // reported unhealthy, then sent back by the fleet
  uint32_t reverted = 0;            // healthy on the new version, sent back by a fleet rollback
  uint32_t reverting = 0;           // a fleet revert is due or under way
  uint32_t revert_failed = 0;       // a fleet revert failed or could not happen
  uint32_t skipped = 0;             // excluded by a rule since planning (reason per device)
  uint32_t never_offered = 0;       // cancelled: its group halted, or the rollout stopped
  uint32_t pending = 0;             // not yet offered
  uint32_t in_flight = 0;           // offered, no outcome yet
  uint32_t silent = 0;       // silent past its check-in contract before an outcome: not counted
  uint32_t went_silent = 0;  // committed, then silent past its contract within its watch
  // Not a bucket of its own: of `reverting` and `revert_failed`, those the new version
  // failed on (unhealthy, or silent in the watch) before the fleet tried to send them back.
  uint32_t failed_in_revert = 0;
  // The new version failed on these: install_failed + fell_back + unhealthy +
  // unhealthy_reverted + went_silent + failed_in_revert.
  uint32_t failed() const {
    return install_failed + fell_back + unhealthy + unhealthy_reverted + went_silent +
           failed_in_revert;
  }
  // Why devices were never offered the update: its group halted, the operator aborted, the
  // image was withdrawn before the install, ... (the reasons of never_offered).
  struct NeverOffered {
    std::string reason;
    uint32_t devices = 0;
    friend bool operator==(const NeverOffered&, const NeverOffered&) = default;
  };
  std::vector<NeverOffered> never_offered_why;  // most devices first
  struct Halted {
    std::string group;  // the gate node: "all", "hardware_revision=rev-c", ...
    std::string reason;
    uint32_t devices = 0;        // targets in the group
    uint32_t never_offered = 0;  // of those, cancelled before an offer
    // Of those, devices a rollback policy could not send back: they still run the new
    // version (no previous image kept, and the previous version is not uploaded; or they
    // left the fleet).
    uint32_t not_reverted = 0;
    friend bool operator==(const Halted&, const Halted&) = default;
  };
  std::vector<Halted> halted;
  friend bool operator==(const RolloutOutcome&, const RolloutOutcome&) = default;
};

// Field order matters on the check-in path: device_id, state and stage are read by every
// check-in and sit together at the front.
struct Deployment {
  std::string device_id;
  DeploymentState state = DeploymentState::kPending;
  uint32_t stage = 0;  // the stage whose cohort holds the device
  std::string rollout_id;
  std::string stratum;       // stratum key
  std::string from_version;  // what the device ran when first offered: the revert target
  Timestamp updated_at{};
  Timestamp offered_at{};  // the first forward offer; zero until then
  uint32_t offers = 0;     // how many times an offer (or re-send) went out
  std::string error;       // last failure reason
  // The device keeps from_version in its other A/B slot (it said so when it committed the
  // new version): a fleet revert switches back to that slot, with no download.
  bool switch_back = false;
  // Health gates (GatePolicy::health): once the device committed and its window after the
  // commit passed, the not-yet-updated device of its stratum it was paired with ("" when
  // none could be) and, per plan metric, the pair's values. Empty until then; written once
  // and never changed (the sequential test needs the order in which pairs arrived fixed).
  std::string health_partner;
  std::vector<HealthPair> health;
  friend bool operator==(const Deployment&, const Deployment&) = default;
};

// One step in a deployment's history: what happened (an offer, a device report, an
// operator's or a gate's decision), when, the state it left the deployment in, and the
// message that came with it (the agent's words for a failure, a health check's exit code
// and output tail). Kept for every deployment; read per device on the operator API.
struct DeploymentStep {
  std::string rollout_id;
  std::string device_id;
  Timestamp at{};
  std::string event;  // a DeploymentEvent's name: offer, downloading, succeeded, revert, ...
  DeploymentState state = DeploymentState::kPending;  // after the step
  std::string message;
  friend bool operator==(const DeploymentStep&, const DeploymentStep&) = default;
};
// A step's message is cut to this many bytes (a health check's output tail fits).
inline constexpr size_t kMaxStepMessage = 2048;

}  // namespace drover
