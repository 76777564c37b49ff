// GET /metrics: drover serve in the Prometheus text exposition format, version 0.0.4
// (docs/architecture.md, "Metrics"): requests by route and status with latency histograms,
// device check-ins and status reports, offers made, the group commit's commits, batch sizes
// and commit latency, open connections, devices by update state, loaded rollouts by state
// and their halted strata.
//
// Who may read it: a peer on loopback without credentials (a local Prometheus or agent), and
// anyone else with an operator API token of any role — the figures name routes and counts,
// never a device or a secret.
//
// Thread-safety: observe() and render() may be called from several threads.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <utility>

#include "base/mutex.h"
#include "fleet/device_service.h"
#include "fleet/operator_tokens.h"
#include "rollout/engine.h"
#include "store/group_commit.h"
#include "transport/http/router.h"
#include "transport/http/server.h"

namespace drover::http {

class Metrics {
 public:
  struct Sources {
    GroupCommitStore* store = nullptr;         // its commits (none without)
    std::function<size_t()> open_connections;  // the server's, once it runs
    DeviceService* devices = nullptr;
    RolloutEngine* engine = nullptr;
  };
  explicit Metrics(Sources sources) : sources_(std::move(sources)) {}

  // One answered request (ServerOptions::access_log).
  void observe(const AccessRecord& record);
  // The exposition, as of now.
  std::string render() const;

  // Request latency buckets, in seconds.
  static constexpr std::array<double, 12> kLatencyBuckets = {
      0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5};

 private:
  struct Route {
    std::map<int, uint64_t> by_status;
    std::array<uint64_t, kLatencyBuckets.size() + 1> buckets{};  // not cumulative; last: +Inf
    double seconds = 0;
    uint64_t count = 0;
  };
  Sources sources_;
  mutable Mutex mu_;
  std::map<std::pair<std::string, std::string>, Route> routes_ GUARDED_BY(mu_);
  uint64_t checkins_ GUARDED_BY(mu_) = 0;
  uint64_t reports_ GUARDED_BY(mu_) = 0;
};

// GET /metrics on `router`, readable as above.
void add_metrics_route(Router& router, const Metrics& metrics, OperatorTokens& tokens);

}  // namespace drover::http
