// The operator API's view of what happened to each device (deployment listings and
// histories), what a rollback could do before a rollout starts, and the admin-only
// downgrade.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "../common/answered.h"
#include "../common/fleet_fixture.h"
#include "fleet/artifact_service.h"
#include "fleet/device_auth.h"
#include "fleet/operator_tokens.h"
#include "model/codec.h"
#include "transport/http/operator_api.h"

namespace drover::http {
namespace {

using drover::testing::Fleet;
using drover::testing::simple_plan;
using nlohmann::json;

class OperatorHistoryTest : public ::testing::Test {
 protected:
  OperatorHistoryTest() {
    AuthOptions o;
    auth = std::make_unique<DeviceAuth>(*f.service, f.clock,
                                        *security::TokenSigner::create(std::string(32, 'k')), o);
    artifacts = std::make_unique<ArtifactService>(f.store(), *f.engine, "/nonexistent-dir");
    site_service = std::make_unique<SiteService>(f.store(), *f.engine);
    rollout_queries = std::make_unique<RolloutQueries>(f.store(), *f.engine);
    add_operator_api(router, {tokens, *f.service, *auth, *artifacts, *site_service,
                              *rollout_queries, *f.engine});
    admin = tokens.create("root-admin", Role::kAdmin, Duration(0))->text;
    operator_ = tokens.create("ops", Role::kOperator, Duration(0))->text;
    viewer = tokens.create("watcher", Role::kViewer, Duration(0))->text;
  }

  Response call(const std::string& method, const std::string& target, const std::string& token,
                const std::string& body = {}) {
    Request r;
    r.method = method;
    r.target = target;
    r.body = body;
    r.headers.emplace_back("Authorization", "Bearer " + token);
    return testing::answered(router(r));
  }
  static json parsed(const Response& r) { return json::parse(r.body); }

