#include "telemetry/time_series_store.h"

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
#include "telemetry/write_ahead_log.h"

namespace drover::telemetry {
namespace {

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

Status check_key(std::string_view key) {
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

bool same_bits(double a, double b) {
  return std::bit_cast<uint64_t>(a) == std::bit_cast<uint64_t>(b);
}

void write_point(FieldWriter& w, const RollupPoint& p) {
  w.signed_varint(p.t_ms);
  w.f64(p.min);
  w.f64(p.max);
  w.f64(p.sum);
  w.varint(p.count);
}
RollupPoint read_point(FieldReader& r) {
  RollupPoint p;
  p.t_ms = r.signed_varint();
  p.min = r.f64();
  p.max = r.f64();
  p.sum = r.f64();
  p.count = r.varint();
  return p;
}

Error corrupt(const std::string& what) { return {ErrorCode::kCorruption, what}; }

}  // namespace

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

// ---- recovery ------------------------------------------------------------------------------

Status TimeSeriesStore::Impl::recover() {
  auto wal = WriteAheadLog::open(fs_, dir_ + "/wal");
  if (!wal.ok()) return wal.error();
  wal_ = std::move(*wal);
  // The checkpoint first: it says how much of each chunk file was durable when it was
  // written. Its records are kept and applied once the chunk indexes are read.
  std::vector<std::string> checkpoint;
  std::map<std::string, VerifiedLength> verified;
  DROVER_TRY(wal_->read_checkpoint([&](std::string_view record) -> Status {
    if (!record.empty() && record[0] == kChunkSizesRecord) {
      FieldReader r(record.substr(1));
      uint64_t n = r.varint();
      for (uint64_t i = 0; i < n && r.ok(); ++i) {
        std::string name(r.bytes());
        VerifiedLength v;
        v.data = r.varint();
        v.index = r.varint();
        v.index_crc = static_cast<uint32_t>(r.varint());
        verified[name] = v;
      }
      if (!r.ok()) return corrupt("checkpoint: bad chunk sizes");
      return ok_status();
    }
    checkpoint.emplace_back(record);
    return ok_status();
  }));
  std::vector<IndexedChunk> found;
  auto files = ChunkFiles::open(fs_, dir_ + "/chunks", verified, found);
  if (!files.ok()) return files.error();
  chunk_files_ = std::move(*files);

  MutexLock lock(mu_);
  for (const IndexedChunk& c : found) {
    auto [it, fresh] = sealed_until_.try_emplace(c.series);
    if (fresh) it->second.fill(INT64_MIN);
    auto& until = it->second[static_cast<int>(c.resolution)];
    until = std::max(until, c.ref.max_t);
  }
  for (const std::string& record : checkpoint) DROVER_TRY(apply_checkpoint_record(record));
  DROVER_TRY(wal_->replay([this](std::string_view record) NO_THREAD_SAFETY_ANALYSIS {
    return apply_batch_record(record);  // called inside recover(), mu_ held
  }));
  for (const IndexedChunk& c : found) {
    if (c.series >= series_.size() || !series_[c.series]) {
      return corrupt("chunk of series " + std::to_string(c.series) + " that no log names");
    }
    series_[c.series]->chunks[static_cast<int>(c.resolution)].push_back(c.ref);
    ++stats_.sealed_chunks;
    if (c.resolution == Resolution::kRaw) stats_.sealed_samples += c.ref.count;
  }
  for (auto& s : series_) {
    for (auto& list : s->chunks) {
      std::sort(list.begin(), list.end(),
                [](const ChunkRef& a, const ChunkRef& b) { return a.min_t < b.min_t; });
    }
  }
  sealed_until_.clear();
  if (options_.log_hold) hold_segment_ = options_.log_hold->segment;
  // Recovery succeeded: now the chunk files may be cut back to what was trusted (what lay
  // beyond is being sealed again from the checkpoint and the log).
  DROVER_TRY(chunk_files_->apply_cuts());
  DROVER_TRY(wal_->start());
  log_segments_ = wal_->segments();
  durable_end_ = {wal_->segment(), 0};
  last_retention_ = Timestamp{};  // retention runs at the writer's first turn
  return ok_status();
}

Series& TimeSeriesStore::Impl::series_for(std::string_view key, uint32_t id) {
  auto it = by_key_.find(key);
  if (it != by_key_.end()) return *series_[it->second];
  if (id >= series_.size()) series_.resize(id + 1);
  auto s = std::make_unique<Series>();
  s->id = id;
  s->key = std::string(key);
  // What was sealed after the last checkpoint is not taken again from the log.
  if (auto sealed = sealed_until_.find(id); sealed != sealed_until_.end()) {
    s->raw_last_t = sealed->second[0];
    for (int r = 0; r < kRollups; ++r) s->rollup_last_t[r] = sealed->second[r + 1];
  }
  by_key_.emplace(s->key, id);
  series_[id] = std::move(s);
  ++stats_.series;
  return *series_[id];
}

Status TimeSeriesStore::Impl::apply_checkpoint_record(std::string_view payload) {
  if (payload.empty()) return corrupt("checkpoint: empty record");
  FieldReader r(payload.substr(1));
  if (payload[0] == kSourceRecord) {
    std::string source(r.bytes());
    SourceState state;
    state.stream = r.varint();
    state.sequence = r.varint();
    if (!r.ok()) return corrupt("checkpoint: bad source record");
    sources_[source] = state;
    return ok_status();
  }
  if (payload[0] != kSeriesRecord) return corrupt("checkpoint: unknown record type");
  const uint64_t raw_id = r.varint();
  std::string key(r.bytes());
  // Ids are dense: a series' id is at most the number of series before it.
  if (!r.ok() || !check_key(key).ok() || by_key_.count(key) != 0 || raw_id > series_.size() ||
      raw_id >= UINT32_MAX || (raw_id < series_.size() && series_[raw_id])) {
    return corrupt("checkpoint: bad series record");
  }
  const auto id = static_cast<uint32_t>(raw_id);
  Series& s = series_for(key, id);
  int64_t last_t = r.signed_varint();
  double last_value = r.f64();
  uint64_t n = r.varint();
  for (uint64_t i = 0; i < n && r.ok(); ++i) {
    Sample x{r.signed_varint(), 0};
    x.value = r.f64();
    if (x.t_ms > s.raw_last_t) push_raw(s, x);
  }
  // Equal when the newest sample was sealed: the checkpoint still knows its value.
  if (last_t >= s.raw_last_t) {
    s.raw_last_t = last_t;
    s.raw_last_value = last_value;
  }
  for (int k = 0; k < kRollups; ++k) {
    RollupPoint open = read_point(r);
    int64_t open_last_t = r.signed_varint();
    int64_t emitted = r.signed_varint();
    uint64_t points = r.varint();
    for (uint64_t i = 0; i < points && r.ok(); ++i) {
      RollupPoint p = read_point(r);
      if (p.t_ms > s.rollup_last_t[k]) push_rollup(s, k, p);
    }
    s.rollup_last_t[k] = std::max(s.rollup_last_t[k], emitted);
    s.open[k].restore(open, open_last_t);
  }
  if (!r.ok() || !r.at_end()) return corrupt("checkpoint: bad series record " + key);
  return ok_status();
}

// ---- appending -----------------------------------------------------------------------------

TimeSeriesStore::Impl::Taken TimeSeriesStore::Impl::take(Series& s, const Sample& x) {
  Taken taken = Taken::kRefused;
  if (x.t_ms > s.raw_last_t) {
    push_raw(s, x);
    taken = Taken::kAccepted;
  } else if (x.t_ms == s.raw_last_t && same_bits(x.value, s.raw_last_value)) {
    taken = Taken::kDuplicate;
  }
  for (int k = 0; k < kRollups; ++k) {
    if (x.t_ms <= s.open[k].last_t()) continue;
    RollupPoint closed;
    if (s.open[k].add(x, bucket_ms(kRollupResolutions[k]), closed) &&
        closed.t_ms > s.rollup_last_t[k]) {
      push_rollup(s, k, closed);
    }
  }
  return taken;
}

void TimeSeriesStore::Impl::push_raw(Series& s, const Sample& x) {
  s.head.push_back(x);
  s.raw_last_t = x.t_ms;
  s.raw_last_value = x.value;
  ++stats_.head_samples;
  if (s.head.size() >= options_.chunk_samples) seal_raw(s);
}

void TimeSeriesStore::Impl::push_rollup(Series& s, int k, const RollupPoint& p) {
  auto& head = s.rollup_head[k];
  head.push_back(p);
  s.rollup_last_t[k] = p.t_ms;
  if (head.size() >= options_.rollup_chunk_points) seal_rollup(s, k);
}

void TimeSeriesStore::Impl::seal_raw(Series& s) {
  if (s.head.empty()) return;
  auto job = std::make_shared<SealJob>();
  job->series = s.id;
  job->samples = std::move(s.head);
  s.head.clear();
  stats_.head_samples -= job->samples.size();
  s.sealing.push_back(job);
  seal_queue_.push_back(std::move(job));
}

void TimeSeriesStore::Impl::seal_rollup(Series& s, int k) {
  if (s.rollup_head[k].empty()) return;
  auto job = std::make_shared<SealJob>();
  job->series = s.id;
  job->resolution = kRollupResolutions[k];
  job->points = std::move(s.rollup_head[k]);
  s.rollup_head[k].clear();
  s.sealing.push_back(job);
  seal_queue_.push_back(std::move(job));
}

Result<AppendResult> TimeSeriesStore::Impl::append(const Batch& batch) {
  // Checked before anything is taken, so a bad batch changes nothing.
  for (const SeriesSamples& ss : batch.series) {
    DROVER_TRY(check_key(ss.key));
    for (size_t i = 0; i < ss.samples.size(); ++i) {
      int64_t t = ss.samples[i].t_ms;
      if (t <= -kMaxTimestampMs || t >= kMaxTimestampMs) {
        return invalid_argument("series " + ss.key + ": a timestamp is out of range");
      }
      if (i > 0 && t <= ss.samples[i - 1].t_ms) {
        return invalid_argument("series " + ss.key + ": samples are not in time order");
      }
    }
  }
  AppendResult result;
  {
    MutexLock lock(mu_);
    if (!failed_.ok()) return failed_.error();
    SourceState* source = nullptr;
    if (!batch.source.empty()) {
      source = &sources_[batch.source];
      if (source->stream == batch.stream && batch.sequence != 0 &&
          batch.sequence <= source->sequence) {
        result.retry = true;
        result.lsn = source->lsn;
        ++stats_.batches_retried;
        return result;
      }
    }
    std::string payload(1, static_cast<char>(kBatchRecord));
    FieldWriter w(payload);
    w.bytes(batch.source);
    w.varint(batch.stream);
    w.varint(batch.sequence);
    w.varint(batch.series.size());
    std::vector<Sample> kept;
    for (const SeriesSamples& ss : batch.series) {
      auto id = static_cast<uint32_t>(series_.size());
      Series& s = series_for(ss.key, id);
      w.varint(s.id);
      w.bytes(ss.key);
      kept.clear();
      for (const Sample& x : ss.samples) {
        switch (take(s, x)) {
          case Taken::kAccepted:
            kept.push_back(x);
            break;
          case Taken::kDuplicate:
            ++result.duplicates;
            break;
          case Taken::kRefused:
            ++result.refused;
            break;
        }
      }
      w.varint(kept.size());
      int64_t previous = 0;
      for (const Sample& x : kept) {
        w.signed_varint(x.t_ms - previous);
        previous = x.t_ms;
        w.f64(x.value);
      }
      result.accepted += kept.size();
    }
    append_record(wal_buffer_, payload);
    appended_lsn_ += kRecordHeaderBytes + payload.size();
    result.lsn = appended_lsn_;
    if (source != nullptr) *source = {batch.stream, batch.sequence, result.lsn};
    stats_.samples_accepted += result.accepted;
    stats_.samples_refused += result.refused;
  }
  work_.notify_one();
  return result;
}

void TimeSeriesStore::Impl::hold_log(std::optional<LogPosition> from) {
  MutexLock lock(mu_);
  hold_segment_.reset();
  if (from) hold_segment_ = from->segment;
}

Result<LogRead> TimeSeriesStore::Impl::read_log(LogPosition from, size_t max_bytes) const {
  std::vector<uint64_t> segments;
  LogPosition end;
  {
    MutexLock lock(mu_);
    segments = log_segments_;
    end = durable_end_;
  }
  LogRead out;
  out.next = from;
  if (from.segment > end.segment || (from.segment == end.segment && from.offset > end.offset)) {
    // Beyond the log: the store's files were replaced under the reader. It starts over.
    out.skipped = true;
    out.next = {segments.empty() ? 0 : segments.front(), 0};
    return out;
  }
  auto it = std::lower_bound(segments.begin(), segments.end(), from.segment);
  if (it != segments.end() && *it != from.segment) {
    // The segment asked for is gone: past the hold's cap — or never read at all (a new
    // reader starts at {0, 0}), which is no gap.
    out.skipped = from != LogPosition{};
    out.next = {*it, 0};
  }
  // One stretch of records a call: the first segment from `next` that has any.
  for (; it != segments.end() && *it <= end.segment; ++it) {
    if (*it != out.next.segment) out.next = {*it, 0};
    const bool current = *it == end.segment;
    size_t want = std::max<size_t>(max_bytes, size_t{1} << 16);
    for (;;) {
      if (current) {
        want = static_cast<size_t>(std::min<uint64_t>(want, end.offset - out.next.offset));
        if (want == 0) return out;  // all that is durable has been read
      }
      auto bytes = wal_->read_segment(*it, out.next.offset, want);
      if (!bytes.ok()) {
        if (bytes.error().code != ErrorCode::kNotFound) return bytes.error();
        out.skipped = true;  // deleted meanwhile (the hold's cap)
        break;
      }
      RecordScan scan = scan_records(*bytes);
      if (scan.records.empty()) {
        const bool whole_rest = current && out.next.offset + want == end.offset;
        if (bytes->size() == want && !whole_rest && want < kMaxRecordBytes + kRecordHeaderBytes) {
          want = std::min<size_t>(want * 4, kMaxRecordBytes + kRecordHeaderBytes);
          continue;  // a record larger than what was read
        }
        // The end of a segment; what follows the last whole record in a durable stretch
        // can only be damage.
        if (scan.damaged) {
          return Error{ErrorCode::kCorruption, "telemetry log segment " + std::to_string(*it) +
                                                   " is damaged at byte " +
                                                   std::to_string(out.next.offset)};
        }
        break;  // on to the next segment
      }
      for (std::string_view record : scan.records) {
        if (record.empty() || record[0] != kBatchRecord) {
          return Error{ErrorCode::kCorruption, "telemetry log: unknown record type"};
        }
        FieldReader r(record.substr(1));
        (void)r.bytes();   // source
        (void)r.varint();  // stream
        (void)r.varint();  // sequence
        const uint64_t count = r.varint();
        for (uint64_t i = 0; i < count && r.ok(); ++i) {
          (void)r.varint();  // series id
          SeriesSamples ss{std::string(r.bytes()), {}};
          const uint64_t k = r.varint();
          int64_t t = 0;
          for (uint64_t j = 0; j < k && r.ok(); ++j) {
            t += r.signed_varint();
            const double v = r.f64();
            ss.samples.push_back({t, v});
          }
          if (!ss.samples.empty()) out.series.push_back(std::move(ss));
        }
        if (!r.ok()) return Error{ErrorCode::kCorruption, "telemetry log: bad batch record"};
      }
      out.next.offset += scan.valid_bytes;
      return out;
    }
  }
  return out;
}

Status TimeSeriesStore::Impl::apply_batch_record(std::string_view payload) {
  if (payload.empty() || payload[0] != kBatchRecord) return corrupt("log: unknown record type");
  FieldReader r(payload.substr(1));
  std::string source(r.bytes());
  uint64_t stream = r.varint();
  uint64_t sequence = r.varint();
  uint64_t count = r.varint();
  for (uint64_t i = 0; i < count && r.ok(); ++i) {
    const uint64_t raw_id = r.varint();
    std::string_view key = r.bytes();
    if (!r.ok() || !check_key(key).ok()) break;
    auto known = by_key_.find(key);
    if ((known != by_key_.end() && known->second != raw_id) ||
        (known == by_key_.end() && (raw_id > series_.size() || raw_id >= UINT32_MAX ||
                                    (raw_id < series_.size() && series_[raw_id])))) {
      return corrupt("log: series " + std::string(key) + " has a bad id");
    }
    Series& s = series_for(key, static_cast<uint32_t>(raw_id));
    uint64_t n = r.varint();
    uint64_t t = 0;  // unsigned: a damaged step wraps instead of overflowing, then is refused
    for (uint64_t j = 0; j < n && r.ok(); ++j) {
      t += static_cast<uint64_t>(r.signed_varint());
      double v = r.f64();
      const auto at = static_cast<int64_t>(t);
      if (at <= -kMaxTimestampMs || at >= kMaxTimestampMs)
        return corrupt("log: a time out of range");
      if (r.ok()) take(s, {at, v});
    }
  }
  if (!r.ok() || !r.at_end()) return corrupt("log: bad batch record");
  if (!source.empty()) {
    SourceState& state = sources_[source];
    if (state.stream != stream || sequence > state.sequence) state = {stream, sequence, 0};
  }
  return ok_status();
}

// ---- the writer ----------------------------------------------------------------------------

void TimeSeriesStore::Impl::writer_loop() {
  for (;;) {
    std::string buffer;
    uint64_t lsn = 0;
    std::vector<std::shared_ptr<const SealJob>> jobs;
    bool checkpoint_now = false;
    bool stopping = false;
    uint64_t requests = 0;
    Status failed;
    {
      MutexLock lock(mu_);
      work_.wait_for(mu_, std::chrono::seconds(1), [this]() REQUIRES(mu_) {
        return stop_ || !wal_buffer_.empty() || !seal_queue_.empty() || checkpoint_wanted_ ||
               seal_wanted_;
      });
      if (seal_wanted_) {
        for (auto& s : series_) {
          if (!s) continue;
          seal_raw(*s);
          for (int k = 0; k < kRollups; ++k) seal_rollup(*s, k);
        }
        seal_wanted_ = false;
      }
      buffer.swap(wal_buffer_);
      lsn = appended_lsn_;
      jobs.swap(seal_queue_);
      checkpoint_now = checkpoint_wanted_;
      checkpoint_wanted_ = false;
      requests = requests_made_;
      stopping = stop_;
      failed = failed_;
    }
    Status status;
    bool done = false;
    if (!failed.ok()) {
      // After a write failure nothing more is written (a torn log must stay the newest
      // segment, a chunk file's offsets must stay true): waiters are told, and that is all.
      if (!buffer.empty()) set_durable(lsn, failed);
      MutexLock lock(mu_);
      if (requests > requests_done_) {
        requests_done_ = requests;
        request_status_ = failed;
      }
      if (stopping) break;
      continue;
    }
    if (!buffer.empty()) {
      status = wal_->append(buffer);
      if (status.ok()) status = wal_->sync();
      if (status.ok()) note_log();
      set_durable(lsn, status);
    }
    if (status.ok() && !jobs.empty()) status = write_seals(std::move(jobs));
    if (status.ok() && (checkpoint_now || wal_->segment_bytes() >= options_.wal_segment_bytes)) {
      status = checkpoint();
    }
    if (status.ok() && clock_.now() - last_retention_ >= minutes(1)) {
      bool removed = false;
      status = apply_retention(removed);
      last_retention_ = clock_.now();
      // A checkpoint at once, so that none names a removed file (a file of the same name
      // made later must not be taken for the one a checkpoint verified).
      if (status.ok() && removed) status = checkpoint();
    }
    {
      MutexLock lock(mu_);
      if (!status.ok() && failed_.ok()) failed_ = status;
      if (requests > requests_done_) {
        requests_done_ = requests;
        request_status_ = status;
      }
      stats_.wal_bytes = wal_->segment_bytes();
      done = stopping && wal_buffer_.empty() && seal_queue_.empty();
    }
    if (done) {
      // A clean stop ends with a checkpoint: the next start trusts every chunk sealed so
      // far instead of sealing it again from the log.
      if (status.ok()) (void)checkpoint();
      break;
    }
    work_.notify_all();
  }
  work_.notify_all();
}

void TimeSeriesStore::Impl::set_durable(uint64_t lsn, const Status& status) {
  std::vector<std::function<void(Status)>> ready;
  {
    MutexLock lock(durable_mu_);
    if (!status.ok()) {
      durable_status_ = status;
      for (auto& [at, fn] : waiting_) ready.push_back(std::move(fn));
      waiting_.clear();
    } else {
      durable_lsn_ = std::max(durable_lsn_, lsn);
      auto end = waiting_.upper_bound(durable_lsn_);
      for (auto it = waiting_.begin(); it != end; ++it) ready.push_back(std::move(it->second));
      waiting_.erase(waiting_.begin(), end);
    }
  }
  for (auto& fn : ready) fn(status);
}

Status TimeSeriesStore::Impl::write_seals(std::vector<std::shared_ptr<const SealJob>> jobs) {
  std::vector<ChunkRef> refs;
  refs.reserve(jobs.size());
  for (const auto& job : jobs) {
    std::string bytes =
        job->samples.empty() ? encode_rollup_chunk(job->points) : encode_chunk(job->samples);
    auto ref = chunk_files_->append(job->series, job->resolution, job->min_t(), job->max_t(),
                                    static_cast<uint32_t>(job->count()), bytes);
    if (!ref.ok()) return ref.error();
    refs.push_back(*ref);
  }
  DROVER_TRY(chunk_files_->sync());
  MutexLock lock(mu_);
  for (size_t i = 0; i < jobs.size(); ++i) {
    Series& s = *series_[jobs[i]->series];
    s.chunks[static_cast<int>(jobs[i]->resolution)].push_back(refs[i]);
    auto it = std::find(s.sealing.begin(), s.sealing.end(), jobs[i]);
    if (it != s.sealing.end()) s.sealing.erase(it);
    ++stats_.sealed_chunks;
    if (jobs[i]->resolution == Resolution::kRaw) stats_.sealed_samples += jobs[i]->count();
  }
  return ok_status();
}

std::string TimeSeriesStore::Impl::snapshot() {
  std::string out;
  std::string payload(1, static_cast<char>(kChunkSizesRecord));
  {
    FieldWriter w(payload);
    auto sizes = chunk_files_->synced_sizes();
    w.varint(sizes.size());
    for (const auto& [name, size] : sizes) {
      w.bytes(name);
      w.varint(size.data);
      w.varint(size.index);
      w.varint(size.index_crc);
    }
  }
  append_record(out, payload);
  for (const auto& s : series_) {
    if (!s) continue;
    payload.assign(1, static_cast<char>(kSeriesRecord));
    FieldWriter w(payload);
    w.varint(s->id);
    w.bytes(s->key);
    w.signed_varint(s->raw_last_t);
    w.f64(s->raw_last_value);
    // Runs still being sealed are not durable in a chunk file: they go in as head samples.
    std::vector<Sample> raw;
    std::array<std::vector<RollupPoint>, kRollups> points;
    for (const auto& job : s->sealing) {
      if (job->resolution == Resolution::kRaw) {
        raw.insert(raw.end(), job->samples.begin(), job->samples.end());
      } else {
        auto& p = points[static_cast<int>(job->resolution) - 1];
        p.insert(p.end(), job->points.begin(), job->points.end());
      }
    }
    raw.insert(raw.end(), s->head.begin(), s->head.end());
    w.varint(raw.size());
    for (const Sample& x : raw) {
      w.signed_varint(x.t_ms);
      w.f64(x.value);
    }
    for (int k = 0; k < kRollups; ++k) {
      write_point(w, s->open[k].open());
      w.signed_varint(s->open[k].last_t());
      w.signed_varint(s->rollup_last_t[k]);
      points[k].insert(points[k].end(), s->rollup_head[k].begin(), s->rollup_head[k].end());
      w.varint(points[k].size());
      for (const RollupPoint& p : points[k]) write_point(w, p);
    }
    append_record(out, payload);
  }
  for (const auto& [name, state] : sources_) {
    payload.assign(1, static_cast<char>(kSourceRecord));
    FieldWriter w(payload);
    w.bytes(name);
    w.varint(state.stream);
    w.varint(state.sequence);
    append_record(out, payload);
  }
  return out;
}

void TimeSeriesStore::Impl::note_log() {
  std::vector<uint64_t> segments = wal_->segments();
  MutexLock lock(mu_);
  log_segments_ = std::move(segments);
  durable_end_ = {wal_->segment(), wal_->segment_bytes()};
}

Status TimeSeriesStore::Impl::checkpoint() {
  // Appends after the rotation go to the new segment; the snapshot, taken after it, may
  // hold some of them too, and replay skips what a series already has.
  DROVER_TRY(wal_->rotate());
  note_log();
  std::string state;
  std::string buffer;
  uint64_t lsn = 0;
  uint64_t keep_from = UINT64_MAX;
  {
    MutexLock lock(mu_);
    state = snapshot();
    // What the snapshot took from batches not yet written goes into the log first: a
    // checkpoint never holds a batch the log (and so its readers) does not.
    buffer.swap(wal_buffer_);
    lsn = appended_lsn_;
    if (hold_segment_) keep_from = *hold_segment_;
  }
  if (!buffer.empty()) {
    Status written = wal_->append(buffer);
    if (written.ok()) written = wal_->sync();
    if (written.ok()) note_log();
    set_durable(lsn, written);
    if (!written.ok()) return written;
  }
  DROVER_TRY(wal_->checkpoint(state, keep_from, options_.log_hold_bytes));
  note_log();
  MutexLock lock(mu_);
  ++stats_.checkpoints;
  return ok_status();
}

Duration TimeSeriesStore::Impl::retention(Resolution r) const {
  switch (r) {
    case Resolution::kRaw:
      return options_.raw_retention;
    case Resolution::k5m:
      return options_.five_minute_retention;
    case Resolution::k1h:
      return options_.hour_retention;
  }
  return options_.raw_retention;
}

Status TimeSeriesStore::Impl::apply_retention(bool& removed_any) {
  const int64_t now = clock_.now().time_since_epoch().count();
  for (int r = 0; r < kResolutions; ++r) {
    auto resolution = static_cast<Resolution>(r);
    auto removed = chunk_files_->remove_before(resolution, now - retention(resolution).count());
    if (!removed.ok()) return removed.error();
    if (removed->empty()) continue;
    removed_any = true;
    MutexLock lock(mu_);
    for (auto& s : series_) {
      if (!s) continue;
      auto& list = s->chunks[r];
      auto gone = [&](const ChunkRef& c) {
        return std::find(removed->begin(), removed->end(), c.file) != removed->end();
      };
      for (const ChunkRef& c : list) {
        if (!gone(c)) continue;
        --stats_.sealed_chunks;
        if (resolution == Resolution::kRaw) stats_.sealed_samples -= c.count;
      }
      list.erase(std::remove_if(list.begin(), list.end(), gone), list.end());
    }
  }
  return ok_status();
}

Status TimeSeriesStore::Impl::request(bool seal_heads) {
  MutexLock lock(mu_);
  if (!failed_.ok()) return failed_.error();
  checkpoint_wanted_ = true;
  seal_wanted_ |= seal_heads;
  uint64_t ticket = ++requests_made_;
  work_.notify_all();
  work_.wait(mu_, [&]() REQUIRES(mu_) { return requests_done_ >= ticket || !failed_.ok(); });
  if (!failed_.ok()) return failed_.error();
  return request_status_;
}

// ---- durability and queries ----------------------------------------------------------------

bool TimeSeriesStore::Impl::durable(uint64_t lsn) const {
  MutexLock lock(durable_mu_);
  return durable_status_.ok() && durable_lsn_ >= lsn;
}

void TimeSeriesStore::Impl::when_durable(uint64_t lsn, std::function<void(Status)> done) {
  Status now;
  {
    MutexLock lock(durable_mu_);
    if (durable_status_.ok() && durable_lsn_ < lsn) {
      waiting_.emplace(lsn, std::move(done));
      return;
    }
    now = durable_status_;
  }
  done(now);
}

Result<std::vector<RollupPoint>> TimeSeriesStore::Impl::read(std::string_view key,
                                                             Resolution resolution, int64_t from_ms,
                                                             int64_t until_ms) const {
  std::vector<ChunkRef> refs;
  std::vector<RollupPoint> memory;  // unsealed: runs being sealed, the head, the open bucket
  {
    MutexLock lock(mu_);
    auto it = by_key_.find(key);
    if (it == by_key_.end()) return not_found("no series " + std::string(key));
    const Series& s = *series_[it->second];
    const int r = static_cast<int>(resolution);
    for (const ChunkRef& c : s.chunks[r]) {
      if (c.max_t >= from_ms && c.min_t < until_ms) refs.push_back(c);
    }
    auto keep = [&](const RollupPoint& p) {
      if (p.t_ms >= from_ms && p.t_ms < until_ms) memory.push_back(p);
    };
    for (const auto& job : s.sealing) {
      if (job->resolution != resolution) continue;
      for (const Sample& x : job->samples) keep(point_of(x));
      for (const RollupPoint& p : job->points) keep(p);
    }
    if (resolution == Resolution::kRaw) {
      for (const Sample& x : s.head) keep(point_of(x));
    } else {
      for (const RollupPoint& p : s.rollup_head[r - 1]) keep(p);
      if (!s.open[r - 1].empty()) keep(s.open[r - 1].open());
    }
  }
  std::vector<RollupPoint> points;
  std::vector<Sample> samples;
  for (const ChunkRef& c : refs) {
    auto bytes = chunk_files_->read(c);
    if (!bytes.ok()) {
      if (bytes.error().code == ErrorCode::kNotFound) continue;  // retention, meanwhile
      return bytes.error();
    }
    if (resolution == Resolution::kRaw) {
      samples.clear();
      DROVER_TRY(decode_chunk(*bytes, samples));
      for (const Sample& x : samples) {
        if (x.t_ms >= from_ms && x.t_ms < until_ms) points.push_back(point_of(x));
      }
    } else {
      std::vector<RollupPoint> decoded;
      DROVER_TRY(decode_rollup_chunk(*bytes, decoded));
      for (const RollupPoint& p : decoded) {
        if (p.t_ms >= from_ms && p.t_ms < until_ms) points.push_back(p);
      }
    }
  }
  points.insert(points.end(), memory.begin(), memory.end());
  std::sort(points.begin(), points.end(),
            [](const RollupPoint& a, const RollupPoint& b) { return a.t_ms < b.t_ms; });
  return points;
}

std::optional<Sample> TimeSeriesStore::Impl::latest(std::string_view key) const {
  MutexLock lock(mu_);
  auto it = by_key_.find(key);
  if (it == by_key_.end()) return std::nullopt;
  const Series& s = *series_[it->second];
  if (s.raw_last_t == INT64_MIN) return std::nullopt;
  return Sample{s.raw_last_t, s.raw_last_value};
}

std::vector<std::string> TimeSeriesStore::Impl::keys(std::string_view prefix) const {
  MutexLock lock(mu_);
  std::vector<std::string> out;
  for (auto it = by_key_.lower_bound(prefix);
       it != by_key_.end() && it->first.compare(0, prefix.size(), prefix) == 0; ++it) {
    out.push_back(it->first);
  }
  return out;
}

Resolution TimeSeriesStore::Impl::resolution_for(int64_t from_ms, int64_t until_ms,
                                                 int64_t interval_ms) const {
  constexpr int64_t kMaxPoints = 2000;
  const int64_t now = clock_.now().time_since_epoch().count();
  const int64_t span = until_ms - from_ms;
  if (from_ms >= now - options_.raw_retention.count() &&
      span <= kMaxPoints * std::max<int64_t>(interval_ms, 1)) {
    return Resolution::kRaw;
  }
  if (from_ms >= now - options_.five_minute_retention.count() &&
      span <= kMaxPoints * bucket_ms(Resolution::k5m)) {
    return Resolution::k5m;
  }
  return Resolution::k1h;
}

StoreStats TimeSeriesStore::Impl::stats() const {
  StoreStats s;
  {
    MutexLock lock(mu_);
    s = stats_;
  }
  s.chunk_bytes = chunk_files_->data_bytes();
  return s;
}

// ---- the public face -----------------------------------------------------------------------

TimeSeriesStore::TimeSeriesStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
TimeSeriesStore::~TimeSeriesStore() = default;

Result<std::unique_ptr<TimeSeriesStore>> TimeSeriesStore::open(FileSystem& fs, std::string dir,
                                                               Clock& clock, StoreOptions options) {
  DROVER_CHECK(options.chunk_samples >= 1 && options.chunk_samples <= kMaxChunkSamples);
  DROVER_CHECK(options.rollup_chunk_points >= 1 && options.rollup_chunk_points <= kMaxChunkSamples);
  DROVER_TRY(fs.make_dir(dir));
  auto impl = std::make_unique<Impl>(fs, std::move(dir), clock, options);
  DROVER_TRY(impl->recover());
  impl->start();
  return std::unique_ptr<TimeSeriesStore>(new TimeSeriesStore(std::move(impl)));
}

Result<AppendResult> TimeSeriesStore::append(const Batch& batch) { return impl_->append(batch); }
bool TimeSeriesStore::durable(uint64_t lsn) const { return impl_->durable(lsn); }
void TimeSeriesStore::when_durable(uint64_t lsn, std::function<void(Status)> done) {
  impl_->when_durable(lsn, std::move(done));
}
Status TimeSeriesStore::wait_durable(uint64_t lsn) {
  std::mutex m;
  std::condition_variable cv;
  bool done = false;
  Status result;
  impl_->when_durable(lsn, [&](Status s) {
    std::lock_guard<std::mutex> lock(m);
    result = std::move(s);
    done = true;
    cv.notify_all();
  });
  std::unique_lock<std::mutex> lock(m);
  cv.wait(lock, [&] { return done; });
  return result;
}
Result<std::vector<RollupPoint>> TimeSeriesStore::read(std::string_view key, Resolution resolution,
                                                       int64_t from_ms, int64_t until_ms) const {
  return impl_->read(key, resolution, from_ms, until_ms);
}
std::optional<Sample> TimeSeriesStore::latest(std::string_view key) const {
  return impl_->latest(key);
}
std::vector<std::string> TimeSeriesStore::keys(std::string_view prefix) const {
  return impl_->keys(prefix);
}
Resolution TimeSeriesStore::resolution_for(int64_t from_ms, int64_t until_ms,
                                           int64_t interval_ms) const {
  return impl_->resolution_for(from_ms, until_ms, interval_ms);
}
StoreStats TimeSeriesStore::stats() const { return impl_->stats(); }
Status TimeSeriesStore::checkpoint_now() { return impl_->request(false); }
Result<LogRead> TimeSeriesStore::read_log(LogPosition from, size_t max_bytes) const {
  return impl_->read_log(from, max_bytes);
}
void TimeSeriesStore::hold_log(std::optional<LogPosition> from) { impl_->hold_log(from); }
Status TimeSeriesStore::seal_all_now() { return impl_->request(true); }

}  // namespace drover::telemetry
