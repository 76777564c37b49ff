// Remediator: the remediation rules (health/remediation.h) run on the live fleet. Every
// tick it judges each device's conditions from telemetry freshness, asks decide() what to do
// about each rule, and does it: opens an alert, queues the next step's remote command,
// escalates to a person, or resolves the alert when the condition has cleared.
//
// Nothing is done twice across restarts. What the rules know lives in the store: the alert
// (the episode: which commands were queued for it, whether a person has it) and the commands
// themselves (whether the last one ended, and when). How long a condition has held is the
// shorter of what the device's data says (how far past its telemetry contract it is) and how
// long the server has seen it hold: a device back from an outage, its backlog still on the
// way, is not stuck. That count outlives a restart: a condition seen to hold for
// `persist_after` is written to the store (its held condition), and a server back within
// `resume_gap` of its last tick goes on from it, the time it was down not counted — so a
// server restarted every few hours still acts on a rule that waits a day. Down longer, every
// count starts again (what happened meanwhile is not known), so a first action comes later,
// never twice; a person's close of an alert is kept whatever the gap. A step's command has a
// deterministic id ("<alert id>-<step>"), so a crash between queuing it and recording it in the
// alert queues nothing new when the step is decided again.
//
// Thread-safety: all methods may be called from several threads (one tick at a time).
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/clock.h"
#include "base/mutex.h"
#include "base/result.h"
#include "fleet/command_queue.h"
#include "fleet/device_service.h"
#include "health/remediation.h"
#include "model/alert.h"
#include "store/store.h"
#include "telemetry/telemetry_service.h"

namespace drover::health {

struct RemediatorOptions {
  std::vector<RemediationRule> rules;
  RemediationLimits limits;
  // How often the rules on a device's health (is_health_condition) read it: judging every
  // device reads a week of its series, so it is done this often, not every tick (and a read
  // that failed is tried again this much later). A rule on health must give a step at least
  // this long to work (`verify`): it is judged by a read made after it.
  Duration health_every = minutes(5);
  // A device without a telemetry contract is never offline by its contract: for the rules on
  // health it is out of reach once quiet this long (as device health counts it lost).
  Duration lost_after = hours(72);
  // update_stuck: a device's report of a download under way counts while its check-in is no
  // older than this (an agent whose download fails checks in at least every poll interval
  // or backoff, an hour at most by default); older, nothing is known of the download.
  Duration report_fresh = hours(2);
  // Held times outlive a restart (above): a condition is written once it has held this long,
  // or a quarter of its rule's `after` if shorter (a brief one is not worth a write), and a
  // server back within resume_gap of its last tick resumes the counts (drover serve adds its
  // tick interval). A count kept from before a restart waits for the first look that can see
  // its condition — one that finds it present goes on from it, the wait not counted; any
  // other drops it — for report_fresh at most (a device's first check-in after the restart
  // tells of its download).
  Duration persist_after = minutes(10);
  Duration resume_gap = minutes(15);
};

// What the remediator found of the counts kept from before its start.
struct ResumeReport {
  bool resumed = false;         // back within resume_gap: the counts go on
  std::optional<Duration> gap;  // since the last heartbeat (a tick) before (none: no tick before)
  size_t conditions = 0;        // counts kept (none when not resumed: all start again)
  size_t closes = 0;            // a person's closes of rules on health, kept whatever the gap
};

// A critical reason of a device's health, as the rules on health read it.
struct HealthFinding {
  std::string device;
  std::string kind;  // the reason's kind: "memory", "disk", "battery", "reboots"
  std::string text;  // what was found, with its figures
};

struct HealthFindings {
  std::vector<HealthFinding> found;
  // Devices whose health could not be read: nothing is known of their conditions.
  std::vector<std::string> unreadable;
};

// Where the rules on a device's health read it: HealthView in drover serve.
class DeviceHealthSource {
 public:
  virtual ~DeviceHealthSource() = default;
  // The critical reasons of every device in service, of the kinds `watched` names (health
  // conditions the rules watch). A source may leave out devices that cannot hold any of them
  // (frozen alone: devices whose profile declares no frozen check).
  virtual Result<HealthFindings> critical_findings(const std::set<Condition>& watched) const = 0;
};

// What one tick did.
struct TickReport {
  size_t devices = 0;  // judged
  size_t opened = 0, commands = 0, escalated = 0, resolved = 0;
  // Why the device's health could not be read this tick (empty: it was, or was not due): the
  // rules on health wait until a read succeeds (tried again health_every later).
  std::string health_error;
};

// The alerts as their audience outside the server (the alert webhook) needs them: the list,
// and a record of which version of each its receiver has.
class AlertRecords {
 public:
  virtual ~AlertRecords() = default;
  // The alerts the query names, as the store has them; the store's error when it fails.
  virtual Result<std::vector<Alert>> list(const Store::AlertQuery& query) = 0;
  // The webhook is done with `version` of alert `id` (see Remediator::mark_notified).
  virtual Status mark_notified(std::string_view id, uint64_t version) = 0;
  // The same for each (id, version) of `done` (a starting webhook's stale backlog). This
  // default marks them one at a time; the Remediator writes them all in one batch.
  virtual Status mark_notified_all(std::span<const std::pair<std::string, uint64_t>> done) {
    for (const auto& [id, version] : done) DROVER_TRY(mark_notified(id, version));
    return ok_status();
  }
  // Returns once every change told so far is durable (kIo when the store failed): nothing
  // leaves the server that a crash could take back.
  virtual Status settle() = 0;
};

class Remediator final : public AlertRecords {
 public:
  // kInvalidArgument for a rule that does not validate or two of one name.
  static Result<std::unique_ptr<Remediator>> create(Store& store, Clock& clock,
                                                    const telemetry::FreshnessSource& telemetry,
                                                    CommandQueue& commands,
                                                    RemediatorOptions options);

