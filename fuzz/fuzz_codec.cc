// Fuzzes every model decoder with the same input. Whatever a decoder accepts must encode,
// decode again to an equal record, and encode to the same text: the store keeps records as
// these documents, so a lossy round trip would corrupt data silently.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "model/codec.h"

namespace {

using namespace drover;

template <typename T>
void round_trip(std::string_view text, Result<T> (*decode)(std::string_view)) {
  Result<T> first = decode(text);
  if (!first.ok()) {
    if (first.error().code != ErrorCode::kInvalidArgument) __builtin_trap();
    return;
  }
  const std::string encoded = to_json(*first);
  Result<T> second = decode(encoded);
  if (!second.ok()) __builtin_trap();
  if (!(*second == *first)) __builtin_trap();
  if (to_json(*second) != encoded) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  round_trip(text, &device_from_json);
  round_trip(text, &site_from_json);
  round_trip(text, &artifact_from_json);
  round_trip(text, &plan_from_json);
  round_trip(text, &rollout_from_json);
  round_trip(text, &deployment_from_json);
  round_trip(text, &step_from_json);
  round_trip(text, &api_token_from_json);
  round_trip(text, &outcome_from_json);
  round_trip(text, &command_from_json);
  round_trip(text, &alert_from_json);
  round_trip(text, &profile_from_json);
  return 0;
}
