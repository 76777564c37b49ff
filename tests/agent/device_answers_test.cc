// The device API's answers as the agent reads them, and what a broken or hostile server can
// send instead: every answer parses to a value or a kIo error naming what was wrong, never an
// exception, and nothing unbounded becomes a time.
#include "agent/device_answers.h"

#include <gtest/gtest.h>

namespace drover::agent {
namespace {

const std::string kSha = std::string(64, 'a');

std::string offer(const std::string& fields) {
  return R"({"offer": {)" + fields + R"(}, "commands": [], "next_checkin_s": 60})";
}

TEST(DeviceAnswers, TheDocumentedAnswersParse) {
  EXPECT_FALSE(*parse_enroll_answer(R"({"device_id": "d", "enrollment": "accepted"})"));
  EXPECT_TRUE(*parse_enroll_answer(R"({"device_id": "d", "enrollment": "pending"})"));
  EXPECT_EQ(*parse_challenge_answer(R"({"challenge": "abc"})"), "abc");
  auto token = parse_token_answer(R"({"token": "t.s", "expires_at": 1790000000000})");
  ASSERT_TRUE(token.ok());
  EXPECT_EQ(token->token, "t.s");
  EXPECT_EQ(token->expires.time_since_epoch().count(), 1790000000000);
  auto idle = parse_checkin_answer(R"({"offer": null, "commands": [], "next_checkin_s": 1800})");
  ASSERT_TRUE(idle.ok());
  EXPECT_FALSE(idle->offer.has_value());
  EXPECT_EQ(idle->next_checkin, minutes(30));
  auto busy = parse_checkin_answer(offer(R"("rollout_id": "r1", "component": "firmware",
      "version": "1.1.0", "size": 123, "sha256": ")" +
                                         kSha + R"(", "revert": true)"));
  ASSERT_TRUE(busy.ok()) << busy.error().to_string();
  ASSERT_TRUE(busy->offer.has_value());
  EXPECT_EQ(busy->offer->rollout_id, "r1");
  EXPECT_EQ(busy->offer->size, 123u);
  EXPECT_TRUE(busy->offer->revert);
  // Fields the agent does not know are a newer server's, not a mistake.
  EXPECT_TRUE(parse_checkin_answer(R"({"offer": null, "next_checkin_s": 5, "hint": 1})").ok());
  // No interval: the agent's own default applies (0 here).
  EXPECT_EQ(parse_checkin_answer(R"({"offer": null})")->next_checkin, Duration(0));
  // The configuration to run, when named; a malformed one is dropped, the rest still read.
  auto configured = parse_checkin_answer(R"({"offer": null, "config": {"version": 3, "sha256": ")" +
                                         kSha + R"("}, "next_checkin_s": 60})");
  ASSERT_TRUE(configured.ok()) << configured.error().to_string();
  EXPECT_EQ(configured->config, (ConfigWanted{3, kSha}));
  const std::vector<std::string> malformed = {R"("config": {"version": 3, "sha256": "abc"})",
                                              R"("config": {"sha256": ")" + kSha + R"("})",
                                              R"("config": "yes")", R"("config": null)"};
  for (const std::string& bad : malformed) {
    auto dropped = parse_checkin_answer(R"({"offer": null, )" + bad + R"(, "next_checkin_s": 60})");
    ASSERT_TRUE(dropped.ok()) << bad;
    EXPECT_FALSE(dropped->config.has_value()) << bad;
    EXPECT_EQ(dropped->next_checkin, minutes(1)) << bad;
  }
}

