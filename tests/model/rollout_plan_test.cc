#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>

#include "model/rollout.h"

namespace drover {
namespace {

StageSpec pct(std::string name, double percent, Duration soak = Duration(0)) {
  StageSpec s;
  s.name = std::move(name);
  s.percent = percent;
  s.soak = soak;
  return s;
}

StageSpec cnt(std::string name, uint32_t count) {
  StageSpec s;
  s.name = std::move(name);
  s.count = count;
  return s;
}

RolloutPlan good_plan() {
  RolloutPlan p;
  p.name = "security-patch-4.2.1";
  p.artifact_name = "firmware";
  p.artifact_version = "4.2.1";
  p.filter.device_types = {"bms-controller"};
  p.stages = {pct("canary", 1, minutes(30)), pct("early", 10, minutes(30)), pct("broad", 50),
              pct("all", 100)};
  p.constraints.max_per_minute = 400;
  p.constraints.ramp_from_per_minute = 50;
  p.constraints.ramp_over = hours(1);
  return p;
}

// Expects validate() to refuse `p` with kInvalidArgument and a message containing `why`.
void expect_invalid(const RolloutPlan& p, const std::string& why) {
  const Status st = validate(p);
  ASSERT_FALSE(st.ok()) << "expected: " << why;
  EXPECT_EQ(st.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(st.error().message.find(why), std::string::npos) << st.error().message;
}

TEST(RolloutPlanValidate, AcceptsAGoodPlan) {
  const Status st = validate(good_plan());
  EXPECT_TRUE(st.ok()) << st.error().to_string();
}

TEST(RolloutPlanValidate, StagesMustGrow) {
  RolloutPlan p = good_plan();
  p.stages = {pct("a", 10), pct("b", 5), pct("c", 100)};
  expect_invalid(p, "stage 2 (b): stages are cumulative");
  p.stages = {pct("a", 10), pct("b", 10), pct("c", 100)};
  expect_invalid(p, "stage 2 (b): stages are cumulative");
  p.stages = {cnt("a", 100), cnt("b", 50)};
  expect_invalid(p, "stage 2 (b): stages are cumulative");
}

TEST(RolloutPlanValidate, LastStageMustBeEverything) {
  RolloutPlan p = good_plan();
  p.stages = {pct("a", 10), pct("b", 50)};
  expect_invalid(p, "the last stage must be 100%");
  p.stages = {pct("all", 100)};
  EXPECT_TRUE(validate(p).ok());
  // Count sizing has no 100% to reach: the last count covers whatever is left.
  p.stages = {cnt("a", 10), cnt("b", 100), cnt("c", 1000)};
  EXPECT_TRUE(validate(p).ok());
}

TEST(RolloutPlanValidate, PercentBounds) {
  RolloutPlan p = good_plan();
  p.stages = {pct("a", 0), pct("b", 100)};
  expect_invalid(p, "percent must be in (0, 100]");
  p.stages = {pct("a", 50), pct("b", 100.5)};
  expect_invalid(p, "stage 2 (b): percent must be in (0, 100]");
  p.stages = {pct("a", std::nan("")), pct("b", 100)};
  expect_invalid(p, "percent must be in (0, 100]");
}

TEST(RolloutPlanValidate, RefusesMixingPercentAndCount) {
  RolloutPlan p = good_plan();
  p.stages = {cnt("a", 10), pct("b", 100)};
  expect_invalid(p, "stage 2 (b): stages must all use percent or all use count");
  p.stages = {pct("a", 10), cnt("b", 100)};
  expect_invalid(p, "stages must all use percent or all use count");
}

TEST(RolloutPlanValidate, StageNamesAndCount) {
  RolloutPlan p = good_plan();
  p.stages.clear();
  expect_invalid(p, "needs at least one stage");
  p.stages = {pct("a", 10), pct("a", 100)};
  expect_invalid(p, "duplicate stage name");
  p.stages = {pct("bad name", 100)};
  expect_invalid(p, "bad name");
  p.stages = {pct("a", 10, -seconds(1)), pct("b", 100)};
  expect_invalid(p, "soak must not be negative");
  p.stages.clear();
  for (uint32_t i = 1; i <= 101; ++i) p.stages.push_back(cnt("s" + std::to_string(i), i));
  expect_invalid(p, "more than 100 stages");
}

TEST(RolloutPlanValidate, HealthGates) {
  RolloutPlan p = good_plan();
  p.gate.health = {
      {"battery_level_percent", HealthMeasure::kSlope, HealthDirection::kLowerIsWorse}};
  EXPECT_TRUE(validate(p).ok());
  p.gate.health.push_back(p.gate.health[0]);
  expect_invalid(p, "gate health names battery_level_percent (slope) twice");
  p.gate.health[1].measure = HealthMeasure::kMean;  // the same metric, measured otherwise
  EXPECT_TRUE(validate(p).ok());
  p.gate.health[1].metric = "battery level";
  expect_invalid(p, "gate health 2: metric 'battery level' is not a valid metric name");
  p.gate.health.resize(1);
  p.gate.health_window = minutes(59);
  expect_invalid(p, "gate health_window must be within [1h, 14d]");
  p.gate.health_window = days(15);
  expect_invalid(p, "gate health_window");
  p.gate.health_window = days(14);
  EXPECT_TRUE(validate(p).ok());
  p.gate.health.assign(kMaxHealthMetrics + 1, p.gate.health[0]);
  expect_invalid(p, "gate health has more than 8 metrics");
}

TEST(RolloutPlanValidate, GateBounds) {
  RolloutPlan p = good_plan();
  p.gate.max_failure_rate = 0.001;
  EXPECT_TRUE(validate(p).ok());
  p.gate.max_failure_rate = 0;  // no failure tolerated
  EXPECT_TRUE(validate(p).ok());
  p.gate.max_failure_rate = 1;
  expect_invalid(p, "gate max_failure_rate must be in [0, 1)");
  p.gate.max_failure_rate = -0.01;
  expect_invalid(p, "gate max_failure_rate");

  p = good_plan();
  p.gate.max_failure_rate = 0.05;
  p.gate.acceptable_failure_rate = 0.01;
  EXPECT_TRUE(validate(p).ok());
  p.gate.acceptable_failure_rate = 0.05;  // no room between acceptable and the limit
  expect_invalid(p, "gate acceptable_failure_rate must be in [0, max_failure_rate)");
  p.gate.acceptable_failure_rate = -0.01;
  expect_invalid(p, "gate acceptable_failure_rate");

  p = good_plan();
  p.gate.confidence = 0.5;
  EXPECT_TRUE(validate(p).ok());
  p.gate.confidence = 0.49;
  expect_invalid(p, "gate confidence must be in [0.5, 1)");
  p.gate.confidence = 1;
  expect_invalid(p, "gate confidence");
  p.gate.confidence = std::nan("");
  expect_invalid(p, "gate confidence");

  p = good_plan();
  p.gate.min_sample = 0;
  expect_invalid(p, "gate min_sample must be at least 1");
}

TEST(RolloutPlanValidate, RateConstraints) {
  RolloutPlan p = good_plan();
  p.constraints = {};
  p.constraints.ramp_over = hours(1);  // a ramp to an unlimited rate makes no sense
  expect_invalid(p, "ramp_over needs max_per_minute");

  p = good_plan();
  p.constraints.ramp_from_per_minute = 500;  // above max_per_minute 400
  expect_invalid(p, "ramp_from_per_minute must be within [0, max_per_minute]");

  p = good_plan();
  p.constraints.max_per_minute = -1;
  expect_invalid(p, "max_per_minute must be >= 0");
  p.constraints.max_per_minute = std::numeric_limits<double>::infinity();
  expect_invalid(p, "max_per_minute must be >= 0");

  p = good_plan();
  p.constraints.ramp_over = -minutes(1);
  expect_invalid(p, "ramp_over");

  p = good_plan();
  p.constraints = {};  // no limits at all is fine
  EXPECT_TRUE(validate(p).ok());
}

TEST(RolloutPlanValidate, OtherFields) {
  RolloutPlan p = good_plan();
  p.name = "";
  expect_invalid(p, "bad rollout plan name");

  p = good_plan();
  p.artifact_version = "4.2";
  expect_invalid(p, "bad version '4.2'");

  p = good_plan();
  p.filter.tags = {"ok", "not ok"};
  expect_invalid(p, "bad name 'not ok' in the device filter");

  p = good_plan();
  p.stratify_by = {StratumDimension::kSite, StratumDimension::kSite};
  expect_invalid(p, "stratify_by names a dimension twice");
  p.stratify_by.clear();
  EXPECT_TRUE(validate(p).ok());

  p = good_plan();
  p.contract.max_silence = minutes(5);
  expect_invalid(p, "contract max_silence must be 0 (never) or within [10m, 30d]");
  p.contract.max_silence = Duration(0);
  EXPECT_TRUE(validate(p).ok());
  p.contract.by_connectivity = {{"satellite", hours(72)}, {"satellite", hours(48)}};
  expect_invalid(p, "contract by_connectivity names satellite twice");
  p.contract.by_connectivity = {{"satellite", hours(24 * 31)}};
  expect_invalid(p, "contract by_connectivity satellite: max_silence must be");
  p.contract.by_connectivity = {{"not ok", hours(1)}};
  expect_invalid(p, "invalid connectivity class 'not ok'");
  p.contract.by_connectivity = {{"satellite", hours(72)}, {"lte", Duration(0)}};
  EXPECT_TRUE(validate(p).ok());
  EXPECT_EQ(p.contract.for_connectivity("satellite"), hours(72));
  EXPECT_EQ(p.contract.for_connectivity("lte"), Duration(0));
  EXPECT_EQ(p.contract.for_connectivity("ethernet"), Duration(0));  // the default, 0 here

  p = good_plan();
  p.settle_fraction = 0;
  expect_invalid(p, "settle_fraction must be in (0, 1]");
  p.settle_fraction = 1;
  EXPECT_TRUE(validate(p).ok());
}

// ---------------------------------------------------------------- DeviceFilter

Device device(std::string type, std::string rev, std::string site, std::string conn,
              std::vector<std::string> tags) {
  Device d;
  d.id = "dev-1";
  d.device_type = std::move(type);
  d.hardware_revision = std::move(rev);
  d.site = std::move(site);
  d.connectivity = std::move(conn);
  d.tags = std::move(tags);
  EXPECT_TRUE(validate(d).ok());  // sorts the tags, as the registry does
  return d;
}

TEST(DeviceFilter, EmptyMatchesEverything) {
  const DeviceFilter any;
  EXPECT_TRUE(any.matches(device("bms-controller", "rev-a", "nyc-001", "lte", {})));
  EXPECT_TRUE(any.matches(device("gateway", "rev-z", "", "", {"x"})));
}

TEST(DeviceFilter, ListsAreAlternativesAndFieldsAreAllRequired) {
  DeviceFilter f;
  f.device_types = {"bms-controller", "gateway"};
  f.sites = {"nyc-001"};
  EXPECT_TRUE(f.matches(device("gateway", "rev-a", "nyc-001", "lte", {})));
  EXPECT_FALSE(f.matches(device("meter", "rev-a", "nyc-001", "lte", {})));
  EXPECT_FALSE(f.matches(device("gateway", "rev-a", "nyc-002", "lte", {})));

  f = {};
  f.hardware_revisions = {"rev-c"};
  f.connectivity = {"satellite"};
  EXPECT_TRUE(f.matches(device("x", "rev-c", "s", "satellite", {})));
  EXPECT_FALSE(f.matches(device("x", "rev-b", "s", "satellite", {})));
  EXPECT_FALSE(f.matches(device("x", "rev-c", "s", "lte", {})));
}

TEST(DeviceFilter, EveryTagMustBePresent) {
  DeviceFilter f;
  f.tags = {"pilot", "east"};
  EXPECT_TRUE(f.matches(device("x", "r", "s", "c", {"pilot", "east", "zz-extra"})));
  EXPECT_TRUE(f.matches(device("x", "r", "s", "c", {"east", "pilot"})));
  EXPECT_FALSE(f.matches(device("x", "r", "s", "c", {"pilot"})));
  EXPECT_FALSE(f.matches(device("x", "r", "s", "c", {})));
  f.tags = {"pilot"};
  EXPECT_TRUE(f.matches(device("x", "r", "s", "c", {"a", "b", "pilot", "z"})));
}

TEST(RolloutEnums, NamesRoundTrip) {
  for (auto p : {FailurePolicy::kPause, FailurePolicy::kAbort, FailurePolicy::kRollback}) {
    EXPECT_EQ(parse_failure_policy(to_string(p)).value(), p);
  }
  for (auto s : {RolloutState::kCreated, RolloutState::kRunning, RolloutState::kPaused,
                 RolloutState::kCompleted, RolloutState::kFailed, RolloutState::kAborted,
                 RolloutState::kRollingBack, RolloutState::kRolledBack}) {
    EXPECT_EQ(parse_rollout_state(to_string(s)).value(), s) << to_string(s);
  }
  for (int i = 0; i <= static_cast<int>(DeploymentState::kLost); ++i) {
    const auto s = static_cast<DeploymentState>(i);
    EXPECT_STRNE(to_string(s), "unknown") << i;
    EXPECT_EQ(parse_deployment_state(to_string(s)).value(), s) << to_string(s);
  }
  EXPECT_TRUE(is_terminal(RolloutState::kCompleted));
  EXPECT_TRUE(is_terminal(RolloutState::kRolledBack));
  EXPECT_FALSE(is_terminal(RolloutState::kRollingBack));
  const auto bad = parse_failure_policy("explode");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("one of: pause, abort, rollback"), std::string::npos);
}

}  // namespace
}  // namespace drover
