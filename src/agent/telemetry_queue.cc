#include "agent/telemetry_queue.h"

#include <algorithm>
#include <array>
#include <cinttypes>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <random>
#include <unordered_map>

#include "telemetry/record_log.h"

namespace drover::agent {
namespace {

using protocol::TelemetrySeries;
using telemetry::FieldReader;
using telemetry::FieldWriter;

constexpr uint64_t kFormat = 1;
constexpr std::array<char, 2> kClassLetter = {'u', 'r'};  // urgent, routine

// Where the next record to batch starts: a segment and a byte offset in it.
struct Position {
  uint64_t segment = 0;
  uint64_t offset = 0;
  friend bool operator<(const Position& a, const Position& b) {
    return a.segment != b.segment ? a.segment < b.segment : a.offset < b.offset;
  }
};

struct SegmentInfo {
  uint64_t bytes = 0;
  uint64_t samples = 0;  // from the class's first position on
};

// The series' identity inside the queue: the metric, then each label name and value, NUL
// separated (names cannot hold a NUL).
std::string series_id(const std::string& metric,
                      const std::vector<std::pair<std::string, std::string>>& labels) {
  std::string key = metric;
  for (const auto& [name, value] : labels) {
    key += '\0';
    key += name;
    key += '\0';
    key += value;
  }
  return key;
}

// One decoded segment record: the series it defines (id -> series) and its samples.
struct DecodedRecord {
  std::vector<std::pair<uint64_t, TelemetrySeries>> definitions;
  struct Entry {
    uint64_t id;
    int64_t t_ms;
    double value;
  };
  std::vector<Entry> samples;
};

bool decode_record(std::string_view payload, DecodedRecord& out) {
  out.definitions.clear();
  out.samples.clear();
  FieldReader r(payload);
  const uint64_t definitions = r.varint();
  if (!r.ok() || definitions > payload.size()) return false;
  for (uint64_t i = 0; i < definitions; ++i) {
    const uint64_t id = r.varint();
    TelemetrySeries s;
    s.metric = std::string(r.bytes());
    const uint64_t labels = r.varint();
    if (!r.ok() || labels > protocol::kMaxSeriesLabels) return false;
    for (uint64_t l = 0; l < labels; ++l) {
      std::string name(r.bytes());
      s.labels.emplace_back(std::move(name), std::string(r.bytes()));
    }
    if (!r.ok()) return false;
    out.definitions.emplace_back(id, std::move(s));
  }
  const uint64_t samples = r.varint();
  if (!r.ok() || samples > payload.size()) return false;
  out.samples.reserve(samples);
  int64_t t = 0;
  for (uint64_t i = 0; i < samples; ++i) {
    const uint64_t id = r.varint();
    t += r.signed_varint();
    const double v = r.f64();
    out.samples.push_back({id, t, v});
  }
  return r.ok() && r.at_end();
}

struct State {
  uint64_t stream = 0;
  uint64_t acknowledged = 0;
  uint64_t dropped_total = 0;
  uint64_t dropped_unreported = 0;
  std::array<Position, 2> first{};
};

std::string encode_state(const State& s) {
  std::string payload;
  FieldWriter w(payload);
  w.varint(kFormat);
  w.varint(s.stream);
  w.varint(s.acknowledged);
  w.varint(s.dropped_total);
  w.varint(s.dropped_unreported);
  for (const Position& p : s.first) {
    w.varint(p.segment);
    w.varint(p.offset);
  }
  std::string out;
  telemetry::append_record(out, payload);
  return out;
}

struct Outbox {
  uint64_t sequence = 0;
  uint64_t dropped = 0;
  uint64_t samples = 0;
  std::array<Position, 2> end{};
  std::string body;
};

std::string encode_outbox(const Outbox& o) {
  std::string payload;
  FieldWriter w(payload);
  w.varint(kFormat);
  w.varint(o.sequence);
  w.varint(o.dropped);
  w.varint(o.samples);
  for (const Position& p : o.end) {
    w.varint(p.segment);
    w.varint(p.offset);
  }
  w.bytes(o.body);
  std::string out;
  telemetry::append_record(out, payload);
  return out;
}

// The one record a state or outbox file holds; false when it is not whole or not ours.
bool read_single_record(std::string_view file, std::string_view& payload) {
  const telemetry::RecordScan scan = telemetry::scan_records(file);
  if (scan.records.size() != 1 || scan.damaged) return false;
  payload = scan.records.front();
  return true;
}

Result<State> decode_state(std::string_view file, const std::string& path) {
  std::string_view payload;
  State s;
  if (read_single_record(file, payload)) {
    FieldReader r(payload);
    const uint64_t format = r.varint();
    s.stream = r.varint();
    s.acknowledged = r.varint();
    s.dropped_total = r.varint();
    s.dropped_unreported = r.varint();
    for (Position& p : s.first) {
      p.segment = r.varint();
      p.offset = r.varint();
    }
    if (r.ok() && r.at_end() && format == kFormat && s.stream != 0) return s;
  }
  return Error{ErrorCode::kCorruption, path + ": not a telemetry queue state file"};
}

Result<Outbox> decode_outbox(std::string_view file, const std::string& path) {
  std::string_view payload;
  Outbox o;
  if (read_single_record(file, payload)) {
    FieldReader r(payload);
    const uint64_t format = r.varint();
    o.sequence = r.varint();
    o.dropped = r.varint();
    o.samples = r.varint();
    for (Position& p : o.end) {
      p.segment = r.varint();
      p.offset = r.varint();
    }
    o.body = std::string(r.bytes());
    if (r.ok() && r.at_end() && format == kFormat && o.sequence != 0) return o;
  }
  return Error{ErrorCode::kCorruption, path + ": not a telemetry outbox file"};
}

// "u-0000000000000007.q" -> class 0, segment 7; false for any other name.
bool parse_segment_name(const std::string& name, size_t& cls, uint64_t& segment) {
  if (name.size() != 20 || name[1] != '-' || name.substr(18) != ".q") return false;
  const auto letter = std::find(kClassLetter.begin(), kClassLetter.end(), name[0]);
  if (letter == kClassLetter.end()) return false;
  uint64_t n = 0;
  for (size_t i = 2; i < 18; ++i) {
    if (name[i] < '0' || name[i] > '9') return false;
    n = n * 10 + static_cast<uint64_t>(name[i] - '0');
  }
  cls = static_cast<size_t>(letter - kClassLetter.begin());
  segment = n;
  return true;
}

}  // namespace

struct TelemetryQueue::Impl {
  QueueOptions o;
  FileSystem& fs;
  uint64_t segment_bytes = 0;
  State state;
  std::optional<Outbox> outbox;
  uint64_t outbox_bytes = 0;
  std::array<std::map<uint64_t, SegmentInfo>, 2> segments;
  // The segment each class appends to, with the ids its series have there.
  struct Writer {
    uint64_t segment = 0;
    std::unique_ptr<AppendFile> file;
    std::unordered_map<std::string, uint64_t> ids;
  };
  std::array<Writer, 2> writers;
  uint64_t next_segment = 1;
  std::unordered_map<std::string, int64_t> last_t;  // per series, the newest queued time

