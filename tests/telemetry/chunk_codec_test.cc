#include "telemetry/chunk_codec.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <limits>
#include <random>

#include "nab_series.h"
#include "telemetry/bit_stream.h"
#include "telemetry/integer_code.h"

namespace drover::telemetry {
namespace {

// Equal bit for bit: NaN payloads and the sign of zero count.
void expect_identical(const std::vector<Sample>& want, const std::vector<Sample>& got) {
  ASSERT_EQ(want.size(), got.size());
  for (size_t i = 0; i < want.size(); ++i) {
    ASSERT_EQ(want[i].t_ms, got[i].t_ms) << "sample " << i;
    ASSERT_EQ(std::bit_cast<uint64_t>(want[i].value), std::bit_cast<uint64_t>(got[i].value))
        << "sample " << i << ": " << want[i].value << " came back as " << got[i].value;
  }
}

std::vector<Sample> round_trip(const std::vector<Sample>& samples) {
  std::string bytes = encode_chunk(samples);
  std::vector<Sample> back;
  Status s = decode_chunk(bytes, back);
  EXPECT_TRUE(s.ok()) << s.error().to_string();
  return back;
}

TEST(BitStream, WritesAndReadsEveryWidthAndVarints) {
  BitWriter w;
  std::mt19937_64 rng(7);
  std::vector<std::pair<uint64_t, int>> written;
  for (int i = 0; i < 2000; ++i) {
    int width = static_cast<int>(rng() % 65);
    uint64_t v = width == 64 ? rng() : rng() & ((uint64_t{1} << width) - 1);
    w.write(v, width);
    written.emplace_back(v, width);
  }
  w.write_varint(UINT64_MAX);
  w.write_varint(0);
  w.write_varint(300);
  std::string bytes = std::move(w).finish();
  BitReader r(bytes);
  for (auto [v, width] : written) ASSERT_EQ(r.read(width), v);
  EXPECT_EQ(r.read_varint(), UINT64_MAX);
  EXPECT_EQ(r.read_varint(), 0u);
  EXPECT_EQ(r.read_varint(), 300u);
  EXPECT_TRUE(r.ok());
  EXPECT_LT(r.bits_left(), 8u);
  r.read(8);
  EXPECT_FALSE(r.ok());  // past the end: failed, and stays failed
  EXPECT_EQ(r.read(1), 0u);
}

TEST(BitStream, AnOverlongVarintFails) {
  std::string eleven(10, '\xff');
  eleven.push_back('\x01');
  BitReader r(eleven);
  r.read_varint();
  EXPECT_FALSE(r.ok());
  std::string too_big = std::string(9, '\xff') + '\x02';  // bit 64 set
  BitReader r2(too_big);
  r2.read_varint();
  EXPECT_FALSE(r2.ok());
}

TEST(IntegerCode, CodedBitsIsWhatIsWritten) {
  std::mt19937_64 rng(11);
  for (int trial = 0; trial < 200; ++trial) {
    std::vector<uint64_t> values(1 + rng() % 300);
    int spread = static_cast<int>(rng() % 64);
    for (auto& v : values) v = rng() >> (rng() % (spread + 1) + (63 - spread));
    if (trial % 7 == 0) values.assign(values.size(), 42);  // a single symbol
    BitWriter w;
    write_integers(w, values);
    uint64_t written = w.bit_count();
    EXPECT_EQ(written, coded_bits(histogram_of(values)));
    std::string bytes = std::move(w).finish();
    BitReader r(bytes);
    std::vector<uint64_t> back(values.size());
    ASSERT_TRUE(read_integers(r, back));
    EXPECT_EQ(back, values);
  }
}

TEST(IntegerCode, SkewedLengthsStayWithinTheCodeLengthLimit) {
  // Fibonacci-like counts make the optimal Huffman code as deep as it gets.
  std::vector<uint64_t> values;
  uint64_t a = 1, b = 1;
  for (int len = 1; len <= 40; ++len) {
    for (uint64_t i = 0; i < std::min<uint64_t>(a, 100000); ++i)
      values.push_back(uint64_t{1} << (len - 1));
    uint64_t c = a + b;
    a = b;
    b = c;
  }
  BitWriter w;
  write_integers(w, values);
  std::string bytes = std::move(w).finish();
  BitReader r(bytes);
  std::vector<uint64_t> back(values.size());
  ASSERT_TRUE(read_integers(r, back));
  EXPECT_EQ(back, values);
}

TEST(ChunkCodec, EveryRealSeriesComesBackBitForBitInFewBytes) {
  size_t samples = 0;
  size_t bytes = 0;
  for (const auto& series : testing::load_nab_series()) {
    std::vector<Sample> kept = testing::strictly_increasing(series.samples);
    for (size_t at = 0; at < kept.size(); at += 1024) {
      std::vector<Sample> chunk(
          kept.begin() + static_cast<ptrdiff_t>(at),
          kept.begin() + static_cast<ptrdiff_t>(std::min(at + 1024, kept.size())));
      std::string encoded = encode_chunk(chunk);
      std::vector<Sample> back;
      ASSERT_TRUE(decode_chunk(encoded, back).ok()) << series.name;
      expect_identical(chunk, back);
      samples += chunk.size();
      bytes += encoded.size();
    }
  }
  EXPECT_EQ(samples, 83404u - 24u);
  // The benchmark measures this against other stores; here it guards against a regression
  // to plain XOR coding (about 5 bytes a sample on these series).
  double per_sample = static_cast<double>(bytes) / static_cast<double>(samples);
  std::printf("%zu samples in %zu bytes: %.3f bytes a sample\n", samples, bytes, per_sample);
  EXPECT_LT(per_sample, 1.7) << per_sample;
}

TEST(ChunkCodec, SpecialValuesSurvive) {
  double nan_payload = std::bit_cast<double>(uint64_t{0x7ff8000000000bad});
  std::vector<double> values = {0.0,
                                -0.0,
                                std::numeric_limits<double>::infinity(),
                                -std::numeric_limits<double>::infinity(),
                                std::numeric_limits<double>::quiet_NaN(),
                                nan_payload,
                                std::numeric_limits<double>::denorm_min(),
                                -std::numeric_limits<double>::max(),
                                std::numeric_limits<double>::max(),
                                1e300,
                                -1e-300,
                                0.1,
                                51.846000000000004,
                                51.846,
                                1e22,
                                123456789012345678.0};
  std::vector<Sample> samples;
  for (size_t i = 0; i < values.size(); ++i)
    samples.push_back({static_cast<int64_t>(i) * 7, values[i]});
  expect_identical(samples, round_trip(samples));
}

TEST(ChunkCodec, TimestampsOfEveryShape) {
  std::vector<std::vector<int64_t>> shapes = {
      {0},
      {-5},
      {kMaxTimestampMs - 1},
      {-kMaxTimestampMs + 1, kMaxTimestampMs - 1},
      {1, 2},
      {1000, 2000, 3000, 4000},
      {1000, 2000, 3001, 4000, 100000, 100001},
      {-3000, -2000, -1000, 0, 1000},
  };
  std::mt19937_64 rng(3);
  std::vector<int64_t> jittered;
  int64_t t = 1'700'000'000'000;
  for (int i = 0; i < 5000; ++i)
    jittered.push_back(t += 10'000 + static_cast<int64_t>(rng() % 40) - 20);
  shapes.push_back(jittered);
  for (const auto& times : shapes) {
    std::vector<Sample> samples;
    for (int64_t ts : times) samples.push_back({ts, static_cast<double>(ts % 97)});
    expect_identical(samples, round_trip(samples));
  }
}

TEST(ChunkCodec, RandomBitPatternsSurvive) {
  std::mt19937_64 rng(5);
  for (int trial = 0; trial < 50; ++trial) {
    std::vector<Sample> samples;
    int64_t t = static_cast<int64_t>(rng() % 1'000'000);
    size_t n = 1 + rng() % 2000;
    for (size_t i = 0; i < n; ++i) {
      double v = 0;
      switch (trial % 4) {
        case 0:
          v = std::bit_cast<double>(rng());
          break;  // anything
        case 1:
          v = static_cast<double>(rng() % 1000) / 100.0;
          break;  // two decimals
        case 2:
          v = static_cast<double>(static_cast<int64_t>(rng()));
          break;  // huge integers
        default:
          v = std::sin(static_cast<double>(i) / 30.0) * 1e6;
          break;  // smooth
      }
      samples.push_back({t += 1 + static_cast<int64_t>(rng() % 100000), v});
    }
    expect_identical(samples, round_trip(samples));
  }
}

TEST(ChunkCodec, AConstantSeriesCostsAlmostNothing) {
  std::vector<Sample> samples;
  for (int i = 0; i < 1000; ++i) samples.push_back({1'700'000'000'000 + i * 10'000, 21.5});
  std::string bytes = encode_chunk(samples);
  EXPECT_LT(bytes.size(), 24u);
  std::vector<Sample> back;
  ASSERT_TRUE(decode_chunk(bytes, back).ok());
  expect_identical(samples, back);
}

TEST(ChunkCodec, TruncatedOrExtendedChunksAreCorruptAndChangeNothing) {
  std::vector<Sample> samples;
  for (int i = 0; i < 300; ++i) samples.push_back({i * 1000, 51.846000000000004 + (i % 13) * 0.25});
  std::string bytes = encode_chunk(samples);
  std::vector<Sample> out = {{-1, 1.0}};
  for (size_t len = 0; len < bytes.size(); ++len) {
    Status s = decode_chunk(std::string_view(bytes).substr(0, len), out);
    ASSERT_FALSE(s.ok()) << "a chunk cut to " << len << " of " << bytes.size() << " bytes decoded";
    EXPECT_EQ(s.error().code, ErrorCode::kCorruption);
    ASSERT_EQ(out.size(), 1u);
  }
  Status longer = decode_chunk(bytes + '\0', out);
  ASSERT_FALSE(longer.ok());
  EXPECT_NE(longer.error().message.find("trailing"), std::string::npos);
  EXPECT_EQ(out.size(), 1u);
}

TEST(ChunkCodec, FlippedBitsNeverCrashAndNeverBreakOrder) {
  std::vector<Sample> samples;
  for (int i = 0; i < 200; ++i) samples.push_back({i * 1000 + (i % 3), i * 0.5});
  std::string bytes = encode_chunk(samples);
  for (size_t bit = 0; bit < bytes.size() * 8; ++bit) {
    std::string flipped = bytes;
    flipped[bit / 8] = static_cast<char>(flipped[bit / 8] ^ (1 << (bit % 8)));
    std::vector<Sample> out;
    if (!decode_chunk(flipped, out).ok()) {
      EXPECT_TRUE(out.empty());
      continue;
    }
    // Undetected damage (the chunk file's checksum catches it) must still be a valid chunk.
    ASSERT_FALSE(out.empty());
    for (size_t i = 1; i < out.size(); ++i) ASSERT_LT(out[i - 1].t_ms, out[i].t_ms);
  }
}

TEST(ChunkCodec, AnUnknownFormatIsNamed) {
  std::string bytes = encode_chunk(std::vector<Sample>{{1, 2.0}});
  bytes[0] = 9;
  std::vector<Sample> out;
  Status s = decode_chunk(bytes, out);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().message, "chunk: unknown format 9");
}

}  // namespace
}  // namespace drover::telemetry
