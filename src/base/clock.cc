#include "base/clock.h"

#include <memory>

#include "base/result.h"

namespace drover {

// ---- SystemClock ----

SystemClock::~SystemClock() { stop(); }

void SystemClock::stop() {
  {
    MutexLock lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
}

Timestamp SystemClock::now() const {
  return std::chrono::time_point_cast<Duration>(std::chrono::system_clock::now());
}

Clock::TimerId SystemClock::schedule_at(Timestamp at, Callback cb) {
  MutexLock lock(mu_);
  TimerId id = next_id_++;
  timers_.emplace(std::make_pair(at, id), std::move(cb));
  if (!thread_.joinable()) thread_ = std::thread([this] { run(); });
  cv_.notify_all();
  return id;
}

bool SystemClock::cancel(TimerId id) {
  MutexLock lock(mu_);
  for (auto it = timers_.begin(); it != timers_.end(); ++it) {
    if (it->first.second == id) {
      timers_.erase(it);
      return true;
    }
  }
  return false;
}

void SystemClock::run() {
  mu_.lock();
  while (!stopping_) {
    if (timers_.empty()) {
      cv_.wait(mu_);
      continue;
    }
    auto due = timers_.begin()->first.first;
    if (now() < due) {
      cv_.wait_until(mu_, due);
      continue;
    }
    Callback cb = std::move(timers_.begin()->second);
    timers_.erase(timers_.begin());
    mu_.unlock();
    cb();
    mu_.lock();
  }
  mu_.unlock();
}

// ---- ManualClock ----

Clock::TimerId ManualClock::schedule_at(Timestamp at, Callback cb) {
  if (at < now()) at = now();
  TimerId id = next_id_++;
  timers_.emplace(std::make_pair(at, id), std::move(cb));
  due_by_id_.emplace(id, at);
  return id;
}

bool ManualClock::cancel(TimerId id) {
  auto it = due_by_id_.find(id);
  if (it == due_by_id_.end()) return false;
  timers_.erase(std::make_pair(it->second, id));
  due_by_id_.erase(it);
  return true;
}

bool ManualClock::run_next() {
  if (timers_.empty()) return false;
  auto it = timers_.begin();
  set(it->first.first);
  Callback cb = std::move(it->second);
  due_by_id_.erase(it->first.second);
  timers_.erase(it);
  cb();
  return true;
}

void ManualClock::advance_to(Timestamp t) {
  DROVER_CHECK(t >= now());
  while (!timers_.empty() && timers_.begin()->first.first <= t) run_next();
  set(t);
}

Timestamp ManualClock::next_due() const {
  return timers_.empty() ? Timestamp::max() : timers_.begin()->first.first;
}

void sleep_until(Clock& clock, Timestamp t) {
  if (clock.now() >= t) return;
  struct Wake {
    Mutex mu;
    CondVar cv;
    bool due GUARDED_BY(mu) = false;
  };
  // Shared with the timer: it may still be unlocking the mutex when the waiter returns.
  // Scheduled before the mutex is taken: a clock may run the timer inside schedule_at().
  auto wake = std::make_shared<Wake>();
  clock.schedule_at(t, [wake] {
    MutexLock lock(wake->mu);
    wake->due = true;
    wake->cv.notify_all();
  });
  MutexLock lock(wake->mu);
  while (!wake->due) wake->cv.wait(wake->mu);
}

}  // namespace drover
