#include "model/codec.h"

#include <gtest/gtest.h>

#include <functional>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>

namespace drover {
namespace {

using nlohmann::json;

const Timestamp kT0{seconds(1'773'108'000)};  // 2026-03-10T02:00:00Z

// ---------------------------------------------------------------- sample records

Device sample_device() {
  Device d;
  d.id = "dev-000123";
  d.device_type = "bms-controller";
  d.hardware_revision = "rev-c";
  d.site = "nyc-001";
  d.connectivity = "lte";
  d.tags = {"pilot", "east"};
  d.set_installed("firmware", "4.2.0");
  d.set_installed("bootloader", "2.1.0-rc.1+b7");
  d.update_state = UpdateState::kInstalling;
  d.decommissioned = true;
  d.public_key = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
  d.enrollment = Enrollment::kRejected;
  d.attributes = {{"ram_mb", "512"}, {"os", "linux 6.1 \"lts\""}};
  d.quiet_hours = {{0x1f, 7 * 60, 120}};
  d.keeps_previous = true;
  EXPECT_TRUE(validate(d).ok());
  return d;
}

Site sample_site() {
  Site s;
  s.name = "nyc-001";
  s.time_zone = "America/New_York";
  s.windows = {{0x1f, 22 * 60, 8 * 60}, {0x60, 9 * 60 + 30, 90}};
  EXPECT_TRUE(validate(s).ok());
  return s;
}

Artifact sample_artifact() {
  Artifact a;
  a.name = "firmware";
  a.version = "4.2.1";
  a.device_types = {"gateway", "bms-controller"};
  a.hardware_revisions = {"rev-b", "rev-a"};
  a.depends = {{"kernel", ">=5.10.0"}, {"bootloader", ">=2.0.0, <3.0.0"}};
  a.size_bytes = 48'000'000;
  a.sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
  EXPECT_TRUE(validate(a).ok());
  return a;
}

RolloutPlan sample_plan() {
  RolloutPlan p;
  p.name = "security-patch-4.2.1";
  p.artifact_name = "firmware";
  p.artifact_version = "4.2.1";
  p.filter.device_types = {"bms-controller"};
  p.filter.hardware_revisions = {"rev-a", "rev-c"};
  p.filter.sites = {"nyc-001"};
  p.filter.connectivity = {"lte"};
  p.filter.tags = {"pilot"};
  p.stratify_by = {StratumDimension::kSite, StratumDimension::kHardwareRevision};
  p.stages = {{"canary", 0.5, 0, minutes(30)},
              {"early", 12.25, 0, minutes(1) + seconds(30) + Duration(250)},
              {"all", 100, 0, Duration(0)}};
  p.gate = {0.02, 0.005, 0.99, 7, {}, hours(24)};
  p.gate.health = {{"battery_level_percent", HealthMeasure::kSlope, HealthDirection::kLowerIsWorse},
                   {"reboots_total", HealthMeasure::kIncrease, HealthDirection::kHigherIsWorse}};
  p.gate.health_window = hours(36);
  p.on_failure = FailurePolicy::kPause;
  p.constraints = {false, false, hours(12), 400, 50, hours(1), 1500};
  p.settle_fraction = 0.75;
  p.min_per_stratum = 3;
  EXPECT_TRUE(validate(p).ok());
  return p;
}

Rollout sample_rollout() {
  Rollout r;
  r.id = "r-0001";
  r.plan = sample_plan();
  r.state = RolloutState::kRunning;
  r.stage = 1;
  r.created_at = kT0;
  r.started_at = kT0 + minutes(30);
  r.finished_at = Timestamp{};
  r.stages = {{"canary", kT0 + minutes(30), kT0 + hours(1), kT0 + hours(2), 150},
              {"early", kT0 + hours(2), Timestamp{}, Timestamp{}, 1350}};
  r.halted = {
      {"rev-c|nyc-001", "rev-c", "nyc-001", "", "failure rate 0.4 > 0.02", FailurePolicy::kPause,
       kT0 + hours(1) + Duration(17)},
      {"rev-a|nyc-001", "rev-a", "nyc-001", "", "operator", FailurePolicy::kAbort, kT0 + hours(3)}};
  r.targets = 15'000;
  r.gates_from = Timestamp(Duration(1'791'260'000'000));
  r.created_by = "ci-pipeline";
  r.plan.allow_downgrade = true;
  r.plan.contract.max_silence = hours(36);
  r.plan.contract.by_connectivity = {{"satellite", hours(72)}, {"lte", Duration(0)}};
  return r;
}

Deployment sample_deployment() {
  Deployment d;
  d.rollout_id = "r-0001";
  d.device_id = "dev-000123";
  d.stage = 2;
  d.stratum = "rev-c|nyc-001";
  d.state = DeploymentState::kRolledBack;
  d.from_version = "4.2.0";
  d.updated_at = kT0 + Duration(123'456);
  d.offers = 3;
  d.error = "trial boot failed: \"kernel panic\"\n";
  d.switch_back = true;
  d.health_partner = "dev-000321";
  // The second metric had no data on the partner's side.
  d.health = {{-3.25, -1.5}, {2, std::numeric_limits<double>::quiet_NaN()}};
  return d;
}

ApiToken sample_api_token() {
  ApiToken t;
  t.id = "3f9c0a17b2d4e861";
  t.name = "ci-pipeline \"nightly\"";
  t.role = Role::kOperator;
  t.secret_sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
  t.created_at = kT0;
  t.expires_at = kT0 + hours(24 * 90);
  t.revoked_at = kT0 + hours(3) + Duration(7);
  EXPECT_TRUE(validate(t).ok());
  return t;
}

// ---------------------------------------------------------------- round trips

template <typename T>
void expect_round_trip(const T& value, Result<T> (*decode)(std::string_view)) {
  const std::string text = to_json(value);
  Result<T> back = decode(text);
  ASSERT_TRUE(back.ok()) << back.error().to_string() << "\n" << text;
  EXPECT_TRUE(*back == value) << text;
  EXPECT_EQ(to_json(*back), text);
}

TEST(CodecRoundTrip, Device) {
  expect_round_trip(sample_device(), &device_from_json);
  Device minimal;
  minimal.id = "d";
  minimal.device_type = "t";
  minimal.hardware_revision = "r";
  expect_round_trip(minimal, &device_from_json);
}

TEST(CodecRoundTrip, Site) {
  expect_round_trip(sample_site(), &site_from_json);
  Site always;
  always.name = "depot";
  expect_round_trip(always, &site_from_json);
}

TEST(CodecRoundTrip, Artifact) {
  expect_round_trip(sample_artifact(), &artifact_from_json);
  Artifact plain = sample_artifact();
  plain.hardware_revisions.clear();
  plain.depends.clear();
  expect_round_trip(plain, &artifact_from_json);
}

TEST(CodecRoundTrip, RolloutPlan) {
  expect_round_trip(sample_plan(), &plan_from_json);
  RolloutPlan by_count = sample_plan();
  by_count.stages = {{"one", 0, 10, Duration(0)}, {"rest", 0, 5000, hours(24 * 3)}};
  by_count.stratify_by.clear();
  by_count.filter = {};
  by_count.on_failure = FailurePolicy::kRollback;
  expect_round_trip(by_count, &plan_from_json);
}

TEST(CodecRoundTrip, RolloutWithStagesAndHaltedStrata) {
  expect_round_trip(sample_rollout(), &rollout_from_json);
  Rollout fresh;
  fresh.id = "r-2";
  fresh.plan = sample_plan();
  expect_round_trip(fresh, &rollout_from_json);
}

TEST(CodecRoundTrip, Deployment) {
  expect_round_trip(sample_deployment(), &deployment_from_json);
  expect_round_trip(Deployment{}, &deployment_from_json);
}

TEST(CodecRoundTrip, ApiToken) {
  expect_round_trip(sample_api_token(), &api_token_from_json);
  // Every role, and the zero times (never expires, not revoked).
  for (Role role : {Role::kViewer, Role::kOperator, Role::kAdmin}) {
    ApiToken t = sample_api_token();
    t.role = role;
    t.expires_at = Timestamp{};
    t.revoked_at = Timestamp{};
    expect_round_trip(t, &api_token_from_json);
  }
}

TEST(CodecDecode, ApiTokenFieldsAsWritten) {
  const json j = json::parse(to_json(sample_api_token()));
  EXPECT_EQ(j["role"], "operator");
  EXPECT_EQ(j["created_at"], 1'773'108'000'000);
  EXPECT_EQ(j["expires_at"], 1'773'108'000'000 + 90LL * 24 * 3600 * 1000);
  EXPECT_EQ(j["secret_sha256"], sample_api_token().secret_sha256);
  // The times are optional: absent means zero (never expires, not revoked).
  auto t = api_token_from_json(R"({"id": "0123456789abcdef", "name": "n", "role": "admin",
      "secret_sha256": ")" + std::string(64, 'e') +
                               R"("})");
  ASSERT_TRUE(t.ok()) << t.error().to_string();
  EXPECT_EQ(t->role, Role::kAdmin);
  EXPECT_EQ(t->created_at, Timestamp{});
  EXPECT_EQ(t->expires_at, Timestamp{});
  EXPECT_EQ(t->revoked_at, Timestamp{});
}

// ---------------------------------------------------------------- decoding details

TEST(CodecDecode, DefaultsForOptionalFields) {
  auto d = device_from_json(R"({"id": "d1", "device_type": "t", "hardware_revision": "r",
                                "tags": ["b", "a"]})");
  ASSERT_TRUE(d.ok()) << d.error().to_string();
  EXPECT_EQ(d->site, "");
  EXPECT_EQ(d->update_state, UpdateState::kIdle);
  EXPECT_FALSE(d->decommissioned);
  EXPECT_EQ(d->tags, (std::vector<std::string>{"a", "b"}));  // validation sorts
  EXPECT_EQ(d->public_key, "");
  EXPECT_EQ(d->enrollment, Enrollment::kAccepted);

  // Keys that are not 32 bytes of base64url, and unknown enrollment states, are refused.
  for (const char* bad :
       {R"({"id": "d1", "device_type": "t", "hardware_revision": "r", "public_key": "short"})",
        R"({"id": "d1", "device_type": "t", "hardware_revision": "r",
            "public_key": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHUR+"})",
        R"({"id": "d1", "device_type": "t", "hardware_revision": "r", "enrollment": "maybe"})"}) {
    EXPECT_FALSE(device_from_json(bad).ok()) << bad;
  }

  auto p = plan_from_json(R"({"name": "p", "artifact": {"name": "fw", "version": "1.0.0"},
                              "stages": [{"name": "all", "percent": 100}]})");
  ASSERT_TRUE(p.ok()) << p.error().to_string();
  RolloutPlan expected;
  expected.name = "p";
  expected.artifact_name = "fw";
  expected.artifact_version = "1.0.0";
  expected.stages = {{"all", 100, 0, Duration(0)}};
  EXPECT_TRUE(*p == expected);
}

TEST(CodecDecode, WindowsByEndOrLength) {
  auto s = site_from_json(R"({"name": "s", "maintenance_windows": [
      {"days": "mon-fri", "start": "22:00", "end": "06:00"},
      {"start": "09:00", "end": "17:30"},
      {"days": "sat,sun", "start": "01:00", "length": "2h30m"},
      {"start": "00:00", "end": "00:00"}]})");
  ASSERT_TRUE(s.ok()) << s.error().to_string();
  ASSERT_EQ(s->windows.size(), 4u);
  EXPECT_EQ(s->windows[0], (MaintenanceWindow{0x1f, 22 * 60, 8 * 60}));  // wraps midnight
  EXPECT_EQ(s->windows[1], (MaintenanceWindow{0x7f, 9 * 60, 8 * 60 + 30}));
  EXPECT_EQ(s->windows[2], (MaintenanceWindow{0x60, 60, 150}));
  EXPECT_EQ(s->windows[3], (MaintenanceWindow{0x7f, 0, 24 * 60}));
  EXPECT_EQ(s->time_zone, "UTC");
}