  Impl(QueueOptions options, FileSystem& f) : o(std::move(options)), fs(f) {
    segment_bytes = std::clamp<uint64_t>(o.max_bytes / 32, 16u << 10, 1u << 20);
  }

  std::string path(const std::string& name) const {
    return (std::filesystem::path(o.dir) / name).string();
  }
  std::string segment_path(size_t cls, uint64_t segment) const {
    char name[32];
    std::snprintf(name, sizeof name, "%c-%016" PRIu64 ".q", kClassLetter[cls], segment);
    return path(name);
  }

  uint64_t bytes() const {
    uint64_t total = outbox_bytes;
    for (const auto& by_segment : segments) {
      for (const auto& [n, info] : by_segment) total += info.bytes;
    }
    return total;
  }

  // Reads one segment's records from `from` on (the dictionary from its start), calling
  // `take(offset_after, record)` for each record at or after `from.offset`; `take` returns
  // false to stop. The ids map to the series the segment defined.
  Status scan_segment(size_t cls, uint64_t segment, uint64_t from_offset,
                      std::unordered_map<uint64_t, TelemetrySeries>& ids,
                      const std::function<bool(uint64_t, uint64_t, DecodedRecord&)>& take,
                      uint64_t* valid_bytes = nullptr) {
    const std::string p = segment_path(cls, segment);
    auto bytes = fs.read(p);
    if (!bytes.ok()) return bytes.error();
    const telemetry::RecordScan scan = telemetry::scan_records(*bytes);
    DecodedRecord record;
    uint64_t valid = 0;
    for (std::string_view payload : scan.records) {
      const auto start =
          static_cast<uint64_t>(payload.data() - bytes->data()) - telemetry::kRecordHeaderBytes;
      const uint64_t end = start + telemetry::kRecordHeaderBytes + payload.size();
      if (!decode_record(payload, record)) break;
      valid = end;
      for (auto& [id, s] : record.definitions) ids[id] = std::move(s);
      if (start < from_offset) continue;
      if (!take(start, end, record)) break;
    }
    if (valid_bytes != nullptr) *valid_bytes = valid;
    return ok_status();
  }

