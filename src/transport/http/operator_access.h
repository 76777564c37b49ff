// What every operator endpoint shares (operator_api.cc, telemetry_api.cc): the token check
// by role, query strings with a known set of keys, JSON answers. For the .cc files of
// transport/http only (it includes nlohmann/json through json_body.h).
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

#include "fleet/operator_tokens.h"
#include "transport/http/errors.h"
#include "transport/http/json_body.h"
#include "transport/http/router.h"

namespace drover::http {

inline Response ok_json(const nlohmann::json& j) { return json_response(200, j); }

// The request's token, when it has at least `role`.
inline Result<ApiToken> authorize(OperatorTokens& tokens, const Request& req, Role role) {
  auto text = bearer_token(req);
  if (!text.ok()) return text.error();
  auto token = tokens.authenticate(*text);
  if (!token.ok()) return token.error();
  if (token->role < role) {
    return Error{ErrorCode::kPermissionDenied, std::string("this needs the ") + to_string(role) +
                                                   " role; token '" + token->name + "' is " +
                                                   to_string(token->role)};
  }
  return token;
}

// A handler that runs only for a token of at least `role`.
template <typename Fn>
Router::RouteHandler guarded(OperatorTokens& tokens, Role role, Fn fn) {
  return [&tokens, role, fn = std::move(fn)](const Request& req, const Params& params) {
    auto token = authorize(tokens, req, role);
    if (!token.ok()) return error_response(token.error());
    return fn(req, params, *token);
  };
}

// The query string, refused when it has a key outside `known`.
inline Result<Query> query_of(const Request& req, std::initializer_list<std::string_view> known) {
  auto q = Query::parse(req.query());
  if (!q.ok()) return q.error();
  DROVER_TRY(q->allow_only(known));
  return q;
}

}  // namespace drover::http
