// The agent's telemetry: the store-and-forward queue (power cuts included), StatsD, the
// per-metric rules, the system collectors over a fake /proc and /sys, and the whole
// TelemetryAgent against a server that keeps what it acknowledged.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>

#include "../common/power_cut_file_system.h"
#include "agent/metric_aggregator.h"
#include "agent/statsd.h"
#include "agent/system_metrics.h"
#include "agent/telemetry_agent.h"
#include "agent/telemetry_queue.h"

namespace drover::agent {
namespace {

namespace fs = std::filesystem;
using protocol::TelemetrySeries;
using telemetry::Sample;

constexpr int64_t kStart = 1'764'547'200'000;  // 2025-12-01T00:00:00Z

std::string temp_dir(const std::string& name) {
  const std::string dir =
      (fs::temp_directory_path() / ("drover-telemetry-" + name + "-" + std::to_string(::getpid())))
          .string();
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

void write_file(const std::string& path, const std::string& text) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path) << text;
}

std::string key_of(const TelemetrySeries& s) {
  std::string k = s.metric;
  for (const auto& [n, v] : s.labels) k += "," + n + "=" + v;
  return k;
}

// A server as the device API behaves: remembers each stream's last sequence (a retried
// batch is acknowledged, not stored again) and keeps every sample it took.
class RecordingServer final : public ServerLink {
 public:
  Status connect(const Inventory&) override { return ok_status(); }
  Result<CheckInAnswer> check_in(const Inventory&, protocol::UpdateState, std::string_view, bool,
                                 const protocol::ConfigReport*) override {
    return CheckInAnswer{};
  }
  Status report(const std::string&, const std::string&, protocol::Report, const std::string&,
                const std::string&) override {
    return ok_status();
  }
  Result<uint64_t> download(const UpdateRecord&, const std::string&, uint64_t,
                            const std::function<void(uint64_t)>&) override {
    return io_error("no downloads here");
  }
  Result<TelemetryAck> send_telemetry(std::string_view body) override {
    if (!up) return io_error("unreachable");
    auto batch = protocol::decode_telemetry_batch(body, true);
    if (!batch.ok()) return batch.error();
    ++batches;
    TelemetryAck ack;
    ack.sequence = batch->sequence;
    ack.rules = rules.etag;
    uint64_t& last = last_sequence[batch->stream];
    if (batch->sequence <= last) {
      ack.retry = true;
      ++retries;
      if (lose_answers > 0) {
        --lose_answers;
        return io_error("the answer was lost");
      }
      return ack;
    }
    last = batch->sequence;
    dropped_reported += batch->dropped;
    for (const TelemetrySeries& s : batch->series) {
      auto& out = stored[key_of(s)];
      for (const Sample& x : s.samples) {
        if (!out.empty() && out.back().t_ms >= x.t_ms) {
          ++out_of_order;
          continue;
        }
        out.push_back(x);
        ++ack.accepted;
      }
    }
    if (lose_answers > 0) {
      --lose_answers;
      return io_error("the answer was lost");
    }
    return ack;
  }
  Result<protocol::TelemetryRules> telemetry_rules() override {
    if (!up) return io_error("unreachable");
    ++rule_fetches;
    return rules;
  }

