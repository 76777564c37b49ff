#include "fleet/repository_keys.h"

#include <algorithm>
#include <set>

#include "base/try_assign.h"
#include "fleet/repository_files.h"
#include "fleet/targets_delegations.h"
#include "security/canonical_json.h"
#include "security/tuf_key.h"

namespace drover {

namespace tuf = security::tuf;
using security::PublicKey;
using security::SigningKey;
using tuf::Metadata;
using namespace repository_files;  // NOLINT(google-build-using-namespace): the fleet's own helpers

namespace {

// The root spec of `root` as it stands.
tuf::RootSpec spec_of(const Metadata& root) {
  tuf::RootSpec spec;
  spec.version = root.version;
  spec.expires = root.expires;
  spec.consistent_snapshot = root.consistent_snapshot;
  for (auto [name, role] :
       {std::pair{"root", &spec.root}, std::pair{"timestamp", &spec.timestamp},
        std::pair{"snapshot", &spec.snapshot}, std::pair{"targets", &spec.targets}}) {
    const tuf::RoleKeys& keys = root.roles.at(name);
    role->threshold = keys.threshold;
    for (const std::string& id : keys.keyids) {
      if (auto key = root.keys.find(id); key != root.keys.end()) role->keys.push_back(key->second);
    }
  }
  return spec;
}

std::string root_key_name(const SigningKey& k) {
  return "root-" + key_id(k).substr(0, 16) + ".pem";
}
std::string online_key_name(const SigningKey& k) { return key_id(k) + ".pem"; }

}  // namespace

Result<std::vector<std::string>> create_repository(FileSystem& fs, const std::string& dir,
                                                   const std::string& offline_dir,
                                                   const KeySetup& setup, Timestamp now) {
  if (setup.root_keys < 1 || setup.root_threshold < 1 || setup.root_threshold > setup.root_keys) {
    return invalid_argument("the root threshold " + std::to_string(setup.root_threshold) +
                            " is not between 1 and the " + std::to_string(setup.root_keys) +
                            " root keys");
  }
  if (auto names = fs.list(metadata_dir(dir)); names.ok() && highest(*names, "root") > 0)
    return Error{ErrorCode::kAlreadyExists, metadata_dir(dir) + " holds a root already"};
  for (const std::string& d : {dir, metadata_dir(dir), keys_dir(dir), offline_dir})
    DROVER_TRY(fs.make_dir(d));
  std::vector<std::string> written;
  std::vector<SigningKey> root_keys;
  tuf::RootSpec spec;
  spec.expires = now + setup.root_lifetime;
  spec.root.threshold = setup.root_threshold;
  for (int i = 0; i < setup.root_keys; ++i) {
    std::string path;
    DROVER_TRY_ASSIGN(SigningKey k, new_key_file(fs, offline_dir, root_key_name, &path));
    written.push_back(path);
    spec.root.keys.push_back(*PublicKey::ed25519(k.public_key()));
    root_keys.push_back(std::move(k));
  }
  for (tuf::RoleSpec* role : {&spec.timestamp, &spec.snapshot, &spec.targets}) {
    DROVER_TRY_ASSIGN(SigningKey k, new_key_file(fs, keys_dir(dir), online_key_name, nullptr));
    role->keys.push_back(*PublicKey::ed25519(k.public_key()));
  }
  std::vector<const SigningKey*> all;
  all.reserve(root_keys.size());
  for (const SigningKey& k : root_keys) all.push_back(&k);
  DROVER_TRY_ASSIGN(std::string root, tuf::sign_root(spec, nullptr, all));
  DROVER_TRY(write_file(fs, metadata_dir(dir) + "/1.root.json", root));
  return written;
}

Result<std::vector<std::string>> rotate_root(FileSystem& fs, const std::string& dir,
                                             const std::string& offline_dir,
                                             const RootRotation& rotation, Timestamp now) {
  auto names = fs.list(metadata_dir(dir));
  if (!names.ok()) return names.error();
  DROVER_TRY_ASSIGN(auto current, load_roots(fs, dir, *names));
  const Metadata& old = current.first;
  tuf::RootSpec spec = spec_of(old);
  spec.version = old.version + 1;
  spec.expires = now + rotation.root_lifetime;

  std::vector<SigningKey> held;  // the signing keys given, and new root keys
  for (const std::string& file : rotation.signing_key_files) {
    auto pem = fs.read(file);
    if (!pem.ok()) return pem.error();
    auto key = SigningKey::from_pem(*pem);
    if (!key.ok()) return invalid_argument(file + " is not an Ed25519 private key");
    held.push_back(std::move(*key));
  }
  // Checked before any key is made: a refused rotation leaves no key files behind.
  if (rotation.new_root_threshold > 0) spec.root.threshold = rotation.new_root_threshold;
  const size_t root_key_count = rotation.new_root_keys > 0
                                    ? static_cast<size_t>(rotation.new_root_keys)
                                    : spec.root.keys.size();
  if (static_cast<size_t>(spec.root.threshold) > root_key_count) {
    return invalid_argument("the root threshold " + std::to_string(spec.root.threshold) +
                            " is more than the " + std::to_string(root_key_count) +
                            " root keys: give a new root threshold");
  }
  for (const std::string& role : rotation.new_online_roles) {
    if (role != "timestamp" && role != "snapshot" && role != "targets")
      return invalid_argument("no online role '" + role + "'");
  }
  // Enough signatures, counted before any key is made: the old root's threshold, and the
  // new one's when the root keys stay.
  const auto& old_ids = old.roles.at("root").keyids;
  std::set<std::string> old_signers;
  for (const SigningKey& k : held) {
    if (const std::string id = key_id(k);
        std::find(old_ids.begin(), old_ids.end(), id) != old_ids.end())
      old_signers.insert(id);
  }
  const int needed = std::max(old.roles.at("root").threshold,
                              rotation.new_root_keys > 0 ? 0 : spec.root.threshold);
  if (static_cast<int>(old_signers.size()) < needed) {
    return Error{ErrorCode::kUnauthenticated,
                 std::to_string(old_signers.size()) +
                     " of the keys given are root keys of version " + std::to_string(old.version) +
                     "; " + std::to_string(needed) + " must sign (its threshold" +
                     (needed > old.roles.at("root").threshold ? ", raised" : "") + ")"};
  }
  const std::string file = metadata_dir(dir) + "/" + std::to_string(spec.version) + ".root.json";
  std::vector<std::string> written;
  if (rotation.new_root_keys > 0) {
    DROVER_TRY(fs.make_dir(offline_dir));
    spec.root.keys.clear();
    for (int i = 0; i < rotation.new_root_keys; ++i) {
      std::string path;
      DROVER_TRY_ASSIGN(SigningKey k, new_key_file(fs, offline_dir, root_key_name, &path));
      written.push_back(path);
      spec.root.keys.push_back(*PublicKey::ed25519(k.public_key()));
      held.push_back(std::move(k));
    }
  }
  for (const std::string& role : rotation.new_online_roles) {
    tuf::RoleSpec* r = role == "timestamp"  ? &spec.timestamp
                       : role == "snapshot" ? &spec.snapshot
                       : role == "targets"  ? &spec.targets
                                            : nullptr;
    if (r == nullptr) return invalid_argument("no online role '" + role + "'");
    DROVER_TRY(fs.make_dir(keys_dir(dir)));
    DROVER_TRY_ASSIGN(SigningKey k, new_key_file(fs, keys_dir(dir), online_key_name, nullptr));
    r->keys = {*PublicKey::ed25519(k.public_key())};
    r->threshold = 1;
  }
  // Every key given that either root trusts for root signs; sign_root checks both thresholds.
  std::vector<const SigningKey*> signing;
  for (const SigningKey& k : held) {
    const std::string id = key_id(k);
    bool trusted = std::find(old_ids.begin(), old_ids.end(), id) != old_ids.end();
    for (const PublicKey& p : spec.root.keys) trusted = trusted || p.key_id() == id;
    if (trusted) signing.push_back(&k);
  }
  if (signing.empty()) {
    return Error{ErrorCode::kUnauthenticated, "none of the keys given is a root key of version " +
                                                  std::to_string(old.version) +
                                                  " or of the new root"};
  }
  DROVER_TRY_ASSIGN(std::string root, tuf::sign_root(spec, &old, signing));
  // Another rotation that got here first keeps its version (one version, one content).
  if (fs.read(file).ok()) {
    return Error{ErrorCode::kAlreadyExists,
                 file + " was written meanwhile by another rotation; nothing was changed"};
  }
  DROVER_TRY(write_file(fs, file, root));
  return written;
}

Result<SignedTargets> sign_targets_offline(FileSystem& fs, const std::string& dir,
                                           const std::vector<Artifact>& artifacts,
                                           const std::vector<std::string>& key_files,
                                           Duration lifetime, Timestamp now,
                                           const std::string& role) {
  DROVER_TRY_ASSIGN(const std::vector<std::string> names, list_metadata(fs, dir));
  DROVER_TRY_ASSIGN(auto chain, load_roots(fs, dir, names));
  const Metadata& root = chain.first;
  DROVER_TRY_ASSIGN(const std::vector<tuf::DelegationSpec> configured, load_delegations(fs, dir));
  const std::vector<tuf::DelegatedRole> roles = delegated_roles(configured);
  tuf::RoleKeys role_keys;
  std::string whose;  // for messages
  if (role == "targets") {
    role_keys = root.roles.at("targets");
    whose = "the targets keys of root version " + std::to_string(root.version);
  } else {
    auto d = std::find_if(roles.begin(), roles.end(),
                          [&](const tuf::DelegatedRole& r) { return r.name == role; });
    if (d == roles.end()) {
      return not_found("no delegated role " + security::printable(role) + " in " + dir +
                       "/delegations.json (drover keys delegate)");
    }
    role_keys = d->keys;
    whose = "the keys of the delegated role " + role;
  }
  DROVER_TRY_ASSIGN(KeyRing online, load_keys(fs, dir));
  if (enough(role_keys, signers(role_keys, online))) {
    return Error{ErrorCode::kFailedPrecondition,
                 whose + " are online in " + keys_dir(dir) +
                     ": the server signs it itself (move them out to sign offline)"};
  }
  KeyRing given;
  for (const std::string& file : key_files) {
    auto pem = fs.read(file);
    if (!pem.ok()) return Error{pem.error().code, file + ": " + pem.error().message};
    auto key = SigningKey::from_pem(*pem);
    if (!key.ok()) return invalid_argument(file + " is not an Ed25519 private key");
    const std::string id = key_id(*key);
    given[id] = std::make_shared<SigningKey>(std::move(*key));
  }
  const auto keys = signers(role_keys, given);
  if (!enough(role_keys, keys)) {
    return Error{ErrorCode::kUnauthenticated, "the keys given hold " + std::to_string(keys.size()) +
                                                  " of " + whose + "; it needs " +
                                                  std::to_string(role_keys.threshold)};
  }
  tuf::TargetsSpec spec;
  spec.version = highest(names, role) + 1;
  spec.expires = now + lifetime;
  spec.targets = targets_of(artifacts, roles, role);
  if (role == "targets") spec.delegations = configured;
  DROVER_TRY_ASSIGN(std::string bytes, tuf::sign_targets(spec, keys));
  DROVER_TRY(write_file(
      fs, metadata_dir(dir) + "/" + std::to_string(spec.version) + "." + role + ".json", bytes));
  SignedTargets out;
  out.version = spec.version;
  for (const auto& [path, file] : spec.targets) {
    out.targets.push_back(path);
    const auto hash = file.hashes.find("sha256");
    out.sha256.push_back(hash == file.hashes.end() ? "" : security::to_hex(hash->second));
  }
  for (const tuf::DelegationSpec& d : spec.delegations) {
    std::string line = d.name + ":";
    for (const std::string& p : d.paths) line += " " + p;
    line += std::string(d.terminating ? " terminating" : "") + ", " +
            std::to_string(d.keys.threshold) + " of keys";
    for (const PublicKey& k : d.keys.keys) line += " " + k.key_id().substr(0, 16);
    out.delegations.push_back(std::move(line));
  }
  return out;
}

namespace {

// The online key files among `candidates` (key ids) that no role of `root` or
// `delegations` names any longer. They are not removed here: the targets served may still
// delegate to their role until they are signed again (at once by a server whose targets
// keys are online, only at the next `drover keys sign-targets` when they are offline), and
// the role's file must be signed until then.
std::vector<std::string> unused_online_keys(FileSystem& fs, const std::string& dir,
                                            const Metadata& root,
                                            const std::vector<tuf::DelegationSpec>& delegations,
                                            const std::vector<std::string>& candidates) {
  std::set<std::string> used;
  for (const auto& entry : root.roles)
    used.insert(entry.second.keyids.begin(), entry.second.keyids.end());
  for (const tuf::DelegationSpec& d : delegations) {
    for (const PublicKey& k : d.keys.keys) used.insert(k.key_id());
  }
  std::vector<std::string> out;
  for (const std::string& id : candidates) {
    const std::string path = keys_dir(dir) + "/" + id + ".pem";
    if (used.count(id) == 0 && fs.read(path).ok()) out.push_back(path);
  }
  return out;
}

}  // namespace

Result<DelegatedKeys> delegate_targets(FileSystem& fs, const std::string& dir,
                                       const TargetsDelegation& d) {
  DROVER_TRY(check_delegated_role_name(d.role));
  if (d.paths.empty()) return invalid_argument("a delegated role needs at least one --path");
  for (const std::string& p : d.paths) DROVER_TRY(check_path_pattern(p));
  if (d.keys < 1 || d.keys > 16 || d.threshold < 1 || d.threshold > d.keys) {
    return invalid_argument("the threshold " + std::to_string(d.threshold) +
                            " is not between 1 and the " + std::to_string(d.keys) +
                            " keys (at most 16)");
  }
  DROVER_TRY_ASSIGN(const std::vector<std::string> names, list_metadata(fs, dir));
  DROVER_TRY_ASSIGN(auto chain, load_roots(fs, dir, names));
  DROVER_TRY_ASSIGN(std::vector<tuf::DelegationSpec> roles, load_delegations(fs, dir));
  auto existing = std::find_if(roles.begin(), roles.end(),
                               [&](const tuf::DelegationSpec& r) { return r.name == d.role; });
  if (existing == roles.end() && roles.size() >= kMaxDelegatedRoles) {
    return invalid_argument("there are " + std::to_string(roles.size()) +
                            " delegated roles already, the most a device searches");
  }
  if (existing != roles.end() && !d.replace) {
    return Error{ErrorCode::kAlreadyExists,
                 "the role " + d.role + " is delegated already (replace it to change it)"};
  }
  const std::string key_dir = d.offline_dir.empty() ? keys_dir(dir) : d.offline_dir;
  DROVER_TRY(fs.make_dir(key_dir));
  tuf::DelegationSpec spec;
  spec.name = d.role;
  spec.paths = d.paths;
  spec.terminating = d.terminating;
  spec.keys.threshold = d.threshold;
  DelegatedKeys out;
  for (int i = 0; i < d.keys; ++i) {
    DROVER_TRY_ASSIGN(SigningKey key, SigningKey::generate());
    const std::string id = key_id(key);
    const std::string path =
        key_dir + "/" + (d.offline_dir.empty() ? id : d.role + "-" + id.substr(0, 16)) + ".pem";
    DROVER_TRY(write_file(fs, path, key.private_pem()));
    out.written.push_back(path);
    spec.keys.keys.push_back(*PublicKey::ed25519(key.public_key()));
  }
  std::vector<std::string> replaced;  // the old keys' ids
  if (existing != roles.end()) {
    for (const PublicKey& k : existing->keys.keys) replaced.push_back(k.key_id());
    *existing = std::move(spec);
  } else {
    roles.push_back(std::move(spec));
  }
  DROVER_TRY(save_delegations(fs, dir, roles));
  out.unused = unused_online_keys(fs, dir, chain.first, roles, replaced);
  return out;
}

Result<std::vector<std::string>> undelegate_targets(FileSystem& fs, const std::string& dir,
                                                    const std::string& role) {
  DROVER_TRY_ASSIGN(const std::vector<std::string> names, list_metadata(fs, dir));
  DROVER_TRY_ASSIGN(auto chain, load_roots(fs, dir, names));
  DROVER_TRY_ASSIGN(std::vector<tuf::DelegationSpec> roles, load_delegations(fs, dir));
  auto it = std::find_if(roles.begin(), roles.end(),
                         [&](const tuf::DelegationSpec& r) { return r.name == role; });
  if (it == roles.end())
    return not_found("no delegated role " + security::printable(role) + " in " + dir);
  std::vector<std::string> removed;
  for (const PublicKey& k : it->keys.keys) removed.push_back(k.key_id());
  roles.erase(it);
  DROVER_TRY(save_delegations(fs, dir, roles));
  return unused_online_keys(fs, dir, chain.first, roles, removed);
}

}  // namespace drover
