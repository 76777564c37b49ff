// The link watchdog on a manual clock: nothing while the agent does not try, the reset command
// while its requests go unanswered, a reboot after a day of it — no reset right after it, not
// repeated at once after the restart (the silence goes on from when it began, kept on disk)
// and twice as far apart while reboots do not help — an answer ending it, a probe that holds
// everything back while the network is up, and a state file that does not parse.
#include "agent/link_watchdog.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>

namespace drover::agent {
namespace {

namespace fs = std::filesystem;
using Reach = ServerLink::Reach;

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
    auto started = dog->start();
    ASSERT_TRUE(started.ok());
    if (!started->empty()) said.push_back(*started);
  }
  // Runs the watchdog as the agent's loop does until `until`, the link saying `reach`.
  void run_until(Timestamp until, const Reach& reach) {
    while (clock.now() < until) {
      const LinkWatchdog::Check c = dog->check(reach);
      if (!c.did.empty()) said.push_back(c.did);
      clock.advance(std::min(c.next, until - clock.now()));
    }
  }
  static Reach failing_since(Timestamp t, std::optional<Timestamp> answered = std::nullopt) {
    return {answered, t};
  }

  ManualClock clock{Timestamp(Duration(1'780'000'000'000))};
  LinkWatchdogOptions options;
  FakeRunner runner;
  int reboots = 0;
  std::vector<std::string> said;
  std::unique_ptr<LinkWatchdog> dog;
  std::string dir_;
};

TEST_F(LinkWatchdogTest, UnansweredRequestsGetTheResetEveryIntervalAndARebootAfterADay) {
  start();
  const Timestamp t0 = clock.now();
  run_until(t0 + hours(2) - minutes(1), failing_since(t0));
  EXPECT_EQ(runner.count("modem-reset"), 0u);
  run_until(t0 + hours(2) + minutes(1), failing_since(t0));
  EXPECT_EQ(runner.count("modem-reset"), 1u);
  ASSERT_FALSE(said.empty());
  EXPECT_NE(said.back().find("no answer from the server for 2h"), std::string::npos) << said.back();
  EXPECT_NE(said.back().find("ran the reset (modem-reset): exit 0"), std::string::npos);
  // Every two hours after that, and a reboot at 24 hours — with no reset right after it.
  run_until(t0 + hours(24) - minutes(1), failing_since(t0));
  EXPECT_EQ(runner.count("modem-reset"), 11u);
  EXPECT_EQ(reboots, 0);
  run_until(t0 + hours(24) + minutes(30), failing_since(t0));
  EXPECT_EQ(reboots, 1);
  EXPECT_EQ(runner.count("modem-reset"), 11u);

  // The agent comes back after the reboot. Before its first request nothing is done; once
  // one goes unanswered, the silence goes on from t0: the next reboot waits twice as long
  // (at 72 hours), the one after four times (96 hours later).
  start();
  const Timestamp back = clock.now();
  run_until(back + hours(3), Reach{});
  EXPECT_EQ(runner.count("modem-reset"), 11u);
  run_until(t0 + hours(72) - minutes(1), failing_since(back + hours(3)));
  EXPECT_EQ(reboots, 1);
  run_until(t0 + hours(72) + minutes(1), failing_since(back + hours(3)));
  EXPECT_EQ(reboots, 2);
  run_until(t0 + hours(72 + 96) - minutes(1), failing_since(back + hours(3)));
  EXPECT_EQ(reboots, 2);
  run_until(t0 + hours(72 + 96) + minutes(1), failing_since(back + hours(3)));
  EXPECT_EQ(reboots, 3);
  // At most a week apart however long it lasts.
  run_until(t0 + hours(72 + 96) + kMaxRebootBackoff + minutes(1), failing_since(back));
  EXPECT_EQ(reboots, 4);
  run_until(t0 + hours(72 + 96) + 2 * kMaxRebootBackoff + minutes(1), failing_since(back));
  EXPECT_EQ(reboots, 5);

  // An answer ends it: a new silence counts from its own start, with no backoff left over.
  const Timestamp heard = clock.now();
  run_until(heard + hours(5), Reach{heard, std::nullopt});
  const Timestamp lost = clock.now();
  const size_t resets = runner.count("modem-reset");
  run_until(lost + hours(24) - minutes(1), failing_since(lost, heard));
  EXPECT_EQ(reboots, 5);
  EXPECT_EQ(runner.count("modem-reset"), resets + 11);
  run_until(lost + hours(24) + minutes(1), failing_since(lost, heard));
  EXPECT_EQ(reboots, 6);
}

TEST_F(LinkWatchdogTest, AnAgentThatDoesNotTryIsNotSilent) {
  // Polls once a day (or its link is down by schedule): answered each time it asks, quiet in
  // between — three days without a reset or a reboot.
  start();
  for (int day = 0; day < 3; ++day) {
    const Timestamp asked = clock.now();
    run_until(asked + hours(24), Reach{asked, std::nullopt});
  }
  EXPECT_TRUE(runner.ran.empty());
  EXPECT_EQ(reboots, 0);
}

TEST_F(LinkWatchdogTest, ASilenceGoesOnAcrossARestartFromWhenItBegan) {
  start();
  const Timestamp lost = clock.now();
  run_until(lost + hours(1), failing_since(lost));
  // Restarted an hour into the silence: the first request of the new run goes unanswered
  // too, and the reset comes two hours after the silence began, not after the restart.
  start();
  const Timestamp again = clock.now() + minutes(5);
  run_until(again, Reach{});
  run_until(lost + hours(2) - minutes(1), failing_since(again));
  EXPECT_EQ(runner.count("modem-reset"), 0u);
  run_until(lost + hours(2) + minutes(1), failing_since(again));
  EXPECT_EQ(runner.count("modem-reset"), 1u);
}

TEST_F(LinkWatchdogTest, AProbeThatReachesTheNetworkHoldsTheResetAndTheRebootBack) {
  options.probe = {"ping-beyond-the-modem"};
  start();
  const Timestamp t0 = clock.now();
  run_until(t0 + hours(48), failing_since(t0));  // the server is down, the network is not
  EXPECT_EQ(runner.count("modem-reset"), 0u);
  EXPECT_EQ(reboots, 0);
  EXPECT_GE(runner.count("ping-beyond-the-modem"), 20u);
  ASSERT_FALSE(said.empty());
  EXPECT_NE(said.back().find("the probe reaches the network: nothing reset"), std::string::npos)
      << said.back();
  // The network goes too: the probe fails, and the reset runs, saying why.
  runner.exit_codes["ping-beyond-the-modem"] = 1;
  run_until(clock.now() + hours(2), failing_since(t0));
  EXPECT_EQ(runner.count("modem-reset"), 1u);
  EXPECT_NE(said.back().find("(probe: exit 1)"), std::string::npos) << said.back();
}

TEST_F(LinkWatchdogTest, AStateFileThatDoesNotParseIsSetAsideAndTheWatchdogStartsAfresh) {
  std::ofstream(dir_ + "/link.json") << R"({"silent_since": "yesterday"})";
  start();
  ASSERT_FALSE(said.empty());
  EXPECT_NE(said.back().find("set aside"), std::string::npos) << said.back();
  EXPECT_TRUE(fs::exists(dir_ + "/link.json.damaged"));
  const Timestamp t0 = clock.now();
  run_until(t0 + hours(2) + minutes(1), failing_since(t0));
  EXPECT_EQ(runner.count("modem-reset"), 1u);
  EXPECT_TRUE(fs::exists(dir_ + "/link.json"));
}

}  // namespace
}  // namespace drover::agent
