#include "base/huge_pages.h"

namespace drover {
namespace {
constexpr size_t kHuge = size_t{2} << 20;
size_t round_up(size_t n) { return (n + kHuge - 1) / kHuge * kHuge; }
}  // namespace

void* huge_page_map(size_t bytes) {
  const size_t len = round_up(bytes);
  // Map 2 MiB more than needed, then trim so the block starts on a 2 MiB boundary: only
  // aligned 2 MiB ranges can become huge pages.
  void* raw =
      mmap(nullptr, len + kHuge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) return nullptr;
  const auto start = reinterpret_cast<uintptr_t>(raw);
  const size_t lead = ((start + kHuge - 1) & ~(kHuge - 1)) - start;  // to the boundary
  if (lead > 0) munmap(raw, lead);
  void* p = static_cast<char*>(raw) + lead;
  if (kHuge > lead) munmap(static_cast<char*>(p) + len, kHuge - lead);
  madvise(p, len, MADV_HUGEPAGE);
  return p;
}

void huge_page_unmap(void* p, size_t bytes) { munmap(p, round_up(bytes)); }

}  // namespace drover
