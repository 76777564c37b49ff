// POST /api/v1/rollouts/predict with the real twin behind it (transport/http/operator_api.h,
// sim/live_fleet.h): who may ask, what is refused before the twin runs, what the answer
// holds, and one prediction at a time.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <filesystem>
#include <future>
#include <nlohmann/json.hpp>
#include <thread>

#include "../common/answered.h"
#include "../common/fleet_fixture.h"
#include "fleet/artifact_service.h"
#include "fleet/site_service.h"
#include "model/codec.h"
#include "rollout/queries.h"
#include "security/crypto.h"
#include "sim/live_fleet.h"
#include "transport/http/operator_api.h"

namespace drover::sim {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr const char* kPlan = R"({
  "name": "patch", "artifact": {"name": "firmware", "version": "2.0.0"},
  "stratify_by": ["hardware_revision"],
  "stages": [{"name": "canary", "percent": 20, "soak": "10m"}, {"name": "all", "percent": 100}],
  "gate": {"max_failure_rate": 0.1, "min_sample": 3}
})";

class PredictApiTest : public ::testing::Test {
 protected:
  PredictApiTest() {
    std::string pattern = (fs::temp_directory_path() / "drover-predict-XXXXXX").string();
    EXPECT_NE(::mkdtemp(pattern.data()), nullptr);
    root_ = pattern;
    fleet_.fleet_options.poll_interval = minutes(15);
    fleet_.restart();
    fleet_.add_devices(12, "rev-a");
    fleet_.add_devices(6, "rev-b");
    auth_ = std::make_unique<DeviceAuth>(*fleet_.service, fleet_.clock,
                                         *security::TokenSigner::create(std::string(32, 'k')),
                                         AuthOptions{});
    artifacts_ =
        std::make_unique<ArtifactService>(fleet_.store(), *fleet_.engine, (root_ / "a").string());
    sites_ = std::make_unique<SiteService>(fleet_.store(), *fleet_.engine);
    queries_ = std::make_unique<RolloutQueries>(fleet_.store(), *fleet_.engine);
    http::add_rollout_prediction(
        router_,
        {tokens_, *fleet_.service, *auth_, *artifacts_, *sites_, *queries_, *fleet_.engine},
        fleet_.clock,
        [this](const RolloutPlan& plan, LiveFleet live, PredictionAssumptions assume) {
          ++runs_;
          if (hold_) {
            started_.set_value();
            release_.get_future().wait();
          }
          assume.poll_interval = minutes(15);
          return predict_on_live_fleet(plan, std::move(live), assume);
        });
    viewer_ = tokens_.create("viewer", Role::kViewer, Duration(0))->text;
  }
  ~PredictApiTest() override {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }

  http::Response post(const std::string& target, const std::string& token,
                      const std::string& body = kPlan) {
    http::Request r;
    r.method = "POST";
    r.target = target;
    r.body = body;
    if (!token.empty()) r.headers.emplace_back("Authorization", "Bearer " + token);
    return testing::answered(router_(r));
  }

  fs::path root_;
  testing::Fleet fleet_;
  OperatorTokens tokens_{fleet_.store(), fleet_.clock};
  std::unique_ptr<DeviceAuth> auth_;
  std::unique_ptr<ArtifactService> artifacts_;
  std::unique_ptr<SiteService> sites_;
  std::unique_ptr<RolloutQueries> queries_;
  http::Router router_;
  std::string viewer_;
  std::atomic<int> runs_{0};
  bool hold_ = false;
  std::promise<void> started_, release_;
};

