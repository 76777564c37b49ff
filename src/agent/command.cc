#include "agent/command.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstring>
#include <string_view>

#include "base/units.h"

extern char** environ;  // NOLINT: POSIX declares it nowhere in a header

namespace drover::agent {
namespace {

constexpr size_t kMaxOutput = 64 * kKiB;

// The deadline of a real process is real time: this file is the OS adapter behind
// CommandRunner (tests of the callers fake the whole runner), so it reads the monotonic
// clock itself instead of taking a Clock&.
using Steady = std::chrono::steady_clock;

// Owns a file descriptor.
class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() { reset(); }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  void reset(int fd = -1) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_;
};

// Moves `fd` above the standard descriptors (keeping it close-on-exec): in an agent started
// with 0, 1 or 2 closed, a pipe could otherwise land on a number the child's file actions
// are about to overwrite.
Status lift_above_stdio(Fd& fd) {
  if (fd.get() > STDERR_FILENO) return ok_status();
  const int lifted = ::fcntl(fd.get(), F_DUPFD_CLOEXEC, STDERR_FILENO + 1);
  if (lifted < 0) return io_error("cannot duplicate a pipe: " + errno_text(errno));
  fd.reset(lifted);
  return ok_status();
}

// The agent's environment with `extra` added; a name in `extra` replaces the inherited one
// (getenv returns the first match, so appending a duplicate would not override it).
std::vector<std::string> child_environment(const Environment& extra) {
  std::vector<std::string> out;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    const std::string_view entry(*e);
    const std::string_view name = entry.substr(0, entry.find('='));
    const bool replaced =
        std::any_of(extra.begin(), extra.end(), [&](const auto& kv) { return kv.first == name; });
    if (!replaced) out.emplace_back(entry);
  }
  for (const auto& [name, value] : extra) out.push_back(name + "=" + value);
  return out;
}

