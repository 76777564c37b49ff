// The in-memory Store: ordered maps of plain records behind one mutex. Used by tests and by
// the million-device simulation, so records are kept by value (no documents, no indirection)
// and the deployments of one rollout are a contiguous range of the deployments map.
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

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

template <typename Map>
std::vector<typename Map::mapped_type> all_values(const Map& map) {
  std::vector<typename Map::mapped_type> out;
  out.reserve(map.size());
  for (const auto& [key, value] : map) out.push_back(value);
  return out;
}

// Thread-safe: every method takes mu_, so a batch is atomic for concurrent readers.
class MemoryStore final : public Store {
 public:
  Status apply(const WriteBatch& batch) override {
    DROVER_TRY(check_keys(batch));
    std::lock_guard lock(mu_);
    for (const auto& d : batch.devices) devices_.insert_or_assign(d.id, d);
    for (const auto& s : batch.sites) sites_.insert_or_assign(s.name, s);
    for (const auto& a : batch.artifacts)
      artifacts_.insert_or_assign(PairKey{a.name, a.version}, a);
    for (const auto& r : batch.rollouts) rollouts_.insert_or_assign(r.id, r);
    for (const auto& d : batch.deployments) {
      deployments_.insert_or_assign(PairKey{d.rollout_id, d.device_id}, d);
    }
    return ok_status();
  }

  Result<std::optional<Device>> get_device(std::string_view id) override {
    std::lock_guard lock(mu_);
    return find_value(devices_, id);
  }
  Result<std::optional<Site>> get_site(std::string_view name) override {
    std::lock_guard lock(mu_);
    return find_value(sites_, name);
  }
  Result<std::optional<Artifact>> get_artifact(std::string_view name,
                                               std::string_view version) override {
    std::lock_guard lock(mu_);
    return find_value(artifacts_, ViewKey{name, version});
  }
  Result<std::optional<Rollout>> get_rollout(std::string_view id) override {
    std::lock_guard lock(mu_);
    return find_value(rollouts_, id);
  }
  Result<std::optional<Deployment>> get_deployment(std::string_view rollout_id,
                                                   std::string_view device_id) override {
    std::lock_guard lock(mu_);
    return find_value(deployments_, ViewKey{rollout_id, device_id});
  }

  Result<std::vector<Device>> list_devices() override {
    std::lock_guard lock(mu_);
    return all_values(devices_);
  }
  Result<std::vector<Site>> list_sites() override {
    std::lock_guard lock(mu_);
    return all_values(sites_);
  }
  Result<std::vector<Artifact>> list_artifacts() override {
    std::lock_guard lock(mu_);
    return all_values(artifacts_);
  }
  Result<std::vector<Rollout>> list_rollouts() override {
    std::lock_guard lock(mu_);
    return all_values(rollouts_);
  }

  // Visits only this rollout's range: (rollout_id, "") is the smallest key it can have.
  Result<std::vector<Deployment>> list_deployments(std::string_view rollout_id) override {
    std::lock_guard lock(mu_);
    std::vector<Deployment> out;
    for (auto it = deployments_.lower_bound(ViewKey{rollout_id, std::string_view{}});
         it != deployments_.end() && it->first.first == rollout_id; ++it) {
      out.push_back(it->second);
    }
    return out;
  }

  Status delete_artifact(std::string_view name, std::string_view version) override {
    std::lock_guard lock(mu_);
    auto it = artifacts_.find(ViewKey{name, version});
    if (it == artifacts_.end()) {
      return not_found("artifact '" + std::string(name) + "@" + std::string(version) +
                       "' does not exist");
    }
    artifacts_.erase(it);
    return ok_status();
  }

  Result<uint64_t> next_sequence(std::string_view name) override {
    std::lock_guard lock(mu_);
    auto it = sequences_.find(name);
    if (it == sequences_.end()) it = sequences_.emplace(std::string(name), 0).first;
    return ++it->second;
  }

 private:
  std::mutex mu_;
  std::map<std::string, Device, std::less<>> devices_;      // GUARDED_BY(mu_)
  std::map<std::string, Site, std::less<>> sites_;          // GUARDED_BY(mu_)
  std::map<PairKey, Artifact, PairKeyLess> artifacts_;      // GUARDED_BY(mu_)
  std::map<std::string, Rollout, std::less<>> rollouts_;    // GUARDED_BY(mu_)
  std::map<PairKey, Deployment, PairKeyLess> deployments_;  // GUARDED_BY(mu_)
  std::map<std::string, uint64_t, std::less<>> sequences_;  // GUARDED_BY(mu_)
};

}  // namespace

// Never fails. The store is thread-safe and empty.
std::unique_ptr<Store> make_memory_store() { return std::make_unique<MemoryStore>(); }

}  // namespace drover
