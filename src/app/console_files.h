// The web console's built files, embedded by the build (src/app/embed_console.cmake):
// empty when drover was built without Node.js (docs/console.md).
#pragma once

#include <span>

#include "transport/http/console.h"

namespace drover::app {

extern const std::span<const http::ConsoleFile> kConsoleFiles;

}  // namespace drover::app
