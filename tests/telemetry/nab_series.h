// The real metric series of data/nab-subset (CSV "timestamp,value"), for codec and store
// tests. The directory is DROVER_NAB_DIR, which CMake defines for the test binary.
#pragma once

#include <string>
#include <vector>

#include "protocol/telemetry_sample.h"

namespace drover::telemetry::testing {

struct NabSeries {
  std::string name;  // the file name without .csv
  std::vector<Sample> samples;
};

// Every series, sorted by name, as the files have it: four of them repeat a timestamp (24
// samples in all, at daylight-saving changes). Aborts when the directory is missing or a
// file is malformed.
std::vector<NabSeries> load_nab_series();

// The samples a store keeps: each one later than the one before (repeats dropped).
std::vector<Sample> strictly_increasing(const std::vector<Sample>& samples);

}  // namespace drover::telemetry::testing
