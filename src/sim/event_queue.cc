#include "sim/event_queue.h"

#include <algorithm>
#include <array>
#include <functional>

#include "base/result.h"

namespace drover::sim {

// The bucket before the first is "current": the first one then fills and is sorted like any
// other.
EventQueue::EventQueue(int64_t start_ms) : ring_(kRing), current_bucket_(bucket_of(start_ms) - 1) {}

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

void EventQueue::next_bucket() {
  while (current_done()) {
    current_.clear();
    next_ = 0;
    handed_out_ = 0;
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
    sort_current();
  }
}

void EventQueue::sort_current() {
  // A bucket holds its events in push order, which is sequence order (events carried over
  // from the overflow heap come first, with the smallest sequence numbers). A stable sort
  // by time alone therefore yields (time, sequence) order: two passes of a radix sort on the
  // 14 bits of time within the bucket, linear instead of n log n. The result is checked,
  // and a comparison sort repairs any bucket that broke the premise.
  constexpr int kDigitBits = kBucketBits / 2;
  constexpr size_t kBins = size_t{1} << kDigitBits;
  if (current_.size() < 64) {
    std::sort(current_.begin(), current_.end());
    return;
  }
  const int64_t base = current_bucket_ << kBucketBits;
  scratch_.resize(current_.size());
  for (int pass = 0; pass < 2; ++pass) {
    const int shift = pass * kDigitBits;
    auto digit = [&](const Event& e) {
      return static_cast<size_t>(((e.at_ms - base) >> shift) & (kBins - 1));
    };
    std::array<uint32_t, kBins + 1> start{};
    for (const Event& e : current_) ++start[digit(e) + 1];
    for (size_t b = 1; b <= kBins; ++b) start[b] += start[b - 1];
    for (const Event& e : current_) scratch_[start[digit(e)]++] = e;
    current_.swap(scratch_);
  }
  if (!std::is_sorted(current_.begin(), current_.end())) {
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

std::span<const Event> EventQueue::upcoming(size_t max) {
  refill();
  if (next_ < handed_out_) return {};
  handed_out_ = std::min(current_.size(), next_ + max);
  return {current_.data() + next_, handed_out_ - next_};
}

}  // namespace drover::sim
