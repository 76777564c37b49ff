// Fuzzes the modem collector's input: any output of ModemManager's mmcli, for the status and
// the signal report alike (the fake answers every call with the input), exit status 0 or not.
// Whatever the collector then reports is a valid telemetry batch (the server would take it),
// so a strange modem or mmcli version can never make the agent's queue unsendable.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "agent/system_metrics.h"
#include "protocol/telemetry_batch.h"

namespace {

void check(bool ok) {
  if (!ok) __builtin_trap();
}

class EchoMmcli final : public drover::agent::CommandRunner {
 public:
  EchoMmcli(std::string_view text, int exit_code) : text_(text), exit_code_(exit_code) {}
  drover::Result<drover::agent::CommandResult> run(const std::vector<std::string>&,
                                                   drover::Duration,
                                                   const drover::agent::Environment&) override {
    return drover::agent::CommandResult{exit_code_, false, std::string(text_)};
  }

 private:
  std::string_view text_;
  int exit_code_;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  for (const auto& [key, value] : drover::agent::parse_mmcli_keyvalue(text)) {
    check(!key.empty() && key.find('\n') == std::string::npos);
    check(value.find('\n') == std::string::npos);
  }
  drover::agent::CollectorOptions only_modem;
  only_modem.cpu = only_modem.memory = only_modem.disk = only_modem.temperature = false;
  only_modem.uptime = only_modem.reboots = only_modem.link = only_modem.battery = false;
  only_modem.modem = true;
  for (int exit_code : {0, 1}) {
    EchoMmcli mmcli(text, exit_code);
    drover::agent::SystemCollector modem(only_modem, drover::real_file_system(), mmcli);
    drover::protocol::TelemetryBatch batch;
    batch.stream = 1;
    batch.sequence = 1;
    // Two rounds: the first may switch the signal report on, the second reads it.
    for (int64_t t : {int64_t{1'764'547'200'000}, int64_t{1'764'547'260'000}}) {
      for (auto& s : modem.collect(t).routine) batch.series.push_back(std::move(s));
    }
    for (const auto& s : batch.series) {
      check(drover::protocol::is_valid_metric_name(s.metric));
      for (const auto& [name, value] : s.labels) {
        check(drover::protocol::is_valid_label_name(name));
        check(drover::protocol::is_valid_label_value(value));
      }
    }
    check(drover::protocol::decode_telemetry_batch(drover::protocol::encode_telemetry_cbor(batch),
                                                   false)
              .ok());
  }
  return 0;
}
