#include "transport/http/device_api.h"

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>

#include "base/json_reader.h"
#include "base/utf8.h"
#include "fleet/update_repository.h"
#include "model/codec_json.h"
#include "model/version.h"
#include "protocol/device.h"
#include "security/crypto.h"
#include "store/group_commit.h"
#include "transport/http/json_body.h"
#include "transport/http/range.h"

namespace drover::http {
namespace {

using nlohmann::json;

Response ok_json(const json& j) { return json_response(200, j); }

std::string read_bytes(const JsonReader& r, const char* key) {
  return r.take(key, security::from_base64url(r.str(key)));
}

}  // namespace

Result<std::string> bearer_device(DeviceAuth& auth, const Request& req) {
  auto token = bearer_token(req);
  if (!token.ok()) return token.error();
  return auth.authorize(*token);
}

Response error_response(const Error& e) {
  return Response::error(protocol::http_status(e.code), error_code_name(e.code), e.message);
}

namespace {

// [{"from": ms, "until": ms}, ...]: when a device may interrupt itself for an update.
json windows_json(const std::vector<TimeRange>& windows) {
  json out = json::array();
  for (const TimeRange& w : windows) {
    out.push_back({{"from", w.from.time_since_epoch().count()},
                   {"until", w.until.time_since_epoch().count()}});
  }
  return out;
}

// [{"id", "action", "argument", "expires_at"}, ...]: a check-in answer's remote commands.
json commands_json(const std::vector<Command>& commands) {
  json out = json::array();
  for (const Command& c : commands) {
    json j{{"id", c.id},
           {"action", protocol::to_string(c.action)},
           {"expires_at", c.expires_at.time_since_epoch().count()}};
    if (!c.argument.empty()) j["argument"] = c.argument;
    out.push_back(std::move(j));
  }
  return out;
}

// A check-in answer's "config": the version and hash the device should run, or null.
json config_json(const std::optional<ConfigTarget>& target) {
  if (!target) return nullptr;
  return {{"version", target->version}, {"sha256", target->sha256}};
}

// The content of `a`, whole (200) or one range of it (206), to a device it is built for.
Response download(DeviceAuth& auth, DeviceService& service, ArtifactService& artifacts,
                  const Request& req, const Result<Artifact>& a) {
  auto id = bearer_device(auth, req);
  if (!id.ok()) return error_response(id.error());
  if (!a.ok()) return error_response(a.error());
  const std::optional<Device> d = service.device(*id);
  if (!d) return error_response(not_found("unknown device '" + *id + "'"));
  const auto& types = a->device_types;
  const auto& revisions = a->hardware_revisions;
  if (std::find(types.begin(), types.end(), d->device_type) == types.end() ||
      (!revisions.empty() &&
       std::find(revisions.begin(), revisions.end(), d->hardware_revision) == revisions.end())) {
    return error_response(
        {ErrorCode::kPermissionDenied, "artifact " + a->key() + " is not built for this device"});
  }
  const std::string path = artifacts.path_of(*a);
  std::error_code ec;
  const uint64_t size = std::filesystem::file_size(path, ec);
  if (ec || size != a->size_bytes) {
    return error_response({ErrorCode::kCorruption, "the content of " + a->key() + " is missing"});
  }
  const std::string etag = "\"" + a->sha256 + "\"";
  // If-Range: a range of another version of the content must not be spliced onto this one.
  std::string_view range_header = req.header("Range");
  const std::string_view if_range = req.header("If-Range");
  if (!if_range.empty() && if_range != etag) range_header = {};
  const RangeResult range = resolve_range(range_header, size);

  Response r;
  r.content_type = "application/octet-stream";
  r.headers = {{"Accept-Ranges", "bytes"}, {"ETag", etag}};
  if (range.error) {
    if (*range.error == RangeError::kMalformed)
      return Response::error(400, "invalid_argument", "malformed Range header");
    Response refused = Response::error(416, "range_not_satisfiable",
                                       *range.error == RangeError::kMultiple
                                           ? "one range per request"
                                           : "the range starts past the end of the content");
    refused.headers = {{"Content-Range", "bytes */" + std::to_string(size)}};
    return refused;
  }
  if (range.range) {
    r.status = 206;
    r.headers.emplace_back("Content-Range",
                           "bytes " + std::to_string(range.range->first) + "-" +
                               std::to_string(range.range->first + range.range->length - 1) + "/" +
                               std::to_string(size));
    r.file = Response::FileRange{path, range.range->first, range.range->length};
  } else {
    r.file = Response::FileRange{path, 0, size};
  }
  return r;
}

// What a device reports installed, bounded (stored records are not: a limit added later
// must not stop a server from loading what it stored before).
std::vector<InstalledComponent> reported_installed(const JsonReader& r) {
  auto installed = read_installed(r);
  if (installed.size() > kMaxInstalledComponents) {
    r.fail("installed", "at most " + std::to_string(kMaxInstalledComponents) + " components");
  }
  return installed;
}

// 429 when `limiter` says the request's source is over its rate; nullopt to go on. This
// machine is not limited (a local reverse proxy would otherwise be one source for all).
std::optional<Response> over_limit(SourceRateLimiter* limiter, const Request& req) {
  if (limiter == nullptr) return std::nullopt;
  const std::string_view source = source_address(req.remote);
  if (is_loopback(source)) return std::nullopt;
  const Duration wait = limiter->take(source_key(source));
  if (wait <= Duration(0)) return std::nullopt;
  const int64_t seconds_left = (wait.count() + 999) / 1000;
  Response r = Response::error(
      429, "rate_limited",
      "too many requests from this address; retry in " + std::to_string(seconds_left) + " s");
  r.headers.emplace_back("Retry-After", std::to_string(seconds_left));
  return r;
}

// The artifact a consistent-snapshot target URL names: "<name>/<sha256>.<version>", signed.
Result<Artifact> signed_target(ArtifactService& artifacts, const UpdateRepository& repository,
                               std::string_view name, std::string_view file) {
  const size_t dot = file.find('.');
  if (dot != 64) return not_found("no target file of that name");
  auto a = artifacts.get(name, file.substr(dot + 1));
  if (!a.ok()) return a.error();
  if (a->sha256 != file.substr(0, dot) || !repository.is_signed(*a))
    return not_found("no signed target " + a->key() + " with that hash");
  return a;
}

}  // namespace

void add_update_metadata(Router& router, UpdateRepository& repository, DeviceAuth& auth,
                         DeviceService& service, ArtifactService& artifacts) {
  router.add("GET", "/tuf/metadata/{file}", [&repository](const Request&, const Params& params) {
    auto bytes = repository.metadata(params.get("file"));
    if (!bytes.ok()) return error_response(bytes.error());
    Response r = Response::json(200, std::move(*bytes));
    r.headers = {{"Cache-Control", "no-cache"}};  // timestamp.json changes under one name
    return r;
  });
  router.add("GET", "/tuf/targets/{name}/{file}",
             [&repository, &auth, &service, &artifacts](const Request& req, const Params& params) {
               return download(
                   auth, service, artifacts, req,
                   signed_target(artifacts, repository, params.get("name"), params.get("file")));
             });
}

void add_device_api(Router& router, DeviceAuth& auth, DeviceService& service,
                    ArtifactService* artifacts, DeviceApiLimits limits) {
  if (artifacts != nullptr) {
    router.add("GET", "/api/device/v1/artifacts/{name}/{version}",
               [&auth, &service, artifacts](const Request& req, const Params& params) {
                 return download(auth, service, *artifacts, req,
                                 artifacts->get(params.get("name"), params.get("version")));
               });
  }
  router.add("POST", "/api/device/v1/enroll", [&auth, limits](const Request& req, const Params&) {
    auto body = parse_body<EnrollRequest>(req, [](const JsonReader& r) {
      r.allow_only({"device_id", "device_type", "hardware_revision", "public_key",
                    "enrollment_token", "installed", "site", "factory_certificate",
                    "factory_signature"});
      EnrollRequest e;
      e.device_id = r.str("device_id");
      e.device_type = r.str("device_type");
      e.hardware_revision = r.str("hardware_revision");
      e.public_key = read_bytes(r, "public_key");
      e.enrollment_token = r.str_or("enrollment_token", "");
      e.installed = reported_installed(r);
      e.site = r.str_or("site", "");
      e.factory_certificate = r.str_or("factory_certificate", "");
      if (e.factory_certificate.size() > security::kMaxChainBytes) {
        r.fail("factory_certificate",
               "is longer than " + std::to_string(security::kMaxChainBytes) + " bytes");
      }
      if (r.has("factory_signature")) e.factory_signature = read_bytes(r, "factory_signature");
      return e;
    });
    if (!body.ok()) return error_response(body.error());
    // Only an enrollment without a token or certificate may leave a record behind (pending):
    // those are limited tightly per source. One with either counts as a login (tokens are not
    // guessed for free, and a factory enrolls its devices at the login rate).
    const bool vouched = !body->enrollment_token.empty() || !body->factory_certificate.empty();
    if (auto refused = over_limit(vouched ? limits.login : limits.enroll, req)) {
      return *refused;
    }
    auto state = auth.enroll(*body);
    if (!state.ok()) return error_response(state.error());
    return ok_json({{"device_id", body->device_id}, {"enrollment", to_string(*state)}});
  });

  router.add("POST", "/api/device/v1/auth/challenge",
             [&auth, limits](const Request& req, const Params&) {
               if (auto refused = over_limit(limits.login, req)) return *refused;
               auto id = parse_body<std::string>(req, [](const JsonReader& r) {
                 r.allow_only({"device_id"});
                 return r.str("device_id");
               });
               if (!id.ok()) return error_response(id.error());
               auto challenge = auth.challenge(*id);
               if (!challenge.ok()) return error_response(challenge.error());
               return ok_json({{"challenge", *challenge}});
             });

  struct Login {
    std::string device_id, challenge, signature;
  };
  router.add(
      "POST", "/api/device/v1/auth/token", [&auth, limits](const Request& req, const Params&) {
        if (auto refused = over_limit(limits.login, req)) return *refused;
        auto login = parse_body<Login>(req, [](const JsonReader& r) {
          r.allow_only({"device_id", "challenge", "signature"});
          return Login{r.str("device_id"), r.str("challenge"), read_bytes(r, "signature")};
        });
        if (!login.ok()) return error_response(login.error());
        auto token = auth.authenticate(login->device_id, login->challenge, login->signature);
        if (!token.ok()) return error_response(token.error());
        return ok_json(
            {{"token", token->token}, {"expires_at", token->expires.time_since_epoch().count()}});
      });

  struct Rotation {
    std::string public_key, signature;
  };
  router.add("POST", "/api/device/v1/auth/rotate", [&auth](const Request& req, const Params&) {
    auto device = bearer_device(auth, req);
    if (!device.ok()) return error_response(device.error());
    auto body = parse_body<Rotation>(req, [](const JsonReader& r) {
      r.allow_only({"public_key", "signature"});
      return Rotation{read_bytes(r, "public_key"), read_bytes(r, "signature")};
    });
    if (!body.ok()) return error_response(body.error());
    if (auto st = auth.rotate_key(*device, body->public_key, body->signature); !st.ok())
      return error_response(st.error());
    return ok_json(
        {{"device_id", *device}, {"public_key", security::to_base64url(body->public_key)}});
  });

  struct CheckIn {
    std::vector<InstalledComponent> installed;
    UpdateState state = UpdateState::kIdle;
    std::string holding;
    bool keeps_previous = false;
    std::optional<protocol::ConfigReport> config;
  };
  router.add(
      "POST", "/api/device/v1/checkin", [&auth, &service](const Request& req, const Params&) {
        auto device = bearer_device(auth, req);
        if (!device.ok()) return error_response(device.error());
        auto body = parse_body<CheckIn>(req, [](const JsonReader& r) {
          r.allow_only({"installed", "update_state", "holding", "keeps_previous", "config"});
          CheckIn c;
          c.installed = reported_installed(r);
          if (r.has("update_state"))
            c.state = r.take("update_state", parse_update_state(r.str("update_state")));
          c.holding = r.str_or("holding", "");
          if ((c.state == UpdateState::kReady) != !c.holding.empty())
            r.fail("holding", "names the rollout whose image a device in state 'ready' holds");
          c.keeps_previous = r.boolean_or("keeps_previous", false);
          if (r.has("config")) {
            const JsonReader cfg = r.child("config");
            cfg.allow_only({"sha256", "error"});
            // The device's own words, kept readable and short rather than refused.
            std::string error = utf8_head(cfg.str_or("error", ""), protocol::kMaxConfigError);
            c.config = protocol::ConfigReport{cfg.str_or("sha256", ""), std::move(error)};
            // Checked here, before the registry is touched: a malformed one changes nothing.
            const std::string& sha = c.config->sha256;
            if (!sha.empty() && !protocol::is_sha256_hex(sha))
              cfg.fail("sha256", "64 lower-case hex digits, or \"\" for none");
          }
          return c;
        });
        if (!body.ok()) return error_response(body.error());
        // The registry expects components in order; the wire does not promise it.
        std::sort(body->installed.begin(), body->installed.end(),
                  [](const auto& a, const auto& b) { return a.component < b.component; });
        auto answer =
            service.check_in({*device, body->installed, body->state, body->holding,
                              body->keeps_previous, body->config ? &*body->config : nullptr});
        if (!answer.ok()) return error_response(answer.error());
        const int64_t next = answer->next_checkin.count() / 1000;
        if (answer->hold) {
          const HoldAnswer& h = *answer->hold;
          return ok_json({{"offer", nullptr},
                          {"hold",
                           {{"rollout_id", h.rollout_id},
                            {"action", to_string(h.action)},
                            {"windows", windows_json(h.windows)},
                            {"reason", h.reason}}},
                          {"commands", commands_json(answer->commands)},
                          {"config", config_json(answer->config)},
                          {"next_checkin_s", next}});
        }
        if (!answer->offer && answer->commands.empty() && !answer->config) {
          // "Nothing for you" needs no one else's change to be durable first: it waits only
          // for its own write (a new inventory), if any.
          if (CommitScope* scope = CommitScope::current()) scope->own_writes_only();
          // The answer to nearly every check-in, written without building a document.
          return Response::json(200, "{\"offer\":null,\"commands\":[],\"next_checkin_s\":" +
                                         std::to_string(next) + "}");
        }
        json offer = nullptr;
        if (answer->offer) {
          const UpdateOffer& o = *answer->offer;
          offer = {{"rollout_id", o.rollout_id},   {"component", o.component},
                   {"version", o.version},         {"size", o.size_bytes},
                   {"sha256", o.sha256},           {"revert", o.revert},
                   {"switch_back", o.switch_back}, {"windows", windows_json(o.windows)}};
        }
        return ok_json({{"offer", offer},
                        {"commands", commands_json(answer->commands)},
                        {"config", config_json(answer->config)},
                        {"next_checkin_s", next}});
      });

  struct Inventory {
    std::optional<std::vector<InstalledComponent>> installed;
    std::optional<std::vector<DeviceAttribute>> attributes;
  };
  router.add("POST", "/api/device/v1/inventory",
             [&auth, &service](const Request& req, const Params&) {
               auto device = bearer_device(auth, req);
               if (!device.ok()) return error_response(device.error());
               auto body = parse_body<Inventory>(req, [](const JsonReader& r) {
                 r.allow_only({"installed", "attributes"});
                 Inventory inv;
                 if (r.has("installed")) inv.installed = reported_installed(r);
                 if (r.has("attributes")) inv.attributes = read_attributes(r);
                 return inv;
               });
               if (!body.ok()) return error_response(body.error());
               // What is reported replaces what was known; what is left out stays.
               auto updated = service.update(*device, [&](Device& d) {
                 if (body->installed) d.installed = *body->installed;
                 if (body->attributes) d.attributes = *body->attributes;
                 return ok_status();
               });
               if (!updated.ok()) return error_response(updated.error());
               json installed = json::object();
               for (const auto& c : updated->installed) installed[c.component] = c.version;
               json attributes = json::object();
               for (const auto& a : updated->attributes) attributes[a.key] = a.value;
               return ok_json({{"installed", installed}, {"attributes", attributes}});
             });

  struct Report {
    std::string version, status, message, standby;
  };
  router.add("POST", "/api/device/v1/deployments/{rollout_id}/status",
             [&auth, &service](const Request& req, const Params& params) {
               auto device = bearer_device(auth, req);
               if (!device.ok()) return error_response(device.error());
               auto body = parse_body<Report>(req, [](const JsonReader& r) {
                 r.allow_only({"version", "status", "message", "standby"});
                 Report out{r.str("version"), r.str("status"), r.str_or("message", ""),
                            r.str_or("standby", "")};
                 // A longer message is cut by the engine, not refused: refusing would lose
                 // the outcome it comes with.
                 if (!out.standby.empty() && !Version::parse(out.standby).ok())
                   r.fail("standby", "must be a version");
                 return out;
               });
               if (!body.ok()) return error_response(body.error());
               auto status = protocol::parse_report(body->status);
               if (!status.ok()) return error_response(status.error());
               auto state = service.report_status({*device, params.get("rollout_id"), body->version,
                                                   *status, body->message, body->standby});
               if (!state.ok()) return error_response(state.error());
               return ok_json({{"state", to_string(*state)}});
             });
}

}  // namespace drover::http
