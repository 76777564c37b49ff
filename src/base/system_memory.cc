#include "base/system_memory.h"

#include <algorithm>
#include <fstream>
#include <sstream>

namespace drover {
namespace {

std::optional<uint64_t> read_number(const std::string& path) {
  std::ifstream in(path);
  uint64_t v = 0;
  if (in >> v) return v;
  return std::nullopt;
}

std::optional<uint64_t> mem_available(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string key;
    uint64_t kib = 0;
    if (fields >> key >> kib && key == "MemAvailable:") return kib * 1024;
  }
  return std::nullopt;
}

}  // namespace

std::optional<uint64_t> available_memory_bytes(const MemorySources& from) {
  std::optional<uint64_t> avail = mem_available(from.meminfo);
  // "max" does not parse as a number: no cgroup limit.
  const auto max = read_number(from.cgroup_max);
  if (max) {
    const uint64_t used = read_number(from.cgroup_current).value_or(0);
    const uint64_t left = *max > used ? *max - used : 0;
    avail = avail ? std::min(*avail, left) : left;
  }
  return avail;
}

}  // namespace drover