TEST(CodecDecode, WindowLengthsOutOfRangeOrNotWholeMinutesAreRefused) {
  for (const char* length : {"\"4294967356m\"", "\"8d\"", "\"1m59s\"", "\"0\"", "30"}) {
    const std::string doc =
        std::string(R"({"name": "s", "maintenance_windows": [{"start": "01:00", "length": )") +
        length + "}]}";
    auto s = site_from_json(doc);
    ASSERT_FALSE(s.ok()) << length;
    EXPECT_NE(s.error().message.find("length"), std::string::npos) << s.error().message;
  }
}

TEST(CodecDecode, DurationsAndSizesInEitherForm) {
  auto p = plan_from_json(R"({"name": "p", "artifact": {"name": "fw", "version": "1.0.0"},
      "stages": [{"name": "a", "percent": 10, "soak": 90}, {"name": "b", "percent": 100, "soak": "1h"}]})");
  ASSERT_TRUE(p.ok()) << p.error().to_string();
  EXPECT_EQ(p->stages[0].soak, seconds(90));
  EXPECT_EQ(p->stages[1].soak, hours(1));

  auto a = artifact_from_json(R"({"name": "fw", "version": "1.0.0", "device_types": ["t"],
      "size": "1.5MiB", "sha256": ")" +
                              std::string(64, '0') + R"("})");
  ASSERT_TRUE(a.ok()) << a.error().to_string();
  EXPECT_EQ(a->size_bytes, 1'572'864u);
}

