#include "security/canonical_json.h"

#include <nlohmann/json.hpp>
#include <set>
#include <vector>

namespace drover::security {
namespace {

using nlohmann::json;

Status append_canonical(const json& v, std::string& out) {
  switch (v.type()) {
    case json::value_t::null:
      out += "null";
      return ok_status();
    case json::value_t::boolean:
      out += v.get<bool>() ? "true" : "false";
      return ok_status();
    case json::value_t::number_integer:
      out += std::to_string(v.get<int64_t>());
      return ok_status();
    case json::value_t::number_unsigned:
      out += std::to_string(v.get<uint64_t>());
      return ok_status();
    case json::value_t::string: {
      const auto& s = v.get_ref<const std::string&>();
      out += '"';
      for (char c : s) {
        if (c == '"' || c == '\\') out += '\\';
        out += c;
      }
      out += '"';
      return ok_status();
    }
    case json::value_t::array: {
      out += '[';
      bool first = true;
      for (const json& e : v) {
        if (!first) out += ',';
        first = false;
        DROVER_TRY(append_canonical(e, out));
      }
      out += ']';
      return ok_status();
    }
    case json::value_t::object: {
      // nlohmann's objects are std::maps of std::string: iterated in the byte order of the
      // keys (char_traits<char> compares as unsigned char), which is the canonical order.
      out += '{';
      bool first = true;
      for (const auto& [key, e] : v.items()) {
        if (!first) out += ',';
        first = false;
        DROVER_TRY(append_canonical(json(key), out));
        out += ':';
        DROVER_TRY(append_canonical(e, out));
      }
      out += '}';
      return ok_status();
    }
    case json::value_t::number_float:
      return invalid_argument("canonical JSON has no floating-point numbers: " + v.dump());
    case json::value_t::binary:
    case json::value_t::discarded:
      break;
  }
  return invalid_argument("not a JSON value");
}

}  // namespace

Result<json> parse_strict_json(std::string_view text, StrictJsonLimits limits) {
  if (text.size() > limits.max_bytes) {
    return invalid_argument("the document is " + std::to_string(text.size()) +
                            " bytes, more than the " + std::to_string(limits.max_bytes) +
                            " allowed");
  }
  // The keys seen in each object being parsed, innermost last; depth counts arrays too.
  std::vector<std::set<std::string>> objects;
  int depth = 0;
  std::string problem;
  auto watch = [&](int, json::parse_event_t event, json& parsed) {
    if (!problem.empty()) return false;
    switch (event) {
      case json::parse_event_t::object_start:
      case json::parse_event_t::array_start:
        if (++depth > limits.max_depth) {
          problem = "nested deeper than " + std::to_string(limits.max_depth) + " levels";
        }
        if (event == json::parse_event_t::object_start) objects.emplace_back();
        break;
      case json::parse_event_t::object_end:
      case json::parse_event_t::array_end:
        --depth;
        if (event == json::parse_event_t::object_end && !objects.empty()) objects.pop_back();
        break;
      case json::parse_event_t::key: {
        const auto& key = parsed.get_ref<const std::string&>();
        if (objects.empty() || !objects.back().insert(key).second) {
          problem = "the key \"" + printable(key) + "\" appears twice in one object";
        }
        break;
      }
      case json::parse_event_t::value:
        break;
    }
    return problem.empty();
  };
  json value = json::parse(text.begin(), text.end(), watch, /*allow_exceptions=*/false);
  if (!problem.empty()) return invalid_argument("refused JSON: " + problem);
  if (value.is_discarded()) return invalid_argument("malformed JSON (or not UTF-8)");
  return value;
}

std::string printable(std::string_view text, size_t max_bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (char c : text) {
    if (out.size() >= max_bytes) return out + "...";
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u < 0x7f) {
      out += c;
    } else {
      out += "\\x";
      out += kHex[u >> 4];
      out += kHex[u & 15];
    }
  }
  return out;
}

Result<std::string> canonical_json(const json& value) {
  std::string out;
  DROVER_TRY(append_canonical(value, out));
  return out;
}

}  // namespace drover::security
