#include "fleet/device_service.h"

#include <algorithm>
#include <iterator>
#include <utility>

namespace drover {

DeviceService::DeviceService(Store& store, RolloutEngine& engine, FleetOptions options)
    : store_(store), engine_(engine), options_(options) {}

Status DeviceService::load() {
  auto all = store_.list_devices();
  if (!all.ok()) return all.error();
  std::lock_guard lock(mu_);
  devices_.assign(std::make_move_iterator(all->begin()), std::make_move_iterator(all->end()));
  index_.clear();
  index_.reserve(devices_.size());
  for (size_t i = 0; i < devices_.size(); ++i) index_.insert(FlatIndex::hash(devices_[i].id), i);
  return ok_status();
}

Status DeviceService::provision(std::vector<Device> devices) {
  for (Device& d : devices) DROVER_TRY(validate(d));
  WriteBatch batch;
  batch.devices = std::move(devices);
  std::lock_guard lock(mu_);
  DROVER_TRY(store_.apply(batch));
  index_.reserve(devices_.size() + batch.devices.size());
  for (Device& d : batch.devices) {
    if (Device* existing = find(d.id)) {
      *existing = std::move(d);
    } else {
      index_.insert(FlatIndex::hash(d.id), devices_.size());
      devices_.push_back(std::move(d));
    }
  }
  return ok_status();
}

const Device* DeviceService::find(std::string_view id) const {
  const Device* found = nullptr;
  index_.find(FlatIndex::hash(id), [&](uint64_t i) {
    if (devices_[i].id != id) return false;
    found = &devices_[i];
    return true;
  });
  return found;
}

Device* DeviceService::find(std::string_view id) {
  return const_cast<Device*>(std::as_const(*this).find(id));
}

Result<CheckInResponse> DeviceService::check_in(const CheckInRequest& request) {
  // The registry lock is held through the engine call so the record cannot change under
  // it; the engine takes its own lock after this one, never the other way round.
  std::lock_guard lock(mu_);
  const Device* device = find(request.device_id);
  {
    if (device == nullptr)
      return not_found("unknown device '" + std::string(request.device_id) + "'");
    if (device->decommissioned) {
      return Error{ErrorCode::kFailedPrecondition, "device '" + device->id + "' is decommissioned"};
    }
    const bool same_inventory = std::equal(request.installed.begin(), request.installed.end(),
                                           device->installed.begin(), device->installed.end());
    if (!same_inventory || request.state != device->update_state) {
      Device updated = *device;
      updated.installed.assign(request.installed.begin(), request.installed.end());
      updated.update_state = request.state;
      DROVER_TRY(validate(updated));
      if (updated != *device) {
        WriteBatch batch;
        batch.devices.push_back(updated);
        DROVER_TRY(store_.apply(batch));
        Device* slot = find(request.device_id);
        *slot = std::move(updated);
        device = slot;
      }
    }
  }
  auto offer = engine_.offer_for(*device);
  if (!offer.ok()) return offer.error();
  CheckInResponse response;
  response.offer = std::move(*offer);
  const bool busy = response.offer.has_value() || request.state != UpdateState::kIdle;
  response.next_checkin = busy ? options_.busy_poll_interval : options_.poll_interval;
  return response;
}

Result<DeploymentState> DeviceService::report_status(const StatusReport& report) {
  std::lock_guard lock(mu_);
  const Device* device = find(report.device_id);
  if (device == nullptr) return not_found("unknown device '" + std::string(report.device_id) + "'");
  return engine_.report(*device, report.rollout_id, report.version, report.status, report.message);
}

void DeviceService::warm(std::span<const std::string_view> device_ids) {
  std::lock_guard lock(mu_);
  thread_local std::vector<uint64_t> hashes;
  hashes.clear();
  for (std::string_view id : device_ids) {
    hashes.push_back(FlatIndex::hash(id));
    index_.prefetch(hashes.back());
  }
  // Each phase reads only what the one before fetched, so the misses overlap.
  thread_local std::vector<const Device*> records;
  records.clear();
  for (uint64_t h : hashes) {
    uint64_t i = 0;
    if (!index_.first(h, i)) continue;
    records.push_back(&devices_[i]);
    __builtin_prefetch(records.back());
    __builtin_prefetch(reinterpret_cast<const char*>(records.back()) + 64);
  }
  engine_.warm(hashes);
  for (const Device* d : records) {
    if (!d->installed.empty()) __builtin_prefetch(d->installed.data());
  }
}

std::optional<Device> DeviceService::device(std::string_view id) const {
  std::lock_guard lock(mu_);
  const Device* d = find(id);
  if (d == nullptr) return std::nullopt;
  return *d;
}

size_t DeviceService::device_count() const {
  std::lock_guard lock(mu_);
  return devices_.size();
}

}  // namespace drover