// ---------------------------------------------------------------- strict decoding

// Encodes `value`, lets `edit` change the JSON, and returns the decoder's error message,
// after checking that decoding failed with kInvalidArgument.
template <typename T>
std::string decode_error(const T& value, Result<T> (*decode)(std::string_view),
                         const std::function<void(json&)>& edit) {
  json j = json::parse(to_json(value));
  edit(j);
  const Result<T> r = decode(j.dump());
  EXPECT_FALSE(r.ok()) << j.dump();
  if (r.ok()) return {};
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
  return r.error().message;
}

#define EXPECT_CONTAINS(haystack, needle)                               \
  do {                                                                  \
    const std::string h_ = (haystack);                                  \
    EXPECT_NE(h_.find(needle), std::string::npos) << "message: " << h_; \
  } while (false)

TEST(CodecStrict, UnknownFieldNamesThePath) {
  EXPECT_CONTAINS(
      decode_error(sample_device(), &device_from_json, [](json& j) { j["colour"] = "red"; }),
      "device.colour: unknown field");
  EXPECT_CONTAINS(decode_error(sample_site(), &site_from_json,
                               [](json& j) { j["maintenance_windows"][1]["ends"] = "10:00"; }),
                  "site.maintenance_windows[1].ends: unknown field");
  EXPECT_CONTAINS(
      decode_error(sample_artifact(), &artifact_from_json, [](json& j) { j["md5"] = "x"; }),
      "artifact.md5: unknown field");
  EXPECT_CONTAINS(
      decode_error(sample_plan(), &plan_from_json, [](json& j) { j["stages"][2]["pct"] = 5; }),
      "plan.stages[2].pct: unknown field");
  EXPECT_CONTAINS(decode_error(sample_rollout(), &rollout_from_json,
                               [](json& j) { j["plan"]["gate"]["max_fail"] = 0.1; }),
                  "rollout.plan.gate.max_fail: unknown field");
  EXPECT_CONTAINS(decode_error(sample_rollout(), &rollout_from_json,
                               [](json& j) { j["halted"][1]["why"] = "x"; }),
                  "rollout.halted[1].why: unknown field");
  EXPECT_CONTAINS(
      decode_error(sample_deployment(), &deployment_from_json, [](json& j) { j["retries"] = 1; }),
      "deployment.retries: unknown field");
  // Health gates: a pair is two numbers or nulls; a metric's fields are known.
  EXPECT_CONTAINS(decode_error(sample_deployment(), &deployment_from_json,
                               [](json& j) { j["health"][0] = json::array({1}); }),
                  "a health pair is [updated, control]");
  EXPECT_CONTAINS(decode_error(sample_deployment(), &deployment_from_json,
                               [](json& j) { j["health"][1][0] = "2"; }),
                  "a health pair's values are numbers or null");
  EXPECT_CONTAINS(decode_error(sample_plan(), &plan_from_json,
                               [](json& j) { j["gate"]["health"][0]["worse"] = "up"; }),
                  "health direction (higher or lower)");
  EXPECT_CONTAINS(decode_error(sample_plan(), &plan_from_json,
                               [](json& j) { j["gate"]["health"][1]["window"] = "1h"; }),
                  "plan.gate.health[1].window: unknown field");
  // Notably the secret itself: a record never carries it.
  EXPECT_CONTAINS(decode_error(sample_api_token(), &api_token_from_json,
                               [](json& j) { j["secret"] = "drover_x"; }),
                  "api token.secret: unknown field");
}

