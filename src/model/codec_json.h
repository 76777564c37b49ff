// The nlohmann-level pieces of the model codec, for other parsers that embed model records
// (scenario files embed plans, sites and artifacts). Include only from .cc files.
#pragma once

#include <nlohmann/json.hpp>

#include "base/json_reader.h"
#include "model/api_token.h"
#include "model/artifact.h"
#include "model/config_document.h"
#include "model/device.h"
#include "model/device_profile.h"
#include "model/rollout.h"
#include "model/site.h"

namespace drover {

nlohmann::json device_json(const Device& d);
nlohmann::json site_json(const Site& s);
nlohmann::json profile_json(const DeviceProfile& p);
nlohmann::json window_json(const MaintenanceWindow& w);
nlohmann::json artifact_json(const Artifact& a);
nlohmann::json plan_json(const RolloutPlan& p);
nlohmann::json rollout_json(const Rollout& r);
nlohmann::json deployment_json(const Deployment& d);
nlohmann::json step_json(const DeploymentStep& s);
nlohmann::json api_token_json(const ApiToken& t);
nlohmann::json outcome_json(const RolloutOutcome& o);
nlohmann::json config_document_json(const ConfigDocument& d);

// These throw JsonError (caught by parse_json_document) and validate what they read.
Device read_device(const JsonReader& r);
// r's "installed" object ({component: version}) in document order; empty when absent. Checks
// the shape only: names and versions are validate()'s business.
std::vector<InstalledComponent> read_installed(const JsonReader& r);
// The "attributes" object of a device or an inventory report ({} when absent).
std::vector<DeviceAttribute> read_attributes(const JsonReader& r);
Site read_site(const JsonReader& r);
DeviceProfile read_profile(const JsonReader& r);
MaintenanceWindow read_window(const JsonReader& r);
Artifact read_artifact(const JsonReader& r);
RolloutPlan read_plan(const JsonReader& r);
Rollout read_rollout(const JsonReader& r);
Deployment read_deployment(const JsonReader& r);
RolloutOutcome read_outcome(const JsonReader& r);

}  // namespace drover
