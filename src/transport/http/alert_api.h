// Alerts over HTTP (docs/api/operator.md "Alerts"), on the Remediator:
// GET /api/v1/alerts?device=&state=unresolved|all&limit=&after= (viewer), GET
// /api/v1/alerts/{id} (viewer), POST /api/v1/alerts/{id}/acknowledge and /resolve (operator).
#pragma once

#include <string>

#include "fleet/operator_tokens.h"
#include "health/remediator.h"
#include "transport/http/router.h"

namespace drover::http {

// The alert as GET /api/v1/alerts/{id} shows it (JSON; texts from devices made valid UTF-8).
std::string alert_document(const Alert& a);

void add_alert_api(Router& router, OperatorTokens& tokens, health::Remediator& remediator);

}  // namespace drover::http
