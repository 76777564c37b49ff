#include "telemetry/time_series_store.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <bit>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <shared_mutex>
#include <thread>

#include "../common/power_cut_file_system.h"
#include "nab_series.h"

namespace drover::telemetry {
namespace {

using drover::testing::PowerCutFileSystem;

namespace fs = std::filesystem;

constexpr int64_t kDay = 86'400'000;
constexpr int64_t kStart = 1'764'547'200'000;  // 2025-12-01T00:00:00Z

Timestamp at(int64_t ms) { return Timestamp(Duration(ms)); }

class TimeSeriesStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/drover-tsdb-XXXXXX";
    root_ = ::mkdtemp(tmpl);
    dir_ = root_ + "/store";
  }
  void TearDown() override { fs::remove_all(root_); }

  std::unique_ptr<TimeSeriesStore> open(StoreOptions options = {}, FileSystem* files = nullptr,
                                        const std::string& dir = "") {
    auto store = TimeSeriesStore::open(files ? *files : real_file_system(),
                                       dir.empty() ? dir_ : dir, clock_, options);
    EXPECT_TRUE(store.ok()) << store.error().to_string();
    return store.ok() ? std::move(*store) : nullptr;
  }

  static Batch batch(std::string key, std::vector<Sample> samples, std::string source = "",
                     uint64_t stream = 0, uint64_t sequence = 0) {
    Batch b;
    b.source = std::move(source);
    b.stream = stream;
    b.sequence = sequence;
    b.series.push_back({std::move(key), std::move(samples)});
    return b;
  }

  static std::vector<Sample> raw(const TimeSeriesStore& store, const std::string& key) {
    auto points = store.read(key, Resolution::kRaw, INT64_MIN, INT64_MAX);
    EXPECT_TRUE(points.ok()) << points.error().to_string();
    std::vector<Sample> out;
    if (points.ok()) {
      for (const auto& p : *points) out.push_back({p.t_ms, p.sum});  // a raw point: all equal
    }
    return out;
  }

  std::string root_;
  std::string dir_;
  ManualClock clock_{at(kStart + kDay)};
};

// A series of `n` samples every `step` ms from `from`, values a wandering decimal.
std::vector<Sample> wander(int64_t from, int64_t step, size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<Sample> out;
  int64_t v = 5000;
  for (size_t i = 0; i < n; ++i) {
    v += static_cast<int64_t>(rng() % 21) - 10;
    out.push_back({from + static_cast<int64_t>(i) * step, static_cast<double>(v) / 100.0});
  }
  return out;
}

void expect_same(const std::vector<Sample>& want, const std::vector<Sample>& got) {
  ASSERT_EQ(want.size(), got.size());
  for (size_t i = 0; i < want.size(); ++i) {
    ASSERT_EQ(want[i].t_ms, got[i].t_ms) << i;
    ASSERT_EQ(std::bit_cast<uint64_t>(want[i].value), std::bit_cast<uint64_t>(got[i].value)) << i;
  }
}

