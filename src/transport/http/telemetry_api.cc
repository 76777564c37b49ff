#include "transport/http/telemetry_api.h"

#include <charconv>
#include <map>

#include "base/units.h"
#include "model/codec_json.h"
#include "store/group_commit.h"
#include "transport/http/device_api.h"
#include "transport/http/operator_access.h"

namespace drover::http {
namespace {

using nlohmann::json;
using telemetry::Resolution;

constexpr size_t kMaxFreshnessRows = 1000;

int64_t now_ms(const Clock& clock) { return clock.now().time_since_epoch().count(); }

double age_of(int64_t now, int64_t t) { return static_cast<double>(now - t) / 1000.0; }

constexpr int64_t kTimeLimit = int64_t{1} << 62;  // the store's range of times
constexpr size_t kMaxRawPoints = 100'000;         // a raw range longer than this: use 5m

// A time in a query: milliseconds since the epoch, a UTC timestamp ("2026-12-01T00:00:00Z"),
// or a duration meaning that long ago ("6h"); clamped to the store's range of times.
Result<int64_t> time_param(std::string_view text, int64_t now) {
  int64_t ms = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), ms);
  if (ec == std::errc() && end == text.data() + text.size()) {
    return std::clamp(ms, -kTimeLimit, kTimeLimit);
  }
  if (auto t = parse_utc_timestamp(text); t.ok()) return t->time_since_epoch().count();
  if (auto d = parse_duration(text); d.ok()) return now - d->count();
  return invalid_argument("'" + std::string(text) +
                          "' is not a time (ms, 2026-12-01T00:00:00Z, or a duration ago like 6h)");
}

Result<std::pair<int64_t, int64_t>> range_params(const Query& q, int64_t now) {
  int64_t until = now;
  int64_t from = now - 3'600'000;
  if (q.has("until")) {
    auto t = time_param(q.get("until"), now);
    if (!t.ok()) return t.error();
    until = *t;
  }
  if (q.has("from")) {
    auto t = time_param(q.get("from"), now);
    if (!t.ok()) return t.error();
    from = *t;
  }
  if (until <= from) return invalid_argument("'from' must come before 'until'");
  return std::pair{from, until};
}

Result<std::optional<Resolution>> resolution_param(const Query& q) {
  if (!q.has("resolution")) return std::optional<Resolution>();
  for (Resolution r : {Resolution::kRaw, Resolution::k5m, Resolution::k1h}) {
    if (q.get("resolution") == telemetry::resolution_name(r)) return std::optional<Resolution>(r);
  }
  return invalid_argument("resolution is raw, 5m or 1h");
}

json labels_json(const std::vector<std::pair<std::string, std::string>>& labels) {
  json out = json::object();
  for (const auto& [k, v] : labels) out[k] = v;
  return out;
}

json points_json(Resolution r, const std::vector<telemetry::RollupPoint>& points, int64_t now) {
  json out = json::array();
  for (const auto& p : points) {
    if (r == Resolution::kRaw) {
      out.push_back({{"t", p.t_ms}, {"value", p.sum}, {"age_s", age_of(now, p.t_ms)}});
    } else {
      out.push_back({{"t", p.t_ms},
                     {"min", p.min},
                     {"max", p.max},
                     {"mean", p.mean()},
                     {"count", p.count},
                     {"age_s", age_of(now, p.t_ms)}});
    }
  }
  return out;
}

Response ingest(DeviceAuth& auth, telemetry::TelemetryService& telemetry, const Request& req) {
  // No answer here rests on a change in the fleet store (nothing is written there): none
  // waits for its commits — the success waits for the telemetry store below.
  if (CommitScope* scope = CommitScope::current()) scope->own_writes_only();
  auto device = bearer_device(auth, req);
  if (!device.ok()) return error_response(device.error());
  if (req.header("Content-Type") != "application/cbor") {
    return Response::error(415, "unsupported_media_type",
                           "a telemetry batch is application/cbor (docs/formats.md)");
  }
  const std::string_view encoding = req.header("Content-Encoding");
  if (!encoding.empty() && encoding != "zstd" && encoding != "identity") {
    return Response::error(415, "unsupported_media_type", "Content-Encoding is zstd or identity");
  }
  auto batch = protocol::decode_telemetry_batch(req.body, encoding == "zstd");
  if (!batch.ok()) {
    if (batch.error().code == ErrorCode::kResourceExhausted) {
      return Response::error(413, "too_large", batch.error().message);
    }
    return error_response(batch.error());
  }
  auto result = telemetry.ingest(*device, *batch);
  if (!result.ok()) {
    if (result.error().code == ErrorCode::kResourceExhausted) {
      return Response::error(422, "limit_exceeded", result.error().message);
    }
    return error_response(result.error());
  }
  // The answer acknowledges the batch: it leaves once the telemetry log holds it.
  const telemetry::AppendResult& s = result->stored;
  // The rules' name, so the agent fetches them again when they changed.
  auto rules = telemetry.rules_for(*device);
  Response r = ok_json({{"stream", batch->stream},
                        {"seq", batch->sequence},
                        {"retry", s.retry},
                        {"accepted", s.accepted},
                        {"duplicates", s.duplicates},
                        {"refused", s.refused},
                        {"rules", rules.ok() ? rules->etag : ""}});
  if (!telemetry.tsdb().durable(s.lsn)) {
    r.defer = [&telemetry, lsn = s.lsn](std::function<void(Status)> go) {
      telemetry.tsdb().when_durable(lsn, std::move(go));
    };
  }
  return r;
}

}  // namespace

