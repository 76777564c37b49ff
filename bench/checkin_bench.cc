// Check-in cost through the real DeviceService and RolloutEngine, next to a baseline
// measured in the same run: one std::unordered_map<std::string, int> lookup of a random
// device id in a table of the same size (the floor any id-keyed registry pays).
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/random.h"
#include "base/units.h"
#include "fleet/device_service.h"
#include "rollout/engine.h"
#include "rollout/queries.h"
#include "store/store.h"

namespace drover {
namespace {

std::string device_id(int64_t i) { return "dev-" + std::to_string(1'000'000 + i); }

struct World {
  explicit World(int64_t n, bool rollout)
      : clock(parse_utc_timestamp("2026-06-01T12:00:00Z").value()) {
    store = make_memory_store();
    Artifact a;
    a.name = "firmware";
    a.device_types = {"ctl"};
    a.size_bytes = 1000;
    a.sha256 = std::string(64, 'a');
    WriteBatch b;
    for (const char* v : {"1.0.0", "2.0.0"}) {
      a.version = v;
      b.artifacts.push_back(a);
    }
    (void)store->apply(b);
    engine = std::make_unique<RolloutEngine>(*store, clock);
    (void)engine->load();
    service = std::make_unique<DeviceService>(*store, *engine);
    std::vector<Device> ds;
    for (int64_t i = 0; i < n; ++i) {
      Device d;
      d.id = device_id(i);
      d.device_type = "ctl";
      d.hardware_revision = i % 3 == 0 ? "rev-a" : "rev-b";
      d.site = "site-" + std::to_string(i % 100);
      d.installed = {{"firmware", "1.0.0"}};
      ds.push_back(d);
    }
    (void)service->provision(std::move(ds));
    if (rollout) {
      RolloutPlan p;
      p.name = "bench";
      p.artifact_name = "firmware";
      p.artifact_version = "2.0.0";
      // Every device has a deployment; almost all wait for the later stage.
      p.stages = {{"canary", 0, 1, hours(1)}, {"all", 0, static_cast<uint32_t>(n), Duration(0)}};
      auto r = engine->create(p);
      (void)engine->start(r->id);
    }
  }
  ManualClock clock;
  std::unique_ptr<Store> store;
  std::unique_ptr<RolloutEngine> engine;
  std::unique_ptr<DeviceService> service;
};

void check_ins(benchmark::State& state, bool rollout) {
  const int64_t n = state.range(0);
  World w(n, rollout);
  std::vector<std::string> ids;
  for (int64_t i = 0; i < n; ++i) ids.push_back(device_id(i));
  const std::vector<InstalledComponent> inv{{"firmware", "1.0.0"}};
  Rng rng(1);
  for (auto _ : state) {
    const std::string& id = ids[rng.below(static_cast<uint64_t>(n))];
    auto r = w.service->check_in({id, inv, UpdateState::kIdle});
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_CheckInIdleFleet(benchmark::State& state) { check_ins(state, false); }
void BM_CheckInDuringRollout(benchmark::State& state) { check_ins(state, true); }

void BM_BaselineHashLookup(benchmark::State& state) {
  const int64_t n = state.range(0);
  std::unordered_map<std::string, int> table;
  std::vector<std::string> ids;
  for (int64_t i = 0; i < n; ++i) {
    ids.push_back(device_id(i));
    table.emplace(ids.back(), static_cast<int>(i));
  }
  Rng rng(1);
  for (auto _ : state) {
    auto it = table.find(ids[rng.below(static_cast<uint64_t>(n))]);
    benchmark::DoNotOptimize(it);
  }
  state.SetItemsProcessed(state.iterations());
}

// The fleet summary (GET /api/v1/fleet/summary, the web console's overview): one scan of
// the registry under its lock, which check-ins wait for meanwhile; a quarter of the fleet
// has checked in. Baseline in the same run: census(), the registry scan /metrics makes.
void summary_world(World& w, int64_t n) {
  const std::vector<InstalledComponent> inv{{"firmware", "1.0.0"}};
  for (int64_t i = 0; i < n; i += 4)
    (void)w.service->check_in({device_id(i), inv, UpdateState::kIdle});
}

void BM_FleetSummary(benchmark::State& state) {
  World w(state.range(0), false);
  summary_world(w, state.range(0));
  for (auto _ : state) {
    auto s = w.service->summary(w.clock.now());
    benchmark::DoNotOptimize(s);
  }
}

void BM_BaselineCensus(benchmark::State& state) {
  World w(state.range(0), false);
  summary_world(w, state.range(0));
  for (auto _ : state) {
    auto c = w.service->census();
    benchmark::DoNotOptimize(c);
  }
}

// The rollout timeline (GET /api/v1/rollouts/{id}/timeline, the console's chart) on a
// SQLite store as drover serve keeps it: every deployment of a rollout over the whole fleet
// read back and counted at 120 points. Baseline in the same run: reading the deployments
// alone (Store::list_deployments), the part no timeline from stored records can avoid.
struct TimelineWorld {
  explicit TimelineWorld(int64_t n)
      : path(temp_path()), clock(parse_utc_timestamp("2026-06-01T12:00:00Z").value()) {
    auto opened = open_sqlite_store(path);
    store = std::move(*opened);
    World source(n, true);  // the fleet and its rollout, copied into the SQLite store
    WriteBatch b;
    b.artifacts = *source.store->list_artifacts();
    b.rollouts = *source.store->list_rollouts();
    rollout_id = b.rollouts.front().id;
    b.deployments = *source.store->list_deployments(rollout_id);
    (void)store->apply(b);
    engine = std::make_unique<RolloutEngine>(*store, clock);
    (void)engine->load();
    queries = std::make_unique<RolloutQueries>(*store, *engine);
    now = clock.now() + hours(1);
  }
  ~TimelineWorld() {
    queries.reset();
    engine.reset();
    store.reset();
    std::remove(path.c_str());
  }
  TimelineWorld(const TimelineWorld&) = delete;
  TimelineWorld& operator=(const TimelineWorld&) = delete;
  static std::string temp_path() {
    std::string p = "/tmp/drover-timeline-bench-XXXXXX";
    const int fd = ::mkstemp(p.data());
    if (fd >= 0) ::close(fd);
    std::remove(p.c_str());
    return p;
  }
  std::string path;
  ManualClock clock;
  std::unique_ptr<Store> store;
  std::unique_ptr<RolloutEngine> engine;
  std::unique_ptr<RolloutQueries> queries;
  std::string rollout_id;
  Timestamp now{};
};

void BM_RolloutTimeline(benchmark::State& state) {
  TimelineWorld w(state.range(0));
  for (auto _ : state) {
    auto t = w.queries->timeline(w.rollout_id, "", 120, w.now);
    benchmark::DoNotOptimize(t);
  }
}

void BM_BaselineListDeployments(benchmark::State& state) {
  TimelineWorld w(state.range(0));
  for (auto _ : state) {
    auto d = w.store->list_deployments(w.rollout_id);
    benchmark::DoNotOptimize(d);
  }
}

BENCHMARK(BM_BaselineListDeployments)->Arg(15'000)->Arg(100'000)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_RolloutTimeline)->Arg(15'000)->Arg(100'000)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_BaselineCensus)->Arg(100'000)->Arg(1'000'000)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_FleetSummary)->Arg(100'000)->Arg(1'000'000)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_BaselineHashLookup)->Arg(100'000)->Arg(1'000'000);
BENCHMARK(BM_CheckInIdleFleet)->Arg(100'000)->Arg(1'000'000);
BENCHMARK(BM_CheckInDuringRollout)->Arg(100'000)->Arg(1'000'000);

}  // namespace
}  // namespace drover

BENCHMARK_MAIN();
