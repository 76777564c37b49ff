// RemoteCommands on the device: only what the configuration allows runs; an id runs at most
// once, through restarts, resends and journal writes that fail; results are reported until
// the server has them.
#include "agent/remote_commands.h"

#include <gtest/gtest.h>

#include "base/memory_file_system.h"

namespace drover::agent {
namespace {

using protocol::CommandOutcome;

class FakeRunner final : public CommandRunner {
 public:
  std::vector<std::vector<std::string>> calls;
  int exit_code = 0;
  Result<CommandResult> run(const std::vector<std::string>& argv, Duration,
                            const Environment&) override {
    calls.push_back(argv);
    CommandResult r;
    r.exit_code = exit_code;
    r.output = "ran " + argv.back() + "\n";
    return r;
  }
};

class FakeServer final : public ServerLink {
 public:
  struct Report {
    std::string id;
    CommandOutcome outcome;
    int exit_code;
    std::string output;
  };
  std::vector<Report> reports;
  ErrorCode refuse = ErrorCode::kInternal;  // kInternal: accept
  Status connect(const Inventory&) override { return ok_status(); }
  Result<CheckInAnswer> check_in(const Inventory&, protocol::UpdateState, std::string_view, bool,
                                 const protocol::ConfigReport*) override {
    return CheckInAnswer{};
  }
  Status report(const std::string&, const std::string&, protocol::Report, const std::string&,
                const std::string&) override {
    return ok_status();
  }
  Result<uint64_t> download(const UpdateRecord&, const std::string&, uint64_t,
                            const std::function<void(uint64_t)>&) override {
    return uint64_t{0};
  }
  Status report_command(const std::string& id, CommandOutcome outcome, int exit_code,
                        const std::string& output) override {
    if (refuse != ErrorCode::kInternal) return Error{refuse, "refused"};
    reports.push_back({id, outcome, exit_code, output});
    return ok_status();
  }
};

// A file system whose writes fail while `broken` is set.
class BreakableFileSystem final : public FileSystem {
 public:
  bool broken = false;
  MemoryFileSystem inner;
  Result<std::string> read(const std::string& p) override { return inner.read(p); }
  Status write(const std::string& p, std::string_view d) override {
    if (broken) return io_error("disk full");
    return inner.write(p, d);
  }
  Status sync(const std::string& p) override { return inner.sync(p); }
  Status rename(const std::string& f, const std::string& t) override { return inner.rename(f, t); }
  Status sync_dir(const std::string& d) override { return inner.sync_dir(d); }
  Status remove(const std::string& p) override { return inner.remove(p); }
  Result<std::unique_ptr<AppendFile>> open_append(const std::string& p) override {
    return inner.open_append(p);
  }
  Result<std::unique_ptr<ReadFile>> open_read(const std::string& p) override {
    return inner.open_read(p);
  }
  Result<std::vector<std::string>> list(const std::string& d) override { return inner.list(d); }
  Status make_dir(const std::string& d) override { return inner.make_dir(d); }
  Status truncate(const std::string& p, uint64_t n) override { return inner.truncate(p, n); }
};

const Timestamp kNow = Timestamp(Duration(1'780'000'000'000));

RemoteCommandOptions allowed() {
  RemoteCommandOptions o;
  o.enabled = true;
  o.restart_service = {"systemctl", "restart"};
  o.services = {"sensord"};
  o.named["flush"] = {{"flush-cache", "--all"}, seconds(30)};
  return o;
}

RemoteCommand cmd(const std::string& id, const std::string& action, const std::string& arg = "") {
  return {id, action, arg, kNow + hours(1)};
}

TEST(RemoteCommandsAgent, OnlyWhatTheConfigurationAllowsRunsAndEveryOutcomeIsReported) {
  BreakableFileSystem fs;
  FakeRunner runner;
  ManualClock clock(kNow);
  FakeServer server;
  RemoteCommands rc("/data/commands.json", allowed(), runner, clock, fs);
  ASSERT_TRUE(rc.start().ok());
  int reboots = 0;
  CommandHooks hooks{[&] {
                       ++reboots;
                       return io_error("no permission");
                     },
                     {},
                     {},
                     {}};
  ASSERT_TRUE(rc.take({cmd("a", "restart_service", "sensord"),
                       cmd("b", "restart_service", "sshd"),
                       cmd("c", "run", "flush"),
                       cmd("d", "run", "rm-everything"),
                       cmd("e", "format_disk"),
                       cmd("f", "reboot"),
                       cmd("g", "clear_update"),
                       {"h", "reboot", "", kNow - seconds(1)}})
                  .ok());
  ASSERT_TRUE(rc.run_pending(hooks).ok());
  ASSERT_TRUE(rc.deliver(server).ok());
  // Two programs ran, exactly as configured; nothing else did.
  ASSERT_EQ(runner.calls.size(), 2u);
  EXPECT_EQ(runner.calls[0], (std::vector<std::string>{"systemctl", "restart", "sensord"}));
  EXPECT_EQ(runner.calls[1], (std::vector<std::string>{"flush-cache", "--all"}));
  EXPECT_EQ(reboots, 1);  // "h" had expired
  ASSERT_EQ(server.reports.size(), 8u);
  const std::vector<CommandOutcome> want = {CommandOutcome::kSucceeded, CommandOutcome::kRefused,
                                            CommandOutcome::kSucceeded, CommandOutcome::kRefused,
                                            CommandOutcome::kRefused,   CommandOutcome::kFailed,
                                            CommandOutcome::kRefused,   CommandOutcome::kExpired};
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(server.reports[i].outcome, want[i])
        << server.reports[i].id << ": " << server.reports[i].output;
  }
  EXPECT_NE(server.reports[5].output.find("no permission"), std::string::npos);
  EXPECT_EQ(server.reports[0].output, "ran sensord\n");
  EXPECT_FALSE(rc.has_undelivered());

