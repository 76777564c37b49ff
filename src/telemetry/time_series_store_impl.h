// TimeSeriesStore's insides (telemetry/time_series_store.h), shared by its two halves:
// time_series_store.cc (appending, the log as readers see it, queries) and
// time_series_store_writer.cc (recovery, and the writer thread: sealing, checkpoints,
// retention). Internal to src/telemetry/.
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>
#include <utility>

#include "base/mutex.h"
#include "telemetry/chunk_codec.h"
#include "telemetry/chunk_files.h"
#include "telemetry/record_log.h"
#include "telemetry/time_series_store.h"
#include "telemetry/write_ahead_log.h"

namespace drover::telemetry {

// Record types: the log holds batches; a checkpoint holds the chunk files' sizes, then the
// series and the sources.
enum RecordType : uint8_t {
  kBatchRecord = 1,
  kChunkSizesRecord = 2,
  kSeriesRecord = 3,
  kSourceRecord = 4
};

constexpr size_t kMaxKeyBytes = 2048;  // a device id, a metric and eight labels fit
constexpr int kRollups = 2;            // 5m, 1h
constexpr std::array<Resolution, kRollups> kRollupResolutions = {Resolution::k5m, Resolution::k1h};

inline Status check_key(std::string_view key) {
  if (key.empty() || key.size() > kMaxKeyBytes) {
    return invalid_argument("a series key has 1 to 2048 bytes");
  }
  for (char c : key) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      return invalid_argument("series key " + std::string(key) + " has a control character");
    }
  }
  return ok_status();
}

inline bool same_bits(double a, double b) {
  return std::bit_cast<uint64_t>(a) == std::bit_cast<uint64_t>(b);
}

inline void write_point(FieldWriter& w, const RollupPoint& p) {
  w.signed_varint(p.t_ms);
  w.f64(p.min);
  w.f64(p.max);
  w.f64(p.sum);
  w.varint(p.count);
}
inline RollupPoint read_point(FieldReader& r) {
  RollupPoint p;
  p.t_ms = r.signed_varint();
  p.min = r.f64();
  p.max = r.f64();
  p.sum = r.f64();
  p.count = r.varint();
  return p;
}

inline Error corrupt(const std::string& what) { return {ErrorCode::kCorruption, what}; }

// A head or rollup run handed to the writer to be sealed into a chunk.
struct SealJob {
  uint32_t series = 0;
  Resolution resolution = Resolution::kRaw;
  std::vector<Sample> samples;      // raw
  std::vector<RollupPoint> points;  // rollups
  int64_t min_t() const { return samples.empty() ? points.front().t_ms : samples.front().t_ms; }
  int64_t max_t() const { return samples.empty() ? points.back().t_ms : samples.back().t_ms; }
  size_t count() const { return samples.empty() ? points.size() : samples.size(); }
};

struct Series {
  uint32_t id = 0;
  std::string key;
  // Raw: the newest sample taken (in the head or sealed), the head, the runs being sealed.
  int64_t raw_last_t = INT64_MIN;
  double raw_last_value = 0;
  std::vector<Sample> head;
  // Rollups: the open bucket, the closed points not yet sealed, the newest closed point.
  std::array<RollupAccumulator, kRollups> open;
  std::array<std::vector<RollupPoint>, kRollups> rollup_head;
  std::array<int64_t, kRollups> rollup_last_t = {INT64_MIN, INT64_MIN};
  std::vector<std::shared_ptr<const SealJob>> sealing;     // queued or being written
  std::array<std::vector<ChunkRef>, kResolutions> chunks;  // sealed, oldest first
};

struct SourceState {
  uint64_t stream = 0;
  uint64_t sequence = 0;
  uint64_t lsn = 0;
};

class TimeSeriesStore::Impl {
 public:
  Impl(FileSystem& fs, std::string dir, Clock& clock, StoreOptions options)
      : fs_(fs), dir_(std::move(dir)), clock_(clock), options_(options) {}

  ~Impl() {
    {
      MutexLock lock(mu_);
      stop_ = true;
    }
    work_.notify_all();
    if (writer_.joinable()) writer_.join();
  }

  Status recover();
  void start() {
    writer_ = std::thread([this] { writer_loop(); });
  }