  // One pass over the fleet. Errors from the store stop the pass (what was written stays
  // written; the next tick carries on from it).
  Result<TickReport> tick() EXCLUDES(mu_);

  // A person has seen it. kNotFound; kFailedPrecondition for a resolved alert.
  Result<Alert> acknowledge(std::string_view id, std::string_view by) EXCLUDES(mu_);
  // A person closes it (whatever the condition): nothing more is done for this episode; if
  // the condition still holds, a new one opens after the rule's `after`. kNotFound;
  // kFailedPrecondition when already resolved.
  Result<Alert> resolve(std::string_view id, std::string_view by, std::string_view note)
      EXCLUDES(mu_);

  Result<std::optional<Alert>> get(std::string_view id);
  Result<std::vector<Alert>> list(const Store::AlertQuery& query) override;

  // Where the rules on a device's health read it; without one (null), their conditions never
  // hold. Must outlive the remediator's ticks.
  void set_health_source(const DeviceHealthSource* source) EXCLUDES(mu_);
  // Where the rules on a stuck update and on a failed configuration read what each device
  // reports at its check-ins; without one (null), update_stuck and config_failed never hold.
  // Must outlive the remediator's ticks.
  void set_update_states(const DeviceService* devices) EXCLUDES(mu_);

  // Told every change of an alert, after it was written (from the thread that made it, with
  // the remediator's lock held: the listener must not call back into it).
  void set_listener(std::function<void(const Alert&)> listener) EXCLUDES(mu_);

  // The alert webhook is done with `version` of alert `id` (its receiver accepted it, or it
  // was given up on): recorded as its notified_version unless a newer one already was. The
  // alert's version and updated_at stay as they are, and the listener is not told. The write
  // is queued under the lock and waited for after it. kNotFound for no such alert;
  // kFailedPrecondition for a version the alert never had.
  Status mark_notified(std::string_view id, uint64_t version) override EXCLUDES(mu_);
  // As mark_notified for each, checked first and written in one batch (one commit, however
  // many): all or none. The first error found; nothing is written then.
  Status mark_notified_all(std::span<const std::pair<std::string, uint64_t>> done) override
      EXCLUDES(mu_);
  Status settle() override { return store_.settle_all(); }

  // What was resumed at create(): for the log line that says why counts went on or not.
  ResumeReport resumed() const { return resume_; }

  const std::vector<RemediationRule>& rules() const { return options_.rules; }
  const RemediationLimits& limits() const { return options_.limits; }

