// DeviceService: every device-facing use case, independent of transport. The HTTP device
// API (next), the MQTT bridge and the simulator all call these methods; none of them holds
// logic of its own.
//
// It owns the registry of devices: an in-memory index loaded from the Store and written
// through to it, so a check-in that changes nothing costs a hash lookup and no I/O.
//
// Thread-safety: all methods may be called from several threads.
#pragma once

#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/clock.h"
#include "base/flat_index.h"
#include "base/huge_pages.h"
#include "base/result.h"
#include "model/device.h"
#include "rollout/engine.h"
#include "store/store.h"

namespace drover {

struct CheckInRequest {
  std::string_view device_id;
  std::span<const InstalledComponent> installed;  // everything installed, any order
  UpdateState state = UpdateState::kIdle;
};

struct CheckInResponse {
  std::optional<UpdateOffer> offer;
  Duration next_checkin{0};  // when the device should check in again
};

struct StatusReport {
  std::string_view device_id;
  std::string_view rollout_id;
  std::string_view version;  // the version the report is about
  DeploymentEvent
      status;  // downloading, installing, rebooting, succeeded, failed, rolled_back, unhealthy
  std::string_view message;  // free text, kept with failures
};

struct FleetOptions {
  Duration poll_interval = minutes(30);      // the default answer to "when next?"
  Duration busy_poll_interval = minutes(5);  // while an update is under way
};

class DeviceService {
 public:
  DeviceService(Store& store, RolloutEngine& engine, FleetOptions options = {});

  // Loads the registry from the store. kIo / kCorruption from the store.
  Status load();

  // Registers (or updates) devices: all are validated first, then written in one batch.
  // kInvalidArgument names the first bad device; nothing is written then.
  Status provision(std::vector<Device> devices);

  // A device checks in: its reported inventory and state are recorded (only when they
  // changed), and it gets its update offer, if any, and when to come back.
  // kNotFound for an unknown device, kFailedPrecondition for a decommissioned one,
  // kInvalidArgument for a malformed inventory (nothing is recorded then).
  Result<CheckInResponse> check_in(const CheckInRequest& request);

  // A deployment status report; returns the deployment's state afterwards. Errors as
  // RolloutEngine::report, plus kNotFound for an unknown device.
  Result<DeploymentState> report_status(const StatusReport& report);

  // A hint that these devices will check in soon (the twin knows its next second of events):
  // their records are fetched into the CPU cache, two lookups at a time in flight per device
  // instead of one after the other. No effect on behaviour.
  void warm(std::span<const std::string_view> device_ids);

  // A copy of the registry's record, or std::nullopt.
  std::optional<Device> device(std::string_view id) const;
  size_t device_count() const;

 private:
  Device* find(std::string_view id);
  const Device* find(std::string_view id) const;

  Store& store_;
  RolloutEngine& engine_;
  FleetOptions options_;
  mutable std::mutex mu_;
  std::vector<Device, HugePageAllocator<Device>> devices_;  // GUARDED_BY(mu_); never shrinks
  FlatIndex index_;  // GUARDED_BY(mu_); id -> position in devices_
};

}  // namespace drover
