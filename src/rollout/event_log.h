// What the engine decided, kept for the operator to read back: the recent events of each
// rollout (started, stage started and settled, stratum halted with its reason, paused,
// completed, ...), numbered in one sequence so that a client polls for what is new with
// `after`. In memory: a restart starts a new sequence (the rollout's record keeps its stage
// times and halts; the audit log keeps its state changes).
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "base/mutex.h"
#include "rollout/engine.h"

namespace drover {

class RolloutEventLog {
 public:
  static constexpr size_t kPerRollout = 256;    // the newest kept per rollout
  static constexpr size_t kRollouts = 1024;     // rollouts kept; the least recently told go
  static constexpr size_t kEvictedKept = 4096;  // evicted rollouts remembered, by their last seq

  struct Entry {
    uint64_t seq = 0;  // 1, 2, ... across every rollout, since the server started
    EngineEvent event;
  };

  // Keeps `e` (events without a rollout, such as a failed tick, are kept under "").
  void add(const EngineEvent& e);

  struct Page {
    std::vector<Entry> events;  // oldest first
    uint64_t last = 0;          // the newest seq given out so far: the next `after`
    bool truncated = false;     // events after `after` were dropped (too many, or too old)
  };
  // The rollout's events after sequence number `after`, at most `limit` (the oldest of them).
  // An `after` beyond the newest number (given out before the server restarted) reads from
  // the start, `truncated`. A rollout evicted as the stalest and told of again starts
  // afresh, its older events gone: reading from before them is `truncated` too (the evicted
  // rollouts are remembered, the newest kEvictedKept of them).
  Page since(const std::string& rollout_id, uint64_t after, size_t limit) const;

 private:
  struct Rollout {
    std::deque<Entry> events;
    uint64_t dropped_through = 0;  // the newest seq dropped from the front
    uint64_t touched = 0;          // seq of its newest event, to find the stalest rollout
  };
  mutable Mutex mu_{LockLevel::kLeaf};
  uint64_t seq_ GUARDED_BY(mu_) = 0;
  std::map<std::string, Rollout, std::less<>> rollouts_ GUARDED_BY(mu_);
  // Evicted rollouts: the newest seq each had, for a rollout told of again; oldest first.
  std::map<std::string, uint64_t, std::less<>> evicted_ GUARDED_BY(mu_);
  std::deque<std::pair<std::string, uint64_t>> evicted_order_ GUARDED_BY(mu_);
};

}  // namespace drover
