// Fuzzes the scenario parser: any input must come back as a Scenario or an error, never as
// a crash, an uncaught exception or undefined behaviour.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "sim/scenario.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto s = drover::sim::parse_scenario(text);
  if (!s.ok() && s.error().code != drover::ErrorCode::kInvalidArgument) __builtin_trap();
  return 0;
}
