// GET /api/v1/fleet/summary: DeviceService::summary() as JSON, counted at most once per
// kSummaryMaxAge (operator_api.h).
#include <atomic>
#include <memory>
#include <string>

#include "transport/http/operator_access.h"
#include "transport/http/operator_api.h"

namespace drover::http {
namespace {

using json = nlohmann::json;

int64_t ms(Timestamp t) { return t.time_since_epoch().count(); }

// GET /fleet/summary's answer.
json summary_json(const DeviceService::Summary& sum, Timestamp at) {
  json states = json::object();
  for (size_t i = 0; i < sum.by_state.size(); ++i)
    states[to_string(static_cast<UpdateState>(i))] = sum.by_state[i];
  return {{"at", ms(at)},
          {"devices", sum.in_service},
          {"decommissioned", sum.decommissioned},
          {"by_state", states},
          {"by_enrollment",
           {{"accepted", sum.by_enrollment[0]},
            {"pending", sum.by_enrollment[1]},
            {"rejected", sum.by_enrollment[2]}}},
          {"by_device_type", sum.by_device_type},
          {"by_hardware_revision", sum.by_hardware_revision},
          {"by_site", sum.by_site},
          {"by_connectivity", sum.by_connectivity},
          {"by_installed", sum.by_installed},
          {"check_ins",
           {{"last_hour", sum.seen_last_hour},
            {"last_day", sum.seen_last_day},
            {"before", sum.seen_before},
            {"never", sum.never_seen},
            {"overdue", sum.overdue}}}};
}

}  // namespace

void add_fleet_summary(Router& router, OperatorServices services, Clock& clock) {
  // The scan holds the registry's lock (check-ins wait for it: tens of ms for a million
  // devices, docs/benchmarks.md), so one answer serves every asker for kSummaryMaxAge, and
  // one asker at a time counts anew (the others are given the answer before): any number of
  // open consoles cost at most one scan per that time. On a worker thread, not an I/O one.
  struct Cached {
    Timestamp at;
    std::string body;
  };
  struct Shared {
    std::atomic<std::shared_ptr<const Cached>> last;
    std::atomic<bool> counting{false};
  };
  auto shared = std::make_shared<Shared>();
  router.add("GET", "/api/v1/fleet/summary",
             offloaded(guarded(
                 services.tokens, Role::kViewer,
                 [s = services, &clock, shared](const Request&, const Params&, const ApiToken&) {
                   const Timestamp now = clock.now();
                   std::shared_ptr<const Cached> last = shared->last.load();
                   const bool stale = !last || now - last->at >= kSummaryMaxAge || now < last->at;
                   bool idle = false;
                   const bool mine = stale && shared->counting.compare_exchange_strong(idle, true);
                   if (mine || !last) {  // counting, or the very first answer is not there yet
                     last = std::make_shared<const Cached>(
                         Cached{now, summary_json(s.devices.summary(now), now).dump()});
                     shared->last.store(last);
                     if (mine) shared->counting.store(false);
                   }
                   return Response::json(200, last->body);
                 })));
}

}  // namespace drover::http