TEST_F(TimeSeriesStoreTest, WhatIsAppendedIsReadBackFromHeadsChunksAndAfterReopening) {
  StoreOptions options;
  options.chunk_samples = 100;
  std::vector<Sample> samples = wander(kStart, 10'000, 1234, 1);
  {
    auto store = open(options);
    for (size_t at = 0; at < samples.size(); at += 50) {
      std::vector<Sample> part(
          samples.begin() + static_cast<ptrdiff_t>(at),
          samples.begin() + static_cast<ptrdiff_t>(std::min(at + 50, samples.size())));
      auto r = store->append(batch("dev-1/temp", part));
      ASSERT_TRUE(r.ok()) << r.error().to_string();
      EXPECT_EQ(r->accepted, part.size());
      ASSERT_TRUE(store->wait_durable(r->lsn).ok());
    }
    expect_same(samples, raw(*store, "dev-1/temp"));  // some sealed, some in the head
    ASSERT_TRUE(store->checkpoint_now().ok());
    EXPECT_GE(store->stats().sealed_samples, 1200u);
    auto latest = store->latest("dev-1/temp");
    ASSERT_TRUE(latest.has_value());
    EXPECT_EQ(*latest, samples.back());
  }
  auto reopened = open(options);
  expect_same(samples, raw(*reopened, "dev-1/temp"));
  auto window = reopened->read("dev-1/temp", Resolution::kRaw, samples[10].t_ms, samples[20].t_ms);
  ASSERT_TRUE(window.ok());
  ASSERT_EQ(window->size(), 10u);
  EXPECT_EQ(window->front().t_ms, samples[10].t_ms);
  EXPECT_EQ(reopened->read("dev-9/none", Resolution::kRaw, 0, 1).error().code,
            ErrorCode::kNotFound);
}

TEST_F(TimeSeriesStoreTest, RollupsHoldEachBucketsMinMaxSumAndCount) {
  StoreOptions options;
  options.chunk_samples = 64;
  options.rollup_chunk_points = 8;
  options.raw_retention = options.five_minute_retention = options.hour_retention = days(10'000);
  // A real series (from 2014: kept by the long retention), and the buckets computed here.
  auto nab = testing::load_nab_series();
  std::vector<Sample> samples = testing::strictly_increasing(nab[0].samples);
  auto store = open(options);
  auto r = store->append(batch("nab", samples));
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE(store->wait_durable(r->lsn).ok());
  for (Resolution res : {Resolution::k5m, Resolution::k1h}) {
    std::map<int64_t, RollupPoint> want;
    for (const Sample& x : samples) {
      int64_t b = bucket_start(x.t_ms, bucket_ms(res));
      auto [it, fresh] = want.try_emplace(b, RollupPoint{b, x.value, x.value, 0, 0});
      it->second.min = std::min(it->second.min, x.value);
      it->second.max = std::max(it->second.max, x.value);
      it->second.sum += x.value;
      ++it->second.count;
    }
    for (int pass = 0; pass < 2; ++pass) {
      auto got = store->read("nab", res, INT64_MIN, INT64_MAX);
      ASSERT_TRUE(got.ok());
      ASSERT_EQ(got->size(), want.size()) << resolution_name(res);
      size_t i = 0;
      for (const auto& [b, p] : want) {
        const RollupPoint& g = (*got)[i++];
        ASSERT_EQ(g.t_ms, b);
        EXPECT_EQ(g.min, p.min);
        EXPECT_EQ(g.max, p.max);
        EXPECT_EQ(g.count, p.count);
        EXPECT_NEAR(g.sum, p.sum, 1e-9 * std::abs(p.sum));
      }
      if (pass == 0) {
        store.reset();
        store = open(options);  // read again from the chunks, the checkpoint and the log
      }
    }
  }
  EXPECT_GT(store->stats().sealed_chunks, samples.size() / 64);
}

TEST_F(TimeSeriesStoreTest, OlderSamplesAreRefusedRepeatsAreDuplicatesAndBadBatchesChangeNothing) {
  auto store = open();
  ASSERT_TRUE(store->append(batch("d/x", {{kStart + 1000, 1.0}, {kStart + 2000, 2.0}})).ok());
  auto r = store->append(batch(
      "d/x",
      {{kStart + 1500, 9.0}, {kStart + 2000, 2.0}, {kStart + 2000, 3.0}, {kStart + 3000, 3.0}}));
  // Within one batch a series must be in order: this one is not, and is refused whole.
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
  r = store->append(batch("d/x", {{kStart + 1500, 9.0}}));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->refused, 1u);
  r = store->append(batch("d/x", {{kStart + 2000, 2.0}, {kStart + 3000, 3.0}}));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->duplicates, 1u);
  EXPECT_EQ(r->accepted, 1u);
  r = store->append(batch("d/x", {{kStart + 3000, 4.0}}));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->refused, 1u);
  expect_same({{kStart + 1000, 1.0}, {kStart + 2000, 2.0}, {kStart + 3000, 3.0}},
              raw(*store, "d/x"));

  for (std::string bad : {std::string(), std::string(2049, 'k'), std::string("a\nb")}) {
    auto refused = store->append(batch(bad, {{kStart + 5000, 1.0}}));
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(refused.error().code, ErrorCode::kInvalidArgument);
  }
  Batch mixed = batch("d/y", {{kStart, 1.0}});
  mixed.series.push_back({"d/z", {{kStart + 2, 1.0}, {kStart + 1, 2.0}}});
  EXPECT_FALSE(store->append(mixed).ok());
  EXPECT_TRUE(store->keys("d/").size() == 1) << "a refused batch created no series";
}

