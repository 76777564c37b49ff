#include "fleet/update_repository.h"

#include <algorithm>
#include <charconv>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <utility>

#include "base/try_assign.h"
#include "base/units.h"
#include "security/canonical_json.h"
#include "security/crypto.h"
#include "security/tuf_key.h"
#include "security/tuf_metadata.h"
#include "security/tuf_repository.h"

namespace drover {
namespace {

namespace tuf = security::tuf;
using nlohmann::json;
using security::PublicKey;
using security::SigningKey;
using tuf::Metadata;

using KeyRing = std::map<std::string, std::shared_ptr<SigningKey>>;  // by key id

std::string metadata_dir(const std::string& dir) { return dir + "/metadata"; }
std::string keys_dir(const std::string& dir) { return dir + "/keys"; }

std::string key_id(const SigningKey& k) { return PublicKey::ed25519(k.public_key())->key_id(); }

// "<N>.<role>.json" -> N, for the role asked; nullopt for any other name.
std::optional<int64_t> versioned(std::string_view file, std::string_view role) {
  const std::string suffix = "." + std::string(role) + ".json";
  if (file.size() <= suffix.size() || !file.ends_with(suffix)) return std::nullopt;
  const std::string_view digits = file.substr(0, file.size() - suffix.size());
  int64_t n = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
  if (ec != std::errc() || end != digits.data() + digits.size() || n < 1 || digits[0] == '0')
    return std::nullopt;
  return n;
}

// The highest N of "<N>.<role>.json" among `names` (0 when none).
int64_t highest(const std::vector<std::string>& names, std::string_view role) {
  int64_t top = 0;
  for (const std::string& n : names) top = std::max(top, versioned(n, role).value_or(0));
  return top;
}

Error corrupt(const std::string& what) { return Error{ErrorCode::kCorruption, what}; }

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

// The online keys among `ring` that `root` gives `role`.
std::vector<const SigningKey*> signers(const Metadata& root, const KeyRing& ring,
                                       const std::string& role) {
  std::vector<const SigningKey*> out;
  for (const std::string& id : root.roles.at(role).keyids) {
    if (auto it = ring.find(id); it != ring.end()) out.push_back(it->second.get());
  }
  return out;
}

bool enough(const Metadata& root, const std::vector<const SigningKey*>& keys,
            const std::string& role) {
  return static_cast<int>(keys.size()) >= root.roles.at(role).threshold;
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

// The artifacts as targets: "<name>/<version>", their length, SHA-256 and Drover's metadata.
std::map<std::string, tuf::TargetFile> targets_of(const std::vector<Artifact>& list) {
  std::map<std::string, tuf::TargetFile> out;
  for (const Artifact& a : list) {
    tuf::TargetFile f;
    f.length = a.size_bytes;
    auto digest = security::from_hex(a.sha256);  // validate() checked it: 64 hex digits
    if (digest.ok()) f.hashes["sha256"] = std::move(*digest);
    f.custom = UpdateRepository::target_custom(a);
    out.emplace(UpdateRepository::target_path(a), std::move(f));
  }
  return out;
}

}  // namespace

struct UpdateRepository::Impl {
  Impl(FileSystem& f, std::string d, Clock& c, UpdateRepositoryOptions o)
      : fs(f), dir(std::move(d)), clock(c), options(o) {
    options.keep_versions = std::max<size_t>(options.keep_versions, 1);
  }

  // One of the files served now.
  struct Served {
    int64_t version = 0;  // 0: none yet
    Timestamp expires{};
    std::string bytes;
    bool verified = false;  // signed by the keys the current root gives its role
  };

  // What is served, published whole once every file it names is on disk: readers (check-ins
  // asking is_signed, metadata requests) never wait for a publish, a disk or each other.
  struct View {
    std::vector<std::string> roots;  // root version v at [v - 1]: the roots taken
    std::string timestamp;           // "" before the first publish
    int64_t snapshot_version = 0, targets_version = 0;
    std::string snapshot, targets;
    struct Signed {
      uint64_t length = 0;
      std::string sha256;  // hex
      std::string custom;
    };
    std::map<std::string, Signed, std::less<>> listed;  // empty when the targets are unusable
  };

  FileSystem& fs;
  const std::string dir;
  Clock& clock;
  UpdateRepositoryOptions options;

