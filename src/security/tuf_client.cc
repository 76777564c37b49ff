#include "security/tuf_client.h"

#include <algorithm>
#include <filesystem>
#include <vector>

#include "base/try_assign.h"
#include "base/units.h"
#include "security/canonical_json.h"
#include "security/crypto.h"

namespace drover::security::tuf {
namespace {

Error failed(std::string message) { return {ErrorCode::kFailedPrecondition, std::move(message)}; }

// Bytes a file name may take before what is added to it: ".json" and a temporary ".tmp".
constexpr size_t kMetadataNameBytes = 255 - 9;
constexpr size_t kTargetNameBytes = 255 - 4;

// A metadata file is named by its role, on disk and in URLs; a delegated role's name is
// encoded into one file name segment, so no name reaches outside the metadata directory.
// (The snapshot lists it by its plain name.)
Result<std::string> file_of(const std::string& role) {
  DROVER_TRY_ASSIGN(std::string name, encode_name(role, kMetadataNameBytes));
  return name + ".json";
}

// The URL form of a target path: each segment percent-encoded, the slashes kept.
std::string url_path(std::string_view path) {
  std::string out;
  size_t start = 0;
  while (true) {
    const size_t slash = path.find('/', start);
    const std::string_view segment = path.substr(start, slash - start);
    for (char c : segment) {
      const bool plain = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                         (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '~' || c == '.';
      if (plain) {
        out += c;
      } else {
        static constexpr char kHex[] = "0123456789ABCDEF";
        const auto u = static_cast<unsigned char>(c);
        out += '%';
        out += kHex[u >> 4];
        out += kHex[u & 15];
      }
    }
    if (slash == std::string_view::npos) break;
    out += '/';
    start = slash + 1;
  }
  return out;
}

}  // namespace

Status Updater::init(FileSystem& fs, const std::string& metadata_dir, std::string_view root) {
  DROVER_TRY_ASSIGN(Metadata m, parse_metadata(root, "root"));
  DROVER_TRY(verify_signatures(m, m.keys, m.roles.at("root"), "root"));
  DROVER_TRY(fs.make_dir(metadata_dir));
  // Metadata trusted under another root has nothing to do with this one.
  if (auto files = fs.list(metadata_dir); files.ok()) {
    for (const std::string& f : *files) {
      if (f.size() > 5 && f.compare(f.size() - 5, 5, ".json") == 0 && f != "root.json") {
        DROVER_TRY(fs.remove((std::filesystem::path(metadata_dir) / f).string()));
      }
    }
  }
  return write_atomically(fs, (std::filesystem::path(metadata_dir) / "root.json").string(), root);
}

Result<Updater> Updater::open(ClientOptions options, MetadataFetcher& fetcher, Clock& clock,
                              FileSystem& fs) {
  const std::string path = (std::filesystem::path(options.metadata_dir) / "root.json").string();
  auto bytes = fs.read(path);
  if (!bytes.ok()) {
    if (bytes.error().code == ErrorCode::kNotFound)
      return not_found("no trusted root in " + options.metadata_dir + " (initialise it first)");
    return bytes.error();
  }
  auto root = parse_metadata(*bytes, "root", {.max_bytes = options.limits.root_max_length});
  if (!root.ok()) return Error{root.error().code, path + ": " + root.error().message};
  DROVER_TRY(verify_signatures(*root, root->keys, root->roles.at("root"), "root"));
  if (!options.metadata_url.empty() && options.metadata_url.back() != '/')
    options.metadata_url += '/';
  return Updater(std::move(options), fetcher, clock, fs, std::move(*root));
}

Updater::Updater(ClientOptions options, MetadataFetcher& fetcher, Clock& clock, FileSystem& fs,
                 Metadata root)
    : o_(std::move(options)),
      fetcher_(&fetcher),
      clock_(&clock),
      fs_(&fs),
      root_(std::move(root)) {}

std::string Updater::path_of(const std::string& file) const {
  return (std::filesystem::path(o_.metadata_dir) / file).string();
}

Status Updater::fetch_checked(const std::string& url, uint64_t max_length, StreamCheck& check,
                              const MetadataFetcher::Sink& sink) {
  const Timestamp start = clock_->now();
  const uint64_t rate = std::max<uint64_t>(1, o_.limits.min_bytes_per_second);
  const Duration allowed = o_.limits.grace + Duration(static_cast<int64_t>(std::min<uint64_t>(
                                                 max_length / rate * 1000, uint64_t{1} << 50)));
  return fetcher_->fetch_to(url, [&](std::string_view piece) -> Status {
    if (clock_->now() - start > allowed) {
      return io_error("slower than " + std::to_string(rate) +
                      " bytes a second (a slow-retrieval attack, or a poor link)");
    }
    if (auto ok = check.update(piece); !ok.ok()) {
      return Error{ErrorCode::kResourceExhausted,
                   "more than the " + std::to_string(max_length) + " bytes allowed"};
    }
    return sink(piece);
  });
}

Result<std::string> Updater::fetch(const std::string& file, uint64_t max_length) {
  std::string body;
  StreamCheck limit(max_length, {});
  Status got = fetch_checked(o_.metadata_url + file, max_length, limit,
                             [&](std::string_view piece) -> Status {
                               body.append(piece);
                               return ok_status();
                             });
  if (!got.ok()) return Error{got.error().code, file + ": " + got.error().message};
  return body;
}

Status Updater::persist(const std::string& file, std::string_view bytes) {
  return write_atomically(*fs_, path_of(file), bytes);
}

Status Updater::check_unexpired(const Metadata& m, std::string_view role) const {
  if (cycle_start_ < m.expires) return ok_status();
  return failed(std::string(role) + " metadata version " + std::to_string(m.version) +
                " expired at " + format_utc_timestamp(m.expires) +
                " (a freeze attack, or a repository that stopped signing)");
}

std::optional<Metadata> Updater::local(const std::string& file, const std::string& type,
                                       const std::map<std::string, PublicKey>& keys,
                                       const RoleKeys& role_keys) {
  auto bytes = fs_->read(path_of(file));
  if (!bytes.ok()) return std::nullopt;
  auto m = parse_metadata(*bytes, type);
  if (!m.ok() || !verify_signatures(*m, keys, role_keys, type).ok()) return std::nullopt;
  return std::move(*m);
}

Status Updater::refresh() {
  cycle_start_ = clock_->now();
  timestamp_.reset();
  snapshot_.reset();
  targets_.reset();
  delegated_.clear();
  DROVER_TRY(update_root());
  DROVER_TRY(update_timestamp());
  DROVER_TRY(update_snapshot());
  auto targets = load_targets("targets", root_.keys, root_.roles.at("targets"));
  if (!targets.ok()) return targets.error();
  return ok_status();
}

Status Updater::update_root() {
  for (int i = 0; i < o_.limits.max_root_rotations; ++i) {
    const int64_t next = root_.version + 1;
    auto bytes = fetch(std::to_string(next) + ".root.json", o_.limits.root_max_length);
    if (!bytes.ok()) {
      if (bytes.error().code == ErrorCode::kNotFound) break;  // the newest root is trusted
      return bytes.error();
    }
    DROVER_TRY_ASSIGN(Metadata m,
                      parse_metadata(*bytes, "root", {.max_bytes = o_.limits.root_max_length}));
    // Both the keys trusted so far and the new root's own keys must have signed it.
    DROVER_TRY(verify_signatures(m, root_.keys, root_.roles.at("root"), "root"));
    DROVER_TRY(verify_signatures(m, m.keys, m.roles.at("root"), "new root"));
    if (m.version != next) {
      return failed(std::to_string(next) + ".root.json holds root version " +
                    std::to_string(m.version) + ", not " + std::to_string(next));
    }
    DROVER_TRY(persist("root.json", *bytes));
    root_ = std::move(m);
  }
  return check_unexpired(root_, "root");
}

Status Updater::update_timestamp() {
  const RoleKeys& keys = root_.roles.at("timestamp");
  std::optional<Metadata> trusted = local("timestamp.json", "timestamp", root_.keys, keys);
  DROVER_TRY_ASSIGN(std::string bytes, fetch("timestamp.json", o_.limits.timestamp_max_length));
  DROVER_TRY_ASSIGN(Metadata m, parse_metadata(bytes, "timestamp"));
  DROVER_TRY(verify_signatures(m, root_.keys, keys, "timestamp"));
  if (trusted) {
    if (m.version < trusted->version) {
      return failed("timestamp version " + std::to_string(m.version) + " is older than the " +
                    std::to_string(trusted->version) + " trusted (a rollback attack)");
    }
    const int64_t named = m.meta.at("snapshot.json").version;
    const int64_t was = trusted->meta.at("snapshot.json").version;
    if (named < was) {
      return failed("timestamp names snapshot version " + std::to_string(named) +
                    ", older than the " + std::to_string(was) + " trusted (a rollback attack)");
    }
    if (m.version == trusted->version) {
      // Nothing new; a different file under the same version is not taken either.
      DROVER_TRY(check_unexpired(*trusted, "timestamp"));
      timestamp_ = std::move(trusted);
      return ok_status();
    }
  }
  DROVER_TRY(check_unexpired(m, "timestamp"));
  DROVER_TRY(persist("timestamp.json", bytes));
  timestamp_ = std::move(m);
  return ok_status();
}

Status Updater::update_snapshot() {
  const MetaFile& named = timestamp_->meta.at("snapshot.json");
  const RoleKeys& keys = root_.roles.at("snapshot");
  std::optional<Metadata> trusted = local("snapshot.json", "snapshot", root_.keys, keys);
  if (trusted && trusted->version == named.version && check_unexpired(*trusted, "snapshot").ok()) {
    snapshot_ = std::move(trusted);  // already the one the timestamp names
    return ok_status();
  }
  const std::string file = root_.consistent_snapshot
                               ? std::to_string(named.version) + ".snapshot.json"
                               : std::string("snapshot.json");
  // A listed length is a promise, not a licence: no more than this client's limit is taken.
  if (named.length && *named.length > o_.limits.snapshot_max_length) {
    return failed("the timestamp lists a snapshot of " + std::to_string(*named.length) +
                  " bytes, more than the " + std::to_string(o_.limits.snapshot_max_length) +
                  " this client takes");
  }
  DROVER_TRY_ASSIGN(std::string bytes,
                    fetch(file, named.length.value_or(o_.limits.snapshot_max_length)));
  if (auto listed = check_length_and_hashes(bytes, named.length, named.hashes); !listed.ok())
    return failed(file + " is not the snapshot the timestamp lists: " + listed.error().message);
  DROVER_TRY_ASSIGN(Metadata m, parse_metadata(bytes, "snapshot"));
  DROVER_TRY(verify_signatures(m, root_.keys, keys, "snapshot"));
  if (trusted) {
    for (const auto& [role, was] : trusted->meta) {
      auto now = m.meta.find(role);
      if (now == m.meta.end())
        return failed("snapshot version " + std::to_string(m.version) + " drops " + role +
                      " (a rollback attack)");
      if (now->second.version < was.version) {
        return failed("snapshot version " + std::to_string(m.version) + " names " + role +
                      " version " + std::to_string(now->second.version) + ", older than the " +
                      std::to_string(was.version) + " trusted (a rollback attack)");
      }
    }
  }
  if (m.version != named.version) {
    return failed("snapshot version " + std::to_string(m.version) + " is not the " +
                  std::to_string(named.version) + " the timestamp names");
  }
  DROVER_TRY(check_unexpired(m, "snapshot"));
  DROVER_TRY(persist("snapshot.json", bytes));
  snapshot_ = std::move(m);
  return ok_status();
}

Result<const Metadata*> Updater::load_targets(const std::string& role,
                                              const std::map<std::string, PublicKey>& keys,
                                              const RoleKeys& role_keys) {
  if (role == "targets" && targets_) return &*targets_;
  if (auto it = delegated_.find(role); it != delegated_.end()) {
    // Loaded already, through another delegator: it must verify under this one's keys too.
    DROVER_TRY(verify_signatures(it->second, keys, role_keys, role));
    return &it->second;
  }
  DROVER_TRY_ASSIGN(std::string file, file_of(role));
  // A role delegated but missing from the snapshot, or listed but not served, is a broken
  // (or attacked) repository, not a target that does not exist.
  auto listed = snapshot_->meta.find(role + ".json");
  if (listed == snapshot_->meta.end())
    return failed("the snapshot does not list " + printable(role) + ".json");
  const MetaFile& named = listed->second;

  std::optional<Metadata> m = local(file, "targets", keys, role_keys);
  std::string bytes;
  if (!m || m->version != named.version || !check_unexpired(*m, role).ok()) {
    const std::string remote =
        root_.consistent_snapshot ? std::to_string(named.version) + "." + file : file;
    if (named.length && *named.length > o_.limits.targets_max_length) {
      return failed("the snapshot lists " + file + " of " + std::to_string(*named.length) +
                    " bytes, more than the " + std::to_string(o_.limits.targets_max_length) +
                    " this client takes");
    }
    auto got = fetch(remote, named.length.value_or(o_.limits.targets_max_length));
    if (!got.ok()) {
      if (got.error().code == ErrorCode::kNotFound)
        return failed(got.error().message + ", though the snapshot lists it");
      return got.error();
    }
    bytes = std::move(*got);
    if (auto ok = check_length_and_hashes(bytes, named.length, named.hashes); !ok.ok())
      return failed(remote + " is not the " + role + " the snapshot lists: " + ok.error().message);
    DROVER_TRY_ASSIGN(Metadata fetched, parse_metadata(bytes, "targets"));
    DROVER_TRY(verify_signatures(fetched, keys, role_keys, role));
    if (fetched.version != named.version) {
      return failed(role + " version " + std::to_string(fetched.version) + " is not the " +
                    std::to_string(named.version) + " the snapshot names");
    }
    DROVER_TRY(check_unexpired(fetched, role));
    DROVER_TRY(persist(file, bytes));
    m = std::move(fetched);
  }
  if (role == "targets") {
    targets_ = std::move(*m);
    return &*targets_;
  }
  return &delegated_.emplace(role, std::move(*m)).first->second;
}

Result<TargetInfo> Updater::find_target(std::string_view path) {
  if (!targets_) return failed("refresh() first: no trusted targets metadata");
  const std::string target(path);
  // (role, delegator) pairs still to visit; the top of the stack is visited next.
  struct Visit {
    std::string role, delegator;
  };
  std::vector<Visit> to_visit = {{"targets", "root"}};
  std::set<std::string> visited;  // by role name, as the specification's reference does
  int budget = o_.limits.max_delegations;
  while (budget > 0 && !to_visit.empty()) {
    Visit v = std::move(to_visit.back());
    to_visit.pop_back();
    if (!visited.insert(v.role).second) continue;  // a cycle, or a role reached twice
    --budget;
    const Metadata* m = nullptr;
    if (v.role == "targets") {
      m = &*targets_;
    } else {
      // Loaded with the keys its delegator gives it.
      const Metadata* parent = v.delegator == "targets" ? &*targets_ : &delegated_.at(v.delegator);
      const std::optional<DelegatedRole> d = parent->delegations->role(v.role);
      DROVER_CHECK(d.has_value());  // it was pushed from this very list
      DROVER_TRY_ASSIGN(m, load_targets(v.role, parent->delegations->keys, d->keys));
    }
    if (auto it = m->targets.find(target); it != m->targets.end())
      return TargetInfo{target, it->second, v.role};
    if (!m->delegations) continue;
    std::vector<Visit> children;
    for (const DelegatedRole& child : m->delegations->roles_for(target)) {
      children.push_back({child.name, v.role});
      if (child.terminating) {
        to_visit.clear();  // nothing else is searched: not the siblings, not above
        break;
      }
    }
    to_visit.insert(to_visit.end(), children.rbegin(), children.rend());
  }
  return not_found("no trusted role lists the target " + printable(target, 200));
}

std::string Updater::target_url(const TargetInfo& target, std::string_view base_url) const {
  std::string url(base_url);
  if (!url.empty() && url.back() != '/') url += '/';
  std::string path = target.path;
  if (root_.consistent_snapshot && !target.file.hashes.empty()) {
    auto hash = target.file.hashes.find("sha256");
    if (hash == target.file.hashes.end()) hash = target.file.hashes.begin();
    const size_t slash = path.rfind('/');
    const size_t at = slash == std::string::npos ? 0 : slash + 1;
    path.insert(at, to_hex(hash->second) + ".");
  }
  return url + url_path(path);
}

Status Updater::download_target(const TargetInfo& target, std::string_view base_url,
                                const std::string& target_dir) {
  auto name = encode_name(target.path, kTargetNameBytes);
  if (!name.ok()) return failed("target " + printable(target.path) + ": " + name.error().message);
  const std::string local = (std::filesystem::path(target_dir) / *name).string();
  const std::string partial = local + ".tmp";
  const uint64_t length = target.file.length;
  if (auto have = fs_->open_read(local); have.ok() && (*have)->size() == length) {
    // Already here, and the right bytes: not fetched again.
    StreamCheck check(length, target.file.hashes);
    bool readable = true;
    for (uint64_t at = 0; readable && at < length; at += 1 << 16) {
      auto piece =
          (*have)->read_at(at, static_cast<size_t>(std::min<uint64_t>(1 << 16, length - at)));
      readable = piece.ok() && check.update(*piece).ok();
    }
    if (readable && check.finish().ok()) return ok_status();
  }
  DROVER_TRY(fs_->make_dir(target_dir));
  DROVER_TRY(fs_->remove(partial));
  auto file = fs_->open_append(partial);
  if (!file.ok()) return file.error();
  StreamCheck check(length, target.file.hashes);
  Status got = fetch_checked(target_url(target, base_url), length, check,
                             [&](std::string_view piece) { return (*file)->append(piece); });
  Status checked = got.ok() ? check.finish() : got;
  if (checked.ok()) checked = (*file)->sync();
  file->reset();
  if (checked.ok()) checked = fs_->rename(partial, local);
  if (!checked.ok()) {
    (void)fs_->remove(partial);  // what was fetched is no use; the old file stays
    if (checked.error().code == ErrorCode::kInvalidArgument) {
      return failed("target " + printable(target.path) + " is not what " + printable(target.role) +
                    " lists: " + checked.error().message);
    }
    return Error{checked.error().code, printable(target.path) + ": " + checked.error().message};
  }
  return fs_->sync_dir(target_dir);
}

}  // namespace drover::security::tuf
