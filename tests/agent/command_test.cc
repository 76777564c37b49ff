// system_commands() runs real processes, so these tests wait in real time (a few seconds in
// all): timeouts are short and every bound on elapsed time is generous, for a loaded machine.
#include "agent/command.h"

#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace drover::agent {
namespace {

using Steady = std::chrono::steady_clock;

constexpr Duration kGenerous = seconds(20);

CommandResult run_ok(const std::vector<std::string>& argv, Duration timeout = kGenerous,
                     const Environment& env = {}) {
  auto r = system_commands().run(argv, timeout, env);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().to_string());
  return r.ok() ? *r : CommandResult{};
}

std::vector<pid_t> pids_in(const std::string& output) {
  std::istringstream in(output);
  std::vector<pid_t> out;
  pid_t p = 0;
  while (in >> p) out.push_back(p);
  return out;
}

// Gone, or a zombie waiting for a reaper that is not us (a killed grandchild is re-parented
// to init, or to whatever PID 1 is in a container).
bool dead(pid_t pid) {
  if (::kill(pid, 0) != 0 && errno == ESRCH) return true;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return true;
  const size_t paren = line.rfind(')');
  return paren != std::string::npos && paren + 2 < line.size() &&
         (line[paren + 2] == 'Z' || line[paren + 2] == 'X');
}

bool dies_within(pid_t pid, std::chrono::seconds limit) {
  const auto until = Steady::now() + limit;
  while (Steady::now() < until) {
    if (dead(pid)) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return dead(pid);
}

// Our own child, and reaped: waitpid knows nothing of it and it no longer exists.
void expect_reaped(pid_t pid) {
  int status = 0;
  EXPECT_EQ(::waitpid(pid, &status, WNOHANG), -1) << "pid " << pid;
  EXPECT_EQ(errno, ECHILD);
  EXPECT_NE(::kill(pid, 0), 0) << "pid " << pid << " still exists (a zombie?)";
}

std::set<int> open_fds(const std::string& dir) {
  std::set<int> out;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return out;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] != '.') out.insert(std::atoi(e->d_name));
  }
  ::closedir(d);
  return out;
}

TEST(Command, ExitCodes) {
  auto t = run_ok({"true"});
  EXPECT_EQ(t.exit_code, 0);
  EXPECT_FALSE(t.timed_out);
  EXPECT_TRUE(t.ok());

  auto f = run_ok({"false"});
  EXPECT_EQ(f.exit_code, 1);
  EXPECT_FALSE(f.ok());

  auto seven = run_ok({"sh", "-c", "exit 7"});
  EXPECT_EQ(seven.exit_code, 7);
  EXPECT_FALSE(seven.timed_out);
  EXPECT_FALSE(seven.ok());
}

TEST(Command, ArgumentsArePassedAsGivenWithoutAShell) {
  auto r = run_ok({"printf", "%s|", "two words", "$HOME", "*"});
  EXPECT_EQ(r.output, "two words|$HOME|*|");
}

TEST(Command, KilledBySignalIsMinusOneNotATimeout) {
  auto r = run_ok({"sh", "-c", "kill -TERM $$"});
  EXPECT_EQ(r.exit_code, -1);
  EXPECT_FALSE(r.timed_out);
  EXPECT_FALSE(r.ok());
}

TEST(Command, StdoutAndStderrGoIntoOneOutput) {
  auto r = run_ok({"sh", "-c", "echo out; echo err >&2; echo out again"});
  EXPECT_EQ(r.output, "out\nerr\nout again\n");
  EXPECT_TRUE(r.ok());
}

TEST(Command, StdinIsDevNull) {
  // cat on an inherited terminal or pipe would wait for input until the timeout.
  auto r = run_ok({"sh", "-c", "cat; readlink /proc/self/fd/0"}, seconds(10));
  EXPECT_FALSE(r.timed_out);
  EXPECT_EQ(r.output, "/dev/null\n");
}

