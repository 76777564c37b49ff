// Fuzzes the StatsD socket's input: any datagram from any local program. Parsing never
// crashes; whatever the aggregator then flushes is a valid telemetry batch (the server would
// take it), so bad application metrics can never make the agent's queue unsendable.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "agent/statsd.h"
#include "protocol/telemetry_batch.h"

namespace {

void check(bool ok) {
  if (!ok) __builtin_trap();
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
  drover::protocol::TelemetryBatch batch;
  batch.stream = 1;
  batch.sequence = 1;
  batch.series = statsd.flush(1'764'547'200'000);
  for (const auto& s : batch.series) {
    check(drover::protocol::is_valid_metric_name(s.metric));
    check(s.labels.size() <= drover::protocol::kMaxSeriesLabels);
    for (const auto& [name, value] : s.labels) check(drover::protocol::is_valid_label_name(name));
  }
  auto back = drover::protocol::decode_telemetry_batch(
      drover::protocol::encode_telemetry_cbor(batch), false);
  check(back.ok());
  return 0;
}
