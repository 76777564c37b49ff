// A TUF repository for tests: a publisher that signs the four roles and delegated roles
// at the versions, expiries and keys a test sets (attacks included: wrong signers, replayed
// versions), and a fake repository that serves the files by URL, as a server would, with
// bodies past a fetch's limit refused and every request logged.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "security/crypto.h"
#include "security/tuf_client.h"

namespace drover::testing {

using nlohmann::json;
using security::sha256;
using security::SigningKey;
using security::to_hex;
using security::tuf::encode_name;
using security::tuf::MetadataFetcher;
using security::tuf::sign_metadata;

inline const std::string kMetadataUrl = "https://repo.example/metadata/";
inline const std::string kTargetsUrl = "https://repo.example/targets/";

inline SigningKey new_key() { return SigningKey::generate().value(); }
inline std::string id(const SigningKey& k) {
  return security::PublicKey::ed25519(k.public_key())->key_id();
}
inline json key_json(const SigningKey& k) {
  return security::PublicKey::ed25519(k.public_key())->to_json();
}

// The repository: files by name, as a server would serve them, and a log of requests.
class FakeRepository final : public MetadataFetcher {
 public:
  std::map<std::string, std::string> files;  // by URL
  std::vector<std::string> requests;
  std::map<std::string, std::string> served_instead;  // an attacker's replacement bodies

  // Sends a body in pieces of up to 1,000 bytes, as a network would, and stops at the
  // sink's first error.
  Status fetch_to(const std::string& url, const Sink& sink) override {
    requests.push_back(url);
    auto swapped = served_instead.find(url);
    auto it = files.find(url);
    if (swapped == served_instead.end() && it == files.end()) return not_found("HTTP 404");
    const std::string& body = swapped != served_instead.end() ? swapped->second : it->second;
    for (size_t at = 0; at < body.size(); at += 1000) {
      if (before_piece) before_piece();
      Status s = sink(std::string_view(body).substr(at, 1000));
      if (!s.ok()) return s;
      ++pieces_sent;
    }
    return ok_status();
  }
  size_t pieces_sent = 0;
  std::function<void()> before_piece;  // e.g. a clock moved on: a slow link
  size_t count(const std::string& suffix) const {
    size_t n = 0;
    for (const std::string& r : requests)
      n += r.size() >= suffix.size() &&
           r.compare(r.size() - suffix.size(), suffix.size(), suffix) == 0;
    return n;
  }
};

struct Delegation {
  Delegation(std::string role, std::vector<std::string> patterns, std::string from = "targets",
             std::map<std::string, std::string> listed = {})
      : name(std::move(role)),
        delegator(std::move(from)),
        paths(std::move(patterns)),
        targets(std::move(listed)) {}
  std::string name, delegator;
  std::vector<std::string> paths;
  std::map<std::string, std::string> targets;  // path -> contents
  bool terminating = false;
  std::shared_ptr<SigningKey> key = std::make_shared<SigningKey>(new_key());
  int version = 1;
  std::string expires = "2030-01-01T00:00:00Z";
};

// A repository publisher: the four roles' keys and versions, the targets, the delegations;
// publish() signs everything afresh into the fake repository.
class Publisher {
 public:
  std::vector<std::shared_ptr<SigningKey>> root_keys = {std::make_shared<SigningKey>(new_key())};
  int root_threshold = 1;
  std::shared_ptr<SigningKey> timestamp_key = std::make_shared<SigningKey>(new_key());
  std::shared_ptr<SigningKey> snapshot_key = std::make_shared<SigningKey>(new_key());
  std::shared_ptr<SigningKey> targets_key = std::make_shared<SigningKey>(new_key());
  int root_version = 1, timestamp_version = 1, snapshot_version = 1, targets_version = 1;
  std::string root_expires = "2030-01-01T00:00:00Z", timestamp_expires = "2030-01-01T00:00:00Z",
              snapshot_expires = "2030-01-01T00:00:00Z", targets_expires = "2030-01-01T00:00:00Z";
  bool consistent_snapshot = true;
  std::map<std::string, std::string> targets = {{"firmware/bms-4.2.0.img", "image 4.2.0"}};
  std::vector<Delegation> delegations;
  // Succinct hash-bin delegations from the top-level targets, instead of its listed ones:
  // the bins' files are the `delegations` whose delegator is "" (signed with `key` here).
  struct Succinct {
    std::string name_prefix;
    int bit_length = 1;
    std::shared_ptr<SigningKey> key = std::make_shared<SigningKey>(new_key());
  };
  std::optional<Succinct> succinct;
  // Who signs the next root, when not the root keys themselves (rotations, attacks).
  std::vector<const SigningKey*> root_signers;

  FakeRepository& repo;
  std::string metadata_url, targets_url;  // where publish() serves the files
  explicit Publisher(FakeRepository& r, std::string metadata = kMetadataUrl,
                     std::string targets_base = kTargetsUrl)
      : repo(r), metadata_url(std::move(metadata)), targets_url(std::move(targets_base)) {}