Result<telemetry::Cohort> cohort_of(const Query& q) {
  telemetry::Cohort c;
  c.filter.device_types = q.all("device_type");
  c.filter.hardware_revisions = q.all("hardware_revision");
  c.filter.sites = q.all("site");
  c.filter.connectivity = q.all("connectivity");
  c.filter.tags = q.all("tag");
  c.component = std::string(q.get("component"));
  c.version = std::string(q.get("version"));
  if (!c.version.empty() && c.component.empty()) {
    return invalid_argument("version needs component (e.g. component=firmware&version=4.2.1)");
  }
  return c;
}

void add_telemetry_device_api(Router& router, DeviceAuth& auth,
                              telemetry::TelemetryService& telemetry) {
  // Decoding a batch of up to a megabyte of zstd is work for a worker, not an I/O thread.
  router.add("POST", "/api/device/v1/telemetry",
             offloaded([&auth, &telemetry](const Request& req, const Params&) {
               return ingest(auth, telemetry, req);
             }));
  // Offloaded: the rules may come from the store (at most every 30 s per type).
  router.add("GET", "/api/device/v1/telemetry/rules",
             offloaded([&auth, &telemetry](const Request& req, const Params&) {
               if (CommitScope* scope = CommitScope::current()) scope->own_writes_only();
               auto device = bearer_device(auth, req);
               if (!device.ok()) return error_response(device.error());
               auto rules = telemetry.rules_for(*device);
               if (!rules.ok()) return error_response(rules.error());
               return Response::json(200, protocol::encode_telemetry_rules(*rules));
             }));
}

