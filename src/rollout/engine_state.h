// The rollout engine's write staging (RolloutEngine::Txn) over its loaded rollouts
// (loaded_rollout.h), shared by the files that implement the engine (engine*.cc). Include
// only from those.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "rollout/engine.h"
#include "rollout/health_gate.h"
#include "rollout/loaded_rollout.h"

namespace drover {

// Changes staged for one atomic commit: copies of the records as they will be.
// A device's words as a step (and a deployment's error) keeps them: at most kMaxStepMessage
// bytes, cut on a UTF-8 character, control characters other than newline and tab replaced
// by '?', so they cannot rewrite an operator's terminal. In engine_rollback.cc.
std::string step_message(std::string_view m);

inline bool is_zero(Timestamp t) { return t == Timestamp{}; }

struct RolloutEngine::Txn {
  WriteBatch batch;
  std::vector<uint32_t> dep_index;              // parallel to batch.deployments
  std::unordered_map<uint32_t, size_t> staged;  // dep index -> position in batch
  std::vector<EngineEvent> events;

  Deployment& dep(Active& a, uint32_t i) {
    auto [it, fresh] = staged.emplace(i, batch.deployments.size());
    if (fresh) {
      batch.deployments.push_back(a.deps[i]);
      dep_index.push_back(i);
    }
    return batch.deployments[it->second];
  }
  const Deployment& current(const Active& a, uint32_t i) const {
    auto it = staged.find(i);
    return it == staged.end() ? a.deps[i] : batch.deployments[it->second];
  }
  Rollout& rollout(Active& a) {
    if (batch.rollouts.empty()) batch.rollouts.push_back(a.rollout);
    return batch.rollouts.front();
  }
  // The rollout as this transaction leaves it so far.
  const Rollout& current_rollout(const Active& a) const {
    return batch.rollouts.empty() ? a.rollout : batch.rollouts.front();
  }
};

// What the health passes of one tick ask their source (RolloutEngine::plan_health_reads),
// and then the answers (read_health): a HealthSource that answers only what was read; asked
// anything else it counts a miss and answers kFailedPrecondition (the device then waits for
// the next tick, not for the next pass as after the source's own failure).
struct RolloutEngine::HealthReads final : HealthSource {
  struct Due {
    std::string device;
    Timestamp from{}, offered{}, committed{}, to{};  // the pair's windows
    std::vector<std::string> candidates;  // the partners it may take, in the order it tries them
  };
  struct Pass {
    std::string rollout;  // the rollout's id
    std::vector<HealthMetric> metrics;
    std::vector<Due> due;
  };
  std::vector<Pass> passes;
  Timestamp planned_at{};  // the time the passes were planned for
  uint64_t misses = 0;     // questions asked that were not read

  bool planned(std::string_view rollout) const {
    for (const Pass& p : passes) {
      if (p.rollout == rollout) return true;
    }
    return false;
  }

  Result<std::optional<double>> measure(std::string_view device_id, const HealthMetric& metric,
                                        Timestamp from, Timestamp to) override;
  void keep(std::string_view device_id, const HealthMetric& metric, Timestamp from, Timestamp to,
            Result<std::optional<double>> answer);

 private:
  static std::string key(std::string_view device_id, const HealthMetric& metric, Timestamp from,
                         Timestamp to);
  std::unordered_map<std::string, Result<std::optional<double>>> answered_;
};

}  // namespace drover
