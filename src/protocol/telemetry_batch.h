// A telemetry batch as it crosses the link (docs/formats.md, "Telemetry batches"): CBOR,
// then zstd. Sent by the agent to POST /api/device/v1/telemetry; the server takes it only
// after the decoder below has checked every field and limit, so a malformed or oversized
// batch is refused with a clear error and stores nothing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/result.h"
#include "protocol/telemetry_sample.h"

namespace drover::protocol {

inline constexpr size_t kMaxBatchDecodedBytes = size_t{16} << 20;
inline constexpr size_t kMaxBatchSamples = 250'000;
inline constexpr size_t kMaxBatchSeries = 2'000;
inline constexpr size_t kMaxSeriesLabels = 8;
inline constexpr size_t kMaxLabelValueBytes = 128;
// Sample times stay within ±2^62 ms (the store's limit, far beyond any real clock).
inline constexpr int64_t kMaxSampleTimeMs = int64_t{1} << 62;

struct TelemetrySeries {
  std::string metric;                                       // is_valid_metric_name
  std::vector<std::pair<std::string, std::string>> labels;  // sorted by name, unique
  std::vector<telemetry::Sample> samples;                   // strictly increasing times
  friend bool operator==(const TelemetrySeries&, const TelemetrySeries&) = default;
};

struct TelemetryBatch {
  uint64_t stream = 0;    // the sender's queue incarnation (random, nonzero)
  uint64_t sequence = 0;  // 1, 2, 3, ... within the stream
  uint64_t dropped = 0;   // routine samples the device dropped, queue full, since its last batch
  std::vector<TelemetrySeries> series;
  size_t sample_count() const;
  friend bool operator==(const TelemetryBatch&, const TelemetryBatch&) = default;
};

// Metric names: 1..128 characters of [A-Za-z0-9_:], not starting with a digit (the
// Prometheus rule, so every metric exports as it is).
bool is_valid_metric_name(std::string_view s);
// Label names: 1..64 characters of [A-Za-z0-9_], not starting with a digit or "__".
bool is_valid_label_name(std::string_view s);
// Label values: at most kMaxLabelValueBytes, no control characters (bytes below 0x20, 0x7f).
bool is_valid_label_value(std::string_view s);

// CBOR, then zstd at `level`. The batch must be valid (decode would take it).
std::string encode_telemetry_batch(const TelemetryBatch& batch, int level = 3);
// The CBOR alone (for size comparisons and for senders without zstd).
std::string encode_telemetry_cbor(const TelemetryBatch& batch);

// Decodes a body: zstd-compressed CBOR when `compressed`, else CBOR. kInvalidArgument names
// what is wrong (malformed CBOR or zstd, an unknown or repeated key, a bad name, unordered
// times, a series whose times and values differ in number); kResourceExhausted when a limit
// above is passed.
Result<TelemetryBatch> decode_telemetry_batch(std::string_view body, bool compressed);

}  // namespace drover::protocol