  Status recover() {
    DROVER_TRY(fs.make_dir(o.dir));
    auto state_file = fs.read(path("state"));
    if (state_file.ok()) {
      auto s = decode_state(*state_file, path("state"));
      if (!s.ok()) return s.error();
      state = *s;
    } else if (state_file.error().code != ErrorCode::kNotFound) {
      return state_file.error();
    } else {
      uint64_t stream = o.stream_seed;
      if (stream == 0) {
        std::random_device device;
        stream = (uint64_t{device()} << 32) ^ device();
      }
      state.stream = stream == 0 ? 1 : stream;
      DROVER_TRY(commit_state(state));
    }
    auto outbox_file = fs.read(path("outbox"));
    if (outbox_file.ok()) {
      auto ob = decode_outbox(*outbox_file, path("outbox"));
      if (!ob.ok()) return ob.error();
      if (ob->sequence <= state.acknowledged) {
        DROVER_TRY(fs.remove(path("outbox")));  // acknowledged; only its removal was lost
      } else {
        for (size_t c = 0; c < 2; ++c) state.first[c] = std::max(state.first[c], ob->end[c]);
        outbox_bytes = outbox_file->size();
        outbox = std::move(*ob);
      }
    } else if (outbox_file.error().code != ErrorCode::kNotFound) {
      return outbox_file.error();
    }
    for (const Position& p : state.first) next_segment = std::max(next_segment, p.segment + 1);
    auto names = fs.list(o.dir);
    if (!names.ok()) return names.error();
    for (const std::string& name : *names) {
      size_t cls = 0;
      uint64_t segment = 0;
      if (!parse_segment_name(name, cls, segment)) continue;
      next_segment = std::max(next_segment, segment + 1);
      if (segment < state.first[cls].segment) {
        DROVER_TRY(fs.remove(path(name)));  // consumed or dropped before the crash
        continue;
      }
      segments[cls][segment] = {};
    }
    for (size_t cls = 0; cls < 2; ++cls) {
      for (auto& entry : segments[cls]) {
        const uint64_t segment = entry.first;
        SegmentInfo& info = entry.second;  // (a structured binding cannot be captured)
        std::unordered_map<uint64_t, TelemetrySeries> ids;
        const uint64_t from = segment == state.first[cls].segment ? state.first[cls].offset : 0;
        uint64_t valid = 0;
        DROVER_TRY(scan_segment(
            cls, segment, from, ids,
            [&](uint64_t, uint64_t, DecodedRecord& record) {
              info.samples += record.samples.size();
              for (const auto& e : record.samples) {
                auto it = ids.find(e.id);
                if (it == ids.end()) continue;
                int64_t& last = last_t[series_id(it->second.metric, it->second.labels)];
                last = std::max(last, e.t_ms);
              }
              return true;
            },
            &valid));
        auto file = fs.open_read(segment_path(cls, segment));
        if (!file.ok()) return file.error();
        if ((*file)->size() > valid) {
          // A record cut by the crash (or damaged): the segment ends before it.
          DROVER_TRY(fs.truncate(segment_path(cls, segment), valid));
          DROVER_TRY(fs.sync(segment_path(cls, segment)));
        }
        info.bytes = valid;
      }
      // Segments a crash left empty (made, but no record synced yet) go: new appends go to a
      // new segment anyway.
      for (auto it = segments[cls].begin(); it != segments[cls].end();) {
        if (it->second.bytes > 0) {
          ++it;
          continue;
        }
        DROVER_TRY(fs.remove(segment_path(cls, it->first)));
        it = segments[cls].erase(it);
      }
    }
    return ok_status();
  }