TEST(DeviceAnswers, WrongShapesAreIoErrorsNotExceptions) {
  const std::vector<std::string> bodies = {"",
                                           "not json",
                                           "[]",
                                           "null",
                                           "42",
                                           R"("text")",
                                           "{",
                                           R"({"challenge": 7})",
                                           R"({"challenge": ["a"]})",
                                           R"({"challenge": ""})",
                                           R"({"token": {"a": 1}})",
                                           R"({"token": "t", "expires_at": "soon"})",
                                           R"({"token": "t", "expires_at": -5})",
                                           R"({"enrollment": true})",
                                           R"({"enrollment": "maybe"})",
                                           R"({"next_checkin_s": "10"})",
                                           R"({"next_checkin_s": -1})",
                                           R"({"next_checkin_s": 1e300})",
                                           R"({"next_checkin_s": 99999999999999999999})",
                                           R"({"offer": "yes"})",
                                           R"({"offer": []})"};
  for (const std::string& body : bodies) {
    SCOPED_TRACE(body);
    auto e = parse_enroll_answer(body);
    auto c = parse_challenge_answer(body);
    auto t = parse_token_answer(body);
    auto k = parse_checkin_answer(body);
    // Each either parses (some bodies are fine for one answer) or is kIo.
    if (!e.ok()) {
      EXPECT_EQ(e.error().code, ErrorCode::kIo);
    }
    if (!c.ok()) {
      EXPECT_EQ(c.error().code, ErrorCode::kIo);
    }
    if (!t.ok()) {
      EXPECT_EQ(t.error().code, ErrorCode::kIo);
    }
    if (!k.ok()) {
      EXPECT_EQ(k.error().code, ErrorCode::kIo);
      EXPECT_NE(k.error().message.find("not what the device API promises"), std::string::npos);
    }
  }
  EXPECT_FALSE(parse_challenge_answer(R"({"challenge": 7})").ok());
  EXPECT_FALSE(parse_token_answer(R"({"token": "t", "expires_at": "soon"})").ok());
  EXPECT_FALSE(parse_checkin_answer(R"({"next_checkin_s": "10"})").ok());
  EXPECT_FALSE(parse_checkin_answer(R"({"offer": "yes"})").ok());
}

TEST(DeviceAnswers, ATimeFromTheServerIsBounded) {
  // A week at most: a hostile answer cannot put the device to sleep for ever, nor overflow.
  EXPECT_TRUE(parse_checkin_answer(R"({"next_checkin_s": 604800})").ok());
  auto far = parse_checkin_answer(R"({"next_checkin_s": 604801})");
  ASSERT_FALSE(far.ok());
  EXPECT_NE(far.error().message.find("next_checkin_s"), std::string::npos) << far.error().message;
  EXPECT_FALSE(parse_token_answer(R"({"token": "t", "expires_at": 1e30})").ok());
}

TEST(DeviceAnswers, AnOfferMustBeComplete) {
  const std::string base = R"("rollout_id": "r1", "component": "firmware", "version": "1.1.0")";
  EXPECT_TRUE(parse_checkin_answer(offer(base + R"(, "sha256": ")" + kSha + "\"")).ok());
  // A switch back to the kept slot may come with nothing to download.
  auto kept = parse_checkin_answer(
      offer(base + R"(, "size": 0, "sha256": "", "revert": true, "switch_back": true)"));
  ASSERT_TRUE(kept.ok()) << kept.error().to_string();
  EXPECT_TRUE(kept->offer->switch_back);
  EXPECT_EQ(kept->offer->sha256, "");
  for (const std::string& fields : {
           std::string(R"("component": "firmware", "version": "1", "sha256": ")") + kSha + "\"",
           base,                                                       // no hash
           base + R"(, "sha256": "abc")",                              // too short
           base + R"(, "sha256": ")" + std::string(64, 'G') + "\"",    // not hex
           base + R"(, "sha256": ")" + kSha + R"(", "size": -1)",      // negative size
           base + R"(, "sha256": ")" + kSha + R"(", "revert": "no")",  // wrong type
           base + R"(, "sha256": "", "switch_back": true)",  // a switch back that is no revert
           base + R"(, "sha256": "", "revert": true, "switch_back": true, "size": 5)",  // no hash
       }) {
    SCOPED_TRACE(fields);
    auto r = parse_checkin_answer(offer(fields));
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, ErrorCode::kIo);
  }
}

