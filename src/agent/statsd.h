// Application metrics from programs on the device, in the StatsD line format (docs/agent.md,
// "Application metrics"): `<name>:<value>|<type>[|@<rate>][|#<tag>:<value>,...]`, one metric
// per line, many lines per datagram. Types: c (counter), g (gauge; a leading + or - changes
// it), ms / h / d (timings and distributions). Tags (the DogStatsD extension) become labels.
//
// StatsdAggregator keeps what arrived since the last flush and turns it into samples at each
// flush: a counter as its running total (`<name>_total`: a lost batch loses no counts), a
// gauge as its value, a timing as count, min, max and mean over the interval (label `agg`).
// Names map onto the metric-name rule: characters other than [A-Za-z0-9_:] become `_`.
//
// StatsdSocket is the Unix datagram socket programs send to. Bad lines are counted and
// skipped, never fatal: the input comes from any local program.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/result.h"
#include "protocol/telemetry_batch.h"

namespace drover::agent {

enum class StatsdType : uint8_t { kCounter, kGauge, kTiming };

struct StatsdLine {
  std::string name;  // mapped onto the metric-name rule
  StatsdType type = StatsdType::kCounter;
  double value = 0;
  bool relative = false;                                    // a gauge's +N / -N
  double sample_rate = 1.0;                                 // (0, 1]
  std::vector<std::pair<std::string, std::string>> labels;  // sorted by name, unique
};

// One line. kInvalidArgument naming what is wrong.
Result<StatsdLine> parse_statsd_line(std::string_view line);

struct StatsdLimits {
  size_t max_series = 200;  // distinct name + labels kept; lines for more are refused
  // Label sets a metric may have (a timing's count four: its agg labels), the server's
  // limit per metric.
  size_t max_label_sets = 100;
};

class StatsdAggregator {
 public:
  explicit StatsdAggregator(StatsdLimits limits = {}) : limits_(limits) {}

  // Every line of one datagram; bad ones are counted in rejected().
  void add_datagram(std::string_view datagram);
  void add(const StatsdLine& line);
  // The interval's samples, stamped `t_ms`; timings and gauges set since then only,
  // counters always (their totals). Starts the next interval.
  std::vector<protocol::TelemetrySeries> flush(int64_t t_ms);
  uint64_t rejected() const { return rejected_; }
  void reject() { ++rejected_; }  // a datagram refused whole (cut short)

 private:
  struct Series {
    StatsdType type = StatsdType::kCounter;
    double total = 0;  // counter
    double gauge = 0;
    bool gauge_set = false;
    bool fresh = false;  // anything since the last flush
    uint64_t count = 0;  // timing
    double sum = 0, min = 0, max = 0;
  };
  StatsdLimits limits_;
  // name, labels -> its state
  std::map<std::pair<std::string, std::vector<std::pair<std::string, std::string>>>, Series>
      series_;
  std::map<std::string, size_t> label_sets_;  // per name
  uint64_t rejected_ = 0;
};

// A bound Unix datagram socket (non-blocking, 0660). The path is replaced if a stale socket
// is there.
class StatsdSocket {
 public:
  static Result<StatsdSocket> bind(const std::string& path);
  StatsdSocket(StatsdSocket&& other) noexcept;
  StatsdSocket& operator=(StatsdSocket&&) = delete;
  StatsdSocket(const StatsdSocket&) = delete;
  ~StatsdSocket();
  int fd() const { return fd_; }
  // Reads the waiting datagrams (at most 1,024 a call: a flooding program cannot stall the
  // agent) into `into`; returns how many. One longer than 8 KiB is refused whole.
  size_t drain(StatsdAggregator& into);

 private:
  StatsdSocket(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  int fd_ = -1;
  std::string path_;
};

}  // namespace drover::agent
