#include "transport/http/telemetry_api.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <future>
#include <nlohmann/json.hpp>

#include "../common/answered.h"
#include "../common/fleet_fixture.h"
#include "transport/http/device_api.h"

namespace drover::http {
namespace {

using drover::testing::Fleet;
using nlohmann::json;
using security::SigningKey;
using security::to_base64url;

class TelemetryApiTest : public ::testing::Test {
 protected:
  TelemetryApiTest() {
    char tmpl[] = "/tmp/drover-telemetry-api-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    AuthOptions o;
    o.enrollment_tokens = {"factory-token"};
    auth = std::make_unique<DeviceAuth>(*f.service, f.clock,
                                        *security::TokenSigner::create(std::string(32, 'k')), o);
    tsdb = std::move(telemetry::TimeSeriesStore::open(real_file_system(), dir_, f.clock).value());
    telemetry =
        std::make_unique<telemetry::TelemetryService>(*tsdb, *f.service, f.store(), f.clock);
    add_device_api(router, *auth, *f.service);
    add_telemetry_device_api(router, *auth, *telemetry);
    add_telemetry_operator_api(router, tokens, *telemetry, profiles, f.clock);
    viewer = tokens.create("v", Role::kViewer, Duration(0))->text;
    operator_token = tokens.create("o", Role::kOperator, Duration(0))->text;
  }
  ~TelemetryApiTest() override {
    telemetry.reset();
    tsdb.reset();
    std::filesystem::remove_all(dir_);
  }

  // What the server would send: made on a worker when offloaded, after its wait when
  // deferred (a failed wait is a 503, as the server answers it).
  static Response finish(Response r) {
    r = drover::testing::answered(std::move(r));
    if (r.defer) {
      std::promise<Status> done;
      r.defer([&done](Status s) { done.set_value(std::move(s)); });
      if (!done.get_future().get().ok()) return Response::error(503, "io", "not durable");
      r.defer = nullptr;
    }
    return r;
  }

  Response request(const std::string& method, const std::string& target, std::string body,
                   const std::string& token,
                   std::vector<std::pair<std::string, std::string>> headers = {}) {
    Request r;
    r.method = method;
    r.target = target;
    r.body = std::move(body);
    r.headers = std::move(headers);
    if (!token.empty()) r.headers.emplace_back("Authorization", "Bearer " + token);
    return finish(router(r));
  }

  std::string enroll_and_login(const std::string& id, const SigningKey& device_key) {
    json body = {{"device_id", id},
                 {"device_type", "probe"},
                 {"hardware_revision", "rev-a"},
                 {"public_key", to_base64url(device_key.public_key())},
                 {"installed", {{"firmware", "1.0.0"}}},
                 {"enrollment_token", "factory-token"}};
    EXPECT_EQ(request("POST", "/api/device/v1/enroll", body.dump(), "").status, 200);
    const Response c =
        request("POST", "/api/device/v1/auth/challenge", json{{"device_id", id}}.dump(), "");
    const std::string challenge = json::parse(c.body)["challenge"];
    const Response t =
        request("POST", "/api/device/v1/auth/token",
                json{{"device_id", id},
                     {"challenge", challenge},
                     {"signature",
                      to_base64url(device_key.sign(DeviceAuth::challenge_message(id, challenge)))}}
                    .dump(),
                "");
    return json::parse(t.body)["token"];
  }

  Response send(const std::string& token, const protocol::TelemetryBatch& b, bool zstd = true) {
    return request(
        "POST", "/api/device/v1/telemetry",
        zstd ? protocol::encode_telemetry_batch(b) : protocol::encode_telemetry_cbor(b), token,
        {{"Content-Type", "application/cbor"}, {"Content-Encoding", zstd ? "zstd" : "identity"}});
  }

  int64_t now() const { return f.clock.now().time_since_epoch().count(); }

