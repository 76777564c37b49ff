#include "fleet/repository_files.h"

#include <algorithm>
#include <charconv>

#include "base/try_assign.h"
#include "fleet/targets_delegations.h"
#include "fleet/update_repository.h"
#include "security/tuf_key.h"

namespace drover::repository_files {

namespace tuf = security::tuf;
using security::PublicKey;
using security::SigningKey;
using tuf::Metadata;

std::string metadata_dir(const std::string& dir) { return dir + "/metadata"; }
std::string keys_dir(const std::string& dir) { return dir + "/keys"; }

std::string key_id(const SigningKey& k) { return PublicKey::ed25519(k.public_key())->key_id(); }

// "<N>.<role>.json" -> (N, role); nullopt for any other name.
std::optional<std::pair<int64_t, std::string>> split_versioned(std::string_view file) {
  const size_t dot = file.find('.');
  if (dot == std::string_view::npos || !file.ends_with(".json") || dot + 6 > file.size())
    return std::nullopt;
  const std::string_view digits = file.substr(0, dot);
  const std::string_view role = file.substr(dot + 1, file.size() - dot - 6);
  int64_t n = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
  if (ec != std::errc() || end != digits.data() + digits.size() || n < 1 || digits[0] == '0' ||
      role.empty() || role.find('.') != std::string_view::npos)
    return std::nullopt;
  return std::pair{n, std::string(role)};
}

// "<N>.<role>.json" -> N, for the role asked; nullopt for any other name.
std::optional<int64_t> versioned(std::string_view file, std::string_view role) {
  auto split = split_versioned(file);
  if (!split || split->second != role) return std::nullopt;
  return split->first;
}

// The highest N of "<N>.<role>.json" among `names` (0 when none).
int64_t highest(const std::vector<std::string>& names, std::string_view role) {
  int64_t top = 0;
  for (const std::string& n : names) top = std::max(top, versioned(n, role).value_or(0));
  return top;
}

Error corrupt(const std::string& what) { return Error{ErrorCode::kCorruption, what}; }

Result<std::vector<std::string>> list_metadata(FileSystem& fs, const std::string& dir) {
  auto names = fs.list(metadata_dir(dir));
  if (!names.ok() && names.error().code == ErrorCode::kNotFound)
    return not_found("no signed update metadata in " + dir + " (run drover keys gen)");
  return names;
}

// The root chain from 1.root.json, each checked as a client checks it: the last one, and
// every version's bytes.
Result<std::pair<Metadata, std::vector<std::string>>> load_roots(
    FileSystem& fs, const std::string& dir, const std::vector<std::string>& names) {
  const int64_t last = highest(names, "root");
  if (last == 0) return not_found("no root in " + metadata_dir(dir) + " (run drover keys gen)");
  std::optional<Metadata> trusted;
  std::vector<std::string> chain;
  for (int64_t v = 1; v <= last; ++v) {
    const std::string path = metadata_dir(dir) + "/" + std::to_string(v) + ".root.json";
    auto read = fs.read(path);
    if (!read.ok()) return corrupt(path + ": " + read.error().message);
    auto root = tuf::parse_metadata(*read, "root");
    if (!root.ok()) return corrupt(path + ": " + root.error().message);
    if (root->version != v)
      return corrupt(path + " holds version " + std::to_string(root->version));
    if (trusted) {
      Status by_old =
          tuf::verify_signatures(*root, trusted->keys, trusted->roles.at("root"), "root");
      if (!by_old.ok()) return corrupt(path + ": " + by_old.error().message);
    }
    Status by_own = tuf::verify_signatures(*root, root->keys, root->roles.at("root"), "root");
    if (!by_own.ok()) return corrupt(path + ": " + by_own.error().message);
    trusted = std::move(*root);
    chain.push_back(std::move(*read));
  }
  return std::pair{std::move(*trusted), std::move(chain)};
}

Result<KeyRing> load_keys(FileSystem& fs, const std::string& dir) {
  KeyRing ring;
  auto names = fs.list(keys_dir(dir));
  if (!names.ok() && names.error().code == ErrorCode::kNotFound) return ring;
  if (!names.ok()) return names.error();
  for (const std::string& name : *names) {
    if (!name.ends_with(".pem")) continue;
    const std::string path = keys_dir(dir) + "/" + name;
    auto pem = fs.read(path);
    if (!pem.ok()) return corrupt(path + ": " + pem.error().message);
    auto key = SigningKey::from_pem(*pem);
    if (!key.ok()) return corrupt(path + " is not an Ed25519 private key");
    const std::string id = key_id(*key);
    if (name != id + ".pem") return corrupt(path + " holds the key " + id);
    ring[id] = std::make_shared<SigningKey>(std::move(*key));
  }
  return ring;
}

// The online keys among `ring` that `role` names.
std::vector<const SigningKey*> signers(const tuf::RoleKeys& role, const KeyRing& ring) {
  std::vector<const SigningKey*> out;
  for (const std::string& id : role.keyids) {
    if (auto it = ring.find(id); it != ring.end()) out.push_back(it->second.get());
  }
  return out;
}

bool enough(const tuf::RoleKeys& role, const std::vector<const SigningKey*>& keys) {
  return static_cast<int>(keys.size()) >= role.threshold;
}

Status write_file(FileSystem& fs, const std::string& path, std::string_view bytes) {
  Status s = write_atomically(fs, path, bytes);
  if (!s.ok()) return Error{ErrorCode::kIo, path + ": " + s.error().message};
  return s;
}

// A new key, written (owner-only) to `dir` under the name `name` gives it.
Result<SigningKey> new_key_file(FileSystem& fs, const std::string& dir,
                                std::string (*name)(const SigningKey&), std::string* path_out) {
  DROVER_TRY_ASSIGN(SigningKey key, SigningKey::generate());
  const std::string path = dir + "/" + name(key);
  DROVER_TRY(write_file(fs, path, key.private_pem()));
  if (path_out != nullptr) *path_out = path;
  return key;
}

// The artifacts `role` signs among `roles` (the delegations in their search order) as
// targets: "<name>/<version>", their length, SHA-256 and Drover's metadata.
std::map<std::string, tuf::TargetFile> targets_of(const std::vector<Artifact>& list,
                                                  const std::vector<tuf::DelegatedRole>& roles,
                                                  std::string_view role) {
  std::map<std::string, tuf::TargetFile> out;
  for (const Artifact& a : list) {
    const std::string path = UpdateRepository::target_path(a);
    if (signing_role(roles, path) != role) continue;
    tuf::TargetFile f;
    f.length = a.size_bytes;
    auto digest = security::from_hex(a.sha256);  // validate() checked it: 64 hex digits
    if (digest.ok()) f.hashes["sha256"] = std::move(*digest);
    f.custom = UpdateRepository::target_custom(a);
    out.emplace(path, std::move(f));
  }
  return out;
}

std::vector<tuf::DelegatedRole> delegated_roles(const std::vector<tuf::DelegationSpec>& specs) {
  std::vector<tuf::DelegatedRole> out;
  out.reserve(specs.size());
  for (const tuf::DelegationSpec& d : specs) out.push_back(as_delegated_role(d));
  return out;
}

}  // namespace drover::repository_files
