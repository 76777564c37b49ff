// The in-memory Store: ordered maps of plain records behind one mutex (devices and
// deployments with a hash index beside them). Used by tests and by
// the million-device simulation, so records are kept by value (no documents, no indirection)
// and the deployments of one rollout are a contiguous range of the deployments map.
#include <algorithm>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/flat_index.h"
#include "base/mutex.h"
#include "base/random.h"
#include "store/store.h"

namespace drover {
namespace {

// Orders (string, string) keys and lets lookups use string_views without building strings.
struct PairKeyLess {
  using is_transparent = void;

  template <typename A, typename B>
  bool operator()(const A& a, const B& b) const {
    return view(a) < view(b);
  }

 private:
  template <typename P>
  static std::pair<std::string_view, std::string_view> view(const P& p) {
    return {p.first, p.second};
  }
};

using PairKey = std::pair<std::string, std::string>;
using ViewKey = std::pair<std::string_view, std::string_view>;

template <typename Map>
auto find_value(const Map& map, const auto& key) -> std::optional<typename Map::mapped_type> {
  auto it = map.find(key);
  if (it == map.end()) return std::nullopt;
  return it->second;
}

template <typename T>
std::optional<T> found(const T* value) {
  if (value == nullptr) return std::nullopt;
  return *value;
}

template <typename Map>
std::vector<typename Map::mapped_type> all_values(const Map& map) {
  std::vector<typename Map::mapped_type> out;
  out.reserve(map.size());
  for (const auto& [key, value] : map) out.push_back(value);
  return out;
}

// An ordered map (listing goes in key order) with a flat hash index beside it: the point
// reads and writes of the check-in path would otherwise walk some twenty tree levels, each a
// cache miss, at a million records. std::map nodes never move, so the index points at them.
// Erasing is rare (a device whose enrollment expired): the index is rebuilt then.
template <typename Key, typename Value, typename Less, typename Keys>
class IndexedMap {
 public:
  using Map = std::map<Key, Value, Less>;
  using Entry = typename Map::value_type;

  const Map& map() const { return map_; }

  template <typename View>
  const Value* find(const View& key) const {
    const Entry* found = nullptr;
    index_.find(Keys::hash(key), [&](uint64_t p) {
      // The index keeps each entry's address (entries never move).
      const auto* e = reinterpret_cast<const Entry*>(p);  // NOLINT(performance-no-int-to-ptr)
      if (!Keys::equal(e->first, key)) return false;
      found = e;
      return true;
    });
    return found == nullptr ? nullptr : &found->second;
  }

  // Inserts or replaces a batch of records. A batch in key order (a rollout's deployments, a
  // provisioned fleet) is placed by hint, each new key right after the one before.
  template <typename Batch, typename KeyOf>
  void upsert_all(const Batch& batch, KeyOf key_of) {
    index_.reserve(index_.size() + batch.size());
    auto last = map_.end();
    for (const Value& v : batch) {
      Key key = key_of(v);
      // Strictly between the previous key and its successor: new, and that is where it goes.
      const bool in_order = last != map_.end() && less_(last->first, key) &&
                            (std::next(last) == map_.end() || less_(key, std::next(last)->first));
      if (!in_order) {
        if (auto* existing = const_cast<Value*>(find(Keys::view(key)))) {
          *existing = v;
          continue;
        }
      }
      const uint64_t h = Keys::hash(Keys::view(key));
      last = in_order ? map_.emplace_hint(std::next(last), std::move(key), v)
                      : map_.emplace(std::move(key), v).first;
      index_.insert(h, reinterpret_cast<uint64_t>(&*last));
    }
  }

  // Erases the records under `keys` that exist. The flat index has no erase: it is rebuilt,
  // once, in O(records).
  void erase_all(const std::vector<Key>& keys) {
    bool erased = false;
    for (const Key& k : keys) erased |= map_.erase(k) > 0;
    if (!erased) return;
    index_.clear();
    index_.reserve(map_.size());
    for (const Entry& e : map_)
      index_.insert(Keys::hash(Keys::view(e.first)), reinterpret_cast<uint64_t>(&e));
  }

