// The web console's files (web/, built by Vite and embedded into drover by the build,
// docs/console.md) served under /console/: index.html for /console/, each built file under
// its own path, with a Content-Security-Policy that allows nothing from elsewhere and no
// inline script. "/" sends a browser to /console/. A drover built without Node.js has no
// files: /console/ then says so, and how to build them in.
#pragma once

#include <span>
#include <string_view>

#include "transport/http/router.h"

namespace drover::http {

struct ConsoleFile {
  std::string_view path;  // "index.html", "assets/index-1a2b3c.js"
  std::string_view body;
};

// Adds GET /, /console, /console/ and /console/{path} (one or two segments) to `router`.
void add_console(Router& router, std::span<const ConsoleFile> files);

// The MIME type of a console file, by its extension ("application/octet-stream" when
// unknown).
std::string_view console_content_type(std::string_view path);

}  // namespace drover::http
