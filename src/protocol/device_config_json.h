// The nlohmann-level pieces of device configuration, for the model codec (a profile embeds
// its envelope; a stored document embeds its values). Include only from .cc files.
#pragma once

#include <nlohmann/json.hpp>

#include "base/json_reader.h"
#include "protocol/device_config.h"

namespace drover::protocol {

nlohmann::json config_envelope_json(const ConfigEnvelope& envelope);
// Throws JsonError at r's path; validates.
ConfigEnvelope read_config_envelope(const JsonReader& r);
nlohmann::json config_values_json(const ConfigValues& values);
// A document's values read from `j` and checked against the envelope.
Result<ConfigValues> config_values_from(const nlohmann::json& j, const ConfigEnvelope& envelope);
// Values as stored in canonical form, without an envelope: each scalar in its JSON kind (a
// number written with a point or an exponent is a number, else an integer).
Result<ConfigValues> config_values_stored(const nlohmann::json& j);

}  // namespace drover::protocol
