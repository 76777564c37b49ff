// Fuzzes device configuration's parsers: a document the device API hands a device, an
// envelope (a device's own file, a profile's), and an operator's values against a fixed
// envelope. Whatever the bytes, each gives a value or kInvalidArgument, never a crash; a
// document that parses keeps its envelope and hashes to what it says; what is read encodes
// back to the same value (the canonical form is stable).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "protocol/device_config.h"

namespace {

void check(bool ok) {
  if (!ok) __builtin_trap();
}

namespace p = drover::protocol;

const p::ConfigEnvelope& fixed_envelope() {
  static const p::ConfigEnvelope e = [] {
    auto d = p::decode_config_envelope(
        R"({"fields": [{"name": "heat_c", "kind": "number", "min": 5, "max": 30},
                       {"name": "cool_c", "kind": "number", "min": 15, "max": 35},
                       {"name": "fan", "kind": "integer", "min": 0, "max": 5, "required": true},
                       {"name": "mode", "kind": "string", "values": ["eco", "comfort"]},
                       {"name": "on", "kind": "boolean"}],
            "orders": [{"lower": "heat_c", "upper": "cool_c", "gap": 2}]})");
    check(d.ok());
    return *d;
  }();
  return e;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const auto invalid = drover::ErrorCode::kInvalidArgument;

  auto config = p::decode_device_config(text);
  if (config.ok()) {
    check(p::check_config_values(config->values, config->envelope).ok());
    check(p::config_sha256(config->values) == config->sha256);
    auto again = p::decode_device_config(p::encode_device_config(*config));
    check(again.ok() && again->values == config->values && again->envelope == config->envelope);
  } else {
    check(config.error().code == invalid);
  }

  auto envelope = p::decode_config_envelope(text);
  if (envelope.ok()) {
    auto again = p::decode_config_envelope(p::encode_config_envelope(*envelope));
    check(again.ok() && *again == *envelope);
  } else {
    check(envelope.error().code == invalid);
  }

  auto values = p::decode_config_values(text, fixed_envelope());
  if (values.ok()) {
    check(values->count("fan") == 1);
    const std::string canonical = p::encode_config_values(*values);
    auto again = p::decode_config_values(canonical, fixed_envelope());
    check(again.ok() && *again == *values && p::encode_config_values(*again) == canonical);
  } else {
    check(values.error().code == invalid);
  }
  return 0;
}
