// Device configuration over HTTP (docs/configuration.md; docs/api/device.md "Configuration",
// docs/api/operator.md "Configuration"): a device fetches its type's document; operators
// write versions and see which devices run the newest.
#pragma once

#include "fleet/config_service.h"
#include "fleet/device_auth.h"
#include "fleet/device_service.h"
#include "fleet/operator_tokens.h"
#include "transport/http/router.h"

namespace drover::http {

// GET /api/device/v1/config (device bearer); GET, PUT /api/v1/configs/{device_type} and
// GET /api/v1/configs/{device_type}/versions[/{version}] (viewer; PUT operator).
void add_config_api(Router& router, OperatorTokens& tokens, DeviceAuth& auth,
                    DeviceService& devices, ConfigService& configs);

}  // namespace drover::http
