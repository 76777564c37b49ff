// Time as a dependency. Everything that reads time or waits takes a Clock&; only SystemClock
// reads the system clock. ManualClock moves only when told to and jumps straight to the next
// due timer, which is what lets the simulator run days of fleet time in seconds.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <thread>
#include <utility>

#include "base/mutex.h"

namespace drover {

using Duration = std::chrono::milliseconds;
using Timestamp = std::chrono::sys_time<Duration>;

// A stretch of time [from, until), in UTC.
struct TimeRange {
  Timestamp from{};
  Timestamp until{};
  friend bool operator==(const TimeRange&, const TimeRange&) = default;
};

constexpr Duration seconds(int64_t s) { return Duration(s * 1000); }
constexpr Duration minutes(int64_t m) { return Duration(m * 60'000); }
constexpr Duration hours(int64_t h) { return Duration(h * 3'600'000); }
constexpr Duration days(int64_t d) { return hours(d * 24); }
inline double to_seconds(Duration d) { return static_cast<double>(d.count()) / 1000.0; }
// Seconds since the Unix epoch.
inline int64_t epoch_seconds(Timestamp t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

class Clock {
 public:
  using TimerId = uint64_t;
  using Callback = std::function<void()>;

  virtual ~Clock() = default;

  virtual Timestamp now() const = 0;

  // Runs `cb` once, at or after `at`. Returns an id for cancel(). SystemClock runs callbacks on
  // its own timer thread; ManualClock runs them inside advance_to()/run_next().
  virtual TimerId schedule_at(Timestamp at, Callback cb) = 0;
  TimerId schedule_after(Duration d, Callback cb) { return schedule_at(now() + d, std::move(cb)); }

  // Returns false when the timer already ran or was cancelled.
  virtual bool cancel(TimerId id) = 0;
};

// Blocks the caller until `clock` reaches `t` (returns at once when it has): a timer on the
// clock wakes it. For clocks that move by themselves or by another party (SystemClock, a
// clock a test moves from its timers' side); a ManualClock that only this thread moves, a
// stopped SystemClock, or a call from a timer of the same SystemClock would never wake it.
void sleep_until(Clock& clock, Timestamp t);

// Wall-clock time. Thread-safe. Timers run on one lazily started background thread, which
// the destructor stops (timers not yet due are dropped).
class SystemClock final : public Clock {
 public:
  SystemClock() = default;
  ~SystemClock() override;
  SystemClock(const SystemClock&) = delete;
  SystemClock& operator=(const SystemClock&) = delete;

  Timestamp now() const override;
  TimerId schedule_at(Timestamp at, Callback cb) override;
  bool cancel(TimerId id) override;
  // Stops the timer thread, after the timer running now (if any) returns; later timers never
  // run. Idempotent; the destructor calls it. Owners stop the clock before destroying what
  // its timers call into.
  void stop();

 private:
  void run();

  Mutex mu_;
  CondVar cv_;
  std::map<std::pair<Timestamp, TimerId>, Callback> timers_ GUARDED_BY(mu_);
  TimerId next_id_ GUARDED_BY(mu_) = 1;
  bool stopping_ GUARDED_BY(mu_) = false;
  std::thread thread_;
};

// Simulated time. One thread owns it: only that thread schedules, cancels and moves it.
// now() may also be read from other threads (a server in the same process answering the
// owner's requests), and sees the time as last set. Timers due at the same instant run in
// the order they were scheduled, so a run is deterministic.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(Timestamp start) : now_(start) {}

  Timestamp now() const override { return now_.load(std::memory_order_acquire); }
  TimerId schedule_at(Timestamp at, Callback cb) override;
  bool cancel(TimerId id) override;

  // Runs every timer due at or before `t` (moving now() to each one's time), then sets
  // now() to `t`. `t` earlier than now() is a programming error.
  void advance_to(Timestamp t);
  void advance(Duration d) { advance_to(now() + d); }

  // Jumps to the earliest pending timer and runs it. Returns false when none is pending.
  bool run_next();

  // The due time of the earliest pending timer, or Timestamp::max() when there is none.
  Timestamp next_due() const;
  size_t pending() const { return timers_.size(); }

 private:
  void set(Timestamp t) { now_.store(t, std::memory_order_release); }

  std::atomic<Timestamp> now_;  // a plain load and store on 64-bit machines
  std::map<std::pair<Timestamp, TimerId>, Callback> timers_;
  std::map<TimerId, Timestamp> due_by_id_;
  TimerId next_id_ = 1;
};

}  // namespace drover
