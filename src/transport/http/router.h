// Router: dispatches a Request by method and path to the handler registered for it.
// Patterns are literal segments and {name} parameters ("/api/v1/devices/{id}"); a parameter
// matches one whole segment, percent-decoded. No match: 404; the path matches but not the
// method: 405 with an Allow header; a segment that is not valid percent-encoding: 400.
// Every error is a JSON body from Response::error. Not thread-safe to add() while serving;
// dispatching is.
#pragma once

#include <functional>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/result.h"
#include "transport/http/server.h"

namespace drover::http {

class Params {
 public:
  // The decoded value of parameter `name`, or "" when the pattern has none such.
  std::string_view get(std::string_view name) const;
  void add(std::string name, std::string value) {
    values_.emplace_back(std::move(name), std::move(value));
  }

 private:
  std::vector<std::pair<std::string, std::string>> values_;
};

// Decodes %XX escapes; false on a malformed escape or an encoded NUL.
bool percent_decode(std::string_view in, std::string& out);

// A query string ("a=1&b=x%20y&b=z"), decoded as application/x-www-form-urlencoded ('+' is a
// space). A key may repeat; a key without '=' has the value "".
class Query {
 public:
  // kInvalidArgument for a malformed escape or an encoded NUL.
  static Result<Query> parse(std::string_view query);

  bool has(std::string_view key) const;
  // The first value of `key`, or "".
  std::string_view get(std::string_view key) const;
  // Every value of `key`, in order.
  std::vector<std::string> all(std::string_view key) const;
  // kInvalidArgument naming the first key not in `known` (a misspelt filter must not
  // silently match everything).
  Status allow_only(std::initializer_list<std::string_view> known) const;
  // The whole number `key` holds, `fallback` when it is absent. kInvalidArgument naming
  // the key for anything else, or for a number outside [min, max].
  Result<uint64_t> number(std::string_view key, uint64_t fallback, uint64_t min = 0,
                          uint64_t max = UINT64_MAX) const;

 private:
  std::vector<std::pair<std::string, std::string>> values_;
};

class Router {
 public:
  using RouteHandler = std::function<Response(const Request&, const Params&)>;

  void add(std::string method, std::string_view pattern, RouteHandler handler);
  Response operator()(const Request& request) const;
  // The pattern of the route that would answer `request` ("" when none would): a label that
  // does not grow with ids, known before the handler runs.
  std::string_view route_of(const Request& request) const;
  // Every (method, pattern) added, in order: for checking the API documents against.
  std::vector<std::pair<std::string, std::string>> routes() const;

 private:
  struct Route {
    std::string method;
    std::string pattern;
    std::vector<std::string> segments;  // "{name}" marks a parameter
    RouteHandler handler;
  };
  // The route that answers `request` and its parameters, or the refusal (400, 404, 405).
  struct Match {
    const Route* route = nullptr;
    Params params;
    std::optional<Response> refusal;
  };
  Match match(const Request& request) const;

  std::vector<Route> routes_;
};

// The route's answer made on one of the server's worker threads (Response::offload), for
// handlers that take long or wait on the disk; the request and its parameters are copied
// for it.
Router::RouteHandler offloaded(Router::RouteHandler inner);

}  // namespace drover::http
