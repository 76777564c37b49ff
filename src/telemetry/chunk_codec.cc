#include "telemetry/chunk_codec.h"

#include <algorithm>
#include <array>
#include <bit>
#include <charconv>
#include <cmath>
#include <numeric>
#include <optional>

#include "telemetry/bit_stream.h"
#include "telemetry/integer_code.h"

namespace drover::telemetry {
namespace {

constexpr uint64_t kFormatVersion = 1;
constexpr int kMaxExponent = 24;         // decimal exponents -24..24
constexpr int kExponentBias = 32;        // written in 6 bits
constexpr int kPredictors = 5;           // weights 0/4 .. 4/4 of the previous value
constexpr double kMaxMantissa = 0x1p60;  // keeps every predictor step free of overflow

constexpr std::array<double, kMaxExponent + 1> kPowersOfTen = [] {
  std::array<double, kMaxExponent + 1> p{};
  double v = 1;
  for (auto& x : p) {
    x = v;
    v *= 10;
  }
  return p;
}();

// A bijection from doubles to integers that keeps neighbours close: positive doubles keep
// their bits, negative ones get their magnitude bits flipped (so -0.0 and +0.0 differ).
int64_t ordered_bits(double v) {
  auto bits = std::bit_cast<int64_t>(v);
  return bits ^ ((bits >> 63) & INT64_MAX);
}
double from_ordered_bits(int64_t o) { return std::bit_cast<double>(o ^ ((o >> 63) & INT64_MAX)); }

// The value a mantissa at a decimal exponent stands for. The encoder computes corrections
// against exactly this function, so it only has to be deterministic; for mantissas below
// 2^53 at |exponent| <= 22 it is also exact (one correctly rounded IEEE operation).
double decimal_value(int64_t mantissa, int exponent) {
  auto m = static_cast<double>(mantissa);
  return exponent < 0 ? m / kPowersOfTen[-exponent] : m * kPowersOfTen[exponent];
}

// The mantissa nearest to `v` at `exponent`, or 0 when it would be out of range (the
// correction then carries the whole value).
int64_t mantissa_of(double v, int exponent) {
  double x = exponent < 0 ? v * kPowersOfTen[-exponent] : v / kPowersOfTen[exponent];
  if (!(std::fabs(x) < kMaxMantissa)) return 0;  // also NaN and infinities
  return std::llround(x);
}

// The prediction of the next mantissa: the chunk's median pulled towards the previous
// mantissa by weight/4. Unsigned arithmetic, so a corrupt chunk wraps instead of
// overflowing; for the encoder's in-range mantissas it is exact.
int64_t predict(int64_t base, int64_t previous, int weight) {
  uint64_t diff = static_cast<uint64_t>(previous) - static_cast<uint64_t>(base);
  auto pulled = static_cast<int64_t>(diff * static_cast<uint64_t>(weight)) >> 2;
  return static_cast<int64_t>(static_cast<uint64_t>(base) + static_cast<uint64_t>(pulled));
}

// The shortest decimal exponent that writes `v` exactly, and how many significant digits
// that takes; nullopt for NaN and infinities.
struct Decimal {
  int exponent;
  int digits;
};
std::optional<Decimal> shortest_decimal(double v) {
  if (!std::isfinite(v)) return std::nullopt;
  if (v == 0) return Decimal{0, 1};
  std::array<char, 64> buf{};
  auto [end, ec] = std::to_chars(buf.data(), buf.data() + buf.size(), v);
  if (ec != std::errc()) return std::nullopt;
  std::string_view text(buf.data(), static_cast<size_t>(end - buf.data()));
  int exponent = 0;
  if (auto e = text.find('e'); e != std::string_view::npos) {
    std::from_chars(text.data() + e + (text[e + 1] == '+' ? 2 : 1), text.data() + text.size(),
                    exponent);
    text = text.substr(0, e);
  }
  int digits = 0;
  int leading_zeros = 0;  // zeros before the first significant digit
  int fraction = 0;       // digits after the point
  bool after_point = false;
  int trailing_zeros = 0;
  for (char c : text) {
    if (c == '-') continue;
    if (c == '.') {
      after_point = true;
      continue;
    }
    if (after_point) ++fraction;
    if (digits == 0 && c == '0') {
      ++leading_zeros;
      continue;
    }
    ++digits;
    trailing_zeros = (c == '0') ? trailing_zeros + 1 : 0;
  }
  // Trailing zeros of the integer part move into the exponent; a fraction has none.
  return Decimal{exponent - fraction + trailing_zeros, digits - trailing_zeros};
}

struct ValueEncoding {
  int exponent = 0;
  int weight = 0;
  int64_t base = 0;
  std::vector<uint64_t> residuals;
  std::vector<uint64_t> corrections;
  bool has_corrections = false;
  uint64_t bits = UINT64_MAX;
};

// Encodes the values at one exponent with the best predictor weight, into `best` when it
// is smaller than what `best` holds.
void try_exponent(std::span<const Sample> samples, int exponent, ValueEncoding& best) {
  size_t n = samples.size();
  std::vector<int64_t> mantissas(n);
  ValueEncoding candidate;
  candidate.exponent = exponent;
  candidate.corrections.resize(n);
  for (size_t i = 0; i < n; ++i) {
    double v = samples[i].value;
    mantissas[i] = mantissa_of(v, exponent);
    double back = decimal_value(mantissas[i], exponent);
    auto diff = static_cast<uint64_t>(ordered_bits(v)) - static_cast<uint64_t>(ordered_bits(back));
    candidate.corrections[i] = zigzag(static_cast<int64_t>(diff));
    candidate.has_corrections |= diff != 0;
  }
  std::vector<int64_t> sorted = mantissas;
  std::nth_element(sorted.begin(), sorted.begin() + static_cast<ptrdiff_t>(n / 2), sorted.end());
  candidate.base = sorted[n / 2];
  uint64_t correction_bits =
      1 + (candidate.has_corrections ? coded_bits(histogram_of(candidate.corrections)) : 0);
  std::vector<uint64_t> residuals(n);
  for (int weight = 0; weight < kPredictors; ++weight) {
    int64_t previous = candidate.base;
    for (size_t i = 0; i < n; ++i) {
      residuals[i] = zigzag(mantissas[i] - predict(candidate.base, previous, weight));
      previous = mantissas[i];
    }
    uint64_t bits = coded_bits(histogram_of(residuals)) + correction_bits;
    if (bits < best.bits) {
      candidate.weight = weight;
      candidate.bits = bits;
      candidate.residuals = residuals;
      best = candidate;
    }
  }
}

ValueEncoding encode_values(std::span<const Sample> samples) {
  // Candidate exponents: the finest one any exactly-decimal value needs (then all of them
  // are exact), the most common one, and one finer than that.
  std::array<uint32_t, 2 * kMaxExponent + 1> uses{};
  int finest = kMaxExponent + 1;
  for (const Sample& s : samples) {
    auto d = shortest_decimal(s.value);
    if (!d || d->digits > 15 || d->exponent < -kMaxExponent || d->exponent > kMaxExponent) {
      continue;
    }
    ++uses[d->exponent + kMaxExponent];
    finest = std::min(finest, d->exponent);
  }
  ValueEncoding best;
  if (finest > kMaxExponent) {
    try_exponent(samples, 0, best);
    return best;
  }
  int common =
      static_cast<int>(std::max_element(uses.begin(), uses.end()) - uses.begin()) - kMaxExponent;
  try_exponent(samples, finest, best);
  if (common != finest) try_exponent(samples, common, best);
  if (common - 1 > finest) try_exponent(samples, common - 1, best);
  return best;
}

Error corrupt(const std::string& what) { return {ErrorCode::kCorruption, "chunk: " + what}; }

}  // namespace

std::string encode_chunk(std::span<const Sample> samples) {
  DROVER_CHECK(!samples.empty() && samples.size() <= kMaxChunkSamples);
  size_t n = samples.size();
  BitWriter out;
  out.write(kFormatVersion, 8);
  out.write_varint(n);
  DROVER_CHECK(std::llabs(samples[0].t_ms) < kMaxTimestampMs);
  out.write_varint(zigzag(samples[0].t_ms));
  if (n >= 2) {
    uint64_t unit = 0;
    for (size_t i = 1; i < n; ++i) {
      DROVER_CHECK(samples[i].t_ms > samples[i - 1].t_ms && samples[i].t_ms < kMaxTimestampMs);
      unit = std::gcd(unit, static_cast<uint64_t>(samples[i].t_ms - samples[i - 1].t_ms));
    }
    auto delta = [&](size_t i) {
      return static_cast<int64_t>(static_cast<uint64_t>(samples[i].t_ms - samples[i - 1].t_ms) /
                                  unit);
    };
    out.write_varint(unit);
    out.write_varint(static_cast<uint64_t>(delta(1)));
    std::vector<uint64_t> dods;
    dods.reserve(n - 2);
    for (size_t i = 2; i < n; ++i) dods.push_back(zigzag(delta(i) - delta(i - 1)));
    write_integers(out, dods);
  }
  ValueEncoding values = encode_values(samples);
  const auto biased_exponent = static_cast<unsigned>(values.exponent + kExponentBias);
  out.write(biased_exponent, 6);
  out.write(static_cast<uint64_t>(values.weight), 3);
  out.write_varint(zigzag(values.base));
  write_integers(out, values.residuals);
  out.write(values.has_corrections ? 1 : 0, 1);
  if (values.has_corrections) write_integers(out, values.corrections);
  return std::move(out).finish();
}

Status decode_chunk(std::string_view bytes, std::vector<Sample>& out) {
  BitReader in(bytes);
  uint64_t version = in.read(8);
  if (!in.ok()) return corrupt("empty");
  if (version != kFormatVersion) return corrupt("unknown format " + std::to_string(version));
  uint64_t n = in.read_varint();
  if (!in.ok() || n == 0 || n > kMaxChunkSamples) return corrupt("bad sample count");
  int64_t t = unzigzag(in.read_varint());
  if (!in.ok() || t >= kMaxTimestampMs || t <= -kMaxTimestampMs) return corrupt("bad start time");
  std::vector<Sample> samples(n);
  samples[0].t_ms = t;
  if (n >= 2) {
    uint64_t unit = in.read_varint();
    uint64_t first = in.read_varint();
    if (!in.ok() || unit == 0 || first == 0 || unit > INT64_MAX || first > INT64_MAX) {
      return corrupt("bad time step");
    }
    std::vector<uint64_t> dods(n - 2);
    if (!read_integers(in, dods)) return corrupt("bad timestamps");
    auto delta = static_cast<int64_t>(first);
    for (uint64_t i = 1; i < n; ++i) {
      if (i >= 2 && __builtin_add_overflow(delta, unzigzag(dods[i - 2]), &delta)) {
        return corrupt("timestamp overflow");
      }
      int64_t step = 0;
      if (delta <= 0 || __builtin_mul_overflow(delta, static_cast<int64_t>(unit), &step) ||
          __builtin_add_overflow(t, step, &t) || t >= kMaxTimestampMs) {
        return corrupt("timestamps not increasing or out of range");
      }
      samples[i].t_ms = t;
    }
  }
  int exponent = static_cast<int>(in.read(6)) - kExponentBias;
  auto weight = static_cast<int>(in.read(3));
  int64_t base = unzigzag(in.read_varint());
  if (!in.ok() || exponent < -kMaxExponent || exponent > kMaxExponent || weight >= kPredictors) {
    return corrupt("bad value header");
  }
  std::vector<uint64_t> codes(n);
  if (!read_integers(in, codes)) return corrupt("bad values");
  int64_t previous = base;
  for (uint64_t i = 0; i < n; ++i) {
    auto m = static_cast<int64_t>(static_cast<uint64_t>(predict(base, previous, weight)) +
                                  static_cast<uint64_t>(unzigzag(codes[i])));
    samples[i].value = decimal_value(m, exponent);
    previous = m;
  }
  bool has_corrections = in.read_bit();
  if (!in.ok()) return corrupt("truncated");
  if (has_corrections) {
    if (!read_integers(in, codes)) return corrupt("bad corrections");
    for (uint64_t i = 0; i < n; ++i) {
      auto o = static_cast<uint64_t>(ordered_bits(samples[i].value)) +
               static_cast<uint64_t>(unzigzag(codes[i]));
      samples[i].value = from_ordered_bits(static_cast<int64_t>(o));
    }
  }
  if (in.bits_left() >= 8) return corrupt("trailing bytes");
  out.insert(out.end(), samples.begin(), samples.end());
  return ok_status();
}

}  // namespace drover::telemetry
