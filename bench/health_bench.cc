// The cost of device health and the fleet view (health/health_view.h) on drover serve's own
// services: a registry of N devices, each with a week of hourly memory, disk, battery and
// boot readings and a probe's temperature in a real time-series store (1% of them leaking
// memory; 100 devices a site, one of each site's probes drifting and one stuck). Measured in the
// same run: the baseline — the telemetry service's freshness scan of the whole fleet, what
// GET /api/v1/telemetry/freshness does — then the fleet view, one device's health, and the
// fleet view again while every device sends a batch a round (the write-heavy case), with the
// ingest rate alone and beside it over windows of one length (after a first window of
// writes, not measured), each closed once what it accepted is durable. Prints one JSON object
// (bench/health.sh).
//   health_bench --devices N --dir DIR [--runs R]
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "base/file_system.h"
#include "base/units.h"
#include "fleet/device_service.h"
#include "health/health_view.h"
#include "rollout/engine.h"
#include "store/store.h"
#include "telemetry/telemetry_service.h"

namespace drover {
namespace {

using Clock_ = std::chrono::steady_clock;

double seconds_since(Clock_::time_point start) {
  return std::chrono::duration<double>(Clock_::now() - start).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

std::string device_id(int i) { return "ctl-" + std::to_string(100'000 + i); }

// Of each site's 100 probes, the one drifting and the one stuck.
constexpr int kDrifting = 50, kStuck = 25;

int run(int devices, const std::string& dir, int runs) {
  ManualClock clock(parse_utc_timestamp("2026-06-01T12:00:00Z").value());
  std::unique_ptr<Store> store = make_memory_store();
  WriteBatch b;
  b.profiles = {DeviceProfile{"ctl", {hours(1), minutes(10), Duration(0)}, {}, {}, {}}};
  if (!store->apply(b).ok()) return 1;
  RolloutEngine engine(*store, clock);
  if (!engine.load().ok()) return 1;
  DeviceService service(*store, engine);
  std::vector<Device> ds;
  for (int i = 0; i < devices; ++i) {
    Device d;
    d.id = device_id(i);
    d.device_type = "ctl";
    d.hardware_revision = "rev-a";
    d.site = "site-" + std::to_string(i / 100);  // 100 devices a site
    d.installed = {{"firmware", "1.0.0"}};
    ds.push_back(std::move(d));
  }
  if (!service.provision(std::move(ds)).ok()) return 1;
  auto tsdb = telemetry::TimeSeriesStore::open(real_file_system(), dir, clock);
  if (!tsdb.ok()) {
    std::fprintf(stderr, "%s\n", tsdb.error().to_string().c_str());
    return 1;
  }
  telemetry::TelemetryService telemetry(**tsdb, service, *store, clock);

  // A week of hourly readings for every device, one batch each.
  const int64_t now = clock.now().time_since_epoch().count();
  std::mt19937_64 rng(1);
  std::normal_distribution<double> noise(0, 1);
  const auto ingest_start = Clock_::now();
  uint64_t samples = 0;
  for (int i = 0; i < devices; ++i) {
    const bool leaks = i % 100 == 0;
    protocol::TelemetryBatch batch;
    batch.stream = 1;
    batch.sequence = 1;
    protocol::TelemetrySeries mem{"memory_available_bytes", {}, {}};
    protocol::TelemetrySeries disk{"disk_free_bytes", {{"mount", "/data"}}, {}};
    protocol::TelemetrySeries battery{"battery_level_percent", {{"supply", "BAT0"}}, {}};
    protocol::TelemetrySeries boots{"reboots_total", {}, {}};
    // A probe's temperature: its site's daily swing, the probe's own offset and noise; one a
    // site drifting 0.03 degree an hour from day 4, another stuck for the last 8 hours.
    protocol::TelemetrySeries temp{"temp_c", {}, {}};
    const double offset = 0.3 * noise(rng);
    for (int h = 168; h >= 0; --h) {
      const int64_t t = now - int64_t{h} * 3'600'000;
      const double age = 168 - h;
      mem.samples.push_back({t, 300e6 - (leaks ? 1.5e6 * age : 0) + 5e6 * noise(rng)});
      disk.samples.push_back({t, 6e9 + 1e6 * noise(rng)});
      // Topped up once a day, draining about 0.1 points an hour until the next time: every
      // device has a drain to judge against its peers'.
      battery.samples.push_back(
          {t, 95 - 0.1 * std::fmod(age + 12, 24) * (0.9 + 0.02 * (i % 10)) + 0.2 * noise(rng)});
      boots.samples.push_back({t, 3});
      const double hour = 168 - h;
      double v = 15 + 4 * std::sin(hour * 2 * M_PI / 24) + offset + 0.2 * noise(rng);
      if (i % 100 == kDrifting && hour >= 96) v += 0.03 * (hour - 96);
      if (i % 100 == kStuck && h <= 8) v = 14.5;
      temp.samples.push_back({t, v});
    }
    batch.series = {mem,     {"memory_total_bytes", {}, {{now, 512e6}}},
                    disk,    {"disk_total_bytes", {{"mount", "/data"}}, {{now, 8e9}}},
                    battery, boots,
                    temp};
    samples += batch.sample_count();
    auto r = telemetry.ingest(device_id(i), batch);
    if (!r.ok()) {
      std::fprintf(stderr, "%s\n", r.error().to_string().c_str());
      return 1;
    }
    if (i + 1 == devices && !(*tsdb)->wait_durable(r->stored.lsn).ok()) return 1;
  }
  const double ingest_s = seconds_since(ingest_start);

  const health::HealthView view(telemetry, nullptr, clock);
  std::vector<double> baseline, fleet, one;
  size_t predicted = 0, at_risk = 0;
  for (int r = 0; r < runs; ++r) {
    auto t0 = Clock_::now();
    auto f = telemetry.freshness(telemetry::Cohort{});
    baseline.push_back(seconds_since(t0));
    if (!f.ok() || f->size() != static_cast<size_t>(devices)) return 1;
    t0 = Clock_::now();
    auto v = view.fleet({}, hours(int64_t{30} * 24), 20);
    fleet.push_back(seconds_since(t0));
    if (!v.ok()) {
      std::fprintf(stderr, "%s\n", v.error().to_string().c_str());
      return 1;
    }
    predicted = v->predicted_total;
    at_risk = v->at_risk_total;
  }
  std::uniform_int_distribution<int> pick(0, devices - 1);
  for (int k = 0; k < 1000; ++k) {
    const auto t0 = Clock_::now();
    auto d = view.device(device_id(pick(rng)));
    one.push_back(seconds_since(t0));
    if (!d.ok()) return 1;
  }

  // The same with the profile's checks on temp_c: a ceiling, frozen after 6 hours, drift
  // against the site's 99 others; then the profile as it was.
  MetricCheck temp_check;
  temp_check.metric = "temp_c";
  temp_check.above = 40;
  temp_check.frozen_after = hours(6);
  temp_check.drift = true;
  DeviceProfile checked{"ctl", {hours(1), minutes(10), Duration(0)}, {}, {temp_check}, {}};
  WriteBatch with_checks;
  with_checks.profiles = {checked};
  if (!store->apply(with_checks).ok()) return 1;
  std::vector<double> fleet_checks, one_checks;
  size_t drifting = 0, frozen = 0;
  for (int r = 0; r < runs; ++r) {
    const auto t0 = Clock_::now();
    auto all = view.judge_all({});
    fleet_checks.push_back(seconds_since(t0));
    if (!all.ok()) return 1;
    drifting = frozen = 0;
    for (const health::DeviceHealth& d : *all) {
      for (const health::HealthReason& reason : d.reasons) {
        drifting += reason.kind == "drift" ? 1 : 0;
        frozen += reason.kind == "frozen" ? 1 : 0;
      }
    }
  }
  for (int k = 0; k < 200; ++k) {
    const auto t0 = Clock_::now();
    auto d = view.device(device_id(pick(rng)));
    one_checks.push_back(seconds_since(t0));
    if (!d.ok()) return 1;
  }
  if (!store->apply(b).ok()) return 1;

  // The write-heavy case: a writer sends every device a batch a round (one sample of each
  // of its four series), first alone, then beside the fleet view.
  std::atomic<bool> stop{false};
  std::atomic<bool> failed{false};
  std::atomic<uint64_t> written{0};
  std::atomic<int64_t> round{0};  // over every window: each batch newer than the one before
  uint64_t last_lsn = 0;
  auto writer = [&] {
    while (!stop.load()) {
      ++round;
      for (int i = 0; i < devices && !stop.load(); ++i) {
        protocol::TelemetryBatch batch;
        batch.stream = 1;
        batch.sequence = static_cast<uint64_t>(round.load()) + 1;
        const int64_t t = now + round.load() * 10;
        batch.series = {{"memory_available_bytes", {}, {{t, 300e6}}},
                        {"disk_free_bytes", {{"mount", "/data"}}, {{t, 6e9}}},
                        {"battery_level_percent", {{"supply", "BAT0"}}, {{t, 80}}},
                        {"reboots_total", {}, {{t, 3}}}};
        auto r = telemetry.ingest(device_id(i), batch);
        if (!r.ok() || r->stored.refused > 0) {
          failed = true;
          return;
        }
        written.fetch_add(r->stored.accepted);
        last_lsn = r->stored.lsn;
      }
    }
  };
  // Samples a second over a window of `window` seconds while `beside` runs (it returns when
  // the window is over): counted as accepted, and the window closes once they are durable.
  const auto measure_writer = [&](double window, const std::function<void(double)>& beside) {
    stop = false;
    written = 0;
    const auto t0 = Clock_::now();
    std::thread w(writer);
    beside(window);
    stop = true;
    w.join();
    if (failed || !(*tsdb)->wait_durable(last_lsn).ok()) {
      std::fprintf(stderr, "health_bench: an ingest failed\n");
      std::exit(1);
    }
    return static_cast<double>(written.load()) / seconds_since(t0);
  };
  const auto sleep_for = [](double window) {
    std::this_thread::sleep_for(std::chrono::duration<double>(window));
  };
  const double fleet_s = median(fleet);
  const double window = std::max(5.0, fleet_s * 4 * runs);
  // A first round of writes to every device makes each series' open chunk (not measured: at
  // 10,000 devices it takes longer than any fixed warm-up, and a window that caught part of it
  // measured a tenth of the rate).
  measure_writer(0, [&round](double) {
    while (round.load() < 2) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  });
  const double alone_rate = measure_writer(window, sleep_for);
  std::vector<double> under_ingest;
  const double beside_rate = measure_writer(window, [&](double w) {
    const auto start = Clock_::now();
    while (seconds_since(start) < w) {
      const auto t0 = Clock_::now();
      if (!view.fleet({}, hours(int64_t{30} * 24), 20).ok()) std::exit(1);
      under_ingest.push_back(seconds_since(t0));
    }
  });

  std::printf(
      "{\"devices\": %d, \"samples\": %llu, \"ingest_s\": %.2f, \"runs\": %d,\n"
      " \"freshness_scan_s\": %.4f, \"fleet_view_s\": %.4f, \"device_health_ms\": %.3f,\n"
      " \"fleet_view_under_ingest_s\": %.4f, \"ingest_alone_samples_per_s\": %.0f,\n"
      " \"ingest_beside_fleet_view_samples_per_s\": %.0f, \"predicted\": %zu, \"at_risk\": %zu,\n"
      " \"fleet_checks_s\": %.4f, \"device_health_checks_ms\": %.3f, \"drifting\": %zu,"
      " \"frozen\": %zu}\n",
      devices, static_cast<unsigned long long>(samples), ingest_s, runs, median(baseline), fleet_s,
      median(one) * 1000, median(under_ingest), alone_rate, beside_rate, predicted, at_risk,
      median(fleet_checks), median(one_checks) * 1000, drifting, frozen);
  return 0;
}

}  // namespace
}  // namespace drover

int main(int argc, char** argv) {
  int devices = 10'000, runs = 5;
  std::string dir;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--devices") == 0) devices = std::atoi(argv[i + 1]);
    if (std::strcmp(argv[i], "--dir") == 0) dir = argv[i + 1];
    if (std::strcmp(argv[i], "--runs") == 0) runs = std::atoi(argv[i + 1]);
  }
  if (dir.empty() || devices <= 0 || runs <= 0) {
    std::fprintf(stderr, "usage: health_bench --devices N --dir DIR [--runs R]\n");
    return 2;
  }
  return drover::run(devices, dir, runs);
}
