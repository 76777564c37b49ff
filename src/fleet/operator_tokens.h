// OperatorTokens: the API tokens operators and their scripts use on the operator API. A
// token is "drover_<id>_<secret>": the id names the record, the secret (32 random bytes,
// base64url) proves possession, and only the SHA-256 of the whole text is stored. The text
// is shown once, when the token is created; a lost token is revoked and replaced.
//
// Tokens are read from the store on every check, so a token created by `drover token create`
// beside a running server, or revoked through the API, takes effect at once.
//
// Thread-safety: all methods may be called from several threads.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "base/clock.h"
#include "base/result.h"
#include "model/api_token.h"
#include "store/store.h"

namespace drover {

struct CreatedToken {
  ApiToken record;
  std::string text;  // the token itself: shown once, never stored
};

class OperatorTokens {
 public:
  OperatorTokens(Store& store, Clock& clock) : store_(store), clock_(clock) {}

  // A new token. `lifetime` zero: it never expires. kInvalidArgument for a bad name or a
  // negative lifetime; the store's errors.
  Result<CreatedToken> create(std::string name, Role role, Duration lifetime);

  // The token `text` stands for, when it is well-formed, known, unexpired and not revoked.
  // kUnauthenticated otherwise (the message does not say which, so it tells a guesser
  // nothing); kIo from the store.
  Result<ApiToken> authenticate(std::string_view text);

  // Revokes a token at once. kNotFound for an unknown id; revoking twice changes nothing.
  Result<ApiToken> revoke(std::string_view id);

  // Every token, by id (hashes included: callers decide what to show).
  Result<std::vector<ApiToken>> list();

 private:
  Store& store_;
  Clock& clock_;
};

}  // namespace drover
