// How the APIs answer errors: one JSON shape, one status per ErrorCode.
#pragma once

#include "base/result.h"
#include "transport/http/server.h"

namespace drover::http {

// The JSON error response for `e`: the protocol's envelope and status (protocol/device.h).
Response error_response(const Error& e);

}  // namespace drover::http
