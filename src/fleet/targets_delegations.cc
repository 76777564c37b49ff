#include "fleet/targets_delegations.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>

#include "base/json_reader.h"
#include "security/tuf_key.h"

namespace drover {
namespace {

namespace tuf = security::tuf;
using nlohmann::json;
using security::PublicKey;

std::string config_path(const std::string& dir) { return dir + "/delegations.json"; }

std::set<std::string> key_ids(const tuf::DelegationSpec& spec) {
  std::set<std::string> ids;
  for (const PublicKey& k : spec.keys.keys) ids.insert(k.key_id());
  return ids;
}

}  // namespace

Status check_delegated_role_name(std::string_view name) {
  if (name.empty() || name.size() > 64)
    return invalid_argument("a role name is 1 to 64 characters");
  for (const char c : name) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
      return invalid_argument("a role name is made of a-z, 0-9 and '-'");
  }
  if (name.front() == '-') return invalid_argument("a role name starts with a letter or digit");
  for (const std::string_view top : {"root", "timestamp", "snapshot", "targets"}) {
    if (name == top) return invalid_argument("'" + std::string(name) + "' is a top-level role");
  }
  return ok_status();
}

Status check_path_pattern(std::string_view pattern) {
  if (pattern.empty() || pattern.size() > 255)
    return invalid_argument("a path pattern is 1 to 255 characters");
  for (const char c : pattern) {
    if (c < 0x21 || c > 0x7e)
      return invalid_argument("a path pattern is printable ASCII without spaces");
  }
  size_t start = 0;
  while (true) {
    const size_t slash = pattern.find('/', start);
    const std::string_view segment = pattern.substr(start, slash - start);
    if (segment.empty() || segment == "." || segment == "..") {
      return invalid_argument("a path pattern has no empty, '.' or '..' segment (" +
                              std::string(pattern) + ")");
    }
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return ok_status();
}

Result<std::vector<tuf::DelegationSpec>> load_delegations(FileSystem& fs, const std::string& dir) {
  const std::string path = config_path(dir);
  auto text = fs.read(path);
  if (!text.ok() && text.error().code == ErrorCode::kNotFound)
    return std::vector<tuf::DelegationSpec>{};
  if (!text.ok()) return Error{ErrorCode::kCorruption, path + ": " + text.error().message};
  auto parsed = parse_json_document<std::vector<tuf::DelegationSpec>>(
      *text, "delegations", [](const JsonReader& r) {
        r.allow_only({"roles"});
        std::vector<tuf::DelegationSpec> roles;
        std::set<std::string> names;
        for (const JsonReader& role : r.array("roles")) {
          role.allow_only({"name", "paths", "terminating", "threshold", "keys"});
          tuf::DelegationSpec d;
          d.name = role.str("name");
          if (Status st = check_delegated_role_name(d.name); !st.ok())
            role.fail("name", st.error().message);
          if (!names.insert(d.name).second) role.fail("name", "'" + d.name + "' is named twice");
          d.paths = role.strings_or_empty("paths");
          if (d.paths.empty()) role.fail("paths", "a role is trusted for at least one pattern");
          for (const std::string& p : d.paths) {
            if (Status st = check_path_pattern(p); !st.ok()) role.fail("paths", st.error().message);
          }
          d.terminating = role.boolean_or("terminating", false);
          std::set<std::string> ids;
          for (const JsonReader& key : role.array("keys")) {
            PublicKey k = role.take("keys", PublicKey::from_json(key.raw()));
            if (!ids.insert(k.key_id()).second) role.fail("keys", "a key is listed twice");
            d.keys.keys.push_back(std::move(k));
          }
          if (d.keys.keys.empty()) role.fail("keys", "a role has at least one key");
          d.keys.threshold = static_cast<int>(role.uint_or("threshold", 1, d.keys.keys.size()));
          if (d.keys.threshold < 1) role.fail("threshold", "at least 1");
          roles.push_back(std::move(d));
        }
        if (roles.size() > kMaxDelegatedRoles) {
          r.fail("roles", "more than " + std::to_string(kMaxDelegatedRoles) +
                              " (a device searches at most 32 roles, the targets included)");
        }
        return roles;
      });
  if (!parsed.ok()) return Error{ErrorCode::kCorruption, path + ": " + parsed.error().message};
  return parsed;
}

Status save_delegations(FileSystem& fs, const std::string& dir,
                        const std::vector<tuf::DelegationSpec>& roles) {
  json list = json::array();
  for (const tuf::DelegationSpec& d : roles) {
    json keys = json::array();
    for (const PublicKey& k : d.keys.keys) keys.push_back(k.to_json());
    list.push_back({{"name", d.name},
                    {"paths", d.paths},
                    {"terminating", d.terminating},
                    {"threshold", d.keys.threshold},
                    {"keys", std::move(keys)}});
  }
  return write_atomically(fs, config_path(dir), json{{"roles", std::move(list)}}.dump(2) + "\n");
}

tuf::DelegatedRole as_delegated_role(const tuf::DelegationSpec& spec) {
  tuf::DelegatedRole r;
  r.name = spec.name;
  r.terminating = spec.terminating;
  r.paths = spec.paths;
  r.path_hash_prefixes = spec.path_hash_prefixes;
  r.keys.threshold = spec.keys.threshold;
  for (const PublicKey& k : spec.keys.keys) r.keys.keyids.push_back(k.key_id());
  return r;
}

std::string signing_role(const std::vector<tuf::DelegatedRole>& roles,
                         std::string_view target_path) {
  for (const tuf::DelegatedRole& r : roles) {
    if (r.trusted_for(target_path)) return r.name;
  }
  return "targets";
}

bool same_delegation(const tuf::DelegatedRole& served, const tuf::DelegationSpec& wanted) {
  const std::set<std::string> ids(served.keys.keyids.begin(), served.keys.keyids.end());
  return served.name == wanted.name && served.terminating == wanted.terminating &&
         served.paths == wanted.paths && served.path_hash_prefixes == wanted.path_hash_prefixes &&
         served.keys.threshold == wanted.keys.threshold && ids == key_ids(wanted);
}

bool same_delegations(const std::optional<tuf::Delegations>& served,
                      const std::vector<tuf::DelegationSpec>& wanted) {
  if (served && served->succinct) return false;
  const size_t count = served ? served->roles.size() : 0;
  if (count != wanted.size()) return false;
  for (size_t i = 0; i < count; ++i) {
    if (!same_delegation(served->roles[i], wanted[i])) return false;
  }
  return true;
}

}  // namespace drover
