// The health gates' pass on drover serve's own services (docs/gates.md, "Health gates"): a
// fleet of N devices in one stratum, each with five days of readings every 10 minutes of
// memory_available_bytes and temperature_celsius in a real time-series store; a rollout whose
// canary (half the fleet) committed a day ago, gated on memory slope and the temperature's
// anomaly rate over 24 h windows (each anomaly window learnt over the three days before it).
// One engine tick then forms up to 1,000 pairs, reading the store through TelemetryHealth.
// Measured in the same run: check-ins alone (the baseline), then check-ins from another thread
// while the pass runs — the source is read without the engine's lock, so they should not wait
// for it. Prints one JSON object (bench/health_gate.sh).
//   health_gate_bench --devices N --dir DIR
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "base/file_system.h"
#include "base/units.h"
#include "fleet/device_service.h"
#include "health/telemetry_health.h"
#include "rollout/engine.h"
#include "store/store.h"
#include "telemetry/telemetry_service.h"

namespace drover {
namespace {

using Steady = std::chrono::steady_clock;

double seconds_since(Steady::time_point start) {
  return std::chrono::duration<double>(Steady::now() - start).count();
}

// The q-quantile of `v` (sorted here).
double quantile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size())))];
}

std::string device_id(int i) { return "ctl-" + std::to_string(100'000 + i); }

const std::vector<InstalledComponent> kOld = {{"firmware", "1.0.0"}};
const std::vector<InstalledComponent> kNew = {{"firmware", "2.0.0"}};

Artifact firmware(const std::string& version) {
  Artifact a;
  a.name = "firmware";
  a.version = version;
  a.device_types = {"ctl"};
  a.size_bytes = 1000;
  a.sha256 = std::string(64, 'a');
  return a;
}

// Check-ins of `ids`, devices not offered the update (the canary is full: they get no offer),
// round and round until `stop`; each one's latency in microseconds.
std::vector<double> check_ins(DeviceService& service, const std::vector<std::string>& ids,
                              const std::atomic<bool>& stop, size_t at_most) {
  std::vector<double> us;
  for (size_t i = 0; !stop.load() && us.size() < at_most; i = (i + 1) % ids.size()) {
    const auto start = Steady::now();
    auto r = service.check_in({ids[i], kOld, UpdateState::kIdle});
    if (!r.ok()) {
      std::fprintf(stderr, "health_gate_bench: a check-in failed: %s\n",
                   r.error().to_string().c_str());
      std::exit(1);
    }
    us.push_back(seconds_since(start) * 1e6);
  }
  return us;
}

int run(int devices, const std::string& dir) {
  const Timestamp t0 = parse_utc_timestamp("2026-06-01T00:00:00Z").value();
  ManualClock clock(t0);
  std::unique_ptr<Store> store = make_memory_store();
  WriteBatch b;
  b.sites.push_back(Site{"open", "UTC", {}});
  b.artifacts = {firmware("1.0.0"), firmware("2.0.0")};
  if (!store->apply(b).ok()) return 1;
  auto tsdb = telemetry::TimeSeriesStore::open(real_file_system(), dir, clock);
  if (!tsdb.ok()) {
    std::fprintf(stderr, "%s\n", tsdb.error().to_string().c_str());
    return 1;
  }
  health::TelemetryHealth source(**tsdb);
  EngineOptions options;
  options.health = &source;
  options.tick_interval = hours(24 * 365);  // the pass runs when this program ticks
  RolloutEngine engine(*store, clock, options);
  if (!engine.load().ok()) return 1;
  DeviceService service(*store, engine);
  std::vector<Device> ds;
  for (int i = 0; i < devices; ++i) {
    Device d;
    d.id = device_id(i);
    d.device_type = "ctl";
    d.hardware_revision = "rev-a";
    d.site = "open";
    d.installed = {{"firmware", "1.0.0"}};
    ds.push_back(std::move(d));
  }
  if (!service.provision(std::move(ds)).ok()) return 1;
  telemetry::TelemetryService telemetry(**tsdb, service, *store, clock);

  // Four days in: the canary (half the fleet) is offered the update and commits at once.
  clock.advance_to(t0 + hours(24 * 4));
  RolloutPlan plan;
  plan.name = "patch";
  plan.artifact_name = "firmware";
  plan.artifact_version = "2.0.0";
  plan.stages = {{"canary", 50, 0, hours(1)}, {"all", 100, 0, Duration(0)}};
  plan.gate.health = {
      {"memory_available_bytes", HealthMeasure::kSlope, HealthDirection::kLowerIsWorse},
      {"temperature_celsius", HealthMeasure::kAnomalies, HealthDirection::kHigherIsWorse}};
  plan.gate.health_window = hours(24);
  auto created = engine.create(plan);
  if (!created.ok() || !engine.start(created->id).ok()) {
    std::fprintf(stderr, "health_gate_bench: %s\n",
                 created.ok() ? "start failed" : created.error().to_string().c_str());
    return 1;
  }
  int updated = 0;
  std::vector<bool> offered(static_cast<size_t>(devices), false);
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < devices; ++i) {
      const std::string id = device_id(i);
      auto r = service.check_in({id, kOld, UpdateState::kIdle});
      if (!r.ok() || !r->offer) continue;
      offered[static_cast<size_t>(i)] = true;
      for (auto e : {protocol::Report::kDownloading, protocol::Report::kInstalling,
                     protocol::Report::kRebooting, protocol::Report::kSucceeded}) {
        StatusReport report{id, r->offer->rollout_id, r->offer->version, e, {}};
        if (!service.report_status(report).ok()) return 1;
      }
      if (!service.check_in({id, kNew, UpdateState::kIdle}).ok()) return 1;
      ++updated;
    }
  }
  // A day and an hour later the canary's windows have passed; every device's readings of the
  // five days, one batch each.
  clock.advance_to(t0 + hours(24 * 5 + 1));
  std::mt19937_64 rng(1);
  std::normal_distribution<double> noise(0, 1);
  const int64_t start_ms = t0.time_since_epoch().count();
  const int64_t end_ms = clock.now().time_since_epoch().count();
  uint64_t samples = 0, lsn = 0;
  const auto ingest_start = Steady::now();
  for (int i = 0; i < devices; ++i) {
    protocol::TelemetryBatch batch;
    batch.stream = 1;
    batch.sequence = 1;
    protocol::TelemetrySeries mem{"memory_available_bytes", {}, {}};
    protocol::TelemetrySeries temp{"temperature_celsius", {}, {}};
    const double offset = noise(rng);
    for (int64_t t = start_ms; t <= end_ms; t += 600'000) {
      const double hour = static_cast<double>(t - start_ms) / 3.6e6;
      mem.samples.push_back({t, 300e6 + 1e6 * noise(rng)});
      temp.samples.push_back({t, 21 + offset + 0.8 * std::sin(hour * 2 * M_PI / 24) +
                                     0.1 * noise(rng) + (noise(rng) > 2.5 ? 5 : 0)});
    }
    batch.series = {std::move(mem), std::move(temp)};
    samples += batch.sample_count();
    auto r = telemetry.ingest(device_id(i), batch);
    if (!r.ok()) {
      std::fprintf(stderr, "%s\n", r.error().to_string().c_str());
      return 1;
    }
    lsn = std::max(lsn, r->stored.lsn);
  }
  if (!(*tsdb)->wait_durable(lsn).ok()) return 1;
  const double ingest_s = seconds_since(ingest_start);

  std::vector<std::string> pending;
  for (int i = 0; i < devices; ++i) {
    if (!offered[static_cast<size_t>(i)]) pending.push_back(device_id(i));
  }
  // The baseline: check-ins with no pass running.
  const std::atomic<bool> never{false};
  const std::vector<double> alone = check_ins(service, pending, never, 20'000);

  // The pass, with check-ins beside it.
  std::atomic<bool> done{false};
  std::vector<double> beside;
  std::thread checker([&] { beside = check_ins(service, pending, done, SIZE_MAX); });
  const auto pass_start = Steady::now();
  const Status ticked = engine.tick();
  const double pass_s = seconds_since(pass_start);
  done = true;
  checker.join();
  if (!ticked.ok()) {
    std::fprintf(stderr, "health_gate_bench: %s\n", ticked.error().to_string().c_str());
    return 1;
  }
  auto progress = engine.progress(created->id);
  if (!progress.ok() || progress->health.size() != 2) return 1;
  const int64_t pairs = progress->health[0].tally.informative + progress->health[0].tally.ties;

  std::printf(
      "{\"devices\": %d, \"updated\": %d, \"samples\": %llu, \"ingest_s\": %.3f,\n"
      " \"pairs\": %lld, \"pass_s\": %.4f,\n"
      " \"checkin_alone_median_us\": %.2f, \"checkin_alone_p99_us\": %.2f, "
      "\"checkin_alone_max_us\": %.2f,\n"
      " \"checkins_beside\": %zu, \"checkin_beside_median_us\": %.2f, "
      "\"checkin_beside_p99_us\": %.2f, \"checkin_beside_max_us\": %.2f}\n",
      devices, updated, static_cast<unsigned long long>(samples), ingest_s,
      static_cast<long long>(pairs), pass_s, quantile(alone, 0.5), quantile(alone, 0.99),
      quantile(alone, 1), beside.size(), quantile(beside, 0.5), quantile(beside, 0.99),
      quantile(beside, 1));
  return 0;
}

}  // namespace
}  // namespace drover

int main(int argc, char** argv) {
  int devices = 2000;
  std::string dir;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--devices") == 0) devices = std::atoi(argv[i + 1]);
    if (std::strcmp(argv[i], "--dir") == 0) dir = argv[i + 1];
  }
  if (dir.empty() || devices < 4) {
    std::fprintf(stderr, "usage: health_gate_bench --devices N --dir DIR\n");
    return 2;
  }
  return drover::run(devices, dir);
}
