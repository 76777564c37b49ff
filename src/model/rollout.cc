#include "model/rollout.h"

#include <algorithm>
#include <cmath>

#include "base/enum_names.h"
#include "model/version.h"
#include "protocol/telemetry_batch.h"

namespace drover {
namespace {

constexpr EnumNames<FailurePolicy, 3> kPolicyNames{{
    {FailurePolicy::kPause, "pause"},
    {FailurePolicy::kAbort, "abort"},
    {FailurePolicy::kRollback, "rollback"},
}};

constexpr EnumNames<StratumDimension, 3> kDimensionNames{{
    {StratumDimension::kHardwareRevision, "hardware_revision"},
    {StratumDimension::kSite, "site"},
    {StratumDimension::kConnectivity, "connectivity"},
}};

constexpr EnumNames<RolloutState, static_cast<size_t>(RolloutState::kCount)> kRolloutStateNames{{
    {RolloutState::kCreated, "created"},
    {RolloutState::kRunning, "running"},
    {RolloutState::kPaused, "paused"},
    {RolloutState::kCompleted, "completed"},
    {RolloutState::kFailed, "failed"},
    {RolloutState::kAborted, "aborted"},
    {RolloutState::kRollingBack, "rolling_back"},
    {RolloutState::kRolledBack, "rolled_back"},
    {RolloutState::kWatching, "watching"},
    {RolloutState::kCompletedPartial, "completed_partial"},
    {RolloutState::kRollbackIncomplete, "rollback_incomplete"},
}};

constexpr EnumNames<DeploymentState, static_cast<size_t>(DeploymentState::kCount)>
    kDeploymentStateNames{{
        {DeploymentState::kPending, "pending"},
        {DeploymentState::kOffered, "offered"},
        {DeploymentState::kDownloading, "downloading"},
        {DeploymentState::kInstalling, "installing"},
        {DeploymentState::kRebooting, "rebooting"},
        {DeploymentState::kSucceeded, "succeeded"},
        {DeploymentState::kFailed, "failed"},
        {DeploymentState::kUnhealthy, "unhealthy"},
        {DeploymentState::kRolledBack, "rolled_back"},
        {DeploymentState::kCancelled, "cancelled"},
        {DeploymentState::kSkipped, "skipped"},
        {DeploymentState::kRevertPending, "revert_pending"},
        {DeploymentState::kReverting, "reverting"},
        {DeploymentState::kReverted, "reverted"},
        {DeploymentState::kRevertFailed, "revert_failed"},
        {DeploymentState::kSilent, "silent"},
        {DeploymentState::kLost, "lost"},
    }};
constexpr EnumNames<HealthDirection, 2> kHealthDirectionNames{{
    {HealthDirection::kHigherIsWorse, "higher"},
    {HealthDirection::kLowerIsWorse, "lower"},
}};

constexpr EnumNames<HealthMeasure, 4> kHealthMeasureNames{{
    {HealthMeasure::kMean, "mean"},
    {HealthMeasure::kSlope, "slope"},
    {HealthMeasure::kIncrease, "increase"},
    {HealthMeasure::kAnomalies, "anomalies"},
}};

static_assert(names_every_value(kRolloutStateNames));
static_assert(names_every_value(kDeploymentStateNames));

bool contains(const std::vector<std::string>& v, const std::string& s) {
  return v.empty() || std::find(v.begin(), v.end(), s) != v.end();
}

}  // namespace

Duration CheckInContract::for_connectivity(std::string_view c) const {
  for (const Class& k : by_connectivity) {
    if (k.connectivity == c) return k.max_silence;
  }
  return max_silence;
}

const char* to_string(FailurePolicy p) { return enum_name(kPolicyNames, p); }
Result<FailurePolicy> parse_failure_policy(std::string_view s) {
  return enum_parse(kPolicyNames, s, "failure policy");
}
const char* to_string(StratumDimension d) { return enum_name(kDimensionNames, d); }
Result<StratumDimension> parse_stratum_dimension(std::string_view s) {
  return enum_parse(kDimensionNames, s, "stratum dimension");
}
const char* to_string(HealthDirection d) { return enum_name(kHealthDirectionNames, d); }
Result<HealthDirection> parse_health_direction(std::string_view s) {
  return enum_parse(kHealthDirectionNames, s, "health direction (higher or lower)");
}
const char* to_string(HealthMeasure m) { return enum_name(kHealthMeasureNames, m); }
Result<HealthMeasure> parse_health_measure(std::string_view s) {
  return enum_parse(kHealthMeasureNames, s, "health measure (mean, slope, increase or anomalies)");
}
const char* to_string(RolloutState s) { return enum_name(kRolloutStateNames, s); }
Result<RolloutState> parse_rollout_state(std::string_view s) {
  return enum_parse(kRolloutStateNames, s, "rollout state");
}
bool is_terminal(RolloutState s) {
  return s == RolloutState::kCompleted || s == RolloutState::kCompletedPartial ||
         s == RolloutState::kFailed || s == RolloutState::kAborted ||
         s == RolloutState::kRolledBack || s == RolloutState::kRollbackIncomplete;
}
const char* to_string(DeploymentState s) { return enum_name(kDeploymentStateNames, s); }
Result<DeploymentState> parse_deployment_state(std::string_view s) {
  return enum_parse(kDeploymentStateNames, s, "deployment state");
}

bool DeviceFilter::matches(const Device& d) const {
  if (!contains(device_types, d.device_type) ||
      !contains(hardware_revisions, d.hardware_revision) || !contains(sites, d.site) ||
      !contains(connectivity, d.connectivity)) {
    return false;
  }
  return std::all_of(tags.begin(), tags.end(), [&](const std::string& t) {
    return std::binary_search(d.tags.begin(), d.tags.end(), t);
  });
}

Status validate(const RolloutPlan& p) {
  auto bad = [&](const std::string& why) {
    return invalid_argument("rollout plan '" + p.name + "': " + why);
  };
  if (!is_valid_name(p.name)) return invalid_argument("bad rollout plan name '" + p.name + "'");
  if (!is_valid_name(p.artifact_name)) return bad("bad artifact name");
  if (auto v = Version::parse(p.artifact_version); !v.ok()) return bad(v.error().message);
  for (const auto* list : {&p.filter.device_types, &p.filter.hardware_revisions, &p.filter.sites,
                           &p.filter.connectivity, &p.filter.tags}) {
    for (const auto& s : *list) {
      if (!is_valid_name(s)) return bad("bad name '" + s + "' in the device filter");
    }
  }
  for (size_t i = 0; i < p.stratify_by.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      if (p.stratify_by[i] == p.stratify_by[j]) return bad("stratify_by names a dimension twice");
    }
  }
  if (p.stages.empty()) return bad("needs at least one stage");
  if (p.stages.size() > 100) return bad("more than 100 stages");
  const bool by_count = p.stages.front().count > 0;
  double last = 0;
  for (size_t i = 0; i < p.stages.size(); ++i) {
    const StageSpec& s = p.stages[i];
    const std::string where = "stage " + std::to_string(i + 1) + " (" + s.name + "): ";
    if (!is_valid_name(s.name)) return bad(where + "bad name");
    for (size_t j = 0; j < i; ++j) {
      if (p.stages[j].name == s.name) return bad(where + "duplicate stage name");
    }
    if ((s.count > 0) != by_count)
      return bad(where + "stages must all use percent or all use count");
    const double size = by_count ? s.count : s.percent;
    if (!by_count && !(s.percent > 0 && s.percent <= 100))
      return bad(where + "percent must be in (0, 100]");
    if (size <= last)
      return bad(where + "stages are cumulative: each must be larger than the one before");
    if (s.soak.count() < 0) return bad(where + "soak must not be negative");
    last = size;
  }
  if (!by_count && p.stages.back().percent != 100) return bad("the last stage must be 100%");
  const GatePolicy& g = p.gate;
  if (!(g.max_failure_rate >= 0 && g.max_failure_rate < 1))
    return bad("gate max_failure_rate must be in [0, 1)");
  if (!(g.acceptable_failure_rate >= 0 &&
        (g.acceptable_failure_rate < g.max_failure_rate || g.acceptable_failure_rate == 0)))
    return bad("gate acceptable_failure_rate must be in [0, max_failure_rate) (0: a third of it)");
  if (!(g.confidence >= 0.5 && g.confidence < 1)) return bad("gate confidence must be in [0.5, 1)");
  if (g.min_sample == 0) return bad("gate min_sample must be at least 1");
  if (g.health.size() > kMaxHealthMetrics)
    return bad("gate health has more than " + std::to_string(kMaxHealthMetrics) + " metrics");
  for (size_t k = 0; k < g.health.size(); ++k) {
    const HealthMetric& m = g.health[k];
    if (!protocol::is_valid_metric_name(m.metric))
      return bad("gate health " + std::to_string(k + 1) + ": metric '" + m.metric +
                 "' is not a valid metric name");
    for (size_t j = 0; j < k; ++j) {
      if (g.health[j].metric == m.metric && g.health[j].measure == m.measure)
        return bad("gate health names " + m.metric + " (" + to_string(m.measure) + ") twice");
    }
  }
  if (g.health_window < hours(1) || g.health_window > days(14))
    return bad("gate health_window must be within [1h, 14d]");
  const DeliveryConstraints& c = p.constraints;
  if (!(c.max_per_minute >= 0) || !std::isfinite(c.max_per_minute))
    return bad("max_per_minute must be >= 0");
  if (!(c.ramp_from_per_minute >= 0) || c.ramp_from_per_minute > c.max_per_minute) {
    return bad("ramp_from_per_minute must be within [0, max_per_minute]");
  }
  if (c.download_ahead <= Duration(0) || c.download_ahead > days(7))
    return bad("download_ahead must be within (0, 7d]");
  if (c.ramp_over.count() < 0 || (c.ramp_over.count() > 0 && c.max_per_minute == 0)) {
    return bad("ramp_over needs max_per_minute and must not be negative");
  }
  if (p.watch.count() < 0) return bad("watch must not be negative");
  auto contract_ok = [](Duration d) {
    return d.count() == 0 || (d >= minutes(10) && d <= days(30));
  };
  if (!contract_ok(p.contract.max_silence))
    return bad("contract max_silence must be 0 (never) or within [10m, 30d]");
  if (p.contract.by_connectivity.size() > kMaxContractClasses)
    return bad("contract by_connectivity has more than " + std::to_string(kMaxContractClasses) +
               " classes");
  for (size_t k = 0; k < p.contract.by_connectivity.size(); ++k) {
    const auto& cls = p.contract.by_connectivity[k];
    if (!is_valid_name(cls.connectivity))
      return bad("contract by_connectivity: invalid connectivity class '" + cls.connectivity + "'");
    if (!contract_ok(cls.max_silence)) {
      return bad("contract by_connectivity " + cls.connectivity +
                 ": max_silence must be 0 (never) or within [10m, 30d]");
    }
    for (size_t j = 0; j < k; ++j) {
      if (p.contract.by_connectivity[j].connectivity == cls.connectivity)
        return bad("contract by_connectivity names " + cls.connectivity + " twice");
    }
  }
  if (!(p.settle_fraction > 0 && p.settle_fraction <= 1))
    return bad("settle_fraction must be in (0, 1]");
  return ok_status();
}

}  // namespace drover
