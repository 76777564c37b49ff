// The twin's event queue: a calendar queue of one-second buckets over a ring of about three
// days, with a heap for the bucket being processed and another for events further out.
// It pops events in exactly the order of a binary heap on (time, sequence) — which keeps
// runs deterministic — but a push or pop touches one small bucket instead of sifting through
// a heap of a million entries. Not thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace drover::sim {

struct Event {
  int64_t at_ms;
  uint64_t seq;  // ties at the same instant run in scheduling order
  uint32_t device;
  uint8_t kind;
  bool operator>(const Event& o) const { return at_ms != o.at_ms ? at_ms > o.at_ms : seq > o.seq; }
};

class EventQueue {
 public:
  // No event may be earlier than `start_ms`, nor earlier than one already popped.
  explicit EventQueue(int64_t start_ms);

  void push(const Event& e);
  bool empty() const { return size_ == 0; }
  size_t size() const { return size_; }
  // The earliest event; the queue must not be empty.
  const Event& top();
  void pop();

  // True once after top() moved to a new second: the events of that second are then
  // current_events() (in no particular order), for the caller to prepare for them.
  bool new_second() {
    const bool fresh = fresh_;
    fresh_ = false;
    return fresh;
  }
  const std::vector<Event>& current_events() const { return current_; }

 private:
  static constexpr int kRingBits = 18;  // 2^18 s is about 73 hours
  static constexpr int64_t kRing = int64_t{1} << kRingBits;
  static int64_t second_of(int64_t ms) { return ms >= 0 ? ms / 1000 : (ms - 999) / 1000; }
  void refill();

  std::vector<std::vector<Event>> ring_;
  std::vector<Event> current_;             // min-heap: every event of second current_second_
  std::vector<Event> overflow_;            // min-heap: events at or beyond current_second_ + kRing
  std::vector<std::vector<Event>> spare_;  // emptied bucket storage, ready for reuse
  int64_t current_second_;
  size_t in_ring_ = 0;
  bool fresh_ = false;
  size_t size_ = 0;
};

}  // namespace drover::sim