// When to install: windows in the offer, and the answer to a device holding an image.
TEST(DeviceAnswers, WindowsAndHoldAnswersParseAndNonsenseIsRefused) {
  const std::string base = R"("rollout_id": "r1", "component": "firmware", "version": "1.1.0",
      "size": 123, "sha256": ")" +
                           kSha + "\"";
  auto w = parse_checkin_answer(offer(
      base + R"(, "windows": [{"from": 1000, "until": 2000}, {"from": 3000, "until": 4000}])"));
  ASSERT_TRUE(w.ok()) << w.error().to_string();
  ASSERT_EQ(w->offer->windows.size(), 2u);
  EXPECT_EQ(w->offer->windows[1].from.time_since_epoch().count(), 3000);
  EXPECT_TRUE(parse_checkin_answer(offer(base + R"(, "windows": [])"))->offer->windows.empty());
  auto hold = parse_checkin_answer(R"({"offer": null, "hold": {"rollout_id": "r1",
      "action": "drop", "windows": [], "reason": "halted"}, "next_checkin_s": 60})");
  ASSERT_TRUE(hold.ok()) << hold.error().to_string();
  ASSERT_TRUE(hold->hold.has_value());
  EXPECT_EQ(hold->hold->action, Hold::Action::kDrop);
  EXPECT_EQ(hold->hold->reason, "halted");
  std::string many;
  for (int k = 0; k < 65; ++k) {
    many += (k ? "," : "") + std::string(R"({"from": )") + std::to_string(k * 10 + 1) +
            R"(, "until": )" + std::to_string(k * 10 + 5) + "}";
  }
  for (const std::string& bad : std::vector<std::string>{
           R"([{"from": 2000, "until": 1000}])",  // ends before it starts
           R"([{"from": 1000, "until": 1000}])",  // empty
           R"([{"from": 3000, "until": 4000}, {"from": 1000, "until": 2000}])",  // out of order
           R"([{"from": 1000, "until": 3000}, {"from": 2000, "until": 4000}])",  // overlapping
           R"([{"from": -5, "until": 1000}])",
           R"([{"from": 1000, "until": 9007199254740993}])",  // beyond any real time
           R"([{"from": 1000}])",
           R"([{"from": 1000, "until": 2000, "extra": 1}])",
           R"([[1000, 2000]])",
           R"("tonight")",
           "[" + many + "]",
       }) {
    auto r = parse_checkin_answer(offer(base + R"(, "windows": )" + bad));
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().code, ErrorCode::kIo) << bad;
  }
  for (const char* bad :
       {R"({"rollout_id": "r1", "action": "explode"})", R"({"action": "apply"})", R"("apply")"}) {
    auto r = parse_checkin_answer(std::string(R"({"offer": null, "hold": )") + bad + "}");
    EXPECT_FALSE(r.ok()) << bad;
  }
}

TEST(DeviceAnswers, ErrorDocumentsMapToCodesAndKeepTheServersMessage) {
  const std::string doc = R"({"error": {"code": "conflict", "message": "not in this state"}})";
  const Error conflict = answer_error(409, doc, "status report");
  EXPECT_EQ(conflict.code, ErrorCode::kConflict);
  EXPECT_EQ(conflict.message, "status report: HTTP 409 conflict: not in this state");
  EXPECT_EQ(answer_error(400, "", "x").code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(answer_error(401, "", "x").code, ErrorCode::kUnauthenticated);
  EXPECT_EQ(answer_error(403, "", "x").code, ErrorCode::kPermissionDenied);
  EXPECT_EQ(answer_error(404, "", "x").code, ErrorCode::kNotFound);
  EXPECT_EQ(answer_error(416, "", "x").code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(answer_error(503, "", "x").code, ErrorCode::kIo);
  // A document of the wrong shape is left out of the message, and does not throw.
  EXPECT_EQ(answer_error(500, R"({"error": {"message": 5}})", "x").message, "x: HTTP 500");
  EXPECT_EQ(answer_error(500, R"({"error": "boom"})", "x").message, "x: HTTP 500");
  // A long message is cut.
  const std::string huge =
      R"({"error": {"code": "c", "message": ")" + std::string(5000, 'm') + "\"}}";
  EXPECT_LT(answer_error(500, huge, "x").message.size(), 1100u);
}

}  // namespace
}  // namespace drover::agent
