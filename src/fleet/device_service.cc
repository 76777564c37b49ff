#include "fleet/device_service.h"

#include <algorithm>
#include <iterator>
#include <utility>

#include "fleet/command_queue.h"

namespace drover {

DeviceService::DeviceService(Store& store, RolloutEngine& engine, FleetOptions options)
    : store_(store), engine_(engine), options_(options) {}

uint32_t DeviceService::share_inventory(const Inventory& components) {
  // Devices provisioned together mostly run the same versions: try the last one first.
  if (last_shared_ < inventories_.size() && inventories_[last_shared_].users > 0 &&
      inventories_[last_shared_].components == components) {
    ++inventories_[last_shared_].users;
    return last_shared_;
  }
  auto it = inventory_ids_.find(components);
  if (it == inventory_ids_.end()) {
    uint32_t id = 0;
    if (free_inventories_.empty()) {
      id = static_cast<uint32_t>(inventories_.size());
      inventories_.emplace_back();
    } else {
      id = free_inventories_.back();
      free_inventories_.pop_back();
    }
    inventories_[id].components = components;
    it = inventory_ids_.emplace(components, id).first;
  }
  ++inventories_[it->second].users;
  last_shared_ = it->second;
  return it->second;
}

void DeviceService::release_inventory(uint32_t id) {
  SharedInventory& shared = inventories_[id];
  if (--shared.users > 0) return;
  // The last device left this inventory: forget it, so devices that report ever new
  // versions cannot grow the table beyond one inventory per device.
  inventory_ids_.erase(shared.components);
  shared.components = {};
  free_inventories_.push_back(id);
}

uint32_t DeviceService::site_id(const std::string& name) {
  auto [it, fresh] = site_ids_.emplace(name, static_cast<uint32_t>(site_names_.size()));
  if (fresh) site_names_.push_back(name);
  return it->second;
}

void DeviceService::put(uint32_t pos, Device d) {
  if (pos == kNone) {
    pos = static_cast<uint32_t>(devices_.size());
    index_.insert(FlatIndex::hash(d.id), pos);
    devices_.emplace_back();
    entries_.emplace_back();
    entries_[pos].id = d.id;
  } else {
    release_inventory(entries_[pos].inventory);
    if (devices_[pos].enrollment == Enrollment::kPending && !entries_[pos].decommissioned)
      --pending_;
  }
  if (d.enrollment == Enrollment::kPending && !d.decommissioned) {
    ++pending_;
    oldest_pending_ = std::min(oldest_pending_, d.enrolled_at);
  }
  Entry& e = entries_[pos];
  e.inventory = share_inventory(d.installed);
  e.site = site_id(d.site);
  e.state = d.update_state;
  if (e.state == UpdateState::kIdle || d.decommissioned) {
    busy_.erase(pos);
  } else {
    busy_.insert(pos);
  }
  if (d.config_error.empty() || d.decommissioned) {
    config_failing_.erase(pos);
  } else {
    config_failing_.insert(pos);
  }
  e.decommissioned = d.decommissioned;
  e.keeps_previous = d.keeps_previous;
  devices_[pos] = std::move(d);
}

Status DeviceService::load() {
  auto all = store_.list_devices();
  if (!all.ok()) return all.error();
  MutexLock lock(mu_);
  devices_.clear();
  entries_.clear();
  busy_.clear();
  config_failing_.clear();
  pending_ = 0;
  oldest_pending_ = Timestamp::max();
  index_.clear();
  inventories_.clear();
  free_inventories_.clear();
  inventory_ids_.clear();
  devices_.reserve(all->size());
  entries_.reserve(all->size());
  index_.reserve(all->size());
  for (Device& d : *all) put(kNone, std::move(d));
  // A device that left the fleet just before a crash may still have open deployments.
  for (const Device& d : devices_) DROVER_TRY(leave_rollouts_if_out(d));
  return ok_status();
}

Status DeviceService::leave_rollouts_if_out(const Device& d) {
  if (d.decommissioned) return engine_.device_left(d.id, "decommissioned");
  if (d.enrollment != Enrollment::kAccepted)
    return engine_.device_left(d.id, std::string("enrollment ") + to_string(d.enrollment));
  engine_.device_returned(d.id);
  return ok_status();
}

Status DeviceService::provision(std::vector<Device> devices, WriteBatch with) {
  for (Device& d : devices) DROVER_TRY(validate(d));
  WriteBatch batch = std::move(with);
  batch.devices = std::move(devices);
  batch.removed_devices.clear();
  MutexLock lock(mu_);
  DROVER_TRY(store_.apply(batch));
  index_.reserve(devices_.size() + batch.devices.size());
  for (Device& d : batch.devices) {
    const uint32_t pos = find(d.id);
    put(pos, std::move(d));
    DROVER_TRY(leave_rollouts_if_out(devices_[pos == kNone ? devices_.size() - 1 : pos]));
  }
  return ok_status();
}

uint32_t DeviceService::find(std::string_view id, uint64_t id_hash) const {
  uint32_t found = kNone;
  const Entry* entries = entries_.data();  // under mu_, which the callback cannot show
  index_.find(id_hash, [&](uint64_t i) {
    if (entries[i].id != id) return false;
    found = static_cast<uint32_t>(i);
    return true;
  });
  return found;
}

Result<CheckInResponse> DeviceService::check_in(const CheckInRequest& request) {
  auto response = answer_check_in(request);
  if (!response.ok() || commands_ == nullptr) return response;
  auto commands = commands_->for_check_in(request.device_id);
  if (!commands.ok()) return commands.error();
  response->commands = std::move(*commands);
  return response;
}

Result<CheckInResponse> DeviceService::answer_check_in(const CheckInRequest& request) {
  const uint64_t id_hash = FlatIndex::hash(request.device_id);
  // The registry lock is held through the engine call so the record cannot change under
  // it; the engine takes its own lock after this one, never the other way round.
  MutexLock lock(mu_);
  const uint32_t pos = find(request.device_id, id_hash);
  if (pos == kNone) return not_found("unknown device '" + std::string(request.device_id) + "'");
  Entry& e = entries_[pos];
  if (e.decommissioned) {
    return Error{ErrorCode::kFailedPrecondition, "device '" + e.id + "' is decommissioned"};
  }
  e.next_wait = 0;  // until this check-in is answered: none known
  e.seen_s = static_cast<uint32_t>(std::clamp<int64_t>(
      std::chrono::duration_cast<std::chrono::seconds>(engine_.now().time_since_epoch()).count() -
          kSeenEpoch,
      1, UINT32_MAX));
  const Inventory& known = inventories_[e.inventory].components;
  const bool same_inventory =
      std::equal(request.installed.begin(), request.installed.end(), known.begin(), known.end());
  // From the entry, not the record: most check-ins never touch the record.
  const protocol::ConfigReport* config = request.config;
  // A check-in without a report of the configuration (an agent that applies none, or no
  // longer does) leaves none known: an error from before is not the device's word any more.
  const protocol::ConfigReport none;
  const protocol::ConfigReport& said = config != nullptr ? *config : none;
  const bool same_record = same_inventory && request.keeps_previous == e.keeps_previous &&
                           said.sha256 == devices_[pos].config_sha256 &&
                           said.error == devices_[pos].config_error;
  if (!same_record || request.state != e.state) {
    Device updated = devices_[pos];
    updated.installed.assign(request.installed.begin(), request.installed.end());
    updated.update_state = request.state;
    updated.keeps_previous = request.keeps_previous;
    updated.config_sha256 = said.sha256;
    updated.config_error = said.error;
    DROVER_TRY(validate(updated));
    if (updated != devices_[pos]) {
      // A new inventory is written before it is answered; a new update state alone (idle,
      // downloading, ready, ...) is the device's to repeat at every check-in, so it is kept
      // in memory and reaches the store with the next write of the record — a write per
      // state flip would cost an fsync per check-in for nothing a restart cannot relearn.
      if (!same_record) {
        WriteBatch batch;
        batch.devices.push_back(updated);
        DROVER_TRY(store_.apply(batch));
      }
      put(pos, std::move(updated));
    }
  }
  const CheckInDevice device{e.id, id_hash, e.state, site_names_[e.site], devices_[pos]};
  CheckInResponse response;
  if (config != nullptr && configs_ != nullptr) {
    ConfigTarget target;
    if (configs_->differs(devices_[pos].device_type, config->sha256, &target))
      response.config = std::move(target);
  }
  if (request.state == UpdateState::kReady) {
    auto hold = engine_.hold_for(device, request.holding);
    if (!hold.ok()) return hold.error();
    response.hold = std::move(*hold);
    // Told to apply, it has nothing to ask before its window opens (it asks again then,
    // before installing): it need not come back sooner than that.
    response.next_checkin = options_.poll_interval;
    const Timestamp now = engine_.now();
    if (response.hold->action == HoldAnswer::Action::kApply && !response.hold->windows.empty() &&
        response.hold->windows.front().from - now > response.next_checkin) {
      response.next_checkin = response.hold->windows.front().from - now;
    }
    e.next_wait = encode_wait(response.next_checkin);
    return response;
  }
  auto offer = engine_.offer_for(device, &e.cursor);
  if (!offer.ok()) return offer.error();
  response.offer = std::move(*offer);
  const bool busy = response.offer.has_value() || request.state != UpdateState::kIdle;
  response.next_checkin = busy ? options_.busy_poll_interval : options_.poll_interval;
  e.next_wait = encode_wait(response.next_checkin);
  return response;
}

Result<DeploymentState> DeviceService::report_status(const StatusReport& report) {
  MutexLock lock(mu_);
  const uint32_t pos = find(report.device_id);
  if (pos == kNone) return not_found("unknown device '" + std::string(report.device_id) + "'");
  return engine_.report(devices_[pos], report.rollout_id, report.version, report.status,
                        report.message, report.standby);
}

void DeviceService::warm(std::span<const std::string_view> device_ids) {
  MutexLock lock(mu_);
  thread_local std::vector<uint64_t> hashes;
  hashes.clear();
  for (std::string_view id : device_ids) {
    hashes.push_back(FlatIndex::hash(id));
    index_.prefetch(hashes.back());
  }
  // Each phase reads only what the one before fetched, so the misses overlap.
  thread_local std::vector<const Entry*> entries;
  entries.clear();
  for (uint64_t h : hashes) {
    uint64_t i = 0;
    if (!index_.first(h, i)) continue;
    entries.push_back(&entries_[i]);
    __builtin_prefetch(entries.back());
  }
  thread_local std::vector<const DeviceCursor*> cursors;
  cursors.clear();
  for (const Entry* e : entries) cursors.push_back(&e->cursor);
  engine_.warm(cursors);
}

Result<Device> DeviceService::update(std::string_view id,
                                     const std::function<Status(Device&)>& change, bool* created,
                                     WriteBatch with) {
  MutexLock lock(mu_);
  const uint32_t pos = find(id);
  if (created != nullptr) *created = pos == kNone;
  if (pos == kNone && created == nullptr) {
    return not_found("unknown device '" + std::string(id) + "'");
  }
  Device changed;
  if (pos == kNone) {
    changed.id = std::string(id);
  } else {
    changed = devices_[pos];
  }
  DROVER_TRY(change(changed));
  if (changed.id != id) return invalid_argument("a device's id cannot change");
  DROVER_TRY(validate(changed));
  if (pos != kNone && changed == devices_[pos] && with.empty()) return changed;
  WriteBatch batch = std::move(with);
  batch.devices = {changed};
  batch.removed_devices.clear();
  DROVER_TRY(store_.apply(batch));
  put(pos, std::move(batch.devices.front()));
  const Device& written = pos == kNone ? devices_.back() : devices_[pos];
  // Written first: after a crash here, load() finishes what this starts.
  DROVER_TRY(leave_rollouts_if_out(written));
  return written;
}

Result<Device> DeviceService::decommission(std::string_view id) {
  return update(id, [](Device& d) {
    d.decommissioned = true;
    return ok_status();
  });
}

Result<std::vector<std::string>> DeviceService::expire_pending(Timestamp enrolled_before,
                                                               Timestamp now) {
  MutexLock lock(mu_);
  if (pending_ == 0 || oldest_pending_ >= enrolled_before) return std::vector<std::string>{};
  WriteBatch batch;
  std::vector<uint32_t> stamped;
  Timestamp oldest_left = Timestamp::max();
  for (uint32_t pos = 0; pos < devices_.size(); ++pos) {
    const Device& d = devices_[pos];
    if (d.enrollment != Enrollment::kPending || d.decommissioned) continue;
    if (d.enrolled_at == Timestamp{}) {
      stamped.push_back(pos);
      batch.devices.push_back(d);
      batch.devices.back().enrolled_at = now;
      oldest_left = std::min(oldest_left, now);
    } else if (d.enrolled_at < enrolled_before) {
      batch.removed_devices.push_back(d.id);
    } else {
      oldest_left = std::min(oldest_left, d.enrolled_at);
    }
  }
  if (!batch.empty()) DROVER_TRY(store_.apply(batch));
  oldest_pending_ = oldest_left;
  for (size_t k = 0; k < stamped.size(); ++k)
    devices_[stamped[k]].enrolled_at = batch.devices[k].enrolled_at;
  if (batch.removed_devices.empty()) return std::vector<std::string>{};
  // The rest close ranks, in order; the index is rebuilt over their new positions.
  size_t kept = 0;
  size_t next_gone = 0;
  for (size_t pos = 0; pos < devices_.size(); ++pos) {
    if (next_gone < batch.removed_devices.size() &&
        devices_[pos].id == batch.removed_devices[next_gone]) {
      ++next_gone;
      release_inventory(entries_[pos].inventory);
      --pending_;
      continue;
    }
    if (kept != pos) {
      devices_[kept] = std::move(devices_[pos]);
      entries_[kept] = std::move(entries_[pos]);
    }
    ++kept;
  }
  devices_.erase(devices_.begin() + static_cast<std::ptrdiff_t>(kept), devices_.end());
  entries_.erase(entries_.begin() + static_cast<std::ptrdiff_t>(kept), entries_.end());
  index_.clear();
  index_.reserve(entries_.size());
  busy_.clear();
  config_failing_.clear();
  for (size_t pos = 0; pos < entries_.size(); ++pos) {
    index_.insert(FlatIndex::hash(entries_[pos].id), pos);
    if (entries_[pos].decommissioned) continue;
    if (entries_[pos].state != UpdateState::kIdle) busy_.insert(static_cast<uint32_t>(pos));
    if (!devices_[pos].config_error.empty()) config_failing_.insert(static_cast<uint32_t>(pos));
  }
  last_shared_ = kNone;
  return std::move(batch.removed_devices);
}

DevicePage DeviceService::list(const DeviceQuery& query) const {
  auto matches = [&](const Device& d) {
    return query.filter.matches(d) && (!query.enrollment || d.enrollment == *query.enrollment) &&
           (!query.decommissioned || d.decommissioned == *query.decommissioned);
  };
  DevicePage page;
  // The `limit + 1` smallest matching ids after `after`, as a max-heap of positions: the
  // extra one tells whether another page follows.
  std::vector<uint32_t> heap;
  if (query.limit == 0) {
    MutexLock lock(mu_);
    for (const Device& d : devices_) page.matched += matches(d) ? 1 : 0;
    return page;
  }
  const size_t keep = query.limit == SIZE_MAX ? query.limit : query.limit + 1;
  MutexLock lock(mu_);
  const Device* devices = devices_.data();  // under mu_, which the heap's calls cannot show
  auto by_id = [&devices](uint32_t a, uint32_t b) { return devices[a].id < devices[b].id; };
  for (uint32_t pos = 0; pos < devices_.size(); ++pos) {
    const Device& d = devices_[pos];
    if (!matches(d)) continue;
    ++page.matched;
    if (!query.after.empty() && d.id <= query.after) continue;
    if (heap.size() < keep) {
      heap.push_back(pos);
      std::push_heap(heap.begin(), heap.end(), by_id);
    } else if (d.id < devices_[heap.front()].id) {
      std::pop_heap(heap.begin(), heap.end(), by_id);
      heap.back() = pos;
      std::push_heap(heap.begin(), heap.end(), by_id);
    }
  }
  std::sort_heap(heap.begin(), heap.end(), by_id);
  const bool more = heap.size() > query.limit;
  if (more) heap.pop_back();
  page.devices.reserve(heap.size());
  page.check_ins.reserve(heap.size());
  for (uint32_t pos : heap) {
    page.devices.push_back(devices_[pos]);
    page.check_ins.push_back(check_in_times(entries_[pos]));
  }
  if (more && !page.devices.empty()) page.next = page.devices.back().id;
  return page;
}

std::optional<DeviceService::Standing> DeviceService::standing(std::string_view id) const {
  MutexLock lock(mu_);
  const uint32_t pos = find(id);
  if (pos == kNone) return std::nullopt;
  return Standing{devices_[pos].enrollment, entries_[pos].decommissioned,
                  devices_[pos].public_key.substr(0, kKeyTagSize)};
}

uint16_t DeviceService::encode_wait(Duration wait) {
  const int64_t s =
      std::max<int64_t>(0, std::chrono::duration_cast<std::chrono::seconds>(wait).count());
  if (s < 0x8000) return static_cast<uint16_t>(s);
  return static_cast<uint16_t>(0x8000 | std::min<int64_t>(0x7fff, (s + 59) / 60));
}

Duration DeviceService::decode_wait(uint16_t code) {
  return (code & 0x8000) != 0 ? minutes(code & 0x7fff) : seconds(code);
}

CheckInTimes DeviceService::check_in_times(const Entry& e) const {
  if (e.seen_s == 0) return {};
  const Timestamp last(std::chrono::seconds(kSeenEpoch + e.seen_s));
  if (e.next_wait == 0) return {last, std::nullopt};  // its last check-in was refused
  return {last, last + decode_wait(e.next_wait)};
}

std::optional<CheckInTimes> DeviceService::check_in_times(std::string_view id) const {
  MutexLock lock(mu_);
  const uint32_t pos = find(id);
  if (pos == kNone) return std::nullopt;
  return check_in_times(entries_[pos]);
}

std::optional<Timestamp> DeviceService::last_check_in(std::string_view id) const {
  MutexLock lock(mu_);
  const uint32_t pos = find(id);
  if (pos == kNone || entries_[pos].seen_s == 0) return std::nullopt;
  return Timestamp(std::chrono::seconds(kSeenEpoch + entries_[pos].seen_s));
}

std::optional<Device> DeviceService::device(std::string_view id) const {
  MutexLock lock(mu_);
  const uint32_t pos = find(id);
  if (pos == kNone) return std::nullopt;
  return devices_[pos];
}

DeviceService::ConfigTally DeviceService::config_tally(std::string_view device_type,
                                                       std::string_view sha256) const {
  ConfigTally t;
  MutexLock lock(mu_);
  for (size_t i = 0; i < devices_.size(); ++i) {
    if (entries_[i].decommissioned) continue;  // the entry's line, not the record's
    const Device& d = devices_[i];
    if (d.device_type != device_type) continue;
    if (d.config_sha256 == sha256) {
      ++t.in_sync;
    } else if (d.config_error.empty()) {
      if (t.some_pending.size() < kConfigTallyIds) t.some_pending.push_back(d.id);
      ++t.pending;
    } else {
      if (t.some_failed.size() < kConfigTallyIds) t.some_failed.push_back(d.id);
      ++t.failed;
    }
  }
  return t;
}

DeviceService::Census DeviceService::census() const {
  static_assert(static_cast<size_t>(UpdateState::kReady) + 1 ==
                std::tuple_size_v<decltype(Census::by_state)>);
  Census c;
  MutexLock lock(mu_);
  for (size_t i = 0; i < entries_.size(); ++i) {
    if (entries_[i].decommissioned) {
      ++c.decommissioned;
    } else {
      ++c.by_state[static_cast<size_t>(entries_[i].state)];
      if (devices_[i].enrollment == Enrollment::kPending) ++c.pending;
    }
  }
  return c;
}

std::vector<DeviceService::Reported> DeviceService::in_update_state(UpdateState state) const {
  std::vector<Reported> out;
  MutexLock lock(mu_);
  auto take = [&](const Entry& e) {
    // Only what a device said since this server started: a state loaded with its record
    // may be long out of date.
    if (e.decommissioned || e.seen_s == 0 || e.state != state) return;
    out.push_back({e.id, Timestamp(std::chrono::seconds(kSeenEpoch + e.seen_s))});
  };
  if (state == UpdateState::kIdle) {
    for (const Entry& e : entries_) take(e);
  } else {
    for (uint32_t pos : busy_) take(entries_[pos]);
    // By id: the same order every time (a set has none).
    std::sort(out.begin(), out.end(),
              [](const Reported& a, const Reported& b) { return a.id < b.id; });
  }
  return out;
}

std::vector<DeviceService::ConfigFailure> DeviceService::config_failures() const {
  std::vector<ConfigFailure> out;
  MutexLock lock(mu_);
  for (uint32_t pos : config_failing_) {
    const Entry& e = entries_[pos];
    if (e.seen_s == 0) continue;  // loaded with its record: it may have been mended since
    out.push_back(
        {e.id, Timestamp(std::chrono::seconds(kSeenEpoch + e.seen_s)), devices_[pos].config_error});
  }
  std::sort(out.begin(), out.end(),
            [](const ConfigFailure& a, const ConfigFailure& b) { return a.id < b.id; });
  return out;
}

DeviceService::Summary DeviceService::summary(Timestamp now) const {
  Summary out;
  // Counted by what the registry already shares (site and inventory indexes) or by views
  // of the records' own strings; names become strings once each, at the end.
  std::unordered_map<std::string_view, uint64_t> types;
  std::unordered_map<std::string_view, uint64_t> revisions;
  std::unordered_map<std::string_view, uint64_t> links;
  MutexLock lock(mu_);
  std::vector<uint64_t> by_site(site_names_.size());
  std::vector<uint64_t> by_inventory(inventories_.size());
  for (size_t i = 0; i < entries_.size(); ++i) {
    const Entry& e = entries_[i];
    if (e.decommissioned) {
      ++out.decommissioned;
      continue;
    }
    const Device& d = devices_[i];
    ++out.in_service;
    ++out.by_state[static_cast<size_t>(e.state)];
    ++out.by_enrollment[d.enrollment == Enrollment::kPending    ? 1
                        : d.enrollment == Enrollment::kRejected ? 2
                                                                : 0];
    ++types[d.device_type];
    ++revisions[d.hardware_revision];
    ++links[d.connectivity];
    if (e.site < by_site.size()) ++by_site[e.site];
    if (e.inventory < by_inventory.size()) ++by_inventory[e.inventory];
    const CheckInTimes seen = check_in_times(e);
    if (!seen.last) {
      ++out.never_seen;
    } else {
      const Duration ago = now - *seen.last;
      if (ago <= hours(1)) {
        ++out.seen_last_hour;
      } else if (ago <= hours(24)) {
        ++out.seen_last_day;
      } else {
        ++out.seen_before;
      }
      if (seen.next && now > *seen.next + kOverdueGrace) ++out.overdue;
    }
  }
  for (const auto& [name, n] : types) out.by_device_type.emplace(name, n);
  for (const auto& [name, n] : revisions) out.by_hardware_revision.emplace(name, n);
  for (const auto& [name, n] : links) out.by_connectivity.emplace(name, n);
  for (size_t s = 0; s < by_site.size(); ++s) {
    if (by_site[s] > 0) out.by_site[site_names_[s]] += by_site[s];
  }
  for (size_t v = 0; v < by_inventory.size(); ++v) {
    if (by_inventory[v] == 0) continue;
    for (const InstalledComponent& c : inventories_[v].components)
      out.by_installed[c.component][c.version] += by_inventory[v];
  }
  return out;
}

size_t DeviceService::pending_count() const {
  MutexLock lock(mu_);
  return pending_;
}

size_t DeviceService::device_count() const {
  MutexLock lock(mu_);
  return devices_.size();
}

size_t DeviceService::distinct_inventories() const {
  MutexLock lock(mu_);
  return inventory_ids_.size();
}

}  // namespace drover
