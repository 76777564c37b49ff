// Device health and the fleet view over HTTP (docs/api/operator.md, "Health"), on
// health::HealthView: GET /api/v1/devices/{id}/health and GET /api/v1/fleet/health (viewer).
#pragma once

#include "fleet/operator_tokens.h"
#include "health/health_view.h"
#include "transport/http/router.h"

namespace drover::http {

void add_health_api(Router& router, OperatorTokens& tokens, const health::HealthView& view);

}  // namespace drover::http
