// Running external commands from the agent: restart commands, health checks, state scripts,
// fw_setenv/grub-editenv. Behind an interface so tests see exactly what would run.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "base/clock.h"
#include "base/result.h"

namespace drover::agent {

struct CommandResult {
  int exit_code = -1;      // the exit status; -1 when it was killed (timeout, signal)
  bool timed_out = false;  // killed because it ran past its timeout
  std::string output;      // stdout and stderr together, at most 64 KiB kept
  bool ok() const { return exit_code == 0 && !timed_out; }
};

using Environment = std::vector<std::pair<std::string, std::string>>;

class CommandRunner {
 public:
  virtual ~CommandRunner() = default;
  // Runs argv[0] (searched in PATH) with the arguments, the agent's environment plus `env`,
  // stdin from /dev/null. A command still running after `timeout` is killed (its whole
  // process group). kIo when it cannot be started at all; a command that ran and failed is a
  // CommandResult, not an error.
  virtual Result<CommandResult> run(const std::vector<std::string>& argv, Duration timeout,
                                    const Environment& env = {}) = 0;
};

// Runs commands for real (posix_spawn, own process group). Thread-safe.
CommandRunner& system_commands();

}  // namespace drover::agent
