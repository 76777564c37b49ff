#include "health/remediation.h"

#include <algorithm>
#include <optional>

#include "base/units.h"

namespace drover::health {
namespace {

bool is_name(std::string_view s) {
  if (s.empty() || s.size() > 128 || s.front() == '.' || s.front() == '-') return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == ':' || c == '-';
  });
}

std::string step_text(const RemedyStep& s) {
  std::string text = protocol::to_string(s.action);
  if (!s.argument.empty()) text += " " + s.argument;
  return text;
}

}  // namespace

Status validate(const RemediationRule& rule) {
  if (!is_name(rule.name)) {
    return invalid_argument("remediation rule name '" + rule.name +
                            "' must be 1 to 128 of [A-Za-z0-9._:-]");
  }
  const std::string where = "remediation rule " + rule.name + ": ";
  if (rule.after < Duration{0} || rule.after > days(30)) {
    return invalid_argument(where + "after must be from 0 to 30 days");
  }
  if (rule.verify <= Duration{0} || rule.verify > days(7)) {
    return invalid_argument(where + "verify must be more than 0 and at most 7 days");
  }
  if (rule.command_lifetime <= Duration{0} || rule.command_lifetime > days(30)) {
    return invalid_argument(where + "command_lifetime must be more than 0 and at most 30 days");
  }
  if (rule.ladder.size() > 16) return invalid_argument(where + "at most 16 steps");
  for (const RemedyStep& s : rule.ladder) {
    if (s.action == protocol::CommandAction::kRotateKey) {
      // A new key mends no condition: it is an operator's decision, never a rule's step.
      return invalid_argument(where + "step 'rotate_key': a key rotation is not a remedy");
    }
    if (protocol::takes_argument(s.action)
            ? !is_name(s.argument)
            : !protocol::optional_argument_ok(s.action, s.argument)) {
      return invalid_argument(
          where + "step '" + step_text(s) + "': " +
          (protocol::takes_argument(s.action)                  ? "needs a service or command name"
           : s.action == protocol::CommandAction::kClearUpdate ? "takes no argument but 'download'"
                                                               : "takes no argument"));
    }
  }
  return ok_status();
}

Status validate(const RemediationLimits& limits) {
  if (limits.max_actions_per_day < 1 || limits.max_actions_per_day > 100) {
    return invalid_argument("max_actions_per_day must be from 1 to 100");
  }
  if (limits.stalled_after < hours(1) || limits.stalled_after > days(30)) {
    return invalid_argument("stalled_after must be from 1h to 30 days");
  }
  return ok_status();
}

Decision decide(const RemediationRule& rule, const Episode& episode, bool present,
                Duration held_for, Timestamp now, size_t actions_last_day,
                const RemediationLimits& limits) {
  using Kind = Decision::Kind;
  // How long an open episode has gone without a step it could take.
  const auto stalled = [&]() -> std::optional<Duration> {
    const Timestamp since =
        std::max({episode.opened, episode.command_ended, episode.watched_since});
    if (now - since < limits.stalled_after) return std::nullopt;
    return now - since;
  };
  if (episode.open && episode.out_of_reach) {
    // Nothing is known of the condition and nothing can be sent: no step, no resolution —
    // only a person, once it has gone on for long enough.
    if (episode.escalated) return {Kind::kWait, 0, "with a person"};
    if (auto d = stalled()) {
      return {Kind::kEscalate, 0,
              "no step for " + format_duration(*d) + ": the device is out of reach"};
    }
    return {Kind::kWait, 0, "the device is out of reach"};
  }
  if (!present) {
    if (!episode.open) return {};
    // Once a person has it, what cleared it is theirs to say: the last automatic step did not.
    const std::string who = episode.escalated ? "cleared while with a person" : "";
    if (episode.steps_taken == 0) {
      return {Kind::kResolve, 0, episode.escalated ? who : "cleared by itself"};
    }
    const RemedyStep& last = rule.ladder[std::min(episode.steps_taken, rule.ladder.size()) - 1];
    const std::string step = step_text(last) + " (step " + std::to_string(episode.steps_taken) +
                             " of " + std::to_string(rule.ladder.size()) + ")";
    return {Kind::kResolve, 0,
            episode.escalated ? who + " (the last automatic step: " + step + ")"
                              : "cleared after " + step};
  }
  if (!episode.open) {
    if (held_for < rule.after) return {};
    return {Kind::kOpen, 0,
            std::string(to_string(rule.condition)) + " for " +
                std::to_string(std::chrono::duration_cast<std::chrono::minutes>(held_for).count()) +
                " min"};
  }
  if (episode.escalated) return {Kind::kWait, 0, "with a person"};
  if (episode.command_open) return {Kind::kWait, 0, "a command is under way"};
  if (episode.steps_taken > 0 && now - episode.command_ended < rule.verify) {
    return {Kind::kWait, 0, "verifying the last step"};
  }
  // Seen to hold for `after` before every step, not only the first: after the device was
  // out of reach, or the server was down for long, the count starts again. Not for ever,
  // though.
  if (held_for < rule.after) {
    if (auto d = stalled()) {
      return {Kind::kEscalate, 0,
              "no step for " + format_duration(*d) + ": the condition was not seen to hold for " +
                  format_duration(rule.after) + " at a stretch (the device comes and goes)"};
    }
    return {Kind::kWait, 0, "waiting to see the condition hold again"};
  }
  if (episode.steps_taken >= rule.ladder.size()) {
    return {Kind::kEscalate, 0,
            rule.ladder.empty() ? std::string("this rule calls a person at once")
                                : "the condition (" + std::string(to_string(rule.condition)) +
                                      ") still holds after every step (" +
                                      std::to_string(rule.ladder.size()) + ")"};
  }
  if (actions_last_day >= limits.max_actions_per_day) {
    return {Kind::kEscalate, 0,
            "the device's budget of automatic actions is spent (" +
                std::to_string(actions_last_day) + " in 24 h, at most " +
                std::to_string(limits.max_actions_per_day) + ")"};
  }
  return {Kind::kAct, episode.steps_taken, step_text(rule.ladder[episode.steps_taken])};
}

std::vector<RemediationRule> default_rules(const std::string& telemetry_service) {
  RemediationRule no_data;
  no_data.name = "no-data";
  no_data.condition = Condition::kNoData;
  no_data.after = minutes(30);
  if (!telemetry_service.empty()) {
    no_data.ladder.push_back({protocol::CommandAction::kRestartService, telemetry_service});
  }
  no_data.ladder.push_back({protocol::CommandAction::kReboot, ""});
  RemediationRule offline;
  offline.name = "offline";
  offline.condition = Condition::kOffline;
  offline.after = hours(24);
  // A configuration that did not apply for an hour (the agent retries a failed one by
  // itself): applied once more, then a person — values the device's own envelope refuses
  // need one.
  RemediationRule config;
  config.name = "config-failed";
  config.condition = Condition::kConfigFailed;
  config.after = hours(1);
  config.ladder.push_back({protocol::CommandAction::kReapplyConfig, ""});
  // A value its profile watches (`frozen_after`) stuck for half an hour more while the device
  // reports — a sensor's driver or bus hung: a reboot starts them again; then a person (a
  // sensor dead in place needs one). Without such checks in any profile it never holds.
  RemediationRule frozen;
  frozen.name = "frozen";
  frozen.condition = Condition::kFrozen;
  frozen.after = minutes(30);
  frozen.ladder.push_back({protocol::CommandAction::kReboot, ""});
  return {no_data, offline, config, frozen};
}

}  // namespace drover::health