TEST_F(TimeSeriesStoreTest, ARetriedBatchIsAcknowledgedButNotStoredTwiceAcrossARestart) {
  {
    auto store = open();
    auto first = store->append(batch("d/x", {{kStart + 1000, 1.0}}, "dev-1", 77, 1));
    ASSERT_TRUE(first.ok());
    auto again = store->append(batch("d/x", {{kStart + 1000, 1.0}}, "dev-1", 77, 1));
    ASSERT_TRUE(again.ok());
    EXPECT_TRUE(again->retry);
    EXPECT_EQ(again->lsn, first->lsn) << "a retry waits for the original to be durable";
    ASSERT_TRUE(store->wait_durable(first->lsn).ok());
  }
  auto store = open();
  auto after = store->append(batch("d/x", {{kStart + 1000, 1.0}}, "dev-1", 77, 1));
  ASSERT_TRUE(after.ok());
  EXPECT_TRUE(after->retry);
  // A new stream (the device's queue was recreated) starts its sequence again.
  auto fresh = store->append(batch("d/x", {{kStart + 2000, 2.0}}, "dev-1", 78, 1));
  ASSERT_TRUE(fresh.ok());
  EXPECT_FALSE(fresh->retry);
  EXPECT_EQ(fresh->accepted, 1u);
  ASSERT_TRUE(store->checkpoint_now().ok());
  store.reset();
  store = open();  // the sequence survives a checkpoint too
  auto old = store->append(batch("d/x", {{kStart + 3000, 3.0}}, "dev-1", 78, 1));
  ASSERT_TRUE(old.ok());
  EXPECT_TRUE(old->retry);
  EXPECT_EQ(raw(*store, "d/x").size(), 2u);
}

TEST_F(TimeSeriesStoreTest, CheckpointsDeleteOldSegmentsAndLoseNothing) {
  StoreOptions options;
  options.chunk_samples = 256;
  options.wal_segment_bytes = 16 << 10;
  std::map<std::string, std::vector<Sample>> want;
  {
    auto store = open(options);
    for (int round = 0; round < 40; ++round) {
      Batch b;
      for (int d = 0; d < 20; ++d) {
        std::string key = "dev-" + std::to_string(d) + "/m";
        auto part =
            wander(kStart + round * 100'000, 10'000, 10, static_cast<uint64_t>(round * 100 + d));
        want[key].insert(want[key].end(), part.begin(), part.end());
        b.series.push_back({key, part});
      }
      auto r = store->append(b);
      ASSERT_TRUE(r.ok());
      ASSERT_TRUE(store->wait_durable(r->lsn).ok());
    }
    ASSERT_TRUE(store->checkpoint_now().ok());
    EXPECT_GE(store->stats().checkpoints, 3u);
  }
  size_t segments = 0;
  for (const auto& e : fs::directory_iterator(dir_ + "/wal")) {
    segments += e.path().filename().string().rfind("wal-", 0) == 0 ? 1 : 0;
  }
  EXPECT_LE(segments, 2u);
  auto store = open(options);
  for (const auto& [key, samples] : want) expect_same(samples, raw(*store, key));
}

TEST_F(TimeSeriesStoreTest, ATornLogTailIsCutAndADamagedChunkIsReported) {
  StoreOptions options;
  options.chunk_samples = 50;
  std::vector<Sample> samples = wander(kStart, 1000, 120, 3);
  {
    auto store = open(options);
    auto r = store->append(batch("d/x", samples));
    ASSERT_TRUE(r.ok());
    ASSERT_TRUE(store->wait_durable(r->lsn).ok());
    ASSERT_TRUE(store->checkpoint_now().ok());
  }
  // A crash in the middle of an append: half a record at the end of the newest segment.
  std::string newest;
  for (const auto& e : fs::directory_iterator(dir_ + "/wal")) {
    std::string name = e.path().string();
    if (e.path().filename().string().rfind("wal-", 0) == 0 && name > newest) newest = name;
  }
  { std::ofstream(newest, std::ios::app) << "\x10\x20\x30\x40\x50"; }
  {
    auto store = open(options);
    expect_same(samples, raw(*store, "d/x"));
    EXPECT_EQ(fs::file_size(newest), 0u) << "the torn tail is cut off";
  }
  // Damage inside a sealed chunk: reading it says so.
  std::string chunk_file;
  for (const auto& e : fs::directory_iterator(dir_ + "/chunks")) {
    if (e.path().extension() == ".chunks") chunk_file = e.path().string();
  }
  {
    std::fstream f(chunk_file, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(20);
    f.put('\x5a');
  }
  auto store = open(options);
  auto read = store->read("d/x", Resolution::kRaw, INT64_MIN, INT64_MAX);
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.error().code, ErrorCode::kCorruption);
  EXPECT_NE(read.error().message.find("checksum"), std::string::npos) << read.error().message;
}

