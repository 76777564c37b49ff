// The agent against a server that misbehaves: it keeps offering what keeps failing, offers
// an image larger than the disk or than anything sensible, and asks for check-ins 1 ms
// apart. The agent must back off, refuse before downloading, and never spin.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <map>

#include "agent/agent.h"
#include "agent/command.h"
#include "agent/server_link.h"
#include "agent/signed_offers.h"
#include "agent/update_module.h"

namespace drover::agent {
namespace {

namespace fs = std::filesystem;

// Offers `offer` at every check-in and answers downloads with `download_error` (or writes
// the bytes asked for when it is empty), counting everything.
class HostileServer final : public ServerLink {
 public:
  Offer offer;
  Duration next_checkin = Duration(1);  // 1 ms: "come back at once"
  std::optional<Error> download_error;
  int check_ins = 0;
  int downloads = 0;
  std::vector<std::pair<std::string, std::string>> reports;  // status, message

  Status connect(const Inventory&) override { return ok_status(); }
  Result<CheckInAnswer> check_in(const Inventory&, protocol::UpdateState, std::string_view, bool,
                                 const protocol::ConfigReport*) override {
    ++check_ins;
    CheckInAnswer a;
    a.offer = offer;
    a.next_checkin = next_checkin;
    return a;
  }
  Status report(const std::string&, const std::string&, protocol::Report status,
                const std::string& message, const std::string&) override {
    reports.emplace_back(protocol::to_string(status), message);
    return ok_status();
  }
  Result<uint64_t> download(const UpdateRecord& u, const std::string& path, uint64_t,
                            const std::function<void(uint64_t)>&) override {
    ++downloads;
    // Something lands on disk before the failure, as a real cut download leaves.
    std::ofstream(path) << "partial";
    if (download_error) return *download_error;
    return u.size;
  }
};

class AgentOfferTest : public ::testing::Test {
 protected:
  AgentOfferTest() {
    std::string pattern = (fs::temp_directory_path() / "drover-agent-offer-XXXXXX").string();
    EXPECT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    std::ofstream(dir_ / "app.bin") << "1.0.0";
    module_ = make_file_module({(dir_ / "app.bin").string(), {}, seconds(5)}, system_commands());
    options_.data_dir = dir_.string();
    options_.component = "firmware";
    options_.backoff_initial = seconds(5);
    options_.backoff_max = hours(1);
    options_.free_bytes = [this](const std::string&) -> Result<uint64_t> { return free_; };
    server_.offer.rollout_id = "r1";
    server_.offer.component = "firmware";
    server_.offer.version = "2.0.0";
    server_.offer.size = 1000;
    server_.offer.sha256 = std::string(64, 'a');
  }
  ~AgentOfferTest() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  std::unique_ptr<Agent> make_agent(uint64_t seed = 1) {
    auto agent =
        std::make_unique<Agent>(options_, server_, *module_, system_commands(), clock_, seed);
    EXPECT_TRUE(agent->start({{"firmware", "1.0.0"}}).ok());
    return agent;
  }

  // Runs the agent for `span` of the manual clock, as its main loop would; returns how many
  // steps it took (a spinning agent takes millions: the cap stops it).
  int run_for(Agent& agent, Duration span) {
    const Timestamp end = clock_.now() + span;
    int steps = 0;
    while (clock_.now() < end && steps < 1'000'000) {
      const Duration wait = agent.run_once();
      ++steps;
      clock_.advance_to(clock_.now() + std::max(wait, Duration(0)));
    }
    return steps;
  }

  int failed_reports() const {
    int n = 0;
    for (const auto& [status, message] : server_.reports) n += status == "failed" ? 1 : 0;
    return n;
  }

