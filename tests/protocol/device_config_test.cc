// Device configuration's envelope and documents (protocol/device_config.h): what the server
// and the device both check before a value reaches hardware.
#include "protocol/device_config.h"

#include <gtest/gtest.h>

#include <string>

namespace drover::protocol {
namespace {

ConfigEnvelope hvac() {
  auto e = decode_config_envelope(
      R"({"fields": [{"name": "heat_c", "kind": "number", "min": 5, "max": 30},
                     {"name": "cool_c", "kind": "number", "min": 15, "max": 35},
                     {"name": "fan", "kind": "integer", "min": 0, "max": 5, "required": true},
                     {"name": "mode", "kind": "string", "values": ["eco", "comfort"]},
                     {"name": "on", "kind": "boolean"}],
          "orders": [{"lower": "heat_c", "upper": "cool_c", "gap": 2}]})");
  EXPECT_TRUE(e.ok()) << e.error().to_string();
  return e.ok() ? *e : ConfigEnvelope{};
}

std::string refusal(std::string_view values) {
  auto r = decode_config_values(values, hvac());
  if (r.ok()) return "accepted";
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
  return r.error().message;
}

TEST(DeviceConfig, ValuesInsideTheEnvelopeAreReadInTheirFieldsKinds) {
  auto v = decode_config_values(R"({"heat_c": 20, "cool_c": 24.5, "fan": 3.0, "mode": "eco",
                                    "on": true})",
                                hvac());
  ASSERT_TRUE(v.ok()) << v.error().to_string();
  EXPECT_EQ(std::get<double>(v->at("heat_c")), 20.0);  // a whole number taken as a number
  EXPECT_EQ(std::get<int64_t>(v->at("fan")), 3);       // 3.0 is whole: an integer
  EXPECT_EQ(std::get<std::string>(v->at("mode")), "eco");
  EXPECT_TRUE(std::get<bool>(v->at("on")));
  // At the bounds is inside (inclusive).
  EXPECT_EQ(refusal(R"({"fan": 5, "heat_c": 5, "cool_c": 35})"), "accepted");
}

TEST(DeviceConfig, EveryWayOutOfTheEnvelopeIsRefusedNamingTheFieldAndTheBound) {
  EXPECT_EQ(refusal(R"({"fan": 1, "heat_c": 31})"),
            "heat_c: 31.0 is above the envelope's maximum 30.0");
  EXPECT_EQ(refusal(R"({"fan": -1})"), "fan: -1 is below the envelope's minimum 0.0");
  EXPECT_EQ(refusal(R"({"fan": 2.5})"), "fan: a whole number, not 2.5");
  EXPECT_EQ(refusal(R"({"fan": "2"})"), "fan: a whole number");
  EXPECT_EQ(refusal(R"({"fan": 1, "on": 1})"), "on: a boolean (true or false)");
  EXPECT_EQ(refusal(R"({"fan": 1, "mode": "turbo"})"),
            "mode: \"turbo\" is not one of the envelope's values (comfort, eco)");
  EXPECT_EQ(refusal(R"({"heat_c": 20})"), "fan: required");
  EXPECT_EQ(refusal(R"({"fan": 1, "volts": 240})"), "volts: not a field of the envelope");
  EXPECT_EQ(refusal(R"({"fan": 1, "heat_c": 23, "cool_c": 24})"),
            "heat_c (23.0) must be at least 2.0 below cool_c (24.0)");
  EXPECT_EQ(refusal(R"({"fan": 1, "heat_c": null})"), "heat_c: a number");
  EXPECT_EQ(refusal(R"({"fan": 1, "mode": ")" + std::string(300, 'x') + "\"}"),
            "mode: at most 256 bytes");
  EXPECT_EQ(refusal(R"({"fan": 18446744073709551615})"),
            "fan: too large (at most 2^53 either way)");
  EXPECT_EQ(refusal(R"({"fan": -9007199254740993})"), "fan: too large (at most 2^53 either way)");
  EXPECT_NE(refusal(R"({"fan": 1, "fan": 2})"), "accepted");  // a key twice
  EXPECT_NE(refusal(R"([1, 2])"), "accepted");
  EXPECT_NE(refusal("{\"fan\": 1"), "accepted");
  EXPECT_NE(refusal(R"({"fan": 1e999})"), "accepted");
  // The order holds only when both are set: one alone is not judged against the other.
  EXPECT_EQ(refusal(R"({"fan": 1, "heat_c": 29})"), "accepted");
}