  mutable Mutex mu{LockLevel::kUpdateRepository};  // one publish at a time
  Metadata root GUARDED_BY(mu);
  std::vector<std::string> roots GUARDED_BY(mu);
  KeyRing keys GUARDED_BY(mu);
  Served timestamp GUARDED_BY(mu), snapshot GUARDED_BY(mu), targets GUARDED_BY(mu);
  std::map<std::string, tuf::TargetFile> listed GUARDED_BY(mu);  // what `targets` lists
  int64_t top_snapshot GUARDED_BY(mu) = 0;  // the highest version of any file written or found
  int64_t top_targets GUARDED_BY(mu) = 0;
  std::vector<Artifact> artifacts GUARDED_BY(mu);
  bool published GUARDED_BY(mu) = false;

  mutable Mutex view_mu{LockLevel::kLeaf};
  std::shared_ptr<const View> view GUARDED_BY(view_mu) = std::make_shared<View>();

  std::string path(std::string_view file) const {
    return metadata_dir(dir) + "/" + std::string(file);
  }

  std::shared_ptr<const View> current() const {
    MutexLock lock(view_mu);
    return view;
  }

  bool verifies(const std::string& bytes, const std::string& role) const REQUIRES(mu) {
    auto m = tuf::parse_metadata(bytes, role);
    return m.ok() && tuf::verify_signatures(*m, root.keys, root.roles.at(role), role).ok();
  }

  // Reads `file` as `type`, and whether the current root's keys for it signed it.
  Result<Served> load(const std::string& file, std::string_view type,
                      std::optional<int64_t> version, Metadata* parsed) REQUIRES(mu) {
    auto bytes = fs.read(path(file));
    if (!bytes.ok()) return corrupt(path(file) + ": " + bytes.error().message);
    auto m = tuf::parse_metadata(*bytes, type);
    if (!m.ok()) return corrupt(path(file) + ": " + m.error().message);
    if (version && m->version != *version)
      return corrupt(path(file) + " holds version " + std::to_string(m->version));
    Served s{m->version, m->expires, std::move(*bytes), false};
    s.verified =
        tuf::verify_signatures(*m, root.keys, root.roles.at(std::string(type)), std::string(type))
            .ok();
    *parsed = std::move(*m);
    return s;
  }

  // What the metadata directory says is served: timestamp, the snapshot it names, the
  // targets that names.
  Status load_served(const std::vector<std::string>& names) REQUIRES(mu) {
    top_snapshot = highest(names, "snapshot");
    top_targets = highest(names, "targets");
    if (std::find(names.begin(), names.end(), "timestamp.json") == names.end())
      return ok_status();  // nothing published yet
    Metadata m;
    DROVER_TRY_ASSIGN(timestamp, load("timestamp.json", "timestamp", std::nullopt, &m));
    auto named = m.meta.find("snapshot.json");
    if (named == m.meta.end()) return corrupt(path("timestamp.json") + " names no snapshot");
    const int64_t sv = named->second.version;
    DROVER_TRY_ASSIGN(snapshot, load(std::to_string(sv) + ".snapshot.json", "snapshot", sv, &m));
    named = m.meta.find("targets.json");
    if (named == m.meta.end()) {
      return corrupt(path(std::to_string(sv) + ".snapshot.json") + " names no targets");
    }
    const int64_t tv = named->second.version;
    DROVER_TRY_ASSIGN(targets, load(std::to_string(tv) + ".targets.json", "targets", tv, &m));
    listed = std::move(m.targets);
    return ok_status();
  }

  // Takes roots newer than the current one (drover keys rotate-root), each checked as a
  // client checks it, with the keys the newest names: all or nothing.
  Status take_newer_roots() REQUIRES(mu) {
    auto names = fs.list(metadata_dir(dir));
    if (!names.ok()) return names.error();
    const int64_t last = highest(*names, "root");
    if (last <= root.version) return ok_status();
    Metadata trusted = root;
    std::vector<std::string> chain = roots;
    for (int64_t v = root.version + 1; v <= last; ++v) {
      const std::string file = std::to_string(v) + ".root.json";
      auto bytes = fs.read(path(file));
      if (!bytes.ok()) return corrupt(path(file) + ": " + bytes.error().message);
      auto next = tuf::parse_metadata(*bytes, "root");
      if (!next.ok()) return corrupt(path(file) + ": " + next.error().message);
      if (next->version != v) return corrupt(path(file) + " holds another version");
      DROVER_TRY(tuf::verify_signatures(*next, trusted.keys, trusted.roles.at("root"), "root"));
      DROVER_TRY(tuf::verify_signatures(*next, next->keys, next->roles.at("root"), "root"));
      trusted = std::move(*next);
      chain.push_back(std::move(*bytes));
    }
    DROVER_TRY_ASSIGN(KeyRing ring, load_keys(fs, dir));
    root = std::move(trusted);
    roots = std::move(chain);
    keys = std::move(ring);
    // What is served was signed under the old root: whatever its new keys do not verify is
    // signed again (or, for targets whose keys are offline, reported).
    for (auto [served, role] : {std::pair{&targets, "targets"}, std::pair{&snapshot, "snapshot"},
                                std::pair{&timestamp, "timestamp"}}) {
      served->verified = served->version > 0 && verifies(served->bytes, role);
    }
    return ok_status();
  }

