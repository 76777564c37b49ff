// The chunk codec's entropy code for a sequence of unsigned integers (zigzagged residuals):
// each integer is written as its bit length (0..64), coded with a Huffman code built for
// this sequence, followed by the bits below its leading one. Residuals of a good predictor
// are small and similar, so most cost a few bits; the code table costs 14 bits plus 4 per
// length in the used range. The format is in docs/formats.md ("Telemetry chunks").
#pragma once

#include <array>
#include <cstdint>
#include <span>

#include "telemetry/bit_stream.h"

namespace drover::telemetry {

inline constexpr int kLengthSymbols = 65;  // bit lengths 0..64
inline constexpr int kMaxCodeLength = 15;

// How many integers of each bit length a sequence holds.
using LengthHistogram = std::array<uint32_t, kLengthSymbols>;

inline int bit_length(uint64_t v) { return v == 0 ? 0 : 64 - __builtin_clzll(v); }

LengthHistogram histogram_of(std::span<const uint64_t> values);

// The exact size in bits write_integers() produces for a sequence with this histogram.
uint64_t coded_bits(const LengthHistogram& histogram);

// Writes the code table and every value.
void write_integers(BitWriter& out, std::span<const uint64_t> values);

// Reads what write_integers() wrote for out.size() values. False (and `in` failed or the
// table invalid) on a truncated or malformed section; `out` is then unspecified.
bool read_integers(BitReader& in, std::span<uint64_t> out);

}  // namespace drover::telemetry
