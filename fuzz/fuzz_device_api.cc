// Fuzzes the device API's request bodies: whatever arrives, each endpoint answers with a
// documented status and a JSON body, and nothing crashes or throws.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "fleet/command_queue.h"
#include "fleet/device_auth.h"
#include "fleet/device_service.h"
#include "fleet/operator_tokens.h"
#include "rollout/engine.h"
#include "store/store.h"
#include "transport/http/command_api.h"
#include "transport/http/device_api.h"

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

struct World {
  ManualClock clock{Timestamp(Duration(1'800'000'000'000))};
  std::unique_ptr<Store> store = make_memory_store();
  RolloutEngine engine{*store, clock};
  DeviceService service{*store, engine};
  DeviceAuth auth{service, clock, *security::TokenSigner::create(std::string(32, 'k')),
                  token_options()};
  OperatorTokens tokens{*store, clock};
  CommandQueue commands{*store, clock};
  http::Router router;
  World() {
    http::add_device_api(router, auth, service);
    http::add_command_api(router, tokens, auth, service, commands);
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static World world;
  static const char* const kPaths[] = {"/api/device/v1/enroll",
                                       "/api/device/v1/auth/challenge",
                                       "/api/device/v1/auth/token",
                                       "/api/device/v1/checkin",
                                       "/api/device/v1/deployments/rollout-0001/status",
                                       "/api/device/v1/auth/rotate",
                                       "/api/device/v1/commands/cmd-1/result"};
  if (size == 0) return 0;
  http::Request req;
  req.method = "POST";
  req.target = kPaths[data[0] % 7];
  req.body.assign(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (data[0] & 0x80) req.headers.emplace_back("Authorization", "Bearer " + req.body);
  const http::Response res = world.router(req);
  check(res.status == 200 || res.status == 400 || res.status == 401 || res.status == 403 ||
        res.status == 404 || res.status == 409);
  check(nlohmann::json::accept(res.body));
  return 0;
}