  // Opens a new segment for `cls` (the directory entry synced, so it outlives a power cut).
  Status open_writer(size_t cls) {
    Writer w;
    w.segment = next_segment;
    auto file = fs.open_append(segment_path(cls, w.segment));
    if (!file.ok()) return file.error();
    DROVER_TRY(fs.sync_dir(o.dir));
    w.file = std::move(*file);
    ++next_segment;
    segments[cls][w.segment] = {};
    writers[cls] = std::move(w);
    return ok_status();
  }

  // Saves `next` as the state, and only then makes it the one in memory: a failed save
  // changes nothing (a retry does not count twice).
  Status commit_state(const State& next) {
    DROVER_TRY(write_atomically(fs, path("state"), encode_state(next)));
    state = next;
    return ok_status();
  }

  // Drops the oldest segment holding anything (routine first, urgent only when nothing
  // routine is left), counting its samples. Empty segments met on the way (a crash or a
  // failed write before their first record) are removed. False when nothing is left.
  Result<bool> drop_oldest() {
    for (size_t cls : {size_t{1}, size_t{0}}) {
      auto& by_segment = segments[cls];
      while (!by_segment.empty()) {
        const uint64_t oldest = by_segment.begin()->first;
        const SegmentInfo info = by_segment.begin()->second;
        const bool writing = writers[cls].file && writers[cls].segment == oldest;
        if (info.bytes == 0) {
          if (writing) break;  // the newest, and empty: nothing of this class to drop
          by_segment.erase(by_segment.begin());
          (void)fs.remove(segment_path(cls, oldest));
          continue;
        }
        State next = state;
        next.dropped_total += info.samples;
        next.dropped_unreported += info.samples;
        next.first[cls] = std::max(next.first[cls], Position{oldest + 1, 0});
        DROVER_TRY(commit_state(next));  // counted before the samples go
        if (writing) writers[cls] = {};
        by_segment.erase(by_segment.begin());
        (void)fs.remove(segment_path(cls, oldest));  // recovery removes it if this fails
        return true;
      }
    }
    return false;
  }

  Status count_dropped(uint64_t n) {
    if (n == 0) return ok_status();
    State next = state;
    next.dropped_total += n;
    next.dropped_unreported += n;
    return commit_state(next);
  }

