#include "telemetry/rollup.h"

#include <algorithm>
#include <cmath>

#include "telemetry/chunk_codec.h"
#include "telemetry/record_log.h"

namespace drover::telemetry {

const char* resolution_name(Resolution r) {
  switch (r) {
    case Resolution::kRaw:
      return "raw";
    case Resolution::k5m:
      return "5m";
    case Resolution::k1h:
      return "1h";
  }
  return "?";
}

int64_t bucket_ms(Resolution r) {
  switch (r) {
    case Resolution::kRaw:
      return 0;
    case Resolution::k5m:
      return int64_t{5} * 60'000;
    case Resolution::k1h:
      return 3'600'000;
  }
  return 0;
}

RollupPoint point_of(const Sample& s) { return {s.t_ms, s.value, s.value, s.value, 1}; }

int64_t bucket_start(int64_t t_ms, int64_t width) {
  int64_t q = t_ms / width;
  if (t_ms % width < 0) --q;
  return q * width;
}

bool RollupAccumulator::add(const Sample& s, int64_t width, RollupPoint& closed) {
  // Samples come in time order: most fall in the open bucket, found without a division.
  bool in_open = open_.count > 0 && s.t_ms >= open_.t_ms && s.t_ms - open_.t_ms < width;
  int64_t bucket = in_open ? open_.t_ms : bucket_start(s.t_ms, width);
  bool closes = open_.count > 0 && bucket != open_.t_ms;
  if (closes) {
    closed = open_;
    open_ = {};
  }
  if (open_.count == 0) {
    open_ = {bucket, s.value, s.value, s.value, 1};
  } else {
    // std::fmin/fmax ignore a NaN unless both are NaN: a NaN sample (a Prometheus
    // staleness marker, a failed reading) does not poison the bucket's extremes.
    open_.min = std::fmin(open_.min, s.value);
    open_.max = std::fmax(open_.max, s.value);
    open_.sum += s.value;
    ++open_.count;
  }
  last_t_ = s.t_ms;
  return closes;
}

std::string encode_rollup_chunk(std::span<const RollupPoint> points) {
  std::string out;
  FieldWriter fields(out);
  std::vector<Sample> column(points.size());
  auto put = [&](auto field) {
    for (size_t i = 0; i < points.size(); ++i) column[i] = {points[i].t_ms, field(points[i])};
    fields.bytes(encode_chunk(column));
  };
  put([](const RollupPoint& p) { return p.min; });
  put([](const RollupPoint& p) { return p.max; });
  put([](const RollupPoint& p) { return p.sum; });
  put([](const RollupPoint& p) { return static_cast<double>(p.count); });
  return out;
}

Status decode_rollup_chunk(std::string_view bytes, std::vector<RollupPoint>& out) {
  FieldReader fields(bytes);
  std::array<std::vector<Sample>, 4> columns;
  for (auto& column : columns) {
    std::string_view chunk = fields.bytes();
    if (!fields.ok()) return Error{ErrorCode::kCorruption, "rollup chunk: truncated"};
    DROVER_TRY(decode_chunk(chunk, column));
  }
  if (!fields.at_end()) return Error{ErrorCode::kCorruption, "rollup chunk: trailing bytes"};
  size_t n = columns[0].size();
  for (const auto& column : columns) {
    if (column.size() != n) return Error{ErrorCode::kCorruption, "rollup chunk: columns differ"};
  }
  std::vector<RollupPoint> points(n);
  for (size_t i = 0; i < n; ++i) {
    double count = columns[3][i].value;
    if (columns[1][i].t_ms != columns[0][i].t_ms || columns[2][i].t_ms != columns[0][i].t_ms ||
        columns[3][i].t_ms != columns[0][i].t_ms || !(count >= 1 && count <= 0x1p53) ||
        count != std::floor(count)) {
      return Error{ErrorCode::kCorruption, "rollup chunk: columns disagree"};
    }
    points[i] = {columns[0][i].t_ms, columns[0][i].value, columns[1][i].value, columns[2][i].value,
                 static_cast<uint64_t>(count)};
  }
  out.insert(out.end(), points.begin(), points.end());
  return ok_status();
}

}  // namespace drover::telemetry
