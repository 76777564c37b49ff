// One measurement of one series: milliseconds since the Unix epoch and a value. Shared by
// the agent (what it collects and sends) and the server (what the store keeps).
#pragma once

#include <cstdint>

namespace drover::telemetry {

struct Sample {
  int64_t t_ms;
  double value;
  friend bool operator==(const Sample&, const Sample&) = default;
};

}  // namespace drover::telemetry