  // One append's record, encoded against the writer's dictionary.
  struct Encoded {
    std::string record;
    uint64_t count = 0;
    uint64_t stepped_back = 0;
    std::unordered_map<std::string, uint64_t> new_ids;
    std::vector<std::pair<std::string, int64_t>> newest;
  };
  Encoded encode(const Writer& w, const std::vector<TelemetrySeries>& series) const {
    Encoded e;
    std::string definitions;
    FieldWriter defs(definitions);
    std::string samples;
    FieldWriter out(samples);
    uint64_t defined = 0;
    int64_t t = 0;
    for (const TelemetrySeries& s : series) {
      const std::string key = series_id(s.metric, s.labels);
      auto known = last_t.find(key);
      int64_t last = known == last_t.end() ? INT64_MIN : known->second;
      for (const auto& [k, newest] : e.newest) {
        if (k == key) last = std::max(last, newest);  // the same series twice in one call
      }
      uint64_t id = 0;
      bool have_id = false;
      for (const telemetry::Sample& sample : s.samples) {
        if (sample.t_ms <= last) {
          ++e.stepped_back;
          continue;
        }
        if (!have_id) {
          if (auto it = w.ids.find(key); it != w.ids.end()) {
            id = it->second;
          } else if (auto fresh = e.new_ids.find(key); fresh != e.new_ids.end()) {
            id = fresh->second;
          } else {
            id = w.ids.size() + e.new_ids.size();
            e.new_ids.emplace(key, id);
            defs.varint(id);
            defs.bytes(s.metric);
            defs.varint(s.labels.size());
            for (const auto& [name, value] : s.labels) {
              defs.bytes(name);
              defs.bytes(value);
            }
            ++defined;
          }
          have_id = true;
        }
        out.varint(id);
        out.signed_varint(sample.t_ms - t);
        t = sample.t_ms;
        out.f64(sample.value);
        last = sample.t_ms;
        ++e.count;
      }
      if (have_id) e.newest.emplace_back(key, last);
    }
    if (e.count == 0) return e;
    std::string payload;
    FieldWriter head(payload);
    head.varint(defined);
    payload += definitions;
    head.varint(e.count);
    payload += samples;
    telemetry::append_record(e.record, payload);
    return e;
  }

  // Whether the series are ones a batch may carry (names, labels, times): the queue must
  // never hold a record no batch can take.
  static Status check(const std::vector<TelemetrySeries>& series) {
    for (const TelemetrySeries& s : series) {
      if (!protocol::is_valid_metric_name(s.metric) ||
          s.labels.size() > protocol::kMaxSeriesLabels) {
        return invalid_argument("telemetry queue: series '" + s.metric.substr(0, 64) +
                                "' has a bad name or too many labels");
      }
      for (const auto& [name, value] : s.labels) {
        if (!protocol::is_valid_label_name(name) || !protocol::is_valid_label_value(value)) {
          return invalid_argument("telemetry queue: series '" + s.metric +
                                  "' has a bad label name or value");
        }
      }
      for (const telemetry::Sample& x : s.samples) {
        if (x.t_ms < 0 || x.t_ms > protocol::kMaxSampleTimeMs)
          return invalid_argument("telemetry queue: a sample time is out of range");
      }
    }
    return ok_status();
  }

  Status append(Priority priority, const std::vector<TelemetrySeries>& series) {
    DROVER_TRY(check(series));
    const auto cls = static_cast<size_t>(priority);
    if (!writers[cls].file || writers[cls].file->size() >= segment_bytes) {
      DROVER_TRY(open_writer(cls));
    }
    Encoded e = encode(writers[cls], series);
    if (e.count > 0 && e.record.size() + outbox_bytes > o.max_bytes) {
      return Error{ErrorCode::kResourceExhausted,
                   "telemetry queue: " + std::to_string(e.count) + " samples take " +
                       std::to_string(e.record.size()) + " bytes, more than the queue holds"};
    }
    // Room first. Dropping may take the writer's own segment: the record is then encoded
    // again against the new segment's (empty) dictionary.
    while (e.count > 0 && bytes() + e.record.size() > o.max_bytes) {
      auto dropped = drop_oldest();
      if (!dropped.ok()) return dropped.error();
      if (!*dropped) break;
      if (!writers[cls].file) {
        DROVER_TRY(open_writer(cls));
        e = encode(writers[cls], series);
      }
    }
    DROVER_TRY(count_dropped(e.stepped_back));
    if (e.count == 0) return ok_status();
    Writer& writer = writers[cls];
    Status st = writer.file->append(e.record);
    if (st.ok()) st = writer.file->sync();
    if (!st.ok()) {
      // The segment may end in part of this record: nothing more goes after it.
      segments[cls][writer.segment].bytes = writer.file->size();
      writers[cls] = {};
      return st;
    }
    for (auto& [key, id] : e.new_ids) writer.ids.emplace(key, id);
    for (auto& [key, newest_t] : e.newest) last_t[key] = newest_t;
    SegmentInfo& info = segments[cls][writer.segment];
    info.bytes = writer.file->size();
    info.samples += e.count;
    return ok_status();
  }

