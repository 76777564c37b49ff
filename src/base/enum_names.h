// A name table for an enum: one array of {value, "name"} pairs gives both directions.
#pragma once

#include <array>
#include <string>
#include <string_view>
#include <utility>

#include "base/result.h"

namespace drover {

template <typename E, size_t N>
using EnumNames = std::array<std::pair<E, const char*>, N>;

// Whether `names` names each of the values 0 .. N-1 exactly once: with N = E::kCount, a
// static_assert of it makes a new enumerator without a name a compile error.
template <typename E, size_t N>
consteval bool names_every_value(const EnumNames<E, N>& names) {
  for (size_t v = 0; v < N; ++v) {
    int seen = 0;
    for (const auto& [value, name] : names) {
      if (static_cast<size_t>(value) == v && name != nullptr) ++seen;
    }
    if (seen != 1) return false;
  }
  return true;
}

template <typename E, size_t N>
const char* enum_name(const EnumNames<E, N>& names, E value) {
  for (const auto& [v, n] : names) {
    if (v == value) return n;
  }
  return "unknown";
}

template <typename E, size_t N>
Result<E> enum_parse(const EnumNames<E, N>& names, std::string_view text, const char* what) {
  for (const auto& [v, n] : names) {
    if (text == n) return v;
  }
  std::string options;
  for (const auto& [v, n] : names) options += (options.empty() ? "" : ", ") + std::string(n);
  return invalid_argument("unknown " + std::string(what) + " '" + std::string(text) +
                          "' (one of: " + options + ")");
}

}  // namespace drover
