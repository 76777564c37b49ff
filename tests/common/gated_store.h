// A store whose commits wait until the test opens the gate, and fail on cue: the test
// decides when the "disk" is done (for the group commit, store/group_commit.h).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <vector>

#include "forwarding_store.h"

namespace drover::testing {

class GatedStore final : public ForwardingStore {
 public:
  GatedStore() : ForwardingStore(make_memory_store()) {}

  Status apply_all(std::span<const WriteBatch* const> batches) override {
    std::unique_lock lock(mu_);
    ++entered_;
    entered_cv_.notify_all();
    open_cv_.wait(lock, [&] { return open_ > 0; });
    if (open_ != SIZE_MAX) --open_;
    groups_->push_back(batches.size());
    if (fail_next_) {
      fail_next_ = false;
      return io_error("disk full");
    }
    lock.unlock();
    return ForwardingStore::apply_all(batches);
  }

  // Lets `n` commits through (SIZE_MAX: all from now on).
  void open(size_t n = SIZE_MAX) {
    std::lock_guard lock(mu_);
    open_ = n == SIZE_MAX ? SIZE_MAX : open_ + n;
    open_cv_.notify_all();
  }
  void fail_next() {
    std::lock_guard lock(mu_);
    fail_next_ = true;
  }
  // Waits until `n` commits have started.
  void await_entered(size_t n) {
    std::unique_lock lock(mu_);
    entered_cv_.wait(lock, [&] { return entered_ >= n; });
  }
  std::vector<size_t> groups() {
    std::lock_guard lock(mu_);
    return *groups_;
  }
  // The same record, still readable after the store is gone.
  std::shared_ptr<std::vector<size_t>> groups_record() { return groups_; }

 private:
  std::mutex mu_;
  std::condition_variable open_cv_, entered_cv_;
  size_t open_ = 0;
  size_t entered_ = 0;
  bool fail_next_ = false;
  // Batches per commit, in order.
  std::shared_ptr<std::vector<size_t>> groups_ = std::make_shared<std::vector<size_t>>();
};

}  // namespace drover::testing
