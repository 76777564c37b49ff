#include "transport/http/operator_api.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <tuple>

#include "../common/answered.h"
#include "../common/fleet_fixture.h"
#include "model/codec.h"
#include "security/crypto.h"
#include "transport/http/errors.h"

namespace drover::http {
namespace {

namespace fs = std::filesystem;
using drover::testing::Fleet;
using nlohmann::json;
using security::SigningKey;

std::string sha256_hex(std::string_view content) {
  return security::to_hex(security::sha256(content));
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Every file under `root`, with its size and hash: what a request may have written.
std::string file_tree(const fs::path& root) {
  std::string out;
  std::error_code ec;
  if (!fs::exists(root, ec)) return "(no " + root.string() + ")";
  std::vector<std::string> lines;
  for (auto it = fs::recursive_directory_iterator(root, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    const fs::path rel = fs::relative(it->path(), root);
    if (it->is_directory()) {
      lines.push_back(rel.string() + "/");
    } else {
      const std::string content = read_file(it->path());
      lines.push_back(rel.string() + " " + std::to_string(content.size()) + " " +
                      sha256_hex(content));
    }
  }
  std::sort(lines.begin(), lines.end());
  for (const std::string& l : lines) out += l + "\n";
  return out;
}

class OperatorApiTest : public ::testing::Test {
 protected:
  OperatorApiTest() {
    std::string pattern = (fs::temp_directory_path() / "drover-operator-api-XXXXXX").string();
    EXPECT_NE(::mkdtemp(pattern.data()), nullptr);
    root_ = pattern;
    artifact_dir_ = root_ / "artifacts";
    // Before anything keeps references into the fleet (add_site restarts it).
    f.add_site(Site{"north", "UTC", {}});
    AuthOptions o;
    o.enrollment_tokens = {"factory-token"};
    auth = std::make_unique<DeviceAuth>(*f.service, f.clock,
                                        *security::TokenSigner::create(std::string(32, 'k')), o);
    artifacts = std::make_unique<ArtifactService>(f.store(), *f.engine, artifact_dir_.string());
    site_service = std::make_unique<SiteService>(f.store(), *f.engine);
    rollout_queries = std::make_unique<RolloutQueries>(f.store(), *f.engine);
    add_operator_api(router, {tokens, *f.service, *auth, *artifacts, *site_service,
                              *rollout_queries, *f.engine});
    admin = make_token("admin", Role::kAdmin);
    operator_ = make_token("operator", Role::kOperator);
    viewer = make_token("viewer", Role::kViewer);
  }
  ~OperatorApiTest() override {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }

  std::string make_token(const std::string& name, Role role, Duration lifetime = Duration(0)) {
    auto created = tokens.create(name, role, lifetime);
    EXPECT_TRUE(created.ok()) << created.error().to_string();
    return created.ok() ? created->text : std::string();
  }

  Response call(const std::string& method, const std::string& target, const std::string& token,
                const std::string& body = {}) {
    Request r;
    r.method = method;
    r.target = target;
    r.body = body;
    if (!token.empty()) r.headers.emplace_back("Authorization", "Bearer " + token);
    return testing::answered(router(r));
  }
  Response get(const std::string& target, const std::string& token) {
    return call("GET", target, token);
  }
  Response put(const std::string& target, const std::string& token, const std::string& body) {
    return call("PUT", target, token, body);
  }
  Response post(const std::string& target, const std::string& token, const std::string& body = {}) {
    return call("POST", target, token, body);
  }
  static json parsed(const Response& r) {
    if (r.body.empty()) return json();
    return json::parse(r.body);
  }
  static std::string error_code(const Response& r) {
    const json j = parsed(r);
    return j.contains("error") ? j["error"]["code"].get<std::string>() : std::string("(none)");
  }

  // Everything the store holds, and every file the API may have written.
  std::string snapshot() {
    Store& st = f.store();
    std::string out;
    const auto devices = st.list_devices();
    const auto sites = st.list_sites();
    const auto artifacts_ = st.list_artifacts();
    const auto rollouts = st.list_rollouts();
    const auto api_tokens = st.list_api_tokens();
    EXPECT_TRUE(devices.ok() && sites.ok() && artifacts_.ok() && rollouts.ok() && api_tokens.ok());
    for (const Device& d : *devices) out += to_json(d) + "\n";
    for (const Site& s : *sites) out += to_json(s) + "\n";
    for (const Artifact& a : *artifacts_) out += to_json(a) + "\n";
    for (const Rollout& r : *rollouts) {
      out += to_json(r) + "\n";
      const auto deployments = st.list_deployments(r.id);
      EXPECT_TRUE(deployments.ok());
      for (const Deployment& d : *deployments) out += to_json(d) + "\n";
    }
    for (const ApiToken& t : *api_tokens) out += to_json(t) + "\n";
    out += file_tree(root_);
    return out;
  }

  // A device that enrolled without a token and waits for an operator.
  void enroll_pending(const std::string& id) {
    EnrollRequest e;
    e.device_id = id;
    e.device_type = "ctl";
    e.hardware_revision = "rev-a";
    e.public_key = key.public_key();
    e.installed = {{"firmware", "1.0.0"}, {"bootloader", "2.0.0"}};
    auto r = auth->enroll(e);
    ASSERT_TRUE(r.ok()) << r.error().to_string();
    ASSERT_EQ(*r, Enrollment::kPending);
  }

  // Enrolls `id` with the factory token and logs it in: its device bearer token.
  std::string enroll_and_login(const std::string& id) {
    EnrollRequest e;
    e.device_id = id;
    e.device_type = "ctl";
    e.hardware_revision = "rev-a";
    e.public_key = key.public_key();
    e.enrollment_token = "factory-token";
    e.installed = {{"firmware", "1.0.0"}, {"bootloader", "2.0.0"}};
    auto r = auth->enroll(e);
    EXPECT_TRUE(r.ok()) << r.error().to_string();
    auto challenge = auth->challenge(id);
    EXPECT_TRUE(challenge.ok());
    if (!challenge.ok()) return {};
    auto issued =
        auth->authenticate(id, *challenge, key.sign(DeviceAuth::challenge_message(id, *challenge)));
    EXPECT_TRUE(issued.ok()) << issued.error().to_string();
    return issued.ok() ? issued->token : std::string();
  }

  // Uploads `content` as name@version for device type ctl.
  Response upload(const std::string& name, const std::string& version, const std::string& content,
                  const std::string& extra_query = {}) {
    return put("/api/v1/artifacts/" + name + "/" + version + "?device_type=ctl" + extra_query,
               operator_, content);
  }

  static std::string plan_body(const std::string& version = "2.0.0") {
    return json({{"name", "patch"},
                 {"artifact", {{"name", "firmware"}, {"version", version}}},
                 {"stratify_by", {"hardware_revision", "site"}},
                 {"stages",
                  {{{"name", "canary"}, {"percent", 10}},
                   {{"name", "half"}, {"percent", 50}},
                   {{"name", "all"}, {"percent", 100}}}},
                 {"min_per_stratum", 2}})
        .dump();
  }

  std::string only_rollout_id() {
    auto all = f.store().list_rollouts();
    EXPECT_TRUE(all.ok());
    EXPECT_EQ(all->size(), 1u);
    return all->empty() ? std::string("none") : all->front().id;
  }

  fs::path root_, artifact_dir_;
  Fleet f;
  OperatorTokens tokens{f.store(), f.clock};
  std::unique_ptr<DeviceAuth> auth;
  std::unique_ptr<ArtifactService> artifacts;
  std::unique_ptr<SiteService> site_service;
  std::unique_ptr<RolloutQueries> rollout_queries;
  Router router;
  std::string admin, operator_, viewer;
  SigningKey key = std::move(SigningKey::generate()).value();
};

struct Route {
  std::string method, path;
};

// Every route of the operator API, with path parameters filled in.
const std::vector<Route>& all_routes() {
  static const std::vector<Route> routes = {
      {"GET", "/api/v1/devices"},
      {"GET", "/api/v1/devices/dev-1"},
      {"PUT", "/api/v1/devices/dev-1"},
      {"POST", "/api/v1/devices/dev-1/accept"},
      {"POST", "/api/v1/devices/dev-1/reject"},
      {"POST", "/api/v1/devices/dev-1/decommission"},
      {"GET", "/api/v1/sites"},
      {"PUT", "/api/v1/sites/open"},
      {"GET", "/api/v1/artifacts"},
      {"GET", "/api/v1/artifacts/firmware/2.0.0"},
      {"PUT", "/api/v1/artifacts/app/1.0.0"},
      {"DELETE", "/api/v1/artifacts/firmware/1.0.0"},
      {"GET", "/api/v1/rollouts"},
      {"POST", "/api/v1/rollouts"},
      {"POST", "/api/v1/rollouts/plan"},
      {"GET", "/api/v1/rollouts/rollout-0001"},
      {"POST", "/api/v1/rollouts/rollout-0001/start"},
      {"POST", "/api/v1/rollouts/rollout-0001/pause"},
      {"POST", "/api/v1/rollouts/rollout-0001/resume"},
      {"POST", "/api/v1/rollouts/rollout-0001/abort"},
      {"POST", "/api/v1/rollouts/rollout-0001/rollback"},
      {"GET", "/api/v1/whoami"},
      {"GET", "/api/v1/tokens"},
      {"POST", "/api/v1/tokens"},
      {"POST", "/api/v1/tokens/0123456789abcdef/revoke"},
  };
  return routes;
}

// ---------------------------------------------------------------- authentication

TEST_F(OperatorApiTest, WithoutAValidTokenEveryRouteIs401AndWritesNothing) {
  f.add_devices(2, "rev-a");
  const std::string before = snapshot();
  const std::vector<std::vector<std::pair<std::string, std::string>>> headers = {
      {},
      {{"Authorization", ""}},
      {{"Authorization", "Basic YWRtaW46YWRtaW4="}},
      {{"Authorization", "Bearer"}},
      {{"Authorization", "Bearer "}},
      {{"Authorization", "bearer " + admin}},
      {{"Authorization", "Bearer  " + admin}},
      {{"Authorization", "Bearer " + admin + " "}},
      {{"Authorization", admin}},
      {{"X-Api-Token", admin}},
  };
  for (const Route& route : all_routes()) {
    for (const auto& h : headers) {
      Request r;
      r.method = route.method;
      r.target = route.path;
      r.body = "{not json";  // authentication comes before the body
      r.headers = h;
      const Response res = testing::answered(router(r));
      EXPECT_EQ(res.status, 401) << route.method << " " << route.path << " "
                                 << (h.empty() ? "" : h[0].second);
      EXPECT_EQ(error_code(res), "unauthenticated") << route.path;
    }
  }
  EXPECT_EQ(snapshot(), before);
}

TEST_F(OperatorApiTest, MalformedUnknownRevokedAndExpiredTokensAre401) {
  const std::string expiring = make_token("expiring", Role::kAdmin, hours(1));
  const std::string revoked = make_token("revoked", Role::kAdmin);
  ASSERT_EQ(get("/api/v1/whoami", expiring).status, 200);
  ASSERT_EQ(get("/api/v1/whoami", revoked).status, 200);
  const std::string revoked_id = revoked.substr(7, 16);
  ASSERT_EQ(post("/api/v1/tokens/" + revoked_id + "/revoke", admin).status, 200);

  std::string tampered = admin;
  tampered.back() = tampered.back() == 'A' ? 'B' : 'A';
  std::string unknown = admin;
  unknown[7] = unknown[7] == '0' ? '1' : '0';
  std::vector<std::string> bad = {"x",
                                  "drover_",
                                  admin.substr(0, admin.size() - 1),
                                  admin + "A",
                                  "Drover_" + admin.substr(7),
                                  tampered,
                                  unknown,
                                  revoked};
  const std::string before = snapshot();
  for (const std::string& t : bad) {
    for (const Route& route :
         {Route{"GET", "/api/v1/whoami"}, Route{"GET", "/api/v1/devices"},
          Route{"PUT", "/api/v1/sites/open"}, Route{"POST", "/api/v1/tokens"}}) {
      const Response r = call(route.method, route.path, t, R"({"name": "open"})");
      EXPECT_EQ(r.status, 401) << t << " " << route.path;
      EXPECT_EQ(error_code(r), "unauthenticated");
      // The answer does not say which check failed.
      EXPECT_EQ(parsed(r)["error"]["message"], "invalid, expired or revoked API token") << t;
    }
  }
  EXPECT_EQ(snapshot(), before);

  // Expiry, on the fixture's clock: valid one millisecond before, refused at the instant.
  f.clock.advance(hours(1) - Duration(1));
  EXPECT_EQ(get("/api/v1/whoami", expiring).status, 200);
  f.clock.advance(Duration(1));
  EXPECT_EQ(get("/api/v1/whoami", expiring).status, 401);
  EXPECT_EQ(put("/api/v1/sites/open", expiring, R"({"name": "open"})").status, 401);
  // The others are unaffected.
  EXPECT_EQ(get("/api/v1/whoami", admin).status, 200);
}

// GET /fleet/summary: a viewer reads the counts; they are counted at most once per
// kSummaryMaxAge, so a change shows in the next answer after that, not before.
TEST_F(OperatorApiTest, TheFleetSummaryCountsAndIsReusedForAMoment) {
  add_fleet_summary(
      router, {tokens, *f.service, *auth, *artifacts, *site_service, *rollout_queries, *f.engine},
      f.clock);
  f.add_devices(2, "rev-a", "north", "ctl", "1.0.0");
  EXPECT_EQ(call("GET", "/api/v1/fleet/summary", "").status, 401);
  const Response first = call("GET", "/api/v1/fleet/summary", viewer);
  ASSERT_EQ(first.status, 200) << first.body;
  const json a = json::parse(first.body);
  EXPECT_EQ(a["devices"], 2);
  EXPECT_EQ(a["by_hardware_revision"], json({{"rev-a", 2}}));
  EXPECT_EQ(a["by_site"], json({{"north", 2}}));
  EXPECT_EQ(a["by_installed"]["firmware"], json({{"1.0.0", 2}}));
  EXPECT_EQ(a["by_state"]["idle"], 2);
  EXPECT_EQ(a["by_enrollment"], json({{"accepted", 2}, {"pending", 0}, {"rejected", 0}}));
  EXPECT_EQ(a["check_ins"]["never"], 2);
  EXPECT_EQ(a["at"], f.clock.now().time_since_epoch().count());

  f.add_devices(1, "rev-b", "north", "ctl", "1.0.0");
  f.clock.advance(kSummaryMaxAge - Duration(1));
  EXPECT_EQ(json::parse(call("GET", "/api/v1/fleet/summary", viewer).body)["devices"], 2);
  f.clock.advance(Duration(1));
  const json b = json::parse(call("GET", "/api/v1/fleet/summary", viewer).body);
  EXPECT_EQ(b["devices"], 3);
  EXPECT_EQ(b["by_hardware_revision"], json({{"rev-a", 2}, {"rev-b", 1}}));
}

TEST_F(OperatorApiTest, WhoamiSaysWhoAndWhatRole) {
  for (const auto& [token, role] : std::vector<std::pair<std::string, std::string>>{
           {admin, "admin"}, {operator_, "operator"}, {viewer, "viewer"}}) {
    const Response r = get("/api/v1/whoami", token);
    ASSERT_EQ(r.status, 200) << r.body;
    const json j = parsed(r);
    EXPECT_EQ(j["role"], role);
    EXPECT_EQ(j["name"], role);
    EXPECT_EQ(j["id"], token.substr(7, 16));
    EXPECT_TRUE(j["expires_at"].is_null());
    EXPECT_TRUE(j["revoked_at"].is_null());
    EXPECT_FALSE(j.contains("secret_sha256"));
    EXPECT_EQ(r.body.find(token.substr(24)), std::string::npos);
  }
}

// ---------------------------------------------------------------- roles

TEST_F(OperatorApiTest, AViewerCannotChangeAnything) {
  f.add_devices(6, "rev-a");
  enroll_pending("pend-1");
  enroll_pending("pend-2");
  auto victim = tokens.create("victim", Role::kViewer, Duration(0));
  ASSERT_TRUE(victim.ok());
  const std::string victim_id = victim->record.id;
  const std::string device_body =
      R"({"device_type": "ctl", "hardware_revision": "rev-b", "site": "north", "tags": ["x"]})";

  struct Step {
    std::string method;
    std::function<std::string()> path;
    std::string body;
    int admin_status;
  };
  auto fixed = [](std::string p) { return [p] { return p; }; };
  auto rollout = [this](std::string verb) {
    return [this, verb] { return "/api/v1/rollouts/" + only_rollout_id() + "/" + verb; };
  };
  // Each step is valid: the admin's identical request right after succeeds and changes the
  // store, so the viewer's 403 is the role check and nothing else.
  const std::vector<Step> steps = {
      {"PUT", fixed("/api/v1/devices/rev-a-open-1"), device_body, 200},
      {"PUT", fixed("/api/v1/devices/new-1"), device_body, 201},
      {"POST", fixed("/api/v1/devices/pend-1/accept"), "", 200},
      {"POST", fixed("/api/v1/devices/pend-2/reject"), "", 200},
      {"POST", fixed("/api/v1/devices/rev-a-open-2/decommission"), "", 200},
      {"PUT", fixed("/api/v1/sites/south"),
       R"({"name": "south", "maintenance_windows": [{"start": "01:00", "length": "2h"}]})", 200},
      {"PUT", fixed("/api/v1/artifacts/app/1.0.0?device_type=ctl"), "app content", 201},
      {"DELETE", fixed("/api/v1/artifacts/app/1.0.0"), "", 204},
      {"POST", fixed("/api/v1/rollouts"), plan_body(), 201},
      {"POST", rollout("start"), "", 200},
      {"POST", rollout("pause"), "", 200},
      {"POST", rollout("resume"), "", 200},
      {"POST", rollout("abort"), "", 200},
      {"POST", rollout("rollback"), "", 200},
      {"POST", fixed("/api/v1/tokens"), R"({"name": "new", "role": "admin"})", 201},
      {"POST", fixed("/api/v1/tokens/" + victim_id + "/revoke"), "", 200},
  };
  for (const Step& step : steps) {
    const std::string path = step.path();
    SCOPED_TRACE(step.method + " " + path);
    const std::string before = snapshot();
    const Response refused = call(step.method, path, viewer, step.body);
    EXPECT_EQ(refused.status, 403) << refused.body;
    EXPECT_EQ(error_code(refused), "permission_denied");
    EXPECT_EQ(snapshot(), before);
    const Response done = call(step.method, path, admin, step.body);
    EXPECT_EQ(done.status, step.admin_status) << done.body;
    EXPECT_NE(snapshot(), before) << "the admin's request changed nothing";
  }
}

TEST_F(OperatorApiTest, AnOperatorRunsTheFleetButNotTheTokens) {
  auto victim = tokens.create("victim", Role::kViewer, Duration(0));
  ASSERT_TRUE(victim.ok());
  const std::string before = snapshot();
  for (const Route& route : {Route{"GET", "/api/v1/tokens"}, Route{"POST", "/api/v1/tokens"},
                             Route{"POST", "/api/v1/tokens/" + victim->record.id + "/revoke"}}) {
    const Response r =
        call(route.method, route.path, operator_, R"({"name": "x", "role": "admin"})");
    EXPECT_EQ(r.status, 403) << route.method << " " << route.path << " " << r.body;
    EXPECT_EQ(error_code(r), "permission_denied");
    // The viewer fares no better.
    EXPECT_EQ(call(route.method, route.path, viewer, R"({"name": "x", "role": "admin"})").status,
              403);
  }
  EXPECT_EQ(snapshot(), before);
  EXPECT_EQ(get("/api/v1/whoami", victim->text).status, 200);  // not revoked
  // The operator may change the fleet.
  EXPECT_EQ(put("/api/v1/sites/open", operator_, R"({"name": "open"})").status, 200);
  EXPECT_EQ(upload("app", "1.0.0", "x").status, 201);
}

TEST_F(OperatorApiTest, AViewerMayReadEverythingAndPreviewAPlan) {
  f.add_devices(4, "rev-a");
  ASSERT_EQ(post("/api/v1/rollouts", operator_, plan_body()).status, 201);
  const std::string id = only_rollout_id();
  const std::string before = snapshot();
  for (const std::string& path :
       {std::string("/api/v1/devices"), std::string("/api/v1/devices/rev-a-open-1"),
        std::string("/api/v1/sites"), std::string("/api/v1/artifacts"),
        std::string("/api/v1/artifacts/firmware/2.0.0"), std::string("/api/v1/rollouts"),
        "/api/v1/rollouts/" + id, std::string("/api/v1/whoami")}) {
    const Response r = get(path, viewer);
    EXPECT_EQ(r.status, 200) << path << " " << r.body;
  }
  const Response preview = post("/api/v1/rollouts/plan", viewer, plan_body());
  ASSERT_EQ(preview.status, 200) << preview.body;
  EXPECT_EQ(parsed(preview)["targets"], 4);
  EXPECT_EQ(snapshot(), before);
}

TEST_F(OperatorApiTest, AuthenticationThenRoleThenTheRequest) {
  const std::string before = snapshot();
  // No token and a bad body: 401. A viewer and a bad body: 403. An operator: 400.
  EXPECT_EQ(post("/api/v1/rollouts", "", "{not json").status, 401);
  EXPECT_EQ(post("/api/v1/rollouts", viewer, "{not json").status, 403);
  EXPECT_EQ(post("/api/v1/rollouts", operator_, "{not json").status, 400);
  EXPECT_EQ(put("/api/v1/devices/x", viewer, "[]").status, 403);
  EXPECT_EQ(put("/api/v1/devices/x", operator_, "[]").status, 400);
  EXPECT_EQ(post("/api/v1/tokens", operator_, "{").status, 403);
  EXPECT_EQ(post("/api/v1/tokens", admin, "{").status, 400);
  // Unknown targets are 404 after authentication too.
  EXPECT_EQ(post("/api/v1/devices/nobody/accept", viewer).status, 403);
  EXPECT_EQ(post("/api/v1/devices/nobody/accept", operator_).status, 404);
  EXPECT_EQ(snapshot(), before);
}

// ---------------------------------------------------------------- devices

TEST_F(OperatorApiTest, DeviceListFilters) {
  std::vector<Device> ds;
  auto add = [&](std::string id, std::string type, std::string rev, std::string site,
                 std::string conn, std::vector<std::string> tags) {
    Device d;
    d.id = std::move(id);
    d.device_type = std::move(type);
    d.hardware_revision = std::move(rev);
    d.site = std::move(site);
    d.connectivity = std::move(conn);
    d.tags = std::move(tags);
    ds.push_back(d);
  };
  add("d1", "ctl", "rev-a", "open", "ethernet", {"pilot"});
  add("d2", "ctl", "rev-b", "north", "lte", {"pilot", "east"});
  add("d3", "gateway", "rev-a", "north", "lte", {});
  add("d4", "ctl", "rev-a", "open", "satellite", {"east"});
  ASSERT_TRUE(f.service->provision(ds).ok());
  ASSERT_TRUE(f.service->decommission("d4").ok());
  enroll_pending("d5");

  auto ids = [&](const std::string& query) {
    const Response r = get("/api/v1/devices" + query, viewer);
    EXPECT_EQ(r.status, 200) << query << " " << r.body;
    std::vector<std::string> out;
    if (r.status != 200) return out;
    const json j = parsed(r);
    for (const auto& d : j["devices"]) out.push_back(d["id"]);
    EXPECT_EQ(j["matched"], out.size()) << query;
    EXPECT_TRUE(j["next"].is_null()) << query;
    return out;
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(ids(""), (V{"d1", "d2", "d3", "d4", "d5"}));
  EXPECT_EQ(ids("?device_type=gateway"), (V{"d3"}));
  EXPECT_EQ(ids("?device_type=ctl"), (V{"d1", "d2", "d4", "d5"}));
  EXPECT_EQ(ids("?hardware_revision=rev-b"), (V{"d2"}));
  EXPECT_EQ(ids("?hardware_revision=rev-b&hardware_revision=rev-a&device_type=gateway"), (V{"d3"}));
  EXPECT_EQ(ids("?site=north"), (V{"d2", "d3"}));
  EXPECT_EQ(ids("?connectivity=lte"), (V{"d2", "d3"}));
  EXPECT_EQ(ids("?connectivity=lte&connectivity=satellite"), (V{"d2", "d3", "d4"}));
  EXPECT_EQ(ids("?tag=pilot"), (V{"d1", "d2"}));
  EXPECT_EQ(ids("?tag=pilot&tag=east"), (V{"d2"}));  // every tag
  EXPECT_EQ(ids("?tag=nothing"), V{});
  EXPECT_EQ(ids("?enrollment=pending"), (V{"d5"}));
  EXPECT_EQ(ids("?enrollment=accepted"), (V{"d1", "d2", "d3", "d4"}));
  EXPECT_EQ(ids("?enrollment=rejected"), V{});
  EXPECT_EQ(ids("?decommissioned=true"), (V{"d4"}));
  EXPECT_EQ(ids("?decommissioned=false"), (V{"d1", "d2", "d3", "d5"}));
  EXPECT_EQ(ids("?decommissioned=false&site=open&tag=pilot"), (V{"d1"}));
  EXPECT_EQ(ids("?site=n%6Frth"), (V{"d2", "d3"}));  // values are decoded

  // The records are whole.
  const Response r = get("/api/v1/devices?tag=east&decommissioned=false", viewer);
  ASSERT_EQ(r.status, 200);
  const json d2 = parsed(r)["devices"][0];
  EXPECT_EQ(d2["id"], "d2");
  EXPECT_EQ(d2["site"], "north");
  EXPECT_EQ(d2["connectivity"], "lte");
  EXPECT_EQ(d2["tags"], json({"east", "pilot"}));
}

TEST_F(OperatorApiTest, PagingVisitsEveryDeviceOnceInIdOrder) {
  f.add_devices(120, "rev-a");
  f.add_devices(70, "rev-b", "north");
  std::vector<std::string> expected = f.ids;
  std::sort(expected.begin(), expected.end());
  for (int limit : {1, 7, 100, 190, 1000}) {
    std::vector<std::string> seen;
    std::string after;
    int pages = 0;
    for (;;) {
      std::string target = "/api/v1/devices?limit=" + std::to_string(limit);
      if (!after.empty()) target += "&after=" + after;
      const Response r = get(target, viewer);
      ASSERT_EQ(r.status, 200) << target << " " << r.body;
      const json j = parsed(r);
      ++pages;
      EXPECT_EQ(j["matched"], expected.size());
      ASSERT_LE(j["devices"].size(), static_cast<size_t>(limit));
      for (const auto& d : j["devices"]) seen.push_back(d["id"]);
      if (j["next"].is_null()) break;
      ASSERT_EQ(j["devices"].size(), static_cast<size_t>(limit));
      ASSERT_EQ(j["next"], j["devices"].back()["id"]);
      after = j["next"];
      ASSERT_LT(pages, 500);
    }
    EXPECT_EQ(seen, expected) << "limit " << limit;
    EXPECT_EQ(pages, (190 + limit - 1) / limit) << "limit " << limit;
  }
  // Paging a filtered listing: matched is the filtered count.
  std::vector<std::string> seen;
  std::string after;
  for (;;) {
    const Response r = get("/api/v1/devices?hardware_revision=rev-b&limit=30" +
                               (after.empty() ? std::string() : "&after=" + after),
                           viewer);
    ASSERT_EQ(r.status, 200);
    const json j = parsed(r);
    EXPECT_EQ(j["matched"], 70);
    for (const auto& d : j["devices"]) seen.push_back(d["id"]);
    if (j["next"].is_null()) break;
    after = j["next"];
  }
  std::vector<std::string> rev_b(expected);
  std::erase_if(rev_b, [](const std::string& id) { return !id.starts_with("rev-b"); });
  EXPECT_EQ(seen, rev_b);
  // Without a limit, a page is 100.
  const json first = parsed(get("/api/v1/devices", viewer));
  EXPECT_EQ(first["devices"].size(), 100u);
  EXPECT_EQ(first["next"], expected[99]);
}

TEST_F(OperatorApiTest, BadListQueriesAre400) {
  f.add_devices(3, "rev-a");
  for (const char* query : {"?limit=0",
                            "?limit=1001",
                            "?limit=x",
                            "?limit=-1",
                            "?limit=",
                            "?limit=1.5",
                            "?limit=7abc",
                            "?limit=+5",
                            "?limit=99999999999999999999999",
                            "?limit",
                            "?colour=red",
                            "?Limit=5",
                            "?site=open&sites=open",
                            "?tags=pilot",
                            "?decommissioned=yes",
                            "?decommissioned=",
                            "?enrollment=maybe",
                            "?site=%zz",
                            "?tag=a%00b",
                            "?limit=5&debug"}) {
    const Response r = get(std::string("/api/v1/devices") + query, viewer);
    EXPECT_EQ(r.status, 400) << query << " " << r.body;
    EXPECT_EQ(error_code(r), "invalid_argument") << query;
  }
  EXPECT_EQ(get("/api/v1/devices?limit=1000", viewer).status, 200);
  EXPECT_EQ(parsed(get("/api/v1/devices?limit=1", viewer))["devices"].size(), 1u);
  EXPECT_EQ(parsed(get("/api/v1/devices?limit=001", viewer))["devices"].size(), 1u);
}

TEST_F(OperatorApiTest, ShowADevice) {
  f.add_devices(1, "rev-a");
  const Response r = get("/api/v1/devices/rev-a-open-1", viewer);
  ASSERT_EQ(r.status, 200) << r.body;
  const json j = parsed(r);
  EXPECT_EQ(j["id"], "rev-a-open-1");
  EXPECT_EQ(j["installed"]["firmware"], "1.0.0");
  for (const char* unknown : {"/api/v1/devices/nobody", "/api/v1/devices/rev-a-open-",
                              "/api/v1/devices/REV-A-OPEN-1", "/api/v1/devices/rev-a-open-1%20"}) {
    const Response missing = get(unknown, viewer);
    EXPECT_EQ(missing.status, 404) << unknown;
    EXPECT_EQ(error_code(missing), "not_found") << unknown;
  }
}

TEST_F(OperatorApiTest, RegisterThenChangeAttributesKeepsKeyAndInventory) {
  const std::string body =
      R"({"device_type": "ctl", "hardware_revision": "rev-a", "site": "open",
          "connectivity": "lte", "tags": ["pilot", "east"]})";
  const Response created = put("/api/v1/devices/dev-9", operator_, body);
  ASSERT_EQ(created.status, 201) << created.body;
  json j = parsed(created);
  EXPECT_EQ(j["id"], "dev-9");
  EXPECT_EQ(j["tags"], json({"east", "pilot"}));
  EXPECT_FALSE(j.contains("public_key"));
  EXPECT_FALSE(j.contains("enrollment"));  // an operator's device is accepted
  ASSERT_TRUE(f.service->device("dev-9").has_value());
  EXPECT_EQ(f.store().get_device("dev-9")->value(), *f.service->device("dev-9"));

  // The device enrolls (binding its key) and reports what it runs.
  const std::string device_token = enroll_and_login("dev-9");
  ASSERT_FALSE(device_token.empty());
  std::vector<InstalledComponent> inv{{"bootloader", "2.0.0"}, {"firmware", "1.0.0"}};
  ASSERT_TRUE(f.service->check_in({"dev-9", inv, UpdateState::kIdle}).ok());
  const Device enrolled = *f.service->device("dev-9");
  ASSERT_FALSE(enrolled.public_key.empty());

  // Its identity is what it enrolled as: a new revision is refused, and nothing changes.
  const std::string enrolled_state = snapshot();
  const Response renamed =
      put("/api/v1/devices/dev-9", operator_,
          R"({"device_type": "ctl", "hardware_revision": "rev-b", "site": "north"})");
  EXPECT_EQ(renamed.status, 409) << renamed.body;
  EXPECT_NE(renamed.body.find("fixed at enrollment"), std::string::npos) << renamed.body;
  EXPECT_EQ(snapshot(), enrolled_state);
  const Response changed =
      put("/api/v1/devices/dev-9", operator_,
          R"({"device_type": "ctl", "hardware_revision": "rev-a", "site": "north"})");
  ASSERT_EQ(changed.status, 200) << changed.body;
  j = parsed(changed);
  EXPECT_EQ(j["hardware_revision"], "rev-a");
  EXPECT_EQ(j["site"], "north");
  EXPECT_EQ(j["connectivity"], "");  // attributes are replaced as a whole
  EXPECT_EQ(j["tags"], json::array());
  const Device after = *f.service->device("dev-9");
  EXPECT_EQ(after.public_key, enrolled.public_key);
  EXPECT_EQ(after.installed, enrolled.installed);
  EXPECT_EQ(after.enrollment, enrolled.enrollment);
  EXPECT_EQ(f.store().get_device("dev-9")->value(), after);
  // The device still authenticates with its key.
  EXPECT_TRUE(auth->authorize(device_token).ok());

  // Bad bodies change nothing.
  const std::string before = snapshot();
  for (const std::string& bad :
       {std::string("{not json"), std::string("[]"), std::string(""),
        std::string(R"({"device_type": "ctl"})"),
        std::string(R"({"device_type": 7, "hardware_revision": "r"})"),
        std::string(R"({"device_type": "ctl", "hardware_revision": "r",
                                                 "public_key": "AAAA"})"),
        std::string(R"({"device_type": "ctl", "hardware_revision": "r",
                                                 "installed": {"firmware": "9.9.9"}})"),
        std::string(R"({"device_type": "ctl", "hardware_revision": "r",
                                                 "decommissioned": true})"),
        std::string(R"({"device_type": "ctl", "hardware_revision": "r",
                                                 "tags": ["a", "a"]})"),
        std::string(R"({"device_type": "c t l", "hardware_revision": "r"})"),
        std::string(R"({"device_type": "ctl", "hardware_revision": "r",
                                                 "site": "../etc"})")}) {
    for (const char* id : {"dev-9", "dev-new"}) {
      const Response r = put(std::string("/api/v1/devices/") + id, operator_, bad);
      EXPECT_EQ(r.status, 400) << id << " " << bad << " " << r.body;
    }
  }
  // An id that is not a valid name is refused, not registered.
  for (const char* id : {"bad%20id", "..", "%2e%2e", "a%2Fb", ".hidden"}) {
    const Response r = put(std::string("/api/v1/devices/") + id, operator_, body);
    EXPECT_EQ(r.status, 400) << id << " " << r.body;
  }
  EXPECT_EQ(snapshot(), before);
  EXPECT_EQ(f.service->device_count(), 1u);
}

