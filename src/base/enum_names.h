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
