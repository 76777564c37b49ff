#include "transport/http/etag.h"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstdio>
#include <utility>

namespace drover::http {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool same_name(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

std::string_view strong(std::string_view tag) {
  return tag.starts_with("W/") ? tag.substr(2) : tag;
}

// Tags the answer, or turns it into a 304 when the client holds it already.
void conditional(const std::string& if_none_match, Response& r) {
  if (r.status != 200 || r.file || r.defer || r.body.empty()) return;
  std::string tag = etag_of(r.body);
  // The handler's own rule stands (the console's built files are kept for a year).
  const bool has_rule = std::any_of(r.headers.begin(), r.headers.end(), [](const auto& h) {
    return same_name(h.first, "Cache-Control");
  });
  if (!has_rule) r.headers.emplace_back("Cache-Control", "no-cache");
  if (!if_none_match.empty() && etag_matches(if_none_match, tag)) {
    // No body, and nothing about one (a 304 carries no Content-Type or Content-Length).
    r.status = 304;
    r.body.clear();
    r.content_type.clear();
  }
  r.headers.emplace_back("ETag", std::move(tag));
}

}  // namespace

std::string etag_of(std::string_view body) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (const char c : body) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ULL;
  }
  char text[20];
  std::snprintf(text, sizeof text, "\"%016llx\"", static_cast<unsigned long long>(h));
  return text;
}

bool etag_matches(std::string_view if_none_match, std::string_view tag) {
  if (trim(if_none_match) == "*") return true;
  while (!if_none_match.empty()) {
    const size_t comma = if_none_match.find(',');
    const std::string_view one = trim(if_none_match.substr(0, comma));
    if (!one.empty() && strong(one) == strong(tag)) return true;
    if (comma == std::string_view::npos) break;
    if_none_match.remove_prefix(comma + 1);
  }
  return false;
}

Handler with_etags(Handler inner) {
  return [inner = std::move(inner)](const Request& request) {
    Response r = inner(request);
    if (request.method != "GET") return r;
    std::string if_none_match(request.header("If-None-Match"));
    if (r.offload) {
      r.offload = [work = std::move(r.offload), if_none_match = std::move(if_none_match)] {
        Response done = work();
        conditional(if_none_match, done);
        return done;
      };
      return r;
    }
    conditional(if_none_match, r);
    return r;
  };
}

}  // namespace drover::http
