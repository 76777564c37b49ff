// Router: dispatches a Request by method and path to the handler registered for it.
// Patterns are literal segments and {name} parameters ("/api/v1/devices/{id}"); a parameter
// matches one whole segment, percent-decoded. No match: 404; the path matches but not the
// method: 405 with an Allow header; a segment that is not valid percent-encoding: 400.
// Every error is a JSON body from Response::error. Not thread-safe to add() while serving;
// dispatching is.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

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

class Router {
 public:
  using RouteHandler = std::function<Response(const Request&, const Params&)>;

  void add(std::string method, std::string_view pattern, RouteHandler handler);
  Response operator()(const Request& request) const;

 private:
  struct Route {
    std::string method;
    std::vector<std::string> segments;  // "{name}" marks a parameter
    RouteHandler handler;
  };
  std::vector<Route> routes_;
};

}  // namespace drover::http