TEST(Command, OutputIsCappedAt64KiBAndTheChildIsDrainedToTheEnd) {
  const auto start = Steady::now();
  // 1 MiB, then a last line: the command only gets to exit 0 if every byte was read.
  auto r = run_ok({"sh", "-c", "head -c 1048576 /dev/zero; echo finished >&2"}, seconds(60));
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_FALSE(r.timed_out);
  EXPECT_EQ(r.output.size(), 64u * 1024u);
  EXPECT_EQ(r.output, std::string(64 * 1024, '\0'));  // the first 64 KiB are kept
  EXPECT_LT(Steady::now() - start, std::chrono::seconds(30));
}

TEST(Command, TimeoutKillsTheCommand) {
  const auto start = Steady::now();
  auto r = run_ok({"sleep", "30"}, Duration(300));
  const auto took = Steady::now() - start;
  EXPECT_TRUE(r.timed_out);
  EXPECT_EQ(r.exit_code, -1);
  EXPECT_FALSE(r.ok());
  EXPECT_GE(took, std::chrono::milliseconds(300));
  EXPECT_LT(took, std::chrono::seconds(10));
}

TEST(Command, TimeoutKillsTheWholeProcessGroupAndReapsTheChild) {
  const auto start = Steady::now();
  // The shell prints its own pid and its background child's, then waits on a second sleep.
  auto r = run_ok({"sh", "-c", "sleep 30 & echo $$ $!; sleep 30"}, Duration(1000));
  EXPECT_LT(Steady::now() - start, std::chrono::seconds(10));
  EXPECT_TRUE(r.timed_out);
  EXPECT_EQ(r.exit_code, -1);
  const std::vector<pid_t> pids = pids_in(r.output);
  ASSERT_EQ(pids.size(), 2u) << r.output;
  expect_reaped(pids[0]);
  EXPECT_TRUE(dies_within(pids[1], std::chrono::seconds(5)))
      << "the background sleep " << pids[1] << " survived the timeout";
}

TEST(Command, ACommandThatClosesItsOutputIsStillKilledAtTheTimeout) {
  const auto start = Steady::now();
  auto r = run_ok({"sh", "-c", "echo $$; exec >/dev/null 2>&1; sleep 30"}, Duration(500));
  EXPECT_LT(Steady::now() - start, std::chrono::seconds(10));
  EXPECT_TRUE(r.timed_out);
  const std::vector<pid_t> pids = pids_in(r.output);
  ASSERT_EQ(pids.size(), 1u) << r.output;
  expect_reaped(pids[0]);
}

TEST(Command, AProcessThatEscapedTheGroupDoesNotHoldTheRunnerPastTheTimeout) {
  // setsid moves the inner shell (then sleep) to a session of its own, still holding the
  // output pipe; the outer shell waits for it. The kill reaches only the outer shell.
  const auto start = Steady::now();
  auto r = run_ok({"sh", "-c", "setsid sh -c 'echo $$; exec sleep 30'"}, Duration(500));
  EXPECT_LT(Steady::now() - start, std::chrono::seconds(10));
  EXPECT_TRUE(r.timed_out);
  const std::vector<pid_t> pids = pids_in(r.output);
  ASSERT_EQ(pids.size(), 1u) << r.output;
  ::kill(pids[0], SIGKILL);  // not in the group, so still running: clean up
}

TEST(Command, ABackgroundProcessThatLetGoOfTheOutputIsNotWaitedFor) {
  const auto start = Steady::now();
  auto r = run_ok({"sh", "-c", "sleep 30 >/dev/null 2>&1 & echo $!"}, seconds(20));
  EXPECT_LT(Steady::now() - start, std::chrono::seconds(10));
  EXPECT_TRUE(r.ok());
  const std::vector<pid_t> pids = pids_in(r.output);
  ASSERT_EQ(pids.size(), 1u) << r.output;
  ::kill(pids[0], SIGKILL);  // not ours to wait for; just do not leave it running
}

