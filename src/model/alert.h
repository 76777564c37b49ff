// An alert: one device's episode of one remediation rule (health/remediation.h), from the
// moment its condition had held long enough to the moment it cleared or a person closed it.
// It records what was done about it (the commands queued, in order), whether it was handed
// to a person and why, and who acknowledged and resolved it, when.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/clock.h"
#include "base/enum_names.h"
#include "base/result.h"

namespace drover {

enum class AlertState : uint8_t {
  kOpen,          // the condition holds (or has not been seen to clear)
  kAcknowledged,  // a person has seen it; remediation goes on
  kResolved,      // cleared (by itself, by a step) or closed by a person
  kCount,
};
inline constexpr size_t kAlertStateCount = static_cast<size_t>(AlertState::kCount);
inline constexpr EnumNames<AlertState, kAlertStateCount> kAlertStateNames{{
    {AlertState::kOpen, "open"},
    {AlertState::kAcknowledged, "acknowledged"},
    {AlertState::kResolved, "resolved"},
}};
static_assert(names_every_value(kAlertStateNames));
inline const char* to_string(AlertState s) { return enum_name(kAlertStateNames, s); }
inline Result<AlertState> parse_alert_state(std::string_view s) {
  return enum_parse(kAlertStateNames, s, "alert state");
}

struct Alert {
  std::string id;  // "alert-<n>"
  std::string device_id;
  std::string rule;       // the remediation rule's name
  std::string condition;  // what it watches for ("no_data", "offline")
  AlertState state = AlertState::kOpen;
  std::string summary;                // what was seen when it opened
  bool escalated = false;             // handed to a person: nothing more is done automatically
  std::string escalation;             // why it was handed over
  std::string resolution;             // how it ended
  std::vector<std::string> commands;  // the remote commands queued for it, in order
  Timestamp opened_at{};
  Timestamp updated_at{};
  Timestamp acknowledged_at{};  // zero: not acknowledged
  std::string acknowledged_by;
  Timestamp resolved_at{};  // zero: not resolved
  std::string resolved_by;  // "drover" when it cleared; else the person
  uint64_t version = 1;     // counts its changes (each one told to the webhook)
  // The newest version the alert webhook's receiver accepted (0: none, or no webhook).
  uint64_t notified_version = 0;
  friend bool operator==(const Alert&, const Alert&) = default;
};
inline constexpr size_t kMaxAlertText = 512;
inline constexpr size_t kMaxAlertCommands = 16;

// How long a remediation rule's condition has held on a device, as the remediator keeps it
// across its restarts (health/remediator.h): since when it counts the condition as held, and
// whether a person closed the rule's alert then (a rule on health opens no new episode until
// the condition is seen clear after that). The remediator's own bookkeeping uses an empty
// device_id and a rule name that starts with '@'.
struct HeldCondition {
  std::string device_id;
  std::string rule;
  Timestamp since{};
  bool closed_by_person = false;
  friend bool operator==(const HeldCondition&, const HeldCondition&) = default;
};

// Checks the ids and names, the texts' sizes, the commands' count, and that the times agree
// with the state (resolved_at set exactly when resolved, acknowledged_at when acknowledged),
// and that no version was notified before it was made.
Status validate(const Alert& a);

}  // namespace drover
