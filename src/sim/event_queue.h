// The twin's event queue: a calendar queue of 16-second buckets over a ring of about three
// days, and a heap for events further out. A bucket is sorted once when it comes up and then
// read in order; the rare event pushed into the bucket being read waits in a small heap
// beside it. Pops come in exactly the order of a binary heap on (time, sequence) — which
// keeps runs deterministic — but a push appends to one of the few hundred buckets of the
// next hour, whose ends stay in the CPU cache, instead of sifting through a heap of a million
// entries. Not thread-safe.
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

  // The events that come next (at most `max`, in order), each handed out once, for the
  // caller to prepare for them (fetch what they will touch into the CPU cache); empty while
  // events handed out before are still queued. Events pushed into the current bucket after
  // it came up are not included.
  std::span<const Event> upcoming(size_t max);

 private:
  static constexpr int kBucketBits = 14;  // 16.384 s per bucket
  static constexpr int kRingBits = 14;    // 2^14 buckets: about 74.6 hours
  static constexpr int64_t kRing = int64_t{1} << kRingBits;
  static int64_t bucket_of(int64_t ms) { return ms >> kBucketBits; }  // floor, also below 0
  // Called on every top() and pop(): the check is inline, the work is not.
  void refill() {
    if (current_done()) next_bucket();
  }
  void next_bucket();
  void sort_current();
  bool current_done() const { return next_ == current_.size() && late_.empty(); }
  // Whether the next event to pop is late_'s rather than current_'s.
  bool late_first() const {
    return !late_.empty() && (next_ == current_.size() || late_.front() < current_[next_]);
  }

  std::vector<std::vector<Event>> ring_;
  std::vector<Event> current_;             // the events of bucket current_bucket_, sorted
  size_t next_ = 0;                        // the first of current_ not yet popped
  size_t handed_out_ = 0;                  // current_[0, handed_out_) went out in upcoming()
  std::vector<Event> scratch_;             // sort_current()'s second buffer
  std::vector<Event> late_;                // min-heap: pushed into current_bucket_ once sorted
  std::vector<Event> overflow_;            // min-heap: events at or beyond current_bucket_ + kRing
  std::vector<std::vector<Event>> spare_;  // emptied bucket storage, ready for reuse
  int64_t current_bucket_;
  size_t in_ring_ = 0;
  size_t size_ = 0;
};

}  // namespace drover::sim