  // An agent whose configuration has no remote_commands refuses everything, clear_update too.
  RemoteCommands off("/data/off.json", RemoteCommandOptions{}, runner, clock, fs);
  ASSERT_TRUE(off.start().ok());
  bool cleared = false;
  const CommandHooks clear{{},
                           [&](bool) -> Result<std::string> {
                             cleared = true;
                             return std::string("cleared");
                           },
                           {},
                           {}};
  ASSERT_TRUE(off.take({cmd("x", "clear_update"), cmd("y", "run", "flush")}).ok());
  ASSERT_TRUE(off.run_pending(clear).ok());
  EXPECT_FALSE(cleared);
  for (const JournaledCommand& entry : off.journal())
    EXPECT_EQ(entry.outcome, CommandOutcome::kRefused);
  EXPECT_EQ(runner.calls.size(), 2u);
}

TEST(RemoteCommandsAgent, ReapplyConfigRunsThroughItsHookAndIsRefusedWithoutOne) {
  BreakableFileSystem fs;
  FakeRunner runner;
  ManualClock clock(kNow);
  FakeServer server;
  RemoteCommands rc("/data/commands.json", allowed(), runner, clock, fs);
  ASSERT_TRUE(rc.start().ok());
  int asked = 0;
  CommandHooks hooks{{}, {}, {}, [&]() -> Result<std::string> {
                       if (++asked == 1) return std::string("configuration version 3 applied");
                       return Error{ErrorCode::kFailedPrecondition, "version 4 refused"};
                     }};
  ASSERT_TRUE(rc.take({cmd("a", "reapply_config"), cmd("b", "reapply_config")}).ok());
  ASSERT_TRUE(rc.run_pending(hooks).ok());
  ASSERT_TRUE(rc.deliver(server).ok());
  ASSERT_EQ(server.reports.size(), 2u);
  EXPECT_EQ(server.reports[0].outcome, CommandOutcome::kSucceeded);
  EXPECT_EQ(server.reports[0].output, "configuration version 3 applied");
  EXPECT_EQ(server.reports[1].outcome, CommandOutcome::kFailed);
  EXPECT_NE(server.reports[1].output.find("version 4 refused"), std::string::npos);
  // An agent without configuration has no hook: refused, saying why.
  ASSERT_TRUE(rc.take({cmd("c", "reapply_config")}).ok());
  ASSERT_TRUE(rc.run_pending(CommandHooks{}).ok());
  ASSERT_TRUE(rc.deliver(server).ok());
  ASSERT_EQ(server.reports.size(), 3u);
  EXPECT_EQ(server.reports[2].outcome, CommandOutcome::kRefused);
  EXPECT_NE(server.reports[2].output.find("applies no configuration"), std::string::npos);
  EXPECT_TRUE(runner.calls.empty());  // nothing of it through the runner: the hook did it
}

TEST(RemoteCommandsAgent, AnIdRunsOnceThroughResendsRestartsAndUndeliveredResults) {
  BreakableFileSystem fs;
  FakeRunner runner;
  ManualClock clock(kNow);
  FakeServer server;
  const CommandHooks hooks;
  {
    RemoteCommands rc("/data/commands.json", allowed(), runner, clock, fs);
    ASSERT_TRUE(rc.start().ok());
    ASSERT_TRUE(rc.take({cmd("a", "run", "flush")}).ok());
    ASSERT_TRUE(rc.run_pending(hooks).ok());
    server.refuse = ErrorCode::kIo;  // the server is out of reach
    EXPECT_FALSE(rc.deliver(server).ok());
    EXPECT_TRUE(rc.has_undelivered());
  }
  // A new agent (a restart) over the same journal, sent the same command again.
  RemoteCommands rc("/data/commands.json", allowed(), runner, clock, fs);
  ASSERT_TRUE(rc.start().ok());
  ASSERT_TRUE(rc.take({cmd("a", "run", "flush")}).ok());
  ASSERT_TRUE(rc.run_pending(hooks).ok());
  EXPECT_EQ(runner.calls.size(), 1u);
  server.refuse = ErrorCode::kInternal;
  ASSERT_TRUE(rc.deliver(server).ok());
  ASSERT_EQ(server.reports.size(), 1u);
  EXPECT_EQ(server.reports[0].id, "a");
  // Delivered: sent again (the server's answer was lost), it is still not run again.
  ASSERT_TRUE(rc.take({cmd("a", "run", "flush")}).ok());
  ASSERT_TRUE(rc.run_pending(hooks).ok());
  EXPECT_EQ(runner.calls.size(), 1u);
  // A result the server no longer knows is dropped, not retried forever.
  ASSERT_TRUE(rc.take({cmd("b", "run", "flush")}).ok());
  ASSERT_TRUE(rc.run_pending(hooks).ok());
  server.refuse = ErrorCode::kNotFound;
  EXPECT_TRUE(rc.deliver(server).ok());
  EXPECT_FALSE(rc.has_undelivered());
}

TEST(RemoteCommandsAgent, ACommandCutShortIsNotRunAgainAndAJournalThatCannotBeWrittenRunsNothing) {
  BreakableFileSystem fs;
  FakeRunner runner;
  ManualClock clock(kNow);
  // A journal as an agent killed in the middle of two commands left it.
  ASSERT_TRUE(fs.inner
                  .write("/data/commands.json",
                         R"({"commands": [
                   {"id": "a", "action": "run", "argument": "flush", "expires_at": 0, "step": "running"},
                   {"id": "r", "action": "reboot", "argument": "", "expires_at": 0, "step": "running"}]})")
                  .ok());
  RemoteCommands rc("/data/commands.json", allowed(), runner, clock, fs);
  ASSERT_TRUE(rc.start().ok());
  ASSERT_EQ(rc.journal().size(), 2u);
  EXPECT_EQ(rc.journal()[0].outcome, CommandOutcome::kFailed);
  EXPECT_NE(rc.journal()[0].output.find("cut short"), std::string::npos);
  EXPECT_EQ(rc.journal()[1].outcome, CommandOutcome::kSucceeded);  // the reboot happened
  ASSERT_TRUE(rc.run_pending({}).ok());
  EXPECT_TRUE(runner.calls.empty());

  // The disk refuses the journal: nothing is taken, so nothing runs (the server sends it
  // again, and it runs once the journal can say so).
  fs.broken = true;
  EXPECT_FALSE(rc.take({cmd("c", "run", "flush")}).ok());
  ASSERT_TRUE(rc.run_pending({}).ok());
  EXPECT_TRUE(runner.calls.empty());
  fs.broken = false;
  ASSERT_TRUE(rc.take({cmd("c", "run", "flush")}).ok());
  ASSERT_TRUE(rc.run_pending({}).ok());
  EXPECT_EQ(runner.calls.size(), 1u);

  // A journal that is not one is an error at start, not an empty history (that would run
  // everything again).
  ASSERT_TRUE(fs.inner.write("/data/bad.json", "{\"commands\": [{\"id\": 1}]}").ok());
  RemoteCommands bad("/data/bad.json", allowed(), runner, clock, fs);
  EXPECT_EQ(bad.start().error().code, ErrorCode::kCorruption);
}

}  // namespace
}  // namespace drover::agent
