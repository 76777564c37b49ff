// Helpers the JSON APIs share: request bodies in, documents out, bearer tokens. Includes
// nlohmann/json: for the .cc files of transport/http only, never for a public header.
#pragma once

#include <nlohmann/json.hpp>
#include <string_view>
#include <utility>

#include "base/json_reader.h"
#include "base/result.h"
#include "transport/http/server.h"

namespace drover::http {

// `j` as the body of a JSON response. Bytes that are not UTF-8 are replaced, never thrown.
inline Response json_response(int status, const nlohmann::json& j) {
  return Response::json(status, j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

// Reads the request body as one JSON document with `read` (see parse_json_document).
template <typename T, typename Fn>
Result<T> parse_body(const Request& req, Fn&& read) {
  return parse_json_document<T>(req.body, "body", std::forward<Fn>(read));
}

// The token of an "Authorization: Bearer <token>" header; kUnauthenticated when absent.
inline Result<std::string_view> bearer_token(const Request& req) {
  const std::string_view header = req.header("Authorization");
  constexpr std::string_view kBearer = "Bearer ";
  if (!header.starts_with(kBearer))
    return Error{ErrorCode::kUnauthenticated, "an Authorization: Bearer token is required"};
  return header.substr(kBearer.size());
}

}  // namespace drover::http