  static bool same(const std::map<std::string, tuf::TargetFile>& a,
                   const std::map<std::string, tuf::TargetFile>& b) {
    return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](const auto& x, const auto& y) {
      return x.first == y.first && x.second.length == y.second.length &&
             x.second.hashes == y.second.hashes && x.second.custom == y.second.custom;
    });
  }

  static bool due(const Served& s, Duration lifetime, Timestamp now) {
    return s.version == 0 || !s.verified || tuf::due_for_resigning(s.expires, lifetime, now);
  }

  // Writes a new file. Its version is spent first: a write that fails half-way (the
  // rename done, the directory's sync not) never lets the version be used again.
  Status write(int64_t& top, int64_t version, const std::string& file, std::string_view bytes)
      REQUIRES(mu) {
    top = std::max(top, version);
    return write_file(fs, path(file), bytes);
  }

  // Signs what is out of date into new files, then commits them all at once by the
  // timestamp; on any failure nothing in memory changes, and the next call starts over
  // (past the versions spent).
  Status publish_locked() REQUIRES(mu) {
    DROVER_TRY(take_newer_roots());
    const Timestamp now = clock.now();
    const auto wanted = targets_of(artifacts);
    const auto ts_keys = signers(root, keys, "timestamp");
    const auto snap_keys = signers(root, keys, "snapshot");
    const auto targets_keys = signers(root, keys, "targets");
    if (!enough(root, ts_keys, "timestamp") || !enough(root, snap_keys, "snapshot")) {
      return Error{ErrorCode::kFailedPrecondition,
                   "the timestamp and snapshot keys of root version " +
                       std::to_string(root.version) + " are not in " + keys_dir(dir)};
    }
    Served new_targets = targets, new_snapshot = snapshot, new_timestamp = timestamp;
    std::optional<std::map<std::string, tuf::TargetFile>> new_listed;  // what they list
    bool changed = false;
    if (enough(root, targets_keys, "targets")) {
      if (!same(wanted, listed) || due(targets, options.targets_lifetime, now)) {
        tuf::TargetsSpec spec;
        spec.version = std::max(top_targets, targets.version) + 1;
        spec.expires = now + options.targets_lifetime;
        spec.targets = wanted;
        DROVER_TRY_ASSIGN(std::string bytes, tuf::sign_targets(spec, targets_keys));
        DROVER_TRY(write(top_targets, spec.version, std::to_string(spec.version) + ".targets.json",
                         bytes));
        new_targets = Served{spec.version, spec.expires, std::move(bytes), true};
        new_listed = wanted;
        changed = true;
      }
    } else {
      // Targets the operator signed offline (sign_targets_offline), newer than those served:
      // taken when they verify under the current root and have not expired.
      if (auto names = fs.list(metadata_dir(dir)); names.ok()) {
        const int64_t top = highest(*names, "targets");
        if (top > targets.version) {
          Metadata m;
          auto offline = load(std::to_string(top) + ".targets.json", "targets", top, &m);
          top_targets = std::max(top_targets, top);
          if (offline.ok() && offline->verified && now < offline->expires) {
            new_targets = std::move(*offline);
            new_listed = std::move(m.targets);
            changed = true;
          }
        }
      }
      if (new_targets.version == 0) {
        return ok_status();  // nothing signed yet, and nothing can be: nothing is served
      }
      if (!new_targets.verified || now >= new_targets.expires) {
        publish_view(/*usable=*/false);  // no artifact is signed any longer
        return Error{
            ErrorCode::kFailedPrecondition,
            "the targets metadata (version " + std::to_string(new_targets.version) + ") " +
                (new_targets.verified ? "expired at " + format_utc_timestamp(new_targets.expires)
                                      : "is not signed by the targets keys of root version " +
                                            std::to_string(root.version)) +
                ", those keys are not in " + keys_dir(dir) +
                ", and no newer targets were signed offline (drover keys sign-targets)"};
      }
    }
    if (changed || due(snapshot, options.snapshot_lifetime, now)) {
      const int64_t v = std::max(top_snapshot, snapshot.version) + 1;
      const Timestamp expires = now + options.snapshot_lifetime;
      DROVER_TRY_ASSIGN(
          std::string bytes,
          tuf::sign_snapshot(
              v, expires, {{"targets.json", tuf::describe(new_targets.bytes, new_targets.version)}},
              snap_keys));
      DROVER_TRY(write(top_snapshot, v, std::to_string(v) + ".snapshot.json", bytes));
      new_snapshot = Served{v, expires, std::move(bytes), true};
      changed = true;
    }
    if (changed || due(timestamp, options.timestamp_lifetime, now)) {
      int64_t unused = 0;
      const int64_t v = timestamp.version + 1;
      const Timestamp expires = now + options.timestamp_lifetime;
      DROVER_TRY_ASSIGN(
          std::string bytes,
          tuf::sign_timestamp(v, expires, tuf::describe(new_snapshot.bytes, new_snapshot.version),
                              ts_keys));
      DROVER_TRY(write(unused, v, "timestamp.json", bytes));
      new_timestamp = Served{v, expires, std::move(bytes), true};
    }
    // Committed: timestamp.json names the new files.
    if (new_listed) listed = std::move(*new_listed);
    targets = std::move(new_targets);
    snapshot = std::move(new_snapshot);
    timestamp = std::move(new_timestamp);
    publish_view(/*usable=*/true);
    prune();
    return ok_status();
  }

