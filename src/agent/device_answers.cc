#include "agent/device_answers.h"

#include <algorithm>

#include "base/json_reader.h"
#include "protocol/device.h"

namespace drover::agent {
namespace {

// Runs `fn` over the parsed answer; a malformed one is kIo, named after `what`.
template <typename T, typename Fn>
Result<T> read_answer(std::string_view body, const char* what, Fn&& fn) {
  auto r = parse_json_document<T>(body, what, std::forward<Fn>(fn));
  if (!r.ok()) {
    return io_error(std::string(what) +
                    ": the server's answer is not what the device API promises (" +
                    r.error().message + ")");
  }
  return r;
}

constexpr uint64_t kMaxPollSeconds = uint64_t{7} * 24 * 3600;
constexpr uint64_t kMaxMs = uint64_t{1} << 52;  // times in ms since the epoch, bounded

}  // namespace

Result<bool> parse_enroll_answer(std::string_view body) {
  return read_answer<bool>(body, "enroll", [](const JsonReader& r) {
    const std::string e = r.str("enrollment");
    if (e != "accepted" && e != "pending") r.fail("enrollment", "must be accepted or pending");
    return e == "pending";
  });
}

Result<std::string> parse_challenge_answer(std::string_view body) {
  return read_answer<std::string>(body, "challenge", [](const JsonReader& r) {
    std::string nonce = r.str("challenge");
    if (nonce.empty() || nonce.size() > 1024) r.fail("challenge", "must be 1 to 1024 characters");
    return nonce;
  });
}

Result<TokenAnswer> parse_token_answer(std::string_view body) {
  return read_answer<TokenAnswer>(body, "login", [](const JsonReader& r) {
    TokenAnswer out;
    out.token = r.str("token");
    if (out.token.empty() || out.token.size() > 4096)
      r.fail("token", "must be 1 to 4096 characters");
    // Milliseconds since the epoch; absent or 0: treat the token as already old, so the
    // next request logs in again rather than trusting it forever.
    const uint64_t ms = r.uint_or("expires_at", 0, uint64_t{1} << 52);
    out.expires = Timestamp(Duration(static_cast<int64_t>(ms)));
    return out;
  });
}

namespace {

// [{"from": ms, "until": ms}, ...], sorted, each non-empty, at most kMaxWindows.
std::vector<TimeRange> read_windows(const JsonReader& r) {
  std::vector<TimeRange> out;
  if (!r.has("windows") || r.raw()["windows"].is_null()) return out;
  const auto list = r.array("windows");
  if (list.size() > kMaxWindows) {
    r.fail("windows", "more than " + std::to_string(kMaxWindows) + " windows");
  }
  for (const JsonReader& w : list) {
    w.allow_only({"from", "until"});
    if (!w.has("from") || !w.has("until")) w.fail("", "a window needs from and until");
    const uint64_t from = w.uint_or("from", 0, kMaxMs);
    const uint64_t until = w.uint_or("until", 0, kMaxMs);
    if (from >= until) w.fail("until", "must be after from");
    const TimeRange range{Timestamp(Duration(static_cast<int64_t>(from))),
                          Timestamp(Duration(static_cast<int64_t>(until)))};
    if (!out.empty() && range.from < out.back().until)
      w.fail("from", "windows must be in order and not overlap");
    out.push_back(range);
  }
  return out;
}

}  // namespace

Result<CheckInAnswer> parse_checkin_answer(std::string_view body) {
  return read_answer<CheckInAnswer>(body, "check-in", [](const JsonReader& r) {
    CheckInAnswer out;
    out.next_checkin =
        seconds(static_cast<int64_t>(r.uint_or("next_checkin_s", 0, kMaxPollSeconds)));
    if (r.has("offer") && !r.raw()["offer"].is_null()) {
      const JsonReader o = r.child("offer");
      Offer offer;
      offer.rollout_id = o.str("rollout_id");
      offer.component = o.str("component");
      offer.version = o.str("version");
      offer.sha256 = o.str("sha256");
      offer.size = o.uint_or("size", 0, uint64_t{1} << 50);
      offer.revert = o.boolean_or("revert", false);
      offer.switch_back = o.boolean_or("switch_back", false);
      if (offer.switch_back && !offer.revert) o.fail("switch_back", "only with revert");
      if (offer.rollout_id.empty()) o.fail("rollout_id", "must not be empty");
      if (offer.component.empty()) o.fail("component", "must not be empty");
      if (offer.version.empty()) o.fail("version", "must not be empty");
      const bool hex = std::all_of(offer.sha256.begin(), offer.sha256.end(), [](char c) {
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
      });
      // A switch back with no uploaded artifact has nothing to describe.
      const bool nothing = offer.switch_back && offer.size == 0 && offer.sha256.empty();
      if (!nothing && (offer.sha256.size() != 64 || !hex))
        o.fail("sha256", "must be 64 lowercase hex digits");
      offer.windows = read_windows(o);
      out.offer = std::move(offer);
    }
    // A malformed command is skipped, not a reason to refuse the answer: its offer still
    // stands, and a command without a usable id could never be reported anyway.
    for (const JsonReader& c : r.array("commands")) {
      if (out.commands.size() == kMaxCommandsPerAnswer) break;  // the rest come next time
      const nlohmann::json& raw = c.raw();
      if (!raw.is_object()) continue;
      const auto id = raw.find("id");
      const auto action = raw.find("action");
      if (id == raw.end() || !id->is_string() || action == raw.end() || !action->is_string())
        continue;
      RemoteCommand command;
      command.id = id->get<std::string>();
      const bool name = !command.id.empty() && command.id.size() <= 64 &&
                        std::all_of(command.id.begin(), command.id.end(), [](char ch) {
                          return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                                 (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == ':' ||
                                 ch == '-';
                        });
      if (!name) continue;
      command.action = action->get<std::string>().substr(0, 64);
      if (const auto arg = raw.find("argument"); arg != raw.end() && arg->is_string())
        command.argument = arg->get<std::string>().substr(0, 128);
      if (const auto exp = raw.find("expires_at"); exp != raw.end() && exp->is_number_unsigned() &&
                                                   exp->get<uint64_t>() <= (uint64_t{1} << 53)) {
        command.expires_at = Timestamp(Duration(static_cast<int64_t>(exp->get<uint64_t>())));
      }
      out.commands.push_back(std::move(command));
    }
    if (r.has("hold") && !r.raw()["hold"].is_null()) {
      const JsonReader h = r.child("hold");
      h.allow_only({"rollout_id", "action", "windows", "reason"});
      Hold hold;
      hold.rollout_id = h.str("rollout_id");
      const std::string action = h.str("action");
      if (action == "apply") {
        hold.action = Hold::Action::kApply;
      } else if (action == "wait") {
        hold.action = Hold::Action::kWait;
      } else if (action == "drop") {
        hold.action = Hold::Action::kDrop;
      } else {
        h.fail("action", "must be apply, wait or drop");
      }
      hold.windows = read_windows(h);
      hold.reason = h.str_or("reason", "").substr(0, 1024);
      out.hold = std::move(hold);
    }
    // A malformed "config" is dropped, not a reason to refuse the answer (its offer and
    // commands still stand): the device keeps what it runs.
    if (r.has("config")) {
      const nlohmann::json& c = r.raw().at("config");
      const auto sha = c.is_object() ? c.find("sha256") : c.end();
      const auto version = c.is_object() ? c.find("version") : c.end();
      if (sha != c.end() && sha->is_string() && version != c.end() &&
          version->is_number_unsigned()) {
        ConfigWanted wanted{version->get<uint64_t>(), sha->get<std::string>()};
        if (protocol::is_sha256_hex(wanted.sha256)) out.config = std::move(wanted);
      }
    }
    return out;
  });
}

Error answer_error(int status, std::string_view body, const std::string& what) {
  std::string message = what + ": HTTP " + std::to_string(status);
  auto detail = parse_json_document<std::string>(body, "error", [](const JsonReader& r) {
    const JsonReader e = r.child(protocol::kErrorObject);
    return e.str_or(protocol::kErrorCode, "") + ": " + e.str_or(protocol::kErrorMessage, "");
  });
  if (detail.ok()) message += " " + detail->substr(0, 1024);
  return Error{protocol::error_code_of_status(status), message};
}

Result<TelemetryAck> parse_telemetry_answer(std::string_view body) {
  return read_answer<TelemetryAck>(body, "telemetry", [](const JsonReader& r) {
    TelemetryAck out;
    out.sequence = r.uint_or("seq", 0, UINT64_MAX);
    if (out.sequence == 0) r.fail("seq", "is required");
    out.retry = r.boolean_or("retry", false);
    out.accepted = r.uint_or("accepted", 0, UINT64_MAX);
    out.duplicates = r.uint_or("duplicates", 0, UINT64_MAX);
    out.refused = r.uint_or("refused", 0, UINT64_MAX);
    out.rules = r.str_or("rules", "");
    if (out.rules.size() > 64) r.fail("rules", "is an ETag of at most 64 characters");
    return out;
  });
}

}  // namespace drover::agent
