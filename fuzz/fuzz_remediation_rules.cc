// Fuzzes the remediation rules file (drover serve --remediation-rules): whatever is there,
// parsing gives a policy or kInvalidArgument, never a crash or an exception; a policy that
// parses has only valid rules of distinct names and prints back to a document that reads to
// the same policy.
#include <cstddef>
#include <cstdint>
#include <set>
#include <string_view>

#include "health/remediation_file.h"

namespace {

void check(bool ok) {
  if (!ok) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace h = drover::health;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto policy = h::parse_remediation_policy(text);
  if (!policy.ok()) {
    check(policy.error().code == drover::ErrorCode::kInvalidArgument);
    check(!policy.error().message.empty());
    return 0;
  }
  check(!policy->rules.empty() && policy->rules.size() <= h::kMaxRemediationRules);
  check(h::validate(policy->limits).ok());
  std::set<std::string> names;
  for (const h::RemediationRule& rule : policy->rules) {
    check(h::validate(rule).ok());
    check(names.insert(rule.name).second);
  }
  auto again = h::parse_remediation_policy(h::to_json(*policy));
  check(again.ok() && *again == *policy);
  return 0;
}
