#include "sim/fleet_world.h"

#include <algorithm>
#include <charconv>
#include <cstring>
#include <set>
#include <utility>

namespace drover::sim {
namespace {

std::string pad(uint64_t n, int width) {
  std::string s = std::to_string(n);
  return s.size() >= static_cast<size_t>(width) ? s : std::string(width - s.size(), '0') + s;
}

template <typename T>
size_t pick_share(Rng& rng, const std::vector<T>& items) {
  double total = 0;
  for (const auto& i : items) total += i.share;
  double x = rng.uniform() * total;
  for (size_t k = 0; k < items.size(); ++k) {
    x -= items[k].share;
    if (x < 0) return k;
  }
  return items.size() - 1;
}

// A uniform draw in [0, 1) from a hash: a device's own draw, independent of every other.
double unit(uint64_t h) { return static_cast<double>(h >> 11) * 0x1.0p-53; }

}  // namespace

FleetWorld::FleetWorld(const Scenario& scenario, uint64_t seed, bool preflight, ManualClock& clock)
    : sc_(scenario),
      seed_(seed),
      preflight_(preflight),
      rng_(seed),
      clock_(clock),
      queue_(scenario.start.time_since_epoch().count()) {
  arrived_ = scenario.start;
}

// ---------------------------------------------------------------- the fleet

void FleetWorld::generate(uint32_t n, std::vector<Device>& out) {
  if (!sc_.fleet.empty()) {
    take_given(out);
    return;
  }
  for (const auto& g : sc_.site_groups) {
    const int width = std::max<int>(3, static_cast<int>(std::to_string(g.count).size()));
    for (uint32_t k = 1; k <= g.count; ++k) {
      sites_.push_back(Site{g.prefix + "-" + pad(k, width), g.time_zone, g.maintenance_windows});
      site_group_.push_back(g.prefix);
    }
  }
  for (const auto& q : sc_.quiet_hours) quiet_sets_.push_back(q.windows);
  std::map<std::string, uint16_t> rev_ids;
  id_width_ = std::max<int>(6, static_cast<int>(std::to_string(n).size()));
  Inventory initial = sc_.installed;
  std::sort(initial.begin(), initial.end(),
            [](const auto& a, const auto& b) { return a.component < b.component; });
  const uint32_t initial_id = intern(std::move(initial));
  devices_.resize(n);
  out.reserve(n);
  for (uint32_t i = 0; i < n; ++i) {
    const auto& type = sc_.device_types[pick_share(rng_, sc_.device_types)];
    const auto& rev = type.hardware_revisions[pick_share(rng_, type.hardware_revisions)];
    const auto site = static_cast<uint32_t>(rng_.below(sites_.size()));
    const auto conn = static_cast<uint16_t>(pick_share(rng_, sc_.connectivity));
    Device d;
    d.id = name_of(i).str();
    d.device_type = type.name;
    d.hardware_revision = rev.name;
    d.site = sites_[site].name;
    d.connectivity = sc_.connectivity[conn].name;
    d.installed = sc_.installed;
    uint8_t quiet = 0;
    if (!sc_.quiet_hours.empty()) {
      double u = rng_.uniform();
      for (size_t k = 0; k < sc_.quiet_hours.size() && quiet == 0; ++k) {
        u -= sc_.quiet_hours[k].share;
        if (u < 0) {
          quiet = static_cast<uint8_t>(k + 1);
          d.quiet_hours = sc_.quiet_hours[k].windows;
        }
      }
    }
    auto [it, fresh] = rev_ids.emplace(rev.name, static_cast<uint16_t>(revisions_.size()));
    if (fresh) revisions_.push_back(rev.name);
    // Its own draw, so the share changes nothing else about the fleet.
    d.keeps_previous =
        unit(mix64(seed_ ^ (uint64_t{i} + 1) * 0xa0761d6478bd642fULL)) < sc_.keeps_previous;
    SimDevice& s = devices_[i];
    s.keeps = d.keeps_previous;
    s.inventory = initial_id;
    s.site = site;
    s.connectivity = conn;
    s.hardware_revision = it->second;
    s.quiet = quiet;
    out.push_back(std::move(d));
  }
  index_windows();
}

void FleetWorld::take_given(std::vector<Device>& out) {
  std::map<std::string, uint32_t, std::less<>> site_ids;
  for (const Site& site : sc_.sites) {
    site_ids.emplace(site.name, static_cast<uint32_t>(sites_.size()));
    sites_.push_back(site);
    site_group_.push_back(site.name);
  }
  std::map<std::string, uint16_t, std::less<>> conn_ids;
  for (size_t c = 0; c < sc_.connectivity.size(); ++c)
    conn_ids.emplace(sc_.connectivity[c].name, static_cast<uint16_t>(c));
  std::map<std::string, uint16_t, std::less<>> rev_ids;
  const auto n = static_cast<uint32_t>(sc_.fleet.size());
  devices_.resize(n);
  given_ids_.reserve(n);
  out.reserve(n);
  for (uint32_t i = 0; i < n; ++i) {
    Device d = sc_.fleet[i].record;
    SimDevice& s = devices_[i];
    if (auto site = site_ids.find(d.site); site != site_ids.end()) {
      s.site = site->second;
    } else {
      // No site (or one the plane does not know): a stand-in that is always open.
      if (!siteless_) {
        siteless_ = true;
        sites_.push_back(Site{"", "UTC", {}});
        site_group_.emplace_back();
      }
      s.site = static_cast<uint32_t>(sites_.size() - 1);
      d.site.clear();
    }
    if (auto c = conn_ids.find(d.connectivity); c != conn_ids.end()) s.connectivity = c->second;
    auto [rev, fresh] =
        rev_ids.emplace(d.hardware_revision, static_cast<uint16_t>(revisions_.size()));
    if (fresh) revisions_.push_back(d.hardware_revision);
    s.hardware_revision = rev->second;
    std::sort(d.installed.begin(), d.installed.end());
    s.inventory = intern(d.installed);
    s.keeps = d.keeps_previous;
    s.quiet = quiet_index(d.quiet_hours);
    given_ids_.push_back(d.id);
    out.push_back(std::move(d));
  }
  given_index_.reserve(n);
  for (uint32_t i = 0; i < n; ++i) given_index_.emplace(given_ids_[i], i);
  index_windows();
}

uint8_t FleetWorld::quiet_index(const std::vector<MaintenanceWindow>& windows) {
  if (windows.empty()) return 0;
  auto it = std::find(quiet_sets_.begin(), quiet_sets_.end(), windows);
  if (it != quiet_sets_.end()) return static_cast<uint8_t>(it - quiet_sets_.begin() + 1);
  // The most distinct sets a device's byte holds; a device beyond them keeps only its site's
  // windows (a fleet with hundreds of different quiet hours is not one this twin predicts).
  if (quiet_sets_.size() >= 255) return 0;
  quiet_sets_.push_back(windows);
  return static_cast<uint8_t>(quiet_sets_.size());
}

void FleetWorld::index_windows() {
  auto put_quiet = [this](const Site& site, size_t k) {
    quiet_.put(Site{site.name + "#" + std::to_string(k), site.time_zone, quiet_sets_[k]});
  };
  for (const Site& site : sites_) maintenance_.put(site);
  if (sc_.fleet.empty()) {
    // A drawn fleet: a few sets, any of which any site's devices may carry.
    for (const Site& site : sites_)
      for (size_t k = 0; k < quiet_sets_.size(); ++k) put_quiet(site, k);
  } else {
    // A given one: only the (site, set) pairs its devices have, which may be many sites
    // and many sets but not every pair.
    std::set<std::pair<uint32_t, uint8_t>> used;
    for (const SimDevice& d : devices_)
      if (d.quiet != 0) used.emplace(d.site, d.quiet);
    for (const auto& [site, quiet] : used) put_quiet(sites_[site], quiet - 1u);
  }
  // Intermittent links are online in windows of the site's local time.
  link_keys_.resize(sites_.size() * sc_.connectivity.size());
  for (size_t s = 0; s < sites_.size(); ++s) {
    for (size_t c = 0; c < sc_.connectivity.size(); ++c) {
      if (sc_.connectivity[c].kind != LinkKind::kIntermittent) continue;
      std::string key = sites_[s].name + "#" + sc_.connectivity[c].name;
      links_.put(Site{key, sites_[s].time_zone, sc_.connectivity[c].online});
      link_keys_[s * sc_.connectivity.size() + c] = std::move(key);
    }
  }
}

std::vector<Site> FleetWorld::plane_sites() const {
  return {sites_.begin(), sites_.end() - (siteless_ ? 1 : 0)};
}

void FleetWorld::schedule_arrivals() {
  const Timestamp start = clock_.now();  // the scenario's start (a remote run: after set-up)
  arrived_ = start;
  for (uint32_t i = 0; i < devices_.size(); ++i) {
    const ConnectivitySpec& l = link(i);
    Timestamp first =
        start + Duration(static_cast<int64_t>(rng_.uniform() * l.poll_interval.count()));
    Timestamp from = start;  // an intermittent link's first check-in: when it is up from here
    if (!sc_.fleet.empty()) {
      const GivenDevice& g = sc_.fleet[i];
      if (g.dark) {
        go_dark(i);
        continue;
      }
      if (g.first_check_in) from = first = start + std::max(Duration{0}, *g.first_check_in);
    }
    if (l.kind == LinkKind::kIntermittent) first = next_online(i, from);
    schedule(i, first, EventKind::kCheckIn);
    // Its own draws, so the share changes nothing else about the fleet.
    const uint64_t h = mix64(seed_ ^ (uint64_t{i} + 1) * 0x9fb21c651e98df25ULL);
    if (unit(h) < sc_.lost.share) {
      schedule(i, start + Duration(static_cast<int64_t>(unit(mix64(h)) * sc_.lost.within.count())),
               EventKind::kLost);
    }
  }
}

DeviceName FleetWorld::name_of(uint32_t dev) const {
  DeviceName name;
  if (!given_ids_.empty()) {
    name.size = 0;
    name.given = given_ids_[dev];
    return name;
  }
  // id_width_ has room for the largest index, so the digits fill it from the right.
  std::memcpy(name.text, "dev-", 4);
  name.size = 4 + static_cast<size_t>(id_width_);
  uint32_t n = dev + 1;
  for (size_t k = name.size; k > 4; --k, n /= 10)
    name.text[k - 1] = static_cast<char>('0' + n % 10);
  return name;
}

std::optional<uint32_t> FleetWorld::index_of(std::string_view id) const {
  if (!given_ids_.empty()) {
    auto it = given_index_.find(id);
    if (it == given_index_.end()) return std::nullopt;
    return it->second;
  }
  if (!id.starts_with("dev-")) return std::nullopt;
  uint32_t n = 0;
  const auto [end, ec] = std::from_chars(id.data() + 4, id.data() + id.size(), n);
  if (ec != std::errc() || end != id.data() + id.size() || n == 0 || n > devices_.size())
    return std::nullopt;
  return n - 1;
}

uint32_t FleetWorld::intern(Inventory inventory) {
  auto [it, fresh] = inventory_ids_.emplace(inventory, static_cast<uint32_t>(inventories_.size()));
  if (fresh) inventories_.push_back(std::move(inventory));
  return it->second;
}

bool FleetWorld::inventory_runs(uint32_t id, std::string_view component,
                                std::string_view version) const {
  return std::any_of(inventories_[id].begin(), inventories_[id].end(), [&](const auto& c) {
    return c.component == component && c.version == version;
  });
}

void FleetWorld::go_dark(uint32_t dev) {
  devices_[dev].dark = true;
  ++dark_;
}

void FleetWorld::schedule(uint32_t dev, Timestamp at, EventKind kind) {
  if (at == Timestamp::max()) return;  // a link that never comes up: the device stays silent
  queue_.push(Event{at.time_since_epoch().count(), seq_++, dev, static_cast<uint8_t>(kind)});
}

// ---------------------------------------------------------------- links and windows

double FleetWorld::draw(uint32_t dev, Timestamp t, uint64_t salt) const {
  // On the scenario's own timeline: a remote run that starts later on its server's clock
  // draws what the twin draws at the same moment of the story.
  const Timestamp on_timeline = sc_.start + (t - arrived_);
  return unit(mix64(seed_ ^ (uint64_t{dev} + 1) * salt ^
                    mix64(static_cast<uint64_t>(on_timeline.time_since_epoch().count()))));
}

Duration FleetWorld::jittered(uint32_t dev, Duration d) {
  const double f =
      1 + sc_.checkin_jitter * (2 * draw(dev, clock_.now(), 0xe7037ed1a0b428dbULL) - 1);
  return Duration(
      std::max<int64_t>(1000, static_cast<int64_t>(static_cast<double>(d.count()) * f)));
}

const std::string* FleetWorld::link_key(uint32_t dev) const {
  const SimDevice& d = devices_[dev];
  if (sc_.connectivity[d.connectivity].kind != LinkKind::kIntermittent) return nullptr;
  return &link_keys_[d.site * sc_.connectivity.size() + d.connectivity];
}

bool FleetWorld::online(uint32_t dev, Timestamp t) {
  const std::string* key = link_key(dev);
  return key == nullptr || links_.is_open(*key, t);
}

Timestamp FleetWorld::next_online(uint32_t dev, Timestamp t) {
  const std::string* key = link_key(dev);
  if (key == nullptr) return t;
  const Timestamp open = links_.next_open(*key, t);
  if (open == t || open == Timestamp::max()) return open;
  return open + Duration(static_cast<int64_t>(draw(dev, t, 0x8ebc6af09c88c6e3ULL) * 60'000 *
                                              (1 + 4 * sc_.checkin_jitter)));
}

Timestamp FleetWorld::link_up_at(uint32_t dev, Timestamp t) {
  const std::string* key = link_key(dev);
  return key == nullptr ? t : links_.next_open(*key, t);
}

Timestamp FleetWorld::online_until(uint32_t dev, Timestamp t) {
  const std::string* key = link_key(dev);
  return key == nullptr ? Timestamp::max() : links_.open_until(*key, t);
}

bool FleetWorld::in_window(uint32_t dev, Timestamp t) {
  const SimDevice& d = devices_[dev];
  const std::string& site = sites_[d.site].name;
  if (!maintenance_.is_open(site, t)) return false;
  return d.quiet == 0 || !quiet_.is_open(site + "#" + std::to_string(d.quiet - 1), t);
}

bool FleetWorld::links_ever_meet(uint32_t dev) {
  WindowCache site_windows;
  site_windows.put(site(dev));
  for (Timestamp t = clock_.now(); t < clock_.now() + days(7); t += minutes(1)) {
    if (online(dev, t) && site_windows.is_open(site(dev).name, t)) return true;
  }
  return false;
}

// ---------------------------------------------------------------- defects

bool FleetWorld::defect(uint32_t dev, const UpdateOffer& offer, DefectKind kind,
                        Duration* after) const {
  const DefectSpec* spec = defect_spec(dev, offer, kind);
  if (spec != nullptr && after != nullptr) *after = spec->after;
  return spec != nullptr;
}

const DefectSpec* FleetWorld::defect_spec(uint32_t dev, const UpdateOffer& offer,
                                          DefectKind kind) const {
  if (preflight_ || offer.revert) return nullptr;
  const SimDevice& d = devices_[dev];
  for (size_t k = 0; k < sc_.defects.size(); ++k) {
    const DefectSpec& spec = sc_.defects[k];
    if (spec.kind != kind) continue;
    if (!spec.hardware_revision.empty() &&
        spec.hardware_revision != revisions_[d.hardware_revision])
      continue;
    if (!spec.connectivity.empty() && spec.connectivity != sc_.connectivity[d.connectivity].name)
      continue;
    if (!spec.time_zone.empty() && spec.time_zone != sites_[d.site].time_zone) continue;
    if (!spec.site_prefix.empty() && site_group_[d.site] != spec.site_prefix) continue;
    if (!(spec.version.empty() ? offer.version == sc_.rollout.artifact_version
                               : offer.version == spec.version)) {
      continue;
    }
    // One draw per (device, defect): independent of event order.
    const uint64_t h =
        mix64(seed_ ^ mix64(stable_hash(name_of(dev).view()) ^ (k + 1) * 0x9e3779b97f4a7c15ULL));
    if (unit(h) < spec.probability) return &spec;
  }
  return nullptr;
}

uint64_t FleetWorld::declared_size(const std::string& component, const std::string& version) {
  for (const Artifact& a : sc_.artifacts) {
    if (a.name == component && a.version == version) return a.size_bytes;
  }
  return 0;
}

bool FleetWorld::defective(uint32_t dev, const std::string& version, bool revert, DefectKind kind) {
  UpdateOffer o;
  o.version = version;
  o.revert = revert;
  return defect(dev, o, kind);
}

}  // namespace drover::sim