std::vector<char*> c_strings(std::vector<std::string>& strings) {
  std::vector<char*> out;
  out.reserve(strings.size() + 1);
  for (std::string& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

// Owns the spawn attributes and file actions for one child.
class SpawnSetup {
 public:
  SpawnSetup() {
    ::posix_spawn_file_actions_init(&actions_);
    ::posix_spawnattr_init(&attr_);
  }
  ~SpawnSetup() {
    ::posix_spawn_file_actions_destroy(&actions_);
    ::posix_spawnattr_destroy(&attr_);
  }
  SpawnSetup(const SpawnSetup&) = delete;
  SpawnSetup& operator=(const SpawnSetup&) = delete;

  // stdin from /dev/null, stdout and stderr into `out`; its own process group (so a timeout
  // can kill everything it started); no blocked signals and default dispositions (an
  // ignored SIGPIPE or a blocked SIGTERM in the agent would otherwise carry over the exec).
  int configure(int out) {
    int rc = ::posix_spawn_file_actions_addopen(&actions_, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    if (rc == 0) rc = ::posix_spawn_file_actions_adddup2(&actions_, out, STDOUT_FILENO);
    if (rc == 0) rc = ::posix_spawn_file_actions_adddup2(&actions_, out, STDERR_FILENO);
    sigset_t none;
    sigset_t all;
    sigemptyset(&none);
    sigfillset(&all);
    if (rc == 0) rc = ::posix_spawnattr_setsigmask(&attr_, &none);
    if (rc == 0) rc = ::posix_spawnattr_setsigdefault(&attr_, &all);
    if (rc == 0) rc = ::posix_spawnattr_setpgroup(&attr_, 0);
    if (rc == 0)
      rc = ::posix_spawnattr_setflags(
          &attr_, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    return rc;
  }
  const posix_spawn_file_actions_t* actions() const { return &actions_; }
  const posix_spawnattr_t* attr() const { return &attr_; }

 private:
  posix_spawn_file_actions_t actions_;
  posix_spawnattr_t attr_;
};

// Waits for `pid` (blocking). Returns the wait status, or -1 when waitpid fails.
int reap(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return -1;
  }
  return status;
}

// SIGKILL to the child's whole process group, and to the child itself in case it left the
// group (setsid): the wait that follows must end. The child is not reaped yet, so its pid
// (the group's id) cannot have been reused.
void kill_group(pid_t pid) {
  ::kill(-pid, SIGKILL);
  ::kill(pid, SIGKILL);
}

int poll_timeout_ms(Steady::duration left) {
  const auto ms = std::chrono::ceil<std::chrono::milliseconds>(left).count();
  return static_cast<int>(std::clamp<int64_t>(ms, 0, INT_MAX));
}

class SystemCommands final : public CommandRunner {
 public:
  Result<CommandResult> run(const std::vector<std::string>& argv, Duration timeout,
                            const Environment& env) override {
    DROVER_CHECK(!argv.empty());
    for (const auto& kv : env)
      DROVER_CHECK(!kv.first.empty() && kv.first.find('=') == kv.first.npos);
    const std::string& name = argv[0];

    int fds[2];
    // Close-on-exec from the start: a command another thread spawns meanwhile must not
    // inherit this pipe, or we would wait for that command's exit to see end of file.
    if (::pipe2(fds, O_CLOEXEC) != 0)
      return io_error("cannot run " + name + ": cannot create a pipe: " + errno_text(errno));
    Fd read_end(fds[0]);
    Fd write_end(fds[1]);
    DROVER_TRY(lift_above_stdio(read_end));
    DROVER_TRY(lift_above_stdio(write_end));

    SpawnSetup setup;
    if (const int rc = setup.configure(write_end.get()); rc != 0)
      return io_error("cannot run " + name + ": " + errno_text(rc));
    std::vector<std::string> args = argv;
    std::vector<std::string> envs = child_environment(env);
    std::vector<char*> c_args = c_strings(args);
    std::vector<char*> c_envs = c_strings(envs);
    pid_t pid = -1;
    // posix_spawnp searches the agent's PATH (not a PATH given in `env`).
    const int rc = ::posix_spawnp(&pid, name.c_str(), setup.actions(), setup.attr(), c_args.data(),
                                  c_envs.data());
    write_end.reset();  // the child holds the only write end now: its exit means end of file
    if (rc != 0) return io_error("cannot run " + name + ": " + errno_text(rc));

    const Steady::time_point deadline =
        Steady::now() + std::chrono::duration_cast<Steady::duration>(timeout);
    CommandResult result;
    bool killed = false;
    char buf[16384];
    while (true) {  // read until end of file or the deadline
      const Steady::duration left = deadline - Steady::now();
      if (left <= Steady::duration::zero()) {
        kill_group(pid);
        killed = true;
        break;
      }
      pollfd p{read_end.get(), POLLIN, 0};
      const int n = ::poll(&p, 1, poll_timeout_ms(left));
      if (n == 0 || (n < 0 && errno == EINTR)) continue;
      if (n < 0) return abandon(pid, name, "poll", errno);
      const ssize_t got = ::read(read_end.get(), buf, sizeof buf);
      if (got < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      if (got < 0) return abandon(pid, name, "read", errno);
      if (got == 0) break;
      // Past the cap the output is read and dropped: a child blocked on a full pipe would
      // only end at its timeout.
      const size_t keep = std::min(static_cast<size_t>(got), kMaxOutput - result.output.size());
      result.output.append(buf, keep);
    }
    read_end.reset();

    int status = 0;
    if (!killed) {
      // End of file: the child has closed its output, which nearly always means it is
      // exiting. One that closed it and runs on still gets killed at the deadline.
      int nap_ms = 1;
      while (true) {
        const pid_t w = ::waitpid(pid, &status, WNOHANG);
        if (w == pid) break;
        if (w < 0 && errno == EINTR) continue;
        // ECHILD: someone else reaped it (SIGCHLD ignored?); its pid may be reused, so no kill.
        if (w < 0) return io_error("cannot wait for " + name + ": " + errno_text(errno));
        const Steady::duration left = deadline - Steady::now();
        if (left <= Steady::duration::zero()) {
          kill_group(pid);
          killed = true;
          break;
        }
        ::poll(nullptr, 0, std::min(nap_ms, poll_timeout_ms(left)));
        nap_ms = std::min(nap_ms * 2, 50);
      }
    }
    if (killed) {
      status = reap(pid);
      if (status == -1) return io_error("cannot wait for " + name + ": " + errno_text(errno));
      result.timed_out = true;
      result.exit_code = -1;
      return result;
    }
    result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return result;
  }

 private:
  // A failure while the child runs: kill and reap it so that nothing is left behind.
  static Error abandon(pid_t pid, const std::string& name, const char* what, int err) {
    kill_group(pid);
    reap(pid);
    return io_error("running " + name + ": " + what + ": " + errno_text(err));
  }
};

}  // namespace

CommandRunner& system_commands() {
  static SystemCommands instance;  // stateless: safe to share between threads
  return instance;
}

}  // namespace drover::agent