  Result<std::optional<OutgoingBatch>> next_batch() {
    if (!outbox) {
      size_t limit = o.batch_samples;
      for (;;) {
        auto built = build(limit);
        if (!built.ok()) return built.error();
        if (!*built) return std::optional<OutgoingBatch>();
        if ((*built)->body.size() <= o.batch_bytes || limit <= 1) {
          DROVER_TRY(commit_outbox(std::move(**built)));
          break;
        }
        limit /= 2;
      }
    }
    return std::optional<OutgoingBatch>(
        OutgoingBatch{outbox->sequence, outbox->body, outbox->samples, outbox->dropped});
  }

  struct Built {
    Outbox outbox;
    // Per class: samples taken from each segment.
    std::array<std::map<uint64_t, uint64_t>, 2> taken;
  };
  std::optional<Built> pending_;

  // Builds the next batch from the queue's records, up to `limit` samples (whole records;
  // always at least one record). Nothing is changed.
  Result<std::optional<Outbox>> build(size_t limit) {
    protocol::TelemetryBatch batch;
    batch.stream = state.stream;
    batch.sequence = state.acknowledged + 1;
    batch.dropped = state.dropped_unreported;
    Built built;
    std::unordered_map<std::string, size_t> index;  // series id -> batch.series
    size_t taken = 0;
    uint64_t skipped = 0;
    bool full = false;
    for (size_t cls = 0; cls < 2 && !full; ++cls) {
      Position at = state.first[cls];
      for (auto& entry : segments[cls]) {
        const uint64_t segment = entry.first;
        const SegmentInfo& info = entry.second;
        if (full) break;
        std::unordered_map<uint64_t, TelemetrySeries> ids;
        const uint64_t from = segment == state.first[cls].segment ? state.first[cls].offset : 0;
        DROVER_TRY(scan_segment(
            cls, segment, from, ids, [&](uint64_t, uint64_t end, DecodedRecord& record) {
              if (taken > 0 &&
                  (taken + record.samples.size() > limit ||
                   batch.series.size() + record.samples.size() > protocol::kMaxBatchSeries)) {
                full = true;
                return false;
              }
              for (const auto& e : record.samples) {
                auto it = ids.find(e.id);
                if (it == ids.end()) {
                  ++skipped;
                  continue;
                }
                const std::string key = series_id(it->second.metric, it->second.labels);
                auto [slot, added] = index.emplace(key, batch.series.size());
                if (added) {
                  batch.series.push_back({it->second.metric, it->second.labels, {}});
                }
                auto& out = batch.series[slot->second].samples;
                if (!out.empty() && out.back().t_ms >= e.t_ms) {
                  ++skipped;
                  continue;
                }
                out.push_back({e.t_ms, e.value});
              }
              taken += record.samples.size();
              built.taken[cls][segment] += record.samples.size();
              at = {segment, end};
              return true;
            }));
        if (!full && at.segment != segment) at = {segment, info.bytes};
      }
      built.outbox.end[cls] = at;
    }
    for (size_t cls = 0; cls < 2; ++cls) {
      if (built.taken[cls].empty()) built.outbox.end[cls] = state.first[cls];
    }
    if (taken == 0) return std::optional<Outbox>();
    // Samples a damaged record or a stepped-back clock left out are counted as dropped.
    batch.dropped += skipped;
    built.outbox.sequence = batch.sequence;
    built.outbox.dropped = batch.dropped;
    built.outbox.samples = taken - skipped;
    built.outbox.body = protocol::encode_telemetry_batch(batch);
    pending_ = std::move(built);
    pending_skipped_ = skipped;
    return std::optional<Outbox>(pending_->outbox);
  }
  uint64_t pending_skipped_ = 0;

