#include "transport/http/router.h"

#include <algorithm>
#include <charconv>
#include <memory>

namespace drover::http {
namespace {

std::vector<std::string_view> split_path(std::string_view path) {
  std::vector<std::string_view> out;
  size_t start = path.starts_with('/') ? 1 : 0;
  while (start <= path.size()) {
    const size_t slash = path.find('/', start);
    const size_t end = slash == std::string_view::npos ? path.size() : slash;
    out.push_back(path.substr(start, end - start));
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return out;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool is_param(std::string_view segment) {
  return segment.size() > 2 && segment.front() == '{' && segment.back() == '}';
}

}  // namespace

Result<Query> Query::parse(std::string_view query) {
  Query q;
  size_t start = 0;
  while (start < query.size()) {
    size_t end = query.find('&', start);
    if (end == std::string_view::npos) end = query.size();
    std::string part(query.substr(start, end - start));
    start = end + 1;
    if (part.empty()) continue;
    std::replace(part.begin(), part.end(), '+', ' ');
    const size_t eq = part.find('=');
    std::string key, value;
    if (!percent_decode(std::string_view(part).substr(0, eq), key) ||
        (eq != std::string::npos &&
         !percent_decode(std::string_view(part).substr(eq + 1), value))) {
      return invalid_argument("query: malformed percent-encoding");
    }
    q.values_.emplace_back(std::move(key), std::move(value));
  }
  return q;
}

bool Query::has(std::string_view key) const {
  return std::any_of(values_.begin(), values_.end(),
                     [&](const auto& kv) { return kv.first == key; });
}

std::string_view Query::get(std::string_view key) const {
  for (const auto& [k, v] : values_) {
    if (k == key) return v;
  }
  return {};
}

std::vector<std::string> Query::all(std::string_view key) const {
  std::vector<std::string> out;
  for (const auto& [k, v] : values_) {
    if (k == key) out.push_back(v);
  }
  return out;
}

Status Query::allow_only(std::initializer_list<std::string_view> known) const {
  for (const auto& [k, v] : values_) {
    if (std::find(known.begin(), known.end(), k) == known.end())
      return invalid_argument("query: unknown parameter '" + k + "'");
  }
  return ok_status();
}

Result<uint64_t> Query::number(std::string_view key, uint64_t fallback, uint64_t min,
                               uint64_t max) const {
  if (!has(key)) return fallback;
  const std::string_view text = get(key);
  uint64_t n = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (ec != std::errc() || end != text.data() + text.size() || n < min || n > max) {
    if (min == 0 && max == UINT64_MAX)
      return invalid_argument(std::string(key) + " must be a whole number");
    return invalid_argument(std::string(key) + " must be a number from " + std::to_string(min) +
                            " to " + std::to_string(max));
  }
  return n;
}

std::string_view Params::get(std::string_view name) const {
  for (const auto& [key, value] : values_) {
    if (key == name) return value;
  }
  return {};
}

bool percent_decode(std::string_view in, std::string& out) {
  out.clear();
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out.push_back(in[i]);
      continue;
    }
    if (i + 2 >= in.size()) return false;
    const int hi = hex_value(in[i + 1]);
    const int lo = hex_value(in[i + 2]);
    if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) return false;
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return true;
}

void Router::add(std::string method, std::string_view pattern, RouteHandler handler) {
  Route r;
  r.method = std::move(method);
  r.pattern = std::string(pattern);
  for (std::string_view s : split_path(pattern)) r.segments.emplace_back(s);
  r.handler = std::move(handler);
  routes_.push_back(std::move(r));
}

std::vector<std::pair<std::string, std::string>> Router::routes() const {
  std::vector<std::pair<std::string, std::string>> out;
  for (const Route& r : routes_) {
    std::string pattern;
    for (const std::string& s : r.segments) pattern += "/" + s;
    out.emplace_back(r.method, pattern);
  }
  return out;
}

Router::Match Router::match(const Request& request) const {
  const auto segments = split_path(request.path());
  std::string allowed;
  std::string decoded;
  for (const Route& route : routes_) {
    if (route.segments.size() != segments.size()) continue;
    Params params;
    bool match = true;
    for (size_t i = 0; i < segments.size() && match; ++i) {
      if (is_param(route.segments[i])) {
        if (segments[i].empty()) {
          match = false;
        } else if (!percent_decode(segments[i], decoded)) {
          return {nullptr,
                  {},
                  Response::error(400, "bad_path", "malformed percent-encoding in the path")};
        } else {
          params.add(route.segments[i].substr(1, route.segments[i].size() - 2), decoded);
        }
      } else {
        match = route.segments[i] == segments[i];
      }
    }
    if (!match) continue;
    if (route.method != request.method) {
      if (allowed.find(route.method) == std::string::npos)
        allowed += (allowed.empty() ? "" : ", ") + route.method;
      continue;
    }
    return {&route, std::move(params), std::nullopt};
  }
  if (!allowed.empty()) {
    Response r = Response::error(405, "method_not_allowed",
                                 request.method + " is not allowed here; use " + allowed);
    r.headers.emplace_back("Allow", allowed);
    return {nullptr, {}, std::move(r)};
  }
  return {nullptr,
          {},
          Response::error(404, "not_found", "no such resource: " + std::string(request.path()))};
}

Response Router::operator()(const Request& request) const {
  Match m = match(request);
  if (m.route == nullptr) return std::move(*m.refusal);
  Response response = m.route->handler(request, m.params);
  response.route = m.route->pattern;
  return response;
}

std::string_view Router::route_of(const Request& request) const {
  const Match m = match(request);
  return m.route == nullptr ? std::string_view() : std::string_view(m.route->pattern);
}

Router::RouteHandler offloaded(Router::RouteHandler inner) {
  auto shared = std::make_shared<const Router::RouteHandler>(std::move(inner));
  return [shared](const Request& request, const Params& params) {
    Response on_worker;  // only its offload counts: the answer is made there
    on_worker.offload = [shared, request, params] { return (*shared)(request, params); };
    return on_worker;
  };
}

}  // namespace drover::http
