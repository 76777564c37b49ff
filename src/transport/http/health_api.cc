#include "transport/http/health_api.h"

#include <cmath>
#include <nlohmann/json.hpp>
#include <string>

#include "base/units.h"
#include "transport/http/json_body.h"
#include "transport/http/operator_access.h"
#include "transport/http/telemetry_api.h"

namespace drover::http {
namespace {

using nlohmann::json;

constexpr size_t kMaxListed = 1000;
constexpr int64_t kMaxDays = 365;

double seconds_of(Duration d) { return static_cast<double>(d.count()) / 1000; }

json labels_json(const std::vector<std::pair<std::string, std::string>>& labels) {
  json out = json::object();
  for (const auto& [k, v] : labels) out[k] = v;
  return out;
}

json forecast_json(const health::ResourceForecast& f) {
  const health::Crossing& c = f.crossing;
  return {{"resource", f.resource},
          {"metric", f.metric},
          {"labels", labels_json(f.labels)},
          {"limit", f.limit},
          {"level_now", c.level_now},
          {"slope_per_hour", c.slope_per_hour},
          {"points", c.points},
          {"expected_s", seconds_of(c.expected)},
          {"earliest_s", seconds_of(c.earliest)},
          // null: the interval reaches a slope of zero (it may never get there)
          {"latest_s", std::isfinite(c.latest_s) ? json(c.latest_s) : json(nullptr)}};
}

json health_json(const health::DeviceHealth& d) {
  json reasons = json::array();
  for (const health::HealthReason& r : d.reasons) {
    json one = {{"kind", r.kind},
                {"severity", to_string(r.severity)},
                {"points", r.points},
                {"text", r.text}};
    if (!r.alert.empty()) one["alert"] = r.alert;
    if (r.forecast) one["forecast"] = forecast_json(*r.forecast);
    reasons.push_back(std::move(one));
  }
  json forecasts = json::array();
  for (const health::ResourceForecast& f : d.forecasts) forecasts.push_back(forecast_json(f));
  return {{"device", d.device_id},
          {"device_type", d.device_type},
          {"status", to_string(d.status)},
          {"score", d.score},
          {"quiet_s", d.quiet_s < 0 ? json(nullptr) : json(d.quiet_s)},
          {"reasons", reasons},
          {"forecasts", forecasts}};
}

}  // namespace

void add_health_api(Router& router, OperatorTokens& tokens, const health::HealthView& view) {
  router.add("GET", "/api/v1/devices/{id}/health",
             offloaded(guarded(tokens, Role::kViewer,
                               [&view](const Request& req, const Params& p, const ApiToken&) {
                                 auto q = query_of(req, {});
                                 if (!q.ok()) return error_response(q.error());
                                 auto d = view.device(p.get("id"));
                                 if (!d.ok()) return error_response(d.error());
                                 json out = health_json(*d);
                                 out["horizon"] = format_duration(view.options().horizon);
                                 out["soon"] = format_duration(view.options().soon);
                                 out["window"] = format_duration(view.options().window);
                                 return ok_json(out);
                               })));

  router.add(
      "GET", "/api/v1/fleet/health",
      offloaded(guarded(
          tokens, Role::kViewer, [&view](const Request& req, const Params&, const ApiToken&) {
            auto q = query_of(req, {"days", "limit", "device_type", "hardware_revision", "site",
                                    "connectivity", "tag", "component", "version"});
            if (!q.ok()) return error_response(q.error());
            auto days = q->number("days", 30, 1, kMaxDays);
            if (!days.ok()) return error_response(days.error());
            auto limit = q->number("limit", 20, 0, kMaxListed);
            if (!limit.ok()) return error_response(limit.error());
            auto cohort = cohort_of(*q);
            if (!cohort.ok()) return error_response(cohort.error());
            const Duration within = hours(int64_t{24} * static_cast<int64_t>(*days));
            auto f = view.fleet(*cohort, within, *limit);
            if (!f.ok()) return error_response(f.error());
            json at_risk = json::array();
            for (const health::DeviceHealth& d : f->at_risk) at_risk.push_back(health_json(d));
            json predicted = json::array();
            for (const auto& [device, forecast] : f->predicted) {
              json one = forecast_json(forecast);
              one["device"] = device;
              predicted.push_back(std::move(one));
            }
            return ok_json({{"devices", f->devices},
                            {"by_status",
                             {{"healthy", f->healthy},
                              {"degraded", f->degraded},
                              {"critical", f->critical},
                              {"unknown", f->unknown}}},
                            {"unreadable", f->unreadable},
                            {"lost", f->lost},
                            {"lost_last_30_days", f->lost_last_30_days},
                            {"loss_rate_per_month", f->loss_rate_per_month},
                            {"lost_after", format_duration(view.options().lost_after)},
                            {"days", *days},
                            {"at_risk_total", f->at_risk_total},
                            {"at_risk", at_risk},
                            {"predicted_total", f->predicted_total},
                            {"predicted_failures", predicted}});
          })));
}

}  // namespace drover::http
