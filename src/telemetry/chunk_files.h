// Where sealed chunks live: for each resolution, one pair of append-only files per period
// (a day of raw samples, ten days of 5-minute and a hundred days of hourly rollups) that
// holds the chunks starting in it, so retention deletes whole files: a file goes when its
// newest sample is older than the retention. `<res>-<YYYYMMDD>.chunks` holds each chunk as a framed
// record (record_log.h; its checksum is verified on every read); `.index` beside it holds,
// for each chunk, the series, time range, count, offset and length, so opening the store
// reads the indexes, not the data. Layout in docs/formats.md ("Telemetry store").
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/file_system.h"
#include "base/mutex.h"
#include "base/result.h"
#include "telemetry/rollup.h"

namespace drover::telemetry {

struct ChunkRef {
  uint32_t file = 0;  // ChunkFiles' id of the data file
  uint32_t length = 0;
  uint64_t offset = 0;
  int64_t min_t = 0;
  int64_t max_t = 0;
  uint32_t count = 0;
};

// What a checkpoint knows to be durable of one chunk file: its data and index lengths, and
// the CRC-32 of that much of its index (so a file of the same name made since is told apart).
struct VerifiedLength {
  uint64_t data = 0;
  uint64_t index = 0;
  uint32_t index_crc = 0;
};

struct IndexedChunk {
  uint32_t series = 0;
  Resolution resolution = Resolution::kRaw;
  ChunkRef ref;
};

class ChunkFiles {
 public:
  // Opens (creating) `dir` and reads every index, trusting of each file only what the last
  // checkpoint verified (`verified`): what was appended after it — possibly unsynced, torn,
  // or in a file whose index reached the disk before another's — is still in the checkpoint
  // or the log, and is sealed again from there. The files are cut back to that only by
  // apply_cuts(), once recovery has succeeded (a refused recovery changes nothing). Every
  // trusted chunk is appended to `found`. kIo / kCorruption on failure.
  static Result<std::unique_ptr<ChunkFiles>> open(
      FileSystem& fs, std::string dir, const std::map<std::string, VerifiedLength>& verified,
      std::vector<IndexedChunk>& found);
  // Cuts every file back to what open() trusted, and syncs them and the directory.
  Status apply_cuts();
  ~ChunkFiles();
  ChunkFiles(const ChunkFiles&) = delete;
  ChunkFiles& operator=(const ChunkFiles&) = delete;

  static int64_t period_ms(Resolution r);

  // Appends a chunk whose first sample is at `min_t` to its period's file. Not durable until
  // sync(). One writer at a time (the store's writer thread).
  Result<ChunkRef> append(uint32_t series, Resolution r, int64_t min_t, int64_t max_t,
                          uint32_t count, std::string_view bytes);
  // Makes every append so far durable: data files first, then their indexes.
  Status sync();

  // A chunk's bytes. kCorruption when they fail their checksum, kNotFound when retention
  // removed the file meanwhile. Thread-safe.
  Result<std::string> read(const ChunkRef& ref) const;

  // Removes the files of resolution `r` whose newest sample is before `before_ms`; returns
  // their ids, so the caller forgets the chunks in them.
  Result<std::vector<uint32_t>> remove_before(Resolution r, int64_t before_ms);

  // Each file's durable lengths, for the next checkpoint.
  std::map<std::string, VerifiedLength> synced_sizes() const;
  // Bytes in all data files (what the store occupies, indexes aside).
  uint64_t data_bytes() const;

 private:
  struct File;
  ChunkFiles(FileSystem& fs, std::string dir);
  Result<std::pair<uint32_t, File*>> file_for(Resolution r, int64_t period_start);
  Status load(const std::string& name, const std::map<std::string, VerifiedLength>& verified,
              std::vector<IndexedChunk>& found);
  struct Cut {
    std::string path;
    uint64_t size;
  };
  std::vector<Cut> cuts_;                 // open()'s, for apply_cuts()
  std::vector<std::string> orphans_;      // indexes without data, for apply_cuts()
  bool created_ GUARDED_BY(mu_) = false;  // a file was created since the directory was synced

  FileSystem& fs_;
  std::string dir_;
  mutable Mutex mu_;  // the file table; data and index appends are the writer's alone
  std::map<uint32_t, std::unique_ptr<File>> files_ GUARDED_BY(mu_);
  std::map<std::pair<Resolution, int64_t>, uint32_t> by_period_ GUARDED_BY(mu_);
  uint32_t next_id_ GUARDED_BY(mu_) = 1;
};

}  // namespace drover::telemetry
