// Remediation rules (docs/health.md, "Remediation"): what to do about a device in a bad
// state, step by step, and when to stop trying and call a person.
//
// A rule names a condition and a ladder of remote commands. Once the condition has held for
// `after`, an episode opens (the caller opens an alert for it) and the first step is asked
// for; each further step only once the previous command has ended and the condition has had
// `verify` to clear — so every action is verified before the next — and while it has held
// for `after` (a count the caller starts again when it loses sight of the device). A ladder
// run out, the device's daily budget of automatic actions spent, or an episode that could
// not take its next step for a day (the device out of reach, or its condition never held
// for `after` at a stretch) escalates to a person. The condition clearing resolves the
// episode, saying after which step it cleared (or that a person had it).
//
// decide() is the whole policy: pure, over the facts the caller keeps (the episode, as its
// alert records it) and observes (the condition now, for how long). It does no I/O and reads
// no clock, so the same facts always give the same decision, whoever asks and however often.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/clock.h"
#include "base/enum_names.h"
#include "base/result.h"
#include "protocol/device.h"

namespace drover::health {

// What a rule watches for.
enum class Condition : uint8_t {
  kNoData,   // the device checks in but sends no telemetry past its contract (stuck)
  kOffline,  // not heard from past its telemetry contract
  // The device's health (health/device_health.h) has a critical reason of this kind:
  kMemory,   // memory exhausted now, or forecast to be within 7 days
  kDisk,     // a disk full now, or forecast to be within 7 days
  kBattery,  // a battery empty now, or forecast to be within 7 days (not while charging)
  kReboots,  // more boots in the last 24 hours than allowed: a reboot loop
  kFrozen,   // a value its profile watches stopped changing while the device reports
  // The device reports an update download under way at its check-ins, and has for `after`
  // without finishing it (a download that keeps failing: the agent checks in between tries).
  kUpdateStuck,
  // The device reports at its check-ins that its configuration did not apply (its apply
  // command failed, or its own envelope refused the values), and has for `after`.
  kConfigFailed,
  kCount,
};
inline constexpr size_t kConditionCount = static_cast<size_t>(Condition::kCount);
inline constexpr EnumNames<Condition, kConditionCount> kConditionNames{{
    {Condition::kNoData, "no_data"},
    {Condition::kOffline, "offline"},
    {Condition::kMemory, "memory"},
    {Condition::kDisk, "disk"},
    {Condition::kBattery, "battery"},
    {Condition::kReboots, "reboots"},
    {Condition::kFrozen, "frozen"},
    {Condition::kUpdateStuck, "update_stuck"},
    {Condition::kConfigFailed, "config_failed"},
}};
// Whether the condition is read from the device's health (its name is the health reason's
// kind) rather than from its telemetry's freshness.
constexpr bool is_health_condition(Condition c) {
  return c == Condition::kMemory || c == Condition::kDisk || c == Condition::kBattery ||
         c == Condition::kReboots || c == Condition::kFrozen;
}
// Whether the condition is read from what the device reports at its check-ins.
constexpr bool is_check_in_condition(Condition c) {
  return c == Condition::kUpdateStuck || c == Condition::kConfigFailed;
}
static_assert(names_every_value(kConditionNames));
inline const char* to_string(Condition c) { return enum_name(kConditionNames, c); }
inline Result<Condition> parse_condition(std::string_view s) {
  return enum_parse(kConditionNames, s, "condition");
}

struct RemedyStep {
  protocol::CommandAction action = protocol::CommandAction::kReboot;
  std::string argument;  // a service or command name, for the actions that take one
  bool operator==(const RemedyStep&) const = default;
};

struct RemediationRule {
  std::string name;  // unique among the rules (is a name: [A-Za-z0-9._:-])
  Condition condition = Condition::kNoData;
  Duration after = hours(1);       // how long the condition must hold before anything is done
  std::vector<RemedyStep> ladder;  // tried in order; empty: straight to a person
  Duration verify = minutes(30);   // after a step's command ends: time for the condition to clear
  Duration command_lifetime = hours(6);  // a step's command expires after this
  bool operator==(const RemediationRule&) const = default;
};

// Checks the name, the durations (`after` from 0 to 30 days, `verify` positive and at most 7
// days, `command_lifetime` positive and at most 30 days), at most 16 steps, and each step's
// argument (a name for the actions that take one, none for the others). kInvalidArgument
// naming the rule.
Status validate(const RemediationRule& rule);

// A device's open episode of one rule, as its alert records it.
struct Episode {
  bool open = false;
  size_t steps_taken = 0;     // commands queued for it so far
  bool escalated = false;     // handed to a person: nothing more is done automatically
  bool command_open = false;  // the last step's command has not ended yet
  Timestamp command_ended{};  // when it ended (its result, expiry or cancellation)
  Timestamp opened{};         // when the episode opened
  // What the caller observes besides the condition: whether the device is out of reach (not
  // heard from: nothing can be known of the condition, nothing sent — the episode neither
  // steps nor resolves), and since when it has watched without a break (a server down for
  // long counts a stall from when it was back, not from before; a short restart — at most
  // the Remediator's resume_gap — counts on through it).
  bool out_of_reach = false;
  Timestamp watched_since{};
};

struct Decision {
  enum class Kind : uint8_t {
    kNothing,   // nothing is wrong, or not for long enough yet
    kOpen,      // open an episode (an alert), then decide again
    kAct,       // queue ladder[step]
    kWait,      // a command is under way, or its verification time runs
    kEscalate,  // hand it to a person: `why` says why
    kResolve,   // the condition cleared: close the episode; `why` says after what
  };
  Kind kind = Kind::kNothing;
  size_t step = 0;  // kAct
  std::string why;
};

// The device's budget of automatic actions, over all rules.
struct RemediationLimits {
  size_t max_actions_per_day = 3;  // commands queued by rules in the last 24 hours
  // An open episode that could take no step for this long — the device out of reach, or its
  // condition never seen to hold for the rule's `after` at a stretch — since it opened, since
  // its last command ended, or since the caller began watching it, whichever came last, goes
  // to a person rather than waiting for good.
  Duration stalled_after = hours(24);
  bool operator==(const RemediationLimits&) const = default;
};
// At least one action a day, at most 100; stalled_after from 1 hour to 30 days.
// kInvalidArgument saying which.
Status validate(const RemediationLimits& limits);

// What to do now about `rule` on one device: `present` is whether its condition holds now,
// `held_for` for how long it has (continuously), `actions_last_day` the rule-queued commands
// of the device in the last 24 hours.
Decision decide(const RemediationRule& rule, const Episode& episode, bool present,
                Duration held_for, Timestamp now, size_t actions_last_day,
                const RemediationLimits& limits);

// The rules `drover serve` uses when given none: a device that checks in but sends nothing is
// first asked to restart its telemetry service (`telemetry_service`), then rebooted, then
// handed to a person; one offline for a day is a person's at once (it cannot be reached); a
// configuration that has not applied for an hour is applied again, then a person's; a value
// its profile watches frozen for half an hour is rebooted, then a person's.
std::vector<RemediationRule> default_rules(const std::string& telemetry_service);

}  // namespace drover::health