  static json common(const std::string& type, int version, const std::string& expires) {
    return {
        {"_type", type}, {"spec_version", "1.0.31"}, {"version", version}, {"expires", expires}};
  }
  json root_signed() const {
    json s = common("root", root_version, root_expires);
    s["consistent_snapshot"] = consistent_snapshot;
    s["keys"] = json::object();
    json root_ids = json::array();
    for (const auto& k : root_keys) {
      s["keys"][id(*k)] = key_json(*k);
      root_ids.push_back(id(*k));
    }
    s["roles"]["root"] = {{"keyids", root_ids}, {"threshold", root_threshold}};
    for (const auto& [role, key] :
         {std::pair<const char*, const SigningKey*>{"timestamp", timestamp_key.get()},
          {"snapshot", snapshot_key.get()},
          {"targets", targets_key.get()}}) {
      s["keys"][id(*key)] = key_json(*key);
      s["roles"][role] = {{"keyids", {id(*key)}}, {"threshold", 1}};
    }
    return s;
  }
  std::string root_file() const {
    std::vector<const SigningKey*> signers = root_signers;
    if (signers.empty()) {
      for (const auto& k : root_keys) signers.push_back(k.get());
    }
    return sign_metadata(root_signed(), signers).value();
  }
  static json target_entry(const std::string& contents) {
    return {{"length", contents.size()}, {"hashes", {{"sha256", to_hex(sha256(contents))}}}};
  }
  std::string targets_file(const std::string& role) const {
    json s;
    const SigningKey* key = targets_key.get();
    if (role == "targets") {
      s = common("targets", targets_version, targets_expires);
      for (const auto& [path, contents] : targets) s["targets"][path] = target_entry(contents);
    } else {
      const Delegation& d = delegation(role);
      s = common("targets", d.version, d.expires);
      for (const auto& [path, contents] : d.targets) s["targets"][path] = target_entry(contents);
      key = d.delegator.empty() && succinct ? succinct->key.get() : d.key.get();
    }
    if (!s.contains("targets")) s["targets"] = json::object();
    json roles = json::array();
    json keys = json::object();
    for (const Delegation& d : delegations) {
      if (d.delegator != role) continue;
      keys[id(*d.key)] = key_json(*d.key);
      roles.push_back({{"name", d.name},
                       {"keyids", {id(*d.key)}},
                       {"threshold", 1},
                       {"terminating", d.terminating},
                       {"paths", d.paths}});
    }
    if (!roles.empty()) s["delegations"] = {{"keys", keys}, {"roles", roles}};
    if (succinct && role == "targets") {
      s["delegations"] = {{"keys", {{id(*succinct->key), key_json(*succinct->key)}}},
                          {"succinct_roles",
                           {{"keyids", {id(*succinct->key)}},
                            {"threshold", 1},
                            {"bit_length", succinct->bit_length},
                            {"name_prefix", succinct->name_prefix}}}};
    }
    return sign_metadata(s, {key}).value();
  }
  const Delegation& delegation(const std::string& name) const {
    for (const Delegation& d : delegations) {
      if (d.name == name) return d;
    }
    throw std::logic_error("no delegation " + name);
  }
  // Whether the snapshot lists the targets file's length and hashes (it may, or not).
  bool hashes_in_snapshot = false;
  std::string snapshot_file() const {
    json s = common("snapshot", snapshot_version, snapshot_expires);
    s["meta"]["targets.json"] = {{"version", targets_version}};
    if (hashes_in_snapshot) {
      const std::string t = targets_file("targets");
      s["meta"]["targets.json"]["length"] = t.size();
      s["meta"]["targets.json"]["hashes"] = {{"sha256", to_hex(sha256(t))}};
    }
    for (const Delegation& d : delegations) s["meta"][d.name + ".json"] = {{"version", d.version}};
    return sign_metadata(s, {snapshot_key.get()}).value();
  }
  std::string timestamp_file(const std::string& snapshot) const {
    json s = common("timestamp", timestamp_version, timestamp_expires);
    s["meta"]["snapshot.json"] = {{"version", snapshot_version},
                                  {"length", snapshot.size()},
                                  {"hashes", {{"sha256", to_hex(sha256(snapshot))}}}};
    return sign_metadata(s, {timestamp_key.get()}).value();
  }
  // Signs and serves everything at the current versions.
  // Signs and serves everything at the current versions: under the names the root's
  // consistent_snapshot asks for only (versioned metadata and hash-prefixed targets, or
  // plain names), so a client that asks for the wrong name finds nothing.
  void publish() {
    const std::string root = root_file();
    repo.files[metadata_url + std::to_string(root_version) + ".root.json"] = root;
    repo.files[metadata_url + "root.json"] = root;
    serve_metadata("targets.json", targets_version, targets_file("targets"));
    for (const Delegation& d : delegations)
      serve_metadata(encode_name(d.name).value() + ".json", d.version, targets_file(d.name));
    const std::string snapshot = snapshot_file();
    serve_metadata("snapshot.json", snapshot_version, snapshot);
    repo.files[metadata_url + "timestamp.json"] = timestamp_file(snapshot);
    for (const auto& [path, contents] : targets) serve_target(path, contents);
    for (const Delegation& d : delegations) {
      for (const auto& [path, contents] : d.targets) serve_target(path, contents);
    }
  }
  void serve_metadata(const std::string& name, int version, const std::string& bytes) {
    repo.files[metadata_url + (consistent_snapshot ? std::to_string(version) + "." : "") + name] =
        bytes;
  }
  void serve_target(const std::string& path, const std::string& contents) {
    const size_t slash = path.rfind('/');
    const size_t at = slash == std::string::npos ? 0 : slash + 1;
    std::string name = path;
    if (consistent_snapshot) name.insert(at, to_hex(sha256(contents)) + ".");
    repo.files[targets_url + name] = contents;
  }
};

}  // namespace drover::testing
