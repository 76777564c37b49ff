// The device API, /api/device/v1 (docs/api/device.md): enrollment, challenge-response
// login, check-in and deployment status reports, on DeviceAuth and DeviceService. Every
// request after login carries "Authorization: Bearer <token>", and the device a request acts
// for is the token's, never one named in the request: a device reaches only its own records.
#pragma once

#include "base/result.h"
#include "fleet/device_auth.h"
#include "fleet/device_service.h"
#include "transport/http/router.h"

namespace drover::http {

// The HTTP status that answers an error of this kind (400, 401, 403, 404, 409, 500, 503).
int http_status(ErrorCode code);
// The JSON error response for `e`: {"error": {"code": "<error_code_name>", "message"}}.
Response error_response(const Error& e);

void add_device_api(Router& router, DeviceAuth& auth, DeviceService& service);

}  // namespace drover::http