  Fleet f;
  std::string dir_;
  OperatorTokens tokens{f.store(), f.clock};
  ProfileService profiles{f.store()};
  std::unique_ptr<DeviceAuth> auth;
  std::unique_ptr<telemetry::TimeSeriesStore> tsdb;
  std::unique_ptr<telemetry::TelemetryService> telemetry;
  Router router;
  std::string viewer, operator_token;
  SigningKey key = std::move(SigningKey::generate()).value();
};

TEST_F(TelemetryApiTest, ADeviceSendsABatchAndAnOperatorReadsItWithAges) {
  const std::string token = enroll_and_login("probe-1", key);
  protocol::TelemetryBatch b;
  b.stream = 9;
  b.sequence = 1;
  b.series.push_back({"soil_moisture", {}, {{now() - 120'000, 30.5}, {now() - 60'000, 31.0}}});
  b.series.push_back({"temp_c", {{"sensor", "probe"}}, {{now() - 60'000, 12.25}}});
  Response r = send(token, b);
  ASSERT_EQ(r.status, 200) << r.body;
  json answer = json::parse(r.body);
  EXPECT_EQ(answer["accepted"], 3);
  EXPECT_EQ(answer["retry"], false);
  EXPECT_TRUE(tsdb->durable(1)) << "answered only once durable";
  r = send(token, b, false);  // the same batch again, plain CBOR this time: a retry
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(json::parse(r.body)["retry"], true);

  f.clock.advance(seconds(30));
  r = request("GET", "/api/v1/devices/probe-1/telemetry", "", viewer);
  ASSERT_EQ(r.status, 200) << r.body;
  json latest = json::parse(r.body);
  ASSERT_EQ(latest["series"].size(), 2u);
  EXPECT_EQ(latest["series"][0]["metric"], "soil_moisture");
  EXPECT_EQ(latest["series"][0]["value"], 31.0);
  EXPECT_EQ(latest["series"][0]["age_s"], 90.0);
  EXPECT_EQ(latest["series"][1]["labels"]["sensor"], "probe");

  r = request("GET", "/api/v1/devices/probe-1/telemetry/temp_c?from=1h&label=sensor:probe", "",
              viewer);
  ASSERT_EQ(r.status, 200) << r.body;
  json range = json::parse(r.body);
  EXPECT_EQ(range["resolution"], "raw");
  ASSERT_EQ(range["points"].size(), 1u);
  EXPECT_EQ(range["points"][0]["value"], 12.25);
  EXPECT_EQ(range["points"][0]["age_s"], 90.0);
  r = request("GET", "/api/v1/devices/probe-1/telemetry/soil_moisture?from=1h&resolution=5m", "",
              viewer);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(json::parse(r.body)["points"][0]["count"], 2);
  EXPECT_EQ(request("GET", "/api/v1/devices/probe-1/telemetry/nothing", "", viewer).status, 404);
  EXPECT_EQ(
      request("GET", "/api/v1/devices/probe-1/telemetry/temp_c?from=tomorrow", "", viewer).status,
      400);
}

TEST_F(TelemetryApiTest, BadBatchesAreRefusedWithClearErrorsAndStoreNothing) {
  const std::string token = enroll_and_login("probe-1", key);
  protocol::TelemetryBatch b;
  b.stream = 9;
  b.sequence = 1;
  b.series.push_back({"x", {}, {{now(), 1}}});
  std::string body = protocol::encode_telemetry_batch(b);
  EXPECT_EQ(request("POST", "/api/device/v1/telemetry", body, token, {}).status, 415);
  EXPECT_EQ(request("POST", "/api/device/v1/telemetry", body, token,
                    {{"Content-Type", "application/cbor"}, {"Content-Encoding", "gzip"}})
                .status,
            415);
  Response r = request("POST", "/api/device/v1/telemetry", body.substr(0, body.size() / 2), token,
                       {{"Content-Type", "application/cbor"}, {"Content-Encoding", "zstd"}});
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_EQ(request("POST", "/api/device/v1/telemetry", body, "",
                    {{"Content-Type", "application/cbor"}, {"Content-Encoding", "zstd"}})
                .status,
            401);
  // Past the series limit of one device: 422, and nothing of the batch is kept.
  protocol::TelemetryBatch wide;
  wide.stream = 9;
  wide.sequence = 2;
  for (int i = 0; i < 101; ++i) {
    wide.series.push_back({"m", {{"i", std::to_string(i)}}, {{now(), 1}}});
  }
  r = send(token, wide);
  EXPECT_EQ(r.status, 422) << r.body;
  EXPECT_NE(r.body.find("label cardinality"), std::string::npos);
  EXPECT_TRUE(tsdb->keys("probe-1/").empty());
}

TEST_F(TelemetryApiTest, ProfilesAreWrittenByOperatorsAndJudgeFreshness) {
  const std::string token = enroll_and_login("probe-1", key);
  const std::string profile =
      R"({"device_type": "probe", "telemetry": {"report_every": "6h", "late_after": "30m"}})";
  EXPECT_EQ(request("PUT", "/api/v1/profiles/probe", profile, viewer).status, 403);
  Response r = request("PUT", "/api/v1/profiles/probe", profile, operator_token);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(json::parse(r.body)["telemetry"]["stale_after"], "18h30m");
  EXPECT_EQ(request("PUT", "/api/v1/profiles/other", profile, operator_token).status, 400);
  EXPECT_EQ(request("GET", "/api/v1/profiles/nope", "", viewer).status, 404);
  EXPECT_EQ(json::parse(request("GET", "/api/v1/profiles", "", viewer).body)["profiles"].size(),
            1u);

  protocol::TelemetryBatch b;
  b.stream = 1;
  b.sequence = 1;
  b.series.push_back({"soil_moisture", {}, {{now(), 30}}});
  ASSERT_EQ(send(token, b).status, 200);
  f.clock.advance(hours(5));
  r = request("GET", "/api/v1/telemetry/freshness?device_type=probe", "", viewer);
  ASSERT_EQ(r.status, 200) << r.body;
  json fresh = json::parse(r.body);
  EXPECT_EQ(fresh["counts"]["fresh"], 1);
  EXPECT_EQ(fresh["devices"][0]["state"], "fresh");
  EXPECT_EQ(fresh["devices"][0]["data_age_s"], 5 * 3600.0);
  f.clock.advance(hours(14));
  fresh = json::parse(request("GET", "/api/v1/telemetry/freshness?state=offline", "", viewer).body);
  EXPECT_EQ(fresh["counts"]["offline"], 1);
  ASSERT_EQ(fresh["devices"].size(), 1u);

  r = request("GET", "/api/v1/telemetry/cohort?metric=soil_moisture&from=1d&device_type=probe", "",
              viewer);
  ASSERT_EQ(r.status, 200) << r.body;
  json cohort = json::parse(r.body);
  EXPECT_EQ(cohort["devices"], 1);
  EXPECT_EQ(cohort["reporting"], 1);
  EXPECT_EQ(cohort["points"][0]["mean"], 30.0);
  EXPECT_EQ(request("GET", "/api/v1/telemetry/cohort?from=1d", "", viewer).status, 400);
}

}  // namespace
}  // namespace drover::http
