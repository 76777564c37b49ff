// Remediation rules from a file: the documented example reads as written, what is read
// prints back to the same policy, and every kind of bad file is refused naming where it is
// wrong — never a default quietly taken for a misspelt setting.
#include "health/remediation_file.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>

namespace drover::health {
namespace {

using protocol::CommandAction;

std::string example() {
  std::ifstream in(std::string(DROVER_SOURCE_DIR) + "/docs/examples/remediation-rules.json");
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

TEST(RemediationFile, TheDocumentedExampleReadsAsWritten) {
  auto policy = parse_remediation_policy(example());
  ASSERT_TRUE(policy.ok()) << policy.error().to_string();
  ASSERT_EQ(policy->rules.size(), 5u);
  const RemediationRule& stuck = policy->rules[0];
  EXPECT_EQ(stuck.name, "no-data");
  EXPECT_EQ(stuck.condition, Condition::kNoData);
  EXPECT_EQ(stuck.after, minutes(30));
  ASSERT_EQ(stuck.ladder.size(), 2u);
  EXPECT_EQ(stuck.ladder[0], (RemedyStep{CommandAction::kRestartService, "collector"}));
  EXPECT_EQ(stuck.ladder[1], (RemedyStep{CommandAction::kReboot, ""}));
  EXPECT_EQ(stuck.command_lifetime, hours(6));
  const RemediationRule& disk = policy->rules[1];
  EXPECT_EQ(disk.condition, Condition::kDisk);
  EXPECT_TRUE(is_health_condition(disk.condition));
  ASSERT_EQ(disk.ladder.size(), 2u);
  EXPECT_EQ(disk.ladder[0], (RemedyStep{CommandAction::kRun, "clean-logs"}));
  EXPECT_EQ(disk.verify, minutes(15));
  const RemediationRule& loop = policy->rules[2];
  EXPECT_EQ(loop.condition, Condition::kReboots);
  EXPECT_EQ(loop.after, Duration{0});
  EXPECT_TRUE(loop.ladder.empty());
  const RemediationRule& update = policy->rules[3];
  EXPECT_EQ(update.condition, Condition::kUpdateStuck);
  EXPECT_FALSE(is_health_condition(update.condition));
  EXPECT_EQ(update.after, hours(24));
  ASSERT_EQ(update.ladder.size(), 1u);
  EXPECT_EQ(update.ladder[0], (RemedyStep{CommandAction::kClearUpdate, "download"}));
  EXPECT_EQ(update.verify, hours(1));
  const RemediationRule& offline = policy->rules[4];
  EXPECT_EQ(offline.condition, Condition::kOffline);
  EXPECT_EQ(offline.after, hours(24));
  EXPECT_TRUE(offline.ladder.empty());  // straight to a person
  EXPECT_EQ(offline.verify, RemediationRule{}.verify);
  EXPECT_EQ(policy->limits.max_actions_per_day, 3u);
  EXPECT_EQ(policy->limits.stalled_after, hours(24));
}

TEST(RemediationFile, WhatIsReadPrintsBackToTheSamePolicy) {
  auto policy = parse_remediation_policy(example());
  ASSERT_TRUE(policy.ok());
  auto again = parse_remediation_policy(to_json(*policy));
  ASSERT_TRUE(again.ok()) << again.error().to_string() << "\n" << to_json(*policy);
  EXPECT_EQ(*again, *policy);
  // The defaults drover serve runs print and read back too, and limits left out are the
  // defaults; seconds as a number are durations as well.
  const RemediationPolicy defaults{default_rules("collector"), {}};
  auto read = parse_remediation_policy(to_json(defaults));
  ASSERT_TRUE(read.ok()) << read.error().to_string();
  EXPECT_EQ(*read, defaults);
  auto bare = parse_remediation_policy(
      R"({"rules": [{"name": "r", "condition": "offline", "after": 90}]})");
  ASSERT_TRUE(bare.ok()) << bare.error().to_string();
  EXPECT_EQ(bare->limits, RemediationLimits{});
  EXPECT_EQ(bare->rules[0].after, seconds(90));
  // A service that lost its settings: its configuration applied again, then a restart.
  auto reapply = parse_remediation_policy(
      R"({"rules": [{"name": "settings-lost", "condition": "frozen", "after": "30m",
                     "ladder": [{"action": "reapply_config"},
                                {"action": "restart_service", "argument": "sensord"}]}]})");
  ASSERT_TRUE(reapply.ok()) << reapply.error().to_string();
  EXPECT_EQ(reapply->rules[0].ladder[0].action, protocol::CommandAction::kReapplyConfig);
  EXPECT_EQ(*parse_remediation_policy(to_json(*reapply)), *reapply);
}

