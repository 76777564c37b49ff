#include "transport/http/config_api.h"

#include <charconv>
#include <nlohmann/json.hpp>
#include <string>

#include "model/codec_json.h"
#include "protocol/device_config.h"
#include "store/group_commit.h"
#include "transport/http/device_api.h"
#include "transport/http/json_body.h"
#include "transport/http/operator_access.h"

namespace drover::http {
namespace {

using nlohmann::json;

Result<uint64_t> version_of(std::string_view text) {
  uint64_t v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || v == 0)
    return invalid_argument("a version is a whole number from 1");
  return v;
}

}  // namespace

void add_config_api(Router& router, OperatorTokens& tokens, DeviceAuth& auth,
                    DeviceService& devices, ConfigService& configs) {
  router.add("GET", "/api/device/v1/config",
             [&auth, &devices, &configs](const Request& req, const Params&) {
               // The document may have been written by a request whose commit is still
               // queued: the answer waits for it, so no device applies a version that a
               // failed commit would take back.
               if (CommitScope* scope = CommitScope::current()) scope->depend_on_all();
               auto id = bearer_device(auth, req);
               if (!id.ok()) return error_response(id.error());
               const std::optional<Device> device = devices.device(*id);
               if (!device) return error_response(not_found("unknown device '" + *id + "'"));
               auto config = configs.for_device(device->device_type);
               if (!config.ok()) return error_response(config.error());
               return Response::json(200, protocol::encode_device_config(*config));
             });

  router.add("GET", "/api/v1/configs/{device_type}",
             guarded(tokens, Role::kViewer,
                     [&devices, &configs](const Request&, const Params& p, const ApiToken&) {
                       // The newest may be another request's write still queued: wait.
                       if (CommitScope* scope = CommitScope::current()) scope->depend_on_all();
                       auto doc = configs.get(p.get("device_type"));
                       if (!doc.ok()) return error_response(doc.error());
                       const DeviceService::ConfigTally t =
                           devices.config_tally(doc->device_type, doc->sha256);
                       json out = config_document_json(*doc);
                       out["devices"] = {{"in_sync", t.in_sync},
                                         {"pending", t.pending},
                                         {"failed", t.failed},
                                         {"some_pending", t.some_pending},
                                         {"some_failed", t.some_failed}};
                       return ok_json(out);
                     }));
  router.add(
      "GET", "/api/v1/configs/{device_type}/versions",
      guarded(tokens, Role::kViewer, [&configs](const Request&, const Params& p, const ApiToken&) {
        auto all = configs.history(p.get("device_type"));
        if (!all.ok()) return error_response(all.error());
        json versions = json::array();
        for (const ConfigDocument& d : *all) versions.push_back(config_document_json(d));
        return ok_json({{"versions", versions}});
      }));
  router.add(
      "GET", "/api/v1/configs/{device_type}/versions/{version}",
      guarded(tokens, Role::kViewer, [&configs](const Request&, const Params& p, const ApiToken&) {
        auto version = version_of(p.get("version"));
        if (!version.ok()) return error_response(version.error());
        auto doc = configs.get(p.get("device_type"), *version);
        if (!doc.ok()) return error_response(doc.error());
        return ok_json(config_document_json(*doc));
      }));

  struct Write {
    std::string values;
    std::string note;
  };
  router.add("PUT", "/api/v1/configs/{device_type}",
             guarded(tokens, Role::kOperator,
                     [&configs](const Request& req, const Params& p, const ApiToken& me) {
                       auto body = parse_body<Write>(req, [](const JsonReader& r) {
                         r.allow_only({"values", "note"});
                         if (!r.has("values")) r.fail("values", "required");
                         return Write{r.raw().at("values").dump(), r.str_or("note", "")};
                       });
                       if (!body.ok()) return error_response(body.error());
                       auto doc = configs.put(p.get("device_type"), body->values,
                                              "token:" + me.id + " (" + me.name + ")", body->note);
                       if (!doc.ok()) return error_response(doc.error());
                       return ok_json(config_document_json(*doc));
                     }));
}

}  // namespace drover::http
