#include "fleet/update_repository.h"

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <utility>

#include "base/try_assign.h"
#include "base/units.h"
#include "fleet/repository_files.h"
#include "fleet/targets_delegations.h"
#include "security/canonical_json.h"
#include "security/crypto.h"
#include "security/tuf_key.h"
#include "security/tuf_metadata.h"
#include "security/tuf_repository.h"

namespace drover {
namespace {

namespace tuf = security::tuf;
using nlohmann::json;
using security::SigningKey;
using tuf::Metadata;

using namespace repository_files;  // NOLINT(google-build-using-namespace): the fleet's own helpers

// The delegation `by` makes to `role`, if any.
const tuf::DelegatedRole* find_role(const std::optional<tuf::Delegations>& by,
                                    std::string_view role) {
  if (!by) return nullptr;
  for (const tuf::DelegatedRole& r : by->roles) {
    if (r.name == role) return &r;
  }
  return nullptr;
}

// Whether `m` is a file of the delegated `role` this server serves: signed as the delegation
// `by` makes to it asks, and delegating nothing further (the server builds one level; a
// device would search deeper delegations the server does not know of, and see otherwise).
bool usable_role_file(const Metadata& m, const std::optional<tuf::Delegations>& by,
                      const std::string& role) {
  const tuf::DelegatedRole* d = find_role(by, role);
  return d != nullptr && !m.delegations && tuf::verify_signatures(m, by->keys, d->keys, role).ok();
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
    bool verified = false;  // signed by the keys its role is given now
  };

  // A targets role's file (the top-level one or a delegated one) and what it says: its
  // targets and, for the top-level one, its delegations.
  struct TargetsRole {
    Served file;
    Metadata meta;
  };

  // What is served, published whole once every file it names is on disk: readers (check-ins
  // asking is_signed, metadata requests) never wait for a publish, a disk or each other.
  struct View {
    std::vector<std::string> roots;  // root version v at [v - 1]: the roots taken
    std::string timestamp;           // "" before the first publish
    struct File {
      int64_t version = 0;
      std::string bytes;
    };
    // "snapshot", "targets" and each delegated role the snapshot lists: the file served now.
    std::map<std::string, File, std::less<>> files;
    struct Signed {
      uint64_t length = 0;
      std::string sha256;  // hex
      std::string custom;
      Timestamp expires{};  // signed until then (a refresh signs again before)
    };
    // Each target as a device finds it (top-level first, then the delegations in order);
    // empty when the top-level targets are unusable.
    std::map<std::string, Signed, std::less<>> listed;
  };

  FileSystem& fs;
  const std::string dir;
  Clock& clock;
  UpdateRepositoryOptions options;

  mutable Mutex mu{LockLevel::kUpdateRepository};  // one publish at a time
  Metadata root GUARDED_BY(mu);
  std::vector<std::string> roots GUARDED_BY(mu);
  KeyRing keys GUARDED_BY(mu);
  Served timestamp GUARDED_BY(mu), snapshot GUARDED_BY(mu);
  std::map<std::string, tuf::MetaFile> snapshot_meta GUARDED_BY(mu);  // what `snapshot` lists
  TargetsRole targets GUARDED_BY(mu);
  // Every delegated role the served snapshot lists, delegated now or once (a snapshot keeps
  // listing a role it listed: a device takes a role's disappearance for an attack).
  std::map<std::string, TargetsRole> delegated GUARDED_BY(mu);
  std::vector<tuf::DelegationSpec> configured GUARDED_BY(mu);  // delegations.json, last read
  // Per role ("snapshot", "targets", a delegated role): the highest version of any file
  // written or found.
  std::map<std::string, int64_t, std::less<>> top GUARDED_BY(mu);
  std::vector<Artifact> artifacts GUARDED_BY(mu);
  bool published GUARDED_BY(mu) = false;
  bool targets_unusable GUARDED_BY(mu) = false;  // found so by the publish under way

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

  // How many of `ids` are in keys/.
  size_t online_keys(const std::vector<std::string>& ids) const REQUIRES(mu) {
    size_t n = 0;
    for (const std::string& id : ids) n += keys.count(id);
    return n;
  }

