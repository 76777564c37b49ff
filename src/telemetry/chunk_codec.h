// The sealed-chunk encoding of the time-series store: a run of one series' samples,
// lossless (every value comes back bit for bit, NaN payloads and -0.0 included).
//
// Timestamps: the first, then the deltas in units of their greatest common divisor, coded
// as delta-of-delta (a regular interval costs about one bit a sample). Values: most metrics
// are decimals with a few digits, so each value is read as an integer mantissa at a decimal
// exponent chosen for the chunk and predicted from the previous one and the chunk's median;
// the few values the decimal does not hit exactly (float noise such as 51.846000000000004)
// carry a small correction in units in the last place. Both streams use the integer code of
// integer_code.h. The byte layout is in docs/formats.md ("Telemetry chunks").
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "protocol/telemetry_sample.h"

namespace drover::telemetry {

inline constexpr size_t kMaxChunkSamples = size_t{1} << 16;
// Timestamps are kept within ±2^62 ms so that no delta can overflow.
inline constexpr int64_t kMaxTimestampMs = int64_t{1} << 62;

// Encodes 1..kMaxChunkSamples samples with strictly increasing timestamps within
// ±kMaxTimestampMs. Anything else is a programming error (the head checks it on append).
std::string encode_chunk(std::span<const Sample> samples);

// Appends the chunk's samples to `out`. A malformed chunk is kCorruption saying what was
// wrong, and `out` is left as it was. Never reads outside `bytes`.
Status decode_chunk(std::string_view bytes, std::vector<Sample>& out);

}  // namespace drover::telemetry
