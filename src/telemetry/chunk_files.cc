#include "telemetry/chunk_files.h"

#include <zlib.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <utility>

#include "telemetry/record_log.h"

namespace drover::telemetry {

struct ChunkFiles::File {
  std::string name;  // "raw-20261201"
  Resolution resolution = Resolution::kRaw;
  int64_t period_start = 0;
  std::unique_ptr<AppendFile> data;   // opened for the first append
  std::unique_ptr<AppendFile> index;  // likewise
  std::shared_ptr<ReadFile> reader;
  uint64_t size = 0;           // data bytes appended
  uint64_t synced_size = 0;    // data bytes known durable
  int64_t newest = INT64_MIN;  // the newest sample or point in it: retention goes by this
  uint64_t index_size = 0;     // index bytes appended
  uint32_t index_crc = 0;      // CRC-32 of the index so far
  VerifiedLength synced;       // what is known durable, for checkpoints
};

namespace {

std::string date_of(int64_t t_ms) {
  using namespace std::chrono;
  year_month_day ymd{floor<days>(sys_time<milliseconds>(milliseconds(t_ms)))};
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04d%02u%02u", static_cast<int>(ymd.year()),
                static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()));
  return buf;
}

// "raw-20261201" → resolution and period start; false for any other name.
bool parse_name(std::string_view name, Resolution& r, int64_t& start) {
  auto dash = name.find('-');
  if (dash == std::string_view::npos || name.size() != dash + 9) return false;
  std::string_view res = name.substr(0, dash);
  if (res == "raw") {
    r = Resolution::kRaw;
  } else if (res == "5m") {
    r = Resolution::k5m;
  } else if (res == "1h") {
    r = Resolution::k1h;
  } else {
    return false;
  }
  int y = 0;
  unsigned m = 0;
  unsigned d = 0;
  std::string date(name.substr(dash + 1));
  if (std::sscanf(date.c_str(), "%4d%2u%2u", &y, &m, &d) != 3) return false;
  using namespace std::chrono;
  year_month_day ymd{year(y), month(m), day(d)};
  if (!ymd.ok()) return false;
  start = duration_cast<milliseconds>(sys_days(ymd).time_since_epoch()).count();
  return start == bucket_start(start, ChunkFiles::period_ms(r));
}

Error corrupt(const std::string& what) { return {ErrorCode::kCorruption, what}; }

}  // namespace

ChunkFiles::ChunkFiles(FileSystem& fs, std::string dir) : fs_(fs), dir_(std::move(dir)) {}
ChunkFiles::~ChunkFiles() = default;

int64_t ChunkFiles::period_ms(Resolution r) {
  constexpr int64_t kDay = 86'400'000;
  switch (r) {
    case Resolution::kRaw:
      return kDay;
    case Resolution::k5m:
      return 10 * kDay;
    case Resolution::k1h:
      return 100 * kDay;
  }
  return kDay;
}