  // Reads `file` as `type` (of `version`, when given); its signatures are not checked here.
  Result<Served> read(const std::string& file, std::string_view type,
                      std::optional<int64_t> version, Metadata* parsed) const {
    auto bytes = fs.read(path(file));
    if (!bytes.ok()) return corrupt(path(file) + ": " + bytes.error().message);
    auto m = tuf::parse_metadata(*bytes, type);
    if (!m.ok()) return corrupt(path(file) + ": " + m.error().message);
    if (version && m->version != *version)
      return corrupt(path(file) + " holds version " + std::to_string(m->version));
    Served s{m->version, m->expires, std::move(*bytes), false};
    *parsed = std::move(*m);
    return s;
  }

  // A top-level role's file, checked against the keys the root gives the role.
  Result<Served> read_top_level(const std::string& file, const std::string& type,
                                std::optional<int64_t> version, Metadata* parsed) REQUIRES(mu) {
    DROVER_TRY_ASSIGN(Served s, read(file, type, version, parsed));
    s.verified = tuf::verify_signatures(*parsed, root.keys, root.roles.at(type), type).ok();
    return s;
  }

  // "<version>.<role>.json" of a targets role; its signatures are not checked here.
  Result<TargetsRole> read_targets(const std::string& role, int64_t version) const {
    TargetsRole r;
    DROVER_TRY_ASSIGN(
        r.file, read(std::to_string(version) + "." + role + ".json", "targets", version, &r.meta));
    return r;
  }

  void note_versions(const std::vector<std::string>& names) REQUIRES(mu) {
    for (const std::string& n : names) {
      if (auto split = split_versioned(n); split && split->second != "root")
        top[split->second] = std::max(top[split->second], split->first);
    }
  }

  int64_t next_version(const std::string& role, int64_t served) REQUIRES(mu) {
    return std::max(top[role], served) + 1;
  }

  // What the metadata directory says is served: the timestamp, the snapshot it names, and
  // the targets roles that lists.
  Status load_served(const std::vector<std::string>& names) REQUIRES(mu) {
    note_versions(names);
    if (std::find(names.begin(), names.end(), "timestamp.json") == names.end())
      return ok_status();  // nothing published yet
    Metadata m;
    DROVER_TRY_ASSIGN(timestamp, read_top_level("timestamp.json", "timestamp", std::nullopt, &m));
    auto named = m.meta.find("snapshot.json");
    if (named == m.meta.end()) return corrupt(path("timestamp.json") + " names no snapshot");
    const int64_t sv = named->second.version;
    const std::string snapshot_file = std::to_string(sv) + ".snapshot.json";
    DROVER_TRY_ASSIGN(snapshot, read_top_level(snapshot_file, "snapshot", sv, &m));
    snapshot_meta = std::move(m.meta);
    for (const auto& [file, listed] : snapshot_meta) {
      const std::string role = file.substr(0, file.size() - std::string_view(".json").size());
      if (role != "targets" && !check_delegated_role_name(role).ok())
        return corrupt(path(snapshot_file) + " lists " + security::printable(file));
      DROVER_TRY_ASSIGN(TargetsRole r, read_targets(role, listed.version));
      if (role == "targets") {
        r.file.verified =
            tuf::verify_signatures(r.meta, root.keys, root.roles.at("targets"), "targets").ok();
        targets = std::move(r);
      } else {
        delegated[role] = std::move(r);
      }
    }
    if (targets.file.version == 0) return corrupt(path(snapshot_file) + " names no targets");
    for (auto& [role, r] : delegated)
      r.file.verified = usable_role_file(r.meta, targets.meta.delegations, role);
    return ok_status();
  }