// A rollout stored before check-in contracts existed judges nobody silent; a plan given
// without one gets the default.
TEST(CodecStrict, ARolloutStoredWithoutAContractHasNone) {
  json j = json::parse(to_json(sample_rollout()));
  j["plan"].erase("contract");
  auto r = rollout_from_json(j.dump());
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(r->plan.contract.max_silence, Duration(0));
  EXPECT_TRUE(r->plan.contract.by_connectivity.empty());
  auto p = plan_from_json(j["plan"].dump());
  ASSERT_TRUE(p.ok()) << p.error().to_string();
  EXPECT_EQ(p->contract.max_silence, hours(24));
}

TEST(CodecStrict, RolloutOutcomeRoundTripsAndRefusesNonsense) {
  RolloutOutcome o;
  o.targets = 100;
  o.updated = 80;
  o.fell_back = 5;
  o.unhealthy_reverted = 3;
  o.reverted = 2;
  o.never_offered = 10;
  o.halted = {{"hardware_revision=rev-c", "9 of 10 failed", 20, 10, 4}};
  o.silent = 6;
  o.went_silent = 1;
  o.failed_in_revert = 2;
  o.never_offered_why = {{"hardware_revision=rev-c halted", 10}};
  auto back = outcome_from_json(to_json(o));
  ASSERT_TRUE(back.ok()) << back.error().to_string();
  EXPECT_EQ(*back, o);
  EXPECT_EQ(back->failed(), 11u);
  EXPECT_CONTAINS(decode_error(o, &outcome_from_json, [](json& j) { j["updated"] = -1; }),
                  "rollout outcome.updated");
  EXPECT_CONTAINS(decode_error(o, &outcome_from_json, [](json& j) { j["surprise"] = 1; }),
                  "rollout outcome.surprise: unknown field");
  EXPECT_CONTAINS(
      decode_error(o, &outcome_from_json, [](json& j) { j["halted"][0].erase("group"); }),
      "rollout outcome.halted[0].group: is required");
  EXPECT_CONTAINS(decode_error(o, &outcome_from_json, [](json& j) { j["targets"] = 1e12; }),
                  "rollout outcome.targets");
}

