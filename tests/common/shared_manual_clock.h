// Simulated time that several threads may share: the test moves it, a server's I/O threads
// schedule their deadlines on it (ServerOptions::deadline_clock). Timers run on the thread
// that moves time, outside the lock, in due order.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <thread>
#include <utility>

#include "base/clock.h"
#include "base/mutex.h"

namespace drover::testing {

class SharedManualClock final : public Clock {
 public:
  explicit SharedManualClock(Timestamp start) : now_(start) {}

  Timestamp now() const override {
    MutexLock lock(mu_);
    return now_;
  }
  TimerId schedule_at(Timestamp at, Callback cb) override {
    MutexLock lock(mu_);
    const TimerId id = next_id_++;
    timers_.emplace(std::make_pair(at, id), std::move(cb));
    return id;
  }
  bool cancel(TimerId id) override {
    MutexLock lock(mu_);
    for (auto it = timers_.begin(); it != timers_.end(); ++it) {
      if (it->first.second != id) continue;
      timers_.erase(it);
      return true;
    }
    return false;
  }

  // Runs every timer due within `d` from now, then sets now() to now + d.
  void advance(Duration d) {
    Timestamp until;
    {
      MutexLock lock(mu_);
      until = now_ + d;
    }
    for (;;) {
      Callback cb;
      {
        MutexLock lock(mu_);
        auto first = timers_.begin();
        if (first == timers_.end() || first->first.first > until) {
          now_ = until;
          return;
        }
        now_ = first->first.first;
        cb = std::move(first->second);
        timers_.erase(first);
      }
      cb();
    }
  }

  // The due time of the earliest timer scheduled, if any.
  std::optional<Timestamp> next_due() const {
    MutexLock lock(mu_);
    if (timers_.empty()) return std::nullopt;
    return timers_.begin()->first.first;
  }

  // Waits (in real time, up to `limit`) until `count` timers due exactly at `due` are
  // scheduled: what a test does before it moves time past a deadline another thread is
  // about to arm.
  bool wait_for_timer(Timestamp due, size_t count = 1,
                      std::chrono::milliseconds limit = std::chrono::seconds(5)) {
    const auto give_up = std::chrono::steady_clock::now() + limit;
    for (;;) {
      {
        MutexLock lock(mu_);
        size_t n = 0;
        for (auto it = timers_.lower_bound({due, 0}); it != timers_.end() && it->first.first == due;
             ++it)
          ++n;
        if (n >= count) return true;
      }
      if (std::chrono::steady_clock::now() > give_up) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }

 private:
  mutable Mutex mu_;
  Timestamp now_ GUARDED_BY(mu_);
  std::map<std::pair<Timestamp, TimerId>, Callback> timers_ GUARDED_BY(mu_);
  TimerId next_id_ GUARDED_BY(mu_) = 1;
};

}  // namespace drover::testing
