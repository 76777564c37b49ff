// Fuzzes request routing with arbitrary methods and targets: whatever arrives, the router
// answers with a status it documents, and a 2xx only from a handler it registered.
#include <cstddef>
#include <cstdint>
#include <string>

#include "transport/http/router.h"

namespace {

using namespace drover::http;

void check(bool ok) {
  if (!ok) __builtin_trap();
}

const Router& router() {
  static const Router r = [] {
    Router out;
    out.add("GET", "/api/v1/devices/{id}", [](const Request&, const Params& p) {
      check(!p.get("id").empty());
      return Response::json(200, std::string(p.get("id")));
    });
    out.add("POST", "/api/v1/rollouts/{id}/{verb}", [](const Request&, const Params& p) {
      check(!p.get("id").empty() && !p.get("verb").empty());
      return Response::json(202, "");
    });
    return out;
  }();
  return r;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  const size_t space = input.find(' ');
  Request r;
  r.method = input.substr(0, space == std::string::npos ? 0 : space);
  r.target = space == std::string::npos ? input : input.substr(space + 1);
  const Response res = router()(r);
  check(res.status == 200 || res.status == 202 || res.status == 400 || res.status == 404 ||
        res.status == 405);
  std::string decoded;
  if (percent_decode(r.target, decoded)) check(decoded.size() <= r.target.size());
  return 0;
}
