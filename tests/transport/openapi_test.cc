// docs/api/openapi.json (served by drover serve) against the routers it describes: the same
// routes, no more and no fewer, and each operator route's documented role is the one the
// API enforces (the role just below it is refused with 403, that role is not).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "../common/answered.h"
#include "../common/fleet_fixture.h"
#include "fleet/audit_log.h"
#include "fleet/repository_keys.h"
#include "fleet/update_repository.h"
#include "transport/http/alert_api.h"
#include "transport/http/audit_api.h"
#include "transport/http/command_api.h"
#include "transport/http/config_api.h"
#include "transport/http/device_api.h"
#include "transport/http/health_api.h"
#include "transport/http/operator_api.h"
#include "transport/http/telemetry_api.h"

namespace drover::http {
namespace {

namespace fs = std::filesystem;
using drover::testing::Fleet;
using nlohmann::json;

json openapi() {
  std::ifstream in(OPENAPI_JSON);
  std::stringstream s;
  s << in.rdbuf();
  return json::parse(s.str());
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

class OpenApiTest : public ::testing::Test {
 protected:
  OpenApiTest() {
    std::string pattern = (fs::temp_directory_path() / "drover-openapi-XXXXXX").string();
    EXPECT_NE(::mkdtemp(pattern.data()), nullptr);
    root_ = pattern;
    auth = std::make_unique<DeviceAuth>(
        *f.service, f.clock, *security::TokenSigner::create(std::string(32, 'k')), AuthOptions{});
    artifacts = std::make_unique<ArtifactService>(f.store(), *f.engine, root_ + "/artifacts");
    site_service = std::make_unique<SiteService>(f.store(), *f.engine);
    rollout_queries = std::make_unique<RolloutQueries>(f.store(), *f.engine);
    add_device_api(router, *auth, *f.service, artifacts.get());
    add_operator_api(router, {tokens, *f.service, *auth, *artifacts, *site_service,
                              *rollout_queries, *f.engine});
    add_rollout_events(
        router, {tokens, *f.service, *auth, *artifacts, *site_service, *rollout_queries, *f.engine},
        events);
    add_fleet_summary(
        router, {tokens, *f.service, *auth, *artifacts, *site_service, *rollout_queries, *f.engine},
        f.clock);
    add_rollout_timeline(
        router, {tokens, *f.service, *auth, *artifacts, *site_service, *rollout_queries, *f.engine},
        f.clock);
    // The twin is not linked here (tests/sim/predict_api_test.cc runs it behind the route):
    // this test checks only that the route is documented and guarded by its role.
    add_rollout_prediction(
        router, {tokens, *f.service, *auth, *artifacts, *site_service, *rollout_queries, *f.engine},
        f.clock,
        [](const RolloutPlan&, LiveFleet, const PredictionAssumptions&) -> Result<std::string> {
          return Error{ErrorCode::kInternal, "no twin in this test"};
        });
    tsdb = std::move(
        telemetry::TimeSeriesStore::open(real_file_system(), root_ + "/telemetry", f.clock)
            .value());
    telemetry_service =
        std::make_unique<telemetry::TelemetryService>(*tsdb, *f.service, f.store(), f.clock);
    add_telemetry_device_api(router, *auth, *telemetry_service);
    add_telemetry_operator_api(router, tokens, *telemetry_service, profiles, f.clock);
    EXPECT_TRUE(
        create_repository(real_file_system(), root_ + "/tuf", root_ + "/offline", {}, f.clock.now())
            .ok());
    repository =
        std::move(UpdateRepository::open(real_file_system(), root_ + "/tuf", f.clock).value());
    add_update_metadata(router, *repository, *auth, *f.service, *artifacts);
    audit = std::move(AuditLog::open(f.store(), real_file_system(), f.clock,
                                     {.key_path = root_ + "/audit.key",
                                      .checkpoint_path = root_ + "/audit.checkpoint"})
                          .value());
    add_audit_api(router, tokens, *audit);
    add_command_api(router, tokens, *auth, *f.service, commands);
    remediator = std::move(
        health::Remediator::create(f.store(), f.clock, *telemetry_service, commands, {}).value());
    add_alert_api(router, tokens, *remediator);
    health_view =
        std::make_unique<health::HealthView>(*telemetry_service, remediator.get(), f.clock);
    add_health_api(router, tokens, *health_view);
    add_config_api(router, tokens, *auth, *f.service, configs);
  }
  ~OpenApiTest() override {
    health_view.reset();
    remediator.reset();
    telemetry_service.reset();
    tsdb.reset();
    fs::remove_all(root_);
  }

  Fleet f;
  std::string root_;
  OperatorTokens tokens{f.store(), f.clock};
  std::unique_ptr<DeviceAuth> auth;
  std::unique_ptr<ArtifactService> artifacts;
  std::unique_ptr<SiteService> site_service;
  RolloutEventLog events;
  std::unique_ptr<RolloutQueries> rollout_queries;
  ProfileService profiles{f.store()};
  ConfigService configs{f.store(), f.clock};
  std::unique_ptr<telemetry::TimeSeriesStore> tsdb;
  std::unique_ptr<telemetry::TelemetryService> telemetry_service;
  std::unique_ptr<UpdateRepository> repository;
  std::unique_ptr<AuditLog> audit;
  CommandQueue commands{f.store(), f.clock};
  std::unique_ptr<health::Remediator> remediator;
  std::unique_ptr<health::HealthView> health_view;
  Router router;
};

TEST_F(OpenApiTest, DocumentsExactlyTheRoutesServed) {
  const json doc = openapi();
  ASSERT_EQ(doc["openapi"], "3.0.3");
  std::set<std::string> documented;
  for (const auto& [path, ops] : doc["paths"].items()) {
    for (const auto& [method, op] : ops.items()) {
      documented.insert(lower(method) + " " + path);
      EXPECT_TRUE(op.contains("summary") && op.contains("responses")) << method << " " << path;
    }
  }
  // Served by drover serve itself, beside the two APIs.
  std::set<std::string> served = {"get /api/v1/health", "get /api/openapi.json"};
  for (const auto& [method, pattern] : router.routes())
    served.insert(lower(method) + " " + pattern);
  EXPECT_EQ(documented, served);
}

TEST_F(OpenApiTest, EveryOperatorRouteEnforcesItsDocumentedRole) {
  const json doc = openapi();
  const std::map<std::string, Role> roles = {
      {"viewer", Role::kViewer}, {"operator", Role::kOperator}, {"admin", Role::kAdmin}};
  std::map<Role, std::string> token;
  for (const auto& [name, role] : roles) token[role] = tokens.create(name, role, Duration(0))->text;
  int checked = 0;
  for (const auto& [path, ops] : doc["paths"].items()) {
    for (const auto& [method, op] : ops.items()) {
      if (!op.contains("x-drover-role")) continue;
      const Role role = roles.at(op["x-drover-role"]);
      std::string target = path;
      for (const char* param :
           {"{id}", "{name}", "{version}", "{metric}", "{device_type}", "{index}"}) {
        const size_t at = target.find(param);
        if (at != std::string::npos) target.replace(at, std::string(param).size(), "x");
      }
      Request r;
      r.method = method;
      for (char& c : r.method) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      r.target = target;
      r.headers = {{"Authorization", "Bearer " + token[role]}};
      const Response allowed = testing::answered(router(r));
      EXPECT_NE(allowed.status, 401) << method << " " << path;
      EXPECT_NE(allowed.status, 403) << method << " " << path << ": " << allowed.body;
      if (role != Role::kViewer) {
        r.headers = {
            {"Authorization", "Bearer " + token[static_cast<Role>(static_cast<int>(role) - 1)]}};
        EXPECT_EQ(testing::answered(router(r)).status, 403) << method << " " << path;
      }
      r.headers.clear();
      EXPECT_EQ(testing::answered(router(r)).status, 401) << method << " " << path;
      ++checked;
    }
  }
  EXPECT_GE(checked, 25);
}

}  // namespace
}  // namespace drover::http