Result<std::unique_ptr<ChunkFiles>> ChunkFiles::open(
    FileSystem& fs, std::string dir, const std::map<std::string, VerifiedLength>& verified,
    std::vector<IndexedChunk>& found) {
  DROVER_TRY(fs.make_dir(dir));
  auto names = fs.list(dir);
  if (!names.ok()) return names.error();
  std::unique_ptr<ChunkFiles> files(new ChunkFiles(fs, std::move(dir)));
  auto ends_with = [](const std::string& name, std::string_view suffix) {
    return name.size() > suffix.size() &&
           name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  for (const std::string& name : *names) {
    if (!ends_with(name, ".chunks")) continue;
    DROVER_TRY(files->load(name.substr(0, name.size() - 7), verified, found));
  }
  // An index whose data file is gone (retention, before it removed the index first) goes
  // too — with apply_cuts(), once recovery succeeded.
  for (const std::string& name : *names) {
    if (!ends_with(name, ".index")) continue;
    const std::string base = name.substr(0, name.size() - 6);
    if (std::find(names->begin(), names->end(), base + ".chunks") == names->end()) {
      files->orphans_.push_back(files->dir_ + "/" + name);
    }
  }
  return files;
}

Status ChunkFiles::load(const std::string& name,
                        const std::map<std::string, VerifiedLength>& verified,
                        std::vector<IndexedChunk>& found) {
  auto file = std::make_unique<File>();
  file->name = name;
  if (!parse_name(name, file->resolution, file->period_start)) {
    return corrupt(dir_ + "/" + name + ".chunks: not a chunk file name");
  }
  const std::string data_path = dir_ + "/" + name + ".chunks";
  const std::string index_path = dir_ + "/" + name + ".index";
  auto reader = fs_.open_read(data_path);
  if (!reader.ok()) return reader.error();
  file->reader = std::move(*reader);
  auto index_bytes = fs_.read(index_path);
  if (!index_bytes.ok() && index_bytes.error().code != ErrorCode::kNotFound) {
    return index_bytes.error();
  }
  const std::string index_text = index_bytes.ok() ? std::move(*index_bytes) : std::string();
  // Trusted: what the checkpoint verified, when this is the file it verified.
  VerifiedLength trusted;
  if (auto it = verified.find(name); it != verified.end()) {
    const VerifiedLength& v = it->second;
    if (v.index <= index_text.size() && file->reader->size() >= v.data &&
        crc32_z(0, reinterpret_cast<const Bytef*>(index_text.data()), v.index) == v.index_crc) {
      trusted = v;
    }
  }
  RecordScan scan = scan_records(std::string_view(index_text).substr(0, trusted.index));
  if (scan.damaged) return corrupt(index_path + ": the part a checkpoint verified is damaged");
  std::vector<IndexedChunk> chunks;
  uint64_t end = 0;
  for (std::string_view record : scan.records) {
    FieldReader f(record);
    IndexedChunk c;
    c.resolution = file->resolution;
    const uint64_t series = f.varint();
    const int64_t min_t = f.signed_varint();
    const uint64_t span = f.varint();
    const uint64_t count = f.varint();
    c.ref.offset = f.varint();
    const uint64_t length = f.varint();
    if (!f.ok() || !f.at_end() || c.ref.offset != end || series > UINT32_MAX ||
        count > UINT32_MAX || length > UINT32_MAX || min_t <= -(int64_t{1} << 62) ||
        min_t >= (int64_t{1} << 62) || span >= (uint64_t{1} << 62)) {
      return corrupt(index_path + ": a bad index record");
    }
    c.series = static_cast<uint32_t>(series);
    c.ref.min_t = min_t;
    c.ref.max_t = min_t + static_cast<int64_t>(span);
    c.ref.count = static_cast<uint32_t>(count);
    c.ref.length = static_cast<uint32_t>(length);
    end = c.ref.offset + c.ref.length;
    file->newest = std::max(file->newest, c.ref.max_t);
    chunks.push_back(c);
  }
  if (end != trusted.data) return corrupt(index_path + ": the index and the data disagree");
  cuts_.push_back({data_path, trusted.data});
  cuts_.push_back({index_path, trusted.index});
  file->size = file->synced_size = trusted.data;
  file->index_size = trusted.index;
  file->index_crc = trusted.index_crc;
  file->synced = trusted;
  MutexLock lock(mu_);
  uint32_t id = next_id_++;
  for (auto& c : chunks) {
    c.ref.file = id;
    found.push_back(c);
  }
  by_period_[{file->resolution, file->period_start}] = id;
  files_[id] = std::move(file);
  return ok_status();
}

Status ChunkFiles::apply_cuts() {
  for (const std::string& path : orphans_) DROVER_TRY(fs_.remove(path));
  orphans_.clear();
  for (const Cut& c : cuts_) {
    Status st = fs_.truncate(c.path, c.size);
    if (!st.ok() && c.size > 0) return st;  // an index that never existed cuts to nothing
    if (st.ok()) DROVER_TRY(fs_.sync(c.path));
  }
  cuts_.clear();
  return fs_.sync_dir(dir_);
}

Result<std::pair<uint32_t, ChunkFiles::File*>> ChunkFiles::file_for(Resolution r,
                                                                    int64_t period_start) {
  MutexLock lock(mu_);
  auto it = by_period_.find({r, period_start});
  File* file = nullptr;
  uint32_t id = 0;
  if (it != by_period_.end()) {
    id = it->second;
    file = files_[id].get();
  } else {
    auto fresh = std::make_unique<File>();
    fresh->name = std::string(resolution_name(r)) + "-" + date_of(period_start);
    fresh->resolution = r;
    fresh->period_start = period_start;
    id = next_id_++;
    file = fresh.get();
    by_period_[{r, period_start}] = id;
    files_[id] = std::move(fresh);
    created_ = true;
  }
  if (!file->data) {
    if (file->size == 0) {
      // A file this store has never written to starts empty, whatever a crash left there.
      (void)fs_.truncate(dir_ + "/" + file->name + ".chunks", 0);
      (void)fs_.truncate(dir_ + "/" + file->name + ".index", 0);
    }
    auto data = fs_.open_append(dir_ + "/" + file->name + ".chunks");
    if (!data.ok()) return data.error();
    auto index = fs_.open_append(dir_ + "/" + file->name + ".index");
    if (!index.ok()) return index.error();
    file->data = std::move(*data);
    file->index = std::move(*index);
    if (!file->reader) {
      auto reader = fs_.open_read(dir_ + "/" + file->name + ".chunks");
      if (!reader.ok()) return reader.error();
      file->reader = std::move(*reader);
    }
  }
  return std::pair{id, file};
}

Result<ChunkRef> ChunkFiles::append(uint32_t series, Resolution r, int64_t min_t, int64_t max_t,
                                    uint32_t count, std::string_view bytes) {
  auto file = file_for(r, bucket_start(min_t, period_ms(r)));
  if (!file.ok()) return file.error();
  auto [id, file_ptr] = *file;
  File& f = *file_ptr;
  std::string record;
  append_record(record, bytes);
  ChunkRef ref;
  ref.file = id;
  ref.offset = f.size;
  ref.length = static_cast<uint32_t>(record.size());
  ref.min_t = min_t;
  ref.max_t = max_t;
  ref.count = count;
  DROVER_TRY(f.data->append(record));
  {
    MutexLock lock(mu_);  // read by sync(), data_bytes() and remove_before() under it
    f.size += record.size();
    f.newest = std::max(f.newest, max_t);
  }
  std::string entry;
  FieldWriter w(entry);
  w.varint(series);
  w.signed_varint(min_t);
  w.varint(static_cast<uint64_t>(max_t - min_t));
  w.varint(count);
  w.varint(ref.offset);
  w.varint(ref.length);
  std::string framed;
  append_record(framed, entry);
  DROVER_TRY(f.index->append(framed));
  MutexLock lock(mu_);
  f.index_size += framed.size();
  f.index_crc = static_cast<uint32_t>(
      crc32_z(f.index_crc, reinterpret_cast<const Bytef*>(framed.data()), framed.size()));
  return ref;
}

Status ChunkFiles::sync() {
  std::vector<std::pair<File*, VerifiedLength>> dirty;
  bool created = false;
  {
    MutexLock lock(mu_);
    for (auto& [id, f] : files_) {
      if (f->data && f->size != f->synced_size) {
        dirty.emplace_back(f.get(), VerifiedLength{f->size, f->index_size, f->index_crc});
      }
    }
    created = created_;
  }
  for (auto& [f, at] : dirty) DROVER_TRY(f->data->sync());
  for (auto& [f, at] : dirty) DROVER_TRY(f->index->sync());
  // A new file's name must be on disk too before anything relies on its contents.
  if (created) DROVER_TRY(fs_.sync_dir(dir_));
  MutexLock lock(mu_);
  if (created) created_ = false;
  for (auto& [f, at] : dirty) {
    f->synced_size = at.data;
    f->synced = at;
  }
  return ok_status();
}

Result<std::string> ChunkFiles::read(const ChunkRef& ref) const {
  std::shared_ptr<ReadFile> reader;
  std::string name;
  {
    MutexLock lock(mu_);
    auto it = files_.find(ref.file);
    if (it == files_.end()) return not_found("chunk file removed by retention");
    reader = it->second->reader;
    name = it->second->name;
  }
  auto bytes = reader->read_at(ref.offset, ref.length);
  if (!bytes.ok()) return bytes.error();
  RecordScan scan = scan_records(*bytes);
  if (scan.records.size() != 1 || scan.damaged) {
    return corrupt(dir_ + "/" + name + ".chunks: chunk at " + std::to_string(ref.offset) +
                   " fails its checksum");
  }
  return std::string(scan.records[0]);
}

Result<std::vector<uint32_t>> ChunkFiles::remove_before(Resolution r, int64_t before_ms) {
  std::vector<std::pair<uint32_t, std::string>> doomed;
  {
    MutexLock lock(mu_);
    for (auto it = by_period_.begin(); it != by_period_.end();) {
      const File& f = *files_[it->second];
      if (it->first.first == r && f.newest < before_ms) {
        doomed.emplace_back(it->second, files_[it->second]->name);
        files_.erase(it->second);
        it = by_period_.erase(it);
      } else {
        ++it;
      }
    }
  }
  std::vector<uint32_t> ids;
  for (const auto& [id, name] : doomed) {
    // The index first: a crash between the two leaves data without an index, which the
    // next start trusts to no length — never an index that a new file would append to.
    DROVER_TRY(fs_.remove(dir_ + "/" + name + ".index"));
    DROVER_TRY(fs_.remove(dir_ + "/" + name + ".chunks"));
    ids.push_back(id);
  }
  if (!doomed.empty()) DROVER_TRY(fs_.sync_dir(dir_));
  return ids;
}

std::map<std::string, VerifiedLength> ChunkFiles::synced_sizes() const {
  MutexLock lock(mu_);
  std::map<std::string, VerifiedLength> sizes;
  for (const auto& [id, f] : files_) sizes[f->name] = f->synced;
  return sizes;
}

uint64_t ChunkFiles::data_bytes() const {
  MutexLock lock(mu_);
  uint64_t total = 0;
  for (const auto& [id, f] : files_) total += f->size;
  return total;
}

}  // namespace drover::telemetry
