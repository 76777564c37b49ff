// Seeded randomness. The same seed gives the same sequence on every compiler and platform,
// which std::uniform_*_distribution does not promise; reports stay byte-identical.
#pragma once

#include <cstdint>
#include <string_view>

namespace drover {

// xoshiro256** seeded through splitmix64. Not thread-safe; not for cryptography.
class Rng {
 public:
  explicit Rng(uint64_t seed);

  uint64_t next_u64();
  // Uniform in [0, 1).
  double uniform();
  // Uniform in [0, n); n must be > 0.
  uint64_t below(uint64_t n);
  // True with probability p.
  bool chance(double p) { return uniform() < p; }
  // Uniform in [lo, hi).
  double between(double lo, double hi) { return lo + (hi - lo) * uniform(); }

 private:
  uint64_t s_[4];
};

// A stable 64-bit hash (FNV-1a followed by a splitmix64 finaliser): the same on every
// platform, so orders derived from it are reproducible. Not for hash-flooding resistance.
uint64_t stable_hash(std::string_view text, uint64_t seed = 0);

// Mixes a 64-bit value (splitmix64 finaliser). Inline: index hashes on the check-in path
// end with it.
inline uint64_t mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

}  // namespace drover
