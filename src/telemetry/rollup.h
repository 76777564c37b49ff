// Rollups: a series summarised per fixed bucket (5 minutes, 1 hour) as min, max, sum and
// count, so a month of data is read as 8,640 points and a year as 8,760, and kept for
// longer than the raw samples. Buckets are aligned to the Unix epoch (UTC).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "protocol/telemetry_sample.h"

namespace drover::telemetry {

enum class Resolution : uint8_t { kRaw = 0, k5m = 1, k1h = 2 };
inline constexpr int kResolutions = 3;
const char* resolution_name(Resolution r);  // "raw", "5m", "1h"
// The bucket width of a rollup (0 for raw).
int64_t bucket_ms(Resolution r);

// One bucket's summary; a raw sample reads as a bucket of one (min = max = sum = value).
struct RollupPoint {
  int64_t t_ms = 0;  // the bucket's start, or the sample's time
  double min = 0;
  double max = 0;
  double sum = 0;
  uint64_t count = 0;
  double mean() const { return count == 0 ? 0 : sum / static_cast<double>(count); }
  friend bool operator==(const RollupPoint&, const RollupPoint&) = default;
};

RollupPoint point_of(const Sample& s);

// The start of the bucket of width `width` holding `t` (floor, also before 1970).
int64_t bucket_start(int64_t t_ms, int64_t width);

// Folds samples into the open bucket. A sample of a later bucket first closes the open one.
class RollupAccumulator {
 public:
  // Adds `s` (later than every sample added before). Returns true and fills `closed` when
  // `s` began a new bucket and the previous one is complete.
  bool add(const Sample& s, int64_t width, RollupPoint& closed);
  bool empty() const { return open_.count == 0; }
  const RollupPoint& open() const { return open_; }
  int64_t last_t() const { return last_t_; }
  void restore(const RollupPoint& open, int64_t last_t) {
    open_ = open;
    last_t_ = last_t;
  }

 private:
  RollupPoint open_;
  int64_t last_t_ = INT64_MIN;  // the newest sample folded in
};

// A sealed rollup chunk: the points' min, max, sum and count as four sample chunks sharing
// the timestamps (chunk_codec.h), each behind its length.
std::string encode_rollup_chunk(std::span<const RollupPoint> points);
Status decode_rollup_chunk(std::string_view bytes, std::vector<RollupPoint>& out);

}  // namespace drover::telemetry