  void publish_view(bool usable) REQUIRES(mu) {
    auto next = std::make_shared<View>();
    next->roots = roots;
    next->timestamp = timestamp.bytes;
    next->snapshot_version = snapshot.version;
    next->snapshot = snapshot.bytes;
    next->targets_version = targets.version;
    next->targets = targets.bytes;
    if (usable) {
      for (const auto& [target, file] : listed) {
        const auto hash = file.hashes.find("sha256");
        next->listed.emplace(
            target, View::Signed{file.length,
                                 hash == file.hashes.end() ? "" : security::to_hex(hash->second),
                                 file.custom});
      }
    }
    MutexLock lock(view_mu);
    view = std::move(next);
  }

  // Older targets and snapshot files beyond the ones kept; a failure leaves a file behind.
  void prune() REQUIRES(mu) {
    auto names = fs.list(metadata_dir(dir));
    if (!names.ok()) return;
    for (const std::string& n : *names) {
      for (auto [role, served] :
           {std::pair{"targets", targets.version}, std::pair{"snapshot", snapshot.version}}) {
        const auto v = versioned(n, role);
        if (v && *v + static_cast<int64_t>(options.keep_versions) <= served)
          (void)fs.remove(path(n));
      }
    }
  }
};

UpdateRepository::UpdateRepository(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
UpdateRepository::~UpdateRepository() = default;

Result<std::unique_ptr<UpdateRepository>> UpdateRepository::open(FileSystem& fs, std::string dir,
                                                                 Clock& clock,
                                                                 UpdateRepositoryOptions options) {
  auto names = fs.list(metadata_dir(dir));
  if (!names.ok() && names.error().code == ErrorCode::kNotFound)
    return not_found("no signed update metadata in " + dir + " (run drover keys gen)");
  if (!names.ok()) return names.error();
  auto impl = std::make_unique<Impl>(fs, std::move(dir), clock, options);
  {
    MutexLock lock(impl->mu);
    DROVER_TRY_ASSIGN(auto chain, load_roots(fs, impl->dir, *names));
    impl->root = std::move(chain.first);
    impl->roots = std::move(chain.second);
    DROVER_TRY_ASSIGN(impl->keys, load_keys(fs, impl->dir));
    DROVER_TRY(impl->load_served(*names));
    // Served as found until the first publish() (which may sign anew); targets that no
    // longer verify sign nothing.
    impl->publish_view(impl->targets.verified);
  }
  return std::unique_ptr<UpdateRepository>(new UpdateRepository(std::move(impl)));
}

Status UpdateRepository::publish(const std::vector<Artifact>& artifacts) {
  MutexLock lock(impl_->mu);
  impl_->artifacts = artifacts;
  impl_->published = true;
  return impl_->publish_locked();
}

Status UpdateRepository::refresh() {
  MutexLock lock(impl_->mu);
  if (!impl_->published) return ok_status();  // nothing to sign from yet
  return impl_->publish_locked();
}

Result<std::string> UpdateRepository::metadata(std::string_view file) const {
  const std::shared_ptr<const Impl::View> view = impl_->current();
  if (file == "timestamp.json") {
    if (view->timestamp.empty()) return not_found("nothing is published yet");
    return view->timestamp;
  }
  if (auto v = versioned(file, "root")) {
    // Only the roots taken: one `drover keys rotate-root` just wrote is served once this
    // server signs under it, so no device trusts a root before its files are signed for it.
    if (*v <= static_cast<int64_t>(view->roots.size()))
      return view->roots[static_cast<size_t>(*v - 1)];
  } else if (auto s = versioned(file, "snapshot")) {
    if (*s == view->snapshot_version) return view->snapshot;
    if (*s < view->snapshot_version) return impl_->fs.read(impl_->path(file));
  } else if (auto t = versioned(file, "targets")) {
    if (*t == view->targets_version) return view->targets;
    if (*t < view->targets_version) return impl_->fs.read(impl_->path(file));
  }
  return not_found("no metadata file " + security::printable(file));
}

bool UpdateRepository::is_signed(const Artifact& a) const {
  const std::shared_ptr<const Impl::View> view = impl_->current();
  auto it = view->listed.find(target_path(a));
  return it != view->listed.end() && it->second.length == a.size_bytes &&
         it->second.sha256 == a.sha256 && it->second.custom == target_custom(a);
}

std::string UpdateRepository::target_path(const Artifact& a) { return a.name + "/" + a.version; }

std::string UpdateRepository::target_custom(const Artifact& a) {
  json depends = json::array();
  for (const Dependency& d : a.depends)
    depends.push_back({{"component", d.component}, {"constraint", d.constraint}});
  const json custom{{"version", a.version},
                    {"device_types", a.device_types},
                    {"hardware_revisions", a.hardware_revisions},
                    {"depends", std::move(depends)}};
  return security::canonical_json(custom).value();  // strings and arrays only
}

RepositoryState UpdateRepository::state() const {
  const Impl& i = *impl_;
  MutexLock lock(i.mu);
  RepositoryState out;
  out.signed_targets = i.current()->listed.size();
  for (const std::string role : {"root", "targets", "snapshot", "timestamp"}) {
    RepositoryState::Role r;
    r.name = role;
    r.key_ids = i.root.roles.at(role).keyids;
    r.threshold = i.root.roles.at(role).threshold;
    for (const std::string& id : r.key_ids) r.online_keys += i.keys.count(id);
    const Impl::Served* s = role == "root"       ? nullptr
                            : role == "targets"  ? &i.targets
                            : role == "snapshot" ? &i.snapshot
                                                 : &i.timestamp;
    r.version = s == nullptr ? i.root.version : s->version;
    r.expires = s == nullptr ? i.root.expires : s->expires;
    r.valid = s == nullptr || (s->version > 0 && s->verified && i.clock.now() < s->expires);
    out.roles.push_back(std::move(r));
  }
  return out;
}

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

Result<int64_t> sign_targets_offline(FileSystem& fs, const std::string& dir,
                                     const std::vector<Artifact>& artifacts,
                                     const std::vector<std::string>& key_files, Duration lifetime,
                                     Timestamp now) {
  auto names = fs.list(metadata_dir(dir));
  if (!names.ok() && names.error().code == ErrorCode::kNotFound) {
    return not_found("no signed update metadata in " + dir + " (run drover keys gen)");
  }
  if (!names.ok()) return names.error();
  DROVER_TRY_ASSIGN(auto chain, load_roots(fs, dir, *names));
  const Metadata& root = chain.first;
  DROVER_TRY_ASSIGN(KeyRing online, load_keys(fs, dir));
  if (!signers(root, online, "targets").empty()) {
    return Error{ErrorCode::kFailedPrecondition,
                 "the targets keys of root version " + std::to_string(root.version) +
                     " are online in " + keys_dir(dir) +
                     ": the server signs targets itself (move them out to sign offline)"};
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
  const auto keys = signers(root, given, "targets");
  if (!enough(root, keys, "targets")) {
    return Error{ErrorCode::kUnauthenticated,
                 "the keys given hold " + std::to_string(keys.size()) + " of the targets keys " +
                     "root version " + std::to_string(root.version) + " names; it needs " +
                     std::to_string(root.roles.at("targets").threshold)};
  }
  tuf::TargetsSpec spec;
  spec.version = highest(*names, "targets") + 1;
  spec.expires = now + lifetime;
  spec.targets = targets_of(artifacts);
  DROVER_TRY_ASSIGN(std::string bytes, tuf::sign_targets(spec, keys));
  DROVER_TRY(write_file(
      fs, metadata_dir(dir) + "/" + std::to_string(spec.version) + ".targets.json", bytes));
  return spec.version;
}

}  // namespace drover
