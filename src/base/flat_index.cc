#include "base/flat_index.h"

#include <functional>

namespace drover {

uint64_t FlatIndex::hash(std::string_view key) {
  // libstdc++'s string hash (murmur-based) mixed once more so that the low bits, which pick
  // the slot, depend on every byte.
  uint64_t h = std::hash<std::string_view>{}(key);
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  return h;
}

void FlatIndex::clear() {
  slots_.clear();
  mask_ = 0;
  size_ = 0;
}

void FlatIndex::reserve(size_t n) {
  size_t want = 16;
  while (want < n * 2) want *= 2;  // load factor at most 1/2
  if (want <= slots_.size()) return;
  auto old = std::move(slots_);
  slots_ = decltype(slots_)(want, Slot{});
  mask_ = want - 1;
  size_ = 0;
  for (const Slot& s : old) {
    if (s.tag != 0) insert(s.tag, s.value);
  }
}

void FlatIndex::grow() { reserve(slots_.empty() ? 8 : slots_.size()); }

void FlatIndex::insert(uint64_t hash, uint64_t value) {
  if ((size_ + 1) * 2 > slots_.size()) grow();
  const uint64_t tag = hash | 1;
  size_t i = tag & mask_;
  while (slots_[i].tag != 0) i = (i + 1) & mask_;
  slots_[i] = Slot{tag, value};
  ++size_;
}

}  // namespace drover