  Result<AppendResult> append(const Batch& batch) EXCLUDES(mu_);
  bool durable(uint64_t lsn) const EXCLUDES(durable_mu_);
  void when_durable(uint64_t lsn, std::function<void(Status)> done) EXCLUDES(durable_mu_);
  Result<std::vector<RollupPoint>> read(std::string_view key, Resolution resolution,
                                        int64_t from_ms, int64_t until_ms) const EXCLUDES(mu_);
  std::optional<Sample> latest(std::string_view key) const EXCLUDES(mu_);
  std::vector<std::string> keys(std::string_view prefix) const EXCLUDES(mu_);
  Resolution resolution_for(int64_t from_ms, int64_t until_ms, int64_t interval_ms) const;
  StoreStats stats() const EXCLUDES(mu_);
  Status request(bool seal_heads) EXCLUDES(mu_);
  Result<LogRead> read_log(LogPosition from, size_t max_bytes) const EXCLUDES(mu_);
  void hold_log(std::optional<LogPosition> from) EXCLUDES(mu_);

 private:
  enum class Taken { kAccepted, kDuplicate, kRefused };

  Series& series_for(std::string_view key, uint32_t id_hint) REQUIRES(mu_);
  Taken take(Series& s, const Sample& x) REQUIRES(mu_);
  void push_raw(Series& s, const Sample& x) REQUIRES(mu_);
  void push_rollup(Series& s, int r, const RollupPoint& p) REQUIRES(mu_);
  void seal_raw(Series& s) REQUIRES(mu_);
  void seal_rollup(Series& s, int r) REQUIRES(mu_);
  Status apply_batch_record(std::string_view payload) REQUIRES(mu_);
  void note_log() EXCLUDES(mu_);
  Status apply_checkpoint_record(std::string_view payload) REQUIRES(mu_);
  std::string snapshot() REQUIRES(mu_);
  Duration retention(Resolution r) const;

  void writer_loop() EXCLUDES(mu_);
  Status write_seals(std::vector<std::shared_ptr<const SealJob>> jobs) EXCLUDES(mu_);
  Status checkpoint() EXCLUDES(mu_);
  Status apply_retention(bool& removed) EXCLUDES(mu_);
  void set_durable(uint64_t lsn, const Status& status) EXCLUDES(durable_mu_);

  FileSystem& fs_;
  const std::string dir_;
  Clock& clock_;
  const StoreOptions options_;
  std::unique_ptr<WriteAheadLog> wal_;       // the writer's (and recover()'s) alone
  std::unique_ptr<ChunkFiles> chunk_files_;  // thread-safe reads; the writer appends

  mutable Mutex mu_{LockLevel::kTelemetryStore};
  std::condition_variable_any work_;
  std::vector<std::unique_ptr<Series>> series_ GUARDED_BY(mu_);  // by id
  std::map<std::string, uint32_t, std::less<>> by_key_ GUARDED_BY(mu_);
  std::map<std::string, SourceState, std::less<>> sources_ GUARDED_BY(mu_);
  std::string wal_buffer_ GUARDED_BY(mu_);  // framed records not yet handed to the log
  uint64_t appended_lsn_ GUARDED_BY(mu_) = 0;
  std::vector<std::shared_ptr<const SealJob>> seal_queue_ GUARDED_BY(mu_);
  bool stop_ GUARDED_BY(mu_) = false;
  bool checkpoint_wanted_ GUARDED_BY(mu_) = false;
  bool seal_wanted_ GUARDED_BY(mu_) = false;
  uint64_t requests_done_ GUARDED_BY(mu_) = 0;  // checkpoint/seal requests carried out
  uint64_t requests_made_ GUARDED_BY(mu_) = 0;
  Status request_status_ GUARDED_BY(mu_);
  Status failed_ GUARDED_BY(mu_);  // the first write failure; appends refused after it
  StoreStats stats_ GUARDED_BY(mu_);
  // The log as readers see it: its segments, and how far it is durable.
  std::vector<uint64_t> log_segments_ GUARDED_BY(mu_);
  LogPosition durable_end_ GUARDED_BY(mu_);
  std::optional<uint64_t> hold_segment_ GUARDED_BY(mu_);
  // Recovery: the newest sealed point per series and resolution, from the chunk indexes.
  std::map<uint32_t, std::array<int64_t, kResolutions>> sealed_until_ GUARDED_BY(mu_);

  mutable Mutex durable_mu_{LockLevel::kLeaf};
  uint64_t durable_lsn_ GUARDED_BY(durable_mu_) = 0;
  Status durable_status_ GUARDED_BY(durable_mu_);
  std::multimap<uint64_t, std::function<void(Status)>> waiting_ GUARDED_BY(durable_mu_);

  std::thread writer_;
  Timestamp last_retention_{};
};

}  // namespace drover::telemetry
