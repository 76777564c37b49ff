// Remote commands over HTTP (docs/api/operator.md "Commands", docs/api/device.md
// "Commands"), on CommandQueue:
// - operators: POST /api/v1/devices/{id}/commands (operator) queues one; GET the same path
//   (viewer) is the device's command history, newest first; GET /api/v1/commands/{id}
//   (viewer); POST /api/v1/commands/{id}/cancel (operator);
// - devices: POST /api/device/v1/commands/{id}/result, the device's own commands only.
// The commands themselves travel in check-in answers (DeviceService::check_in).
#pragma once

#include "fleet/command_queue.h"
#include "fleet/device_auth.h"
#include "fleet/device_service.h"
#include "fleet/operator_tokens.h"
#include "transport/http/router.h"

namespace drover::http {

void add_command_api(Router& router, OperatorTokens& tokens, DeviceAuth& auth,
                     DeviceService& devices, CommandQueue& commands);

}  // namespace drover::http
