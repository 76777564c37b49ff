// Device configuration (docs/configuration.md): the values a device type's software runs
// with, and the safe operating envelope its hardware profile puts around them. The same
// checks run on the server when an operator writes a document and on the device before it
// applies one, so a value outside what the hardware tolerates is refused at both ends.
//
// A document is a flat JSON object, field → value. Its canonical form (keys sorted, each
// value of its field's kind, no spaces) is what the device writes to disk, and its SHA-256
// names it: the device reports the hash of what it runs, the server answers with the hash it
// wants, and a difference is repaired by fetching and applying the document again.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "base/result.h"

namespace drover::protocol {

enum class ConfigKind : uint8_t { kNumber, kInteger, kBoolean, kString };
const char* to_string(ConfigKind k);
Result<ConfigKind> parse_config_kind(std::string_view s);

// One field the envelope allows.
struct ConfigField {
  std::string name;
  ConfigKind kind = ConfigKind::kNumber;
  std::optional<double> min, max;   // number and integer: the safe range (inclusive)
  std::vector<std::string> values;  // string: the values allowed (empty: any text)
  bool required = false;            // a document must set it
  friend bool operator==(const ConfigField&, const ConfigField&) = default;
};

// A rule across two numeric fields: lower + gap <= upper whenever both are set (a heating
// set point below the cooling one by a dead band).
struct ConfigOrder {
  std::string lower, upper;
  double gap = 0;
  friend bool operator==(const ConfigOrder&, const ConfigOrder&) = default;
};

struct ConfigEnvelope {
  std::vector<ConfigField> fields;  // sorted by name, unique
  std::vector<ConfigOrder> orders;
  bool empty() const { return fields.empty(); }
  const ConfigField* field(std::string_view name) const;
  friend bool operator==(const ConfigEnvelope&, const ConfigEnvelope&) = default;
};

// Names (1–64 of [a-z0-9_.-], starting with a letter), kinds, finite ranges with min <= max,
// values only on strings, orders on two different numeric fields with a finite gap >= 0;
// sorts the fields. kInvalidArgument naming the first problem.
Status validate(ConfigEnvelope& e);

using ConfigValue = std::variant<bool, int64_t, double, std::string>;
using ConfigValues = std::map<std::string, ConfigValue>;

// The value as a person reads it ("21.5", "true", "\"eco\"").
std::string format_config_value(const ConfigValue& v);

// Reads a document (a flat JSON object) and checks it against the envelope: only fields the
// envelope names, each of its kind (an integral number is taken for a number; an integer
// must be whole), within its range or values, every required field set, every order kept.
// Values come back in their field's kind. kInvalidArgument naming the field and the bound
// ("heat_setpoint_c: 35 is above the envelope's maximum 30").
Result<ConfigValues> decode_config_values(std::string_view json, const ConfigEnvelope& envelope);
// The same checks on values already read.
Status check_config_values(const ConfigValues& values, const ConfigEnvelope& envelope);
// The canonical form: {"a":1,"b":"x"} with keys sorted; a number keeps enough digits to be
// read back exactly.
std::string encode_config_values(const ConfigValues& values);
// The lower-case hex SHA-256 of the canonical form.
std::string config_sha256(const ConfigValues& values);
// The lower-case hex SHA-256 of bytes (a file the device holds).
std::string config_sha256_of(std::string_view bytes);

// The envelope as JSON ({"fields": [...], "orders": [...]}) and back (validated).
std::string encode_config_envelope(const ConfigEnvelope& envelope);
Result<ConfigEnvelope> decode_config_envelope(std::string_view json);

// What the device API hands a device (GET /api/device/v1/config): its type's current
// document with the envelope it was checked against.
struct DeviceConfig {
  std::string device_type;
  uint64_t version = 0;
  std::string sha256;
  ConfigValues values;
  ConfigEnvelope envelope;
};
std::string encode_device_config(const DeviceConfig& config);
// kInvalidArgument unless the values keep the envelope and hash to sha256.
Result<DeviceConfig> decode_device_config(std::string_view json);

// The configuration a device should run (a check-in answer's "config").
struct ConfigTarget {
  uint64_t version = 0;
  std::string sha256;
  friend bool operator==(const ConfigTarget&, const ConfigTarget&) = default;
};

// Whether `s` is a SHA-256 as the protocol writes it: 64 lower-case hex digits.
bool is_sha256_hex(std::string_view s);

// What a device says of its configuration at a check-in ("config"): the hash of the document
// it runs ("" for none) and, when the one the server wants could not be applied, why.
struct ConfigReport {
  std::string sha256;
  std::string error;  // at most kMaxConfigError bytes
  friend bool operator==(const ConfigReport&, const ConfigReport&) = default;
};
inline constexpr size_t kMaxConfigError = 512;

}  // namespace drover::protocol
