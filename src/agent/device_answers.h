// The device API's answers as the agent reads them (docs/api/device.md). The server's bytes
// are untrusted input like any other: each parser gives a value or a kIo error ("not what the
// device API promises"), never an exception, and numbers are bounded before they become
// times. fuzz/fuzz_agent_input.cc feeds them arbitrary bytes.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "agent/server_link.h"
#include "base/clock.h"
#include "base/result.h"

namespace drover::agent {

// POST /enroll: true when the device waits, pending, for an operator; false when accepted.
Result<bool> parse_enroll_answer(std::string_view body);
// POST /auth/challenge: the nonce to sign.
Result<std::string> parse_challenge_answer(std::string_view body);

struct TokenAnswer {
  std::string token;
  Timestamp expires{};
};
// POST /auth/token.
Result<TokenAnswer> parse_token_answer(std::string_view body);

// POST /checkin. next_checkin is within [0, 7 days] (0: the server did not say); an offer has
// its rollout, component, version and a 64-digit sha256.
Result<CheckInAnswer> parse_checkin_answer(std::string_view body);

// The answer to POST /api/device/v1/telemetry.
Result<TelemetryAck> parse_telemetry_answer(std::string_view body);

// A non-2xx answer as an Error (the operator API's error document is the same, so the
// simulator's operator client reads it with this too): the code its status stands for (400
// kInvalidArgument, 401 kUnauthenticated, 403 kPermissionDenied, 404 kNotFound, 409 kConflict, 416
// kInvalidArgument, anything else kIo: worth another try later), and the message of its JSON
// error document when it has one.
Error answer_error(int status, std::string_view body, const std::string& what);

}  // namespace drover::agent
