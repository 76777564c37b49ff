// The embedded time-series store: Drover's telemetry in the data directory, nothing to
// install. Each series (an opaque key such as "dev-0042/cpu_percent") has an in-memory head
// of its newest samples; every accepted batch goes first to the write-ahead log and is
// acknowledged only once that is durable. Full heads are sealed into compressed chunks
// (chunk_codec.h) in per-day files; 5-minute and hourly rollups (min/max/sum/count) are kept
// beside them with their own, longer retention. Recovery after a crash or kill -9 rebuilds
// the heads from the newest checkpoint and the log: every acknowledged sample is there,
// none twice.
//
// Ordering: a series takes samples in time order. A sample not newer than the series' newest
// is refused (counted) — the same timestamp with the same value counts as a duplicate,
// not an error. A batch names its source (a device), the source's stream (a random id the
// sender picks when its queue is created) and a sequence number: a batch whose sequence is
// not above the last one of the same stream is a retry and is acknowledged without being
// stored again.
//
// Threads: every public method is thread-safe. append() does no I/O; one writer thread
// writes the log (one fdatasync for every batch queued meanwhile), seals chunks, checkpoints
// and applies retention. A write failure stops the store for appends (kIo), as the fleet
// store does; queries keep working.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/clock.h"
#include "base/file_system.h"
#include "base/result.h"
#include "protocol/telemetry_sample.h"
#include "telemetry/rollup.h"

namespace drover::telemetry {

// A place in the write-ahead log: a segment and a byte offset in it.
struct LogPosition {
  uint64_t segment = 0;
  uint64_t offset = 0;
  friend auto operator<=>(const LogPosition&, const LogPosition&) = default;
};

struct StoreOptions {
  size_t chunk_samples = 512;  // a head is sealed at this many samples
  size_t rollup_chunk_points = 512;
  uint64_t wal_segment_bytes = uint64_t{64} << 20;  // then a checkpoint, and older segments go
  Duration raw_retention = days(15);
  Duration five_minute_retention = days(90);
  Duration hour_retention = days(732);  // two years
  // Log segments a reader (the remote write) still needs are kept past a checkpoint, up to
  // this many bytes; past it the oldest go, and the reader is told (LogRead::skipped).
  uint64_t log_hold_bytes = uint64_t{1} << 30;
  // Where the log's reader stood when the store last stopped (its cursor), held from the
  // start so that no checkpoint before the reader is back deletes what it still needs.
  std::optional<LogPosition> log_hold;
};

struct SeriesSamples {
  std::string key;  // 1..2048 bytes, no control characters
  std::vector<Sample> samples;
};

struct Batch {
  std::string source;   // who sent it (a device id); empty: no retry detection
  uint64_t stream = 0;  // the sender's queue incarnation
  uint64_t sequence = 0;
  std::vector<SeriesSamples> series;
};

// What read_log() found: the samples each durable batch record took, in log order.
struct LogRead {
  std::vector<SeriesSamples> series;
  LogPosition next;      // where to read on from
  bool skipped = false;  // the position asked for was gone (the hold's cap): reading began at
                         // the oldest segment left
};

struct AppendResult {
  bool retry = false;       // the batch was stored before: nothing was added
  uint64_t accepted = 0;    // samples added
  uint64_t duplicates = 0;  // samples equal to one already stored (same time, same value)
  uint64_t refused = 0;     // samples older than the series' newest, or at its time with
                            // another value
  uint64_t lsn = 0;         // wait for durable(lsn) before acknowledging
};

struct StoreStats {
  uint64_t series = 0;
  uint64_t samples_accepted = 0;
  uint64_t samples_refused = 0;
  uint64_t batches_retried = 0;
  uint64_t head_samples = 0;
  uint64_t sealed_chunks = 0;
  uint64_t sealed_samples = 0;  // raw samples in chunk files
  uint64_t chunk_bytes = 0;     // bytes of all chunk files (raw and rollups)
  uint64_t raw_chunk_bytes = 0;
  uint64_t wal_bytes = 0;  // in the current segment
  uint64_t checkpoints = 0;
};

class TimeSeriesStore {
 public:
  // Opens (creating) the store in `dir` and recovers it. kCorruption when a file is damaged
  // beyond what a crash leaves, kIo when the disk fails; nothing is changed then.
  static Result<std::unique_ptr<TimeSeriesStore>> open(FileSystem& fs, std::string dir,
                                                       Clock& clock, StoreOptions options = {});
  ~TimeSeriesStore();  // stops the writer after it wrote what was queued
  TimeSeriesStore(const TimeSeriesStore&) = delete;
  TimeSeriesStore& operator=(const TimeSeriesStore&) = delete;

  // Adds a batch in memory and queues it for the log. kInvalidArgument for a bad key or a
  // series whose samples are not in time order (nothing is added then); kIo once the store
  // has failed. Queries see the samples at once; acknowledge only after durable(lsn).
  Result<AppendResult> append(const Batch& batch);

  // Whether everything up to `lsn` is on disk. kIo when the write failed.
  bool durable(uint64_t lsn) const;
  // Calls `done` (on the writer thread, or at once) when `lsn` is durable or the store failed.
  void when_durable(uint64_t lsn, std::function<void(Status)> done);
  // Blocks until `lsn` is durable; for tools and tests.
  Status wait_durable(uint64_t lsn);

  // The points of a series in [from, until), at a resolution: raw samples read as points of
  // one. kNotFound for an unknown series; kCorruption when a chunk fails its checksum.
  Result<std::vector<RollupPoint>> read(std::string_view key, Resolution resolution,
                                        int64_t from_ms, int64_t until_ms) const;
  // The newest sample of a series, if it has any.
  std::optional<Sample> latest(std::string_view key) const;
  // The keys that start with `prefix`, sorted.
  std::vector<std::string> keys(std::string_view prefix) const;
  // The finest resolution still kept for data reaching back to `from_ms`, and coarse
  // enough that [from, until) is at most about 2,000 raw points at `interval_ms`.
  Resolution resolution_for(int64_t from_ms, int64_t until_ms, int64_t interval_ms) const;

  StoreStats stats() const;

  // The durable log from `from` on, about `max_bytes` of it (at least one record when there
  // is one), for a reader that follows the store (the remote write). kCorruption when a
  // durable record is damaged. Thread-safe.
  Result<LogRead> read_log(LogPosition from, size_t max_bytes) const;
  // Where the log's reader stands: checkpoints keep the segments from there on (within
  // StoreOptions::log_hold_bytes). nullopt: no reader.
  void hold_log(std::optional<LogPosition> from);

  // Writes a checkpoint now and waits for it (older log segments are then deleted).
  Status checkpoint_now();
  // Seals every head and open run into chunks, then checkpoints; waits for it. Small chunks
  // compress less well: for tools and tests, not routine use.
  Status seal_all_now();

 private:
  class Impl;
  explicit TimeSeriesStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace drover::telemetry
