// Request and Response: the plain structs handlers see (server.h), without Beast.
#include <algorithm>
#include <cctype>
#include <nlohmann/json.hpp>

#include "protocol/device.h"
#include "transport/http/server.h"

namespace drover::http {

namespace {
bool same_name(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}
}  // namespace

std::string_view Request::header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (same_name(key, name)) return value;
  }
  return {};
}

std::string_view Request::path() const {
  return std::string_view(target).substr(0, target.find('?'));
}

std::string_view Request::query() const {
  const size_t q = target.find('?');
  return q == std::string::npos ? std::string_view{} : std::string_view(target).substr(q + 1);
}

Response Response::json(int status, std::string body) {
  Response r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

Response Response::error(int status, std::string_view code, std::string_view message) {
  // Messages may quote what a client sent, which need not be UTF-8: such bytes become
  // U+FFFD rather than making the error itself fail.
  const nlohmann::json j = {
      {protocol::kErrorObject, {{protocol::kErrorCode, code}, {protocol::kErrorMessage, message}}}};
  return json(status, j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

}  // namespace drover::http
