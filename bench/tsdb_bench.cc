// The time-series store's benchmarks (bench/tsdb.sh runs them with their baselines):
//   tsdb_bench bytes NAB_DIR      every NAB series into a fresh store: bytes a sample
//   tsdb_bench ingest SERIES SAMPLES_PER_SERIES
//                                 a fleet's batches through append() with the log synced,
//                                 heads sealed and checkpoints written: samples per CPU second
//   tsdb_bench decode             (after ingest, same process) chunks decoded per second
// Each prints one JSON object on stdout.
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "base/clock.h"
#include "base/file_system.h"
#include "telemetry/chunk_codec.h"
#include "telemetry/record_log.h"
#include "telemetry/time_series_store.h"

namespace {

using drover::telemetry::Batch;
using drover::telemetry::Resolution;
using drover::telemetry::Sample;
using drover::telemetry::StoreOptions;
using drover::telemetry::TimeSeriesStore;
namespace fs = std::filesystem;

double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

double wall_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::string scratch() {
  char tmpl[] = "/tmp/drover-tsdb-bench-XXXXXX";
  return ::mkdtemp(tmpl);
}

std::vector<Sample> load_csv(const fs::path& path) {
  std::vector<Sample> out;
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  while (std::getline(in, line)) {
    std::tm tm{};
    int consumed = 0;
    if (std::sscanf(line.c_str(), "%d-%d-%d %d:%d:%d,%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                    &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &consumed) != 6) {
      continue;
    }
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    Sample s{static_cast<int64_t>(timegm(&tm)) * 1000,
             std::strtod(line.c_str() + consumed, nullptr)};
    if (out.empty() || s.t_ms > out.back().t_ms) out.push_back(s);
  }
  return out;
}

uint64_t bytes_of(const std::string& dir, const std::string& prefix, const std::string& ext) {
  uint64_t total = 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    std::string name = e.path().filename().string();
    if (name.rfind(prefix, 0) == 0 && e.path().extension() == ext) total += e.file_size();
  }
  return total;
}

StoreOptions forever() {
  StoreOptions o;
  o.raw_retention = o.five_minute_retention = o.hour_retention = drover::days(100'000);
  return o;
}

int bytes(const char* nab_dir) {
  std::string dir = scratch();
  drover::ManualClock clock(drover::Timestamp(drover::Duration(1'700'000'000'000)));
  uint64_t samples = 0;
  uint64_t series = 0;
  {
    auto store = TimeSeriesStore::open(drover::real_file_system(), dir, clock, forever());
    if (!store.ok()) return 1;
    for (const auto& e : fs::recursive_directory_iterator(nab_dir)) {
      if (e.path().extension() != ".csv") continue;
      Batch b;
      b.series.push_back({e.path().stem().string(), load_csv(e.path())});
      samples += b.series[0].samples.size();
      ++series;
      auto r = (*store)->append(b);
      if (!r.ok() || !(*store)->wait_durable(r->lsn).ok()) return 1;
    }
    if (!(*store)->seal_all_now().ok()) return 1;
  }
  uint64_t data = bytes_of(dir + "/chunks", "raw-", ".chunks");
  uint64_t index = bytes_of(dir + "/chunks", "raw-", ".index");
  std::printf(
      "{\"series\": %llu, \"samples\": %llu, \"raw_chunk_bytes\": %llu, "
      "\"raw_index_bytes\": %llu, \"bytes_per_sample\": %.4f, "
      "\"bytes_per_sample_with_index\": %.4f}\n",
      static_cast<unsigned long long>(series), static_cast<unsigned long long>(samples),
      static_cast<unsigned long long>(data), static_cast<unsigned long long>(index),
      static_cast<double>(data) / static_cast<double>(samples),
      static_cast<double>(data + index) / static_cast<double>(samples));
  fs::remove_all(dir);
  return 0;
}

// A fleet: `series` series in devices of 20 metrics, each device sending batches of 30
// samples a series (five minutes at 10 s). Values: a random walk with two decimals, the
// shape of a temperature or a percentage.
int ingest(size_t series, size_t per_series) {
  std::string dir = scratch();
  drover::ManualClock clock(drover::Timestamp(drover::Duration(1'700'000'000'000)));
  auto store = TimeSeriesStore::open(drover::real_file_system(), dir, clock, forever());
  if (!store.ok()) return 1;
  constexpr size_t kMetrics = 20;
  constexpr size_t kPerBatch = 30;
  const size_t devices = (series + kMetrics - 1) / kMetrics;
  std::mt19937_64 rng(1);
  std::vector<int64_t> level(devices * kMetrics, 5000);
  std::vector<Batch> batches;  // built before the clock starts
  const int64_t t0 = 1'700'000'000'000;
  for (size_t round = 0; round * kPerBatch < per_series; ++round) {
    for (size_t d = 0; d < devices; ++d) {
      Batch b;
      b.source = "dev-" + std::to_string(d);
      b.stream = 1;
      b.sequence = round + 1;
      for (size_t m = 0; m < kMetrics; ++m) {
        drover::telemetry::SeriesSamples ss;
        ss.key = b.source + "/metric_" + std::to_string(m);
        for (size_t i = 0; i < kPerBatch; ++i) {
          int64_t& v = level[d * kMetrics + m];
          v += static_cast<int64_t>(rng() % 11) - 5;
          ss.samples.push_back({t0 + static_cast<int64_t>((round * kPerBatch + i) * 10'000),
                                static_cast<double>(v) / 100.0});
        }
        b.series.push_back(std::move(ss));
      }
      batches.push_back(std::move(b));
    }
  }
  uint64_t total = 0;
  for (const auto& b : batches) total += b.series.size() * kPerBatch;
  double cpu0 = cpu_seconds();
  double wall0 = wall_seconds();
  uint64_t last_lsn = 0;
  for (const auto& b : batches) {
    auto r = (*store)->append(b);
    if (!r.ok()) return 1;
    last_lsn = r->lsn;
  }
  if (!(*store)->wait_durable(last_lsn).ok()) return 1;
  if (!(*store)->checkpoint_now().ok()) return 1;  // what was sealed meanwhile is written too
  double cpu = cpu_seconds() - cpu0;
  double wall = wall_seconds() - wall0;
  auto stats = (*store)->stats();

  // Decoding: every raw chunk of every series, whole.
  auto keys = (*store)->keys("");
  double dcpu0 = cpu_seconds();
  uint64_t decoded = 0;
  for (const auto& key : keys) {
    auto points = (*store)->read(key, Resolution::kRaw, INT64_MIN, INT64_MAX);
    if (!points.ok()) return 1;
    decoded += points->size();
  }
  double dcpu = cpu_seconds() - dcpu0;
  char line[1024];
  std::snprintf(line, sizeof line,
                "{\"series\": %zu, \"samples\": %llu, \"batches\": %zu, \"wall_s\": %.3f, "
                "\"cpu_s\": %.3f, \"samples_per_cpu_second\": %.0f, \"samples_per_wall_second\": "
                "%.0f, \"sealed_samples\": %llu, \"checkpoints\": %llu, \"read_samples\": %llu, "
                "\"read_cpu_s\": %.3f, \"read_samples_per_cpu_second\": %.0f}\n",
                keys.size(), static_cast<unsigned long long>(total), batches.size(), wall, cpu,
                static_cast<double>(total) / cpu, static_cast<double>(total) / wall,
                static_cast<unsigned long long>(stats.sealed_samples),
                static_cast<unsigned long long>(stats.checkpoints),
                static_cast<unsigned long long>(decoded), dcpu,
                static_cast<double>(decoded) / dcpu);
  std::string result = line;
  store->reset();
  fs::remove_all(dir);

  // The baseline: the write-ahead log alone. The same records (source, sequence, per series
  // its id, key and samples) framed with their checksums, appended to one file, synced.
  dir = scratch();
  double lcpu0 = cpu_seconds();
  {
    auto file = drover::real_file_system().open_append(dir + "/log");
    if (!file.ok()) return 1;
    std::string buffer;
    for (const auto& b : batches) {
      std::string payload(1, '\1');
      drover::telemetry::FieldWriter w(payload);
      w.bytes(b.source);
      w.varint(b.stream);
      w.varint(b.sequence);
      w.varint(b.series.size());
      for (size_t i = 0; i < b.series.size(); ++i) {
        w.varint(i);
        w.bytes(b.series[i].key);
        w.varint(b.series[i].samples.size());
        int64_t previous = 0;
        for (const Sample& x : b.series[i].samples) {
          w.signed_varint(x.t_ms - previous);
          previous = x.t_ms;
          w.f64(x.value);
        }
      }
      drover::telemetry::append_record(buffer, payload);
      if (buffer.size() >= (1u << 20)) {
        if (!(*file)->append(buffer).ok()) return 1;
        buffer.clear();
      }
    }
    if (!(*file)->append(buffer).ok() || !(*file)->sync().ok()) return 1;
  }
  double lcpu = cpu_seconds() - lcpu0;
  fs::remove_all(dir);
  std::printf("%s, \"log_only_cpu_s\": %.3f, \"log_only_samples_per_cpu_second\": %.0f}\n",
              result.substr(0, result.size() - 2).c_str(), lcpu, static_cast<double>(total) / lcpu);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "bytes" && argc == 3) return bytes(argv[2]);
  if (mode == "ingest" && argc == 4) {
    return ingest(std::strtoull(argv[2], nullptr, 10), std::strtoull(argv[3], nullptr, 10));
  }
  std::fprintf(stderr, "usage: tsdb_bench bytes NAB_DIR | ingest SERIES SAMPLES_PER_SERIES\n");
  return 2;
}
