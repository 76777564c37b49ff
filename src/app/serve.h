// `drover serve`: the control plane on the network, over the embedded SQLite store.
#pragma once

#include <string>
#include <vector>

namespace drover::app {

struct ServeArgs {
  std::string data = "drover-data";       // the data directory (created when missing)
  std::string listen = "127.0.0.1:8480";  // HOST:PORT, or [IPv6]:PORT; port 0 picks a free one
  int threads = 2;
  std::vector<std::string> enrollment_tokens;  // pre-shared: devices that bring one are accepted
  bool debug = false;                          // one JSON line per request on stderr
};

// Serves until SIGINT or SIGTERM, then stops gracefully (in-flight requests finish, state is
// flushed). Returns the process exit code; prints errors to stderr.
int run_serve(const ServeArgs& args);

}  // namespace drover::app
