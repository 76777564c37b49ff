#include "nab_series.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>

namespace drover::telemetry::testing {

std::vector<NabSeries> load_nab_series() {
  const char* dir = DROVER_NAB_DIR;
  if (!std::filesystem::is_directory(dir)) {
    std::fprintf(stderr, "%s (DROVER_NAB_DIR) is not a directory\n", dir);
    std::abort();
  }
  std::vector<NabSeries> all;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir)) {
    if (entry.path().extension() != ".csv") continue;
    NabSeries series{entry.path().stem().string(), {}};
    std::ifstream in(entry.path());
    std::string line;
    std::getline(in, line);  // header
    while (std::getline(in, line)) {
      if (line.empty()) continue;
      std::tm tm{};
      int consumed = 0;
      if (std::sscanf(line.c_str(), "%d-%d-%d %d:%d:%d,%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                      &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &consumed) != 6) {
        std::fprintf(stderr, "%s: bad line %s\n", entry.path().c_str(), line.c_str());
        std::abort();
      }
      tm.tm_year -= 1900;
      tm.tm_mon -= 1;
      double value = std::strtod(line.c_str() + consumed, nullptr);
      series.samples.push_back({static_cast<int64_t>(timegm(&tm)) * 1000, value});
    }
    all.push_back(std::move(series));
  }
  std::sort(all.begin(), all.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  return all;
}

std::vector<Sample> strictly_increasing(const std::vector<Sample>& samples) {
  std::vector<Sample> kept;
  for (const Sample& s : samples) {
    if (kept.empty() || s.t_ms > kept.back().t_ms) kept.push_back(s);
  }
  return kept;
}

}  // namespace drover::telemetry::testing