 private:
  Map map_;
  FlatIndex index_;
  Less less_;
};

struct IdKeys {
  static std::string_view view(const std::string& k) { return k; }
  static uint64_t hash(std::string_view k) { return FlatIndex::hash(k); }
  static bool equal(const std::string& a, std::string_view b) { return a == b; }
};

struct PairKeys {
  static ViewKey view(const PairKey& k) { return {k.first, k.second}; }
  static uint64_t hash(const ViewKey& k) {
    return mix64(FlatIndex::hash(k.first) * 0x9e3779b97f4a7c15ULL ^ FlatIndex::hash(k.second));
  }
  static bool equal(const PairKey& a, const ViewKey& b) {
    return a.first == b.first && a.second == b.second;
  }
};

// Thread-safe: every method takes mu_, so a batch is atomic for concurrent readers.
class MemoryStore final : public Store {
 public:
  Status apply(const WriteBatch& batch) override {
    DROVER_TRY(check_keys(batch));
    MutexLock lock(mu_);
    devices_.upsert_all(batch.devices, [](const Device& d) { return d.id; });
    for (const auto& s : batch.sites) sites_.insert_or_assign(s.name, s);
    for (const auto& p : batch.profiles) profiles_.insert_or_assign(p.device_type, p);
    for (const auto& a : batch.artifacts)
      artifacts_.insert_or_assign(PairKey{a.name, a.version}, a);
    for (const auto& r : batch.rollouts) rollouts_.insert_or_assign(r.id, r);
    deployments_.upsert_all(batch.deployments, [](const Deployment& d) {
      return PairKey{d.rollout_id, d.device_id};
    });
    for (const auto& t : batch.api_tokens) api_tokens_.insert_or_assign(t.id, t);
    for (const auto& t : batch.enrollment_tokens) enrollment_tokens_.insert_or_assign(t.id, t);
    for (const auto& a : batch.alerts) alerts_.insert_or_assign(a.id, a);
    for (const auto& c : batch.configs) configs_[c.device_type].insert_or_assign(c.version, c);
    for (const auto& c : batch.commands) {
      auto [it, added] = commands_.insert_or_assign(c.id, c);
      if (added) commands_by_device_[c.device_id].push_back(c.id);
    }
    for (const auto& s : batch.steps) {
      // The key is held once, by the map; the steps keep only what differs.
      auto& history = steps_[PairKey{s.rollout_id, s.device_id}];
      history.push_back(s);
      history.back().rollout_id.clear();
      history.back().device_id.clear();
    }
    devices_.erase_all(batch.removed_devices);
    for (const auto& h : batch.held_conditions)
      held_.insert_or_assign(PairKey{h.device_id, h.rule}, h);
    for (const auto& key : batch.removed_held_conditions) held_.erase(key);
    return ok_status();
  }

  Result<std::optional<Device>> get_device(std::string_view id) override {
    MutexLock lock(mu_);
    return found(devices_.find(id));
  }
  Result<std::optional<DeviceProfile>> get_profile(std::string_view device_type) override {
    MutexLock lock(mu_);
    return find_value(profiles_, device_type);
  }
  Result<std::vector<DeviceProfile>> list_profiles() override {
    MutexLock lock(mu_);
    return all_values(profiles_);
  }
  Result<std::optional<Site>> get_site(std::string_view name) override {
    MutexLock lock(mu_);
    return find_value(sites_, name);
  }
  Result<std::optional<Artifact>> get_artifact(std::string_view name,
                                               std::string_view version) override {
    MutexLock lock(mu_);
    return find_value(artifacts_, ViewKey{name, version});
  }
  Result<std::optional<Rollout>> get_rollout(std::string_view id) override {
    MutexLock lock(mu_);
    return find_value(rollouts_, id);
  }
  Result<std::optional<Deployment>> get_deployment(std::string_view rollout_id,
                                                   std::string_view device_id) override {
    MutexLock lock(mu_);
    return found(deployments_.find(ViewKey{rollout_id, device_id}));
  }

  Result<std::optional<ApiToken>> get_api_token(std::string_view id) override {
    MutexLock lock(mu_);
    return find_value(api_tokens_, id);
  }
  Result<std::optional<EnrollmentToken>> get_enrollment_token(std::string_view id) override {
    MutexLock lock(mu_);
    return find_value(enrollment_tokens_, id);
  }

  Result<std::vector<Device>> list_devices() override {
    MutexLock lock(mu_);
    return all_values(devices_.map());
  }
  Result<std::vector<Site>> list_sites() override {
    MutexLock lock(mu_);
    return all_values(sites_);
  }
  Result<std::vector<Artifact>> list_artifacts() override {
    MutexLock lock(mu_);
    return all_values(artifacts_);
  }
  Result<std::vector<Rollout>> list_rollouts() override {
    MutexLock lock(mu_);
    return all_values(rollouts_);
  }

