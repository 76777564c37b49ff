// Fuzzes the telemetry store's chunk decoders (chunk_codec.h, rollup.h). A chunk file is the
// store's own, but a disk or a copy can damage it: a damaged chunk must be refused as
// kCorruption, never read outside its bytes, and whatever decodes must be a valid run of
// samples (times increasing) that encodes and decodes again bit for bit.
#include <bit>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "telemetry/chunk_codec.h"
#include "telemetry/rollup.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace drover::telemetry;
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  std::vector<Sample> samples;
  drover::Status s = decode_chunk(bytes, samples);
  if (!s.ok()) {
    if (s.error().code != drover::ErrorCode::kCorruption || !samples.empty()) __builtin_trap();
  } else {
    for (size_t i = 1; i < samples.size(); ++i) {
      if (samples[i].t_ms <= samples[i - 1].t_ms) __builtin_trap();
    }
    std::vector<Sample> again;
    if (!decode_chunk(encode_chunk(samples), again).ok() || again.size() != samples.size()) {
      __builtin_trap();
    }
    for (size_t i = 0; i < samples.size(); ++i) {
      if (again[i].t_ms != samples[i].t_ms ||
          std::bit_cast<uint64_t>(again[i].value) != std::bit_cast<uint64_t>(samples[i].value)) {
        __builtin_trap();
      }
    }
  }
  std::vector<RollupPoint> points;
  drover::Status r = decode_rollup_chunk(bytes, points);
  if (!r.ok() && r.error().code != drover::ErrorCode::kCorruption) __builtin_trap();
  return 0;
}
