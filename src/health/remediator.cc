#include "health/remediator.h"

#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "base/units.h"
#include "store/group_commit.h"

namespace drover::health {
namespace {

// How long a resolved alert stays in memory after its last change.
constexpr Duration kKeepResolved = minutes(10);

// Whether `condition` holds for a device, and for how long: how far past its telemetry
// contract its data (no_data) or its last contact (offline) is. A device that never sent a
// sample is not judged for no_data (it may not send telemetry at all), nor one never heard
// from for offline.
void observe(Condition condition, const telemetry::DeviceFreshness& f, bool* present,
             Duration* held) {
  *present = false;
  *held = Duration{0};
  if (f.contract.report_every <= Duration{0}) return;  // no contract: nothing to judge by
  const Duration stale = f.contract.effective_stale_after();
  auto past = [&](double age_s) {
    return std::max(Duration{0}, Duration(static_cast<int64_t>(age_s * 1000)) - stale);
  };
  switch (condition) {
    case Condition::kNoData:
      if (f.freshness == Freshness::kStale && f.data_age_s >= 0) {
        *present = true;
        *held = past(f.data_age_s);
      }
      return;
    case Condition::kOffline:
      if (f.freshness == Freshness::kOffline && f.contact_age_s >= 0) {
        *present = true;
        *held = past(f.contact_age_s);
      }
      return;
    case Condition::kMemory:
    case Condition::kDisk:
    case Condition::kBattery:
    case Condition::kReboots:
    case Condition::kFrozen:
    case Condition::kUpdateStuck:
    case Condition::kConfigFailed:
    case Condition::kCount:
      return;  // read from the device's health or its check-ins, not its freshness
  }
}

std::string summary_of(Condition condition, const telemetry::DeviceFreshness& f) {
  const auto ago = [](double s) {
    return format_duration(Duration(static_cast<int64_t>(s) * 1000));
  };
  if (condition == Condition::kNoData) {
    return "checks in (last " + ago(f.contact_age_s) + " ago) but its newest sample is " +
           ago(f.data_age_s) + " old; its contract says every " +
           format_duration(f.contract.report_every);
  }
  if (condition == Condition::kUpdateStuck) {
    return "an update download under way gets nowhere: the device reports downloading at the "
           "check-ins its agent makes between failed attempts";
  }
  return "not heard from for " + ago(f.contact_age_s) + "; its contract says every " +
         format_duration(f.contract.report_every);
}

}  // namespace

Result<std::unique_ptr<Remediator>> Remediator::create(Store& store, Clock& clock,
                                                       const telemetry::FreshnessSource& telemetry,
                                                       CommandQueue& commands,
                                                       RemediatorOptions options) {
  std::set<std::string> names;
  if (options.health_every <= Duration{0}) return invalid_argument("health_every must be positive");
  if (options.report_fresh <= Duration{0}) return invalid_argument("report_fresh must be positive");
  if (options.persist_after < Duration{0} || options.resume_gap < Duration{0}) {
    return invalid_argument("persist_after and resume_gap must not be negative");
  }
  for (const RemediationRule& rule : options.rules) {
    DROVER_TRY(validate(rule));
    if (!names.insert(rule.name).second) {
      return invalid_argument("two remediation rules are named '" + rule.name + "'");
    }
    if (is_health_condition(rule.condition) && rule.verify < options.health_every) {
      return invalid_argument("remediation rule " + rule.name + ": verify (" +
                              format_duration(rule.verify) + ") must be at least " +
                              format_duration(options.health_every) +
                              " for a rule on health: a step is judged by a read of health "
                              "made after it, and health is read that often");
    }
  }
  std::unique_ptr<Remediator> made(
      new Remediator(store, clock, telemetry, commands, std::move(options)));
  Store::AlertQuery query;
  query.unresolved_only = true;
  query.limit = SIZE_MAX;
  auto unresolved = store.list_alerts(query);
  if (!unresolved.ok()) return unresolved.error();
  auto held = store.list_held_conditions();
  if (!held.ok()) return held.error();
  {
    MutexLock lock(made->mu_);
    for (Alert& a : *unresolved) {
      std::string id = a.id;
      made->recent_.emplace(std::move(id), std::move(a));
    }
    made->load_held(std::move(*held), clock.now());
  }
  return made;
}

Remediator::Remediator(Store& store, Clock& clock, const telemetry::FreshnessSource& telemetry,
                       CommandQueue& commands, RemediatorOptions options)
    : store_(store),
      clock_(clock),
      telemetry_(telemetry),
      commands_(commands),
      options_(std::move(options)),
      offline_rule_(
          std::any_of(options_.rules.begin(), options_.rules.end(),
                      [](const RemediationRule& r) { return r.condition == Condition::kOffline; })),
      health_watched_([this] {
        std::set<Condition> watched;
        for (const RemediationRule& r : options_.rules) {
          if (is_health_condition(r.condition)) watched.insert(r.condition);
        }
        return watched;
      }()),
      update_rule_(std::any_of(
          options_.rules.begin(), options_.rules.end(),
          [](const RemediationRule& r) { return r.condition == Condition::kUpdateStuck; })),
      config_rule_(std::any_of(
          options_.rules.begin(), options_.rules.end(),
          [](const RemediationRule& r) { return r.condition == Condition::kConfigFailed; })) {}

const RemediationRule* Remediator::rule_named(std::string_view name) const {
  for (const RemediationRule& r : options_.rules) {
    if (r.name == name) return &r;
  }
  return nullptr;
}

void Remediator::set_listener(std::function<void(const Alert&)> listener) {
  MutexLock lock(mu_);
  listener_ = std::move(listener);
}

void Remediator::set_health_source(const DeviceHealthSource* source) {
  MutexLock lock(mu_);
  health_ = source;
}

void Remediator::set_update_states(const DeviceService* devices) {
  MutexLock lock(mu_);
  devices_ = devices;
}

Status Remediator::refresh_health() {
  const DeviceHealthSource* source = nullptr;
  const Timestamp at = clock_.now();
  {
    MutexLock lock(mu_);
    if (health_watched_.empty() || health_ == nullptr) return ok_status();
    if (health_tried_ && at - *health_tried_ < options_.health_every) return ok_status();
    health_tried_ = at;  // a read that fails is tried again health_every later, not every tick
    source = health_;
  }
  auto found = source->critical_findings(health_watched_);
  if (!found.ok()) return found.error();
  std::map<std::pair<std::string, std::string>, std::string> by_device;
  for (HealthFinding& f : found->found) {
    by_device.insert_or_assign(std::make_pair(std::move(f.device), std::move(f.kind)),
                               std::move(f.text));
  }
  std::set<std::string, std::less<>> unreadable(std::make_move_iterator(found->unreadable.begin()),
                                                std::make_move_iterator(found->unreadable.end()));
  MutexLock lock(mu_);
  findings_ = std::move(by_device);
  unreadable_ = std::move(unreadable);
  findings_read_ = at;
  return ok_status();
}

Status Remediator::save(Alert& alert, const HeldCondition* held) {
  alert.updated_at = clock_.now();
  DROVER_TRY(validate(alert));
  WriteBatch batch;
  batch.alerts.push_back(alert);
  if (held != nullptr) batch.held_conditions.push_back(*held);
  DROVER_TRY(store_.apply(batch));
  recent_.insert_or_assign(alert.id, alert);
  if (listener_) listener_(alert);
  return ok_status();
}

Result<std::optional<Alert>> Remediator::current(std::string_view id) {
  if (auto it = recent_.find(id); it != recent_.end()) return std::optional<Alert>(it->second);
  return store_.get_alert(id);
}

Result<Episode> Remediator::episode_of(const Alert& alert) {
  Episode e;
  e.open = true;
  e.steps_taken = alert.commands.size();
  e.escalated = alert.escalated;
  e.opened = alert.opened_at;
  e.watched_since = watching_since_;
  if (alert.commands.empty()) return e;
  auto last = commands_.get(alert.commands.back());
  if (!last.ok()) return last.error();
  if (!*last) {
    // Recorded but not in the store: cannot happen (a command is queued before the alert
    // names it); taken as ended when the alert last changed, so the ladder goes on.
    e.command_ended = alert.updated_at;
    return e;
  }
  e.command_open = is_open((*last)->state);
  e.command_ended = (*last)->finished_at;
  return e;
}

Result<size_t> Remediator::actions_last_day(const std::string& device_id) {
  const Timestamp since = clock_.now() - hours(24);
  auto history = commands_.history(device_id, 64);
  if (!history.ok()) return history.error();
  size_t n = 0;
  for (const Command& c : *history) {
    if (c.created_at > since && c.requested_by.starts_with("rule:")) ++n;
  }
  return n;
}

Status Remediator::judge(const RemediationRule& rule, const telemetry::DeviceFreshness& f,
                         bool present, Duration held_for, bool out_of_reach, Alert* open,
                         const std::string& found, TickReport& report) {
  const Timestamp now = clock_.now();
  const std::string& device_id = f.device;
  Alert created;
  for (int pass = 0; pass < 2; ++pass) {  // a second pass right after opening an alert
    Episode episode;
    if (open != nullptr) {
      auto e = episode_of(*open);
      if (!e.ok()) return e.error();
      episode = *e;
      episode.out_of_reach = out_of_reach;
    }
    Decision d = decide(rule, episode, present, held_for, now, 0, options_.limits);
    if (d.kind == Decision::Kind::kAct) {
      auto actions = actions_last_day(device_id);
      if (!actions.ok()) return actions.error();
      d = decide(rule, episode, present, held_for, now, *actions, options_.limits);
    }
    // Without an episode, decide() only ever says kNothing or kOpen.
    if (open == nullptr && d.kind != Decision::Kind::kOpen) return ok_status();
    switch (d.kind) {
      case Decision::Kind::kNothing:
      case Decision::Kind::kWait:
        return ok_status();
      case Decision::Kind::kOpen: {
        auto n = store_.next_sequence("alert");
        if (!n.ok()) return n.error();
        created.id = "alert-" + std::to_string(*n);
        created.device_id = device_id;
        created.rule = rule.name;
        created.condition = to_string(rule.condition);
        created.summary =
            (d.why + ": " +
             (is_health_condition(rule.condition) || rule.condition == Condition::kConfigFailed
                  ? found
                  : summary_of(rule.condition, f)))
                .substr(0, kMaxAlertText);
        created.opened_at = now;
        created.version = 1;
        DROVER_TRY(save(created));
        ++report.opened;
        open = &created;
        continue;
      }
      case Decision::Kind::kAct: {
        const RemedyStep& step = rule.ladder[d.step];
        CommandRequest request;
        request.id = open->id + "-" + std::to_string(d.step + 1);
        request.device_id = device_id;
        request.action = step.action;
        request.argument = step.argument;
        request.lifetime = rule.command_lifetime;
        request.requested_by = "rule:" + rule.name;
        request.reason = (open->id + ": " + open->summary).substr(0, kMaxCommandReason);
        auto queued = commands_.queue(request);
        if (!queued.ok()) {
          if (queued.error().code != ErrorCode::kResourceExhausted) return queued.error();
          // The device's queue is full (operators' commands waiting): a person's turn.
          open->escalated = true;
          open->escalation =
              ("could not queue " + d.why + ": " + queued.error().message).substr(0, kMaxAlertText);
          ++open->version;
          DROVER_TRY(save(*open));
          ++report.escalated;
          return ok_status();
        }
        open->commands.push_back(request.id);
        ++open->version;
        DROVER_TRY(save(*open));
        ++report.commands;
        return ok_status();
      }
      case Decision::Kind::kEscalate:
        open->escalated = true;
        open->escalation = d.why.substr(0, kMaxAlertText);
        ++open->version;
        DROVER_TRY(save(*open));
        ++report.escalated;
        return ok_status();
      case Decision::Kind::kResolve:
        open->state = AlertState::kResolved;
        open->resolved_at = now;
        open->resolved_by = "drover";
        open->resolution = d.why.substr(0, kMaxAlertText);
        ++open->version;
        DROVER_TRY(save(*open));
        ++report.resolved;
        return ok_status();
    }
  }
  return ok_status();
}

Result<TickReport> Remediator::tick() {
  // The rules on health read it first, outside the lock (a read of every device's series); a
  // read that fails makes those rules wait until one succeeds, tried every health_every.
  const Status health_read = refresh_health();
  // The devices downloading an update, read outside the lock too (a scan of the registry).
  // Each with when it said so last.
  std::unordered_map<std::string, Timestamp> downloading;
  // The devices whose configuration did not apply: when they said so last, and what a
  // person reads of it.
  std::unordered_map<std::string, std::pair<Timestamp, std::string>> config_failing;
  // Of the devices with a count of a stuck update or a failed configuration kept from before
  // the start, those that have checked in since (the others have not told of it yet).
  std::unordered_set<std::string> checked_in;
  if (update_rule_ || config_rule_) {
    const DeviceService* devices = nullptr;
    std::vector<std::string> kept;
    {
      MutexLock lock(mu_);
      devices = devices_;
      for (const auto& [device, rules] : pending_) {
        for (const auto& [rule, k] : rules) {
          const RemediationRule* r = rule_named(rule);
          if (r != nullptr && is_check_in_condition(r->condition)) kept.push_back(device);
        }
      }
    }
    if (devices != nullptr) {
      // Checked in first, then downloading: a first check-in between the two reads shows as
      // one (the device is then seen at the look), never as checked in but not downloading.
      for (std::string& id : kept) {
        if (devices->last_check_in(id)) checked_in.insert(std::move(id));
      }
      if (update_rule_) {
        for (DeviceService::Reported& r : devices->in_update_state(UpdateState::kDownloading))
          downloading.emplace(std::move(r.id), r.at);
      }
      if (config_rule_) {
        for (DeviceService::ConfigFailure& c : devices->config_failures()) {
          config_failing.emplace(
              std::move(c.id),
              std::make_pair(c.at, "its configuration did not apply: " + std::move(c.error)));
        }
      }
    }
  }
  MutexLock lock(mu_);
  TickReport report;
  if (!health_read.ok()) report.health_error = health_read.error().to_string();
  auto fleet = telemetry_.freshness(telemetry::Cohort{});
  if (!fleet.ok()) return fleet.error();
  // Resolved alerts leave recent_ long after their last write is durable (a group commit
  // takes milliseconds; a store that fails stops the server).
  const Timestamp forget_before = clock_.now() - kKeepResolved;
  // Each device's unresolved alerts, one per rule, found by the device's id alone (the tick
  // looks up every device of the fleet, nearly all of them with none).
  struct Open {
    Alert alert;
    bool judged = false;
  };
  std::map<std::string, std::vector<Open>, std::less<>> open;
  for (auto it = recent_.begin(); it != recent_.end();) {
    const Alert& a = it->second;
    if (a.state != AlertState::kResolved) {
      std::vector<Open>& of_device = open[a.device_id];
      if (std::none_of(of_device.begin(), of_device.end(),
                       [&a](const Open& o) { return o.alert.rule == a.rule; })) {
        of_device.push_back({a});
      }
    } else if (a.updated_at < forget_before) {
      it = recent_.erase(it);
      continue;
    }
    ++it;
  }
  // What each rule sees on each device now. A device that checks in without data is
  // counted as stuck only from when the server first saw it so, too (across restarts: the
  // held conditions): a device back from an
  // outage has its backlog on the way, and its old data alone would make it look stuck at
  // once. (Offline is judged by the contact's age alone: nothing is on its way.)
  // A device that stopped checking in is not known to have cleared a no_data episode: it is
  // out of reach — no step, not resolved, a person's after a day of it — until it is heard
  // from again. The count of how long the condition has held starts again then (its backlog
  // may be on the way), and the next step waits for it (decide()).
  // A rule on health sees its condition as the last read of the device's health found it —
  // from when the server first saw it so — and knows nothing of it while the device is out
  // of reach (offline; without a contract, quiet for lost_after), while its health could not
  // be read, or while the last read of health tried failed: its episodes then wait, as for a
  // device out of reach. After a person closed its
  // alert, a new episode waits until a read made after that saw the condition clear.
  struct Seen {
    const telemetry::DeviceFreshness* device;
    const RemediationRule* rule;
    bool present;
    Duration held;
    bool unknown;      // nothing is known of the condition now
    bool unreachable;  // ... because the device is out of reach (an offline rule's to page)
    const std::string* found;
    bool with_open = false;  // the device may have an open alert (its hash says so)
  };
  static const std::string kNothingFound;
  // Only what may need judging is kept: a condition present, or an open alert of the device
  // (nearly every device of the fleet, every tick, has neither).
  std::vector<Seen> seen;
  // The hashes of the devices that have an open alert: nearly every device of the fleet is
  // passed over on one hash and an integer lookup, without a string compare (a set of
  // strings this small is searched by comparing each; at 10,000 devices this halved the
  // tick's time).
  const std::hash<std::string_view> hash;
  std::unordered_set<size_t> with_open;
  for (const auto& [device, alerts] : open) with_open.insert(hash(device));
  std::map<std::pair<std::string, std::string>, Timestamp> present_since;
  const Timestamp now = clock_.now();
  // Known only while the last read tried succeeded (a failed one makes those rules wait).
  const bool health_known = findings_read_ && health_tried_ == findings_read_;
  const double lost_after_s = static_cast<double>(options_.lost_after.count()) / 1000;
  // The closes by a person looked at this tick (the others: their device left the fleet, or
  // their rule is gone — they go).
  std::unordered_set<const void*> closed_looked;
  for (const telemetry::DeviceFreshness& f : *fleet) {
    ++report.devices;
    const bool has_open = with_open.contains(hash(f.device));
    const bool offline = f.freshness == Freshness::kOffline;
    const bool quiet = f.freshness == Freshness::kNoContract &&
                       (f.contact_age_s < 0 || f.contact_age_s >= lost_after_s);
    const auto kept_of_device = pending_.empty() ? pending_.end() : pending_.find(f.device);
    for (const RemediationRule& rule : options_.rules) {
      // A count kept from before the start, settled by the first look that can see the
      // condition — a rule on health: its health read and the device in reach and readable;
      // a stuck update: the device's first check-in since the start; no data: the device heard
      // from (until its first check-in it reads as offline); offline: at once: found present,
      // the count goes on from it, the time from the start to that look not counted (nothing
      // was known of it); otherwise it is dropped, as it would have been had the server been
      // up.
      std::optional<Timestamp> kept_since;
      if (kept_of_device != pending_.end()) {
        auto& kept = kept_of_device->second;
        if (auto k = kept.find(rule.name); k != kept.end()) {
          const bool can_see =
              is_health_condition(rule.condition)
                  ? health_known && !offline && !quiet && !unreadable_.contains(f.device)
              : rule.condition == Condition::kUpdateStuck
                  ? checked_in.contains(f.device) || downloading.contains(f.device)
              : rule.condition == Condition::kConfigFailed
                  ? checked_in.contains(f.device) || config_failing.contains(f.device)
              : rule.condition == Condition::kNoData ? !offline
                                                     : true;
          if (can_see) {
            kept_since = waited(k->second.since, now);
            kept.erase(k);
          }
        }
      }
      const bool no_data = rule.condition == Condition::kNoData;
      Seen s{&f, &rule, false, Duration{0}, no_data && offline, no_data && offline, &kNothingFound};
      if (is_health_condition(rule.condition)) {
        s.unreachable = offline || quiet;
        s.unknown = s.unreachable || !health_known || unreadable_.contains(f.device);
        auto it = s.unknown ? findings_.end()
                            : findings_.find(std::make_pair(f.device, to_string(rule.condition)));
        if (it != findings_.end()) {
          s.present = true;
          s.held = Duration::max();  // as long as the server has seen it (below)
          s.found = &it->second;
        }
        if (auto closed = closed_by_person_.empty()
                              ? closed_by_person_.end()
                              : closed_by_person_.find(std::make_pair(f.device, rule.name));
            closed != closed_by_person_.end()) {
          if (s.present || s.unknown || *findings_read_ <= closed->second) {
            s.present = false;  // not yet seen clear since a person closed it
            closed_looked.insert(&*closed);
          } else {
            closed_by_person_.erase(closed);
          }
        }
      } else if (rule.condition == Condition::kUpdateStuck) {
        // Seen at its check-ins, which an agent makes while a download fails without getting
        // anywhere. Out of reach, or its report of a download older than report_fresh (the
        // download may have moved on since, or the device be off), nothing is known of it.
        s.unreachable = offline || quiet;
        const auto reported = downloading.find(f.device);
        const bool stale =
            reported != downloading.end() && now - reported->second > options_.report_fresh;
        s.unknown = s.unreachable || stale;
        s.present = !s.unknown && reported != downloading.end();
        s.held = Duration::max();  // as long as the server has seen it (below)
      } else if (rule.condition == Condition::kConfigFailed) {
        // Seen at its check-ins, each of which says how its configuration stands; out of
        // reach, or its last word older than report_fresh, nothing is known of it.
        s.unreachable = offline || quiet;
        const auto reported = config_failing.find(f.device);
        const bool stale = reported != config_failing.end() &&
                           now - reported->second.first > options_.report_fresh;
        s.unknown = s.unreachable || stale;
        s.present = !s.unknown && reported != config_failing.end();
        s.held = Duration::max();  // as long as the server has seen it (below)
        if (s.present) s.found = &reported->second.second;
      } else {
        observe(rule.condition, f, &s.present, &s.held);
      }
      if (s.present) {
        auto key = std::make_pair(f.device, rule.name);
        auto before = present_since_.find(key);
        std::optional<Timestamp> since;
        if (before != present_since_.end()) {
          since = before->second;  // seen before, or a person closed its alert then
        } else if (kept_since) {
          since = kept_since;  // seen before the server's restart
        } else if (rule.condition != Condition::kOffline) {
          since = now;
        }
        if (since) {
          present_since.emplace(std::move(key), *since);
          s.held = std::min(s.held, now - *since);
        }
      }
      s.with_open = has_open;
      if (s.present || has_open) seen.push_back(s);
    }
  }
  // Kept before judging: a device whose judgement fails must not hold up everyone's count.
  present_since_ = std::move(present_since);
  if (closed_looked.size() < closed_by_person_.size()) {
    std::erase_if(closed_by_person_,
                  [&](const auto& closed) { return !closed_looked.contains(&closed); });
  }
  // Counts kept from before the start that no look could settle wait report_fresh at most;
  // those of a rule no longer configured go at once.
  const bool waited_enough = now - started_ >= options_.report_fresh;
  for (auto device = pending_.begin(); device != pending_.end();) {
    std::erase_if(device->second, [&](const auto& kept) {
      return waited_enough || rule_named(kept.first) == nullptr;
    });
    device = device->second.empty() ? pending_.erase(device) : std::next(device);
  }
  DROVER_TRY(write_held(now));
  for (const Seen& s : seen) {
    Open* found = nullptr;
    std::vector<Open>* of_device = nullptr;
    if (!s.with_open) {
      // no open alert: found stays null
    } else if (auto device = open.find(s.device->device); device != open.end()) {
      of_device = &device->second;
      for (Open& o : device->second) {
        if (o.alert.rule == s.rule->name) found = &o;
      }
    }
    if (found == nullptr) {
      if (s.present) {
        DROVER_TRY(judge(*s.rule, *s.device, s.present, s.held, false, nullptr, *s.found, report));
      }
      continue;  // nearly every device, every tick: nothing present, nothing open
    }
    found->judged = true;
    if (s.unreachable && offline_rule_) {
      // Out of reach, with a rule that pages a person for that: this episode waits (no
      // step, not resolved) — and once that rule's alert is with a person, so is this one:
      // whoever mends the device mends both, and neither claims a step did.
      const Open* paged = nullptr;
      for (const Open& o : *of_device) {
        if (&o != found && o.alert.escalated &&
            o.alert.condition == to_string(Condition::kOffline)) {
          paged = &o;
        }
      }
      if (paged != nullptr && !found->alert.escalated) {
        Alert& a = found->alert;
        a.escalated = true;
        a.escalation = ("out of reach: with a person through " + paged->alert.id + " (" +
                        paged->alert.rule + ")")
                           .substr(0, kMaxAlertText);
        ++a.version;
        DROVER_TRY(save(a));
        ++report.escalated;
      }
      continue;
    }
    // Out of reach with no rule to page for it: no step, not resolved, a person's after a day
    // of it (decide()).
    DROVER_TRY(
        judge(*s.rule, *s.device, s.present, s.held, s.unknown, &found->alert, *s.found, report));
  }
  // Open alerts nobody judges any more — the device left the fleet (decommissioned), or no
  // rule of that name is configured now — are closed saying so, rather than left open for
  // good.
  for (auto& [device, alerts] : open) {
    for (Open& o : alerts) {
      if (!o.judged) DROVER_TRY(close_unjudged(o.alert, now, report));
    }
  }
  return report;
}

Status Remediator::close_unjudged(Alert& alert, Timestamp now, TickReport& report) {
  const std::string& rule = alert.rule;
  const bool rule_known = std::any_of(options_.rules.begin(), options_.rules.end(),
                                      [&rule](const RemediationRule& r) { return r.name == rule; });
  alert.state = AlertState::kResolved;
  alert.resolved_at = now;
  alert.resolved_by = "drover";
  alert.resolution = (rule_known ? std::string("no longer judged: the device left the fleet")
                                 : "no longer judged: no rule '" + rule + "' is configured")
                         .substr(0, kMaxAlertText);
  ++alert.version;
  DROVER_TRY(save(alert));
  ++report.resolved;
  return ok_status();
}

Result<Alert> Remediator::acknowledge(std::string_view id, std::string_view by) {
  MutexLock lock(mu_);
  auto stored = current(id);
  if (!stored.ok()) return stored.error();
  if (!*stored) return not_found("no alert '" + std::string(id) + "'");
  Alert a = std::move(**stored);
  if (a.state == AlertState::kResolved) {
    return Error{ErrorCode::kFailedPrecondition, "alert '" + a.id + "' is resolved"};
  }
  if (a.state == AlertState::kAcknowledged) return a;  // a second acknowledgement: no change
  a.state = AlertState::kAcknowledged;
  a.acknowledged_at = clock_.now();
  a.acknowledged_by = std::string(by.substr(0, kMaxAlertText));
  ++a.version;
  DROVER_TRY(save(a));
  return a;
}

Result<Alert> Remediator::resolve(std::string_view id, std::string_view by, std::string_view note) {
  MutexLock lock(mu_);
  auto stored = current(id);
  if (!stored.ok()) return stored.error();
  if (!*stored) return not_found("no alert '" + std::string(id) + "'");
  Alert a = std::move(**stored);
  if (a.state == AlertState::kResolved) {
    return Error{ErrorCode::kFailedPrecondition,
                 "alert '" + a.id + "' is already resolved (" + a.resolution + ")"};
  }
  const Timestamp now = clock_.now();
  a.state = AlertState::kResolved;
  a.resolved_at = now;
  a.resolved_by = std::string(by.substr(0, kMaxAlertText));
  a.resolution = std::string(note.empty() ? "closed by a person" : note.substr(0, kMaxAlertText));
  ++a.version;
  // Closed while it may still hold: a new episode only after the rule's delay from now — and
  // for a rule on health, only once a read after now saw it clear (written with the alert:
  // a restart keeps it).
  const RemediationRule* rule = rule_named(a.rule);
  const bool on_health = rule != nullptr && is_health_condition(rule->condition);
  const HeldCondition closed{a.device_id, a.rule, now, true};
  DROVER_TRY(save(a, on_health ? &closed : nullptr));
  auto key = std::make_pair(a.device_id, a.rule);
  present_since_.insert_or_assign(key, now);
  // A count kept from before a restart is replaced by the close.
  if (auto device = pending_.find(a.device_id); device != pending_.end()) {
    device->second.erase(a.rule);
    if (device->second.empty()) pending_.erase(device);
  }
  if (on_health) {
    closed_by_person_.insert_or_assign(key, now);
    stored_.insert_or_assign(std::move(key), Kept{now, true});
  }
  return a;
}

Status Remediator::mark_notified(std::string_view id, uint64_t version) {
  const std::pair<std::string, uint64_t> one{std::string(id), version};
  return mark_notified_all({&one, 1});
}

Status Remediator::mark_notified_all(std::span<const std::pair<std::string, uint64_t>> done) {
  CommitScope scope;  // the write is queued under the lock and waited for after it
  {
    MutexLock lock(mu_);
    WriteBatch batch;
    std::map<std::string_view, size_t> placed;  // id -> its alert in the batch
    for (const auto& [id, version] : done) {
      if (auto it = placed.find(id); it != placed.end()) {  // given twice: the higher stands
        Alert& a = batch.alerts[it->second];
        if (version > a.version) {
          return Error{ErrorCode::kFailedPrecondition,
                       "alert '" + a.id + "' has no version " + std::to_string(version)};
        }
        a.notified_version = std::max(a.notified_version, version);
        continue;
      }
      auto stored = current(id);
      if (!stored.ok()) return stored.error();
      if (!*stored) return not_found("no alert '" + id + "'");
      Alert& a = **stored;
      if (version > a.version) {
        return Error{ErrorCode::kFailedPrecondition,
                     "alert '" + a.id + "' has no version " + std::to_string(version)};
      }
      if (version <= a.notified_version) continue;
      a.notified_version = version;
      placed.emplace(id, batch.alerts.size());
      batch.alerts.push_back(std::move(a));
    }
    if (batch.alerts.empty()) return ok_status();
    DROVER_TRY(store_.apply(batch));
    for (Alert& a : batch.alerts) {
      std::string id = a.id;
      recent_.insert_or_assign(std::move(id), std::move(a));
    }
  }
  return scope.wait();
}

Result<std::optional<Alert>> Remediator::get(std::string_view id) { return store_.get_alert(id); }

Result<std::vector<Alert>> Remediator::list(const Store::AlertQuery& query) {
  return store_.list_alerts(query);
}

}  // namespace drover::health
