#include "security/tuf_repository.h"

#include <nlohmann/json.hpp>

#include "base/try_assign.h"
#include "base/units.h"
#include "security/canonical_json.h"

namespace drover::security::tuf {
namespace {

using nlohmann::json;

json common(std::string_view type, int64_t version, Timestamp expires) {
  return json{{"_type", std::string(type)},
              {"spec_version", std::string(kSpecVersion)},
              {"version", version},
              {"expires", format_utc_timestamp(expires)}};
}

Status check_role(const RoleSpec& r, const std::string& name) {
  if (r.keys.empty()) return invalid_argument("the " + name + " role has no keys");
  if (r.threshold < 1 || static_cast<size_t>(r.threshold) > r.keys.size()) {
    return invalid_argument("the " + name + " role's threshold " + std::to_string(r.threshold) +
                            " is not between 1 and its " + std::to_string(r.keys.size()) + " keys");
  }
  return ok_status();
}

// The role's entry ({"keyids", "threshold"}), its keys added to `keys`.
json role_entry(const RoleSpec& r, json& keys) {
  json ids = json::array();
  for (const PublicKey& k : r.keys) {
    keys[k.key_id()] = k.to_json();
    ids.push_back(k.key_id());
  }
  return json{{"keyids", std::move(ids)}, {"threshold", r.threshold}};
}

json meta_entry(const MetaFile& m) {
  json e{{"version", m.version}};
  if (m.length) e["length"] = *m.length;
  if (!m.hashes.empty()) {
    json hashes = json::object();
    for (const auto& [algorithm, digest] : m.hashes) hashes[algorithm] = to_hex(digest);
    e["hashes"] = std::move(hashes);
  }
  return e;
}

// Signs and reads the file back with the client's own reader, so what is served is what a
// client takes.
Result<std::string> sign_checked(const json& signed_part, std::string_view type,
                                 const std::vector<const SigningKey*>& signers) {
  if (signers.empty()) return invalid_argument(std::string(type) + " metadata needs a signer");
  DROVER_TRY_ASSIGN(std::string file, sign_metadata(signed_part, signers));
  auto back = parse_metadata(file, type);
  if (!back.ok()) {
    return invalid_argument("the " + std::string(type) + " metadata would not be read by a " +
                            "client: " + back.error().message);
  }
  return file;
}

}  // namespace

Result<std::string> sign_root(const RootSpec& spec, const Metadata* previous,
                              const std::vector<const SigningKey*>& signers) {
  if (spec.version < 1) return invalid_argument("a root's version is at least 1");
  DROVER_TRY(check_role(spec.root, "root"));
  DROVER_TRY(check_role(spec.timestamp, "timestamp"));
  DROVER_TRY(check_role(spec.snapshot, "snapshot"));
  DROVER_TRY(check_role(spec.targets, "targets"));
  if (previous != nullptr && spec.version != previous->version + 1) {
    return Error{ErrorCode::kFailedPrecondition, "root version " + std::to_string(spec.version) +
                                                     " does not follow version " +
                                                     std::to_string(previous->version)};
  }
  json s = common("root", spec.version, spec.expires);
  s["consistent_snapshot"] = spec.consistent_snapshot;
  json keys = json::object();
  json roles = json::object();
  roles["root"] = role_entry(spec.root, keys);
  roles["timestamp"] = role_entry(spec.timestamp, keys);
  roles["snapshot"] = role_entry(spec.snapshot, keys);
  roles["targets"] = role_entry(spec.targets, keys);
  s["keys"] = std::move(keys);
  s["roles"] = std::move(roles);
  DROVER_TRY_ASSIGN(std::string file, sign_checked(s, "root", signers));
  DROVER_TRY_ASSIGN(Metadata m, parse_metadata(file, "root"));
  // A client trusts a root only if its own root keys and the previous root's both agree.
  DROVER_TRY(verify_signatures(m, m.keys, m.roles.at("root"), "root (its own keys)"));
  if (previous != nullptr) {
    DROVER_TRY(
        verify_signatures(m, previous->keys, previous->roles.at("root"),
                          "root (the keys of version " + std::to_string(previous->version) + ")"));
  }
  return file;
}

Result<std::string> sign_targets(const TargetsSpec& spec,
                                 const std::vector<const SigningKey*>& signers) {
  json s = common("targets", spec.version, spec.expires);
  json targets = json::object();
  for (const auto& [path, t] : spec.targets) {
    if (t.hashes.empty()) return invalid_argument("target " + printable(path) + " has no hashes");
    if (auto name = encode_name(path, 255 - 4); !name.ok())
      return invalid_argument("target " + printable(path) + ": " + name.error().message);
    json e = meta_entry(MetaFile{.version = 1, .length = t.length, .hashes = t.hashes});
    e.erase("version");
    if (!t.custom.empty()) {
      auto custom = parse_strict_json(t.custom);
      if (!custom.ok())
        return invalid_argument("target " + printable(path) +
                                ": custom: " + custom.error().message);
      e["custom"] = std::move(*custom);
    }
    targets[path] = std::move(e);
  }
  s["targets"] = std::move(targets);
  if (!spec.delegations.empty()) {
    json keys = json::object();
    json roles = json::array();
    for (const DelegationSpec& d : spec.delegations) {
      DROVER_TRY(check_role(d.keys, "delegated " + printable(d.name)));
      if (auto name = encode_name(d.name, 255 - 9); !name.ok())
        return invalid_argument("delegated role " + printable(d.name) + ": " +
                                name.error().message);
      json r = role_entry(d.keys, keys);
      r["name"] = d.name;
      r["terminating"] = d.terminating;
      if (!d.paths.empty()) r["paths"] = d.paths;
      if (!d.path_hash_prefixes.empty()) r["path_hash_prefixes"] = d.path_hash_prefixes;
      roles.push_back(std::move(r));
    }
    s["delegations"] = {{"keys", std::move(keys)}, {"roles", std::move(roles)}};
  }
  return sign_checked(s, "targets", signers);
}

MetaFile describe(std::string_view file, int64_t version) {
  return MetaFile{.version = version, .length = file.size(), .hashes = {{"sha256", sha256(file)}}};
}

Result<std::string> sign_snapshot(int64_t version, Timestamp expires,
                                  const std::map<std::string, MetaFile>& meta,
                                  const std::vector<const SigningKey*>& signers) {
  if (meta.count("targets.json") == 0) return invalid_argument("a snapshot lists targets.json");
  json s = common("snapshot", version, expires);
  json entries = json::object();
  for (const auto& [name, m] : meta) entries[name] = meta_entry(m);
  s["meta"] = std::move(entries);
  return sign_checked(s, "snapshot", signers);
}

Result<std::string> sign_timestamp(int64_t version, Timestamp expires, const MetaFile& snapshot,
                                   const std::vector<const SigningKey*>& signers) {
  json s = common("timestamp", version, expires);
  s["meta"] = {{"snapshot.json", meta_entry(snapshot)}};
  return sign_checked(s, "timestamp", signers);
}

bool due_for_resigning(Timestamp expires, Duration lifetime, Timestamp now) {
  return now >= expires - lifetime / 2;
}

}  // namespace drover::security::tuf