  // Takes roots newer than the current one (drover keys rotate-root), each checked as a
  // client checks it, with the keys the newest names: all or nothing.
  Status take_newer_roots(const std::vector<std::string>& names) REQUIRES(mu) {
    const int64_t last = highest(names, "root");
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
    root = std::move(trusted);
    roots = std::move(chain);
    // What is served was signed under the old root: whatever its new keys do not verify is
    // signed again (or, for targets whose keys are offline, reported).
    for (auto [served, role] :
         {std::pair{&targets.file, "targets"}, std::pair{&snapshot, "snapshot"},
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

  static bool same(const std::map<std::string, tuf::MetaFile>& a,
                   const std::map<std::string, tuf::MetaFile>& b) {
    return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](const auto& x, const auto& y) {
      return x.first == y.first && x.second.version == y.second.version &&
             x.second.length == y.second.length && x.second.hashes == y.second.hashes;
    });
  }

  static bool due(const Served& s, Duration lifetime, Timestamp now) {
    return s.version == 0 || !s.verified || tuf::due_for_resigning(s.expires, lifetime, now);
  }

  // Writes a new file. Its version is spent first: a write that fails half-way (the
  // rename done, the directory's sync not) never lets the version be used again.
  Status write(const std::string& role, int64_t version, std::string_view bytes) REQUIRES(mu) {
    top[role] = std::max(top[role], version);
    return write_file(fs, path(std::to_string(version) + "." + role + ".json"), bytes);
  }

  // Signs `wanted` (and `delegations`) as the next version of `role`, written to disk.
  Result<TargetsRole> sign(const std::string& role, int64_t served,
                           std::map<std::string, tuf::TargetFile> wanted,
                           std::vector<tuf::DelegationSpec> delegations,
                           const std::vector<const SigningKey*>& signing, Timestamp now)
      REQUIRES(mu) {
    tuf::TargetsSpec spec;
    spec.version = next_version(role, served);
    spec.expires = now + options.targets_lifetime;
    spec.targets = std::move(wanted);
    spec.delegations = std::move(delegations);
    DROVER_TRY_ASSIGN(std::string bytes, tuf::sign_targets(spec, signing));
    DROVER_TRY(write(role, spec.version, bytes));
    TargetsRole r;
    DROVER_TRY_ASSIGN(r.meta, tuf::parse_metadata(bytes, "targets"));
    r.file = Served{spec.version, spec.expires, std::move(bytes), true};
    return r;
  }

  // The top-level targets to serve next: signed anew when its keys are online and what it
  // lists (or delegates) changed or it falls due; else the newest the operator signed
  // offline that verifies and has not expired. False when there are none at all yet.
  Result<bool> next_top_level(Timestamp now, TargetsRole& next) REQUIRES(mu) {
    const tuf::RoleKeys& role = root.roles.at("targets");
    const auto online = signers(role, keys);
    if (enough(role, online)) {
      auto wanted = targets_of(artifacts, delegated_roles(configured), "targets");
      if (!same(wanted, next.meta.targets) ||
          !same_delegations(next.meta.delegations, configured) ||
          due(next.file, options.targets_lifetime, now)) {
        DROVER_TRY_ASSIGN(
            next, sign("targets", next.file.version, std::move(wanted), configured, online, now));
      }
      return true;
    }
    if (const int64_t newest = top["targets"]; newest > next.file.version) {
      auto offline = read_targets("targets", newest);
      if (offline.ok()) {
        offline->file.verified =
            tuf::verify_signatures(offline->meta, root.keys, role, "targets").ok();
        if (offline->file.verified && now < offline->file.expires) next = std::move(*offline);
      }
    }
    if (next.file.version == 0) return false;  // nothing signed yet, and nothing can be
    if (!next.file.verified || now >= next.file.expires) {
      targets_unusable = true;
      return Error{ErrorCode::kFailedPrecondition,
                   "the targets metadata (version " + std::to_string(next.file.version) + ") " +
                       (next.file.verified ? "expired at " + format_utc_timestamp(next.file.expires)
                                           : "is not signed by the targets keys of root version " +
                                                 std::to_string(root.version)) +
                       ", those keys are not in " + keys_dir(dir) +
                       ", and no newer targets were signed offline (drover keys sign-targets)"};
    }
    return true;
  }

  // Each role `top_level` delegates to, served next: signed anew when enough of its keys are
  // online and what it lists changed or it falls due; else the newest file signed offline
  // (drover keys sign-targets --role) that its delegation's keys verify and that has not
  // expired. A role with nothing signed yet is not listed: its artifacts are not signed.
  Status next_delegated(Timestamp now, const TargetsRole& top_level,
                        std::map<std::string, TargetsRole>& next) REQUIRES(mu) {
    const std::optional<tuf::Delegations>& by = top_level.meta.delegations;
    for (auto& [name, r] : next) r.file.verified = usable_role_file(r.meta, by, name);
    if (!by) return ok_status();
    for (const tuf::DelegatedRole& d : by->roles) {
      TargetsRole& current = next[d.name];  // version 0 when new
      const auto online = signers(d.keys, keys);
      if (enough(d.keys, online)) {
        auto wanted = targets_of(artifacts, by->roles, d.name);
        if (!same(wanted, current.meta.targets) ||
            due(current.file, options.targets_lifetime, now)) {
          DROVER_TRY_ASSIGN(current,
                            sign(d.name, current.file.version, std::move(wanted), {}, online, now));
        }
        continue;
      }
      if (const int64_t newest = top[d.name]; newest > current.file.version) {
        auto offline = read_targets(d.name, newest);
        if (offline.ok() && usable_role_file(offline->meta, by, d.name) &&
            now < offline->file.expires) {
          offline->file.verified = true;
          current = std::move(*offline);
        }
      }
    }
    std::erase_if(next, [](const auto& r) { return r.second.file.version == 0; });
    return ok_status();
  }

  // Signs what is out of date into new files, then commits them all at once by the
  // timestamp; on any failure nothing in memory changes, and the next call starts over
  // (past the versions spent).
  Status publish_locked() REQUIRES(mu) {
    // A root taken is kept only once files signed under it are committed: until then the
    // roots served, and what they verify, stay as they were (a timestamp key rotated and lost
    // must not leave devices with a root that refuses the timestamp served). Except when the
    // new root makes the targets unusable (their keys rotated away and not online): what it
    // revoked must not go on being signed, so it is kept and nothing is signed.
    const Metadata old_root = root;
    const std::vector<std::string> old_roots = roots;
    const bool verified[] = {targets.file.verified, snapshot.verified, timestamp.verified};
    targets_unusable = false;
    Status st = publish_files();
    if (!st.ok() && !targets_unusable && roots.size() != old_roots.size()) {
      root = old_root;
      roots = old_roots;
      targets.file.verified = verified[0];
      snapshot.verified = verified[1];
      timestamp.verified = verified[2];
    }
    if (targets_unusable) publish_view(/*usable=*/false);  // no artifact is signed any longer
    return st;
  }

  Status publish_files() REQUIRES(mu) {
    auto names = fs.list(metadata_dir(dir));
    if (!names.ok()) return names.error();
    DROVER_TRY(take_newer_roots(*names));
    // Keys and delegations as they are on disk now: `drover keys delegate` adds both while
    // the server runs. A delegations.json that does not read (an edit gone wrong) does not
    // stop the signing of what is served — the timestamp must not expire over it — but the
    // delegations last read stay in force, and the publish reports it.
    DROVER_TRY_ASSIGN(keys, load_keys(fs, dir));
    std::optional<Error> config_error;
    if (auto read = load_delegations(fs, dir); read.ok()) {
      configured = std::move(*read);
    } else {
      config_error = read.error();
    }
    note_versions(*names);
    const Timestamp now = clock.now();
    const auto ts_keys = signers(root.roles.at("timestamp"), keys);
    const auto snap_keys = signers(root.roles.at("snapshot"), keys);
    if (!enough(root.roles.at("timestamp"), ts_keys) ||
        !enough(root.roles.at("snapshot"), snap_keys)) {
      return Error{ErrorCode::kFailedPrecondition,
                   "the timestamp and snapshot keys of root version " +
                       std::to_string(root.version) + " are not in " + keys_dir(dir)};
    }
    TargetsRole new_targets = targets;
    DROVER_TRY_ASSIGN(const bool any, next_top_level(now, new_targets));
    if (!any) return ok_status();  // nothing is served, and nothing can be signed yet
    std::map<std::string, TargetsRole> new_delegated = delegated;
    DROVER_TRY(next_delegated(now, new_targets, new_delegated));

    std::map<std::string, tuf::MetaFile> meta = snapshot_meta;
    meta["targets.json"] = tuf::describe(new_targets.file.bytes, new_targets.file.version);
    for (const auto& [name, r] : new_delegated)
      meta[name + ".json"] = tuf::describe(r.file.bytes, r.file.version);
    Served new_snapshot = snapshot, new_timestamp = timestamp;
    bool changed = !same(meta, snapshot_meta);
    if (changed || due(snapshot, options.snapshot_lifetime, now)) {
      const int64_t v = next_version("snapshot", snapshot.version);
      const Timestamp expires = now + options.snapshot_lifetime;
      DROVER_TRY_ASSIGN(std::string bytes, tuf::sign_snapshot(v, expires, meta, snap_keys));
      DROVER_TRY(write("snapshot", v, bytes));
      new_snapshot = Served{v, expires, std::move(bytes), true};
      changed = true;
    }
    if (changed || due(timestamp, options.timestamp_lifetime, now)) {
      const int64_t v = timestamp.version + 1;
      const Timestamp expires = now + options.timestamp_lifetime;
      DROVER_TRY_ASSIGN(
          std::string bytes,
          tuf::sign_timestamp(v, expires, tuf::describe(new_snapshot.bytes, new_snapshot.version),
                              ts_keys));
      DROVER_TRY(write_file(fs, path("timestamp.json"), bytes));
      new_timestamp = Served{v, expires, std::move(bytes), true};
    }
    // Committed: timestamp.json names the new files.
    targets = std::move(new_targets);
    delegated = std::move(new_delegated);
    snapshot_meta = std::move(meta);
    snapshot = std::move(new_snapshot);
    timestamp = std::move(new_timestamp);
    publish_view(/*usable=*/true);
    prune();
    if (config_error) {
      return Error{config_error->code,
                   config_error->message + " (signed with the delegations last read from it)"};
    }
    return ok_status();
  }

  // The entry a device finds for `target` (nullptr: none, or its search fails): the
  // top-level targets first, then each role delegated for the path in order, a role that is
  // not usable ending the search as it ends a device's, and a terminating one ending it too.
  // `expires`: when the role that lists it expires.
  const tuf::TargetFile* resolve(const std::string& target, Timestamp now, Timestamp* expires) const
      REQUIRES(mu) {
    *expires = targets.file.expires;
    if (auto it = targets.meta.targets.find(target); it != targets.meta.targets.end())
      return &it->second;
    if (!targets.meta.delegations) return nullptr;
    for (const tuf::DelegatedRole& d : targets.meta.delegations->roles) {
      if (!d.trusted_for(target)) continue;
      auto r = delegated.find(d.name);
      if (r == delegated.end() || !r->second.file.verified || now >= r->second.file.expires)
        return nullptr;
      if (auto it = r->second.meta.targets.find(target); it != r->second.meta.targets.end()) {
        *expires = std::min(*expires, r->second.file.expires);
        return &it->second;
      }
      if (d.terminating) return nullptr;
    }
    return nullptr;
  }

  void publish_view(bool usable) REQUIRES(mu) {
    auto next = std::make_shared<View>();
    next->roots = roots;
    next->timestamp = timestamp.bytes;
    next->files["snapshot"] = {snapshot.version, snapshot.bytes};
    next->files["targets"] = {targets.file.version, targets.file.bytes};
    for (const auto& [name, r] : delegated) next->files[name] = {r.file.version, r.file.bytes};
    if (usable) {
      std::vector<const std::string*> paths;  // every target any role lists
      for (const auto& entry : targets.meta.targets) paths.push_back(&entry.first);
      for (const auto& [name, r] : delegated) {
        for (const auto& entry : r.meta.targets) paths.push_back(&entry.first);
      }
      const Timestamp now = clock.now();
      for (const std::string* target : paths) {
        Timestamp expires{};
        const tuf::TargetFile* file = resolve(*target, now, &expires);
        if (file == nullptr) continue;
        const auto hash = file->hashes.find("sha256");
        // Until the first of the files a device reads to find it expires.
        expires = std::min({expires, snapshot.expires, timestamp.expires});
        next->listed.emplace(
            *target, View::Signed{file->length,
                                  hash == file->hashes.end() ? "" : security::to_hex(hash->second),
                                  file->custom, expires});
      }
    }
    MutexLock lock(view_mu);
    view = std::move(next);
  }

  // Older files of the roles served beyond the ones kept; a failure leaves a file behind.
  void prune() REQUIRES(mu) {
    auto names = fs.list(metadata_dir(dir));
    if (!names.ok()) return;
    std::map<std::string, int64_t, std::less<>> served{{"snapshot", snapshot.version},
                                                       {"targets", targets.file.version}};
    for (const auto& [name, r] : delegated) served[name] = r.file.version;
    for (const std::string& n : *names) {
      const auto split = split_versioned(n);
      if (!split) continue;
      const auto role = served.find(split->second);
      if (role != served.end() &&
          split->first + static_cast<int64_t>(options.keep_versions) <= role->second)
        (void)fs.remove(path(n));
    }
  }
};

UpdateRepository::UpdateRepository(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
UpdateRepository::~UpdateRepository() = default;

Result<std::unique_ptr<UpdateRepository>> UpdateRepository::open(FileSystem& fs, std::string dir,
                                                                 Clock& clock,
                                                                 UpdateRepositoryOptions options) {
  DROVER_TRY_ASSIGN(const std::vector<std::string> names, list_metadata(fs, dir));
  auto impl = std::make_unique<Impl>(fs, std::move(dir), clock, options);
  {
    MutexLock lock(impl->mu);
    DROVER_TRY_ASSIGN(auto chain, load_roots(fs, impl->dir, names));
    impl->root = std::move(chain.first);
    impl->roots = std::move(chain.second);
    DROVER_TRY_ASSIGN(impl->keys, load_keys(fs, impl->dir));
    DROVER_TRY_ASSIGN(impl->configured, load_delegations(fs, impl->dir));
    DROVER_TRY(impl->load_served(names));
    // Served as found until the first publish() (which may sign anew); targets that no
    // longer verify sign nothing.
    impl->publish_view(impl->targets.file.verified);
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
  if (const auto split = split_versioned(file)) {
    const auto [version, role] = *split;
    if (role == "root") {
      // Only the roots taken: one `drover keys rotate-root` just wrote is served once this
      // server signs under it, so no device trusts a root before its files are signed for it.
      if (version <= static_cast<int64_t>(view->roots.size()))
        return view->roots[static_cast<size_t>(version - 1)];
    } else if (auto served = view->files.find(role); served != view->files.end()) {
      if (version == served->second.version) return served->second.bytes;
      if (version < served->second.version) return impl_->fs.read(impl_->path(file));
    }
  }
  return not_found("no metadata file " + security::printable(file));
}

bool UpdateRepository::is_signed(const Artifact& a) const {
  const std::shared_ptr<const Impl::View> view = impl_->current();
  auto it = view->listed.find(target_path(a));
  return it != view->listed.end() && it->second.length == a.size_bytes &&
         it->second.sha256 == a.sha256 && it->second.custom == target_custom(a) &&
         impl_->clock.now() < it->second.expires;
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
  const Timestamp now = i.clock.now();
  RepositoryState out;
  out.signed_targets = i.current()->listed.size();
  for (const std::string role : {"root", "targets", "snapshot", "timestamp"}) {
    RepositoryState::Role r;
    r.name = role;
    r.key_ids = i.root.roles.at(role).keyids;
    r.threshold = i.root.roles.at(role).threshold;
    r.online_keys = i.online_keys(r.key_ids);
    const Impl::Served* s = role == "root"       ? nullptr
                            : role == "targets"  ? &i.targets.file
                            : role == "snapshot" ? &i.snapshot
                                                 : &i.timestamp;
    r.version = s == nullptr ? i.root.version : s->version;
    r.expires = s == nullptr ? i.root.expires : s->expires;
    r.valid = s == nullptr || (s->version > 0 && s->verified && now < s->expires);
    out.roles.push_back(std::move(r));
  }
  // Delegated roles: those the served targets delegate to, then those configured only.
  const std::optional<tuf::Delegations>& served = i.targets.meta.delegations;
  std::vector<tuf::DelegatedRole> roles =
      served ? served->roles : std::vector<tuf::DelegatedRole>{};
  for (const tuf::DelegationSpec& d : i.configured) {
    if (find_role(served, d.name) == nullptr) roles.push_back(as_delegated_role(d));
  }
  for (const tuf::DelegatedRole& d : roles) {
    RepositoryState::Role r;
    r.name = d.name;
    r.key_ids = d.keys.keyids;
    r.threshold = d.keys.threshold;
    r.online_keys = i.online_keys(r.key_ids);
    r.paths = d.paths;
    r.terminating = d.terminating;
    const auto configured = std::find_if(i.configured.begin(), i.configured.end(),
                                         [&](const auto& c) { return c.name == d.name; });
    const bool in_targets = find_role(served, d.name) != nullptr;
    r.delegation = configured == i.configured.end() ? RepositoryState::Delegation::kRemoved
                   : in_targets && same_delegation(d, *configured)
                       ? RepositoryState::Delegation::kServed
                       : RepositoryState::Delegation::kPending;
    if (auto f = i.delegated.find(d.name); f != i.delegated.end()) {
      r.version = f->second.file.version;
      r.expires = f->second.file.expires;
      r.valid = in_targets && f->second.file.verified && now < f->second.file.expires;
    }
    out.roles.push_back(std::move(r));
  }
  return out;
}

bool RepositoryState::Role::signed_offline() const {
  return name == "root" || ((name == "targets" || delegation != Delegation::kNone) &&
                            static_cast<int>(online_keys) < threshold);
}

}  // namespace drover