// PATCH changes the fields it names and keeps the rest; POST only creates; a site must
// exist; a refused change writes nothing.
TEST_F(OperatorApiTest, PatchChangesOnlyWhatItNamesAndPostOnlyCreates) {
  const Response created = post("/api/v1/devices", operator_,
                                R"({"id": "dev-3", "device_type": "ctl", "hardware_revision":
                                    "rev-a", "site": "north", "tags": ["pilot"]})");
  ASSERT_EQ(created.status, 201) << created.body;
  EXPECT_TRUE(parsed(created)["last_seen"].is_null());
  const Response twice = post("/api/v1/devices", operator_,
                              R"({"id": "dev-3", "device_type": "gw", "hardware_revision": "x"})");
  EXPECT_EQ(twice.status, 409) << twice.body;
  EXPECT_EQ(f.service->device("dev-3")->device_type, "ctl");

  const Response tagged = call("PATCH", "/api/v1/devices/dev-3", operator_,
                               R"({"add_tags": ["east", "pilot"], "connectivity": "lte"})");
  ASSERT_EQ(tagged.status, 200) << tagged.body;
  json j = parsed(tagged);
  EXPECT_EQ(j["tags"], json({"east", "pilot"}));
  EXPECT_EQ(j["connectivity"], "lte");
  EXPECT_EQ(j["site"], "north");
  EXPECT_EQ(j["hardware_revision"], "rev-a");
  const Response untagged =
      call("PATCH", "/api/v1/devices/dev-3", operator_, R"({"remove_tags": ["pilot", "nope"]})");
  ASSERT_EQ(untagged.status, 200) << untagged.body;
  EXPECT_EQ(parsed(untagged)["tags"], json({"east"}));
  EXPECT_EQ(parsed(untagged)["connectivity"], "lte");

  const std::string before = snapshot();
  for (const auto& [target, body, status] :
       {std::tuple{"/api/v1/devices/dev-3", R"({"site": "south"})", 400},  // no such site
        std::tuple{"/api/v1/devices/dev-3", R"({"tags": ["a", "a"]})", 400},
        std::tuple{"/api/v1/devices/dev-3", R"({"id": "dev-4"})", 400},
        std::tuple{"/api/v1/devices/dev-3", R"({"public_key": "AAAA"})", 400},
        std::tuple{"/api/v1/devices/dev-3", R"({"add_tags": "east"})", 400},
        std::tuple{"/api/v1/devices/dev-3", "[]", 400},
        std::tuple{"/api/v1/devices/nobody", R"({"site": "north"})", 404}}) {
    const Response r = call("PATCH", target, operator_, body);
    EXPECT_EQ(r.status, status) << body << " " << r.body;
  }
  EXPECT_EQ(call("PATCH", "/api/v1/devices/dev-3", viewer, R"({"site": ""})").status, 403);
  EXPECT_EQ(post("/api/v1/devices", operator_,
                 R"({"id": "dev-5", "device_type": "ctl", "hardware_revision": "a",
                     "site": "south"})")
                .status,
            400);
  EXPECT_EQ(snapshot(), before);
  EXPECT_FALSE(f.service->device("nobody").has_value());

  // An empty site clears it; a record already at an unknown site may keep it.
  ASSERT_EQ(call("PATCH", "/api/v1/devices/dev-3", operator_, R"({"site": ""})").status, 200);
  EXPECT_EQ(f.service->device("dev-3")->site, "");
}

