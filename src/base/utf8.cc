#include "base/utf8.h"

namespace drover {
namespace {

// The length of the well-formed sequence at text[i], or 0 when there is none.
size_t sequence_at(std::string_view text, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char b0 = byte(i);
  if (b0 < 0x80) return 1;
  size_t n = 0;
  unsigned char lo = 0x80, hi = 0xBF;  // the second byte's range (RFC 3629's table)
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    n = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    n = 3;
    if (b0 == 0xE0) lo = 0xA0;  // no overlong forms
    if (b0 == 0xED) hi = 0x9F;  // no surrogates
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    n = 4;
    if (b0 == 0xF0) lo = 0x90;  // no overlong forms
    if (b0 == 0xF4) hi = 0x8F;  // nothing past U+10FFFF
  } else {
    return 0;
  }
  if (i + n > text.size()) return 0;
  if (byte(i + 1) < lo || byte(i + 1) > hi) return 0;
  for (size_t k = 2; k < n; ++k) {
    if (byte(i + k) < 0x80 || byte(i + k) > 0xBF) return 0;
  }
  return n;
}

}  // namespace

bool is_valid_utf8(std::string_view text) {
  for (size_t i = 0; i < text.size();) {
    const size_t n = sequence_at(text, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

std::string utf8_sanitized(std::string_view text) {
  std::string out(text);
  for (size_t i = 0; i < out.size();) {
    const size_t n = sequence_at(out, i);
    if (n == 0) {
      out[i] = '?';
      ++i;
    } else {
      i += n;
    }
  }
  return out;
}

std::string utf8_tail(std::string_view text, size_t max) {
  std::string clean = utf8_sanitized(text);
  if (clean.size() <= max) return clean;
  size_t from = clean.size() - max;
  // Valid UTF-8 now: a continuation byte (10xxxxxx) is never where a character starts.
  while (from < clean.size() && (static_cast<unsigned char>(clean[from]) & 0xC0) == 0x80) ++from;
  return clean.substr(from);
}

std::string utf8_head(std::string_view text, size_t max) {
  std::string clean = utf8_sanitized(text);
  if (clean.size() <= max) return clean;
  size_t end = max;
  // The character that starts at `end` (or straddles it) is dropped whole.
  while (end > 0 && (static_cast<unsigned char>(clean[end]) & 0xC0) == 0x80) --end;
  clean.resize(end);
  return clean;
}

}  // namespace drover
