// TimeSeriesStore's recovery at open, and its writer thread: sealing heads into chunks,
// checkpoints, retention, and telling appenders when their batches are durable.
#include "telemetry/time_series_store.h"
#include "telemetry/time_series_store_impl.h"

namespace drover::telemetry {

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

}  // namespace drover::telemetry