TEST_F(OperatorApiTest, AcceptAndRejectPendingDevices) {
  f.add_devices(1, "rev-a");
  enroll_pending("pend-1");
  enroll_pending("pend-2");
  ASSERT_EQ(parsed(get("/api/v1/devices/pend-1", viewer))["enrollment"], "pending");

  const Response accepted = post("/api/v1/devices/pend-1/accept", operator_);
  ASSERT_EQ(accepted.status, 200) << accepted.body;
  EXPECT_FALSE(parsed(accepted).contains("enrollment"));  // accepted is the default, not shown
  EXPECT_EQ(f.service->device("pend-1")->enrollment, Enrollment::kAccepted);
  EXPECT_EQ(f.store().get_device("pend-1")->value().enrollment, Enrollment::kAccepted);

  const Response rejected = post("/api/v1/devices/pend-2/reject", operator_);
  ASSERT_EQ(rejected.status, 200) << rejected.body;
  EXPECT_EQ(parsed(rejected)["enrollment"], "rejected");
  EXPECT_EQ(f.store().get_device("pend-2")->value().enrollment, Enrollment::kRejected);

  // Decisions are final: deciding again, or on a device that was never pending, is 409.
  const std::string before = snapshot();
  for (const char* path :
       {"/api/v1/devices/pend-1/accept", "/api/v1/devices/pend-1/reject",
        "/api/v1/devices/pend-2/accept", "/api/v1/devices/pend-2/reject",
        "/api/v1/devices/rev-a-open-1/accept", "/api/v1/devices/rev-a-open-1/reject"}) {
    const Response r = post(path, operator_);
    EXPECT_EQ(r.status, 409) << path << " " << r.body;
    EXPECT_EQ(error_code(r), "failed_precondition") << path;
  }
  EXPECT_EQ(post("/api/v1/devices/nobody/accept", operator_).status, 404);
  EXPECT_EQ(post("/api/v1/devices/nobody/reject", operator_).status, 404);
  EXPECT_EQ(snapshot(), before);

  // The accepted device may now log in; the rejected one may not.
  auto c = auth->challenge("pend-1");
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(
      auth->authenticate("pend-1", *c, key.sign(DeviceAuth::challenge_message("pend-1", *c))).ok());
  c = auth->challenge("pend-2");
  ASSERT_TRUE(c.ok());
  auto refused =
      auth->authenticate("pend-2", *c, key.sign(DeviceAuth::challenge_message("pend-2", *c)));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::kPermissionDenied);
}

