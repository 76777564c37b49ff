// The agent's telemetry (docs/agent.md, "Telemetry"): every `interval` the system collectors
// run; programs' StatsD lines are summed up every `statsd_flush`; both go through the
// server's per-metric rules (MetricAggregator) into the on-disk queue (TelemetryQueue), and
// the queue is sent one batch at a time while the link is up, each batch removed only once
// the server acknowledged it. Failures to reach the server back off exponentially with
// jitter; a batch the server refuses for good is dropped and counted.
//
// The rules are kept in <queue dir>/rules.json, so a device that reboots offline still
// aggregates as told; they are fetched again when an answer names other rules.
//
// Thread-compatible: the agent's one thread drives it (run_once), and calls
// statsd_readable() when the socket (statsd_fd) has datagrams.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "agent/metric_aggregator.h"
#include "agent/server_link.h"
#include "agent/statsd.h"
#include "agent/system_metrics.h"
#include "agent/telemetry_queue.h"
#include "base/clock.h"
#include "base/file_system.h"
#include "base/random.h"

namespace drover::agent {

struct TelemetryOptions {
  bool system = true;  // run the system collectors
  CollectorOptions collectors;
  Duration interval = seconds(60);  // between rounds of the system collectors
  std::string statsd_socket;        // "": no StatsD socket
  Duration statsd_flush = seconds(10);
  QueueOptions queue;                 // queue.dir: where the queue and rules.json live
  std::set<std::string> urgent;       // metrics queued as urgent (with `reboot`)
  Duration send_every = seconds(60);  // how long new samples may wait before a send
  Duration backoff_initial = seconds(5);
  Duration backoff_max = minutes(30);
  std::function<Timestamp(Timestamp)> link_up_at;  // as AgentOptions; empty: always up
};

struct TelemetryStatus {
  QueueStats queue;
  uint64_t batches_sent = 0;
  uint64_t samples_sent = 0;
  uint64_t statsd_rejected = 0;
  std::string rules;  // the ETag of the rules followed
};

class TelemetryAgent {
 public:
  // `commands` runs what collectors run (the modem collector's mmcli).
  TelemetryAgent(TelemetryOptions options, ServerLink& server, Clock& clock, uint64_t seed,
                 FileSystem& fs = real_file_system(), CommandRunner& commands = system_commands());
  // Opens the queue, binds the socket, loads the saved rules. kIo, kCorruption.
  Status start();
  // Does what is due (collect, flush, send) and returns how long until the next thing is.
  Duration run_once();
  // -1 without a socket.
  int statsd_fd() const { return socket_ ? socket_->fd() : -1; }
  void statsd_readable();
  // Samples from the program the agent runs in (the twin's device models), taken as the
  // collectors' are: through the rules into the queue at the next run_once.
  void record(const std::vector<protocol::TelemetrySeries>& series) { aggregator_.add(series); }
  // Queues what is collected so far and marks a clean stop (a reboot that follows is a
  // shutdown, not a crash).
  void stop();

  TelemetryStatus status() const;
  // Lines for the log since the last call: problems met, batches sent, rules changed.
  std::vector<std::string> take_log();

 private:
  void collect(Timestamp now);
  // Into the queue, urgent metrics apart.
  void queue(std::vector<protocol::TelemetrySeries> ready);
  // Sends batches while the server takes them (and the link is up); false when it did not.
  void send(Timestamp now);
  void fetch_rules();
  // Appends; on failure logs and counts the samples as dropped. False then.
  bool append(Priority priority, const std::vector<protocol::TelemetrySeries>& series);
  Duration backoff();

  TelemetryOptions o_;
  ServerLink& server_;
  Clock& clock_;
  FileSystem& fs_;
  Rng rng_;
  SystemCollector collector_;
  StatsdAggregator statsd_;
  std::optional<StatsdSocket> socket_;
  MetricAggregator aggregator_;
  std::unique_ptr<TelemetryQueue> queue_;
  Timestamp next_collect_{}, next_flush_{}, next_send_{};
  bool unsent_ = false;  // samples queued since the last send
  uint32_t failures_ = 0;
  bool fetch_rules_ = true;
  Timestamp next_rules_fetch_{};
  uint64_t batches_sent_ = 0, samples_sent_ = 0;
  std::vector<std::string> log_;
};

}  // namespace drover::agent