  // Visits only this rollout's range: (rollout_id, "") is the smallest key it can have.
  Result<std::vector<Deployment>> list_deployments(std::string_view rollout_id) override {
    MutexLock lock(mu_);
    std::vector<Deployment> out;
    const auto& all = deployments_.map();
    for (auto it = all.lower_bound(ViewKey{rollout_id, std::string_view{}});
         it != all.end() && it->first.first == rollout_id; ++it) {
      out.push_back(it->second);
    }
    return out;
  }

  Result<DeploymentPage> page_deployments(std::string_view rollout_id,
                                          std::optional<DeploymentState> state,
                                          std::string_view after, size_t limit) override {
    MutexLock lock(mu_);
    DeploymentPage page;
    const auto& all = deployments_.map();
    for (auto it = all.lower_bound(ViewKey{rollout_id, std::string_view{}});
         it != all.end() && it->first.first == rollout_id; ++it) {
      const Deployment& d = it->second;
      if (state && d.state != *state) continue;
      ++page.matched;
      if (d.device_id <= after) continue;
      if (page.rows.size() < limit) {
        page.rows.push_back(d);
      } else {
        page.more = true;
      }
    }
    return page;
  }

  Result<std::vector<ApiToken>> list_api_tokens() override {
    MutexLock lock(mu_);
    return all_values(api_tokens_);
  }
  Result<std::optional<Command>> get_command(std::string_view id) override {
    MutexLock lock(mu_);
    return find_value(commands_, id);
  }
  Result<std::vector<Command>> list_commands(std::string_view device_id, size_t limit,
                                             Timestamp before,
                                             std::string_view before_id) override {
    MutexLock lock(mu_);
    std::vector<Command> out;
    auto ids = commands_by_device_.find(device_id);
    if (ids == commands_by_device_.end()) return out;
    for (const std::string& id : ids->second) {
      const Command& c = commands_.find(id)->second;
      if (before == Timestamp{} || c.created_at < before ||
          (c.created_at == before && c.id < before_id)) {
        out.push_back(c);
      }
    }
    std::sort(out.begin(), out.end(), [](const Command& a, const Command& b) {
      return a.created_at != b.created_at ? a.created_at > b.created_at : a.id > b.id;
    });
    if (out.size() > limit) out.resize(limit);
    return out;
  }
  Result<std::vector<Command>> list_open_commands() override {
    MutexLock lock(mu_);
    std::vector<Command> out;
    for (const auto& [id, c] : commands_) {
      if (is_open(c.state)) out.push_back(c);
    }
    return out;
  }
  Result<std::optional<Alert>> get_alert(std::string_view id) override {
    MutexLock lock(mu_);
    return find_value(alerts_, id);
  }
  Result<std::vector<Alert>> list_alerts(const AlertQuery& q) override {
    MutexLock lock(mu_);
    std::vector<Alert> out;
    for (const auto& [id, a] : alerts_) {
      if (!q.device_id.empty() && a.device_id != q.device_id) continue;
      if (q.unresolved_only && a.state == AlertState::kResolved) continue;
      if (q.unnotified_only && a.notified_version >= a.version) continue;
      if (q.before != Timestamp{} &&
          !(a.opened_at < q.before || (a.opened_at == q.before && a.id < q.before_id))) {
        continue;
      }
      out.push_back(a);
    }
    std::sort(out.begin(), out.end(), [](const Alert& a, const Alert& b) {
      return a.opened_at != b.opened_at ? a.opened_at > b.opened_at : a.id > b.id;
    });
    if (out.size() > q.limit) out.resize(q.limit);
    return out;
  }
  Result<std::optional<ConfigDocument>> get_config(std::string_view device_type,
                                                   uint64_t version) override {
    MutexLock lock(mu_);
    auto type = configs_.find(device_type);
    if (type == configs_.end() || type->second.empty()) return std::optional<ConfigDocument>();
    if (version == 0) return std::optional<ConfigDocument>(type->second.rbegin()->second);
    auto it = type->second.find(version);
    if (it == type->second.end()) return std::optional<ConfigDocument>();
    return std::optional<ConfigDocument>(it->second);
  }
  Result<std::vector<ConfigDocument>> list_configs(std::string_view device_type) override {
    MutexLock lock(mu_);
    std::vector<ConfigDocument> out;
    auto type = configs_.find(device_type);
    if (type == configs_.end()) return out;
    for (const auto& [version, doc] : type->second) out.push_back(doc);
    return out;
  }
  Result<std::vector<HeldCondition>> list_held_conditions() override {
    MutexLock lock(mu_);
    return all_values(held_);
  }
  Result<std::vector<EnrollmentToken>> list_enrollment_tokens() override {
    MutexLock lock(mu_);
    return all_values(enrollment_tokens_);
  }

