#include "protocol/telemetry_batch.h"

#include <gtest/gtest.h>
#include <zstd.h>

#include <bit>
#include <nlohmann/json.hpp>

namespace drover::protocol {
namespace {

using nlohmann::json;

TelemetryBatch sample_batch() {
  TelemetryBatch b;
  b.stream = 0x5eed;
  b.sequence = 7;
  b.dropped = 3;
  b.series.push_back({"cpu_percent", {}, {{1'700'000'000'000, 12.5}, {1'700'000'010'000, 13.0}}});
  b.series.push_back(
      {"temp_c", {{"zone", "cpu"}}, {{1'700'000'000'000, -4.25}, {1'700'000'060'000, 1e300}}});
  return b;
}

std::string cbor(const json& j) {
  auto bytes = json::to_cbor(j);
  return {bytes.begin(), bytes.end()};
}

TEST(TelemetryBatch, RoundTripsCompressedAndPlain) {
  TelemetryBatch b = sample_batch();
  for (bool compressed : {true, false}) {
    std::string body = compressed ? encode_telemetry_batch(b) : encode_telemetry_cbor(b);
    auto back = decode_telemetry_batch(body, compressed);
    ASSERT_TRUE(back.ok()) << back.error().to_string();
    EXPECT_EQ(*back, b);
  }
}

TEST(TelemetryBatch, NaNPayloadsAndSmallFloatsSurviveBitForBit) {
  TelemetryBatch b;
  b.stream = 1;
  b.sequence = 1;
  // Prometheus's staleness marker, another NaN, -0.0, a float32-exact value, a double.
  const double stale = std::bit_cast<double>(uint64_t{0x7ff0000000000002});
  const double other = std::bit_cast<double>(uint64_t{0xffffff0400000000});
  b.series.push_back({"x", {}, {{1, stale}, {2, other}, {3, -0.0}, {4, 0.5}, {5, 0.1}}});
  for (bool compressed : {true, false}) {
    std::string body = compressed ? encode_telemetry_batch(b) : encode_telemetry_cbor(b);
    auto back = decode_telemetry_batch(body, compressed);
    ASSERT_TRUE(back.ok()) << back.error().to_string();
    ASSERT_EQ(back->series[0].samples.size(), 5u);
    for (size_t i = 0; i < 5; ++i) {
      EXPECT_EQ(std::bit_cast<uint64_t>(back->series[0].samples[i].value),
                std::bit_cast<uint64_t>(b.series[0].samples[i].value))
          << i;
    }
  }
  // 0.5 fits a float32 (5 bytes), 0.1 needs a float64 (9 bytes).
  EXPECT_LT(encode_telemetry_cbor(b).size(), 5u * 9u + 40u);
}

TEST(TelemetryBatch, NastyBatchesAreRefusedWithTheReason) {
  const json good = {
      {"stream", 1}, {"seq", 1}, {"series", {{{"m", "x"}, {"t", {5, 1}}, {"v", {1, 2}}}}}};
  EXPECT_TRUE(decode_telemetry_batch(cbor(good), false).ok());
  const std::pair<json, const char*> cases[] = {
      {json::array({1, 2}), "an array is not a value here"},
      {{{"stream", 1}, {"series", json::array()}}, "'seq' is missing"},
      {{{"stream", 1}, {"seq", 0}, {"series", json::array()}}, "seq starts at 1"},
      {{{"stream", -1}, {"seq", 1}, {"series", json::array()}}, "cannot be negative"},
      {{{"stream", 1}, {"seq", 1}, {"series", json::array()}, {"colour", 1}},
       "unknown key 'colour'"},
      {{{"stream", 1}, {"seq", 1}, {"series", {{{"m", "9x"}, {"t", {1}}, {"v", {1}}}}}},
       "not valid"},
      {{{"stream", 1}, {"seq", 1}, {"series", {{{"t", {1}}, {"v", {1}}}}}}, "without 'm'"},
      {{{"stream", 1}, {"seq", 1}, {"series", {{{"m", "x"}, {"t", {1, 0}}, {"v", {1, 1}}}}}},
       "times must increase"},
      {{{"stream", 1}, {"seq", 1}, {"series", {{{"m", "x"}, {"t", {1, 2}}, {"v", {1}}}}}},
       "2 times but 1 values"},
      {{{"stream", 1}, {"seq", 1}, {"series", {{{"m", "x"}, {"t", {1}}, {"v", {"a"}}}}}},
       "a string is not a value here"},
      {{{"stream", 1},
        {"seq", 1},
        {"series", {{{"m", "x"}, {"l", {{"__name", "a"}}}, {"t", {1}}, {"v", {1}}}}}},
       "label name '__name' is not valid"},
      {{{"stream", 1},
        {"seq", 1},
        {"series", {{{"m", "x"}, {"l", {{"a", "b\nc"}}}, {"t", {1}}, {"v", {1}}}}}},
       "printable"},
      {{{"stream", 1},
        {"seq", 1},
        {"series", {{{"m", "x"}, {"t", {int64_t{1} << 62}}, {"v", {1}}}}}},
       "out of range"},
      {{{"stream", 1},
        {"seq", 1},
        {"series", {{{"m", "x"}, {"t", {1, INT64_MAX}}, {"v", {1, 2}}}}}},
       "out of range"},
  };
  for (const auto& [doc, why] : cases) {
    auto r = decode_telemetry_batch(cbor(doc), false);
    ASSERT_FALSE(r.ok()) << doc.dump();
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument) << doc.dump();
    EXPECT_NE(r.error().message.find(why), std::string::npos) << r.error().message;
  }
}

TEST(TelemetryBatch, ARepeatedKeyIsRefused) {
  // {"stream": 1, "stream": 2, ...}: written by hand, as no encoder makes it.
  std::string body;
  body += static_cast<char>(0xa4);  // a map of four pairs
  for (const char* key : {"stream", "stream"}) {
    body += static_cast<char>(0x60 + 6);
    body += key;
    body += static_cast<char>(0x01);
  }
  body += static_cast<char>(0x63);
  body += "seq";
  body += static_cast<char>(0x01);
  body += static_cast<char>(0x66);
  body += "series";
  body += static_cast<char>(0x80);
  auto r = decode_telemetry_batch(body, false);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("appears twice"), std::string::npos) << r.error().message;
}