TEST_F(OperatorApiTest, ADecommissionedDeviceCannotCheckIn) {
  const std::string device_token = enroll_and_login("dev-1");
  ASSERT_FALSE(device_token.empty());
  ASSERT_TRUE(auth->authorize(device_token).ok());
  std::vector<InstalledComponent> inv{{"bootloader", "2.0.0"}, {"firmware", "1.0.0"}};
  ASSERT_TRUE(f.service->check_in({"dev-1", inv, UpdateState::kIdle}).ok());

  const Response r = post("/api/v1/devices/dev-1/decommission", operator_);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(parsed(r)["decommissioned"], true);
  EXPECT_TRUE(f.store().get_device("dev-1")->value().decommissioned);

  auto checked_in = f.service->check_in({"dev-1", inv, UpdateState::kIdle});
  ASSERT_FALSE(checked_in.ok());
  EXPECT_EQ(checked_in.error().code, ErrorCode::kFailedPrecondition);
  auto authorized = auth->authorize(device_token);
  ASSERT_FALSE(authorized.ok());
  EXPECT_EQ(authorized.error().code, ErrorCode::kPermissionDenied);

  // Twice is fine and changes nothing; unknown devices are 404.
  const std::string before = snapshot();
  EXPECT_EQ(post("/api/v1/devices/dev-1/decommission", operator_).status, 200);
  EXPECT_EQ(post("/api/v1/devices/nobody/decommission", operator_).status, 404);
  EXPECT_EQ(snapshot(), before);
  EXPECT_EQ(parsed(get("/api/v1/devices?decommissioned=true", viewer))["matched"], 1);
}

