// The command line's habits, shared by `drover` and `drover-agent`: --version, usage errors
// that exit 2 and name the nearest verb, `list`/`get`/`delete` aliases of `ls`/`show`/`rm`,
// option defaults and an example on every --help page, and the global flags (--server,
// --token, --json, --ca-file) accepted before the verb as well as after it.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace CLI {
class App;
}

namespace drover::app {

// Given before the verb (`drover --json device ls`); a verb's own flag, given after it,
// wins.
struct GlobalFlags {
  std::string server, token, ca_file;
  bool json = false;
};
void add_global_flags(CLI::App& app, GlobalFlags& flags);

// Walks the command tree under `app`: aliases, option defaults shown, and the example of
// each verb (keyed by its path below the program, e.g. "device ls") as its help's footer.
// Adds --version printing version_text(program).
void add_conventions(CLI::App& app, const char* program,
                     const std::map<std::string, std::string>& examples);

// Parses the command line. Returns -1 when a command is to run; else the exit code: 0 after
// --help or --version, 2 after a usage error (printed with the nearest verb to an unknown
// one, or the verbs a group offers).
int parse_command_line(CLI::App& app, int argc, const char* const* argv);

// The nearest of `choices` to `word` by edit distance, or "" when none is close.
std::string nearest(const std::string& word, const std::vector<std::string>& choices);

}  // namespace drover::app
