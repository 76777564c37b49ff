// The twin's timeline: every line a run tells (the engine's decisions, the fleet's milestones,
// what devices did), stamped with the time since the scenario's start and the UTC time of
// day. Device-level news is told for the first few devices of each kind and counted after.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "base/clock.h"
#include "base/mutex.h"
#include "rollout/engine.h"

namespace drover::sim {

class FleetWorld;

class Narrator {
 public:
  // Lines go to `timeline` (none when it is empty). `held`: the engine may speak on another
  // thread (a network run's server), so its lines wait until flush_engine_lines() on the
  // thread that drives the run.
  Narrator(Timestamp start, const Clock& clock, std::function<void(const std::string&)> timeline,
           bool held);

  // "T+HH:MM:SS  HH:MMZ": the time since the start and the time of day in UTC.
  std::string stamp(Timestamp t) const;
  // A line at the clock's now.
  void say(const std::string& line);
  // A line about one device ("[device] dev-000042 (rev, site): what"), for the first
  // kDeviceLines devices `told` counts; every call counts.
  void tell_device(const FleetWorld& world, uint32_t dev, const std::string& what, uint32_t& told);
  // One of the engine's events, stamped with its own time. Held: callable from any thread;
  // otherwise told at once, on the caller's thread.
  void engine_event(const EngineEvent& e);
  void flush_engine_lines();

  static constexpr uint32_t kDeviceLines = 3;

 private:
  void tell(const std::string& line) {
    if (timeline_) timeline_(line);
  }

  Timestamp start_;
  const Clock& clock_;
  std::function<void(const std::string&)> timeline_;
  bool held_;
  Mutex mu_;
  std::vector<std::string> held_lines_ GUARDED_BY(mu_);
};

}  // namespace drover::sim
