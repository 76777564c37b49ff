// JSON encodings of the model: the records the store keeps as documents, the plans operators
// write, and (next issue) the API bodies. Decoding is strict: unknown fields, wrong types and
// invalid values are refused with the path of the field. Documented in docs/formats.md.
#pragma once

#include <string>
#include <string_view>

#include "base/result.h"
#include "model/alert.h"
#include "model/api_token.h"
#include "model/artifact.h"
#include "model/command.h"
#include "model/config_document.h"
#include "model/device.h"
#include "model/device_profile.h"
#include "model/enrollment_token.h"
#include "model/rollout.h"
#include "model/site.h"

namespace drover {

std::string to_json(const Device& d);
std::string to_json(const Site& s);
std::string to_json(const DeviceProfile& p);
std::string to_json(const Artifact& a);
std::string to_json(const RolloutPlan& p);
std::string to_json(const Rollout& r);
std::string to_json(const Deployment& d);
std::string to_json(const DeploymentStep& s);
std::string to_json(const ApiToken& t);
std::string to_json(const RolloutOutcome& o);
std::string to_json(const EnrollmentToken& t);
std::string to_json(const Command& c);
std::string to_json(const Alert& a);
std::string to_json(const ConfigDocument& d);

// Each decoder also runs the record's validation.
Result<Device> device_from_json(std::string_view text);
Result<Site> site_from_json(std::string_view text);
Result<DeviceProfile> profile_from_json(std::string_view text);
Result<Artifact> artifact_from_json(std::string_view text);
Result<RolloutPlan> plan_from_json(std::string_view text);
Result<Rollout> rollout_from_json(std::string_view text);
Result<Deployment> deployment_from_json(std::string_view text);
Result<DeploymentStep> step_from_json(std::string_view text);
Result<ApiToken> api_token_from_json(std::string_view text);
Result<EnrollmentToken> enrollment_token_from_json(std::string_view text);
Result<Command> command_from_json(std::string_view text);
Result<Alert> alert_from_json(std::string_view text);
Result<ConfigDocument> config_document_from_json(std::string_view text);
// `failed` is derived from its parts: read, it is ignored.
Result<RolloutOutcome> outcome_from_json(std::string_view text);

}  // namespace drover
