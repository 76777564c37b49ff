// Telemetry end to end, against a running drover serve (bench/telemetry.sh):
//   telemetry_bench wire URL DEVICES SECONDS
//       DEVICES devices (one thread each) enroll with token "bench" and send a truck's 20
//       metrics at 1 Hz as raw batches of a minute each through the agent's HTTP link, as
//       fast as the server answers, for SECONDS. Prints JSON: samples per second accepted,
//       and bytes a sample on the wire — raw (CBOR + zstd), raw CBOR alone, the profile-style
//       one-minute min/max/mean (MetricAggregator, also sent), and the raw samples as JSON.
//   telemetry_bench offline URL DIR DAYS
//       A device offline DAYS days at 20 metrics every 10 s: every round appended (and
//       synced) to a real TelemetryQueue in DIR, then the link comes back and the queue
//       drains through the agent's HTTP link. Prints JSON: the queue's bytes on disk, the
//       time to fill and to drain, and what the server says it accepted (every sample once:
//       accepted == appended, no duplicates, no refusals, no retries).
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "agent/metric_aggregator.h"
#include "agent/server_link.h"
#include "agent/telemetry_queue.h"
#include "base/random.h"
#include "protocol/telemetry_batch.h"
#include "security/crypto.h"

namespace {

using namespace drover;
using protocol::TelemetryBatch;
using protocol::TelemetrySeries;

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

std::unique_ptr<agent::ServerLink> link_for(const std::string& url, const std::string& id,
                                            const std::string& type, Clock& clock) {
  agent::HttpLinkOptions o;
  o.server = url;
  o.device_id = id;
  o.device_type = type;
  o.hardware_revision = "rev-a";
  o.enrollment_token = "bench";
  auto key = security::SigningKey::generate();
  if (!key.ok()) return nullptr;
  auto link = agent::make_http_link(o, std::move(*key), clock);
  if (!link.ok()) return nullptr;
  if (!(*link)->connect({{"firmware", "1.0.0"}}).ok()) return nullptr;
  return std::move(*link);
}

// A truck's 20 metrics over one minute at 1 Hz, from `t0` (values with a decimal or two,
// changing slowly, as sensors give them).
std::vector<TelemetrySeries> truck_minute(int64_t t0, Rng& rng, std::vector<double>& state) {
  std::vector<TelemetrySeries> out;
  for (size_t m = 0; m < 20; ++m) {
    TelemetrySeries s{"truck_metric_" + std::to_string(m), {}, {}};
    for (int i = 0; i < 60; ++i) {
      state[m] = std::clamp(state[m] + rng.between(-0.5, 0.52), 0.0, 200.0);
      s.samples.push_back({t0 + i * 1000, std::round(state[m] * 10) / 10});
    }
    out.push_back(std::move(s));
  }
  return out;
}

std::string as_json(const std::vector<TelemetrySeries>& series) {
  nlohmann::json out = nlohmann::json::array();
  for (const TelemetrySeries& s : series) {
    nlohmann::json points = nlohmann::json::array();
    for (const auto& x : s.samples) points.push_back({x.t_ms, x.value});
    out.push_back({{"metric", s.metric}, {"samples", points}});
  }
  return nlohmann::json{{"series", out}}.dump();
}

int wire(const std::string& url, int devices, double duration) {
  SystemClock clock;
  const int64_t now_ms = clock.now().time_since_epoch().count();
  std::atomic<uint64_t> accepted{0}, samples{0}, raw_bytes{0}, cbor_bytes{0}, json_bytes{0},
      aggregated_bytes{0}, aggregated_measured{0}, failures{0};
  std::vector<std::thread> threads;
  const auto start = std::chrono::steady_clock::now();
  for (int d = 0; d < devices; ++d) {
    threads.emplace_back([&, d] {
      auto link = link_for(url, "wire-" + std::to_string(d), "truck", clock);
      if (!link) {
        failures += 1;
        return;
      }
      Rng rng(static_cast<uint64_t>(d) + 1);
      std::vector<double> state(20, 50.0);
      // Fourteen days back (inside the store's raw retention), a minute a batch; a device
      // that would reach the last quarter hour stops, so no sample is ever "from the future".
      int64_t t = now_ms - 14 * 86'400'000;
      uint64_t sequence = 0;
      const uint64_t stream = static_cast<uint64_t>(d) * 1000 + 7;
      agent::MetricAggregator aggregate;
      using F = protocol::AggregateFunction;
      aggregate.set_rules(
          protocol::make_telemetry_rules({{"*", minutes(1), {F::kMin, F::kMax, F::kMean}}}), t);
      while (seconds_since(start) < duration && t + 60'000 < now_ms - 15 * 60'000) {
        TelemetryBatch batch;
        batch.stream = stream;
        batch.sequence = ++sequence;
        batch.series = truck_minute(t, rng, state);
        const std::string body = protocol::encode_telemetry_batch(batch);
        auto ack = link->send_telemetry(body);
        const uint64_t n = batch.sample_count();
        if (!ack.ok() || ack->accepted != n) {
          failures += 1;  // every sample must be taken: it is a rate of samples stored
          return;
        }
        accepted += ack->accepted;
        samples += n;
        raw_bytes += body.size();
        cbor_bytes += protocol::encode_telemetry_cbor(batch).size();
        json_bytes += as_json(batch.series).size();
        // The same minute as the truck profile sends it: min/max/mean per metric.
        aggregate.add(batch.series);
        TelemetryBatch agg;
        agg.stream = stream + 500;
        agg.sequence = sequence;
        agg.series = aggregate.take(t + 60'000);
        if (!agg.series.empty()) {
          const std::string agg_body = protocol::encode_telemetry_batch(agg);
          auto agg_ack = link->send_telemetry(agg_body);
          if (!agg_ack.ok() || agg_ack->accepted != agg.sample_count()) failures += 1;
          aggregated_bytes += agg_body.size();
          aggregated_measured += n;
        }
        t += 60'000;
      }
    });
  }
  for (auto& th : threads) th.join();
  const double wall = seconds_since(start);
  clock.stop();
  const auto per = [](uint64_t bytes, uint64_t n) {
    return n == 0 ? 0.0 : static_cast<double>(bytes) / static_cast<double>(n);
  };
  nlohmann::json out{
      {"devices", devices},
      {"seconds", wall},
      {"samples", samples.load()},
      {"accepted", accepted.load()},
      {"failures", failures.load()},
      {"samples_per_second", static_cast<double>(accepted.load()) / wall},
      {"raw_bytes_per_sample", per(raw_bytes, samples)},
      {"cbor_bytes_per_sample", per(cbor_bytes, samples)},
      {"json_bytes_per_sample", per(json_bytes, samples)},
      {"aggregated_bytes_per_measured_sample", per(aggregated_bytes, aggregated_measured)}};
  std::printf("%s\n", out.dump().c_str());
  return failures == 0 ? 0 : 1;
}

int offline(const std::string& url, const std::string& dir, int days) {
  SystemClock clock;
  const int64_t now_ms = clock.now().time_since_epoch().count();
  std::filesystem::remove_all(dir);
  agent::QueueOptions qo;
  qo.dir = dir;
  // The agent's default cap (32 MiB): what a real device would hold.
  auto queue = agent::TelemetryQueue::open(qo);
  if (!queue.ok()) return std::fprintf(stderr, "%s\n", queue.error().to_string().c_str()), 1;
  Rng rng(42);
  std::vector<double> state(20, 20.0);
  const int64_t rounds = static_cast<int64_t>(days) * 8640;
  const int64_t t0 = now_ms - static_cast<int64_t>(days) * 86'400'000 - 60'000;
  uint64_t appended = 0;
  const auto fill_start = std::chrono::steady_clock::now();
  for (int64_t r = 0; r < rounds; ++r) {
    std::vector<TelemetrySeries> round;
    for (size_t m = 0; m < 20; ++m) {
      state[m] = std::clamp(state[m] + rng.between(-0.2, 0.2), -40.0, 120.0);
      round.push_back({"sensor_" + std::to_string(m),
                       {},
                       {{t0 + r * 10'000, std::round(state[m] * 100) / 100}}});
    }
    Status st = (*queue)->append(agent::Priority::kRoutine, round);
    if (!st.ok()) return std::fprintf(stderr, "%s\n", st.error().to_string().c_str()), 1;
    appended += 20;
  }
  const double fill = seconds_since(fill_start);
  const agent::QueueStats full = (*queue)->stats();

  auto link = link_for(url, "offline-1", "sensor", clock);
  if (!link) return std::fprintf(stderr, "cannot reach %s\n", url.c_str()), 1;
  uint64_t accepted = 0, duplicates = 0, refused = 0, retries = 0, batches = 0, wire_bytes = 0;
  const auto drain_start = std::chrono::steady_clock::now();
  for (;;) {
    auto b = (*queue)->next_batch();
    if (!b.ok()) return std::fprintf(stderr, "%s\n", b.error().to_string().c_str()), 1;
    if (!*b) break;
    auto ack = link->send_telemetry((*b)->body);
    if (!ack.ok()) return std::fprintf(stderr, "%s\n", ack.error().to_string().c_str()), 1;
    accepted += ack->accepted;
    duplicates += ack->duplicates;
    refused += ack->refused;
    retries += ack->retry ? 1 : 0;
    ++batches;
    wire_bytes += (*b)->body.size();
    if (!(*queue)->acknowledge((*b)->sequence).ok()) return 1;
  }
  const double drain = seconds_since(drain_start);
  clock.stop();
  const agent::QueueStats after = (*queue)->stats();
  nlohmann::json out{
      {"days", days},
      {"cap_bytes", qo.max_bytes},
      {"appended", appended},
      {"fill_seconds", fill},
      {"queue_bytes", full.bytes},
      {"queue_bytes_per_sample", static_cast<double>(full.bytes) / static_cast<double>(appended)},
      {"dropped", after.dropped_total},
      {"drain_seconds", drain},
      {"batches", batches},
      {"wire_bytes", wire_bytes},
      {"accepted", accepted},
      {"duplicates", duplicates},
      {"refused", refused},
      {"retries", retries},
      {"left", after.samples}};
  std::printf("%s\n", out.dump().c_str());
  const bool exact = accepted == appended && duplicates == 0 && refused == 0 && retries == 0 &&
                     after.samples == 0 && after.dropped_total == 0;
  return exact ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "wire" && argc == 5) return wire(argv[2], std::stoi(argv[3]), std::stod(argv[4]));
  if (mode == "offline" && argc == 5) return offline(argv[2], argv[3], std::stoi(argv[4]));
  std::fprintf(stderr,
               "usage: telemetry_bench wire URL DEVICES SECONDS\n"
               "       telemetry_bench offline URL DIR DAYS\n");
  return 2;
}
