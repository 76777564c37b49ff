// The device protocol's words: each spelled once and read back as itself, anything else
// refused with the words that are known; every report is an event the deployment table
// takes, and none is one of the engine's own; errors go out and come back as their kind.
#include <gtest/gtest.h>

#include "protocol/device.h"
#include "rollout/deployment_machine.h"

namespace drover::protocol {
namespace {

TEST(Protocol, EveryUpdateStateAndReportReadsBackAsItself) {
  for (size_t i = 0; i < kUpdateStateCount; ++i) {
    const auto s = static_cast<UpdateState>(i);
    auto back = parse_update_state(to_string(s));
    ASSERT_TRUE(back.ok()) << to_string(s);
    EXPECT_EQ(*back, s);
  }
  for (size_t i = 0; i < kReportCount; ++i) {
    const auto r = static_cast<Report>(i);
    auto back = parse_report(to_string(r));
    ASSERT_TRUE(back.ok()) << to_string(r);
    EXPECT_EQ(*back, r);
  }
}

TEST(Protocol, UnknownWordsAreRefusedNamingTheKnownOnes) {
  auto bad = parse_report("offer");  // the engine's word, not a device's
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(bad.error().message.find("withdraw"), std::string::npos) << bad.error().message;
  for (const char* word : {"", "Succeeded", "succeeded ", "revert", "cancel", "silence"})
    EXPECT_FALSE(parse_report(word).ok()) << word;
  EXPECT_FALSE(parse_update_state("sleeping").ok());
}

TEST(Protocol, OutcomesAreTheReportsThatEndAnAttempt) {
  EXPECT_FALSE(is_outcome(Report::kDownloading));
  EXPECT_FALSE(is_outcome(Report::kInstalling));
  EXPECT_FALSE(is_outcome(Report::kRebooting));
  for (Report r : {Report::kSucceeded, Report::kInstallFailed, Report::kRolledBack,
                   Report::kUnhealthy, Report::kWithdraw})
    EXPECT_TRUE(is_outcome(r)) << to_string(r);
}

// The events only the engine may apply are those no report maps to.
TEST(Protocol, EachReportIsADeviceEventAndNoneIsTheEngines) {
  bool reached[kDeploymentEventCount] = {};
  for (size_t i = 0; i < kReportCount; ++i) {
    const auto r = static_cast<Report>(i);
    const DeploymentEvent e = event_of(r);
    ASSERT_NE(e, DeploymentEvent::kCount) << to_string(r);
    EXPECT_STREQ(to_string(e), to_string(r));  // the same word on both sides
    reached[static_cast<size_t>(e)] = true;
  }
  for (DeploymentEvent engine_only :
       {DeploymentEvent::kOffer, DeploymentEvent::kCancel, DeploymentEvent::kSkip,
        DeploymentEvent::kRevert, DeploymentEvent::kSilence})
    EXPECT_FALSE(reached[static_cast<size_t>(engine_only)]) << to_string(engine_only);
  EXPECT_EQ(event_of(Report::kCount), DeploymentEvent::kCount);
}

TEST(Protocol, ErrorsGoOutAsOneStatusAndComeBackAsTheirKind) {
  EXPECT_EQ(http_status(ErrorCode::kInvalidArgument), 400);
  EXPECT_EQ(http_status(ErrorCode::kUnauthenticated), 401);
  EXPECT_EQ(http_status(ErrorCode::kPermissionDenied), 403);
  EXPECT_EQ(http_status(ErrorCode::kNotFound), 404);
  EXPECT_EQ(http_status(ErrorCode::kConflict), 409);
  EXPECT_EQ(http_status(ErrorCode::kIo), 503);
  EXPECT_EQ(http_status(ErrorCode::kResourceExhausted), 507);
  EXPECT_EQ(http_status(ErrorCode::kCorruption), 500);
  // What a device tells apart comes back as itself; the server's own failures are worth
  // another try (kIo).
  for (ErrorCode c :
       {ErrorCode::kInvalidArgument, ErrorCode::kUnauthenticated, ErrorCode::kPermissionDenied,
        ErrorCode::kNotFound, ErrorCode::kConflict, ErrorCode::kIo})
    EXPECT_EQ(error_code_of_status(http_status(c)), c) << error_code_name(c);
  for (ErrorCode c : {ErrorCode::kCorruption, ErrorCode::kInternal, ErrorCode::kResourceExhausted})
    EXPECT_EQ(error_code_of_status(http_status(c)), ErrorCode::kIo) << error_code_name(c);
  EXPECT_EQ(error_code_of_status(416), ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace drover::protocol
