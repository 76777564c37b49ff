// Fuzzes what the agent reads from disk: its configuration file and its saved update record.
// Whatever is there, parsing gives a value or a clear error (kInvalidArgument for the config,
// kCorruption for the record), never a crash or an exception; a record that decodes encodes
// back to one that decodes to the same value.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "agent/config.h"
#include "agent/update_state.h"

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
  return 0;
}