 private:
  Remediator(Store& store, Clock& clock, const telemetry::FreshnessSource& telemetry,
             CommandQueue& commands, RemediatorOptions options);
  // Writes `alert` (updated_at now) — with `held`, in the same batch —, keeps it in recent_,
  // and tells the listener.
  Status save(Alert& alert, const HeldCondition* held = nullptr) REQUIRES(mu_);
  // The alert as last written: from recent_, else from the store (which then has it durable:
  // it was not changed by this process lately).
  Result<std::optional<Alert>> current(std::string_view id) REQUIRES(mu_);
  // The configured rule of that name, or null.
  const RemediationRule* rule_named(std::string_view name) const;
  // A count kept from before the start (`since`, shifted by the gap), as it stands at `now`:
  // the time since the start, before a look could see its condition, not counted.
  Timestamp waited(Timestamp since, Timestamp now) const REQUIRES(mu_);
  // How long a condition of the rule holds before its count is written: persist_after, or a
  // quarter of the rule's `after` when that is shorter (a count must be kept well before it
  // could make a step).
  Duration persist_after(std::string_view rule) const;
  // The held conditions stored at start (as create() found them).
  void load_held(std::vector<HeldCondition> rows, Timestamp now) REQUIRES(mu_);
  // Writes what changed of the held times since the last tick: a count that has held
  // persist_after, a person's close of a rule on health, a count gone, the heartbeat.
  Status write_held(Timestamp now) REQUIRES(mu_);
  // The episode an open alert records, with when this server began watching.
  Result<Episode> episode_of(const Alert& alert) REQUIRES(mu_);
  // Rule-queued commands of the device created in the last 24 hours.
  Result<size_t> actions_last_day(const std::string& device_id);
  // Closes an open alert no rule judged this tick (its device or its rule is gone).
  Status close_unjudged(Alert& alert, Timestamp now, TickReport& report) REQUIRES(mu_);
  // Decides and acts on one rule for one device; `found` is what a rule on health saw.
  Status judge(const RemediationRule& rule, const telemetry::DeviceFreshness& f, bool present,
               Duration held_for, bool out_of_reach, Alert* open, const std::string& found,
               TickReport& report) REQUIRES(mu_);
  // The health findings as of now: read again once health_every has passed since the last
  // read (outside the lock: it reads every device's series), else the last read's.
  Status refresh_health() EXCLUDES(mu_);

  Store& store_;
  Clock& clock_;
  const telemetry::FreshnessSource& telemetry_;
  CommandQueue& commands_;
  RemediatorOptions options_;
  const bool offline_rule_;  // some rule watches for devices out of reach
  Mutex mu_{LockLevel::kRemediator};
  std::function<void(const Alert&)> listener_ GUARDED_BY(mu_);
  // Every unresolved alert, and each resolved one for a while after its last change. This,
  // not the store, is what decisions read: the store's reads see only durable writes, and a
  // change made under this lock (a person's acknowledgement, a tick's step) may still be on
  // its way to the disk when the next decision is made.
  std::map<std::string, Alert, std::less<>> recent_ GUARDED_BY(mu_);
  // (device, rule) -> since when the condition counts as held, for those that hold now: when
  // the server first saw a device check in without data (kept across a restart within
  // resume_gap, else it starts again: an action comes later, never twice), or when a person
  // closed its alert. A condition has held for the shorter of this and what its data says.
  std::map<std::pair<std::string, std::string>, Timestamp> present_since_ GUARDED_BY(mu_);
  // Since when the server has watched without a break longer than resume_gap: a stall
  // (RemediationLimits) counts from no earlier than that, so a server that was down is not
  // taken for a device that was.
  Timestamp watching_since_ GUARDED_BY(mu_);
  // A held time as the store keeps it.
  struct Kept {
    Timestamp since;
    bool closed_by_person = false;
    friend bool operator==(const Kept&, const Kept&) = default;
  };
  // What the store has: (device, rule) -> its held condition.
  std::map<std::pair<std::string, std::string>, Kept> stored_ GUARDED_BY(mu_);
  // Counts kept from before the start that no look has settled yet: device -> rule -> kept
  // (shifted by the time the server was down; a person's closes go to closed_by_person_ at
  // once). Dropped at report_fresh after the start.
  std::map<std::string, std::map<std::string, Kept>, std::less<>> pending_ GUARDED_BY(mu_);
  Timestamp started_ GUARDED_BY(mu_);
  ResumeReport resume_;                       // set by create(), read only after
  const std::set<Condition> health_watched_;  // the health conditions the rules watch
  const bool update_rule_;                    // some rule watches for a stuck update
  const bool config_rule_;                    // some rule watches for a failed configuration
  const DeviceService* devices_ GUARDED_BY(mu_) = nullptr;
  const DeviceHealthSource* health_ GUARDED_BY(mu_) = nullptr;
  // The last health read: (device, kind) -> the reason's text, the devices it could not
  // read, when it was made, and when a read was last tried.
  std::map<std::pair<std::string, std::string>, std::string> findings_ GUARDED_BY(mu_);
  std::set<std::string, std::less<>> unreadable_ GUARDED_BY(mu_);
  std::optional<Timestamp> findings_read_ GUARDED_BY(mu_);
  std::optional<Timestamp> health_tried_ GUARDED_BY(mu_);
  // (device, rule on health) -> when a person closed its alert while the condition may still
  // hold: no new episode until a read made after that saw it clear (a reboot loop counts the
  // day's boots for a day after it is mended).
  std::map<std::pair<std::string, std::string>, Timestamp> closed_by_person_ GUARDED_BY(mu_);
};

}  // namespace drover::health