TEST_F(TimeSeriesStoreTest, RetentionRemovesRawDaysButKeepsTheRollups) {
  StoreOptions options;
  options.raw_retention = days(2);
  options.chunk_samples = 1000;
  auto store = open(options);
  std::vector<Sample> samples = wander(kStart - 5 * kDay, 60'000, 6 * 1440, 4);  // six days
  clock_.advance_to(at(kStart + kDay));
  auto r = store->append(batch("d/x", samples));
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE(store->wait_durable(r->lsn).ok());
  ASSERT_TRUE(store->checkpoint_now().ok());
  clock_.advance(minutes(2));
  ASSERT_TRUE(store->checkpoint_now().ok());  // the writer's next turn applies retention
  auto kept = raw(*store, "d/x");
  ASSERT_FALSE(kept.empty());
  // What is kept is the newest part; nothing newer than two days went, and whole older days
  // did (a file goes once its newest sample is older than the retention).
  const int64_t horizon = (clock_.now() - days(2)).time_since_epoch().count();
  ASSERT_LT(kept.size(), samples.size());
  std::vector<Sample> suffix(samples.end() - static_cast<ptrdiff_t>(kept.size()), samples.end());
  expect_same(suffix, kept);
  EXPECT_LT(kept.front().t_ms, horizon);
  EXPECT_GE(kept.front().t_ms, horizon - 2 * kDay);
  auto five = store->read("d/x", Resolution::k5m, INT64_MIN, INT64_MAX);
  ASSERT_TRUE(five.ok());
  EXPECT_EQ(five->size(), samples.size() / 5);
  EXPECT_EQ(store->resolution_for(kStart - 4 * kDay, kStart, 60'000), Resolution::k5m);
  EXPECT_EQ(store->resolution_for(kStart, kStart + 3'600'000, 60'000), Resolution::kRaw);
  EXPECT_EQ(store->resolution_for(kStart - 60 * kDay, kStart, 60'000), Resolution::k1h);
}

// A reader of the log (the remote write) that has not come back yet after a restart: the
// store holds the log for it from the start (StoreOptions::log_hold), through checkpoints,
// and the reader then reads every acknowledged sample in order, nothing skipped.
TEST_F(TimeSeriesStoreTest, TheLogIsHeldForItsReaderAcrossCheckpointsAndRestarts) {
  StoreOptions options;
  options.wal_segment_bytes = 2 << 10;
  options.log_hold = LogPosition{};
  std::vector<Sample> want;
  for (int round = 0; round < 3; ++round) {
    auto store = open(options);
    for (int b = 0; b < 20; ++b) {
      auto part = wander(kStart + (round * 20 + b) * 100'000, 1000, 50, static_cast<uint64_t>(b));
      want.insert(want.end(), part.begin(), part.end());
      auto r = store->append(batch("d/x", part));
      ASSERT_TRUE(r.ok());
      ASSERT_TRUE(store->wait_durable(r->lsn).ok());
    }
    ASSERT_TRUE(store->checkpoint_now().ok());
    EXPECT_GE(store->stats().checkpoints, 1u);
  }
  auto store = open(options);
  std::vector<Sample> got;
  LogPosition at;
  for (int reads = 0; reads < 1000; ++reads) {
    auto read = store->read_log(at, 4096);
    ASSERT_TRUE(read.ok()) << read.error().to_string();
    EXPECT_FALSE(read->skipped);
    for (const auto& ss : read->series) got.insert(got.end(), ss.samples.begin(), ss.samples.end());
    if (read->next == at) break;
    at = read->next;
  }
  expect_same(want, got);
  // Without a hold, the same checkpoints let the old segments go: a reader from the start
  // misses them (and is told when it had a position there).
  StoreOptions no_hold = options;
  no_hold.log_hold.reset();
  store.reset();
  store = open(no_hold);
  ASSERT_TRUE(store->append(batch("d/x", {{kStart + 90 * 100'000, 1.0}})).ok());
  ASSERT_TRUE(store->checkpoint_now().ok());
  auto late = store->read_log(LogPosition{0, 100}, 4096);
  ASSERT_TRUE(late.ok());
  EXPECT_TRUE(late->skipped);
}

// Writers append in parallel while power is cut at random instants: each cut leaves the
// files as they were synced; the store opened from them has every acknowledged sample,
// exactly once, and nothing that was never appended.
TEST_F(TimeSeriesStoreTest, APowerCutAtAnyInstantKeepsEveryAcknowledgedSampleOnce) {
  StoreOptions options;
  options.chunk_samples = 64;
  options.rollup_chunk_points = 4;
  options.wal_segment_bytes = 8 << 10;
  PowerCutFileSystem files;
  auto store = open(options, &files);
  constexpr int kWriters = 4;
  std::mutex acked_mu;
  std::map<std::string, std::vector<Sample>> acked;  // per series, in order
  std::map<std::string, std::vector<Sample>> sent;
  std::atomic<bool> done{false};
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      std::string key = "dev-" + std::to_string(w) + "/m";
      auto samples = wander(kStart, 7'000, 200'000, static_cast<uint64_t>(w));
      for (size_t b = 0; !done && (b + 1) * 5 <= samples.size(); ++b) {
        std::vector<Sample> part(samples.begin() + static_cast<ptrdiff_t>(b * 5),
                                 samples.begin() + static_cast<ptrdiff_t>(b * 5 + 5));
        {
          std::lock_guard g(acked_mu);
          sent[key].insert(sent[key].end(), part.begin(), part.end());
        }
        auto r = store->append(batch(key, part, "dev-" + std::to_string(w), 1, b + 1));
        ASSERT_TRUE(r.ok());
        ASSERT_TRUE(store->wait_durable(r->lsn).ok());
        std::lock_guard g(acked_mu);
        acked[key].insert(acked[key].end(), part.begin(), part.end());
      }
    });
  }
  std::thread checkpoints([&] {
    while (!done) {
      (void)store->checkpoint_now();
      std::this_thread::sleep_for(std::chrono::milliseconds(3));
    }
  });
  std::mt19937 rng(9);
  size_t checked = 0;  // acknowledged samples checked after all the cuts
  for (int cut = 0; cut < 150; ++cut) {
    std::this_thread::sleep_for(std::chrono::microseconds(rng() % 3000));
    std::map<std::string, std::vector<Sample>> acked_before;
    {
      std::lock_guard g(acked_mu);
      acked_before = acked;
    }
    std::string copy = root_ + "/cut";
    files.cut_power_into(dir_, copy);
    std::map<std::string, std::vector<Sample>> sent_after;
    {
      std::lock_guard g(acked_mu);
      sent_after = sent;
    }
    auto recovered = open(options, nullptr, copy);
    ASSERT_TRUE(recovered);
    for (const auto& [key, samples] : sent_after) {
      auto got = recovered->read(key, Resolution::kRaw, INT64_MIN, INT64_MAX);
      size_t have = got.ok() ? got->size() : 0;
      const auto& must = acked_before[key];
      ASSERT_GE(have, must.size()) << "cut " << cut << ": " << key << " lost acknowledged samples";
      checked += must.size();
      ASSERT_LE(have, samples.size());
      for (size_t i = 0; i < have; ++i) {
        ASSERT_EQ((*got)[i].t_ms, samples[i].t_ms) << "cut " << cut << " " << key << " at " << i;
        ASSERT_EQ((*got)[i].sum, samples[i].value);
      }
    }
  }
  done = true;
  for (auto& t : writers) t.join();
  checkpoints.join();
  EXPECT_GT(checked, 1000u) << "the cuts fell while the writers were at work";
}

}  // namespace
}  // namespace drover::telemetry
