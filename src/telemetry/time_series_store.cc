#include "telemetry/time_series_store.h"

#include "telemetry/time_series_store_impl.h"

namespace drover::telemetry {

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
