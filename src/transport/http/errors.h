// How the APIs answer errors: one JSON shape, one status per ErrorCode.
#pragma once

#include "base/result.h"
#include "transport/http/server.h"

namespace drover::http {

// The HTTP status that answers an error of this kind (400, 401, 403, 404, 409, 500, 503).
int http_status(ErrorCode code);
// The JSON error response for `e`: {"error": {"code": "<error_code_name>", "message"}}.
Response error_response(const Error& e);

}  // namespace drover::http
