#include "fleet/enrollment_tokens.h"

#include <algorithm>

#include "security/crypto.h"

namespace drover {
namespace {

constexpr std::string_view kPrefix = "drover_enroll_";
constexpr size_t kIdChars = 16;      // 8 random bytes in hex
constexpr size_t kSecretChars = 43;  // 32 random bytes in base64url

std::string digest(std::string_view text) { return security::to_hex(security::sha256(text)); }

std::string joined(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

// kPermissionDenied when `value` is outside a non-empty `scope`.
Status in_scope(const std::vector<std::string>& scope, const std::string& value, const char* what,
                const char* plural) {
  if (scope.empty() || std::binary_search(scope.begin(), scope.end(), value)) return ok_status();
  return Error{ErrorCode::kPermissionDenied, std::string("the enrollment token does not admit ") +
                                                 what + " '" + value + "' (it admits " + plural +
                                                 " " + joined(scope) + ")"};
}

}  // namespace

Result<CreatedEnrollmentToken> make_enrollment_token(EnrollmentTokenSpec spec, Timestamp now) {
  if (spec.lifetime < Duration(0)) return invalid_argument("token lifetime must not be negative");
  auto id = security::random_bytes(kIdChars / 2);
  if (!id.ok()) return id.error();
  auto secret = security::random_bytes(32);
  if (!secret.ok()) return secret.error();
  CreatedEnrollmentToken out;
  EnrollmentToken& t = out.record;
  t.id = security::to_hex(*id);
  out.text = std::string(kPrefix) + t.id + "_" + security::to_base64url(*secret);
  t.name = std::move(spec.name);
  t.secret_sha256 = digest(out.text);
  t.device_types = std::move(spec.device_types);
  t.hardware_revisions = std::move(spec.hardware_revisions);
  t.sites = std::move(spec.sites);
  t.max_uses = spec.max_uses;
  t.created_at = now;
  if (spec.lifetime > Duration(0)) t.expires_at = now + spec.lifetime;
  t.created_by = std::move(spec.created_by);
  DROVER_TRY(validate(t));
  return out;
}

std::optional<std::string_view> enrollment_token_id(std::string_view text) {
  if (text.size() != kPrefix.size() + kIdChars + 1 + kSecretChars ||
      text.substr(0, kPrefix.size()) != kPrefix || text[kPrefix.size() + kIdChars] != '_') {
    return std::nullopt;
  }
  return text.substr(kPrefix.size(), kIdChars);
}

Status usable(const EnrollmentToken& token, std::string_view text, Timestamp now) {
  if (enrollment_token_id(text) != token.id ||
      !security::constant_time_equal(digest(text), token.secret_sha256)) {
    return Error{ErrorCode::kUnauthenticated, "the enrollment token is not valid"};
  }
  const auto unusable = [&](const std::string& why) {
    return Error{ErrorCode::kUnauthenticated,
                 "the enrollment token '" + token.name + "' (" + token.id + ") " + why};
  };
  if (token.revoked_at != Timestamp{}) return unusable("was revoked");
  if (token.expires_at != Timestamp{} && now >= token.expires_at) return unusable("has expired");
  if (token.max_uses != 0 && token.uses >= token.max_uses) {
    return unusable("is used up (" + std::to_string(token.uses) + " of " +
                    std::to_string(token.max_uses) + " devices enrolled)");
  }
  return ok_status();
}

Status admits(const EnrollmentToken& token, const Device& device) {
  DROVER_TRY(in_scope(token.device_types, device.device_type, "device type", "device types"));
  DROVER_TRY(in_scope(token.hardware_revisions, device.hardware_revision, "hardware revision",
                      "hardware revisions"));
  if (!token.sites.empty() && device.site.empty()) {
    return Error{ErrorCode::kPermissionDenied,
                 "the enrollment token admits devices of sites " + joined(token.sites) +
                     " only, and the device has none (the enrollment may name one)"};
  }
  DROVER_TRY(in_scope(token.sites, device.site, "site", "sites"));
  return ok_status();
}

}  // namespace drover
