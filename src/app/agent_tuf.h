// `drover-agent tuf ...`: the agent's TUF client on its own, for interoperability testing
// against other repositories (docs/agent.md, "The TUF client on its own"). Exit 0 when the
// whole command succeeded, else 1, with the reason on stderr.
#pragma once

#include <string>
#include <vector>

namespace CLI {
class App;
}

namespace drover::app {

struct TufCommand {
  std::string verb;  // init, refresh or download
  std::string metadata_dir, metadata_url;
  std::string trusted_root_file;  // init
  std::vector<std::string> target_names;
  std::string target_base_url, target_dir;
};

// Adds the `tuf` subcommand to `app`, filling `command` when it is used.
void add_tuf_command(CLI::App& app, TufCommand& command);
int run_tuf_command(const TufCommand& command);

}  // namespace drover::app
