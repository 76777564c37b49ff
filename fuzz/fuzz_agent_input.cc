// Fuzzes what the agent reads: from disk, its configuration file and its saved update record;
// from the server, the device API's answers (enroll, challenge, login, check-in, error
// documents, telemetry answers and rules). Whatever is there, parsing gives a value or a clear
// error (kInvalidArgument for the config, kCorruption for the record, kIo for a server answer),
// never a crash or an exception; a record that decodes encodes back to one that decodes to the same
// value; an offer that parses is complete, and a poll interval is bounded.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "agent/config.h"
#include "agent/device_answers.h"
#include "agent/remote_commands.h"
#include "agent/update_state.h"
#include "base/memory_file_system.h"
#include "protocol/telemetry_rules.h"

namespace {

void check(bool ok) {
  if (!ok) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto config = drover::agent::parse_agent_config(text);
  if (config.ok()) {
    check(!config->link.server.empty() && !config->agent.data_dir.empty());
    check(config->agent.backoff_initial <= config->agent.backoff_max);
  } else {
    check(config.error().code == drover::ErrorCode::kInvalidArgument);
  }
  auto record = drover::agent::decode_update_record(text);
  if (record.ok()) {
    check(record->bytes_done <= record->size);
    auto again = drover::agent::decode_update_record(drover::agent::encode(*record));
    check(again.ok() && *again == *record);
  } else {
    check(record.error().code == drover::ErrorCode::kCorruption);
  }
  namespace a = drover::agent;
  const auto io = drover::ErrorCode::kIo;
  auto enroll = a::parse_enroll_answer(text);
  check(enroll.ok() || enroll.error().code == io);
  auto challenge = a::parse_challenge_answer(text);
  check(challenge.ok() ? !challenge->empty() : challenge.error().code == io);
  auto token = a::parse_token_answer(text);
  check(token.ok() ? !token->token.empty() : token.error().code == io);
  auto checkin = a::parse_checkin_answer(text);
  if (checkin.ok()) {
    check(checkin->next_checkin >= drover::Duration(0) &&
          checkin->next_checkin <= drover::hours(24 * 7));
    // A configuration named is named by a whole hash.
    if (checkin->config) check(checkin->config->sha256.size() == 64);
    // Windows, wherever they come: bounded in number, each non-empty, in order.
    auto windows_ok = [](const std::vector<drover::TimeRange>& ws) {
      if (ws.size() > a::kMaxWindows) return false;
      for (size_t k = 0; k < ws.size(); ++k) {
        if (ws[k].from >= ws[k].until) return false;
        if (k > 0 && ws[k].from < ws[k - 1].until) return false;
      }
      return true;
    };
    if (checkin->offer) {
      check(!checkin->offer->rollout_id.empty() && !checkin->offer->version.empty());
      // A switch back with nothing uploaded carries no hash; anything else carries one.
      const auto& o = *checkin->offer;
      check(o.sha256.size() == 64 ||
            (o.switch_back && o.revert && o.sha256.empty() && o.size == 0));
      check(windows_ok(checkin->offer->windows));
    }
    if (checkin->hold) check(windows_ok(checkin->hold->windows));
    // Commands: bounded in number, each with an id of the documented form.
    check(checkin->commands.size() <= a::kMaxCommandsPerAnswer);
    for (const a::RemoteCommand& c : checkin->commands)
      check(!c.id.empty() && c.id.size() <= 64 && c.action.size() <= 64);
  } else {
    check(checkin.error().code == io);
  }
  auto ack = a::parse_telemetry_answer(text);
  check(ack.ok() ? ack->sequence > 0 && ack->rules.size() <= 64 : ack.error().code == io);
  auto rules = drover::protocol::decode_telemetry_rules(text);
  if (rules.ok()) {
    // Rules that decode are ones the aggregator can follow: intervals within a day,
    // aggregates exactly when there is an interval, sorted names.
    for (const auto& m : rules->metrics) {
      check(m.raw() == (m.interval == drover::Duration(0)));
      check(m.interval <= drover::hours(24));
    }
    auto again =
        drover::protocol::decode_telemetry_rules(drover::protocol::encode_telemetry_rules(*rules));
    check(again.ok() && *again == *rules);
  } else {
    check(rules.error().code == drover::ErrorCode::kInvalidArgument);
  }
  const drover::Error e = a::answer_error(static_cast<int>(size % 600), text, "fuzz");
  check(e.message.rfind("fuzz: HTTP ", 0) == 0);
  // The remote-command journal: read, or refused as corrupt — never taken as empty.
  {
    drover::MemoryFileSystem fs;
    check(fs.write("/commands.json", text).ok());
    struct NoRunner final : drover::agent::CommandRunner {
      drover::Result<drover::agent::CommandResult> run(const std::vector<std::string>&,
                                                       drover::Duration,
                                                       const drover::agent::Environment&) override {
        __builtin_trap();
      }
    } runner;
    drover::ManualClock clock{drover::Timestamp{}};
    a::RemoteCommands journal("/commands.json", {}, runner, clock, fs);
    const drover::Status st = journal.start();
    check(st.ok() || st.error().code == drover::ErrorCode::kCorruption);
    if (st.ok()) {
      for (const auto& entry : journal.journal())
        check(entry.step != drover::agent::JournaledCommand::Step::kRunning);
    }
  }
  return 0;
}
