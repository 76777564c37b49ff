// The device API, /api/device/v1 (docs/api/device.md): enrollment, challenge-response
// login, check-in, deployment status reports and artifact downloads, on DeviceAuth and
// DeviceService. Every request after login carries "Authorization: Bearer <token>", and the device
// a request acts for is the token's, never one named in the request: a device reaches only its own
// records.
#pragma once

#include "base/result.h"
#include "fleet/artifact_service.h"
#include "fleet/device_auth.h"
#include "fleet/device_service.h"
#include "transport/http/errors.h"
#include "transport/http/rate_limit.h"
#include "transport/http/router.h"

namespace drover {
class UpdateRepository;
}  // namespace drover

namespace drover::http {

// Per-source limits on the endpoints anyone may call (each optional): enrollments without a
// token (`enroll`: each one may create a pending record), and logins (`login`: challenges and
// answers). Over the limit: 429 with Retry-After.
struct DeviceApiLimits {
  SourceRateLimiter* enroll = nullptr;
  SourceRateLimiter* login = nullptr;
};

// The device a request's "Authorization: Bearer <token>" speaks for; kUnauthenticated when
// the token is missing, expired or not the server's.
Result<std::string> bearer_device(DeviceAuth& auth, const Request& req);

// `artifacts`, when given, serves artifact downloads (with Range) to the devices they are
// built for.
void add_device_api(Router& router, DeviceAuth& auth, DeviceService& service,
                    ArtifactService* artifacts = nullptr, DeviceApiLimits limits = {});

// Signed update metadata (TUF): GET /tuf/metadata/{file} to anyone (it is signed, and made to
// be mirrored), and GET /tuf/targets/{name}/{sha256}.{version} — a signed target's content,
// with Range — to a device it is built for, as the artifact download.
void add_update_metadata(Router& router, UpdateRepository& repository, DeviceAuth& auth,
                         DeviceService& service, ArtifactService& artifacts);

}  // namespace drover::http
