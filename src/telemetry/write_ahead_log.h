// The time-series store's write-ahead log: every accepted batch is a framed record
// (record_log.h) in the current segment `wal-<n>.log`, made durable by fdatasync before the
// batch is acknowledged. A checkpoint `checkpoint-<n>` holds the store's in-memory state (the
// heads, the open rollups, the sources' sequence numbers) as of the start of segment n, so
// that segments before n can be deleted. Recovery reads the newest checkpoint and replays
// the segments from n on. Layout in docs/formats.md ("Telemetry store").
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/file_system.h"
#include "base/result.h"

namespace drover::telemetry {

class WriteAheadLog {
 public:
  using RecordFn = std::function<Status(std::string_view payload)>;

  // Opens (creating) `dir`. Recovery then reads the newest checkpoint, replays the segments
  // after it, and start()s a new segment for appends.
  static Result<std::unique_ptr<WriteAheadLog>> open(FileSystem& fs, std::string dir);

  // Calls `fn` for each record of the newest checkpoint (none when there is none). A damaged
  // checkpoint is kCorruption (it is written whole and renamed into place).
  Status read_checkpoint(const RecordFn& fn);
  // Calls `fn` for each record of the segments from the checkpoint on, in order. A torn tail
  // of the newest segment is cut off (a crash while it was appended: that batch was never
  // acknowledged); damage anywhere else is kCorruption.
  Status replay(const RecordFn& fn);
  // Starts the segment appends go to.
  Status start();

  // Appends framed records to the current segment (not yet durable). Writer thread only.
  Status append(std::string_view framed);
  Status sync();
  uint64_t segment_bytes() const;
  uint64_t segment() const { return segment_; }

  // Starts a new segment; everything appended before is synced first.
  Status rotate();
  // Writes `framed` (framed records) as the checkpoint of the current segment's start,
  // atomically, then deletes the older checkpoints and the older segments — but those from
  // `keep_from` on, while they total at most `keep_bytes` (a reader of the log, the remote
  // write, still needs them; past the cap the oldest go anyway, and it is told).
  Status checkpoint(std::string_view framed, uint64_t keep_from = UINT64_MAX,
                    uint64_t keep_bytes = 0);

  // The segments on disk, oldest first (the current one last).
  std::vector<uint64_t> segments() const;
  // Up to `max_bytes` of segment `n` from `offset` (fewer where it ends). kNotFound when the
  // segment is gone.
  Result<std::string> read_segment(uint64_t n, uint64_t offset, size_t max_bytes) const;

 private:
  WriteAheadLog(FileSystem& fs, std::string dir) : fs_(fs), dir_(std::move(dir)) {}
  std::string segment_path(uint64_t n) const;
  std::string checkpoint_path(uint64_t n) const;
  Status start_segment(uint64_t n);

  FileSystem& fs_;
  std::string dir_;
  uint64_t segment_ = 0;
  std::unique_ptr<AppendFile> file_;
  std::vector<uint64_t> older_segments_;  // still on disk, before the current one
  std::vector<uint64_t> checkpoints_;     // on disk
  std::vector<uint64_t> found_segments_;  // at open, sorted
};

}  // namespace drover::telemetry
