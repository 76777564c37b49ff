// Prometheus remote write (protocol 1.0: protobuf WriteRequest, snappy block compression)
// from the telemetry store to any compatible store — VictoriaMetrics, Prometheus, Mimir —
// for when the fleet outgrows one machine.
//
// The writer follows the store's write-ahead log (TimeSeriesStore::read_log), as Prometheus
// follows its own: what it sends is exactly what was acknowledged to devices, in order. Its
// position is written (atomically) to `cursor_path` only after the remote store accepted
// everything before it, and the store keeps the log segments from that position on
// (hold_log), so an outage of the remote store, or a restart of `drover serve`, loses
// nothing: the writer retries with backoff and carries on where it stood. After a crash
// between a send and the cursor's write, the last requests are sent again (the remote store
// takes a repeated sample as the same sample). If the remote store stays down so long that
// the held log passes StoreOptions::log_hold_bytes, the oldest segments go and the writer
// counts the gap (`segments_skipped`) and says so in its log — never silently.
//
// Each series is sent with the labels `labels_of` gives it (`__name__`, the device, its type,
// revision and site, the series' own labels). Answers: 2xx accepted; 429, 5xx and network
// errors are retried (backoff from 100 ms doubling to 30 s); any other 4xx cannot succeed
// however often it is sent: the request's samples are counted as dropped and logged.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "base/clock.h"
#include "base/file_system.h"
#include "base/mutex.h"
#include "telemetry/time_series_store.h"

namespace drover::telemetry {

using Labels = std::vector<std::pair<std::string, std::string>>;

struct RemoteWriteOptions {
  std::string url;  // e.g. http://victoria:8428/api/v1/write
  std::vector<std::pair<std::string, std::string>> headers;  // e.g. Authorization
  std::string cursor_path;                                   // where the position is kept
  size_t max_samples_per_request = 20'000;
  Duration poll = Duration(200);  // how often an idle writer looks at the log
  Duration min_backoff = Duration(100);
  Duration max_backoff = seconds(30);
};

struct RemoteWriteStats {
  uint64_t samples_sent = 0;  // accepted by the remote store
  uint64_t requests_sent = 0;
  uint64_t requests_failed = 0;   // attempts that will be retried
  uint64_t samples_dropped = 0;   // refused for good (4xx other than 429)
  uint64_t segments_skipped = 0;  // log the hold's cap let go before it was sent
  LogPosition position;           // sent up to here
  std::string last_error;
};

// The protobuf WriteRequest (prometheus prompb/remote.proto) for these series, each with its
// labels (sorted by name, `__name__` among them). Exposed for tests.
std::string encode_write_request(const std::vector<std::pair<Labels, std::vector<Sample>>>& series);

class RemoteWriter {
 public:
  // The labels a series is sent with; an empty result skips the series (counted dropped).
  using LabelsFn = std::function<Labels(const std::string& series_key)>;
  // Called with a line for the log (a retry, a drop, a gap), from the writer's thread.
  using LogFn = std::function<void(const std::string& level, const std::string& message)>;

  RemoteWriter(TimeSeriesStore& store, FileSystem& fs, Clock& clock, RemoteWriteOptions options,
               LabelsFn labels_of, LogFn log = {});
  ~RemoteWriter();  // stops
  RemoteWriter(const RemoteWriter&) = delete;
  RemoteWriter& operator=(const RemoteWriter&) = delete;

  // Reads the cursor (a new writer starts at the log's oldest segment), holds the log from
  // it, and starts the writer's thread. kInvalidArgument for a bad URL, kCorruption for a
  // damaged cursor file.
  Status start();
  void stop();
  // The position a writer saved at `cursor_path`, if any: for StoreOptions::log_hold, so the
  // store holds the log for the writer from its very start. kCorruption for a damaged file.
  static Result<std::optional<LogPosition>> saved_position(FileSystem& fs,
                                                           const std::string& cursor_path);
  RemoteWriteStats stats() const;

 private:
  void run();
  // Sends one request until it is accepted or refused for good; false when stopping.
  bool deliver(const std::string& body, uint64_t samples);
  void wait(Duration d);

  TimeSeriesStore& store_;
  FileSystem& fs_;
  Clock& clock_;
  const RemoteWriteOptions options_;
  LabelsFn labels_of_;
  LogFn log_;
  std::string base_url_;
  std::string path_;

  // What wakes the writer: a clock timer (which may still run after the writer is gone, so
  // it holds this, not the writer), stop(), or nothing else.
  struct Wake {
    Mutex mu;
    CondVar cv;
    bool woken GUARDED_BY(mu) = false;
    bool stop GUARDED_BY(mu) = false;
  };
  std::shared_ptr<Wake> wake_ = std::make_shared<Wake>();
  bool stopping() const;

  mutable Mutex mu_;
  RemoteWriteStats stats_ GUARDED_BY(mu_);
  std::thread thread_;
};

}  // namespace drover::telemetry
