// One measurement of one series: milliseconds since the Unix epoch and a value.
#pragma once

#include <cstdint>

namespace drover::telemetry {

struct Sample {
  int64_t t_ms;
  double value;
  friend bool operator==(const Sample&, const Sample&) = default;
};

}  // namespace drover::telemetry
