// The remote write against a real VictoriaMetrics (Debian's victoria-metrics, started here):
// samples ingested while it is not yet up, while it runs, and across an outage in the
// middle all arrive — what was ingested is exactly what VictoriaMetrics gives back, with the
// device's labels.
#include "telemetry/remote_write.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>

#include "../common/fleet_fixture.h"
#include "telemetry/telemetry_service.h"
#include "transport/http/client.h"

namespace drover::telemetry {
namespace {

using drover::testing::Fleet;
using nlohmann::json;
namespace fs = std::filesystem;

uint16_t free_port() {
  // Bind port 0, read the port, close: VictoriaMetrics takes an explicit port.
  auto probe = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(probe, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(probe, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(probe);
  return ntohs(a.sin_port);
}

class Victoria {
 public:
  Victoria(std::string storage, uint16_t port) : storage_(std::move(storage)), port_(port) {}
  ~Victoria() { stop(); }
  void start() {
    pid_ = ::fork();
    if (pid_ == 0) {
      const std::string data = "-storageDataPath=" + storage_;
      const std::string listen = "-httpListenAddr=127.0.0.1:" + std::to_string(port_);
      ::freopen("/dev/null", "w", stdout);
      ::freopen("/dev/null", "w", stderr);
      ::execlp("victoria-metrics", "victoria-metrics", data.c_str(), listen.c_str(),
               "-retentionPeriod=100y", "-dedup.minScrapeInterval=1ms", nullptr);
      ::_exit(127);
    }
  }
  void stop() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      ::waitpid(pid_, nullptr, 0);
      pid_ = 0;
    }
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  // Waits until it answers its health check.
  bool ready() const {
    for (int i = 0; i < 200; ++i) {
      auto c = http::HttpClient::create(url());
      if (c.ok()) {
        auto r = (*c)->request("GET", "/health", "");
        if (r.ok() && r->status == 200) return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }

 private:
  std::string storage_;
  uint16_t port_;
  pid_t pid_ = 0;
};

class RemoteWriteTest : public ::testing::Test {
 protected:
  RemoteWriteTest() {
    char tmpl[] = "/tmp/drover-remote-write-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    f.add_devices(2, "rev-a", "open", "probe", "1.0.0");
    StoreOptions o;
    o.wal_segment_bytes = 4 << 10;  // checkpoints while the remote store is down
    tsdb = std::move(TimeSeriesStore::open(real_file_system(), dir_ + "/tsdb", clock, o).value());
    service = std::make_unique<TelemetryService>(*tsdb, *f.service, f.store(), clock);
  }
  ~RemoteWriteTest() override {
    writer.reset();
    service.reset();
    tsdb.reset();
    fs::remove_all(dir_);
  }

  void start_writer(const std::string& url) {
    RemoteWriteOptions o;
    o.url = url + "/api/v1/write";
    o.cursor_path = dir_ + "/cursor";
    o.poll = Duration(20);
    o.min_backoff = Duration(20);
    o.max_backoff = Duration(200);
    o.max_samples_per_request = 500;
    writer = std::make_unique<RemoteWriter>(
        *tsdb, real_file_system(), clock, o,
        [this](const std::string& key) { return service->export_labels(key); });
    ASSERT_TRUE(writer->start().ok());
  }

  // Ingests `n` samples a device, times from `t`.
  void ingest(int64_t t, int n, uint64_t seq) {
    for (const std::string& id : f.ids) {
      protocol::TelemetryBatch b;
      b.stream = 1;
      b.sequence = seq;
      b.series.push_back({"soil_moisture", {{"depth", "10cm"}}, {}});
      for (int i = 0; i < n; ++i) {
        const int64_t at = t + i * 1000;
        const double v = static_cast<double>((at / 1000) % 1000) / 4.0;  // exact in any store
        b.series[0].samples.push_back({at, v});
        sent[id].push_back({at, v});
      }
      auto r = service->ingest(id, b);
      ASSERT_TRUE(r.ok()) << r.error().to_string();
      ASSERT_TRUE(tsdb->wait_durable(r->stored.lsn).ok());
      total += static_cast<uint64_t>(n);
    }
  }

  // Whether every sample ingested has been sent (by this writer and those before it).
  bool caught_up() {
    for (int i = 0; i < 600; ++i) {
      if (sent_before + writer->stats().samples_sent >= total) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }

  Fleet f;
  SystemClock clock;
  std::string dir_;
  std::unique_ptr<TimeSeriesStore> tsdb;
  std::unique_ptr<TelemetryService> service;
  std::unique_ptr<RemoteWriter> writer;
  std::map<std::string, std::vector<Sample>> sent;
  uint64_t total = 0;
  uint64_t sent_before = 0;  // by writers since replaced
};

TEST_F(RemoteWriteTest, WhatIsIngestedIsWhatVictoriaMetricsReturnsAcrossAnOutage) {
  Victoria vm(dir_ + "/vm", free_port());
  const int64_t t0 = std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count() -
                     3'600'000;
  // Before VictoriaMetrics is up: the writer fails and keeps the log.
  start_writer(vm.url());
  ingest(t0, 300, 1);
  for (int i = 0; i < 100 && writer->stats().requests_failed == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_GT(writer->stats().requests_failed, 0u);
  EXPECT_EQ(writer->stats().samples_sent, 0u);
  vm.start();
  ASSERT_TRUE(vm.ready());
  ASSERT_TRUE(caught_up()) << writer->stats().last_error;
  // An outage in the middle, with checkpoints meanwhile, and a restart of the writer.
  vm.stop();
  ingest(t0 + 300'000, 400, 2);
  ASSERT_TRUE(tsdb->checkpoint_now().ok());
  sent_before = writer->stats().samples_sent;
  writer.reset();
  start_writer(vm.url());
  ingest(t0 + 700'000, 200, 3);
  vm.start();
  ASSERT_TRUE(vm.ready());
  ASSERT_TRUE(caught_up()) << writer->stats().last_error;
  EXPECT_EQ(writer->stats().samples_dropped, 0u);
  EXPECT_EQ(writer->stats().segments_skipped, 0u);

  // What VictoriaMetrics holds, series by series.
  auto client = http::HttpClient::create(vm.url());
  ASSERT_TRUE(client.ok());
  (void)(*client)->request("GET", "/internal/force_flush", "");
  auto exported = (*client)->request("POST", "/api/v1/export", "match[]=soil_moisture&start=0",
                                     {{"Content-Type", "application/x-www-form-urlencoded"}});
  ASSERT_TRUE(exported.ok());
  ASSERT_EQ(exported->status, 200) << exported->body;
  std::map<std::string, std::vector<Sample>> got;
  std::map<std::string, json> labels;
  size_t at = 0;
  const std::string& body = exported->body;
  while (at < body.size()) {
    size_t end = body.find('\n', at);
    if (end == std::string::npos) end = body.size();
    if (end > at) {
      json line = json::parse(body.substr(at, end - at));
      const std::string device = line["metric"]["device"];
      labels[device] = line["metric"];
      for (size_t i = 0; i < line["values"].size(); ++i) {
        got[device].push_back(
            {line["timestamps"][i].get<int64_t>(), line["values"][i].get<double>()});
      }
    }
    at = end + 1;
  }
  ASSERT_EQ(got.size(), sent.size());
  for (auto& [device, samples] : sent) {
    auto& back = got[device];
    std::sort(back.begin(), back.end(),
              [](const Sample& a, const Sample& b) { return a.t_ms < b.t_ms; });
    ASSERT_EQ(back.size(), samples.size()) << device;
    for (size_t i = 0; i < samples.size(); ++i) {
      ASSERT_EQ(back[i].t_ms, samples[i].t_ms) << device << " " << i;
      ASSERT_EQ(back[i].value, samples[i].value) << device << " " << i;
    }
    const json& l = labels[device];
    EXPECT_EQ(l["__name__"], "soil_moisture");
    EXPECT_EQ(l["device_type"], "probe");
    EXPECT_EQ(l["hardware_revision"], "rev-a");
    EXPECT_EQ(l["site"], "open");
    EXPECT_EQ(l["depth"], "10cm");
  }
}

TEST(RemoteWrite, TheWriteRequestIsProtobufAsPrometheusDefinesIt) {
  // One series, one label, one sample: every byte known (prompb/remote.proto).
  std::string w = encode_write_request({{{{"__name__", "up"}}, {{1000, 1.0}}}});
  const std::string want = std::string("\x0a\x1e", 2) +  // timeseries, 30 bytes
                           std::string("\x0a\x0e", 2) +  // labels, 14 bytes
                           std::string("\x0a\x08__name__\x12\x02up", 14) +
                           std::string("\x12\x0c", 2) +  // samples, 12 bytes
                           std::string("\x09\x00\x00\x00\x00\x00\x00\xf0\x3f", 9) +
                           std::string("\x10\xe8\x07", 3);  // timestamp 1000
  EXPECT_EQ(w, want);
}

}  // namespace
}  // namespace drover::telemetry
