#include "health/remediation_file.h"

#include <set>

#include "base/json_reader.h"
#include "base/units.h"

namespace drover::health {
namespace {

RemedyStep read_step(const JsonReader& r) {
  r.allow_only({"action", "argument"});
  RemedyStep step;
  step.action = r.take("action", protocol::parse_command_action(r.str("action")));
  step.argument = r.str_or("argument", "");
  return step;
}

RemediationRule read_rule(const JsonReader& r) {
  r.allow_only({"name", "condition", "after", "ladder", "verify", "command_lifetime"});
  RemediationRule rule;
  rule.name = r.str("name");
  rule.condition = r.take("condition", parse_condition(r.str("condition")));
  rule.after = r.duration("after");
  for (const JsonReader& step : r.array("ladder")) rule.ladder.push_back(read_step(step));
  rule.verify = r.duration_or("verify", rule.verify);
  rule.command_lifetime = r.duration_or("command_lifetime", rule.command_lifetime);
  // The rule's own checks, reported at the rule's path.
  if (Status s = validate(rule); !s.ok()) throw JsonError{r.path() + ": " + s.error().message};
  return rule;
}

RemediationLimits read_limits(const JsonReader& r) {
  r.allow_only({"max_actions_per_day", "stalled_after"});
  RemediationLimits limits;
  limits.max_actions_per_day = r.uint_or("max_actions_per_day", limits.max_actions_per_day);
  limits.stalled_after = r.duration_or("stalled_after", limits.stalled_after);
  if (Status s = validate(limits); !s.ok()) throw JsonError{r.path() + ": " + s.error().message};
  return limits;
}

}  // namespace

Result<RemediationPolicy> parse_remediation_policy(std::string_view text) {
  return parse_json_document<RemediationPolicy>(text, "remediation", [](const JsonReader& r) {
    r.allow_only({"limits", "rules"});
    RemediationPolicy policy;
    if (r.has("limits")) policy.limits = read_limits(r.child("limits"));
    if (!r.has("rules")) r.fail("rules", "is required: an array of rules");
    const std::vector<JsonReader> rules = r.array("rules");
    if (rules.empty()) r.fail("rules", "names no rule (to run none: --no-remediation)");
    if (rules.size() > kMaxRemediationRules) {
      r.fail("rules", "at most " + std::to_string(kMaxRemediationRules) + " rules");
    }
    std::set<std::string> names;
    for (const JsonReader& rule : rules) {
      policy.rules.push_back(read_rule(rule));
      if (!names.insert(policy.rules.back().name).second) {
        rule.fail("name", "'" + policy.rules.back().name + "' names an earlier rule too");
      }
    }
    return policy;
  });
}

std::string to_json(const RemediationPolicy& policy) {
  nlohmann::json rules = nlohmann::json::array();
  for (const RemediationRule& rule : policy.rules) {
    nlohmann::json ladder = nlohmann::json::array();
    for (const RemedyStep& step : rule.ladder) {
      nlohmann::json s{{"action", protocol::to_string(step.action)}};
      if (!step.argument.empty()) s["argument"] = step.argument;
      ladder.push_back(std::move(s));
    }
    rules.push_back({{"name", rule.name},
                     {"condition", to_string(rule.condition)},
                     {"after", format_duration(rule.after)},
                     {"ladder", std::move(ladder)},
                     {"verify", format_duration(rule.verify)},
                     {"command_lifetime", format_duration(rule.command_lifetime)}});
  }
  const nlohmann::json doc{{"limits",
                            {{"max_actions_per_day", policy.limits.max_actions_per_day},
                             {"stalled_after", format_duration(policy.limits.stalled_after)}}},
                           {"rules", std::move(rules)}};
  return doc.dump(2);
}

}  // namespace drover::health
