// For tests that call a Router directly, without a server: what the server would answer.
#pragma once

#include <string_view>
#include <utility>

#include "transport/http/server.h"

namespace drover::testing {

// An answer made on a worker thread (Response::offload) is made here, on the caller's thread.
inline http::Response answered(http::Response r) {
  if (!r.offload) return r;
  const std::string_view route = r.route;
  http::Response made = r.offload();
  if (made.route.empty()) made.route = route;
  return made;
}

}  // namespace drover::testing