// ---------------------------------------------------------------- sites

TEST_F(OperatorApiTest, SitesArePutWholeAndListed) {
  const Response r = put("/api/v1/sites/south", operator_,
                         R"({"name": "south", "time_zone": "Europe/Berlin",
                             "maintenance_windows": [{"days": "sat,sun", "start": "01:00",
                                                      "length": "2h"}]})");
  ASSERT_EQ(r.status, 200) << r.body;
  auto stored = f.store().get_site("south");
  ASSERT_TRUE(stored.ok() && stored->has_value());
  EXPECT_EQ((*stored)->time_zone, "Europe/Berlin");
  ASSERT_EQ((*stored)->windows.size(), 1u);
  EXPECT_EQ((*stored)->windows[0].length_minutes, 120);

  const json list = parsed(get("/api/v1/sites", viewer));
  std::vector<std::string> names;
  for (const auto& s : list["sites"]) names.push_back(s["name"]);
  EXPECT_EQ(names, (std::vector<std::string>{"north", "open", "south"}));

  const std::string before = snapshot();
  for (const std::string& bad :
       {std::string(R"({"name": "elsewhere"})"), std::string(R"({"time_zone": "UTC"})"),
        std::string(R"({"name": "south", "time_zone": "Nowhere/City"})"),
        std::string(
            R"({"name": "south", "maintenance_windows": [{"start": "25:00", "length": "1h"}]})"),
        std::string(R"({"name": "south", "colour": "red"})"), std::string("{"),
        std::string("[]")}) {
    const Response bad_r = put("/api/v1/sites/south", operator_, bad);
    EXPECT_EQ(bad_r.status, 400) << bad << " " << bad_r.body;
  }
  EXPECT_EQ(snapshot(), before);
}

// ---------------------------------------------------------------- artifacts

TEST_F(OperatorApiTest, UploadComputesSizeAndHashAndStoresTheContentByHash) {
  const std::string content = std::string("firmware image\0with a nul byte", 30) + "\xff\xfe";
  const std::string sha = sha256_hex(content);
  const Response r =
      upload("app", "1.2.3", content, "&hardware_revision=rev-b&hardware_revision=rev-a");
  ASSERT_EQ(r.status, 201) << r.body;
  const json j = parsed(r);
  EXPECT_EQ(j["name"], "app");
  EXPECT_EQ(j["version"], "1.2.3");
  EXPECT_EQ(j["size"], content.size());
  EXPECT_EQ(j["sha256"], sha);
  EXPECT_EQ(j["device_types"], json({"ctl"}));
  EXPECT_EQ(j["hardware_revisions"], json({"rev-a", "rev-b"}));

  const fs::path file = artifact_dir_ / sha;
  ASSERT_TRUE(fs::exists(file));
  EXPECT_EQ(read_file(file), content);
  EXPECT_EQ(file_tree(root_), "artifacts/\nartifacts/" + sha + " " +
                                  std::to_string(content.size()) + " " + sha + "\n");

  auto stored = f.store().get_artifact("app", "1.2.3");
  ASSERT_TRUE(stored.ok() && stored->has_value());
  EXPECT_EQ((*stored)->sha256, sha);
  EXPECT_EQ((*stored)->size_bytes, content.size());
  EXPECT_EQ(parsed(get("/api/v1/artifacts/app/1.2.3", viewer)), j);
  EXPECT_EQ(artifacts->path_of(**stored), file.string());

  // With the right expected hash, too.
  const Response checked = upload("app", "1.2.4", content, "&sha256=" + sha);
  EXPECT_EQ(checked.status, 201) << checked.body;
  // Both share one file.
  EXPECT_EQ(file_tree(root_), "artifacts/\nartifacts/" + sha + " " +
                                  std::to_string(content.size()) + " " + sha + "\n");
  const json list = parsed(get("/api/v1/artifacts", viewer));
  std::vector<std::string> keys;
  for (const auto& a : list["artifacts"])
    keys.push_back(a["name"].get<std::string>() + "@" + a["version"].get<std::string>());
  EXPECT_EQ(keys, (std::vector<std::string>{"app@1.2.3", "app@1.2.4", "firmware@1.0.0",
                                            "firmware@2.0.0"}));
}

