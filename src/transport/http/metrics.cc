#include "transport/http/metrics.h"

#include <algorithm>
#include <cstdio>

#include "base/units.h"
#include "transport/http/errors.h"
#include "transport/http/json_body.h"

namespace drover::http {
namespace {

constexpr std::string_view kCheckIn = "/api/device/v1/checkin";
constexpr std::string_view kReport = "/api/device/v1/deployments/{rollout_id}/status";

// A label value, escaped as the format requires (backslash, quote, newline).
std::string label(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.15g", v);
  return buf;
}

void head(std::string& out, const char* name, const char* type, const char* help) {
  out += "# HELP ";
  out += name;
  out += ' ';
  out += help;
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
}

void sample(std::string& out, const std::string& name, const std::string& labels, double v) {
  out += name;
  if (!labels.empty()) out += "{" + labels + "}";
  out += ' ';
  out += number(v);
  out += '\n';
}

bool loopback(std::string_view remote) {
  // "address:port" as the server writes a peer.
  return remote.starts_with("127.") || (remote.starts_with("::1:") && remote.rfind(':') == 3) ||
         remote.starts_with("::ffff:127.");
}

}  // namespace

void Metrics::observe(const AccessRecord& r) {
  const double seconds = (r.handler_ms + r.wait_ms) / 1000;
  const std::string route = r.route.empty() ? "unmatched" : std::string(r.route);
  // A client picks the method: anything unusual is one label, so labels cannot grow.
  static constexpr std::string_view kKnown[] = {"GET",    "HEAD",    "POST", "PUT",
                                                "DELETE", "OPTIONS", "PATCH"};
  const bool known = std::find(std::begin(kKnown), std::end(kKnown), r.method) != std::end(kKnown);
  const std::string method = known ? r.method : "other";
  MutexLock lock(mu_);
  Route& m = routes_[{method, route}];
  ++m.by_status[r.status];
  const auto b = static_cast<size_t>(
      std::lower_bound(kLatencyBuckets.begin(), kLatencyBuckets.end(), seconds) -
      kLatencyBuckets.begin());
  ++m.buckets[b];
  m.seconds += seconds;
  ++m.count;
  if (r.status == 200 && r.method == "POST") {
    if (r.route == kCheckIn) ++checkins_;
    if (r.route == kReport) ++reports_;
  }
}

std::string Metrics::render() const {
  std::string out;
  out.reserve(16 * kKiB);
  {
    MutexLock lock(mu_);
    head(out, "drover_http_requests_total", "counter", "Requests answered, by route and status.");
    for (const auto& [key, m] : routes_) {
      for (const auto& [status, n] : m.by_status) {
        sample(out, "drover_http_requests_total",
               "method=\"" + label(key.first) + "\",route=\"" + label(key.second) + "\",status=\"" +
                   std::to_string(status) + "\"",
               static_cast<double>(n));
      }
    }
    head(out, "drover_http_request_duration_seconds", "histogram",
         "Time from a request's arrival to its answer going out, durable writes included.");
    for (const auto& [key, m] : routes_) {
      const std::string base =
          "method=\"" + label(key.first) + "\",route=\"" + label(key.second) + "\"";
      uint64_t cumulative = 0;
      for (size_t i = 0; i < kLatencyBuckets.size(); ++i) {
        cumulative += m.buckets[i];
        sample(out, "drover_http_request_duration_seconds_bucket",
               base + ",le=\"" + number(kLatencyBuckets[i]) + "\"",
               static_cast<double>(cumulative));
      }
      sample(out, "drover_http_request_duration_seconds_bucket", base + ",le=\"+Inf\"",
             static_cast<double>(m.count));
      sample(out, "drover_http_request_duration_seconds_sum", base, m.seconds);
      sample(out, "drover_http_request_duration_seconds_count", base, static_cast<double>(m.count));
    }
    head(out, "drover_device_checkins_total", "counter", "Device check-ins answered 200.");
    sample(out, "drover_device_checkins_total", "", static_cast<double>(checkins_));
    head(out, "drover_device_status_reports_total", "counter",
         "Deployment status reports answered 200.");
    sample(out, "drover_device_status_reports_total", "", static_cast<double>(reports_));
  }
  if (sources_.open_connections) {
    head(out, "drover_http_open_connections", "gauge", "Connections open now.");
    sample(out, "drover_http_open_connections", "",
           static_cast<double>(sources_.open_connections()));
  }
  if (sources_.store != nullptr) {
    const GroupCommitStats s = sources_.store->stats();
    head(out, "drover_store_commits_total", "counter",
         "Store transactions committed by the group commit (one fsync each).");
    sample(out, "drover_store_commits_total", "", static_cast<double>(s.commits));
    head(out, "drover_store_committed_batches_total", "counter",
         "Write batches those commits carried; over commits, the mean batch per commit.");
    sample(out, "drover_store_committed_batches_total", "", static_cast<double>(s.batches));
    head(out, "drover_store_commit_largest_group", "gauge", "The most batches one commit took.");
    sample(out, "drover_store_commit_largest_group", "", static_cast<double>(s.largest_group));
    head(out, "drover_store_failed_commits_total", "counter",
         "Commits that failed (the store then stops taking writes).");
    sample(out, "drover_store_failed_commits_total", "", static_cast<double>(s.failed));
    head(out, "drover_store_commit_duration_seconds", "histogram", "Time one commit took.");
    uint64_t cumulative = 0;
    for (size_t i = 0; i < GroupCommitStats::kBucketsMs.size(); ++i) {
      cumulative += s.by_duration[i];
      sample(out, "drover_store_commit_duration_seconds_bucket",
             "le=\"" + number(GroupCommitStats::kBucketsMs[i] / 1000) + "\"",
             static_cast<double>(cumulative));
    }
    sample(out, "drover_store_commit_duration_seconds_bucket", "le=\"+Inf\"",
           static_cast<double>(s.commits));
    sample(out, "drover_store_commit_duration_seconds_sum", "",
           std::chrono::duration<double>(s.commit_time).count());
    sample(out, "drover_store_commit_duration_seconds_count", "", static_cast<double>(s.commits));
  }
  if (sources_.devices != nullptr) {
    const DeviceService::Census c = sources_.devices->census();
    head(out, "drover_devices", "gauge", "Devices in service, by the update state they reported.");
    for (size_t i = 0; i < c.by_state.size(); ++i) {
      sample(out, "drover_devices",
             std::string("state=\"") + to_string(static_cast<UpdateState>(i)) + "\"",
             static_cast<double>(c.by_state[i]));
    }
    head(out, "drover_devices_pending_enrollment", "gauge",
         "Devices that enrolled without a token and wait for an operator.");
    sample(out, "drover_devices_pending_enrollment", "", static_cast<double>(c.pending));
    head(out, "drover_devices_decommissioned", "gauge", "Devices taken out of service.");
    sample(out, "drover_devices_decommissioned", "", static_cast<double>(c.decommissioned));
  }
  if (sources_.engine != nullptr) {
    std::map<std::string, uint64_t> by_state;
    uint64_t halted = 0;
    for (const std::string& id : sources_.engine->loaded_rollouts()) {
      auto r = sources_.engine->get(id);
      if (!r.ok()) continue;
      ++by_state[to_string(r->state)];
      halted += r->halted.size();
    }
    head(out, "drover_rollouts", "gauge", "Loaded rollouts, by state.");
    for (const auto& [state, n] : by_state)
      sample(out, "drover_rollouts", "state=\"" + state + "\"", static_cast<double>(n));
    head(out, "drover_strata_halted", "gauge", "Halted strata of the loaded rollouts.");
    sample(out, "drover_strata_halted", "", static_cast<double>(halted));
    head(out, "drover_offers_total", "counter", "Update offers made to devices.");
    sample(out, "drover_offers_total", "", static_cast<double>(sources_.engine->offers_made()));
  }
  return out;
}

void add_metrics_route(Router& router, const Metrics& metrics, OperatorTokens& tokens) {
  router.add("GET", "/metrics", [&metrics, &tokens](const Request& req, const Params&) {
    if (!loopback(req.remote)) {
      auto token = bearer_token(req);
      if (!token.ok()) return error_response(token.error());
      auto who = tokens.authenticate(*token);
      if (!who.ok()) return error_response(who.error());
    }
    Response r = Response::json(200, metrics.render());
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    return r;
  });
}

}  // namespace drover::http