TEST(Command, NoZombieAfterANormalExit) {
  auto r = run_ok({"sh", "-c", "echo $$"});
  const std::vector<pid_t> pids = pids_in(r.output);
  ASSERT_EQ(pids.size(), 1u) << r.output;
  expect_reaped(pids[0]);
}

TEST(Command, EnvironmentIsInheritedPlusTheExtraVariables) {
  ASSERT_EQ(::setenv("DROVER_COMMAND_TEST_INHERITED", "from the agent", 1), 0);
  ASSERT_EQ(::setenv("DROVER_COMMAND_TEST_REPLACED", "old", 1), 0);
  auto r = run_ok(
      {"sh", "-c",
       "echo \"$DROVER_COMMAND_TEST_INHERITED|$DROVER_COMMAND_TEST_EXTRA|"
       "$DROVER_COMMAND_TEST_REPLACED\"; env | grep -c '^DROVER_COMMAND_TEST_REPLACED='"},
      kGenerous, {{"DROVER_COMMAND_TEST_EXTRA", "a b=c"}, {"DROVER_COMMAND_TEST_REPLACED", "new"}});
  ::unsetenv("DROVER_COMMAND_TEST_INHERITED");
  ::unsetenv("DROVER_COMMAND_TEST_REPLACED");
  EXPECT_EQ(r.output, "from the agent|a b=c|new\n1\n");
}

TEST(Command, CommandNotFoundIsAnIoError) {
  auto r = system_commands().run({"drover-no-such-command"}, kGenerous);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kIo);
  EXPECT_NE(r.error().message.find("drover-no-such-command"), std::string::npos);

  auto abs = system_commands().run({"/nonexistent/drover"}, kGenerous);
  ASSERT_FALSE(abs.ok());
  EXPECT_EQ(abs.error().code, ErrorCode::kIo);
}

TEST(Command, TheChildInheritsNoDescriptorOfTheRunner) {
  // Whatever this test process leaves inheritable (not close-on-exec) may legitimately show
  // up in the child; the runner's own pipe must not.
  std::set<int> inheritable;
  for (int fd : open_fds("/proc/self/fd")) {
    const int flags = ::fcntl(fd, F_GETFD);
    if (flags >= 0 && (flags & FD_CLOEXEC) == 0) inheritable.insert(fd);
  }
  // ls lists the directory of its own descriptors (one of which is that directory).
  auto r = run_ok({"sh", "-c", "exec ls /proc/self/fd"});
  std::set<int> child;
  for (pid_t fd : pids_in(r.output)) child.insert(fd);
  ASSERT_TRUE(child.count(0) && child.count(1) && child.count(2)) << r.output;
  int unexplained = 0;
  for (int fd : child) {
    if (fd > 2 && !inheritable.count(fd)) ++unexplained;
  }
  EXPECT_LE(unexplained, 1) << "child descriptors: " << r.output;  // ls's directory handle
}

TEST(Command, RunsConcurrentlyFromSeveralThreads) {
  constexpr int kThreads = 4;
  constexpr int kRuns = 15;
  std::vector<std::vector<std::string>> outputs(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([t, &outputs] {
      for (int i = 0; i < kRuns; ++i) {
        auto r = system_commands().run(
            {"echo", "thread" + std::to_string(t) + "-" + std::to_string(i)}, kGenerous);
        outputs[t].push_back(r.ok() ? r->output : r.error().to_string());
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t) {
    ASSERT_EQ(outputs[t].size(), static_cast<size_t>(kRuns));
    for (int i = 0; i < kRuns; ++i)
      EXPECT_EQ(outputs[t][i], "thread" + std::to_string(t) + "-" + std::to_string(i) + "\n");
  }
}

}  // namespace
}  // namespace drover::agent