TEST_F(PredictApiTest, AViewerGetsTheTwinsPredictionOnTheFleetAsItIs) {
  EXPECT_EQ(post("/api/v1/rollouts/predict", "").status, 401);
  // Six devices have checked in and were told when to come back; the rest are unknown.
  for (int i = 0; i < 6; ++i) fleet_.check_in(fleet_.ids[i]);
  const http::Response r = post("/api/v1/rollouts/predict?install_time=1m&horizon=2d", viewer_);
  ASSERT_EQ(r.status, 200) << r.body;
  const json j = json::parse(r.body);
  EXPECT_EQ(j["fleet"]["devices"], 18);
  EXPECT_EQ(j["fleet"]["unknown_schedule"], 12);
  EXPECT_EQ(j["fleet"]["dark"], 0);
  EXPECT_EQ(j["assumptions"]["install_time"], "1m");
  EXPECT_EQ(j["assumptions"]["horizon"], "2d");
  EXPECT_EQ(j["assumptions"]["poll_interval"], "15m");
  const json& report = j["report"];
  EXPECT_EQ(report["devices_eligible"], 18);
  EXPECT_EQ(report["devices_updated"], 18);
  EXPECT_EQ(report["rollout_state"], "completed");
  ASSERT_EQ(report["stages"].size(), 2u);
  EXPECT_TRUE(report["time_to_100_percent_s"].is_number());
  // Nothing happened to the real fleet: no rollout, every device still on 1.0.0.
  EXPECT_TRUE(fleet_.engine->loaded_rollouts().empty());
  EXPECT_EQ(fleet_.installed(fleet_.ids[0])[1].version, "1.0.0");
}

TEST_F(PredictApiTest, BadRequestsAreRefusedBeforeTheTwinRuns) {
  EXPECT_EQ(post("/api/v1/rollouts/predict?speed=1", viewer_).status, 400);
  EXPECT_EQ(post("/api/v1/rollouts/predict?horizon=91d", viewer_).status, 400);
  EXPECT_EQ(post("/api/v1/rollouts/predict?horizon=0", viewer_).status, 400);
  EXPECT_EQ(post("/api/v1/rollouts/predict?bandwidth=fast", viewer_).status, 400);
  EXPECT_EQ(post("/api/v1/rollouts/predict", viewer_, "{").status, 400);
  std::string unknown = kPlan;
  unknown.replace(unknown.find("2.0.0"), 5, "9.9.9");
  const http::Response r = post("/api/v1/rollouts/predict", viewer_, unknown);
  EXPECT_EQ(r.status, 409) << r.body;  // as a create would answer
  EXPECT_NE(r.body.find("9.9.9"), std::string::npos) << r.body;
  EXPECT_EQ(runs_.load(), 0);
}

TEST_F(PredictApiTest, OnePredictionRunsAtATime) {
  hold_ = true;
  std::thread first([&] { EXPECT_EQ(post("/api/v1/rollouts/predict", viewer_).status, 200); });
  started_.get_future().wait();
  const http::Response busy = post("/api/v1/rollouts/predict", viewer_);
  EXPECT_EQ(busy.status, 429) << busy.body;
  bool retry_after = false;
  for (const auto& [name, value] : busy.headers) retry_after |= name == "Retry-After";
  EXPECT_TRUE(retry_after);
  release_.set_value();
  first.join();
  hold_ = false;
  EXPECT_EQ(post("/api/v1/rollouts/predict", viewer_).status, 200);  // free again
  EXPECT_EQ(runs_.load(), 2);
}

// A fleet above the limit is refused on its count, before a device is copied or the twin
// runs; the devices left out of a prediction are counted.
TEST_F(PredictApiTest, AFleetAboveTheLimitIsRefusedAndTheLeftOutAreCounted) {
  http::Router small;
  int runs = 0;
  http::add_rollout_prediction(
      small, {tokens_, *fleet_.service, *auth_, *artifacts_, *sites_, *queries_, *fleet_.engine},
      fleet_.clock,
      [&runs](const RolloutPlan& plan, LiveFleet live, const PredictionAssumptions& a) {
        ++runs;
        return predict_on_live_fleet(plan, std::move(live), a);
      },
      /*max_devices=*/10);
  http::Request r;
  r.method = "POST";
  r.target = "/api/v1/rollouts/predict";
  r.body = kPlan;
  r.headers.emplace_back("Authorization", "Bearer " + viewer_);
  const http::Response refused = testing::answered(small(r));
  EXPECT_EQ(refused.status, 400) << refused.body;
  EXPECT_NE(refused.body.find("18 devices in service"), std::string::npos) << refused.body;
  EXPECT_EQ(runs, 0);

  ASSERT_TRUE(fleet_.service->decommission(fleet_.ids[0]).ok());
  const http::Response r2 = post("/api/v1/rollouts/predict", viewer_);
  ASSERT_EQ(r2.status, 200) << r2.body;
  EXPECT_EQ(json::parse(r2.body)["fleet"]["devices"], 17);
  EXPECT_EQ(json::parse(r2.body)["fleet"]["excluded"], 1);
}

}  // namespace
}  // namespace drover::sim
