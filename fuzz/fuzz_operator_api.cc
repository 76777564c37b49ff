// Fuzzes the operator API: arbitrary bodies and query strings on every mutating and listing
// route, with an admin token (so requests get past authentication and into the parsers).
// Whatever arrives, the answer is a documented status with a JSON body (or 204 with none),
// and nothing crashes or throws.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "fleet/artifact_service.h"
#include "fleet/device_auth.h"
#include "fleet/device_service.h"
#include "fleet/operator_tokens.h"
#include "fleet/site_service.h"
#include "rollout/engine.h"
#include "rollout/queries.h"
#include "store/store.h"
#include "transport/http/operator_api.h"

namespace {

using namespace drover;

void check(bool ok) {
  if (!ok) __builtin_trap();
}

AuthOptions token_options() {
  AuthOptions o;
  o.enrollment_tokens = {"token"};
  return o;
}

std::string temp_dir() {
  char tmpl[] = "/tmp/drover-fuzz-operator-XXXXXX";
  return ::mkdtemp(tmpl);
}

struct World {
  ManualClock clock{Timestamp(Duration(1'800'000'000'000))};
  std::unique_ptr<Store> store = make_memory_store();
  RolloutEngine engine{*store, clock};
  DeviceService service{*store, engine};
  DeviceAuth auth{service, clock, *security::TokenSigner::create(std::string(32, 'k')),
                  token_options()};
  OperatorTokens tokens{*store, clock};
  ArtifactService artifacts{*store, engine, temp_dir() + "/artifacts"};
  SiteService sites{*store, engine};
  RolloutQueries rollouts{*store, engine};
  http::Router router;
  std::string admin;
  World() {
    http::add_operator_api(router, {tokens, service, auth, artifacts, sites, rollouts, engine});
    admin = tokens.create("fuzz", Role::kAdmin, Duration(0))->text;
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static World world;
  struct Route {
    const char* method;
    const char* path;
  };
  static const Route kRoutes[] = {
      {"GET", "/api/v1/devices?"},
      {"PUT", "/api/v1/devices/dev-1"},
      {"PUT", "/api/v1/sites/north"},
      {"PUT", "/api/v1/artifacts/firmware/1.0.0?"},
      {"POST", "/api/v1/rollouts"},
      {"POST", "/api/v1/rollouts/plan"},
      {"POST", "/api/v1/tokens"},
      {"POST", "/api/v1/devices/dev-1/accept"},
      {"DELETE", "/api/v1/artifacts/firmware/1.0.0"},
      {"POST", "/api/v1/rollouts/rollout-0001/start"},
  };
  constexpr size_t kCount = sizeof kRoutes / sizeof kRoutes[0];
  if (size == 0) return 0;
  const Route& route = kRoutes[data[0] % kCount];
  const std::string input(reinterpret_cast<const char*>(data) + 1, size - 1);
  http::Request req;
  req.method = route.method;
  req.target = route.path;
  // Routes ending in '?' take the input as their query string; the others as the body.
  if (req.target.back() == '?') {
    const size_t newline = input.find('\n');
    req.target += input.substr(0, newline);
    if (newline != std::string::npos) req.body = input.substr(newline + 1);
  } else {
    req.body = input;
  }
  req.headers.emplace_back("Authorization", "Bearer " + world.admin);
  http::Response res = world.router(req);
  if (res.offload) res = res.offload();  // what the server's worker would answer
  check(res.status == 200 || res.status == 201 || res.status == 204 || res.status == 400 ||
        res.status == 404 || res.status == 409);
  check(res.status == 204 ? res.body.empty() : nlohmann::json::accept(res.body));
  return 0;
}