TEST(CodecStrict, MalformedApiTokens) {
  const ApiToken t = sample_api_token();
  EXPECT_CONTAINS(decode_error(t, &api_token_from_json, [](json& j) { j["role"] = "root"; }),
                  "api token.role: unknown role 'root'");
  EXPECT_CONTAINS(decode_error(t, &api_token_from_json, [](json& j) { j["role"] = "Admin"; }),
                  "unknown role 'Admin'");
  EXPECT_CONTAINS(decode_error(t, &api_token_from_json, [](json& j) { j["role"] = 2; }),
                  "api token.role");
  EXPECT_CONTAINS(decode_error(t, &api_token_from_json, [](json& j) { j.erase("role"); }),
                  "api token.role: is required");
  EXPECT_CONTAINS(decode_error(t, &api_token_from_json, [](json& j) { j.erase("id"); }),
                  "api token.id: is required");
  EXPECT_CONTAINS(decode_error(t, &api_token_from_json, [](json& j) { j.erase("name"); }),
                  "api token.name: is required");
  EXPECT_CONTAINS(decode_error(t, &api_token_from_json, [](json& j) { j.erase("secret_sha256"); }),
                  "api token.secret_sha256: is required");
  EXPECT_CONTAINS(
      decode_error(t, &api_token_from_json, [](json& j) { j["created_at"] = "yesterday"; }),
      "api token.created_at: must be an integer");
  EXPECT_CONTAINS(decode_error(t, &api_token_from_json, [](json& j) { j["expires_at"] = 1.5; }),
                  "api token.expires_at: must be an integer");
  EXPECT_CONTAINS(decode_error(t, &api_token_from_json, [](json& j) { j["revoked_at"] = true; }),
                  "api token.revoked_at: must be an integer");
  EXPECT_CONTAINS(decode_error(t, &api_token_from_json, [](json& j) { j["name"] = 7; }),
                  "api token.name");
  // Ids: exactly 16 lowercase hex digits.
  for (const char* id : {"3F9C0A17B2D4E861", "3f9c0a17b2d4e86", "3f9c0a17b2d4e8612",
                         "3f9c0a17b2d4e86g", "", "../../etc/passwd"}) {
    EXPECT_CONTAINS(decode_error(t, &api_token_from_json, [id](json& j) { j["id"] = id; }),
                    "token id must be 16 lowercase hex digits");
  }
  // Names: 1 to 128 characters, no control characters.
  EXPECT_CONTAINS(decode_error(t, &api_token_from_json, [](json& j) { j["name"] = ""; }),
                  "token name must be 1 to 128 characters");
  EXPECT_CONTAINS(
      decode_error(t, &api_token_from_json, [](json& j) { j["name"] = std::string(129, 'n'); }),
      "token name must be 1 to 128 characters");
  for (const char* name : {"line\nbreak", "tab\there", "del\x7f"}) {
    EXPECT_CONTAINS(decode_error(t, &api_token_from_json, [name](json& j) { j["name"] = name; }),
                    "token name has a control character");
  }
  // Hashes: exactly 64 lowercase hex digits.
  for (const std::string& hash : {std::string(63, 'a'), std::string(65, 'a'), std::string(64, 'A'),
                                  std::string(64, 'g'), std::string()}) {
    EXPECT_CONTAINS(
        decode_error(t, &api_token_from_json, [&hash](json& j) { j["secret_sha256"] = hash; }),
        "token secret_sha256 must be 64 lowercase hex digits");
  }
  // The longest name is fine.
  ApiToken longest = t;
  longest.name = std::string(128, 'n');
  EXPECT_TRUE(api_token_from_json(to_json(longest)).ok());
}