TEST_F(OperatorApiTest, AHashMismatchWritesNothing) {
  const std::string before = snapshot();
  for (const std::string& expected :
       {sha256_hex("other content"), std::string(64, '0'), sha256_hex("content").substr(1) + "0",
        std::string("not-a-hash")}) {
    const Response r = upload("app", "1.0.0", "content", "&sha256=" + expected);
    EXPECT_EQ(r.status, 400) << expected << " " << r.body;
    EXPECT_EQ(error_code(r), "invalid_argument");
  }
  // Upper-case hex is not the hash either (hashes are lower case everywhere).
  std::string upper = sha256_hex("content");
  std::transform(upper.begin(), upper.end(), upper.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  EXPECT_EQ(upload("app", "1.0.0", "content", "&sha256=" + upper).status, 400);
  EXPECT_EQ(snapshot(), before);
  EXPECT_FALSE(f.store().get_artifact("app", "1.0.0")->has_value());
  EXPECT_TRUE(!fs::exists(artifact_dir_) || fs::is_empty(artifact_dir_));
  EXPECT_EQ(get("/api/v1/artifacts/app/1.0.0", viewer).status, 404);
}

TEST_F(OperatorApiTest, UploadsAreIdempotentAndArtifactsImmutable) {
  const Response first = upload("app", "1.0.0", "content A");
  ASSERT_EQ(first.status, 201) << first.body;
  const std::string before = snapshot();
  const Response again = upload("app", "1.0.0", "content A");
  EXPECT_EQ(again.status, 201) << again.body;
  EXPECT_EQ(parsed(again), parsed(first));
  EXPECT_EQ(snapshot(), before);

  // Other content, or other metadata, under the same version: 409, nothing changes.
  const Response other = upload("app", "1.0.0", "content B");
  EXPECT_EQ(other.status, 409) << other.body;
  EXPECT_EQ(error_code(other), "already_exists");
  const Response other_meta = upload("app", "1.0.0", "content A", "&hardware_revision=rev-a");
  EXPECT_EQ(other_meta.status, 409) << other_meta.body;
  const Response other_type =
      put("/api/v1/artifacts/app/1.0.0?device_type=gateway", operator_, "content A");
  EXPECT_EQ(other_type.status, 409) << other_type.body;
  EXPECT_EQ(snapshot(), before);
  EXPECT_FALSE(fs::exists(artifact_dir_ / sha256_hex("content B")));
  EXPECT_EQ(parsed(get("/api/v1/artifacts/app/1.0.0", viewer))["sha256"], sha256_hex("content A"));
}

TEST_F(OperatorApiTest, NamesAndVersionsCannotEscapeTheDirectory) {
  const std::string before = snapshot();
  for (const char* target :
       {"/api/v1/artifacts/../1.0.0", "/api/v1/artifacts/%2e%2e/1.0.0",
        "/api/v1/artifacts/..%2Fx/1.0.0", "/api/v1/artifacts/..%2F..%2Fx/1.0.0",
        "/api/v1/artifacts/a%2Fb/1.0.0", "/api/v1/artifacts/a/b/1.0.0", "/api/v1/artifacts/app/..",
        "/api/v1/artifacts/app/%2e%2e", "/api/v1/artifacts/app/..%2Fx",
        "/api/v1/artifacts/app/1.0.0%2F..%2F..%2Fx", "/api/v1/artifacts/app/../x",
        "/api/v1/artifacts/app/a/b", "/api/v1/artifacts/.hidden/1.0.0",
        "/api/v1/artifacts/app/1.0.0%00", "/api/v1/artifacts/%2Fetc%2Fpasswd/1.0.0",
        "/api/v1/artifacts/app/%2Ftmp%2Fx", "/api/v1/artifacts/app%5C..%5Cx/1.0.0"}) {
    const Response r = put(std::string(target) + "?device_type=ctl", operator_, "evil");
    EXPECT_GE(r.status, 400) << target << " " << r.body;
    EXPECT_LT(r.status, 500) << target << " " << r.body;
    const Response d = call("DELETE", target, operator_);
    EXPECT_GE(d.status, 400) << target;
    EXPECT_LT(d.status, 500) << target;
  }
  EXPECT_EQ(snapshot(), before);
  EXPECT_TRUE(!fs::exists(artifact_dir_) || fs::is_empty(artifact_dir_));
  EXPECT_FALSE(fs::exists(root_ / "x"));
  EXPECT_FALSE(fs::exists(root_ / "1.0.0"));
}

TEST_F(OperatorApiTest, DeletingAnUnusedArtifactRemovesRecordAndFile) {
  ASSERT_EQ(upload("app", "1.0.0", "shared").status, 201);
  ASSERT_EQ(upload("app", "1.0.1", "shared").status, 201);
  ASSERT_EQ(upload("app", "1.1.0", "own").status, 201);
  const fs::path shared = artifact_dir_ / sha256_hex("shared");
  const fs::path own = artifact_dir_ / sha256_hex("own");

  const Response r = call("DELETE", "/api/v1/artifacts/app/1.1.0", operator_);
  EXPECT_EQ(r.status, 204) << r.body;
  EXPECT_EQ(r.body, "");
  EXPECT_FALSE(fs::exists(own));
  EXPECT_FALSE(f.store().get_artifact("app", "1.1.0")->has_value());
  EXPECT_EQ(get("/api/v1/artifacts/app/1.1.0", viewer).status, 404);
  EXPECT_EQ(call("DELETE", "/api/v1/artifacts/app/1.1.0", operator_).status, 404);

  // Content two versions share stays until the last of them goes.
  EXPECT_EQ(call("DELETE", "/api/v1/artifacts/app/1.0.0", operator_).status, 204);
  EXPECT_TRUE(fs::exists(shared));
  EXPECT_EQ(read_file(shared), "shared");
  EXPECT_EQ(call("DELETE", "/api/v1/artifacts/app/1.0.1", operator_).status, 204);
  EXPECT_FALSE(fs::exists(shared));
  EXPECT_TRUE(fs::is_empty(artifact_dir_));

  // Deleted, a version may be uploaded again (with any content).
  EXPECT_EQ(upload("app", "1.1.0", "new own").status, 201);
  EXPECT_EQ(read_file(artifact_dir_ / sha256_hex("new own")), "new own");
}

TEST_F(OperatorApiTest, AnArtifactARolloutNeedsCannotBeDeleted) {
  f.add_devices(3, "rev-a");
  ASSERT_EQ(upload("firmware", "3.0.0", "three").status, 201);
  ASSERT_EQ(post("/api/v1/rollouts", operator_, plan_body("3.0.0")).status, 201);
  const std::string before = snapshot();
  // Installed by the rollout, and the version it may send back.
  for (const char* path :
       {"/api/v1/artifacts/firmware/3.0.0", "/api/v1/artifacts/firmware/1.0.0"}) {
    const Response r = call("DELETE", path, operator_);
    EXPECT_EQ(r.status, 409) << path << " " << r.body;
    EXPECT_EQ(error_code(r), "failed_precondition") << path;
  }
  EXPECT_EQ(snapshot(), before);
  EXPECT_TRUE(fs::exists(artifact_dir_ / sha256_hex("three")));
  // Started, then aborted (over, but still loaded: a rollback may still send 1.0.0 back).
  const std::string id = only_rollout_id();
  ASSERT_EQ(post("/api/v1/rollouts/" + id + "/start", operator_).status, 200);
  EXPECT_EQ(call("DELETE", "/api/v1/artifacts/firmware/3.0.0", operator_).status, 409);
  ASSERT_EQ(post("/api/v1/rollouts/" + id + "/abort", operator_).status, 200);
  EXPECT_EQ(call("DELETE", "/api/v1/artifacts/firmware/3.0.0", operator_).status, 409);
  EXPECT_EQ(call("DELETE", "/api/v1/artifacts/firmware/1.0.0", operator_).status, 409);
  // Another component is unaffected.
  ASSERT_EQ(upload("app", "1.0.0", "app").status, 201);
  EXPECT_EQ(call("DELETE", "/api/v1/artifacts/app/1.0.0", operator_).status, 204);
}

TEST_F(OperatorApiTest, ArtifactMetadataFromTheQuery) {
  const Response r =
      upload("app", "2.0.0", "with deps",
             "&depends=bootloader:%3E%3D2.0.0&depends=kernel:%3E%3D5.10.0,+%3C6.0.0");
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(parsed(r)["depends"],
            json({{"bootloader", ">=2.0.0"}, {"kernel", ">=5.10.0, <6.0.0"}}));
  // Unencoded, as a shell user would type it.
  const Response plain = upload("app", "2.0.1", "plain", "&depends=bootloader:>=2.0.0");
  ASSERT_EQ(plain.status, 201) << plain.body;
  EXPECT_EQ(parsed(plain)["depends"], json({{"bootloader", ">=2.0.0"}}));

  const std::string before = snapshot();
  for (const char* query :
       {"&depends=nocolon", "&depends=:%3E%3D1.0.0", "&depends=bootloader:garbage",
        "&depends=bootloader:", "&depends=app:%3E%3D1.0.0",  // its own component
        "&depends=..%2Fx:%3E%3D1.0.0", "&colour=red", "&device_type=..", "&sha256=%zz"}) {
    const Response bad = upload("app", "3.0.0", "bad", query);
    EXPECT_EQ(bad.status, 400) << query << " " << bad.body;
  }
  // No device type, and no content, are refused too.
  EXPECT_EQ(put("/api/v1/artifacts/app/3.0.0", operator_, "no type").status, 400);
  EXPECT_EQ(upload("app", "3.0.0", "").status, 400);
  EXPECT_EQ(upload("app", "not-a-version", "x").status, 400);
  EXPECT_EQ(snapshot(), before);
  EXPECT_FALSE(fs::exists(artifact_dir_ / sha256_hex("bad")));
}

// ---------------------------------------------------------------- rollouts

class RolloutApiTest : public OperatorApiTest {
 protected:
  RolloutApiTest() {
    f.add_devices(23, "rev-a", "open");
    f.add_devices(11, "rev-b", "north");
    f.add_devices(2, "rev-c", "open");
    f.add_devices(3, "rev-a", "open", "gateway");        // incompatible: excluded
    f.add_devices(4, "rev-a", "north", "ctl", "2.0.0");  // already current
    f.add_devices(1, "rev-b", "north");
    decommissioned_ = f.ids.back();
    EXPECT_TRUE(f.service->decommission(decommissioned_).ok());
  }
  std::string decommissioned_;
};

TEST_F(RolloutApiTest, ThePreviewIsWhatStartDoes) {
  const std::string before = snapshot();
  const Response preview = post("/api/v1/rollouts/plan", operator_, plan_body());
  ASSERT_EQ(preview.status, 200) << preview.body;
  EXPECT_EQ(snapshot(), before);  // a preview writes nothing
  const json p = parsed(preview);
  EXPECT_EQ(p["targets"], 36);
  EXPECT_EQ(p["already_current"], 4);
  EXPECT_EQ(p["excluded_count"], 3);
  ASSERT_EQ(p["excluded"].size(), 3u);
  for (const auto& e : p["excluded"]) {
    EXPECT_TRUE(e["device_id"].get<std::string>().starts_with("rev-a-open-")) << e;
    EXPECT_FALSE(e["reason"].get<std::string>().empty());
  }
  ASSERT_EQ(p["stages"].size(), 3u);
  // canary 10% (4 of 36): each revision its share rounded up (rev-a 3, rev-b 2, rev-c 1),
  // but the gate's min_sample (5) per revision: 5 + 5 + 2 (rev-c has no more). Every
  // stratum has its min_per_stratum (2) already.
  EXPECT_EQ(p["stages"][0]["name"], "canary");
  EXPECT_EQ(p["stages"][0]["adds"], 12);
  EXPECT_EQ(p["stages"][0]["cumulative"], 12);
  EXPECT_EQ(p["stages"][0]["asked"], 4);
  EXPECT_EQ(p["stages"][0]["why"], "the gate needs 5 per hardware_revision");
  EXPECT_EQ(p["stages"][1]["why"], "");  // 20 for 18: rounding, not worth a word
  // half (18 of 36): rev-a 12, rev-b 6, and rev-c keeps the 2 its canary took.
  EXPECT_EQ(p["stages"][1]["adds"], 8);
  EXPECT_EQ(p["stages"][1]["cumulative"], 20);
  EXPECT_EQ(p["stages"][2]["adds"], 16);
  EXPECT_EQ(p["stages"][2]["cumulative"], 36);
  uint32_t sum = 0;
  for (const auto& s : p["stages"]) sum += s["adds"].get<uint32_t>();
  EXPECT_EQ(sum, 36u);
  std::map<std::string, int> strata;
  for (const auto& s : p["strata"]) strata[s["key"]] = s["devices"];
  EXPECT_EQ(strata, (std::map<std::string, int>{
                        {"rev-a|open", 23}, {"rev-b|north", 11}, {"rev-c|open", 2}}));

  const Response created = post("/api/v1/rollouts", operator_, plan_body());
  ASSERT_EQ(created.status, 201) << created.body;
  const std::string id = parsed(created)["id"];
  EXPECT_EQ(parsed(created)["state"], "created");
  const Response started = post("/api/v1/rollouts/" + id + "/start", operator_);
  ASSERT_EQ(started.status, 200) << started.body;
  const json s = parsed(started);
  EXPECT_EQ(s["state"], "running");
  EXPECT_EQ(s["targets"], p["targets"]);
  EXPECT_EQ(s["stages"][0]["devices"], p["stages"][0]["adds"]);
  ASSERT_EQ(s["progress"]["stages"].size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(s["progress"]["stages"][i]["name"], p["stages"][i]["name"]);
    EXPECT_EQ(s["progress"]["stages"][i]["devices"], p["stages"][i]["adds"]) << i;
  }
  std::map<std::string, int> started_strata;
  for (const auto& st : s["progress"]["strata"]) started_strata[st["key"]] = st["devices"];
  EXPECT_EQ(started_strata, strata);
  EXPECT_EQ(s["progress"]["devices"], 36);
  EXPECT_EQ(f.store().list_deployments(id)->size(), 36u);
  EXPECT_FALSE(f.store().get_deployment(id, decommissioned_)->has_value());
}

// For plans of every shape, the preview's counts are the ones start() then produces.
TEST_F(RolloutApiTest, ThePreviewMatchesStartForEveryKindOfPlan) {
  std::vector<json> plans;
  json base = json::parse(plan_body());
  plans.push_back(base);
  json by_count = base;
  by_count["stages"] = {{{"name", "five"}, {"count", 5}},
                        {{"name", "twenty"}, {"count", 20}},
                        {{"name", "all"}, {"count", 36}}};
  plans.push_back(by_count);
  json flat = base;
  flat["stratify_by"] = json::array();
  flat["min_per_stratum"] = 1;
  plans.push_back(flat);
  json by_site = base;
  by_site["stratify_by"] = {"site"};
  by_site["stages"] = {{{"name", "one"}, {"percent", 1}}, {{"name", "all"}, {"percent", 100}}};
  by_site["min_per_stratum"] = 5;
  plans.push_back(by_site);
  json filtered = base;
  filtered["filter"] = {{"hardware_revisions", {"rev-b", "rev-c"}}, {"sites", {"north"}}};
  plans.push_back(filtered);
  json nothing = base;
  nothing["filter"] = {{"tags", {"nobody-has-this"}}};
  plans.push_back(nothing);

  for (const json& plan : plans) {
    SCOPED_TRACE(plan.dump());
    const Response preview = post("/api/v1/rollouts/plan", viewer, plan.dump());
    ASSERT_EQ(preview.status, 200) << preview.body;
    const json p = parsed(preview);
    const Response created = post("/api/v1/rollouts", operator_, plan.dump());
    ASSERT_EQ(created.status, 201) << created.body;
    const std::string id = parsed(created)["id"];
    const Response started = post("/api/v1/rollouts/" + id + "/start", operator_);
    ASSERT_EQ(started.status, 200) << started.body;
    const json s = parsed(started);
    EXPECT_EQ(s["targets"], p["targets"]);
    EXPECT_EQ(f.store().list_deployments(id)->size(), p["targets"].get<size_t>());
    ASSERT_EQ(s["progress"]["stages"].size(), p["stages"].size());
    uint32_t cumulative = 0;
    for (size_t i = 0; i < p["stages"].size(); ++i) {
      cumulative += s["progress"]["stages"][i]["devices"].get<uint32_t>();
      EXPECT_EQ(s["progress"]["stages"][i]["devices"], p["stages"][i]["adds"]) << i;
      EXPECT_EQ(p["stages"][i]["cumulative"], cumulative) << i;
    }
    std::map<std::string, int> previewed, produced;
    for (const auto& st : p["strata"]) previewed[st["key"]] = st["devices"];
    for (const auto& st : s["progress"]["strata"]) produced[st["key"]] = st["devices"];
    EXPECT_EQ(previewed, produced);
    ASSERT_EQ(post("/api/v1/rollouts/" + id + "/abort", operator_).status, 200);
  }
}

TEST_F(RolloutApiTest, ThePreviewListsAtMostAHundredExcludedDevices) {
  f.add_devices(150, "rev-z", "open", "gateway");
  const Response preview = post("/api/v1/rollouts/plan", viewer, plan_body());
  ASSERT_EQ(preview.status, 200) << preview.body;
  const json p = parsed(preview);
  EXPECT_EQ(p["excluded_count"], 153);
  EXPECT_EQ(p["excluded"].size(), 100u);
  EXPECT_EQ(p["targets"], 36);
}

TEST_F(RolloutApiTest, StatusShowsProgressByStageAndStratum) {
  const Response created = post("/api/v1/rollouts", operator_, plan_body());
  ASSERT_EQ(created.status, 201) << created.body;
  const std::string id = parsed(created)["id"];
  // Created, not started: progress with no deployments.
  const json fresh = parsed(get("/api/v1/rollouts/" + id, viewer));
  EXPECT_EQ(fresh["state"], "created");
  EXPECT_EQ(fresh["targets"], 0);
  ASSERT_EQ(post("/api/v1/rollouts/" + id + "/start", operator_).status, 200);

  int offered = 0;
  std::string succeeded_device;
  for (const std::string& dev : f.ids) {
    if (dev == decommissioned_) continue;
    auto o = f.check_in(dev);
    if (!o) continue;
    ++offered;
    if (succeeded_device.empty() && dev.starts_with("rev-b")) {
      succeeded_device = dev;
      f.install(dev, *o);
    }
  }
  EXPECT_EQ(offered, 12);  // the canary
  ASSERT_FALSE(succeeded_device.empty());

  const Response r = get("/api/v1/rollouts/" + id, viewer);
  ASSERT_EQ(r.status, 200) << r.body;
  const json j = parsed(r);
  EXPECT_EQ(j["id"], id);
  EXPECT_EQ(j["state"], "running");
  const json& progress = j["progress"];
  EXPECT_EQ(progress["devices"], 36);
  EXPECT_EQ(progress["finished"], 1);
  EXPECT_EQ(progress["in_flight"], 11);
  EXPECT_EQ(progress["states"], json({{"pending", 24}, {"offered", 11}, {"succeeded", 1}}));
  ASSERT_EQ(progress["stages"].size(), 3u);
  EXPECT_EQ(progress["stages"][0]["devices"], 12);
  EXPECT_EQ(progress["stages"][0]["in_flight"], 11);
  EXPECT_EQ(progress["stages"][0]["finished"], 1);
  EXPECT_EQ(progress["stages"][0]["states"], json({{"offered", 11}, {"succeeded", 1}}));
  EXPECT_EQ(progress["stages"][1]["states"], json({{"pending", 8}}));
  EXPECT_EQ(progress["stages"][2]["states"], json({{"pending", 16}}));
  ASSERT_EQ(progress["strata"].size(), 3u);
  for (const auto& s : progress["strata"]) {
    EXPECT_FALSE(s["halted"].get<bool>());
    if (s["key"] == "rev-b|north") {
      EXPECT_EQ(s["hardware_revision"], "rev-b");
      EXPECT_EQ(s["site"], "north");
      EXPECT_EQ(s["devices"], 11);
      EXPECT_EQ(s["successes"], 1);
      EXPECT_EQ(s["failures"], 0);
      EXPECT_EQ(s["states"], json({{"pending", 6}, {"offered", 4}, {"succeeded", 1}}));
    }
  }
  // The summary list shows the rollout and its stage.
  const json list = parsed(get("/api/v1/rollouts", viewer));
  ASSERT_EQ(list["rollouts"].size(), 1u);
  EXPECT_EQ(list["rollouts"][0]["id"], id);
  EXPECT_EQ(list["rollouts"][0]["state"], "running");
  EXPECT_EQ(list["rollouts"][0]["stage"], "canary");
  EXPECT_EQ(list["rollouts"][0]["artifact"], "firmware@2.0.0");
  EXPECT_EQ(list["rollouts"][0]["targets"], 36);
  EXPECT_EQ(get("/api/v1/rollouts/rollout-9999", viewer).status, 404);
}

TEST_F(RolloutApiTest, StateTransitionsAndBadOnesAre409) {
  const Response created = post("/api/v1/rollouts", operator_, plan_body());
  ASSERT_EQ(created.status, 201) << created.body;
  const std::string id = parsed(created)["id"];
  auto act = [&](const std::string& verb) {
    return post("/api/v1/rollouts/" + id + "/" + verb, operator_);
  };
  auto expect_refused = [&](const std::string& verb) {
    const std::string before = snapshot();
    const Response r = act(verb);
    EXPECT_EQ(r.status, 409) << verb << " " << r.body;
    EXPECT_EQ(error_code(r), "conflict") << verb;
    EXPECT_EQ(snapshot(), before) << verb;
  };
  auto expect_state = [&](const std::string& verb, const std::string& state) {
    const Response r = act(verb);
    ASSERT_EQ(r.status, 200) << verb << " " << r.body;
    EXPECT_EQ(parsed(r)["state"], state) << verb;
    EXPECT_EQ(f.store().get_rollout(id)->value().plan.name, "patch");
    EXPECT_EQ(to_string(f.store().get_rollout(id)->value().state), state) << verb;
  };
  expect_refused("pause");
  expect_refused("resume");
  expect_refused("rollback");
  expect_state("start", "running");
  expect_refused("start");
  expect_state("pause", "paused");
  expect_state("pause", "paused");  // idempotent
  expect_refused("start");
  expect_state("resume", "running");
  expect_state("abort", "aborted");
  for (const char* verb : {"start", "pause", "resume", "abort"}) expect_refused(verb);
  expect_state("rollback", "rolling_back");
  for (const char* verb : {"start", "pause", "resume", "abort"}) expect_refused(verb);
  expect_state("rollback", "rolling_back");  // idempotent
  // Nothing was installed, so there is nothing to send back: the next tick finishes it.
  EXPECT_TRUE(f.engine->tick().ok());
  EXPECT_EQ(parsed(get("/api/v1/rollouts/" + id, viewer))["state"], "rolled_back");
  for (const char* verb : {"start", "pause", "resume", "abort", "rollback"}) expect_refused(verb);

  for (const char* verb : {"start", "pause", "resume", "abort", "rollback"}) {
    EXPECT_EQ(post(std::string("/api/v1/rollouts/rollout-9999/") + verb, operator_).status, 404)
        << verb;
  }
}

TEST_F(RolloutApiTest, RollbackOfARunningRolloutSendsTheOldVersionBack) {
  const Response created = post("/api/v1/rollouts", operator_, plan_body());
  const std::string id = parsed(created)["id"];
  ASSERT_EQ(post("/api/v1/rollouts/" + id + "/start", operator_).status, 200);
  std::string updated;
  for (const std::string& dev : f.ids) {
    if (dev == decommissioned_) continue;
    if (auto o = f.check_in(dev)) {
      f.install(dev, *o);
      updated = dev;
      break;
    }
  }
  ASSERT_FALSE(updated.empty());
  const Response r = post("/api/v1/rollouts/" + id + "/rollback", operator_);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(parsed(r)["state"], "rolling_back");
  auto back = f.check_in(updated);
  ASSERT_TRUE(back.has_value());
  EXPECT_TRUE(back->revert);
  EXPECT_EQ(back->version, "1.0.0");
}

TEST_F(RolloutApiTest, BadPlansAre400AndWriteNothing) {
  const std::string before = snapshot();
  json good = json::parse(plan_body());
  std::vector<std::string> bad = {
      "", "{not json", "[]", "null", "42", json({{"name", "patch"}}).dump(),
  };
  auto edited = [&](const std::function<void(json&)>& edit) {
    json j = good;
    edit(j);
    bad.push_back(j.dump());
  };
  edited([](json& j) { j["colour"] = "red"; });
  edited([](json& j) { j["name"] = 7; });
  edited([](json& j) { j["name"] = "bad name"; });
  edited([](json& j) { j.erase("artifact"); });
  edited([](json& j) { j["artifact"]["version"] = "two"; });
  edited([](json& j) { j["artifact"]["sha"] = "x"; });
  edited([](json& j) { j["stages"] = json::array(); });
  edited([](json& j) { j["stages"][2]["percent"] = 90; });
  edited([](json& j) { j["stages"][1]["percent"] = 5; });
  edited([](json& j) { j["stages"][0]["count"] = 3; });
  edited([](json& j) { j["stages"][0]["percent"] = "ten"; });
  edited([](json& j) { j["stratify_by"] = {"colour"}; });
  edited([](json& j) { j["on_failure"] = "explode"; });
  edited([](json& j) { j["gate"] = {{"max_failure_rate", "high"}}; });
  edited([](json& j) { j["filter"] = {{"tag", {"x"}}}; });
  edited([](json& j) { j["min_per_stratum"] = -1; });
  for (const char* path : {"/api/v1/rollouts", "/api/v1/rollouts/plan"}) {
    for (const std::string& body : bad) {
      const Response r = post(path, operator_, body);
      EXPECT_EQ(r.status, 400) << path << " " << body << " " << r.body;
      EXPECT_EQ(error_code(r), "invalid_argument") << body;
    }
  }
  // A plan of an artifact that is not uploaded: valid, but not now.
  for (const char* path : {"/api/v1/rollouts", "/api/v1/rollouts/plan"}) {
    const Response r = post(path, operator_, plan_body("9.9.9"));
    EXPECT_EQ(r.status, 409) << path << " " << r.body;
    EXPECT_EQ(error_code(r), "failed_precondition");
  }
  EXPECT_EQ(snapshot(), before);
  EXPECT_TRUE(f.store().list_rollouts()->empty());
  EXPECT_TRUE(f.engine->loaded_rollouts().empty());
}

// ---------------------------------------------------------------- tokens

TEST_F(OperatorApiTest, AnAdminCreatesTokensThatAuthenticateWithTheirRole) {
  for (const char* role : {"viewer", "operator", "admin"}) {
    const Response r = post("/api/v1/tokens", admin,
                            json({{"name", std::string("ci-") + role}, {"role", role}}).dump());
    ASSERT_EQ(r.status, 201) << r.body;
    const json j = parsed(r);
    const std::string text = j["token"];
    EXPECT_TRUE(text.starts_with("drover_")) << text;
    EXPECT_EQ(j["role"], role);
    EXPECT_EQ(j["name"], std::string("ci-") + role);
    EXPECT_EQ(j["id"], text.substr(7, 16));
    EXPECT_TRUE(j["expires_at"].is_null());
    EXPECT_FALSE(j.contains("secret_sha256"));
    const json me = parsed(get("/api/v1/whoami", text));
    EXPECT_EQ(me["role"], role);
    EXPECT_EQ(me["id"], j["id"]);
    // What the role allows, and no more.
    EXPECT_EQ(put("/api/v1/sites/open", text, R"({"name": "open"})").status,
              std::string(role) == "viewer" ? 403 : 200);
    EXPECT_EQ(get("/api/v1/tokens", text).status, std::string(role) == "admin" ? 200 : 403);
  }
  // With a lifetime: it expires.
  const Response r =
      post("/api/v1/tokens", admin, R"({"name": "brief", "role": "viewer", "lifetime": "1h"})");
  ASSERT_EQ(r.status, 201) << r.body;
  const json j = parsed(r);
  EXPECT_EQ(j["expires_at"].get<int64_t>() - j["created_at"].get<int64_t>(), 3'600'000);
  const std::string brief = j["token"];
  EXPECT_EQ(get("/api/v1/whoami", brief).status, 200);
  f.clock.advance(hours(1));
  EXPECT_EQ(get("/api/v1/whoami", brief).status, 401);
  // Seconds as a number work too.
  const Response secs =
      post("/api/v1/tokens", admin, R"({"name": "s", "role": "viewer", "lifetime": 90})");
  ASSERT_EQ(secs.status, 201) << secs.body;
  EXPECT_EQ(parsed(secs)["expires_at"].get<int64_t>() - parsed(secs)["created_at"].get<int64_t>(),
            90'000);
}

// A positive lifetime under a millisecond, given in seconds ("lifetime": 0.0004), would
// truncate to Duration(0), which means "never expires": asking for a token that lives 0.4 ms
// must not yield one that lives forever.
TEST_F(OperatorApiTest, ASubMillisecondLifetimeIsNotForever) {
  for (const char* lifetime : {"0.0004", R"("0.5ms")"}) {
    const Response r =
        post("/api/v1/tokens", admin,
             std::string(R"({"name": "tiny", "role": "viewer", "lifetime": )") + lifetime + "}");
    if (r.status == 400) continue;  // refusing it is fine
    ASSERT_EQ(r.status, 201) << r.body;
    EXPECT_FALSE(parsed(r)["expires_at"].is_null()) << lifetime << ": " << r.body;
    const std::string text = parsed(r)["token"];
    f.clock.advance(seconds(1));
    EXPECT_EQ(get("/api/v1/whoami", text).status, 401) << lifetime;
  }
}

TEST_F(OperatorApiTest, BadTokenRequestsAre400AndWriteNothing) {
  const std::string before = snapshot();
  for (const std::string& body :
       {std::string("{"), std::string("[]"), std::string(R"({"name": "x"})"),
        std::string(R"({"role": "admin"})"), std::string(R"({"name": "x", "role": "root"})"),
        std::string(R"({"name": "x", "role": "Admin"})"),
        std::string(R"({"name": "", "role": "admin"})"),
        std::string(R"({"name": "a\nb", "role": "admin"})"),
        R"({"name": ")" + std::string(129, 'n') + R"(", "role": "admin"})",
        std::string(R"({"name": 5, "role": "admin"})"),
        std::string(R"({"name": "x", "role": "admin", "lifetime": -5})"),
        std::string(R"({"name": "x", "role": "admin", "lifetime": "soon"})"),
        std::string(R"({"name": "x", "role": "admin", "lifetime": "-1h"})"),
        std::string(R"({"name": "x", "role": "admin", "secret": "mine"})"),
        std::string(R"({"name": "x", "role": "admin", "id": "0123456789abcdef"})")}) {
    const Response r = post("/api/v1/tokens", admin, body);
    EXPECT_EQ(r.status, 400) << body << " " << r.body;
    EXPECT_EQ(error_code(r), "invalid_argument") << body;
  }
  EXPECT_EQ(snapshot(), before);
}

TEST_F(OperatorApiTest, TheTokenListNeverShowsSecretsOrHashes) {
  std::vector<std::string> texts = {admin, operator_, viewer};
  const Response created = post("/api/v1/tokens", admin, R"({"name": "extra", "role": "viewer"})");
  ASSERT_EQ(created.status, 201);
  texts.push_back(parsed(created)["token"]);
  ASSERT_EQ(post("/api/v1/tokens/" + viewer.substr(7, 16) + "/revoke", admin).status, 200);

  const Response r = get("/api/v1/tokens", admin);
  ASSERT_EQ(r.status, 200) << r.body;
  const json j = parsed(r);
  ASSERT_EQ(j["tokens"].size(), 4u);
  std::vector<std::string> ids;
  for (const auto& t : j["tokens"]) {
    std::set<std::string> keys;
    for (const auto& [k, v] : t.items()) keys.insert(k);
    EXPECT_EQ(keys, (std::set<std::string>{"id", "name", "role", "created_at", "expires_at",
                                           "revoked_at"}))
        << t;
    ids.push_back(t["id"]);
    if (t["id"] == viewer.substr(7, 16)) {
      EXPECT_EQ(t["revoked_at"], f.clock.now().time_since_epoch().count());
    } else {
      EXPECT_TRUE(t["revoked_at"].is_null()) << t;
    }
  }
  EXPECT_TRUE(std::is_sorted(ids.begin(), ids.end()));
  for (const std::string& text : texts) {
    EXPECT_EQ(r.body.find(text.substr(24)), std::string::npos) << "secret of " << text;
  }
  const auto stored = f.store().list_api_tokens();
  ASSERT_TRUE(stored.ok());
  for (const ApiToken& t : *stored) {
    EXPECT_EQ(r.body.find(t.secret_sha256), std::string::npos) << "hash of " << t.id;
  }
}

TEST_F(OperatorApiTest, RevokingATokenTakesEffectImmediately) {
  const Response created = post("/api/v1/tokens", admin, R"({"name": "ci", "role": "operator"})");
  ASSERT_EQ(created.status, 201);
  const std::string ci = parsed(created)["token"];
  const std::string ci_id = parsed(created)["id"];
  ASSERT_EQ(put("/api/v1/sites/open", ci, R"({"name": "open"})").status, 200);

  f.clock.advance(seconds(10));
  const Response revoked = post("/api/v1/tokens/" + ci_id + "/revoke", admin);
  ASSERT_EQ(revoked.status, 200) << revoked.body;
  EXPECT_EQ(parsed(revoked)["revoked_at"], f.clock.now().time_since_epoch().count());
  EXPECT_EQ(put("/api/v1/sites/open", ci, R"({"name": "open"})").status, 401);
  EXPECT_EQ(get("/api/v1/whoami", ci).status, 401);
  // Revoking again is fine and keeps the first time.
  f.clock.advance(seconds(10));
  const Response again = post("/api/v1/tokens/" + ci_id + "/revoke", admin);
  EXPECT_EQ(again.status, 200);
  EXPECT_EQ(parsed(again)["revoked_at"], parsed(revoked)["revoked_at"]);
  EXPECT_EQ(post("/api/v1/tokens/0000000000000000/revoke", admin).status, 404);
  EXPECT_EQ(post("/api/v1/tokens/nonsense/revoke", admin).status, 404);
  // An admin may revoke its own token; the next request is refused.
  ASSERT_EQ(post("/api/v1/tokens/" + admin.substr(7, 16) + "/revoke", admin).status, 200);
  EXPECT_EQ(get("/api/v1/whoami", admin).status, 401);
  EXPECT_EQ(get("/api/v1/whoami", operator_).status, 200);
}

}  // namespace
}  // namespace drover::http
