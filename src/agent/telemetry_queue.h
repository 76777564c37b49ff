// The agent's store-and-forward queue of telemetry (docs/agent.md, "Telemetry"; layout in
// docs/formats.md, "Agent telemetry queue"): samples are on disk before append() returns, and
// leave the disk only after the server acknowledged the batch that carried them. It survives
// reboots and power cuts: every file is appended and synced, or replaced atomically.
//
// Two classes: urgent (alerts and state: a reboot, its reason) and routine. A batch takes the
// oldest urgent samples first. The queue holds at most `max_bytes` on disk; when an append
// would pass that, the oldest routine samples go first (a segment at a time), urgent ones only
// when nothing routine is left — every dropped sample counted, and the count sent with the
// next batch (TelemetryBatch::dropped) until the server acknowledged it.
//
// One batch is out at a time. It is written to the outbox (with the queue positions it ends
// at) before it is sent, so after a crash the same batch — same stream, same sequence — is
// sent again, and the server, which remembers the stream's last sequence, does not store it
// twice.
//
// Thread-compatible: one thread uses a queue.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/file_system.h"
#include "base/result.h"
#include "protocol/telemetry_batch.h"

namespace drover::agent {

enum class Priority : uint8_t { kUrgent = 0, kRoutine = 1 };

struct QueueOptions {
  std::string dir;                          // created when absent
  uint64_t max_bytes = uint64_t{32} << 20;  // on disk, outbox included
  size_t batch_samples = 20'000;            // a batch takes whole records up to this many
  // A batch is cut to stay below this on the wire (the server takes bodies up to 1 MiB).
  size_t batch_bytes = 768u << 10;
  uint64_t stream_seed = 0;  // the new stream's id comes from this (nonzero: tests); 0: random
};

struct OutgoingBatch {
  uint64_t sequence = 0;
  std::string body;  // encode_telemetry_batch: CBOR + zstd
  size_t samples = 0;
  uint64_t dropped = 0;  // the dropped count the batch reports
};

struct QueueStats {
  uint64_t bytes = 0;          // on disk, outbox included
  uint64_t samples = 0;        // waiting (the outbox's included)
  uint64_t dropped_total = 0;  // since the queue was created
  uint64_t dropped_unreported = 0;
  uint64_t stream = 0;
  uint64_t acknowledged = 0;  // the last sequence the server acknowledged
};

class TelemetryQueue {
 public:
  // Opens (or creates) the queue in options.dir: cuts a torn record off a segment's end,
  // removes what a crash left consumed or dropped. kIo, or kCorruption for a state file that
  // is not one.
  static Result<std::unique_ptr<TelemetryQueue>> open(QueueOptions options,
                                                      FileSystem& fs = real_file_system());
  ~TelemetryQueue();
  TelemetryQueue(const TelemetryQueue&) = delete;
  TelemetryQueue& operator=(const TelemetryQueue&) = delete;

  // Appends the series (times strictly increasing within each; names valid) and syncs.
  // Samples not after the last one queued for the same series (a clock stepped back) are
  // left out and counted as dropped. kResourceExhausted when the samples alone exceed the
  // cap; kIo on a failed write (nothing of it is then counted as queued).
  Status append(Priority priority, const std::vector<protocol::TelemetrySeries>& series);

  // The batch to send: the outbox's when there is one, else the oldest records, written to
  // the outbox before this returns. nullopt when nothing waits.
  Result<std::optional<OutgoingBatch>> next_batch();
  // The server acknowledged batch `sequence` (or refused it for good): its samples leave
  // the queue. kFailedPrecondition when that is not the outbox's batch.
  Status acknowledge(uint64_t sequence);
  // The server refused batch `sequence` for good (malformed, past a limit): its samples leave
  // the queue, counted as dropped, and the next batch reports them.
  Status discard(uint64_t sequence);

  // Samples the caller could not queue (a failed append): counted as dropped and reported.
  Status count_dropped(uint64_t samples);

  QueueStats stats() const;

 private:
  struct Impl;
  explicit TelemetryQueue(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace drover::agent
