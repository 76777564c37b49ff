// Telemetry over HTTP (docs/api/device.md "Telemetry", docs/api/operator.md "Telemetry",
// "Profiles"): a device's batches in, and for operators its series, latest values, cohort
// aggregates and freshness, each value with its age; device profiles read and written.
#pragma once

#include "fleet/device_auth.h"
#include "fleet/operator_tokens.h"
#include "fleet/profile_service.h"
#include "telemetry/telemetry_service.h"
#include "transport/http/router.h"

namespace drover::http {

// POST /api/device/v1/telemetry: a batch (docs/formats.md), answered once it is durable.
void add_telemetry_device_api(Router& router, DeviceAuth& auth,
                              telemetry::TelemetryService& telemetry);

// The devices a query names by what they are: device_type, hardware_revision, site,
// connectivity, tag (each may repeat), and component with version. kInvalidArgument for a
// version without a component.
Result<telemetry::Cohort> cohort_of(const Query& q);

void add_telemetry_operator_api(Router& router, OperatorTokens& tokens,
                                telemetry::TelemetryService& telemetry, ProfileService& profiles,
                                Clock& clock);

}  // namespace drover::http