TEST(CodecStrict, WrongTypeNamesThePath) {
  EXPECT_CONTAINS(
      decode_error(sample_device(), &device_from_json, [](json& j) { j["tags"] = "pilot"; }),
      "device.tags: must be an array of strings");
  EXPECT_CONTAINS(decode_error(sample_device(), &device_from_json,
                               [](json& j) { j["installed"]["firmware"] = 4; }),
                  "device.installed: versions must be strings");
  EXPECT_CONTAINS(
      decode_error(sample_site(), &site_from_json, [](json& j) { j["maintenance_windows"] = 1; }),
      "site.maintenance_windows: must be an array");
  EXPECT_CONTAINS(
      decode_error(sample_artifact(), &artifact_from_json, [](json& j) { j["size"] = -1; }),
      "artifact.size: must be a size");
  EXPECT_CONTAINS(
      decode_error(sample_plan(), &plan_from_json, [](json& j) { j["settle_fraction"] = "high"; }),
      "plan.settle_fraction: must be a number");
  EXPECT_CONTAINS(decode_error(sample_plan(), &plan_from_json,
                               [](json& j) { j["constraints"]["respect_windows"] = "yes"; }),
                  "plan.constraints.respect_windows: must be true or false");
  EXPECT_CONTAINS(
      decode_error(sample_rollout(), &rollout_from_json, [](json& j) { j["created_at"] = 1.5; }),
      "rollout.created_at: must be an integer");
  EXPECT_CONTAINS(decode_error(sample_rollout(), &rollout_from_json,
                               [](json& j) { j["stages"][0]["devices"] = -3; }),
                  "rollout.stages[0].devices: must be a non-negative integer");
  EXPECT_CONTAINS(decode_error(sample_deployment(), &deployment_from_json,
                               [](json& j) { j["offers"] = 5'000'000'000; }),
                  "deployment.offers: must be at most 4294967295");
}

TEST(CodecStrict, InvalidEnumNamesThePath) {
  EXPECT_CONTAINS(decode_error(sample_device(), &device_from_json,
                               [](json& j) { j["update_state"] = "asleep"; }),
                  "device.update_state: unknown update state 'asleep'");
  EXPECT_CONTAINS(
      decode_error(sample_plan(), &plan_from_json, [](json& j) { j["on_failure"] = "explode"; }),
      "plan.on_failure: unknown failure policy 'explode'");
  EXPECT_CONTAINS(decode_error(sample_plan(), &plan_from_json,
                               [](json& j) { j["stratify_by"] = json::array({"colour"}); }),
                  "plan.stratify_by: unknown stratum dimension 'colour'");
  EXPECT_CONTAINS(
      decode_error(sample_rollout(), &rollout_from_json, [](json& j) { j["state"] = "done"; }),
      "rollout.state: unknown rollout state 'done'");
  EXPECT_CONTAINS(decode_error(sample_rollout(), &rollout_from_json,
                               [](json& j) { j["halted"][0]["policy"] = "Pause"; }),
                  "rollout.halted[0].policy: unknown failure policy 'Pause'");
  EXPECT_CONTAINS(
      decode_error(sample_deployment(), &deployment_from_json, [](json& j) { j["state"] = "ok"; }),
      "deployment.state: unknown deployment state 'ok'");
}

TEST(CodecStrict, MissingRequiredNamesThePath) {
  EXPECT_CONTAINS(decode_error(sample_device(), &device_from_json, [](json& j) { j.erase("id"); }),
                  "device.id: is required");
  EXPECT_CONTAINS(decode_error(sample_site(), &site_from_json,
                               [](json& j) { j["maintenance_windows"][0].erase("start"); }),
                  "site.maintenance_windows[0].start: is required");
  EXPECT_CONTAINS(
      decode_error(sample_artifact(), &artifact_from_json, [](json& j) { j.erase("sha256"); }),
      "artifact.sha256: is required");
  EXPECT_CONTAINS(
      decode_error(sample_plan(), &plan_from_json, [](json& j) { j.erase("artifact"); }),
      "plan.artifact: is required");
  EXPECT_CONTAINS(
      decode_error(sample_plan(), &plan_from_json, [](json& j) { j["artifact"].erase("version"); }),
      "plan.artifact.version: is required");
  EXPECT_CONTAINS(
      decode_error(sample_rollout(), &rollout_from_json, [](json& j) { j.erase("plan"); }),
      "rollout.plan: is required");
  EXPECT_CONTAINS(decode_error(sample_rollout(), &rollout_from_json,
                               [](json& j) { j["halted"][0].erase("key"); }),
                  "rollout.halted[0].key: is required");
  EXPECT_CONTAINS(
      decode_error(sample_deployment(), &deployment_from_json, [](json& j) { j.erase("state"); }),
      "deployment.state: is required");
}

TEST(CodecStrict, ValidationRunsOnDecode) {
  EXPECT_CONTAINS(decode_error(sample_device(), &device_from_json,
                               [](json& j) {
                                 j["tags"] = json::array({"a", "a"});
                               }),
                  "duplicate tag 'a'");
  EXPECT_CONTAINS(decode_error(sample_device(), &device_from_json,
                               [](json& j) { j["quiet_hours"][0]["length"] = "8d"; }),
                  "must be whole minutes, from 1m to 7d");
  EXPECT_CONTAINS(
      decode_error(sample_device(), &device_from_json,
                   [](json& j) {
                     j["quiet_hours"] = json::array();
                     for (int k = 0; k < 17; ++k)
                       j["quiet_hours"].push_back({{"start", "01:00"}, {"length", "1h"}});
                   }),
      "more than 16 quiet hours");
  EXPECT_CONTAINS(decode_error(sample_site(), &site_from_json,
                               [](json& j) { j["time_zone"] = "Nowhere/City"; }),
                  "unknown time zone 'Nowhere/City'");
  EXPECT_CONTAINS(decode_error(sample_site(), &site_from_json,
                               [](json& j) { j["maintenance_windows"][0]["end"] = "06:00"; }),
                  "site.maintenance_windows[0]: give exactly one of length and end");
  EXPECT_CONTAINS(
      decode_error(sample_artifact(), &artifact_from_json, [](json& j) { j["sha256"] = "abc"; }),
      "sha256 must be 64 lowercase hex digits");
  EXPECT_CONTAINS(
      decode_error(sample_rollout(), &rollout_from_json, [](json& j) { j["stage"] = 3; }),
      "rollout.stage: beyond the plan's last stage");
  EXPECT_CONTAINS(
      decode_error(sample_rollout(), &rollout_from_json, [](json& j) { j["id"] = "bad id"; }),
      "rollout.id: bad rollout id");
}

TEST(CodecStrict, PlanWithAnInvalidStageIsRefused) {
  // Stages that shrink.
  EXPECT_CONTAINS(decode_error(sample_plan(), &plan_from_json,
                               [](json& j) { j["stages"][1]["percent"] = 0.25; }),
                  "stage 2 (early): stages are cumulative");
  // Both percent and count.
  EXPECT_CONTAINS(
      decode_error(sample_plan(), &plan_from_json, [](json& j) { j["stages"][0]["count"] = 5; }),
      "plan.stages[0]: give exactly one of percent and count");
  // A bad soak.
  EXPECT_CONTAINS(decode_error(sample_plan(), &plan_from_json,
                               [](json& j) { j["stages"][0]["soak"] = "soon"; }),
                  "plan.stages[0].soak: bad duration 'soon'");
  // The same inside a rollout record.
  EXPECT_CONTAINS(decode_error(sample_rollout(), &rollout_from_json,
                               [](json& j) { j["plan"]["stages"][2]["percent"] = 90; }),
                  "the last stage must be 100%");
}

TEST(CodecStrict, NotJson) {
  for (auto decode : {+[](std::string_view t) { return device_from_json(t).ok(); },
                      +[](std::string_view t) { return site_from_json(t).ok(); },
                      +[](std::string_view t) { return artifact_from_json(t).ok(); },
                      +[](std::string_view t) { return plan_from_json(t).ok(); },
                      +[](std::string_view t) { return rollout_from_json(t).ok(); },
                      +[](std::string_view t) { return deployment_from_json(t).ok(); },
                      +[](std::string_view t) { return api_token_from_json(t).ok(); }}) {
    EXPECT_FALSE(decode(""));
    EXPECT_FALSE(decode("{"));
    EXPECT_FALSE(decode("[]"));
    EXPECT_FALSE(decode("null"));
  }
  // Regression (fuzz/fuzz_codec): a number too large for a double threw out of the decoder.
  for (auto decode : {+[](std::string_view t) { return device_from_json(t).ok(); },
                      +[](std::string_view t) { return plan_from_json(t).ok(); },
                      +[](std::string_view t) { return deployment_from_json(t).ok(); }}) {
    bool ok = true;
    EXPECT_NO_THROW(ok = decode(R"({"rid": 7777777777777E777})"));
    EXPECT_FALSE(ok);
  }
  const auto r = device_from_json("{\"id\": ");
  ASSERT_FALSE(r.ok());
  EXPECT_CONTAINS(r.error().message, "device: not valid JSON");
}

}  // namespace
}  // namespace drover
