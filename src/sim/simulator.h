// The digital twin: a discrete-event simulation of a fleet on a ManualClock that drives the
// real DeviceService and RolloutEngine (never a copy of their logic). Each virtual device
// polls per its connectivity, downloads (time from size and bandwidth, paused while
// offline), installs, reboots into a trial boot, and commits or rolls back per the
// scenario's defects, reporting each step through the service.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "base/result.h"
#include "base/units.h"
#include "sim/report.h"
#include "sim/scenario.h"

namespace drover::sim {

// `drover sim --network`: the devices run as real agents against the real server over
// loopback (sim/network_fleet.h).
struct NetworkSimOptions {
  // The devices' state directories (and the server's artifacts) go here; empty: a fresh
  // directory under /dev/shm (or the temporary directory), removed at the end.
  std::string dir;
  // The bytes an artifact really carries over the wire: its content is a deterministic
  // payload of min(size, payload_bytes) bytes, while transfer times follow the size the
  // scenario gives it. At least 4096.
  uint64_t payload_bytes = 64 * kKiB;
  // Set: a `drover serve` elsewhere instead of one in this process. Sites, artifacts and
  // devices are set up and the rollout started through its operator API with `token` (an
  // operator's); the agents enroll with `enrollment_token`. The run keeps the server's time
  // (`server_clock`; the wall clock by default): the scenario starts now and takes its time.
  std::string server;
  std::string token;
  std::string enrollment_token;
  std::string ca_file;  // https: the CA to trust (empty: the system's)
  // With `server`: the root of its signed update metadata the agents trust from the start,
  // as devices do from their factory; every offer is then checked against the signed
  // targets. Empty: the agents take offers unsigned.
  std::string initial_root;
  // With `server`: the time that server keeps, which the run starts at and keeps pace with
  // (the devices' steps happen when it reaches them). Null: the wall clock. Tests give a
  // simulated one that they move as the run waits for it.
  Clock* server_clock = nullptr;
};

struct SimOptions {
  std::optional<uint64_t> seed;     // overrides the scenario's seed
  std::optional<uint32_t> devices;  // overrides the scenario's device count
  // "memory" (default) or "sqlite:PATH" (a fresh file; an existing one is refused).
  std::string store = "memory";
  // Pre-flight: defects are ignored, and the report lists the devices never reached and why.
  bool preflight = false;
  // Receives one readable line per notable event (engine decisions, fleet milestones).
  std::function<void(const std::string&)> timeline;
  // Receives progress: fraction of the horizon simulated, devices updated, targets.
  std::function<void(double fraction, uint32_t updated, uint32_t eligible)> progress;
  // Set: over the network (not with preflight).
  std::optional<NetworkSimOptions> network;
  // Set: the memory the run may use (the CLI passes what the machine has left); a fleet
  // whose estimate (estimate_memory_bytes) exceeds it is refused before anything starts.
  std::optional<uint64_t> memory_available;
};

// The memory a run of `devices` devices needs at its peak, from the peak resident size
// measured on the twin (docs/scenarios.md, "Limits"): a fixed part plus a part per device.
uint64_t estimate_memory_bytes(uint32_t devices);

// Runs the scenario to its end. Deterministic: the same scenario, options and seed give
// the same report (wall-clock fields aside). kInvalidArgument for a bad option or a
// scenario the services refuse; kIo for a store that cannot be opened.
Result<Report> run_simulation(const Scenario& scenario, const SimOptions& options);

}  // namespace drover::sim
