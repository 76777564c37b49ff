// How much memory this process may still use: the smaller of the kernel's estimate of
// available memory and what the process's cgroup (v2) still allows. Used to refuse work that
// cannot fit before it starts, rather than die of std::bad_alloc half-way.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace drover {

struct MemorySources {
  std::string meminfo = "/proc/meminfo";
  std::string cgroup_max = "/sys/fs/cgroup/memory.max";
  std::string cgroup_current = "/sys/fs/cgroup/memory.current";
};

// Bytes available, or std::nullopt when no source can be read. A cgroup limit of "max" is
// no limit. Thread-safe (reads files only).
std::optional<uint64_t> available_memory_bytes(const MemorySources& from = {});

}  // namespace drover
