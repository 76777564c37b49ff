#include "sim/event_queue.h"

#include <algorithm>
#include <functional>

#include "base/result.h"

namespace drover::sim {

EventQueue::EventQueue(int64_t start_ms) : ring_(kRing), current_second_(second_of(start_ms)) {}

void EventQueue::push(const Event& e) {
  const int64_t sec = second_of(e.at_ms);
  DROVER_CHECK(sec >= current_second_);
  if (sec == current_second_) {
    late_.push_back(e);
    std::push_heap(late_.begin(), late_.end(), std::greater<>());
  } else if (sec < current_second_ + kRing) {
    auto& bucket = ring_[static_cast<size_t>(sec & (kRing - 1))];
    if (bucket.capacity() == 0 && !spare_.empty()) {
      bucket.swap(spare_.back());
      spare_.pop_back();
    }
    bucket.push_back(e);
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
      current_second_ = std::max(current_second_, second_of(overflow_.front().at_ms) - 1);
    }
    ++current_second_;
    auto& bucket = ring_[static_cast<size_t>(current_second_ & (kRing - 1))];
    if (!bucket.empty()) {
      in_ring_ -= bucket.size();
      current_.swap(bucket);
      // Recycle the emptied storage for the next bucket to fill: a quarter of a million
      // buckets each keeping its own high-water capacity would hold gigabytes.
      if (bucket.capacity() > 0) spare_.push_back(std::move(bucket));
      bucket = std::vector<Event>();
    }
    while (!overflow_.empty() && second_of(overflow_.front().at_ms) < current_second_ + kRing) {
      std::pop_heap(overflow_.begin(), overflow_.end(), std::greater<>());
      const Event e = overflow_.back();
      overflow_.pop_back();
      const int64_t sec = second_of(e.at_ms);
      if (sec == current_second_) {
        current_.push_back(e);
      } else {
        ring_[static_cast<size_t>(sec & (kRing - 1))].push_back(e);
        ++in_ring_;
      }
    }
    std::sort(current_.begin(), current_.end());
    fresh_ = !current_.empty();
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

}  // namespace drover::sim
