// GET /metrics (transport/http/metrics.h): who may read it and what it counts. The whole
// exposition is checked with promtool against a real drover serve in tests/app/serve_test.cc.
#include "transport/http/metrics.h"

#include <gtest/gtest.h>

#include <string>

#include "../common/fleet_fixture.h"

namespace drover::http {
namespace {

// /metrics: loopback reads without credentials; any other peer needs an operator token (any
// role), and the exposition counts the requests observed.
TEST(Metrics, NeedATokenExceptFromLoopbackAndCountWhatWasObserved) {
  testing::Fleet f;
  OperatorTokens tokens{f.store(), f.clock};
  Router router;
  auto created = tokens.create("viewer", Role::kViewer, Duration(0));
  ASSERT_TRUE(created.ok());
  const std::string viewer = created->text;
  Metrics metrics({nullptr, {}, f.service.get(), f.engine.get()});
  add_metrics_route(router, metrics, tokens);
  AccessRecord seen;
  seen.method = "POST";
  seen.route = "/api/device/v1/checkin";
  seen.status = 200;
  seen.handler_ms = 0.7;
  metrics.observe(seen);
  auto scrape = [&](const std::string& remote, const std::string& token) {
    Request r;
    r.method = "GET";
    r.target = "/metrics";
    r.remote = remote;
    if (!token.empty()) r.headers.emplace_back("Authorization", "Bearer " + token);
    return router(r);
  };
  EXPECT_EQ(scrape("203.0.113.9:4000", "").status, 401);
  EXPECT_EQ(scrape("203.0.113.9:4000", "not-a-token").status, 401);
  const Response by_viewer = scrape("203.0.113.9:4000", viewer);
  EXPECT_EQ(by_viewer.status, 200);
  const Response local = scrape("127.0.0.1:4000", "");
  ASSERT_EQ(local.status, 200);
  EXPECT_EQ(local.content_type, "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_NE(local.body.find("drover_device_checkins_total 1\n"), std::string::npos) << local.body;
  EXPECT_NE(
      local.body.find(
          R"(drover_http_request_duration_seconds_bucket{method="POST",route="/api/device/v1/checkin",le="0.001"} 1)"),
      std::string::npos)
      << local.body;
  EXPECT_NE(local.body.find(R"(route="/api/device/v1/checkin",le="0.0005"} 0)"), std::string::npos);
  EXPECT_EQ(scrape("[::1]:4000", "").status, 401);  // not how a peer is written: refused
  EXPECT_EQ(scrape("::1:4000", "").status, 200);
}

}  // namespace
}  // namespace drover::http
