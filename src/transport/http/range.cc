#include "transport/http/range.h"

#include <charconv>

namespace drover::http {
namespace {

// Decimal digits only (no sign, no spaces), fitting in 64 bits.
bool parse_position(std::string_view text, uint64_t& out) {
  if (text.empty()) return false;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
  }
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && end == text.data() + text.size();
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

RangeResult fail(RangeError e) { return RangeResult{std::nullopt, e}; }

}  // namespace

RangeResult resolve_range(std::string_view header, uint64_t size) {
  header = trim(header);
  if (header.empty()) return {};
  constexpr std::string_view kUnit = "bytes=";
  if (header.size() < kUnit.size()) return fail(RangeError::kMalformed);
  for (size_t i = 0; i < kUnit.size(); ++i) {
    const char c =
        header[i] >= 'A' && header[i] <= 'Z' ? static_cast<char>(header[i] + 32) : header[i];
    if (c != kUnit[i]) return fail(RangeError::kMalformed);
  }
  const std::string_view spec = trim(header.substr(kUnit.size()));
  if (spec.find(',') != std::string_view::npos) return fail(RangeError::kMultiple);
  const size_t dash = spec.find('-');
  if (dash == std::string_view::npos) return fail(RangeError::kMalformed);
  const std::string_view first_text = trim(spec.substr(0, dash));
  const std::string_view last_text = trim(spec.substr(dash + 1));

  if (first_text.empty()) {  // suffix: the last N bytes
    uint64_t n = 0;
    if (!parse_position(last_text, n)) return fail(RangeError::kMalformed);
    if (n == 0 || size == 0) return fail(RangeError::kUnsatisfiable);
    if (n > size) n = size;
    return RangeResult{ByteRange{size - n, n}, std::nullopt};
  }
  uint64_t first = 0;
  if (!parse_position(first_text, first)) return fail(RangeError::kMalformed);
  uint64_t last = size == 0 ? 0 : size - 1;
  if (!last_text.empty()) {
    if (!parse_position(last_text, last)) return fail(RangeError::kMalformed);
    if (last < first) return fail(RangeError::kMalformed);
    if (size > 0 && last > size - 1) last = size - 1;
  }
  if (first >= size) return fail(RangeError::kUnsatisfiable);
  return RangeResult{ByteRange{first, last - first + 1}, std::nullopt};
}

}  // namespace drover::http