TEST(TelemetryBatch, LimitsAreResourceExhausted) {
  // A zstd bomb: 64 MiB of zeros in a few kilobytes.
  std::string zeros(size_t{64} << 20, '\0');
  std::string bomb(ZSTD_compressBound(zeros.size()), '\0');
  bomb.resize(ZSTD_compress(bomb.data(), bomb.size(), zeros.data(), zeros.size(), 1));
  ASSERT_LT(bomb.size(), 1u << 20);
  auto r = decode_telemetry_batch(bomb, true);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kResourceExhausted);

  TelemetryBatch many;
  many.stream = 1;
  many.sequence = 1;
  for (size_t i = 0; i <= kMaxBatchSeries; ++i)
    many.series.push_back({"m" + std::to_string(i), {}, {{1, 1}}});
  r = decode_telemetry_batch(encode_telemetry_batch(many), true);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kResourceExhausted);

  TelemetryBatch big;
  big.stream = 1;
  big.sequence = 1;
  big.series.push_back({"m", {}, {}});
  for (size_t i = 0; i <= kMaxBatchSamples; ++i)
    big.series[0].samples.push_back({static_cast<int64_t>(i), 0});
  r = decode_telemetry_batch(encode_telemetry_batch(big), true);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kResourceExhausted);
}

TEST(TelemetryBatch, DamagedBodiesAreRefusedNotCrashed) {
  std::string body = encode_telemetry_batch(sample_batch());
  for (size_t len = 0; len < body.size(); ++len) {
    auto r = decode_telemetry_batch(body.substr(0, len), true);
    EXPECT_FALSE(r.ok()) << "cut to " << len;
  }
  std::string plain = encode_telemetry_cbor(sample_batch());
  for (size_t len = 0; len < plain.size(); ++len) {
    EXPECT_FALSE(decode_telemetry_batch(plain.substr(0, len), false).ok()) << "cut to " << len;
  }
  EXPECT_FALSE(decode_telemetry_batch("not zstd at all", true).ok());
}

// Indefinite-length strings nested in each other (not CBOR: a chunk must be a definite-length
// string) made the reader recurse once per byte and overflow the stack: a few megabytes of
// 0x7f from a device took the server down (found by fuzz_telemetry_batch). Refused now, as
// are chunks of another type; well-formed chunked strings still read.
TEST(TelemetryBatch, NestedIndefiniteStringsAreRefusedWithoutRecursion) {
  for (const char head : {'\x7f', '\x5f'}) {
    std::string nested = "\xa1";  // a map of one entry, its key a string
    nested += std::string(4 << 20, head);
    auto r = decode_telemetry_batch(nested, false);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
    EXPECT_NE(r.error().message.find("chunk of an indefinite-length string"), std::string::npos)
        << r.error().message;
  }
  // A text string's chunk that is a byte string.
  EXPECT_FALSE(decode_telemetry_batch(std::string("\x7f\x41x\xff", 4), false).ok());
  // A batch whose key "stream" is sent in two chunks ("str" + "eam") reads as the plain one.
  std::string plain = encode_telemetry_cbor(sample_batch());
  const std::string key = "\x66stream";
  const size_t at = plain.find(key);
  ASSERT_NE(at, std::string::npos);
  std::string chunked = plain;
  chunked.replace(at, key.size(),
                  "\x7f\x63str\x63"
                  "eam\xff");
  auto back = decode_telemetry_batch(chunked, false);
  ASSERT_TRUE(back.ok()) << back.error().to_string();
  EXPECT_EQ(*back, sample_batch());
}

}  // namespace
}  // namespace drover::protocol
