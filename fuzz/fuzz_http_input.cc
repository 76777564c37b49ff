// Fuzzes the small parsers of untrusted HTTP input: the Range header against a content size,
// query strings, and server URLs. Input: "size\nrange\nquery\nurl". Whatever arrives, a
// resolved range lies inside the content, a parsed query yields only decoded keys and
// values, and nothing crashes or throws.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "transport/http/client.h"
#include "transport/http/range.h"
#include "transport/http/router.h"

namespace {

void check(bool ok) {
  if (!ok) __builtin_trap();
}

std::string_view next_line(std::string_view& rest) {
  const size_t nl = rest.find('\n');
  const std::string_view line = rest.substr(0, nl);
  rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
  return line;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view rest(reinterpret_cast<const char*>(data), size);
  uint64_t content_size = 0;
  for (char c : next_line(rest)) {
    if (c >= '0' && c <= '9') content_size = content_size * 10 + static_cast<uint64_t>(c - '0');
  }
  const std::string_view range_header = next_line(rest);
  const std::string_view query = next_line(rest);
  const std::string_view url = rest;

  const auto r = drover::http::resolve_range(range_header, content_size);
  check(!(r.range && r.error));
  if (r.range) {
    check(r.range->length > 0);
    check(r.range->first < content_size);
    check(r.range->length <= content_size - r.range->first);
  }
  if (range_header.find_first_not_of(" \t") == std::string_view::npos) {
    check(!r.range && !r.error);
  }

  auto q = drover::http::Query::parse(query);
  if (q.ok()) {
    check(q->get("").size() <= query.size());
    (void)q->allow_only({"a", "b"});
  } else {
    check(q.error().code == drover::ErrorCode::kInvalidArgument);
  }

  auto u = drover::http::parse_url(url);
  if (u.ok()) {
    check(!u->host.empty() && u->port > 0 && (u->scheme == "http" || u->scheme == "https"));
    for (const char c : u->host) {
      check((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
            std::string_view("-._:").find(c) != std::string_view::npos);
    }
  } else {
    check(u.error().code == drover::ErrorCode::kInvalidArgument);
  }
  const std::string encoded = drover::http::url_encode(query);
  std::string decoded;
  check(drover::http::percent_decode(encoded, decoded) ==
        (query.find('\0') == std::string_view::npos));
  return 0;
}
