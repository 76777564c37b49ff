// A `drover serve` child process for tests of the real binary (DROVER_BIN), with its output
// captured so a test can wait for a line.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

namespace drover::testing {

class ServeProcess {
 public:
  ServeProcess(const std::string& data, const std::string& listen,
               const std::string& enrollment_token = "none-given", bool debug = false,
               const std::vector<std::string>& extra = {}) {
    int out[2];
    if (::pipe(out) != 0) return;
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(out[1], STDOUT_FILENO);
      ::dup2(out[1], STDERR_FILENO);
      ::close(out[0]);
      std::vector<const char*> argv = {"drover",
                                       "serve",
                                       "--data",
                                       data.c_str(),
                                       "--listen",
                                       listen.c_str(),
                                       "--enrollment-token",
                                       enrollment_token.c_str()};
      if (debug) argv.push_back("--debug");
      for (const std::string& arg : extra) argv.push_back(arg.c_str());
      argv.push_back(nullptr);
      ::execv(DROVER_BIN, const_cast<char* const*>(argv.data()));
      ::_exit(127);
    }
    ::close(out[1]);
    out_ = out[0];
  }
  ~ServeProcess() {
    if (pid_ > 0 && !reaped_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    if (out_ >= 0) ::close(out_);
  }

  // Reads output until it contains `text` (true) or the stream ends / time runs out.
  bool wait_for(const std::string& text, std::chrono::seconds limit = std::chrono::seconds(10)) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (output_.find(text) == std::string::npos) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      pollfd p{out_, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      char buf[4096];
      const ssize_t n = ::read(out_, buf, sizeof buf);
      if (n <= 0) return output_.find(text) != std::string::npos;
      output_.append(buf, static_cast<size_t>(n));
    }
    return true;
  }

  uint16_t port() const {
    const size_t at = output_.find("://127.0.0.1:");  // http or https
    return at == std::string::npos ? 0 : static_cast<uint16_t>(std::stoi(output_.substr(at + 13)));
  }

  // The exit status, or -1 if it has not exited within `limit`.
  int exit_code(std::chrono::seconds limit = std::chrono::seconds(10)) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        reaped_ = true;
        drain();  // what it printed last (a sanitizer's report, say) is in output()
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return -1;
  }

  pid_t pid() const { return pid_; }
  // Everything it printed; after exit_code() returned, to its last byte.
  const std::string& output() const { return output_; }

 private:
  // Reads what is left in the pipe, up to its end or a second of silence.
  void drain() {
    char buf[4096];
    for (pollfd p{out_, POLLIN, 0}; out_ >= 0 && ::poll(&p, 1, 1000) > 0;) {
      const ssize_t n = ::read(out_, buf, sizeof buf);
      if (n <= 0) return;
      output_.append(buf, static_cast<size_t>(n));
    }
  }

  pid_t pid_ = -1;
  int out_ = -1;
  bool reaped_ = false;
  std::string output_;
};

struct CommandOutcome {
  int code = -1;    // exit status; -1 when it did not exit normally
  std::string out;  // stdout, and stderr unless left out
};

// Runs a shell command; its stderr joins its stdout unless `with_stderr` is false.
inline CommandOutcome run_command(const std::string& command, bool with_stderr = true) {
  CommandOutcome r;
  FILE* p = ::popen((command + (with_stderr ? " 2>&1" : " 2>/dev/null")).c_str(), "r");
  if (p == nullptr) return r;
  char buf[4096];
  size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  const int status = ::pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

#ifdef DROVER_BIN
// An API token made by `drover token create` in the data directory `data` ("" on failure).
// `init`: the data directory may have no store yet (the server has not run there).
inline std::string create_token(const std::string& data, const std::string& name = "t",
                                const std::string& role = "admin", bool init = false) {
  const CommandOutcome r =
      run_command(std::string(DROVER_BIN) + " token create --data " + data + " --name " + name +
                      " --role " + role + (init ? " --init" : ""),
                  false);
  return r.code == 0 ? r.out.substr(0, r.out.find('\n')) : std::string();
}
#endif

#ifdef DROVER_AGENT_BIN
// Starts `drover-agent --config CONFIG --once` (or, with once false, running on until it is
// stopped), its output appended to `log`; its pid.
inline pid_t spawn_agent(const std::string& config, const std::string& log, bool once = true) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    ::dup2(fd, STDOUT_FILENO);
    ::dup2(fd, STDERR_FILENO);
    if (once) {
      ::execl(DROVER_AGENT_BIN, "drover-agent", "--config", config.c_str(), "--once", nullptr);
    } else {
      ::execl(DROVER_AGENT_BIN, "drover-agent", "--config", config.c_str(), nullptr);
    }
    ::_exit(127);
  }
  return pid;
}
#endif

// Writes `text` to `path`, creating its directories.
inline void write_file(const std::string& path, const std::string& text) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream(path) << text;
}

// A file's whole content ("" when it cannot be read).
inline std::string read_text(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

inline std::string temp_dir() {
  char tmpl[] = "/tmp/drover-serve-XXXXXX";
  return ::mkdtemp(tmpl);
}

// Whether `condition` holds within `seconds` (asked every 100 ms, and once more at the end):
// for what other processes (a server, agents) bring about in their own time.
inline bool eventually(const std::function<bool()>& condition, int seconds = 20) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return condition();
}

}  // namespace drover::testing