TEST(DeviceConfig, TheCanonicalFormAndItsHashDependOnTheValuesNotTheirSpelling) {
  auto a = decode_config_values(R"({"mode": "eco", "fan": 2, "heat_c": 20})", hvac());
  auto b = decode_config_values(R"({"heat_c": 20.0, "fan": 2.0, "mode": "eco"})", hvac());
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(encode_config_values(*a), R"({"fan":2,"heat_c":20.0,"mode":"eco"})");
  EXPECT_EQ(encode_config_values(*a), encode_config_values(*b));
  EXPECT_EQ(config_sha256(*a), config_sha256(*b));
  EXPECT_EQ(config_sha256(*a), config_sha256_of(encode_config_values(*a)));
  EXPECT_EQ(config_sha256(*a).size(), 64u);
  auto c = decode_config_values(R"({"mode": "eco", "fan": 3, "heat_c": 20})", hvac());
  ASSERT_TRUE(c.ok());
  EXPECT_NE(config_sha256(*a), config_sha256(*c));
}

TEST(DeviceConfig, ABadEnvelopeIsRefused) {
  const auto bad = [](std::string_view text) {
    auto e = decode_config_envelope(text);
    return e.ok() ? std::string("accepted") : e.error().message;
  };
  EXPECT_EQ(bad(R"({"fields": [{"name": "a"}]})"), "accepted");  // a number, unbounded
  EXPECT_NE(bad(R"({"fields": [{"name": "A"}]})"), "accepted");
  EXPECT_NE(bad(R"({"fields": [{"name": "a", "kind": "float"}]})"), "accepted");
  EXPECT_NE(bad(R"({"fields": [{"name": "a", "min": 3, "max": 2}]})"), "accepted");
  EXPECT_NE(bad(R"({"fields": [{"name": "a", "kind": "boolean", "min": 0}]})"), "accepted");
  EXPECT_NE(bad(R"({"fields": [{"name": "a", "kind": "integer", "max": 2.5}]})"), "accepted");
  EXPECT_NE(bad(R"({"fields": [{"name": "a", "values": ["x"]}]})"), "accepted");
  EXPECT_NE(bad(R"({"fields": [{"name": "a", "kind": "string", "values": ["x", "x"]}]})"),
            "accepted");
  EXPECT_NE(bad(R"({"fields": [{"name": "a"}, {"name": "a"}]})"), "accepted");
  EXPECT_NE(bad(R"({"fields": [{"name": "a"}], "orders": [{"lower": "a", "upper": "b"}]})"),
            "accepted");
  EXPECT_NE(bad(R"({"fields": [{"name": "a"}], "orders": [{"lower": "a", "upper": "a"}]})"),
            "accepted");
  EXPECT_NE(bad(R"({"fields": [{"name": "a"}, {"name": "b", "kind": "string"}],
                    "orders": [{"lower": "a", "upper": "b"}]})"),
            "accepted");
  EXPECT_NE(bad(R"({"fields": [{"name": "a"}, {"name": "b"}],
                    "orders": [{"lower": "a", "upper": "b", "gap": -1}]})"),
            "accepted");
  EXPECT_NE(bad(R"({"fields": [{"name": "a", "unit": "C"}]})"), "accepted");  // unknown key
  // Round trip: what is written reads back the same.
  auto e = decode_config_envelope(encode_config_envelope(hvac()));
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(*e, hvac());
}

TEST(DeviceConfig, ADocumentFromTheServerMustKeepItsEnvelopeAndHashToWhatItSays) {
  auto values = decode_config_values(R"({"fan": 2, "heat_c": 20})", hvac());
  ASSERT_TRUE(values.ok());
  DeviceConfig c{"bms", 4, config_sha256(*values), *values, hvac()};
  auto read = decode_device_config(encode_device_config(c));
  ASSERT_TRUE(read.ok()) << read.error().to_string();
  EXPECT_EQ(read->version, 4u);
  EXPECT_EQ(read->values, c.values);
  EXPECT_EQ(read->envelope, c.envelope);

  DeviceConfig tampered = c;
  tampered.values["fan"] = int64_t{3};  // changed on its way, hash left as it was
  auto refused = decode_device_config(encode_device_config(tampered));
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("does not match"), std::string::npos);

  DeviceConfig outside = c;
  outside.values["fan"] = int64_t{9};
  outside.sha256 = config_sha256(outside.values);
  refused = decode_device_config(encode_device_config(outside));
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("above the envelope's maximum"), std::string::npos);
}

}  // namespace
}  // namespace drover::protocol
