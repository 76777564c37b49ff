// Strict reading of JSON objects for parsers of untrusted input: every field is type-checked,
// unknown keys are refused (a typo in a plan must not silently mean "default"), and every
// error names the path of the offending field ("rollout.stages[2].soak: ...").
// Include only from .cc files: it brings in nlohmann/json.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/clock.h"
#include "base/result.h"

namespace drover {

// Thrown inside parsers and turned into a Result at their boundary by parse_json_document.
struct JsonError {
  std::string message;
};

class JsonReader {
 public:
  JsonReader(const nlohmann::json& j, std::string path) : j_(j), path_(std::move(path)) {}

  const nlohmann::json& raw() const { return j_; }
  const std::string& path() const { return path_; }
  bool has(const char* key) const { return j_.is_object() && j_.contains(key); }

  // Refuses keys not in `allowed`; requires an object.
  void allow_only(std::initializer_list<const char*> allowed) const;

  JsonReader child(const char* key) const;               // required object field
  std::vector<JsonReader> array(const char* key) const;  // optional array field; empty if absent

  std::string str(const char* key) const;  // required
  std::string str_or(const char* key, std::string fallback) const;
  double number(const char* key) const;  // required
  double number_or(const char* key, double fallback) const;
  uint64_t uint_or(const char* key, uint64_t fallback, uint64_t max = UINT32_MAX) const;
  bool boolean_or(const char* key, bool fallback) const;
  std::vector<std::string> strings_or_empty(const char* key) const;
  // Durations as text ("15m") or seconds as a number.
  Duration duration_or(const char* key, Duration fallback) const;
  Duration duration(const char* key) const;
  uint64_t bytes(const char* key) const;  // "48MB" or a number of bytes

  [[noreturn]] void fail(const std::string& key, const std::string& why) const;
  // Unwraps a Result, failing at `key` with its message.
  template <typename T>
  T take(const char* key, Result<T> r) const {
    if (!r.ok()) fail(key, r.error().message);
    return std::move(r).value();
  }

 private:
  const nlohmann::json& at(const char* key) const;
  std::string key_path(const std::string& key) const;
  const nlohmann::json& j_;
  std::string path_;
};

// Parses `text` strictly: comments allowed; a key twice in one object is an error (parsers
// disagree on which one wins, which is how a checked body smuggles a second meaning).
// kInvalidArgument naming `root` and what is wrong.
Result<nlohmann::json> parse_strict_json(std::string_view text, const std::string& root);

// Parses `text` (parse_strict_json) and runs `fn(reader)`; any JsonError or JSON syntax
// error comes back as kInvalidArgument with its location.
template <typename T, typename Fn>
Result<T> parse_json_document(std::string_view text, const std::string& root, Fn&& fn) {
  auto j = parse_strict_json(text, root);
  if (!j.ok()) return j.error();
  try {
    return fn(JsonReader(*j, root));
  } catch (const JsonError& e) {
    return invalid_argument(e.message);
  }
}

}  // namespace drover
