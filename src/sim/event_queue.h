// The twin's event queue: a calendar queue of one-second buckets over a ring of about three
// days, and a heap for events further out. The bucket of the current second is sorted once
// when it comes up and then read in order; the rare event pushed into the second being
// processed waits in a small heap beside it. It pops events in exactly the order of a binary
// heap on (time, sequence) — which keeps runs deterministic — but a push or pop touches one
// small bucket instead of sifting through a heap of a million entries. Not thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace drover::sim {

struct Event {
  int64_t at_ms;
  uint64_t seq;  // ties at the same instant run in scheduling order
  uint32_t device;
  uint8_t kind;
  bool operator>(const Event& o) const { return at_ms != o.at_ms ? at_ms > o.at_ms : seq > o.seq; }
  bool operator<(const Event& o) const { return o > *this; }
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
  // current_events(), for the caller to prepare for them.
  bool new_second() {
    const bool fresh = fresh_;
    fresh_ = false;
    return fresh;
  }
  std::span<const Event> current_events() const {
    return {current_.data() + next_, current_.size() - next_};
  }

 private:
  static constexpr int kRingBits = 18;  // 2^18 s is about 73 hours
  static constexpr int64_t kRing = int64_t{1} << kRingBits;
  static int64_t second_of(int64_t ms) { return ms >= 0 ? ms / 1000 : (ms - 999) / 1000; }
  void refill();
  bool current_done() const { return next_ == current_.size() && late_.empty(); }
  // Whether the next event to pop is late_'s rather than current_'s.
  bool late_first() const {
    return !late_.empty() && (next_ == current_.size() || late_.front() < current_[next_]);
  }

  std::vector<std::vector<Event>> ring_;
  std::vector<Event> current_;             // the events of second current_second_, sorted
  size_t next_ = 0;                        // the first of current_ not yet popped
  std::vector<Event> late_;                // min-heap: pushed into current_second_ once sorted
  std::vector<Event> overflow_;            // min-heap: events at or beyond current_second_ + kRing
  std::vector<std::vector<Event>> spare_;  // emptied bucket storage, ready for reuse
  int64_t current_second_;
  size_t in_ring_ = 0;
  bool fresh_ = false;
  size_t size_ = 0;
};

}  // namespace drover::sim
