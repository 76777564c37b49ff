#include "rollout/event_log.h"

#include <algorithm>

namespace drover {

void RolloutEventLog::add(const EngineEvent& e) {
  MutexLock lock(mu_);
  const uint64_t seq = ++seq_;
  auto [it, fresh] = rollouts_.try_emplace(e.rollout_id);
  Rollout& r = it->second;
  if (fresh) {
    // Told of again after it was evicted: what it had before is gone.
    if (auto gone = evicted_.find(e.rollout_id); gone != evicted_.end()) {
      r.dropped_through = gone->second;
      evicted_.erase(gone);  // (its entry in evicted_order_ then finds nothing to forget)
    }
  }
  r.events.push_back({seq, e});
  r.touched = seq;
  if (r.events.size() > kPerRollout) {
    r.dropped_through = r.events.front().seq;
    r.events.pop_front();
  }
  if (fresh && rollouts_.size() > kRollouts) {
    auto stalest = std::min_element(
        rollouts_.begin(), rollouts_.end(),
        [](const auto& a, const auto& b) { return a.second.touched < b.second.touched; });
    if (evicted_order_.size() == kEvictedKept) {
      const auto& [id, last_seq] = evicted_order_.front();
      // Only the eviction this entry records (the rollout may have been evicted again since).
      if (auto oldest = evicted_.find(id); oldest != evicted_.end() && oldest->second == last_seq)
        evicted_.erase(oldest);
      evicted_order_.pop_front();
    }
    evicted_[stalest->first] = stalest->second.touched;
    evicted_order_.emplace_back(stalest->first, stalest->second.touched);
    rollouts_.erase(stalest);
  }
}

RolloutEventLog::Page RolloutEventLog::since(const std::string& rollout_id, uint64_t after,
                                             size_t limit) const {
  MutexLock lock(mu_);
  Page page;
  page.last = seq_;
  // A number from before a restart: the sequence started again, so what is kept is new.
  if (after > seq_) {
    page.truncated = true;
    after = 0;
  }
  if (limit == 0) return page;
  auto it = rollouts_.find(rollout_id);
  if (it == rollouts_.end()) return page;
  const Rollout& r = it->second;
  page.truncated = page.truncated || after < r.dropped_through;
  auto from = std::upper_bound(r.events.begin(), r.events.end(), after,
                               [](uint64_t s, const Entry& e) { return s < e.seq; });
  for (; from != r.events.end() && page.events.size() < limit; ++from) {
    page.events.push_back(*from);
  }
  // A page cut short by `limit` resumes after its own last event, not the newest.
  if (from != r.events.end()) page.last = page.events.back().seq;
  return page;
}

}  // namespace drover