TEST(RemediationFile, BadFilesAreRefusedNamingWhereTheyAreWrong) {
  const std::string ok_rule = R"({"name": "r", "condition": "no_data", "after": "1h"})";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "remediation: "},
      {"[]", "must be an object"},
      {R"({"rules": [)", "remediation"},
      {"{}", "rules: is required"},
      {R"({"rules": []})", "names no rule"},
      {R"({"rules": {}})", "rules: must be an array"},
      {R"({"rules": [)" + ok_rule + R"(], "limit": {}})", "limit: unknown field"},
      {R"({"rules": [)" + ok_rule + "," + ok_rule + "]}", "rules[1].name: 'r' names an earlier"},
      {R"({"rules": [{"name": "r", "condition": "no_data", "after": "1h", "afer": "2h"}]})",
       "rules[0].afer: unknown field"},
      {R"({"rules": [{"name": "r", "condition": "no_data", "after": "1h", "after": "2h"}]})",
       "the key 'after' appears twice"},
      {R"({"rules": [{"name": "r", "condition": "no_data"}]})", "rules[0].after: is required"},
      {R"({"rules": [{"name": "r", "condition": "stuck", "after": "1h"}]})",
       "rules[0].condition: "},
      {R"({"rules": [{"name": "r", "condition": "no_data", "after": "soon"}]})",
       "rules[0].after: "},
      {R"({"rules": [{"name": "r", "condition": "no_data", "after": "31d"}]})",
       "rules[0]: remediation rule r: after must be from 0 to 30 days"},
      {R"({"rules": [{"name": "r", "condition": "no_data", "after": -5}]})", "rules[0].after: "},
      {R"({"rules": [{"name": "r", "condition": "no_data", "after": "1h", "verify": "0s"}]})",
       "verify must be more than 0"},
      {R"({"rules": [{"name": "a b", "condition": "no_data", "after": "1h"}]})",
       "rules[0]: remediation rule name 'a b'"},
      {R"({"rules": [{"name": "r", "condition": "no_data", "after": "1h",
           "ladder": [{"action": "format_disk"}]}]})",
       "rules[0].ladder[0].action: "},
      {R"({"rules": [{"name": "r", "condition": "no_data", "after": "1h",
           "ladder": [{"action": "restart_service"}]}]})",
       "needs a service or command name"},
      {R"({"rules": [{"name": "r", "condition": "no_data", "after": "1h",
           "ladder": [{"action": "reboot", "argument": "now"}]}]})",
       "takes no argument"},
      {R"({"rules": [{"name": "r", "condition": "no_data", "after": "1h",
           "ladder": [{"action": "run", "argument": "../../bin/sh"}]}]})",
       "needs a service or command name"},
      {R"({"rules": [{"name": "r", "condition": "no_data", "after": "1h",
           "ladder": [{"action": "rotate_key"}]}]})",
       "a key rotation is not a remedy"},
      {R"({"rules": [{"name": "r", "condition": "no_data", "after": "1h",
           "ladder": [{"action": "reapply_config", "argument": "all"}]}]})",
       "takes no argument"},
      {R"({"rules": [{"name": "r", "condition": "update_stuck", "after": "1h",
           "ladder": [{"action": "clear_update", "argument": "all"}]}]})",
       "takes no argument but 'download'"},
      {R"({"rules": [{"name": "r", "condition": "no_data", "after": "1h", "ladder": "reboot"}]})",
       "rules[0].ladder: must be an array"},
      {R"({"rules": [)" + ok_rule + R"(], "limits": {"max_actions_per_day": 0}})",
       "limits: max_actions_per_day must be from 1 to 100"},
      {R"({"rules": [)" + ok_rule + R"(], "limits": {"max_actions_per_day": -1}})",
       "limits.max_actions_per_day: "},
      {R"({"rules": [)" + ok_rule + R"(], "limits": {"stalled_after": "5m"}})",
       "stalled_after must be from 1h to 30 days"},
  };
  for (const auto& [text, why] : cases) {
    auto policy = parse_remediation_policy(text);
    ASSERT_FALSE(policy.ok()) << text;
    EXPECT_EQ(policy.error().code, ErrorCode::kInvalidArgument) << text;
    EXPECT_NE(policy.error().message.find(why), std::string::npos)
        << text << "\n  said: " << policy.error().message << "\n  expected: " << why;
  }
  // Too many rules, and too long a ladder.
  std::string many = R"({"rules": [)";
  for (size_t i = 0; i <= kMaxRemediationRules; ++i) {
    many += (i ? "," : "") + std::string(R"({"name": "r)") + std::to_string(i) +
            R"(", "condition": "offline", "after": "1h"})";
  }
  many += "]}";
  auto too_many = parse_remediation_policy(many);
  ASSERT_FALSE(too_many.ok());
  EXPECT_NE(too_many.error().message.find("at most 64 rules"), std::string::npos);
  std::string ladder;
  for (int i = 0; i < 17; ++i) ladder += (i ? "," : "") + std::string(R"({"action": "reboot"})");
  auto too_long = parse_remediation_policy(
      R"({"rules": [{"name": "r", "condition": "no_data", "after": "1h", "ladder": [)" + ladder +
      "]}]}");
  ASSERT_FALSE(too_long.ok());
  EXPECT_NE(too_long.error().message.find("at most 16 steps"), std::string::npos);
}

}  // namespace
}  // namespace drover::health
