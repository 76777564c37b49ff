// The link watchdog on a manual clock: the reset command while the server stays silent, a
// reboot after a day of it — not repeated at once after the reboot (the count goes on from
// the last answer, kept on disk) and twice as far apart while reboots do not help — a probe
// that holds everything back while the network is up, and a state file that does not parse.
#include "agent/link_watchdog.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>

namespace drover::agent {
namespace {

namespace fs = std::filesystem;

class FakeRunner final : public CommandRunner {
 public:
  std::vector<std::string> ran;  // argv[0] of each
  std::map<std::string, int> exit_codes;
  Result<CommandResult> run(const std::vector<std::string>& argv, Duration,
                            const Environment&) override {
    ran.push_back(argv.front());
    CommandResult r;
    r.exit_code = exit_codes[argv.front()];
    return r;
  }
  size_t count(const std::string& what) const {
    return static_cast<size_t>(std::count(ran.begin(), ran.end(), what));
  }
};

class LinkWatchdogTest : public ::testing::Test {
 protected:
  LinkWatchdogTest() {
    char tmpl[] = "/tmp/drover-link-watchdog-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    options.reset_after = hours(2);
    options.reset = {"modem-reset"};
    options.reboot_after = hours(24);
  }
  ~LinkWatchdogTest() override { fs::remove_all(dir_); }

  // A new watchdog over the same file, as after a restart of the agent (or a reboot).
  void start() {
    dog = std::make_unique<LinkWatchdog>(dir_ + "/link.json", options, runner, clock, [this] {
      ++reboots;
      return io_error("still up");
    });
    ASSERT_TRUE(dog->start().ok());
  }
  // Runs the watchdog as the agent's loop does, until `until`; the link's last answer is
  // `answer` (none: silent since this start).
  void run_until(Timestamp until, std::optional<Timestamp> answer = std::nullopt) {
    while (clock.now() < until) {
      const LinkWatchdog::Check c = dog->check(answer);
      if (!c.did.empty()) said.push_back(c.did);
      clock.advance(std::min(c.next, until - clock.now()));
    }
  }

  ManualClock clock{Timestamp(Duration(1'780'000'000'000))};
  LinkWatchdogOptions options;
  FakeRunner runner;
  int reboots = 0;
  std::vector<std::string> said;
  std::unique_ptr<LinkWatchdog> dog;
  std::string dir_;
};

TEST_F(LinkWatchdogTest, ASilentServerGetsTheResetEveryIntervalAndARebootAfterADay) {
  start();
  const Timestamp t0 = clock.now();
  run_until(t0 + hours(2) - minutes(1), t0);
  EXPECT_EQ(runner.count("modem-reset"), 0u);
  run_until(t0 + hours(2) + minutes(1), t0);
  EXPECT_EQ(runner.count("modem-reset"), 1u);
  ASSERT_FALSE(said.empty());
  EXPECT_NE(said.back().find("no answer from the server for 2h"), std::string::npos) << said.back();
  EXPECT_NE(said.back().find("ran the reset (modem-reset): exit 0"), std::string::npos);
  // Every two hours after that, and a reboot at 24 hours.
  run_until(t0 + hours(24) - minutes(1), t0);
  EXPECT_EQ(runner.count("modem-reset"), 11u);
  EXPECT_EQ(reboots, 0);
  run_until(t0 + hours(24) + minutes(1), t0);
  EXPECT_EQ(reboots, 1);

  // The agent comes back after the reboot: the silence goes on from the last answer, and the
  // next reboot waits twice as long (48 hours), the one after four times (96 hours).
  start();
  run_until(t0 + hours(72) - minutes(1));
  EXPECT_EQ(reboots, 1);
  run_until(t0 + hours(72) + minutes(1));
  EXPECT_EQ(reboots, 2);
  run_until(t0 + hours(72 + 96) - minutes(1));
  EXPECT_EQ(reboots, 2);
  run_until(t0 + hours(72 + 96) + minutes(1));
  EXPECT_EQ(reboots, 3);
  // At most a week apart however long it lasts.
  run_until(t0 + hours(72 + 96) + kMaxRebootBackoff + minutes(1));
  EXPECT_EQ(reboots, 4);
  run_until(t0 + hours(72 + 96) + 2 * kMaxRebootBackoff + minutes(1));
  EXPECT_EQ(reboots, 5);

  // An answer ends it: the count starts again from there, with no backoff left over.
  const Timestamp heard = clock.now();
  const size_t resets = runner.count("modem-reset");
  run_until(heard + hours(24) - minutes(1), heard);
  EXPECT_EQ(reboots, 5);
  EXPECT_EQ(runner.count("modem-reset"), resets + 11);
  run_until(heard + hours(24) + minutes(1), heard);
  EXPECT_EQ(reboots, 6);
}

TEST_F(LinkWatchdogTest, AServerThatAnswersKeepsItQuietAndTheLastAnswerSurvivesARestart) {
  start();
  // Answers every half hour for three days: nothing is done.
  for (int i = 0; i < 6 * 24; ++i) {
    run_until(clock.now() + minutes(30), clock.now());
  }
  EXPECT_TRUE(runner.ran.empty());
  EXPECT_EQ(reboots, 0);
  const Timestamp last = clock.now() - minutes(30);
  // Restarted an hour after its last answer (the file is written at most hourly): the reset
  // comes two hours after about the last answer, not two hours after the restart.
  run_until(last + hours(1), last);
  start();
  run_until(last + hours(2) + minutes(1));
  EXPECT_EQ(runner.count("modem-reset"), 1u);
}

TEST_F(LinkWatchdogTest, AProbeThatReachesTheNetworkHoldsTheResetAndTheRebootBack) {
  options.probe = {"ping-gateway"};
  start();
  const Timestamp t0 = clock.now();
  run_until(t0 + hours(48), t0);  // the server is down, the network is not
  EXPECT_EQ(runner.count("modem-reset"), 0u);
  EXPECT_EQ(reboots, 0);
  EXPECT_GE(runner.count("ping-gateway"), 20u);
  ASSERT_FALSE(said.empty());
  EXPECT_NE(said.back().find("the probe reaches the network: nothing reset"), std::string::npos)
      << said.back();
  // The network goes too: the probe fails, and the reset runs, saying why.
  runner.exit_codes["ping-gateway"] = 1;
  run_until(clock.now() + hours(2), t0);
  EXPECT_EQ(runner.count("modem-reset"), 1u);
  EXPECT_NE(said.back().find("(probe: exit 1)"), std::string::npos) << said.back();
}

TEST_F(LinkWatchdogTest, AStateFileThatDoesNotParseIsAnErrorNotASilentReset) {
  std::ofstream(dir_ + "/link.json") << R"({"last_answer": "yesterday"})";
  LinkWatchdog dog2(dir_ + "/link.json", options, runner, clock, [] { return ok_status(); });
  const Status st = dog2.start();
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, ErrorCode::kCorruption);
  EXPECT_NE(st.error().message.find("link.json"), std::string::npos);
}

}  // namespace
}  // namespace drover::agent
