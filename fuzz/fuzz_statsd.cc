// Fuzzes what local programs hand the agent's telemetry: any datagram on the StatsD socket,
// and any output of ModemManager's mmcli (the modem collector). Parsing never crashes;
// whatever the aggregator flushes and the collector reports is a valid telemetry batch (the
// server would take it), so a bad application metric or a strange modem can never make the
// agent's queue unsendable.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "agent/statsd.h"
#include "agent/system_metrics.h"
#include "protocol/telemetry_batch.h"

namespace {

void check(bool ok) {
  if (!ok) __builtin_trap();
}

// mmcli that answers every call with the same text.
class EchoMmcli final : public drover::agent::CommandRunner {
 public:
  explicit EchoMmcli(std::string_view text) : text_(text) {}
  drover::Result<drover::agent::CommandResult> run(const std::vector<std::string>&,
                                                   drover::Duration,
                                                   const drover::agent::Environment&) override {
    return drover::agent::CommandResult{0, false, std::string(text_)};
  }

 private:
  std::string_view text_;
};

void check_sendable(std::vector<drover::protocol::TelemetrySeries> series) {
  drover::protocol::TelemetryBatch batch;
  batch.stream = 1;
  batch.sequence = 1;
  batch.series = std::move(series);
  for (const auto& s : batch.series) {
    check(drover::protocol::is_valid_metric_name(s.metric));
    check(s.labels.size() <= drover::protocol::kMaxSeriesLabels);
    for (const auto& [name, value] : s.labels) check(drover::protocol::is_valid_label_name(name));
  }
  auto back = drover::protocol::decode_telemetry_batch(
      drover::protocol::encode_telemetry_cbor(batch), false);
  check(back.ok());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto line = drover::agent::parse_statsd_line(text);
  if (line.ok()) {
    check(drover::protocol::is_valid_metric_name(line->name));
    check(line->sample_rate > 0 && line->sample_rate <= 1);
  } else {
    check(line.error().code == drover::ErrorCode::kInvalidArgument);
  }
  drover::agent::StatsdAggregator statsd;
  statsd.add_datagram(text);
  check_sendable(statsd.flush(1'764'547'200'000));

  EchoMmcli mmcli(text);
  drover::agent::CollectorOptions only_modem;
  only_modem.cpu = only_modem.memory = only_modem.disk = only_modem.temperature = false;
  only_modem.uptime = only_modem.reboots = only_modem.link = only_modem.battery = false;
  only_modem.modem = true;
  drover::agent::SystemCollector modem(only_modem, drover::real_file_system(), mmcli);
  check_sendable(modem.collect(1'764'547'200'000).routine);
  return 0;
}