  fs::path dir_;
  ManualClock clock_{Timestamp(hours(24 * 20000))};
  HostileServer server_;
  std::unique_ptr<UpdateModule> module_;
  AgentOptions options_;
  uint64_t free_ = uint64_t{1} << 40;
};

// A download that always fails (a 404 the server keeps offering): attempts of the same offer
// are spaced by a backoff that doubles, over 20 seeds, and check-ins stay at least 1 s apart.
TEST_F(AgentOfferTest, AnOfferThatKeepsFailingIsRetriedWithGrowingBackoff) {
  server_.download_error = Error{ErrorCode::kNotFound, "download: HTTP 404"};
  int most = 0;
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    server_.downloads = 0;
    server_.check_ins = 0;
    auto agent = make_agent(seed);
    const int steps = run_for(*agent, minutes(30));
    // Without backoff: an attempt per step, and steps without end. With it, waits of
    // 2.5-5 s, then up to 10, 20, 40 s ... (full jitter): a handful in 30 minutes.
    EXPECT_LE(server_.downloads, 25) << "seed " << seed;
    EXPECT_GE(server_.downloads, 3) << "seed " << seed;
    EXPECT_LE(server_.check_ins, 30 * 60 + 50) << "seed " << seed;  // >= 1 s apart
    EXPECT_LT(steps, 10'000) << "seed " << seed;
    EXPECT_FALSE(fs::exists(dir_ / "download.part")) << "seed " << seed;
    most = std::max(most, server_.downloads);
  }
  std::printf("most download attempts of one failing offer in 30 min over 20 seeds: %d\n", most);
  // A different offer is taken at once: the backoff is the failing offer's only.
  server_.offer.version = "2.0.1";
  server_.downloads = 0;
  auto agent = make_agent();
  run_for(*agent, seconds(1));
  EXPECT_EQ(server_.downloads, 1);
}

// An image larger than max_download is refused without a byte fetched, once per backoff.
TEST_F(AgentOfferTest, AnImageOverTheLimitIsRefusedBeforeTheDownload) {
  server_.offer.size = uint64_t{1} << 50;
  auto agent = make_agent();
  run_for(*agent, seconds(3));
  EXPECT_EQ(server_.downloads, 0);
  ASSERT_EQ(failed_reports(), 1);
  EXPECT_NE(server_.reports.front().second.find("max_download_bytes"), std::string::npos)
      << server_.reports.front().second;
  EXPECT_EQ(agent->record().step, UpdateStep::kIdle);
  EXPECT_NE(agent->last_error().find("not taking firmware@2.0.0 again"), std::string::npos)
      << agent->last_error();
}

// A download that will not fit, with min_free to spare, is not started: the attempt fails
// and says how much was free.
TEST_F(AgentOfferTest, ADownloadThatWillNotFitIsNotStarted) {
  options_.min_free_bytes = 100;
  free_ = 1000 + 99;  // the image and one byte too few
  auto agent = make_agent();
  run_for(*agent, seconds(3));
  EXPECT_EQ(server_.downloads, 0);
  ASSERT_GE(failed_reports(), 1);
  EXPECT_NE(server_.reports.back().second.find("1.1 KiB free"), std::string::npos)
      << server_.reports.back().second;
  free_ = 1000 + 100;
  run_for(*agent, minutes(5));  // after the backoff, it fits
  EXPECT_GE(server_.downloads, 1);
}

// A disk that fills during the download fails the attempt (no retrying into a full disk),
// gives the partial file's space back, and backs off.
TEST_F(AgentOfferTest, AFullDiskDuringTheDownloadFailsTheAttemptAndFreesItsSpace) {
  server_.download_error =
      Error{ErrorCode::kResourceExhausted, "writing download.part: No space left on device"};
  auto agent = make_agent();
  run_for(*agent, seconds(2));
  EXPECT_EQ(server_.downloads, 1);
  ASSERT_EQ(failed_reports(), 1);
  EXPECT_NE(server_.reports.back().second.find("No space left"), std::string::npos);
  EXPECT_FALSE(fs::exists(dir_ / "download.part"));
  EXPECT_EQ(agent->record().step, UpdateStep::kIdle);
}

// "Come back in 1 ms" is taken as 1 s.
TEST_F(AgentOfferTest, CheckInsAreNeverCloserThanASecond) {
  server_.offer.component = "other";  // refused, so the agent stays idle and polls
  auto agent = make_agent();
  const Duration first = agent->run_once();
  EXPECT_GE(first, kMinPoll);
  EXPECT_LE(run_for(*agent, minutes(1)), 61);
  EXPECT_LE(server_.check_ins, 62);
}

// Signed update metadata that a stub stands for: it answers `answer` and counts its calls.
class StubCheck final : public OfferCheck {
 public:
  Status answer = ok_status();
  int calls = 0;
  Status check(const Offer&, const Inventory&) override {
    ++calls;
    return answer;
  }
};

// The metadata out of reach (a proxy that answers 502 for /tuf/): nothing is reported and
// nothing downloaded, and the offer is asked about less and less often, not every few
// seconds, although every check-in succeeds.
TEST_F(AgentOfferTest, MetadataOutOfReachIsNeitherReportedNorAskedAboutAtEveryCheckIn) {
  StubCheck stub;
  stub.answer = Error{ErrorCode::kIo, "HTTP 502"};
  options_.offer_check = &stub;
  server_.next_checkin = seconds(30);
  auto agent = make_agent();
  run_for(*agent, hours(6));
  EXPECT_EQ(server_.downloads, 0);
  EXPECT_TRUE(server_.reports.empty());
  EXPECT_GT(server_.check_ins, 300) << "it keeps checking in at the server's pace";
  EXPECT_LT(stub.calls, 20) << "but asks about the offer with a growing backoff";
  EXPECT_GE(stub.calls, 5);
  // Reachable again, the offer is taken once its backoff has passed.
  stub.answer = ok_status();
  run_for(*agent, hours(2));
  EXPECT_GE(server_.downloads, 1);
}

// A refusal is reported once per attempt, with the metadata's reason, and nothing is fetched.
TEST_F(AgentOfferTest, AnOfferTheMetadataRefusesIsReportedAndNeverDownloaded) {
  StubCheck stub;
  stub.answer = Error{ErrorCode::kFailedPrecondition, "no signed target firmware/2.0.0"};
  options_.offer_check = &stub;
  auto agent = make_agent();
  run_for(*agent, seconds(2));
  EXPECT_EQ(server_.downloads, 0);
  ASSERT_EQ(failed_reports(), 1);
  EXPECT_NE(server_.reports.back().second.find("no signed target firmware/2.0.0"),
            std::string::npos);
}

// Versions only go forward: an older version, or the same precedence under another name, is
// refused unless it is a revert to what ran before the last commit (previous.json) — before
// the metadata is even asked.
TEST_F(AgentOfferTest, OnlyTheRevertToWhatRanBeforeMayGoBack) {
  std::ofstream(dir_ / "previous.json") << R"({"firmware": "0.9.0"})";
  StubCheck stub;
  options_.offer_check = &stub;
  struct Case {
    std::string version;
    bool revert;
    std::string refusal;  // "" when taken
  };
  for (const Case& c : std::vector<Case>{
           {"0.8.0", false, "0.8.0 is older than the installed 1.0.0, and not offered as a revert"},
           {"0.8.0", true, "not the version this device ran before its last update"},
           {"0.9.0", false, "not offered as a revert"},
           {"1.0.0+rebuilt", false, "not offered as a revert"},
           {"0.9.0", true, ""},
           {"1.0.1", false, ""}}) {
    SCOPED_TRACE(c.version + (c.revert ? " revert" : ""));
    server_.offer.version = c.version;
    server_.offer.revert = c.revert;
    server_.reports.clear();
    server_.downloads = 0;
    stub.calls = 0;
    auto agent = make_agent();
    EXPECT_EQ(agent->previous().at("firmware"), "0.9.0");
    agent->run_once();
    if (c.refusal.empty()) {
      EXPECT_EQ(stub.calls, 1);
      EXPECT_EQ(agent->record().step, UpdateStep::kDownloading);
    } else {
      EXPECT_EQ(stub.calls, 0);
      ASSERT_EQ(failed_reports(), 1);
      EXPECT_NE(server_.reports.back().second.find(c.refusal), std::string::npos)
          << server_.reports.back().second;
    }
    fs::remove(dir_ / "update.json");
  }
}

}  // namespace
}  // namespace drover::agent
