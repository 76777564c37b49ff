#include "sim/event_queue.h"

#include <algorithm>
#include <functional>

#include "base/result.h"

namespace drover::sim {

EventQueue::EventQueue(int64_t start_ms)
    : ring_(kRing),
      current_bucket_(bucket_of(start_ms)),
      announced_second_(second_of(start_ms) - 1) {}

void EventQueue::push(const Event& e) {
  const int64_t bucket = bucket_of(e.at_ms);
  DROVER_CHECK(bucket >= current_bucket_);
  if (bucket == current_bucket_) {
    late_.push_back(e);
    std::push_heap(late_.begin(), late_.end(), std::greater<>());
  } else if (bucket < current_bucket_ + kRing) {
    auto& slot = ring_[static_cast<size_t>(bucket & (kRing - 1))];
    if (slot.capacity() == 0 && !spare_.empty()) {
      slot.swap(spare_.back());
      spare_.pop_back();
    }
    slot.push_back(e);
    ++in_ring_;
  } else {
    overflow_.push_back(e);
    std::push_heap(overflow_.begin(), overflow_.end(), std::greater<>());
  }
  ++size_;
}

void EventQueue::refill() {
  while (current_done()) {
    current_.clear();
    next_ = 0;
    if (in_ring_ == 0) {
      // Nothing in the next three days: jump to the first overflow event.
      current_bucket_ = std::max(current_bucket_, bucket_of(overflow_.front().at_ms) - 1);
    }
    ++current_bucket_;
    auto& slot = ring_[static_cast<size_t>(current_bucket_ & (kRing - 1))];
    if (!slot.empty()) {
      in_ring_ -= slot.size();
      current_.swap(slot);
      // Recycle the emptied storage for the next bucket to fill: thousands of buckets each
      // keeping its own high-water capacity would hold far more than the queue ever does.
      if (slot.capacity() > 0) spare_.push_back(std::move(slot));
      slot = std::vector<Event>();
    }
    while (!overflow_.empty() && bucket_of(overflow_.front().at_ms) < current_bucket_ + kRing) {
      std::pop_heap(overflow_.begin(), overflow_.end(), std::greater<>());
      const Event e = overflow_.back();
      overflow_.pop_back();
      const int64_t bucket = bucket_of(e.at_ms);
      if (bucket == current_bucket_) {
        current_.push_back(e);
      } else {
        ring_[static_cast<size_t>(bucket & (kRing - 1))].push_back(e);
        ++in_ring_;
      }
    }
    std::sort(current_.begin(), current_.end());
  }
}

const Event& EventQueue::top() {
  DROVER_CHECK(size_ > 0);
  refill();
  return late_first() ? late_.front() : current_[next_];
}

void EventQueue::pop() {
  DROVER_CHECK(size_ > 0);
  refill();
  if (late_first()) {
    std::pop_heap(late_.begin(), late_.end(), std::greater<>());
    late_.pop_back();
  } else {
    ++next_;
  }
  --size_;
}

bool EventQueue::new_second() {
  const int64_t second = second_of(top().at_ms);
  if (second == announced_second_) return false;
  announced_second_ = second;
  return true;
}

std::span<const Event> EventQueue::current_events() const {
  size_t end = next_;
  while (end < current_.size() && second_of(current_[end].at_ms) == announced_second_) ++end;
  return {current_.data() + next_, end - next_};
}

}  // namespace drover::sim
