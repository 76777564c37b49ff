// The remediation rules as an operator writes them (docs/health.md, "Rules from a file"): a
// JSON document with the rules and the device's budget of automatic actions, read by
// `drover serve --remediation-rules FILE` and shown back by GET /api/v1/remediation/rules.
//
//   {"limits": {"max_actions_per_day": 3, "stalled_after": "24h"},
//    "rules": [{"name": "no-data", "condition": "no_data", "after": "30m",
//               "ladder": [{"action": "restart_service", "argument": "collector"},
//                          {"action": "reboot"}],
//               "verify": "30m", "command_lifetime": "6h"}]}
//
// Parsing is strict: an unknown key, a key twice, a rule that does not validate or two rules
// of one name is refused, naming the path of what is wrong ("rules[1].ladder[0].action: ...")
// — a misspelt setting must not quietly mean its default on a live fleet.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "health/remediation.h"

namespace drover::health {

struct RemediationPolicy {
  std::vector<RemediationRule> rules;
  RemediationLimits limits;
  bool operator==(const RemediationPolicy&) const = default;
};

inline constexpr size_t kMaxRemediationRules = 64;

// kInvalidArgument naming the path of the first thing wrong; no rules at all is wrong too
// (run none with --no-remediation instead).
Result<RemediationPolicy> parse_remediation_policy(std::string_view text);

// The document parse_remediation_policy reads back to `policy`, every setting spelt out
// (defaults too), durations as text ("30m").
std::string to_json(const RemediationPolicy& policy);

}  // namespace drover::health
