#include "telemetry/write_ahead_log.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>

#include "telemetry/record_log.h"

namespace drover::telemetry {
namespace {

// "wal-0000000000000012.log" → 12 (prefix "wal-", suffix ".log"); false otherwise.
bool parse_numbered(const std::string& name, std::string_view prefix, std::string_view suffix,
                    uint64_t& n) {
  if (name.size() != prefix.size() + 16 + suffix.size()) return false;
  if (name.compare(0, prefix.size(), prefix) != 0) return false;
  if (name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0) return false;
  n = 0;
  for (size_t i = prefix.size(); i < prefix.size() + 16; ++i) {
    if (name[i] < '0' || name[i] > '9') return false;
    n = n * 10 + static_cast<uint64_t>(name[i] - '0');
  }
  return true;
}

std::string numbered(uint64_t n) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "%016" PRIu64, n);
  return buf;
}

}  // namespace

std::string WriteAheadLog::segment_path(uint64_t n) const {
  return dir_ + "/wal-" + numbered(n) + ".log";
}
std::string WriteAheadLog::checkpoint_path(uint64_t n) const {
  return dir_ + "/checkpoint-" + numbered(n);
}

Result<std::unique_ptr<WriteAheadLog>> WriteAheadLog::open(FileSystem& fs, std::string dir) {
  DROVER_TRY(fs.make_dir(dir));
  auto names = fs.list(dir);
  if (!names.ok()) return names.error();
  std::unique_ptr<WriteAheadLog> wal(new WriteAheadLog(fs, std::move(dir)));
  for (const std::string& name : *names) {
    uint64_t n = 0;
    if (parse_numbered(name, "wal-", ".log", n)) wal->found_segments_.push_back(n);
    if (parse_numbered(name, "checkpoint-", "", n)) wal->checkpoints_.push_back(n);
    if (name.size() > 4 && name.compare(name.size() - 4, 4, ".tmp") == 0) {
      DROVER_TRY(fs.remove(wal->dir_ + "/" + name));  // a checkpoint a crash cut short
    }
  }
  std::sort(wal->found_segments_.begin(), wal->found_segments_.end());
  std::sort(wal->checkpoints_.begin(), wal->checkpoints_.end());
  return wal;
}

Status WriteAheadLog::read_checkpoint(const RecordFn& fn) {
  if (checkpoints_.empty()) return ok_status();
  auto bytes = fs_.read(checkpoint_path(checkpoints_.back()));
  if (!bytes.ok()) return bytes.error();
  RecordScan scan = scan_records(*bytes);
  if (scan.damaged) {
    return Error{ErrorCode::kCorruption, checkpoint_path(checkpoints_.back()) + " is damaged"};
  }
  for (std::string_view record : scan.records) DROVER_TRY(fn(record));
  return ok_status();
}

Status WriteAheadLog::replay(const RecordFn& fn) {
  const uint64_t first = checkpoints_.empty() ? 0 : checkpoints_.back();
  for (size_t i = 0; i < found_segments_.size(); ++i) {
    uint64_t n = found_segments_[i];
    if (n < first) continue;  // a crash came between the checkpoint and the deletes
    auto bytes = fs_.read(segment_path(n));
    if (!bytes.ok()) return bytes.error();
    RecordScan scan = scan_records(*bytes);
    bool newest = i + 1 == found_segments_.size();
    if (scan.damaged && !newest) {
      return Error{ErrorCode::kCorruption, segment_path(n) + " is damaged at byte " +
                                               std::to_string(scan.valid_bytes) +
                                               " and is not the newest segment"};
    }
    for (std::string_view record : scan.records) DROVER_TRY(fn(record));
    if (scan.damaged) DROVER_TRY(fs_.truncate(segment_path(n), scan.valid_bytes));
    // What replay took counts as stored (a retry of it is answered at once): after a kill -9
    // it may not have reached the disk yet, so it is made to.
    DROVER_TRY(fs_.sync(segment_path(n)));
  }
  return ok_status();
}

Status WriteAheadLog::start() {
  const uint64_t first = checkpoints_.empty() ? 0 : checkpoints_.back();
  older_segments_ = found_segments_;
  uint64_t next = found_segments_.empty() ? first : std::max(first, found_segments_.back() + 1);
  return start_segment(next);
}

Status WriteAheadLog::start_segment(uint64_t n) {
  auto file = fs_.open_append(segment_path(n));
  if (!file.ok()) return file.error();
  file_ = std::move(*file);
  segment_ = n;
  return fs_.sync_dir(dir_);
}

std::vector<uint64_t> WriteAheadLog::segments() const {
  std::vector<uint64_t> all = older_segments_;
  all.push_back(segment_);
  return all;
}

Result<std::string> WriteAheadLog::read_segment(uint64_t n, uint64_t offset,
                                                size_t max_bytes) const {
  auto reader = fs_.open_read(segment_path(n));
  if (!reader.ok()) return reader.error();
  return (*reader)->read_at(offset, max_bytes);
}

Status WriteAheadLog::append(std::string_view framed) { return file_->append(framed); }
Status WriteAheadLog::sync() { return file_->sync(); }
uint64_t WriteAheadLog::segment_bytes() const { return file_->size(); }

Status WriteAheadLog::rotate() {
  DROVER_TRY(file_->sync());
  older_segments_.push_back(segment_);
  return start_segment(segment_ + 1);
}

Status WriteAheadLog::checkpoint(std::string_view framed, uint64_t keep_from, uint64_t keep_bytes) {
  DROVER_TRY(write_atomically(fs_, checkpoint_path(segment_), framed));
  // The new checkpoint holds everything the older files did: they can go, but for what a
  // reader still needs, within its cap (newest kept first).
  std::vector<uint64_t> kept;
  uint64_t kept_bytes = 0;
  for (auto it = older_segments_.rbegin(); it != older_segments_.rend(); ++it) {
    if (*it < keep_from) break;
    auto reader = fs_.open_read(segment_path(*it));
    const uint64_t size = reader.ok() ? (*reader)->size() : 0;
    if (kept_bytes + size > keep_bytes) break;
    kept_bytes += size;
    kept.push_back(*it);
  }
  for (uint64_t n : older_segments_) {
    if (std::find(kept.begin(), kept.end(), n) == kept.end())
      DROVER_TRY(fs_.remove(segment_path(n)));
  }
  std::sort(kept.begin(), kept.end());
  older_segments_ = kept;
  for (uint64_t n : checkpoints_) {
    if (n != segment_) DROVER_TRY(fs_.remove(checkpoint_path(n)));
  }
  checkpoints_.assign(1, segment_);
  return fs_.sync_dir(dir_);
}

}  // namespace drover::telemetry
