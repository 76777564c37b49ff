#include "base/flat_index.h"

#include <sys/random.h>

#include <cstdint>
#include <cstring>

#include "base/random.h"

namespace drover {

namespace {

// Drawn once per process: ids are chosen by devices, and a key they cannot know keeps them
// from crafting ids that all fall into one probe run. No behaviour depends on its value.
// getrandom() cannot fail for 8 bytes once the pool is initialised; if it ever did, the
// address of this function (randomised per process by ASLR) is the key.
uint64_t draw_process_key() noexcept {
  uint64_t key = 0;
  if (::getrandom(&key, sizeof key, 0) != sizeof key) {
    key = static_cast<uint64_t>(reinterpret_cast<uintptr_t>(&::getrandom));
  }
  return key;
}
const uint64_t kProcessKey = draw_process_key();

constexpr uint64_t kMul = 0x9e3779b97f4a7c15ULL;

uint64_t load(const char* p, size_t bytes) {
  uint64_t word = 0;
  std::memcpy(&word, p, bytes);  // bytes is 4 or 8: one load
  return word;
}

uint64_t absorb(uint64_t h, uint64_t word) {
  h = (h ^ word) * kMul;
  return h ^ (h >> 29);
}

}  // namespace

uint64_t FlatIndex::hash(std::string_view key) {
  // Eight bytes per multiply; the last (partial) word is read as overlapping loads rather
  // than byte by byte. Given the length, which is absorbed first, the words read determine
  // the key, so distinct keys differ before the final mix.
  const char* p = key.data();
  const size_t n = key.size();
  uint64_t h = absorb(kProcessKey, n);
  if (n >= 8) {
    size_t i = 0;
    for (; i + 8 < n; i += 8) h = absorb(h, load(p + i, 8));
    return mix64(absorb(h, load(p + n - 8, 8)));
  }
  uint64_t word = 0;
  if (n >= 4) {
    word = load(p, 4) | load(p + n - 4, 4) << 32;
  } else if (n > 0) {
    word = uint64_t{static_cast<uint8_t>(p[0])} | uint64_t{static_cast<uint8_t>(p[n / 2])} << 8 |
           uint64_t{static_cast<uint8_t>(p[n - 1])} << 16;
  }
  return mix64(absorb(h, word));
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
