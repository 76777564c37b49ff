// Fuzzes the telemetry batch decoder, what every device's POST /api/device/v1/telemetry
// body goes through (the first byte picks zstd or plain CBOR). Whatever it accepts must
// encode and decode again to the same batch, bit for bit (NaN payloads included): the store
// keeps what the decoder produced, so a lossy round trip would change stored data.
#include <bit>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "protocol/telemetry_batch.h"

namespace {

using drover::protocol::TelemetryBatch;

bool same(const TelemetryBatch& a, const TelemetryBatch& b) {
  if (a.stream != b.stream || a.sequence != b.sequence || a.dropped != b.dropped ||
      a.series.size() != b.series.size()) {
    return false;
  }
  for (size_t i = 0; i < a.series.size(); ++i) {
    const auto& x = a.series[i];
    const auto& y = b.series[i];
    if (x.metric != y.metric || x.labels != y.labels || x.samples.size() != y.samples.size()) {
      return false;
    }
    for (size_t k = 0; k < x.samples.size(); ++k) {
      if (x.samples[k].t_ms != y.samples[k].t_ms ||
          std::bit_cast<uint64_t>(x.samples[k].value) !=
              std::bit_cast<uint64_t>(y.samples[k].value)) {
        return false;
      }
    }
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const bool compressed = (data[0] & 1) != 0;
  std::string_view body(reinterpret_cast<const char*>(data + 1), size - 1);
  auto batch = drover::protocol::decode_telemetry_batch(body, compressed);
  if (!batch.ok()) {
    auto code = batch.error().code;
    if (code != drover::ErrorCode::kInvalidArgument &&
        code != drover::ErrorCode::kResourceExhausted) {
      __builtin_trap();
    }
    return 0;
  }
  auto again = drover::protocol::decode_telemetry_batch(
      drover::protocol::encode_telemetry_batch(*batch), true);
  if (!again.ok() || !same(*batch, *again)) __builtin_trap();
  return 0;
}
