// A decimal number in text, strictly: digits with an optional sign, point and exponent —
// no spaces, hex, infinities or NaNs. With strtod (the agent runs in the "C" locale) rather
// than std::from_chars, whose double overload pulls libm into the agent for one call.
#pragma once

#include <cmath>
#include <cstdlib>
#include <string>
#include <string_view>

namespace drover::agent {

inline bool parse_decimal(std::string_view s, double& out) {
  if (s.empty() || s.size() > 64) return false;
  for (char c : s) {
    const bool ok =
        (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E';
    if (!ok) return false;
  }
  const std::string text(s);
  char* end = nullptr;
  out = std::strtod(text.c_str(), &end);
  return end == text.c_str() + text.size() && std::isfinite(out);
}

}  // namespace drover::agent