void add_telemetry_operator_api(Router& router, OperatorTokens& tokens,
                                telemetry::TelemetryService& telemetry, ProfileService& profiles,
                                Clock& clock) {
  router.add(
      "GET", "/api/v1/devices/{id}/telemetry",
      guarded(tokens, Role::kViewer,
              [&telemetry, &clock](const Request&, const Params& p, const ApiToken&) {
                const int64_t now = now_ms(clock);
                auto values = telemetry.latest(p.get("id"));
                if (!values.ok()) return error_response(values.error());
                json series = json::array();
                for (const auto& v : *values) {
                  series.push_back({{"metric", v.metric},
                                    {"labels", labels_json(v.labels)},
                                    {"t", v.t_ms},
                                    {"value", v.value},
                                    {"age_s", v.age_s}});
                }
                return ok_json(
                    {{"device", std::string(p.get("id"))}, {"now", now}, {"series", series}});
              }));

  router.add(
      "GET", "/api/v1/devices/{id}/telemetry/{metric}",
      offloaded(guarded(
          tokens, Role::kViewer,
          [&telemetry, &clock](const Request& req, const Params& p, const ApiToken&) {
            auto q = query_of(req, {"from", "until", "resolution", "label"});
            if (!q.ok()) return error_response(q.error());
            const int64_t now = now_ms(clock);
            auto range = range_params(*q, now);
            if (!range.ok()) return error_response(range.error());
            auto resolution = resolution_param(*q);
            if (!resolution.ok()) return error_response(resolution.error());
            telemetry::RangeQuery query;
            query.device = std::string(p.get("id"));
            query.metric = std::string(p.get("metric"));
            for (const std::string& label : q->all("label")) {
              auto colon = label.find(':');
              if (colon == std::string::npos) {
                return error_response(invalid_argument("label is name:value, got '" + label + "'"));
              }
              query.labels.emplace_back(label.substr(0, colon), label.substr(colon + 1));
            }
            std::sort(query.labels.begin(), query.labels.end());
            query.from_ms = range->first;
            query.until_ms = range->second;
            query.resolution = *resolution;
            auto answer = telemetry.range(query);
            if (!answer.ok()) return error_response(answer.error());
            if (answer->points.size() > kMaxRawPoints) {
              return error_response(invalid_argument(
                  std::to_string(answer->points.size()) + " points: more than " +
                  std::to_string(kMaxRawPoints) +
                  " in one answer; ask for resolution=5m or 1h, or a shorter range"));
            }
            return ok_json(
                {{"device", query.device},
                 {"metric", query.metric},
                 {"labels", labels_json(query.labels)},
                 {"from", query.from_ms},
                 {"until", query.until_ms},
                 {"now", answer->now_ms},
                 {"resolution", telemetry::resolution_name(answer->resolution)},
                 {"points", points_json(answer->resolution, answer->points, answer->now_ms)}});
          })));

  router.add(
      "GET", "/api/v1/telemetry/cohort",
      offloaded(guarded(
          tokens, Role::kViewer,
          [&telemetry, &clock](const Request& req, const Params&, const ApiToken&) {
            auto q = query_of(req, {"metric", "from", "until", "device_type", "hardware_revision",
                                    "site", "connectivity", "tag", "component", "version"});
            if (!q.ok()) return error_response(q.error());
            if (!q->has("metric")) return error_response(invalid_argument("metric is required"));
            auto cohort = cohort_of(*q);
            if (!cohort.ok()) return error_response(cohort.error());
            auto range = range_params(*q, now_ms(clock));
            if (!range.ok()) return error_response(range.error());
            auto answer = telemetry.cohort(*cohort, q->get("metric"), range->first, range->second);
            if (!answer.ok()) return error_response(answer.error());
            return ok_json(
                {{"metric", std::string(q->get("metric"))},
                 {"devices", answer->devices},
                 {"reporting", answer->reporting},
                 {"now", answer->now_ms},
                 {"resolution", telemetry::resolution_name(answer->resolution)},
                 {"points", points_json(answer->resolution, answer->points, answer->now_ms)}});
          })));

  router.add(
      "GET", "/api/v1/telemetry/freshness",
      offloaded(guarded(
          tokens, Role::kViewer,
          [&telemetry, &clock](const Request& req, const Params&, const ApiToken&) {
            auto q = query_of(req, {"device_type", "hardware_revision", "site", "connectivity",
                                    "tag", "component", "version", "state"});
            if (!q.ok()) return error_response(q.error());
            auto cohort = cohort_of(*q);
            if (!cohort.ok()) return error_response(cohort.error());
            auto rows = telemetry.freshness(*cohort);
            if (!rows.ok()) return error_response(rows.error());
            std::map<std::string, size_t> counts;
            json devices = json::array();
            size_t listed = 0;
            for (const auto& f : *rows) {
              const std::string state = to_string(f.freshness);
              ++counts[state];
              if (q->has("state") && q->get("state") != state) continue;
              if (listed++ >= kMaxFreshnessRows) continue;
              devices.push_back(
                  {{"device", f.device},
                   {"device_type", f.device_type},
                   {"state", state},
                   {"data_age_s", f.data_age_s < 0 ? json(nullptr) : json(f.data_age_s)},
                   {"contact_age_s", f.contact_age_s < 0 ? json(nullptr) : json(f.contact_age_s)},
                   {"report_every", format_duration(f.contract.report_every)},
                   {"stale_after", format_duration(f.contract.effective_stale_after())},
                   {"dropped_on_device", f.dropped_on_device}});
            }
            return ok_json({{"now", now_ms(clock)},
                            {"counts", counts},
                            {"devices", devices},
                            {"listed", std::min(listed, kMaxFreshnessRows)},
                            {"matched", listed}});
          })));

  router.add(
      "GET", "/api/v1/profiles",
      guarded(tokens, Role::kViewer, [&profiles](const Request&, const Params&, const ApiToken&) {
        auto all = profiles.list();
        if (!all.ok()) return error_response(all.error());
        json out = json::array();
        for (const auto& p : *all) out.push_back(profile_json(p));
        return ok_json({{"profiles", out}});
      }));
  router.add(
      "GET", "/api/v1/profiles/{device_type}",
      guarded(tokens, Role::kViewer, [&profiles](const Request&, const Params& p, const ApiToken&) {
        auto profile = profiles.get(p.get("device_type"));
        if (!profile.ok()) return error_response(profile.error());
        return ok_json(profile_json(*profile));
      }));
  router.add("PUT", "/api/v1/profiles/{device_type}",
             guarded(tokens, Role::kOperator,
                     [&profiles](const Request& req, const Params& p, const ApiToken&) {
                       auto profile = parse_body<DeviceProfile>(req, [&p](const JsonReader& r) {
                         DeviceProfile out = read_profile(r);
                         if (out.device_type != p.get("device_type"))
                           r.fail("device_type", "must match the path");
                         return out;
                       });
                       if (!profile.ok()) return error_response(profile.error());
                       auto stored = profiles.put(std::move(*profile));
                       if (!stored.ok()) return error_response(stored.error());
                       return ok_json(profile_json(*stored));
                     }));
}

}  // namespace drover::http
