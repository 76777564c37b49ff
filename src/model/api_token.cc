#include "model/api_token.h"

namespace drover {
namespace {

bool lower_hex(std::string_view s, size_t length) {
  if (s.size() != length) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

}  // namespace

const char* to_string(Role r) {
  switch (r) {
    case Role::kViewer:
      return "viewer";
    case Role::kOperator:
      return "operator";
    case Role::kAdmin:
      return "admin";
  }
  return "?";
}

Result<Role> parse_role(std::string_view s) {
  if (s == "viewer") return Role::kViewer;
  if (s == "operator") return Role::kOperator;
  if (s == "admin") return Role::kAdmin;
  return invalid_argument("unknown role '" + std::string(s) + "' (admin, operator, viewer)");
}

Status validate(const ApiToken& t) {
  if (!lower_hex(t.id, 16)) return invalid_argument("token id must be 16 lowercase hex digits");
  if (t.name.empty() || t.name.size() > 128)
    return invalid_argument("token name must be 1 to 128 characters");
  for (unsigned char c : t.name) {
    if (c < 0x20 || c == 0x7f) return invalid_argument("token name has a control character");
  }
  if (!lower_hex(t.secret_sha256, 64))
    return invalid_argument("token secret_sha256 must be 64 lowercase hex digits");
  return ok_status();
}

}  // namespace drover
