// FlatIndex: an open-addressing hash index from a 64-bit key hash to small integer values,
// for the hot lookups of the check-in path (device id -> record position). It stores no keys: a
// lookup visits every value whose hash matches, and the caller confirms the key against its
// own record (which it reads next anyway), so a lookup costs one cache line in the common
// case instead of the two or three of a node-based map. Several values may share a hash.
// There is no erase: owners rebuild the index when records go away.
// Not thread-safe.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "base/huge_pages.h"

namespace drover {

class FlatIndex {
 public:
  // The hash to index `key` under. Keyed per process (different in every run) so that
  // chosen keys cannot pile into one probe run; never persist it.
  static uint64_t hash(std::string_view key);

  void reserve(size_t n);
  void insert(uint64_t hash, uint64_t value);
  size_t size() const { return size_; }
  void clear();

  // Hints that `hash` will be looked up soon: fetches its slot into the cache.
  void prefetch(uint64_t hash) const {
    if (!slots_.empty()) __builtin_prefetch(&slots_[(hash | 1) & mask_]);
  }
  // The first value stored under `hash`, unverified (for prefetching what it points to).
  bool first(uint64_t hash, uint64_t& value) const {
    return find(hash, [&](uint64_t v) {
      value = v;
      return true;
    });
  }

  // Calls fn(value) for every value stored under `hash` until fn returns true. Returns
  // whether fn returned true.
  template <typename Fn>
  bool find(uint64_t hash, Fn&& fn) const {
    if (slots_.empty()) return false;
    const uint64_t tag = hash | 1;  // 0 marks an empty slot
    for (size_t i = tag & mask_;; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.tag == 0) return false;
      if (s.tag == tag && fn(s.value)) return true;
    }
  }

 private:
  struct Slot {
    uint64_t tag = 0;
    uint64_t value = 0;
  };
  void grow();
  std::vector<Slot, HugePageAllocator<Slot>> slots_;
  size_t mask_ = 0;
  size_t size_ = 0;
};

}  // namespace drover
