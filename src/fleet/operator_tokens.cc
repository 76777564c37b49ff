#include "fleet/operator_tokens.h"

#include "security/crypto.h"

namespace drover {
namespace {

constexpr std::string_view kPrefix = "drover_";
constexpr size_t kIdChars = 16;      // 8 random bytes in hex
constexpr size_t kSecretChars = 43;  // 32 random bytes in base64url

Error unauthenticated() {
  return {ErrorCode::kUnauthenticated, "invalid, expired or revoked API token"};
}

std::string digest(std::string_view text) { return security::to_hex(security::sha256(text)); }

}  // namespace

Result<CreatedToken> OperatorTokens::create(std::string name, Role role, Duration lifetime) {
  if (lifetime < Duration(0)) return invalid_argument("token lifetime must not be negative");
  auto id = security::random_bytes(kIdChars / 2);
  if (!id.ok()) return id.error();
  auto secret = security::random_bytes(32);
  if (!secret.ok()) return secret.error();

  CreatedToken out;
  out.record.id = security::to_hex(*id);
  out.text = std::string(kPrefix) + out.record.id + "_" + security::to_base64url(*secret);
  out.record.name = std::move(name);
  out.record.role = role;
  out.record.secret_sha256 = digest(out.text);
  out.record.created_at = clock_.now();
  if (lifetime > Duration(0)) out.record.expires_at = out.record.created_at + lifetime;
  DROVER_TRY(validate(out.record));
  WriteBatch batch;
  batch.api_tokens.push_back(out.record);
  DROVER_TRY(store_.apply(batch));
  return out;
}

Result<ApiToken> OperatorTokens::authenticate(std::string_view text) {
  if (text.size() != kPrefix.size() + kIdChars + 1 + kSecretChars ||
      text.substr(0, kPrefix.size()) != kPrefix || text[kPrefix.size() + kIdChars] != '_') {
    return unauthenticated();
  }
  const std::string_view id = text.substr(kPrefix.size(), kIdChars);
  auto found = store_.get_api_token(id);
  if (!found.ok()) return found.error();
  if (!found->has_value()) return unauthenticated();
  const ApiToken& t = **found;
  const Timestamp now = clock_.now();
  if (!security::constant_time_equal(digest(text), t.secret_sha256)) return unauthenticated();
  if (t.revoked_at != Timestamp{} || (t.expires_at != Timestamp{} && now >= t.expires_at)) {
    return unauthenticated();
  }
  return t;
}

Result<ApiToken> OperatorTokens::revoke(std::string_view id) {
  auto found = store_.get_api_token(id);
  if (!found.ok()) return found.error();
  if (!found->has_value()) return not_found("no API token '" + std::string(id) + "'");
  ApiToken t = **found;
  if (t.revoked_at != Timestamp{}) return t;
  t.revoked_at = clock_.now();
  WriteBatch batch;
  batch.api_tokens.push_back(t);
  DROVER_TRY(store_.apply(batch));
  return t;
}

Result<std::vector<ApiToken>> OperatorTokens::list() { return store_.list_api_tokens(); }

}  // namespace drover