  // Writes the batch just built to the outbox, then moves the queue's start past it.
  Status commit_outbox(Outbox ob) {
    if (pending_skipped_ > 0) {
      // Counted before the batch that reports them is written (a crash in between counts
      // them twice, never not at all).
      State next = state;
      next.dropped_total += pending_skipped_;
      next.dropped_unreported += pending_skipped_;
      DROVER_TRY(commit_state(next));
    }
    const std::string bytes = encode_outbox(ob);
    DROVER_TRY(write_atomically(fs, path("outbox"), bytes));
    // From here the outbox holds the batch and its end: the queue's start moves past it at
    // once (recovery does the same from the file), and what follows is only tidying.
    outbox_bytes = bytes.size();
    for (size_t cls = 0; cls < 2; ++cls) {
      for (const auto& [segment, n] : pending_->taken[cls]) {
        auto it = segments[cls].find(segment);
        if (it != segments[cls].end()) it->second.samples -= std::min(it->second.samples, n);
      }
      state.first[cls] = std::max(state.first[cls], ob.end[cls]);
    }
    outbox = std::move(ob);
    pending_.reset();
    for (size_t cls = 0; cls < 2; ++cls) {
      // Segments wholly in the outbox are not needed any more (recovery removes them too).
      auto& by_segment = segments[cls];
      for (auto it = by_segment.begin();
           it != by_segment.end() && it->first < state.first[cls].segment;) {
        if (writers[cls].file && writers[cls].segment == it->first) {
          ++it;
          continue;
        }
        (void)fs.remove(segment_path(cls, it->first));
        it = by_segment.erase(it);
      }
    }
    return ok_status();
  }

  Status acknowledge(uint64_t sequence, bool delivered = true) {
    if (!outbox || outbox->sequence != sequence) {
      return Error{ErrorCode::kFailedPrecondition,
                   "telemetry queue: batch " + std::to_string(sequence) + " is not the one out"};
    }
    State next = state;
    next.acknowledged = sequence;
    if (delivered) {
      next.dropped_unreported -= std::min(next.dropped_unreported, outbox->dropped);
    } else {
      next.dropped_total += outbox->samples;
      next.dropped_unreported += outbox->samples;
    }
    DROVER_TRY(commit_state(next));
    outbox.reset();
    outbox_bytes = 0;
    // An outbox left behind is recognised as acknowledged at the next start.
    (void)fs.remove(path("outbox"));
    return ok_status();
  }

  QueueStats stats() const {
    QueueStats s;
    s.bytes = bytes();
    for (const auto& by_segment : segments) {
      for (const auto& [n, info] : by_segment) s.samples += info.samples;
    }
    if (outbox) s.samples += outbox->samples;
    s.dropped_total = state.dropped_total;
    s.dropped_unreported = state.dropped_unreported;
    s.stream = state.stream;
    s.acknowledged = state.acknowledged;
    return s;
  }
};

TelemetryQueue::TelemetryQueue(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
TelemetryQueue::~TelemetryQueue() = default;

Result<std::unique_ptr<TelemetryQueue>> TelemetryQueue::open(QueueOptions options, FileSystem& fs) {
  auto impl = std::make_unique<Impl>(std::move(options), fs);
  DROVER_TRY(impl->recover());
  return std::unique_ptr<TelemetryQueue>(new TelemetryQueue(std::move(impl)));
}

Status TelemetryQueue::append(Priority priority, const std::vector<TelemetrySeries>& series) {
  return impl_->append(priority, series);
}
Result<std::optional<OutgoingBatch>> TelemetryQueue::next_batch() { return impl_->next_batch(); }
Status TelemetryQueue::acknowledge(uint64_t sequence) { return impl_->acknowledge(sequence); }
Status TelemetryQueue::discard(uint64_t sequence) { return impl_->acknowledge(sequence, false); }
QueueStats TelemetryQueue::stats() const { return impl_->stats(); }
Status TelemetryQueue::count_dropped(uint64_t samples) { return impl_->count_dropped(samples); }

}  // namespace drover::agent
