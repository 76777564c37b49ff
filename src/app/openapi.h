// The OpenAPI 3 document of both APIs (docs/api/openapi.json), compiled into the binary and
// served by `drover serve` at GET /api/openapi.json.
#pragma once

namespace drover::app {
extern const char* const kOpenApiDocument;
}  // namespace drover::app
