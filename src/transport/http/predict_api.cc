// POST /api/v1/rollouts/predict: the digital twin's prediction of a plan on the live fleet
// (fleet/prediction.h, operator_api.h).
#include <atomic>
#include <memory>
#include <string>

#include "base/units.h"
#include "model/codec_json.h"
#include "transport/http/operator_access.h"
#include "transport/http/operator_api.h"

namespace drover::http {
namespace {

// The fleet's records as they stand, for the twin: every device with its check-in times
// (page by page, so the registry's lock is never held for the whole scan at once), the
// sites and the artifacts.
Result<LiveFleet> snapshot(const OperatorServices& s, Timestamp now, size_t max_devices) {
  LiveFleet fleet;
  fleet.now = now;
  DeviceQuery q;
  q.enrollment = Enrollment::kAccepted;
  q.decommissioned = false;
  q.limit = 0;  // counted first: a fleet too large is refused before it is copied
  const size_t in_service = s.devices.list(q).matched;
  if (in_service > max_devices) {
    return invalid_argument("the fleet has " + std::to_string(in_service) +
                            " devices in service: a prediction runs the twin on at most " +
                            std::to_string(max_devices) +
                            " (drover rollout plan runs any size on a scenario)");
  }
  DeviceQuery all;
  all.limit = 0;
  fleet.excluded = s.devices.list(all).matched - in_service;
  q.limit = 10'000;
  while (true) {
    DevicePage page = s.devices.list(q);
    fleet.devices.insert(fleet.devices.end(), std::make_move_iterator(page.devices.begin()),
                         std::make_move_iterator(page.devices.end()));
    fleet.check_ins.insert(fleet.check_ins.end(), page.check_ins.begin(), page.check_ins.end());
    if (page.next.empty()) break;
    q.after = std::move(page.next);
  }
  auto sites = s.sites.list();
  if (!sites.ok()) return sites.error();
  fleet.sites = std::move(*sites);
  auto artifacts = s.artifacts.list();
  if (!artifacts.ok()) return artifacts.error();
  fleet.artifacts = std::move(*artifacts);
  return fleet;
}

// The query's overrides of what the twin assumes: horizon (at most 90 days), install_time,
// reboot_time (at most a day each), bandwidth ("10Mbps").
Status read_assumptions(const Query& q, PredictionAssumptions& a) {
  auto duration = [&q](std::string_view key, Duration max, Duration& out) -> Status {
    if (!q.has(key)) return ok_status();
    auto d = parse_duration(q.get(key));
    if (!d.ok()) return invalid_argument(std::string(key) + ": " + d.error().message);
    if (*d <= Duration{0} || *d > max)
      return invalid_argument(std::string(key) + ": must be above 0 and at most " +
                              format_duration(max));
    out = *d;
    return ok_status();
  };
  DROVER_TRY(duration("horizon", days(90), a.horizon));
  DROVER_TRY(duration("install_time", days(1), a.install_time));
  DROVER_TRY(duration("reboot_time", days(1), a.reboot_time));
  if (q.has("bandwidth")) {
    auto bps = parse_bitrate(q.get("bandwidth"));
    if (!bps.ok()) return invalid_argument("bandwidth: " + bps.error().message);
    if (*bps == 0) return invalid_argument("bandwidth: must be above 0");
    a.bandwidth_bps = *bps;
  }
  return ok_status();
}

}  // namespace

void add_rollout_prediction(Router& router, OperatorServices services, Clock& clock,
                            RolloutPredictor predict, size_t max_devices) {
  // One prediction at a time: it runs the twin over the whole fleet on a worker thread for
  // seconds (docs/benchmarks.md); another asker meanwhile is told to come back, before
  // anything costly is done for it.
  auto running = std::make_shared<std::atomic<bool>>(false);
  router.add("POST", "/api/v1/rollouts/predict",
             offloaded(guarded(
                 services.tokens, Role::kViewer,
                 [s = services, &clock, predict = std::move(predict), running, max_devices](
                     const Request& req, const Params&, const ApiToken&) {
                   auto q = query_of(req, {"horizon", "install_time", "reboot_time", "bandwidth"});
                   if (!q.ok()) return error_response(q.error());
                   PredictionAssumptions assume;
                   if (Status st = read_assumptions(*q, assume); !st.ok())
                     return error_response(st.error());
                   auto plan = parse_body<RolloutPlan>(
                       req, [](const JsonReader& r) { return read_plan(r); });
                   if (!plan.ok()) return error_response(plan.error());
                   bool idle = false;
                   if (!running->compare_exchange_strong(idle, true)) {
                     Response busy = error_response(
                         {ErrorCode::kFailedPrecondition,
                          "a prediction is already running; ask again when it is done"});
                     busy.status = 429;
                     busy.headers.emplace_back("Retry-After", "5");
                     return busy;
                   }
                   struct Done {
                     std::atomic<bool>& flag;
                     ~Done() { flag.store(false); }
                   } done{*running};
                   // The checks a create makes (the artifact, the targets) before the twin runs.
                   if (auto preview = s.rollouts.preview(*plan); !preview.ok())
                     return error_response(preview.error());
                   auto fleet = snapshot(s, clock.now(), max_devices);
                   if (!fleet.ok()) return error_response(fleet.error());
                   auto answer = predict(*plan, std::move(*fleet), assume);
                   if (!answer.ok()) return error_response(answer.error());
                   return Response::json(200, std::move(*answer));
                 })));
}

}  // namespace drover::http