  Result<std::vector<DeploymentStep>> list_deployment_steps(std::string_view rollout_id,
                                                            std::string_view device_id) override {
    MutexLock lock(mu_);
    auto it = steps_.find(ViewKey{rollout_id, device_id});
    if (it == steps_.end()) return std::vector<DeploymentStep>{};
    std::vector<DeploymentStep> out = it->second;
    for (DeploymentStep& s : out) {
      s.rollout_id = rollout_id;
      s.device_id = device_id;
    }
    return out;
  }

  Status delete_artifact(std::string_view name, std::string_view version) override {
    MutexLock lock(mu_);
    auto it = artifacts_.find(ViewKey{name, version});
    if (it == artifacts_.end()) {
      return not_found("artifact '" + std::string(name) + "@" + std::string(version) +
                       "' does not exist");
    }
    artifacts_.erase(it);
    return ok_status();
  }

  Result<uint64_t> next_sequence(std::string_view name) override {
    MutexLock lock(mu_);
    auto it = sequences_.find(name);
    if (it == sequences_.end()) it = sequences_.emplace(std::string(name), 0).first;
    return ++it->second;
  }

  Status append_audit(const AuditRecord& record) override {
    MutexLock lock(mu_);
    if (record.index != audit_.size()) {
      return conflict("the audit log has " + std::to_string(audit_.size()) + " entries; entry " +
                      std::to_string(record.index) + " cannot be appended");
    }
    audit_.push_back(record);
    return ok_status();
  }
  Result<uint64_t> audit_size() override {
    MutexLock lock(mu_);
    return uint64_t{audit_.size()};
  }
  Result<std::vector<AuditRecord>> read_audit(uint64_t from, size_t limit) override {
    MutexLock lock(mu_);
    std::vector<AuditRecord> out;
    for (uint64_t i = from; i < audit_.size() && out.size() < limit; ++i) out.push_back(audit_[i]);
    return out;
  }

 private:
  Mutex mu_{LockLevel::kStoreWriter};
  IndexedMap<std::string, Device, std::less<>, IdKeys> devices_ GUARDED_BY(mu_);
  std::map<std::string, Site, std::less<>> sites_ GUARDED_BY(mu_);
  std::map<std::string, DeviceProfile, std::less<>> profiles_ GUARDED_BY(mu_);
  std::map<PairKey, Artifact, PairKeyLess> artifacts_ GUARDED_BY(mu_);
  std::map<std::string, Rollout, std::less<>> rollouts_ GUARDED_BY(mu_);
  IndexedMap<PairKey, Deployment, PairKeyLess, PairKeys> deployments_ GUARDED_BY(mu_);
  std::map<std::string, uint64_t, std::less<>> sequences_ GUARDED_BY(mu_);
  std::map<std::string, ApiToken, std::less<>> api_tokens_ GUARDED_BY(mu_);
  std::map<std::string, EnrollmentToken, std::less<>> enrollment_tokens_ GUARDED_BY(mu_);
  std::map<PairKey, std::vector<DeploymentStep>, PairKeyLess> steps_ GUARDED_BY(mu_);
  std::map<std::string, Command, std::less<>> commands_ GUARDED_BY(mu_);
  std::map<std::string, Alert, std::less<>> alerts_ GUARDED_BY(mu_);
  std::map<std::string, std::vector<std::string>, std::less<>> commands_by_device_ GUARDED_BY(mu_);
  std::map<PairKey, HeldCondition, PairKeyLess> held_ GUARDED_BY(mu_);
  std::map<std::string, std::map<uint64_t, ConfigDocument>, std::less<>> configs_ GUARDED_BY(mu_);
  std::vector<AuditRecord> audit_ GUARDED_BY(mu_);
};

}  // namespace

// Never fails. The store is thread-safe and empty.
std::unique_ptr<Store> make_memory_store() { return std::make_unique<MemoryStore>(); }

}  // namespace drover
