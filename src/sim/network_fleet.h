// The twin over the network (`drover sim --network`): the scenario's devices run as real
// agents — libdrover-agent's Agent, its HTTP ServerLink and the ab-slot update module over a
// FileBootloader, each device with its own Ed25519 key and state directory — and talk HTTP
// over loopback to the real control plane (HttpServer, the device API, DeviceAuth,
// DeviceService, the rollout engine), all on the simulator's virtual clock.
//
// The twin still plays the physical world, through DeviceWorld: whether a device's link is
// up, how long its download takes at its bandwidth, how long an install and a reboot take,
// and which hardware fails to install or boot. Everything else — enrollment, login,
// check-ins, offers, status reports, Range downloads, sha256 checks, slot switches, commit
// and rollback — is the production code doing its job.
//
// Virtual time: a step of an agent happens at one instant of the clock (nothing in the
// process moves the clock while a request is in flight); what the step cost in the world
// (the transfer, the install, the reboots) is added before its next step. One thread drives
// every agent, one step at a time, which keeps a run deterministic.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "agent/server_link.h"
#include "agent/update_machine.h"
#include "base/clock.h"
#include "base/result.h"
#include "fleet/artifact_service.h"
#include "fleet/device_service.h"
#include "rollout/engine.h"
#include "sim/device_world.h"
#include "sim/scenario.h"
#include "store/store.h"
#include "transport/http/stack.h"

namespace drover::sim {

// The control plane's HTTP stack (the one `drover serve` runs) in this process, on 127.0.0.1
// (a free port). `dir` holds the artifacts' content. Devices that bring `enrollment_token`
// are accepted.
// `repository`, when given, is published to and served under /tuf/.
Result<std::unique_ptr<http::ServerStack>> start_loopback_server(
    Store& store, RolloutEngine& engine, DeviceService& service, Clock& clock,
    const std::string& dir, const std::string& enrollment_token,
    UpdateRepository* repository = nullptr);
// http://127.0.0.1:PORT
std::string loopback_url(const http::ServerStack& server);

// `size` bytes that stand for the artifact: the same for the same name and version.
std::string artifact_payload(const Artifact& a, uint64_t size);

struct NetworkFleetOptions {
  std::string dir;  // one subdirectory per device (created)
  std::string server;
  std::string enrollment_token;
  std::string ca_file;  // https: the CA the agents trust (empty: the system's)
  // Signed update metadata required (agent::SignedOffers), trusting this root first; the
  // metadata is fetched straight from the server, not through the device's simulated link
  // (the check follows a check-in, so the link was just up). Empty: off.
  std::string initial_root;
  Duration timeout = seconds(30);      // of each request
  std::string component = "firmware";  // what the agents' A/B module installs
  agent::Inventory installed;          // what every device runs at its first start
  uint64_t seed = 1;
};

struct NetworkDevice {
  std::string id, device_type, hardware_revision;
  Duration poll_interval = minutes(30);  // until the first check-in says otherwise
  bool intermittent = false;             // its link is up only in windows
};

// What one step of an agent did, for the twin to schedule the next one.
struct AgentStep {
  Duration busy{0};        // time the step took in the world: transfer, install, reboots
  Duration wait{0};        // then it asks to run again after this long
  bool link_down = false;  // it found its link down: it runs again when the link is up
  agent::UpdateStep step = agent::UpdateStep::kIdle;  // where it stands now
  bool report_pending = false;                        // an outcome not yet delivered to the server
  bool trial_failed = false;  // the trial boot of the new image failed just now
  bool committed = false;     // it committed `version` just now
  bool rebooted = false;      // the machine restarted (into the trial slot or back)
  std::string rollout_id, version;
  bool revert = false;
};

class NetworkFleet {
 public:
  NetworkFleet(NetworkFleetOptions options, DeviceWorld& world, Clock& clock);
  ~NetworkFleet();
  NetworkFleet(const NetworkFleet&) = delete;
  NetworkFleet& operator=(const NetworkFleet&) = delete;

  // Devices are numbered in the order they are added.
  void add(NetworkDevice device);

  // Runs one step of the device's agent (starting it first: at its first step, and after
  // every reboot, a new Agent comes up over the device's state directory). kIo / kCorruption
  // when the agent cannot start.
  Result<AgentStep> step(uint32_t dev);

  // The device's health monitor reports it unhealthy on `version` (the fails_after defect):
  // nothing when it no longer runs that version or is mid-update. kIo when its link is down.
  Status report_unhealthy(uint32_t dev, const std::string& rollout_id, const std::string& version);

  uint64_t checkins() const;
  uint64_t reports() const;
  uint64_t downloads_cut() const;  // by a link going down (each resumes later)

 private:
  struct Node;
  class SimLink;
  class SimModule;
  Status boot(Node& n, uint32_t dev);  // starts the device's agent unless it runs
  Status start_agent(Node& n, uint32_t dev);

  NetworkFleetOptions o_;
  DeviceWorld& world_;
  Clock& clock_;
  std::vector<std::unique_ptr<Node>> nodes_;
  uint64_t checkins_ = 0;
  uint64_t reports_ = 0;
  uint64_t downloads_cut_ = 0;
};

}  // namespace drover::sim
