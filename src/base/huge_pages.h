// An allocator for the few very large arrays that the check-in path reads at random (the
// registry, the engine's deployments, hash index slots). Blocks of 2 MiB and more are mapped
// directly and marked MADV_HUGEPAGE, so the kernel can back them with transparent huge
// pages: a million-device fleet then costs far fewer TLB misses. Smaller blocks come from
// the ordinary allocator. Where huge pages are unavailable the hint is ignored.
#pragma once

#include <sys/mman.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>

namespace drover {

void* huge_page_map(size_t bytes);  // nullptr on failure
void huge_page_unmap(void* p, size_t bytes);

template <typename T>
struct HugePageAllocator {
  using value_type = T;
  static constexpr size_t kThreshold = size_t{2} << 20;

  HugePageAllocator() = default;
  template <typename U>
  HugePageAllocator(const HugePageAllocator<U>&) {}  // NOLINT: rebinding must be implicit

  T* allocate(size_t n) {
    const size_t bytes = n * sizeof(T);
    if (bytes < kThreshold) return std::allocator<T>{}.allocate(n);
    void* p = huge_page_map(bytes);
    if (p == nullptr) throw std::bad_alloc();
    return static_cast<T*>(p);
  }
  void deallocate(T* p, size_t n) {
    const size_t bytes = n * sizeof(T);
    if (bytes < kThreshold) {
      std::allocator<T>{}.deallocate(p, n);
    } else {
      huge_page_unmap(p, bytes);
    }
  }
  template <typename U>
  bool operator==(const HugePageAllocator<U>&) const {
    return true;
  }
};

}  // namespace drover
