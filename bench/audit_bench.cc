// The audit log's costs (bench/audit.sh): opening a log of N entries — what `drover serve`
// does at every start — against, in the same run, the floor of re-deriving its tree (every
// entry's leaf hash appended to a Merkle tree) and a verification of every signature
// (`drover audit verify`); and one append on SQLite with its fsync — what every mutating
// operator request and rollout change waits for — against a bare SQLite insert of a row of
// the same size, synced the same way.
#include <benchmark/benchmark.h>
#include <sqlite3.h>

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "base/memory_file_system.h"
#include "fleet/audit_log.h"
#include "security/merkle.h"
#include "store/store.h"

namespace drover {
namespace {

AuditEvent event(int64_t i) {
  return {.actor = "token:3f9c0a17b2d4e861:ops (operator)",
          .action = "POST /api/v1/rollouts/{id}/pause",
          .subject = "rollout-" + std::to_string(i),
          .detail = {{"path", "/api/v1/rollouts/rollout-" + std::to_string(i) + "/pause"},
                     {"request_id", std::to_string(1'000'000 + i)}}};
}

AuditLogOptions options() { return {.key_path = "/audit.key", .checkpoint_path = "/audit.cp"}; }

// A memory store holding a log of n entries, and the file system with its key; made once.
struct Filled {
  std::unique_ptr<Store> store = make_memory_store();
  MemoryFileSystem fs;
  ManualClock clock{Timestamp(Duration(1'800'000'000'000))};
  std::string public_key;
  explicit Filled(int64_t n) {
    auto log = AuditLog::open(*store, fs, clock, options()).value();
    for (int64_t i = 0; i < n; ++i) {
      clock.advance(seconds(1));
      (void)log->record(event(i)).value();
    }
    public_key = log->public_key();
  }
};

Filled& filled(int64_t n) {
  static std::map<int64_t, std::unique_ptr<Filled>> logs;
  auto& f = logs[n];
  if (!f) f = std::make_unique<Filled>(n);
  return *f;
}

void BM_OpenLog(benchmark::State& state) {
  Filled& f = filled(state.range(0));
  for (auto _ : state) {
    auto log = AuditLog::open(*f.store, f.fs, f.clock, options());
    if (!log.ok()) state.SkipWithError(log.error().message.c_str());
    benchmark::DoNotOptimize(log);
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}

// The floor: the stored entries read, hashed as leaves and appended to a tree.
void BM_BaselineRederiveTree(benchmark::State& state) {
  Filled& f = filled(state.range(0));
  for (auto _ : state) {
    security::MerkleTree tree;
    for (uint64_t from = 0;;) {
      auto page = f.store->read_audit(from, 4096).value();
      for (const AuditRecord& r : page) (void)tree.append(security::merkle_leaf_hash(r.entry));
      from += page.size();
      if (page.size() < 4096) break;
    }
    benchmark::DoNotOptimize(tree.root());
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}

void BM_VerifyEverySignature(benchmark::State& state) {
  Filled& f = filled(state.range(0));
  const auto records = f.store->read_audit(0, static_cast<size_t>(state.range(0))).value();
  for (auto _ : state) {
    auto v = verify_audit_log(records, f.public_key);
    if (!v.ok()) state.SkipWithError(v.error().message.c_str());
    benchmark::DoNotOptimize(v);
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}

std::string scratch(const char* name) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("drover-audit-bench-" + std::string(name));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir.string();
}

// One append, durable: SQLite (synchronous FULL, as `drover serve` runs it), real files.
void BM_RecordOnSqlite(benchmark::State& state) {
  const std::string dir = scratch("record");
  auto store = open_sqlite_store(dir + "/drover.db").value();
  ManualClock clock{Timestamp(Duration(1'800'000'000'000))};
  auto log =
      AuditLog::open(*store, real_file_system(), clock,
                     {.key_path = dir + "/audit.key", .checkpoint_path = dir + "/audit.checkpoint"})
          .value();
  int64_t i = 0;
  for (auto _ : state) {
    clock.advance(seconds(1));
    auto index = log->record(event(i++));
    if (!index.ok()) state.SkipWithError(index.error().message.c_str());
  }
  log.reset();
  store.reset();
  std::filesystem::remove_all(dir);
}

// The floor: the same bytes (an entry and a checkpoint) inserted into a bare SQLite table in
// WAL mode with synchronous FULL, one transaction each.
void BM_BaselineSqliteInsert(benchmark::State& state) {
  const std::string dir = scratch("insert");
  sqlite3* db = nullptr;
  sqlite3_open((dir + "/bare.db").c_str(), &db);
  sqlite3_exec(db,
               "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; CREATE TABLE t (idx INTEGER "
               "PRIMARY KEY, entry TEXT NOT NULL, checkpoint TEXT NOT NULL);",
               nullptr, nullptr, nullptr);
  sqlite3_stmt* put = nullptr;
  sqlite3_prepare_v2(db, "INSERT INTO t VALUES (?1, ?2, ?3)", -1, &put, nullptr);
  const std::string entry(330, 'e');
  const std::string checkpoint(360, 'c');
  int64_t i = 0;
  for (auto _ : state) {
    sqlite3_bind_int64(put, 1, i++);
    sqlite3_bind_text(put, 2, entry.data(), static_cast<int>(entry.size()), SQLITE_STATIC);
    sqlite3_bind_text(put, 3, checkpoint.data(), static_cast<int>(checkpoint.size()),
                      SQLITE_STATIC);
    if (sqlite3_step(put) != SQLITE_DONE) state.SkipWithError(sqlite3_errmsg(db));
    sqlite3_reset(put);
  }
  sqlite3_finalize(put);
  sqlite3_close(db);
  std::filesystem::remove_all(dir);
}

BENCHMARK(BM_OpenLog)->Arg(10'000)->Arg(100'000)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_BaselineRederiveTree)->Arg(10'000)->Arg(100'000)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_VerifyEverySignature)->Arg(10'000)->Arg(100'000)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_RecordOnSqlite)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_BaselineSqliteInsert)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace drover

BENCHMARK_MAIN();