  bool up = true;
  int lose_answers = 0;
  protocol::TelemetryRules rules;
  std::map<uint64_t, uint64_t> last_sequence;
  std::map<std::string, std::vector<Sample>> stored;
  uint64_t batches = 0, retries = 0, dropped_reported = 0, out_of_order = 0, rule_fetches = 0;
};

// Drains the queue into the server until it is empty.
void drain(TelemetryQueue& q, RecordingServer& server) {
  for (int i = 0; i < 10'000; ++i) {
    auto b = q.next_batch();
    ASSERT_TRUE(b.ok()) << b.error().to_string();
    if (!*b) return;
    auto ack = server.send_telemetry((*b)->body);
    ASSERT_TRUE(ack.ok()) << ack.error().to_string();
    ASSERT_TRUE(q.acknowledge((*b)->sequence).ok());
  }
  FAIL() << "the queue never emptied";
}

std::vector<TelemetrySeries> round(int64_t t, int metrics, double base = 0) {
  std::vector<TelemetrySeries> out;
  for (int m = 0; m < metrics; ++m) {
    out.push_back({"metric_" + std::to_string(m),
                   {{"unit", "u" + std::to_string(m % 3)}},
                   {{t, base + m + static_cast<double>(t % 1000) / 7}}});
  }
  return out;
}

TEST(TelemetryQueue, WhatIsAppendedArrivesOnceInOrderAcrossReopens) {
  const std::string dir = temp_dir("queue-basic");
  RecordingServer server;
  uint64_t stream = 0;
  for (int life = 0; life < 3; ++life) {
    auto q = TelemetryQueue::open({dir, 4u << 20, 500, 768u << 10, 42});
    ASSERT_TRUE(q.ok()) << q.error().to_string();
    if (life == 0) stream = (*q)->stats().stream;
    EXPECT_EQ((*q)->stats().stream, stream) << "the stream outlives a restart";
    for (int r = 0; r < 100; ++r) {
      ASSERT_TRUE(
          (*q)->append(Priority::kRoutine, round(kStart + (life * 100 + r) * 10'000, 20)).ok());
    }
    EXPECT_EQ((*q)->stats().samples, life == 2 ? 4000u : 2000u);
    if (life == 1) continue;  // restart with everything still queued
    drain(**q, server);
    EXPECT_EQ((*q)->stats().samples, 0u);
  }
  ASSERT_EQ(server.stored.size(), 20u);
  for (const auto& [key, samples] : server.stored) {
    ASSERT_EQ(samples.size(), 300u) << key;
    for (size_t i = 0; i < samples.size(); ++i) {
      EXPECT_EQ(samples[i].t_ms, kStart + static_cast<int64_t>(i) * 10'000) << key;
    }
  }
  EXPECT_EQ(server.retries, 0u);
  EXPECT_EQ(server.out_of_order, 0u);
}

TEST(TelemetryQueue, AnUnansweredBatchIsSentAgainWithItsSequenceAfterARestart) {
  const std::string dir = temp_dir("queue-outbox");
  RecordingServer server;
  {
    auto q = TelemetryQueue::open({dir, 4u << 20, 1000, 768u << 10, 7});
    ASSERT_TRUE(q.ok());
    ASSERT_TRUE((*q)->append(Priority::kRoutine, round(kStart, 5)).ok());
    auto b = (*q)->next_batch();
    ASSERT_TRUE(b.ok() && *b);
    EXPECT_EQ((*b)->sequence, 1u);
    server.lose_answers = 1;  // stored, but the device never hears so
    EXPECT_FALSE(server.send_telemetry((*b)->body).ok());
    // More samples arrive meanwhile: they wait for the next batch.
    ASSERT_TRUE((*q)->append(Priority::kRoutine, round(kStart + 10'000, 5)).ok());
  }
  auto q = TelemetryQueue::open({dir, 4u << 20, 1000, 768u << 10, 7});
  ASSERT_TRUE(q.ok());
  auto b = (*q)->next_batch();
  ASSERT_TRUE(b.ok() && *b);
  EXPECT_EQ((*b)->sequence, 1u) << "the outbox's batch, again";
  auto ack = server.send_telemetry((*b)->body);
  ASSERT_TRUE(ack.ok());
  EXPECT_TRUE(ack->retry);
  ASSERT_TRUE((*q)->acknowledge(1).ok());
  drain(**q, server);
  for (const auto& [key, samples] : server.stored) EXPECT_EQ(samples.size(), 2u) << key;
  EXPECT_EQ(server.out_of_order, 0u);
}

TEST(TelemetryQueue, WhenFullTheOldestRoutineSamplesGoFirstCountedAndReported) {
  const std::string dir = temp_dir("queue-full");
  auto q = TelemetryQueue::open({dir, 1u << 20, 5000, 768u << 10, 9});
  ASSERT_TRUE(q.ok());
  // Urgent samples early on, then far more routine ones than 1 MiB holds.
  ASSERT_TRUE(
      (*q)->append(Priority::kUrgent, {{"reboot", {{"reason", "unclean"}}, {{kStart, 1}}}}).ok());
  uint64_t appended = 0;
  for (int r = 0; r < 8000; ++r) {
    ASSERT_TRUE((*q)->append(Priority::kRoutine, round(kStart + r * 10'000, 20)).ok());
    appended += 20;
    ASSERT_LE((*q)->stats().bytes, uint64_t{1} << 20);
  }
  const QueueStats s = (*q)->stats();
  EXPECT_GT(s.dropped_total, 0u);
  EXPECT_EQ(s.dropped_total, s.dropped_unreported);
  EXPECT_EQ(s.samples + s.dropped_total, appended + 1) << "every sample kept or counted";
  RecordingServer server;
  drain(**q, server);
  EXPECT_EQ(server.dropped_reported, s.dropped_total) << "the server hears of every drop";
  EXPECT_EQ((*q)->stats().dropped_unreported, 0u);
  ASSERT_EQ(server.stored["reboot,reason=unclean"].size(), 1u) << "urgent samples stay";
  // What survived is the newest: each routine series ends with the last round.
  for (const auto& [key, samples] : server.stored) {
    if (key.rfind("metric_", 0) != 0) continue;
    ASSERT_FALSE(samples.empty());
    EXPECT_EQ(samples.back().t_ms, kStart + 7999 * 10'000) << key;
    EXPECT_GT(samples.front().t_ms, kStart) << key << ": the oldest went";
  }
}

TEST(TelemetryQueue, ASteppedBackClockCountsTheSamplesItCannotSend) {
  const std::string dir = temp_dir("queue-clock");
  auto q = TelemetryQueue::open({dir, 4u << 20, 1000, 768u << 10, 3});
  ASSERT_TRUE(q.ok());
  ASSERT_TRUE((*q)->append(Priority::kRoutine, round(kStart + 60'000, 2)).ok());
  ASSERT_TRUE((*q)->append(Priority::kRoutine, round(kStart, 2)).ok());  // the clock went back
  EXPECT_EQ((*q)->stats().dropped_total, 2u);
  EXPECT_EQ((*q)->stats().samples, 2u);
}

TEST(TelemetryQueue, SamplesLargerThanTheQueueAreRefused) {
  const std::string dir = temp_dir("queue-huge");
  auto q = TelemetryQueue::open({dir, 1u << 20, 1000, 768u << 10, 3});
  ASSERT_TRUE(q.ok());
  TelemetrySeries big{"big", {}, {}};
  for (int i = 0; i < 200'000; ++i) big.samples.push_back({kStart + i, 0.5});
  auto st = (*q)->append(Priority::kRoutine, {big});
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, ErrorCode::kResourceExhausted);
  EXPECT_EQ((*q)->stats().samples, 0u);
}

TEST(TelemetryQueue, ARefusedBatchIsDroppedAndCounted) {
  const std::string dir = temp_dir("queue-refused");
  auto q = TelemetryQueue::open({dir, 4u << 20, 1000, 768u << 10, 3});
  ASSERT_TRUE(q.ok());
  ASSERT_TRUE((*q)->append(Priority::kRoutine, round(kStart, 4)).ok());
  auto b = (*q)->next_batch();
  ASSERT_TRUE(b.ok() && *b);
  ASSERT_TRUE((*q)->discard((*b)->sequence).ok());
  EXPECT_EQ((*q)->stats().samples, 0u);
  EXPECT_EQ((*q)->stats().dropped_unreported, 4u);
  ASSERT_TRUE((*q)->append(Priority::kRoutine, round(kStart + 1000, 1)).ok());
  auto next = (*q)->next_batch();
  ASSERT_TRUE(next.ok() && *next);
  EXPECT_EQ((*next)->sequence, 2u);
  EXPECT_EQ((*next)->dropped, 4u);
}

TEST(TelemetryQueue, APowerCutAtAnyInstantLosesNothingAppendedAndSendsNothingTwice) {
  // A device appending, sending and losing power at random instants, 1,000 times — between
  // calls, or inside one after a random number of file operations (every later operation
  // fails, as the device died there). After each cut the queue is reopened from what the
  // disk held (files cut to what was synced, unsynced renames and removals undone). The
  // cap is small, so the oldest samples are dropped too. In the end, every sample whose
  // append returned is accounted for exactly: delivered once, or counted as dropped — and
  // the server was told of every drop.
  const std::string dir = temp_dir("queue-power");
  const std::string work = dir + "/live";
  const std::string after = dir + "/after";
  std::mt19937_64 rng(2026);
  RecordingServer server;
  std::set<int64_t> acknowledged;  // the rounds append() took
  constexpr int kSeries = 31;
  int64_t t = kStart;
  int in_call_cuts = 0;
  bool offline = false;
  fs::create_directories(work);
  for (int cut = 0; cut < 1000; ++cut) {
    drover::testing::PowerCutFileSystem disk;
    auto q = TelemetryQueue::open({work, 40u << 10, 400, 768u << 10, 11}, disk);
    ASSERT_TRUE(q.ok()) << "cut " << cut << ": " << q.error().to_string();
    if (rng() % 2 == 0) disk.fail_after(static_cast<int64_t>(rng() % 40));
    if (rng() % 12 == 0) offline = !offline;  // spells without sends: the queue fills up
    bool dead = false;
    const int steps = static_cast<int>(rng() % 40);
    for (int i = 0; i < steps && !dead; ++i) {
      if (offline || rng() % 3 != 0) {
        t += 10'000;
        std::vector<TelemetrySeries> one = {{"level", {}, {{t, static_cast<double>(t % 977)}}}};
        for (int extra = 1; extra < kSeries; ++extra) {
          one.push_back({"pad_" + std::to_string(extra), {}, {{t, 1.0 * extra}}});
        }
        if ((*q)->append(Priority::kRoutine, one).ok()) {
          acknowledged.insert(t);
        } else {
          dead = true;
        }
      } else {
        auto b = (*q)->next_batch();
        if (!b.ok()) {
          dead = true;
          continue;
        }
        if (!*b) continue;
        if (rng() % 4 == 0) server.lose_answers = 1;
        auto ack = server.send_telemetry((*b)->body);
        if (ack.ok() && !(*q)->acknowledge((*b)->sequence).ok()) dead = true;
      }
    }
    in_call_cuts += dead ? 1 : 0;
    disk.cut_power_into(work, after);
    q->reset();
    fs::remove_all(work);
    fs::rename(after, work);
  }
  auto q = TelemetryQueue::open({work, 40u << 10, 400, 768u << 10, 11});
  ASSERT_TRUE(q.ok());
  drain(**q, server);
  EXPECT_EQ(server.out_of_order, 0u) << "a sample was delivered twice";
  uint64_t delivered = 0;
  for (const auto& [key, samples] : server.stored) delivered += samples.size();
  const QueueStats s = (*q)->stats();
  EXPECT_EQ(delivered + s.dropped_total, kSeries * acknowledged.size())
      << "delivered " << delivered << ", dropped " << s.dropped_total;
  EXPECT_EQ(server.dropped_reported, s.dropped_total) << "every drop reported";
  for (const Sample& x : server.stored["level"]) {
    EXPECT_EQ(acknowledged.count(x.t_ms), 1u) << "delivered but never acknowledged: " << x.t_ms;
  }
  EXPECT_GT(s.dropped_total, 0u) << "the cap was reached";
  EXPECT_GT(delivered, s.dropped_total) << "most arrived";
  EXPECT_GT(in_call_cuts, 100) << "cuts fell inside calls";
}

TEST(Statsd, ParsesTheLineFormat) {
  auto c = parse_statsd_line("app.requests:3|c|@0.5|#route:/api,code:200");
  ASSERT_TRUE(c.ok()) << c.error().to_string();
  EXPECT_EQ(c->name, "app_requests");
  EXPECT_EQ(c->type, StatsdType::kCounter);
  EXPECT_EQ(c->value, 3);
  EXPECT_EQ(c->sample_rate, 0.5);
  ASSERT_EQ(c->labels.size(), 2u);
  EXPECT_EQ(c->labels[0], (std::pair<std::string, std::string>{"code", "200"}));
  EXPECT_EQ(c->labels[1], (std::pair<std::string, std::string>{"route", "/api"}));
  auto g = parse_statsd_line("queue-depth:-4|g");
  ASSERT_TRUE(g.ok());
  EXPECT_TRUE(g->relative);
  EXPECT_EQ(g->value, -4);
  auto ms = parse_statsd_line("9db.latency:12.5|ms");
  ASSERT_TRUE(ms.ok());
  EXPECT_EQ(ms->name, "_9db_latency");
  EXPECT_EQ(ms->type, StatsdType::kTiming);
}

TEST(Statsd, RefusesNastyLines) {
  for (const char* bad :
       {"", "novalue", "x:1", "x:|c", ":1|c", "x:1|q", "x:abc|c", "x:1|c|@0", "x:1|c|@1.5",
        "x:1|c|@nan", "x:inf|g", "x:nan|g", "x:1|c|junk", "x:1|c|#agg:1", "x y:1|c", "x\x01:1|c",
        "x:1|c|#a:1,b:2,c:3,d:4,e:5,f:6,g:7,h:8",
        "x:1|c|#a:"
        "12345678901234567890123456789012345678901234567890123456789012345678901234567890123456"
        "789012345678901234567890123456789012345678901234567890"}) {
    EXPECT_FALSE(parse_statsd_line(bad).ok()) << bad;
  }
  EXPECT_FALSE(parse_statsd_line(std::string(101, 'n') + ":1|c").ok());
  // A tag name a label may not have is mapped onto one that it may.
  auto mapped = parse_statsd_line("x:1|c|#__name:a,9lives:b");
  ASSERT_TRUE(mapped.ok());
  EXPECT_EQ(mapped->labels[0].first, "_9lives");
  EXPECT_EQ(mapped->labels[1].first, "_name");
}

TEST(Statsd, FlushesTotalsGaugesAndTimings) {
  StatsdAggregator a;
  a.add_datagram("req:1|c\nreq:2|c|@0.5\ntemp:20|g\ntemp:+1.5|g\nlat:10|ms\nlat:30|ms\nbad line\n");
  EXPECT_EQ(a.rejected(), 1u);
  auto out = a.flush(kStart);
  std::map<std::string, double> got;
  for (const auto& s : out) got[key_of(s)] = s.samples.at(0).value;
  EXPECT_EQ(got["req_total"], 5);
  EXPECT_EQ(got["temp"], 21.5);
  EXPECT_EQ(got["lat,agg=count"], 2);
  EXPECT_EQ(got["lat,agg=min"], 10);
  EXPECT_EQ(got["lat,agg=max"], 30);
  EXPECT_EQ(got["lat,agg=mean"], 20);
  // The next interval: the counter's total carries on; an untouched gauge and timing say
  // nothing.
  a.add_datagram("req:1|c");
  auto next = a.flush(kStart + 10'000);
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(next[0].metric, "req_total");
  EXPECT_EQ(next[0].samples[0].value, 6);
  // One name, one type; and a cap on series.
  a.add_datagram("req:1|g");
  EXPECT_EQ(a.rejected(), 2u);
  StatsdAggregator small(StatsdLimits{2});
  small.add_datagram("a:1|c\nb:1|c\nc:1|c");
  EXPECT_EQ(small.rejected(), 1u);
}

TEST(Statsd, TheSocketTakesDatagramsFromOtherPrograms) {
  const std::string dir = temp_dir("statsd");
  const std::string path = dir + "/statsd.sock";
  auto socket = StatsdSocket::bind(path);
  ASSERT_TRUE(socket.ok()) << socket.error().to_string();
  const int client = ::socket(AF_UNIX, SOCK_DGRAM, 0);
  sockaddr_un to{};
  to.sun_family = AF_UNIX;
  std::strncpy(to.sun_path, path.c_str(), sizeof to.sun_path - 1);
  for (const std::string msg : {"door_open:1|c", "door_open:1|c\nbattery:3.7|g"}) {
    ASSERT_EQ(
        ::sendto(client, msg.data(), msg.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to),
        static_cast<ssize_t>(msg.size()));
  }
  ::close(client);
  StatsdAggregator a;
  EXPECT_EQ(socket->drain(a), 2u);
  std::map<std::string, double> got;
  for (const auto& s : a.flush(kStart)) got[key_of(s)] = s.samples.at(0).value;
  EXPECT_EQ(got["door_open_total"], 2);
  EXPECT_EQ(got["battery"], 3.7);
}

protocol::TelemetryRules rules(std::vector<protocol::MetricRule> metrics) {
  return protocol::make_telemetry_rules(std::move(metrics));
}

TEST(MetricAggregator, AggregatesPerIntervalAndPassesTheRestRaw) {
  using F = protocol::AggregateFunction;
  MetricAggregator a;
  a.set_rules(rules({{"speed", seconds(60), {F::kMin, F::kMax, F::kMean, F::kLast, F::kCount}}}),
              kStart);
  std::vector<TelemetrySeries> in = {{"speed", {{"axle", "1"}}, {}}, {"rpm", {}, {}}};
  for (int s = 0; s < 120; ++s) {
    in[0].samples.push_back({kStart + s * 1000, static_cast<double>(s)});
    in[1].samples.push_back({kStart + s * 1000, 1000.0 + s});
  }
  a.add(in);
  auto out = a.take(kStart + 119'000);
  std::map<std::string, std::vector<Sample>> got;
  for (auto& s : out) got[key_of(s)] = s.samples;
  EXPECT_EQ(got["rpm"].size(), 120u) << "no rule: raw";
  // The first window (kStart - 60 s, kStart] holds the sample at kStart alone; the second
  // (kStart, kStart + 60 s] holds s = 1..60. The third is still open.
  ASSERT_EQ(got["speed,agg=max,axle=1"].size(), 2u);
  EXPECT_EQ(got["speed,agg=max,axle=1"][1].t_ms, kStart + 60'000);
  EXPECT_EQ(got["speed,agg=max,axle=1"][1].value, 60);
  EXPECT_EQ(got["speed,agg=min,axle=1"][1].value, 1);
  EXPECT_EQ(got["speed,agg=mean,axle=1"][1].value, 30.5);
  EXPECT_EQ(got["speed,agg=last,axle=1"][1].value, 60);
  EXPECT_EQ(got["speed,agg=count,axle=1"][1].value, 60);
  EXPECT_EQ(a.next_due_ms(), kStart + 120'000);
  auto rest = a.take(kStart + 120'000);
  ASSERT_EQ(rest.size(), 5u);
  EXPECT_EQ(rest[0].samples[0].value, 59) << "s = 61..119";
  // A changed rule closes what was open under the old one; "*" covers the rest.
  a.add({{"speed", {{"axle", "1"}}, {{kStart + 121'000, 5}}}});
  a.set_rules(rules({{"*", seconds(10), {F::kMax}}}), kStart + 121'000);
  auto closed = a.take(kStart + 121'000);
  ASSERT_EQ(closed.size(), 5u);
  for (const auto& s : closed) {
    EXPECT_EQ(s.samples.at(0).t_ms, kStart + 121'000) << "closed now, not at its end to come";
  }
  a.add({{"rpm", {}, {{kStart + 125'000, 7}, {kStart + 129'000, 9}}}});
  auto star = a.take(kStart + 130'000);
  ASSERT_EQ(star.size(), 1u);
  EXPECT_EQ(key_of(star[0]), "rpm,agg=max");
  EXPECT_EQ(star[0].samples[0].value, 9);
}

TEST(TelemetryRules, RoundTripAndRefuseNonsense) {
  using F = protocol::AggregateFunction;
  auto r = rules({{"speed", seconds(60), {F::kMax, F::kMin}}, {"door", Duration(0), {}}});
  EXPECT_EQ(r.etag.size(), 16u);
  auto back = protocol::decode_telemetry_rules(protocol::encode_telemetry_rules(r));
  ASSERT_TRUE(back.ok()) << back.error().to_string();
  EXPECT_EQ(*back, r);
  EXPECT_EQ(rules({}).etag, "");
  EXPECT_NE(rules({{"speed", seconds(30), {F::kMax}}}).etag,
            rules({{"speed", seconds(60), {F::kMax}}}).etag);
  for (const char* bad :
       {"", "[]", "{\"etag\":1,\"metrics\":[]}", "{\"etag\":\"x\"}",
        "{\"etag\":\"x\",\"metrics\":[{\"metric\":\"9bad\"}]}",
        "{\"etag\":\"x\",\"metrics\":[{\"metric\":\"a\",\"interval_s\":60}]}",
        "{\"etag\":\"x\",\"metrics\":[{\"metric\":\"a\",\"aggregates\":[\"max\"]}]}",
        "{\"etag\":\"x\",\"metrics\":[{\"metric\":\"a\",\"interval_s\":-1,\"aggregates\":[\"max\"]}"
        "]}",
        "{\"etag\":\"x\",\"metrics\":[{\"metric\":\"a\",\"interval_s\":60,\"aggregates\":[\"p99\"]}"
        "]}"}) {
    EXPECT_FALSE(protocol::decode_telemetry_rules(bad).ok()) << bad;
  }
}

// A small machine under `root`: what the collectors read.
void fake_machine(const std::string& root, const std::string& boot_id) {
  write_file(root + "/proc/stat", "cpu  100 0 100 700 100 0 0 0 0 0\ncpu0 1 2 3 4\n");
  write_file(root + "/proc/meminfo",
             "MemTotal:        2048000 kB\nMemFree:  1000 kB\nMemAvailable:    1024000 kB\n");
  write_file(root + "/proc/self/status", "Name:\tdrover-agent\nVmRSS:\t    7000 kB\n");
  write_file(root + "/proc/uptime", "12345.67 20000.00\n");
  write_file(root + "/proc/sys/kernel/random/boot_id", boot_id + "\n");
  write_file(root + "/sys/class/thermal/thermal_zone0/temp", "47500\n");
  write_file(root + "/sys/class/thermal/thermal_zone0/type", "cpu-thermal\n");
  write_file(root + "/proc/net/route",
             "Iface\tDestination\tGateway\tFlags\n"
             "wlan0\t0000A8C0\t00000000\t0001\n"
             "wlan0\t00000000\t0100A8C0\t0003\n");
  write_file(root + "/sys/class/net/wlan0/operstate", "up\n");
  fs::create_directories(root + "/sys/class/net/wlan0/wireless");
  write_file(root + "/proc/net/wireless",
             "Inter-| sta-|   Quality        |   Discarded packets\n"
             " face | tus | link level noise |  nwid  crypt\n"
             " wlan0: 0000   54.  -56.  -256        0      0\n");
  write_file(root + "/sys/class/power_supply/BAT0/type", "Battery\n");
  write_file(root + "/sys/class/power_supply/BAT0/capacity", "83\n");
  write_file(root + "/sys/class/power_supply/BAT0/voltage_now", "3712000\n");
  write_file(root + "/sys/class/power_supply/BAT0/temp", "251\n");
  write_file(root + "/sys/class/power_supply/BAT0/status", "Discharging\n");
  write_file(root + "/sys/class/power_supply/AC/type", "Mains\n");
  write_file(root + "/sys/class/power_supply/AC/online", "0\n");
}

std::map<std::string, double> values(const std::vector<TelemetrySeries>& series) {
  std::map<std::string, double> out;
  for (const auto& s : series) out[key_of(s)] = s.samples.at(0).value;
  return out;
}

TEST(SystemCollector, ReadsProcAndSysUnderItsRoot) {
  const std::string root = temp_dir("collect");
  fake_machine(root, "boot-1");
  CollectorOptions o;
  o.root = root;
  o.boots_file = root + "/boots";
  SystemCollector c(o);
  Collected first = c.collect(kStart);
  EXPECT_TRUE(first.problems.empty()) << first.problems.front();
  auto v = values(first.routine);
  EXPECT_EQ(v.count("cpu_usage_ratio"), 0u) << "a ratio needs two rounds";
  EXPECT_EQ(v["memory_available_bytes"], 1024000.0 * 1024);
  EXPECT_EQ(v["memory_total_bytes"], 2048000.0 * 1024);
  EXPECT_EQ(v["agent_rss_bytes"], 7000.0 * 1024);
  EXPECT_GT(v["disk_total_bytes,mount=/"], 0);
  EXPECT_EQ(v["temperature_celsius,type=cpu-thermal,zone=0"], 47.5);
  EXPECT_EQ(v["uptime_seconds"], 12345.67);
  EXPECT_EQ(v["reboots_total"], 0);
  EXPECT_EQ(v["link_up,iface=wlan0,type=wifi"], 1);
  EXPECT_EQ(v["wifi_signal_dbm,iface=wlan0"], -56);
  EXPECT_EQ(v["wifi_link_quality,iface=wlan0"], 54);
  EXPECT_EQ(v["battery_level_percent,supply=BAT0"], 83);
  EXPECT_DOUBLE_EQ(v["battery_voltage_volts,supply=BAT0"], 3.712);
  EXPECT_DOUBLE_EQ(v["battery_temperature_celsius,supply=BAT0"], 25.1);
  EXPECT_EQ(v["battery_charging,supply=BAT0"], 0);
  EXPECT_EQ(v["power_online,supply=AC"], 0);
  EXPECT_TRUE(first.urgent.empty()) << "a first start is no reboot";
  // 100 more busy jiffies of 400: a quarter.
  write_file(root + "/proc/stat", "cpu  150 0 150 900 200 0 0 0 0 0\n");
  auto second = values(c.collect(kStart + 60'000).routine);
  EXPECT_DOUBLE_EQ(second["cpu_usage_ratio"], 100.0 / 400);
}

TEST(SystemCollector, ARebootIsCountedWithItsReason) {
  const std::string root = temp_dir("reboots");
  fake_machine(root, "boot-1");
  CollectorOptions o;
  o.root = root;
  o.boots_file = root + "/boots";
  o.cpu = o.memory = o.disk = o.temperature = o.uptime = o.link = o.battery = false;
  auto boot = [&](const std::string& id) {
    write_file(root + "/proc/sys/kernel/random/boot_id", id + "\n");
    return SystemCollector(o);
  };
  {
    SystemCollector c = boot("boot-1");
    c.collect(kStart);
    ASSERT_TRUE(c.boot_recorded().ok());
  }
  {
    SystemCollector c = boot("boot-1");  // the agent restarted, the machine did not
    EXPECT_TRUE(c.collect(kStart + 1).urgent.empty());
  }
  {
    SystemCollector c = boot("boot-2");  // power cut: no clean stop before it
    Collected got = c.collect(kStart + 2);
    EXPECT_EQ(values(got.urgent)["reboot,reason=unclean"], 1);
    EXPECT_EQ(values(got.routine)["reboots_total"], 1);
    // Not yet on record (its event was not queued): the next round tells it again.
    EXPECT_EQ(values(c.collect(kStart + 3).urgent)["reboot,reason=unclean"], 1);
    ASSERT_TRUE(c.boot_recorded().ok());
    EXPECT_TRUE(c.collect(kStart + 4).urgent.empty());
    ASSERT_TRUE(c.note_clean_stop().ok());
  }
  {
    SystemCollector c = boot("boot-3");
    EXPECT_EQ(values(c.collect(kStart + 3).urgent)["reboot,reason=shutdown"], 2);
    ASSERT_TRUE(c.boot_recorded().ok());
  }
  write_file(root + "/sys/class/watchdog/watchdog0/bootstatus", "32\n");
  {
    SystemCollector c = boot("boot-4");
    EXPECT_EQ(values(c.collect(kStart + 4).urgent)["reboot,reason=watchdog"], 3);
    ASSERT_TRUE(c.boot_recorded().ok());
  }
  fs::remove_all(root + "/sys/class/watchdog");
  write_file(root + "/sys/fs/pstore/dmesg-ramoops-0", "Kernel panic\n");
  {
    SystemCollector c = boot("boot-5");
    EXPECT_EQ(values(c.collect(kStart + 5).urgent)["reboot,reason=kernel_panic"], 4);
    ASSERT_TRUE(c.boot_recorded().ok());
  }
  {
    // The panic's record is still in pstore: the next reboot is not blamed on it.
    SystemCollector c = boot("boot-6");
    EXPECT_EQ(values(c.collect(kStart + 6).urgent)["reboot,reason=unclean"], 5);
  }
}

TEST(SystemCollector, MissingFilesAreProblemsNotFailures) {
  const std::string root = temp_dir("empty-machine");
  CollectorOptions o;
  o.root = root;
  o.disks = {"/nonexistent"};
  SystemCollector c(o);
  Collected got = c.collect(kStart);
  EXPECT_FALSE(got.problems.empty());
  // No default route: said so, as a link that is down.
  EXPECT_EQ(values(got.routine)["link_up,iface=,type=none"], 0);
}

// Plays ModemManager's mmcli for one modem, in its key-value output, and records every
// command line.
class FakeMmcli final : public CommandRunner {
 public:
  std::string path = "/org/freedesktop/ModemManager1/Modem/0";
  std::string state = "connected";
  std::vector<std::string> techs = {"lte"};
  std::string quality = "67", recent = "yes";
  std::string signal_rate = "0";  // until --signal-setup; "" leaves the line out
  // Failure injection, per call: "status", "signal" or "setup".
  std::string exits_1, times_out;
  bool not_installed = false;
  std::vector<std::vector<std::string>> calls;

  Result<CommandResult> run(const std::vector<std::string>& argv, Duration timeout,
                            const Environment& env) override {
    calls.push_back(argv);
    EXPECT_EQ(timeout, seconds(5));
    EXPECT_EQ(env, (Environment{{"LC_ALL", "C"}})) << "numbers in the C locale's form";
    if (not_installed) return io_error("cannot run mmcli: No such file or directory");
    EXPECT_EQ(argv.size() >= 3 ? argv[0] + " " + argv[1] + " " + argv[2] : "", "mmcli -m any");
    const std::string which = argv.size() == 4 && argv[3] == "--output-keyvalue" ? "status"
                              : argv.size() == 5 && argv[3] == "--signal-get"    ? "signal"
                              : argv.size() == 4 && argv[3].rfind("--signal-setup=", 0) == 0
                                  ? "setup"
                                  : "";
    EXPECT_NE(which, "") << "unexpected mmcli call";
    if (times_out == which) return CommandResult{-1, true, ""};
    if (exits_1 == which) {
      return CommandResult{1, false,
                           "\n(mmcli:" + std::to_string(calls.size()) +
                               "): GLib-WARNING **: noise\nerror: couldn't do " + which + "\n"};
    }
    if (which == "status") return CommandResult{0, false, status()};
    if (which == "signal") {
      std::string out = signal_rate.empty() ? ""
                                            : "modem.dbus-path : " + path +
                                                  "\nmodem.signal.refresh.rate : " + signal_rate;
      return CommandResult{0, false, out + R"(
modem.signal.cdma1x.rssi                      : --
modem.signal.umts.rscp                        : --
modem.signal.lte.rssi                         : -61.00
modem.signal.lte.rsrq                         : -9.00
modem.signal.lte.rsrp                         : -89.00
modem.signal.lte.snr                          : 12.40
modem.signal.5g.rsrp                          : --
modem.signal.threshold.rssi                   : 0
modem.signal.threshold.error-rate             : no
)"};
    }
    signal_rate = argv[3].substr(15);
    return CommandResult{0, false, "successfully setup extended signal quality information\n"};
  }

 private:
  std::string status() const {
    std::string out = "modem.dbus-path                                 : " + path + R"(
modem.generic.model                             : EG25-G
modem.generic.ports.length                      : 2
modem.generic.ports.value[1]                    : cdc-wdm0 (qmi)
modem.generic.ports.value[2]                    : wwan0 (net)
modem.generic.state                             : )" +
                      state + "\n";
    if (techs.empty()) {
      out += "modem.generic.access-technologies               : --\n";
    } else {
      out += "modem.generic.access-technologies.length        : " + std::to_string(techs.size()) +
             "\n";
      for (size_t i = 0; i < techs.size(); ++i) {
        out += "modem.generic.access-technologies.value[" + std::to_string(i + 1) +
               "]      : " + techs[i] + "\n";
      }
    }
    return out + "modem.generic.signal-quality.value              : " + quality +
           "\nmodem.generic.signal-quality.recent             : " + recent +
           "\nmodem.3gpp.operator-name                        : Carrier : Roaming\n";
  }
};

CollectorOptions modem_only(const std::string& name) {
  CollectorOptions o;
  o.root = temp_dir(name);
  o.cpu = o.memory = o.disk = o.temperature = o.uptime = o.reboots = o.link = o.battery = false;
  o.modem = true;
  o.modem_signal_rate_s = 30;
  return o;
}

TEST(SystemCollector, MmcliKeyValueOutputIsParsed) {
  auto kv = parse_mmcli_keyvalue(
      "modem.generic.state     : registered\n"
      "no separator here\n"
      " : no key\n"
      "modem.generic.state     : connected\n"  // the first wins
      "modem.3gpp.operator-name : A : B\r\n"
      "modem.generic.sim : /org/freedesktop/ModemManager1/SIM/0");
  EXPECT_EQ(kv.size(), 3u);
  EXPECT_EQ(kv["modem.generic.state"], "registered");
  EXPECT_EQ(kv["modem.3gpp.operator-name"], "A : B");
  EXPECT_EQ(kv["modem.generic.sim"], "/org/freedesktop/ModemManager1/SIM/0");
  EXPECT_TRUE(parse_mmcli_keyvalue("").empty());
}

TEST(SystemCollector, TheModemsStateIsReadAsModemManagerMeansIt) {
  FakeMmcli mmcli;
  mmcli.signal_rate = "30";
  SystemCollector c(modem_only("modem-states"), real_file_system(), mmcli);
  // ModemManager's states in their order: registered from "registered" on.
  const std::pair<std::string, int> states[] = {
      {"failed", 0},    {"unknown", 0},    {"initializing", 0},  {"locked", 0},
      {"disabled", 0},  {"disabling", 0},  {"enabling", 0},      {"enabled", 0},
      {"searching", 0}, {"registered", 1}, {"disconnecting", 1}, {"connecting", 1},
      {"connected", 1}, {"--", 0}};
  int64_t t = kStart;
  for (const auto& [state, registered] : states) {
    mmcli.state = state;
    auto v = values(c.collect(t += 60'000).routine);
    EXPECT_EQ(v["cellular_modem_present"], 1) << state;
    EXPECT_EQ(v["cellular_registered"], registered) << state;
    EXPECT_EQ(v["cellular_connected"], state == "connected" ? 1 : 0) << state;
  }
  // The access technology as the label, ModemManager's names kept (5gnr as 5g, the name the
  // radio measurements use).
  const std::pair<std::vector<std::string>, std::string> techs[] = {{{"lte-cat-m"}, "lte-cat-m"},
                                                                    {{"lte-nb-iot"}, "lte-nb-iot"},
                                                                    {{"5gnr", "lte"}, "5g"},
                                                                    {{"hspa-plus"}, "hspa-plus"},
                                                                    {{}, "unknown"},
                                                                    {{"LTE"}, "lte"},
                                                                    {{"l t e"}, "unknown"}};
  for (const auto& [given, label] : techs) {
    mmcli.techs = given;
    auto v = values(c.collect(t += 60'000).routine);
    EXPECT_EQ(v["cellular_signal_quality_percent,tech=" + label], 67) << label;
  }
}

TEST(SystemCollector, TheModemIsReadThroughModemManager) {
  FakeMmcli mmcli;
  SystemCollector c(modem_only("modem"), real_file_system(), mmcli);
  // The extended report is off: it is switched on at the modem's telemetry rate.
  Collected first = c.collect(kStart);
  EXPECT_TRUE(first.problems.empty()) << first.problems.front();
  auto v = values(first.routine);
  EXPECT_EQ(v["cellular_modem_present"], 1);
  EXPECT_EQ(v["cellular_registered"], 1);
  EXPECT_EQ(v["cellular_connected"], 1);
  EXPECT_EQ(v["cellular_signal_quality_percent,tech=lte"], 67);
  EXPECT_EQ(v.count("cellular_rsrp_dbm,tech=lte"), 0u) << "not measured before the setup";
  ASSERT_EQ(mmcli.calls.size(), 3u);
  EXPECT_EQ(mmcli.calls[2], (std::vector<std::string>{"mmcli", "-m", "any", "--signal-setup=30"}));
  Collected second = c.collect(kStart + 30'000);
  auto v2 = values(second.routine);
  EXPECT_EQ(v2["cellular_rssi_dbm,tech=lte"], -61);
  EXPECT_EQ(v2["cellular_rsrp_dbm,tech=lte"], -89);
  EXPECT_EQ(v2["cellular_rsrq_db,tech=lte"], -9);
  EXPECT_DOUBLE_EQ(v2["cellular_snr_db,tech=lte"], 12.4);
  EXPECT_EQ(second.routine.size(), 8u) << "'--' is not a measurement, a threshold not a signal";
  EXPECT_EQ(mmcli.calls.size(), 5u);

  // A stale quality is not reported; a report switched off again by someone else is left
  // off for this modem.
  mmcli.recent = "no";
  mmcli.signal_rate = "0";
  auto third = c.collect(kStart + 60'000);
  EXPECT_EQ(third.routine.size(), 3u);
  EXPECT_EQ(mmcli.calls.size(), 7u) << "no second --signal-setup";
  // The modem was reset: a new modem object, whose report is off. It is switched on again.
  mmcli.recent = "yes";
  mmcli.path = "/org/freedesktop/ModemManager1/Modem/1";
  c.collect(kStart + 90'000);
  EXPECT_EQ(mmcli.calls.back(),
            (std::vector<std::string>{"mmcli", "-m", "any", "--signal-setup=30"}));
  // An mmcli that does not say its refresh rate: its measurements are read as they come.
  mmcli.signal_rate = "";
  EXPECT_EQ(values(c.collect(kStart + 120'000).routine)["cellular_rsrp_dbm,tech=lte"], -89);

  // The modem is gone: said once in the log (its error line, not GLib's noise), and as 0s.
  mmcli.exits_1 = "status";
  Collected gone = c.collect(kStart + 150'000);
  ASSERT_EQ(gone.problems.size(), 1u);
  EXPECT_EQ(gone.problems[0], "modem: none found: error: couldn't do status");
  EXPECT_EQ(values(gone.routine)["cellular_modem_present"], 0);
  EXPECT_EQ(values(gone.routine)["cellular_connected"], 0);
  EXPECT_TRUE(c.collect(kStart + 180'000).problems.empty()) << "the same problem is not repeated";
  mmcli.exits_1 = "";
  mmcli.signal_rate = "0";
  Collected back = c.collect(kStart + 210'000);
  EXPECT_TRUE(back.problems.empty());
  EXPECT_EQ(mmcli.calls.back(),
            (std::vector<std::string>{"mmcli", "-m", "any", "--signal-setup=30"}))
      << "the modem that came back is asked for its report again";
  mmcli.exits_1 = "status";
  EXPECT_EQ(c.collect(kStart + 240'000).problems.size(), 1u) << "gone again: said again";
  mmcli.exits_1 = "";
}

TEST(SystemCollector, AModemThatFailsCostsItsSamplesAndIsLeftAloneForAWhile) {
  FakeMmcli mmcli;
  SystemCollector c(modem_only("modem-failing"), real_file_system(), mmcli);
  int64_t t = kStart;
  // The report cannot be switched on: said, and not tried again for this modem.
  mmcli.exits_1 = "setup";
  Collected setup = c.collect(t += 60'000);
  ASSERT_EQ(setup.problems.size(), 1u);
  EXPECT_EQ(setup.problems[0], "modem: --signal-setup failed: error: couldn't do setup");
  EXPECT_EQ(c.collect(t += 60'000).problems.size(), 0u);
  EXPECT_EQ(mmcli.calls.size(), 5u);
  // A modem without the extended report: said once, --signal-get not run again.
  mmcli.path = "/org/freedesktop/ModemManager1/Modem/7";
  mmcli.exits_1 = "signal";
  Collected no_signal = c.collect(t += 60'000);
  ASSERT_EQ(no_signal.problems.size(), 1u);
  EXPECT_EQ(no_signal.problems[0], "modem: no radio measurements: error: couldn't do signal");
  EXPECT_EQ(values(no_signal.routine)["cellular_signal_quality_percent,tech=lte"], 67);
  const size_t calls = mmcli.calls.size();
  EXPECT_TRUE(c.collect(t += 60'000).problems.empty());
  EXPECT_EQ(mmcli.calls.size(), calls + 1) << "the status only";
  mmcli.exits_1 = "";

  // A hung mmcli: the round loses its modem samples, and the next ten rounds do not wait.
  mmcli.times_out = "status";
  Collected hung = c.collect(t += 60'000);
  EXPECT_TRUE(hung.routine.empty());
  ASSERT_EQ(hung.problems.size(), 1u);
  EXPECT_EQ(hung.problems[0],
            "modem: mmcli took longer than its timeout; trying again in 10 rounds");
  const size_t before_rest = mmcli.calls.size();
  for (int i = 0; i < 10; ++i) EXPECT_TRUE(c.collect(t += 60'000).routine.empty());
  EXPECT_EQ(mmcli.calls.size(), before_rest);
  mmcli.times_out = "";
  EXPECT_EQ(values(c.collect(t += 60'000).routine)["cellular_modem_present"], 1);

  // No ModemManager at all: said once, tried every eleventh round.
  mmcli.not_installed = true;
  Collected missing = c.collect(t += 60'000);
  ASSERT_EQ(missing.problems.size(), 1u);
  EXPECT_NE(missing.problems[0].find("is ModemManager installed?"), std::string::npos);
  const size_t tried = mmcli.calls.size();
  for (int i = 0; i < 11; ++i) EXPECT_TRUE(c.collect(t += 60'000).problems.empty());
  EXPECT_EQ(mmcli.calls.size(), tried + 1);
}

class TelemetryAgentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = temp_dir("agent");
    fake_machine(dir_ + "/root", "boot-1");
  }
  TelemetryOptions options() {
    TelemetryOptions o;
    o.collectors.root = dir_ + "/root";
    o.collectors.boots_file = dir_ + "/boots";
    o.interval = seconds(10);
    o.send_every = seconds(60);
    o.queue.dir = dir_ + "/queue";
    o.queue.stream_seed = 5;
    return o;
  }
  std::string dir_;
  ManualClock clock_{Timestamp(Duration(kStart))};
  RecordingServer server_;
};

// Runs the agent's loop on the manual clock until `until`.
void run_until(TelemetryAgent& agent, ManualClock& clock, Timestamp until) {
  while (clock.now() < until) {
    const Duration wait = agent.run_once();
    clock.advance_to(std::min(until, clock.now() + std::max(wait, Duration(1))));
  }
  agent.run_once();
}

TEST_F(TelemetryAgentTest, OfflineForHoursThenEverySampleArrivesOnce) {
  TelemetryAgent agent(options(), server_, clock_, 1);
  ASSERT_TRUE(agent.start().ok());
  server_.up = false;
  run_until(agent, clock_, clock_.now() + hours(6));
  EXPECT_EQ(server_.batches, 0u);
  EXPECT_EQ(agent.status().queue.dropped_total, 0u);
  const uint64_t queued = agent.status().queue.samples;
  EXPECT_GT(queued, 6u * 360 * 15) << "6 h of rounds every 10 s, ~17 series each";
  server_.up = true;
  run_until(agent, clock_, clock_.now() + hours(1));
  // Only the last minute's rounds may still wait for their send (send_every).
  EXPECT_LE(agent.status().queue.samples, 7u * 17);
  const auto& uptime = server_.stored["uptime_seconds"];
  ASSERT_GE(uptime.size(), 7u * 360 + 1 - 6) << "every round of 7 h but the last minute's";
  EXPECT_EQ(uptime.front().t_ms, kStart);
  for (size_t i = 1; i < uptime.size(); ++i) EXPECT_EQ(uptime[i].t_ms - uptime[i - 1].t_ms, 10'000);
  EXPECT_EQ(server_.out_of_order, 0u);
  EXPECT_EQ(server_.retries, 0u);
  EXPECT_EQ(agent.status().queue.dropped_total, 0u);
}

TEST_F(TelemetryAgentTest, FollowsTheServersRulesAndKeepsThemAcrossARestart) {
  using F = protocol::AggregateFunction;
  server_.rules = rules({{"battery_level_percent", minutes(1), {F::kMax, F::kMin}}});
  {
    TelemetryAgent agent(options(), server_, clock_, 1);
    ASSERT_TRUE(agent.start().ok());
    run_until(agent, clock_, clock_.now() + minutes(10));
    EXPECT_EQ(agent.status().rules, server_.rules.etag);
    agent.stop();
  }
  EXPECT_EQ(server_.stored.count("battery_level_percent,supply=BAT0"), 0u) << "aggregated";
  const auto& max = server_.stored["battery_level_percent,agg=max,supply=BAT0"];
  EXPECT_GE(max.size(), 9u);
  EXPECT_LE(max.size(), 11u);
  EXPECT_EQ(server_.stored["uptime_seconds"].size(), 61u) << "no rule: raw";
  // Offline, after a restart: the saved rules still apply.
  server_.up = false;
  const uint64_t fetches = server_.rule_fetches;
  TelemetryAgent again(options(), server_, clock_, 2);
  ASSERT_TRUE(again.start().ok());
  EXPECT_EQ(again.status().rules, server_.rules.etag);
  run_until(again, clock_, clock_.now() + minutes(5));
  server_.up = true;
  server_.rules = rules({});  // the operator dropped the rule
  run_until(again, clock_, clock_.now() + minutes(5));
  EXPECT_GT(server_.rule_fetches, fetches);
  EXPECT_EQ(again.status().rules, "");
  EXPECT_GE(server_.stored["battery_level_percent,agg=max,supply=BAT0"].size(), 14u);
  EXPECT_GT(server_.stored["battery_level_percent,supply=BAT0"].size(), 0u) << "raw again";
}

TEST_F(TelemetryAgentTest, ARebootIsSentAsUrgent) {
  {
    TelemetryAgent agent(options(), server_, clock_, 1);
    ASSERT_TRUE(agent.start().ok());
    run_until(agent, clock_, clock_.now() + minutes(1));
  }
  write_file(dir_ + "/root/proc/sys/kernel/random/boot_id", "boot-2\n");
  TelemetryAgent agent(options(), server_, clock_, 1);
  ASSERT_TRUE(agent.start().ok());
  run_until(agent, clock_, clock_.now() + minutes(1));
  EXPECT_EQ(server_.stored["reboot,reason=unclean"].size(), 1u);
}

}  // namespace
}  // namespace drover::agent
