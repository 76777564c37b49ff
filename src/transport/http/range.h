// The Range request header (RFC 9110 §14), for resumable artifact downloads. One range per
// request: that is all a download resuming after a cut needs, and refusing several closes
// the door on overlapping-range amplification.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "base/result.h"

namespace drover::http {

struct ByteRange {
  uint64_t first = 0;
  uint64_t length = 0;  // > 0
};

enum class RangeError : uint8_t {
  kMalformed,      // not "bytes=" and one well-formed range spec: 400
  kMultiple,       // more than one range: 416
  kUnsatisfiable,  // starts at or after the end, or a zero-length suffix: 416
};

struct RangeResult {
  std::optional<ByteRange> range;  // std::nullopt with no error: the whole representation
  std::optional<RangeError> error;
};

// Resolves `header` (the Range value; "" when absent) against a representation of `size`
// bytes: "bytes=0-99", "bytes=100-" (to the end), "bytes=-100" (the last 100). A last
// position past the end is clipped to it.
RangeResult resolve_range(std::string_view header, uint64_t size);

}  // namespace drover::http