  Fleet f;
  OperatorTokens tokens{f.store(), f.clock};
  std::unique_ptr<DeviceAuth> auth;
  std::unique_ptr<ArtifactService> artifacts;
  std::unique_ptr<SiteService> site_service;
  std::unique_ptr<RolloutQueries> rollout_queries;
  Router router;
  std::string admin, operator_, viewer;
};

TEST_F(OperatorHistoryTest, EachDeviceShowsEveryStepWithTheAgentsWords) {
  f.add_devices(3, "rev-a");
  const std::string id = f.start(simple_plan({{"all", 100, 0, Duration(0)}}));
  auto o = f.check_in(f.ids[0]);
  ASSERT_TRUE(o.has_value());
  for (auto e : {protocol::Report::kDownloading, protocol::Report::kInstalling,
                 protocol::Report::kRebooting}) {
    ASSERT_TRUE(f.service->report_status({f.ids[0], id, o->version, e, {}}).ok());
  }
  ASSERT_TRUE(f.service
                  ->report_status({f.ids[0], id, o->version, protocol::Report::kRolledBack,
                                   "health check 'app' failed: exit 3; output: port refused"})
                  .ok());

  Response one = call("GET", "/api/v1/rollouts/" + id + "/devices/" + f.ids[0], viewer);
  ASSERT_EQ(one.status, 200) << one.body;
  const json d = parsed(one);
  EXPECT_EQ(d["state"], "rolled_back");
  ASSERT_EQ(d["history"].size(), 5u) << d.dump(2);
  EXPECT_EQ(d["history"][0]["event"], "offer");
  EXPECT_EQ(d["history"][4]["event"], "rolled_back");
  EXPECT_EQ(d["history"][4]["message"], "health check 'app' failed: exit 3; output: port refused");
  EXPECT_EQ(d["history"][4]["at"], f.clock.now().time_since_epoch().count());

  // The listing finds the failed device by its state, and pages.
  Response failed = call("GET", "/api/v1/rollouts/" + id + "/devices?state=rolled_back", viewer);
  ASSERT_EQ(failed.status, 200) << failed.body;
  EXPECT_EQ(parsed(failed)["matched"], 1);
  EXPECT_EQ(parsed(failed)["deployments"][0]["device_id"], f.ids[0]);
  Response page = call("GET", "/api/v1/rollouts/" + id + "/devices?limit=2", viewer);
  ASSERT_EQ(page.status, 200);
  EXPECT_EQ(parsed(page)["deployments"].size(), 2u);
  EXPECT_EQ(parsed(page)["matched"], 3);
  const std::string next = parsed(page)["next"];
  Response rest = call("GET", "/api/v1/rollouts/" + id + "/devices?limit=2&after=" + next, viewer);
  EXPECT_EQ(parsed(rest)["deployments"].size(), 1u);
  EXPECT_TRUE(parsed(rest)["next"].is_null());

  EXPECT_EQ(call("GET", "/api/v1/rollouts/" + id + "/devices/nobody", viewer).status, 404);
  EXPECT_EQ(call("GET", "/api/v1/rollouts/" + id + "/devices?state=exploded", viewer).status, 400);
  EXPECT_EQ(call("GET", "/api/v1/rollouts/rollout-9999/devices", viewer).status, 404);
}

TEST_F(OperatorHistoryTest, ThePlanPreviewNamesTheTargetsARollbackCouldNotSendBack) {
  f.add_devices(2, "rev-a");                          // run 1.0.0, uploaded
  f.add_devices(2, "rev-a", "open", "ctl", "1.5.0");  // run 1.5.0, not uploaded
  RolloutPlan plan = simple_plan({{"all", 100, 0, Duration(0)}});
  Response r = call("POST", "/api/v1/rollouts/plan", viewer, to_json(plan));
  ASSERT_EQ(r.status, 200) << r.body;
  const json rb = parsed(r)["rollback"];
  EXPECT_EQ(rb["download"], 2);
  EXPECT_EQ(rb["not_revertible"], 2);
  ASSERT_EQ(rb["gaps"].size(), 1u);
  EXPECT_EQ(rb["gaps"][0]["ran"], "1.5.0");
  EXPECT_EQ(rb["gaps"][0]["missing_artifact"], "firmware@1.5.0");
  EXPECT_EQ(rb["gaps"][0]["examples"].size(), 2u);
}

TEST_F(OperatorHistoryTest, ADowngradeNeedsAnAdminAndRecordsWhoAskedForIt) {
  f.add_devices(2, "rev-a", "open", "ctl", "2.0.0");
  RolloutPlan plan = simple_plan({{"all", 100, 0, Duration(0)}});
  plan.artifact_version = "1.0.0";
  plan.allow_downgrade = true;
  Response refused = call("POST", "/api/v1/rollouts", operator_, to_json(plan));
  EXPECT_EQ(refused.status, 403) << refused.body;
  EXPECT_NE(refused.body.find("needs the admin role"), std::string::npos) << refused.body;
  EXPECT_TRUE(f.store().list_rollouts()->empty()) << "nothing was created";

  Response created = call("POST", "/api/v1/rollouts", admin, to_json(plan));
  ASSERT_EQ(created.status, 201) << created.body;
  EXPECT_EQ(parsed(created)["created_by"], "root-admin");
  EXPECT_EQ(parsed(created)["plan"]["allow_downgrade"], true);

  plan.allow_downgrade = false;
  Response plain = call("POST", "/api/v1/rollouts", operator_, to_json(plan));
  ASSERT_EQ(plain.status, 201) << plain.body;
  EXPECT_EQ(parsed(plain)["created_by"], "ops");
}

// GET /rollouts/{id}/timeline: a viewer reads each outcome at the time it happened, for the
// whole rollout, its stage, or one stratum; what does not exist is refused.
TEST_F(OperatorHistoryTest, TheTimelineShowsOutcomesOverTimeAndOneStratum) {
  add_rollout_timeline(
      router, {tokens, *f.service, *auth, *artifacts, *site_service, *rollout_queries, *f.engine},
      f.clock);
  f.add_devices(2, "rev-a");
  f.add_devices(1, "rev-b");
  const std::string id = f.start(simple_plan({{"all", 100, 0, Duration(0)}}));
  EXPECT_EQ(call("GET", "/api/v1/rollouts/rollout-9999/timeline", viewer).status, 404);
  EXPECT_EQ(call("GET", "/api/v1/rollouts/" + id + "/timeline?points=x", viewer).status, 400);
  EXPECT_EQ(call("GET", "/api/v1/rollouts/" + id + "/timeline?points=1", viewer).status, 400);
  EXPECT_EQ(call("GET", "/api/v1/rollouts/" + id + "/timeline?speed=1", viewer).status, 400);
  f.clock.advance(minutes(5));
  auto o = f.check_in(f.ids[0]);
  ASSERT_TRUE(o.has_value());
  f.clock.advance(minutes(5));
  f.install(f.ids[0], *o);

  const Response r = call("GET", "/api/v1/rollouts/" + id + "/timeline?points=3", viewer);
  ASSERT_EQ(r.status, 200) << r.body;
  const json t = parsed(r);
  ASSERT_EQ(t["at"].size(), 3u);
  EXPECT_EQ(t["series"][0]["name"], "all");
  EXPECT_EQ(t["series"][0]["offered"], json({0, 1, 1}));    // offered at minute 5 of 10
  EXPECT_EQ(t["series"][0]["succeeded"], json({0, 0, 1}));  // updated at minute 10
  EXPECT_EQ(t["series"][1]["name"], "stage:all");
  EXPECT_EQ(t["strata"], json({{"rev-a", 2}, {"rev-b", 1}}));
  const Response b = call("GET", "/api/v1/rollouts/" + id + "/timeline?stratum=rev-b", viewer);
  ASSERT_EQ(b.status, 200) << b.body;
  EXPECT_EQ(parsed(b)["series"][0]["name"], "stratum:rev-b");
  EXPECT_EQ(parsed(b)["series"][0]["offered"].back(), 0);
  EXPECT_EQ(call("GET", "/api/v1/rollouts/" + id + "/timeline?stratum=rev-z", viewer).status, 404);
}

}  // namespace
}  // namespace drover::http
