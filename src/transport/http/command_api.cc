#include "transport/http/command_api.h"

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "base/json_reader.h"
#include "base/units.h"
#include "transport/http/device_api.h"
#include "transport/http/json_body.h"
#include "transport/http/operator_access.h"

namespace drover::http {
namespace {

using nlohmann::json;

constexpr size_t kMaxHistoryPage = 1000;

int64_t ms(Timestamp t) { return t.time_since_epoch().count(); }

json command_view(const Command& c) {
  json j{{"id", c.id},
         {"device_id", c.device_id},
         {"action", protocol::to_string(c.action)},
         {"argument", c.argument},
         {"state", to_string(c.state)},
         {"requested_by", c.requested_by},
         {"reason", c.reason},
         {"created_at", ms(c.created_at)},
         {"expires_at", ms(c.expires_at)},
         {"sent_at", c.sent_at == Timestamp{} ? json(nullptr) : json(ms(c.sent_at))},
         {"finished_at", c.finished_at == Timestamp{} ? json(nullptr) : json(ms(c.finished_at))},
         {"exit_code", c.exit_code == -1 ? json(nullptr) : json(c.exit_code)},
         {"output", c.output},
         {"reported", c.reported}};
  if (!c.cancelled_by.empty()) j["cancelled_by"] = c.cancelled_by;
  return j;
}

struct Ask {
  std::string id, action, argument, reason;
  Duration lifetime{0};
};

struct Outcome {
  std::string outcome, output;
  int exit_code = -1;
};

}  // namespace

void add_command_api(Router& router, OperatorTokens& tokens, DeviceAuth& auth,
                     DeviceService& devices, CommandQueue& commands) {
  // Offloaded: a new id is drawn from the store's durable sequence (a synchronous commit).
  router.add(
      "POST", "/api/v1/devices/{id}/commands",
      offloaded(guarded(
          tokens, Role::kOperator,
          [&devices, &commands](const Request& req, const Params& p, const ApiToken& me) {
            const std::string device_id(p.get("id"));
            auto body = parse_body<Ask>(req, [](const JsonReader& r) {
              r.allow_only({"id", "action", "argument", "reason", "expires_in"});
              Ask a;
              a.id = r.str_or("id", "");
              // The server's own ids: "cmd-<n>" it numbers, "alert-<n>-<step>" its rules'.
              if (a.id.starts_with("cmd-") || a.id.starts_with("alert-"))
                r.fail("id", "ids starting cmd- or alert- are the server's own");
              a.action = r.str("action");
              a.argument = r.str_or("argument", "");
              a.reason = r.str_or("reason", "");
              a.lifetime = r.duration_or("expires_in", Duration{0});
              if (r.has("expires_in") && a.lifetime <= Duration{0})
                r.fail("expires_in", "must be more than 0");
              return a;
            });
            if (!body.ok()) return error_response(body.error());
            auto action = protocol::parse_command_action(body->action);
            if (!action.ok()) return error_response(action.error());
            const auto standing = devices.standing(device_id);
            if (!standing) return error_response(not_found("unknown device '" + device_id + "'"));
            if (standing->decommissioned || standing->enrollment != Enrollment::kAccepted) {
              return error_response(
                  {ErrorCode::kFailedPrecondition,
                   "device '" + device_id + "' is " +
                       (standing->decommissioned ? std::string("decommissioned")
                                                 : std::string(to_string(standing->enrollment))) +
                       ": it takes no commands"});
            }
            bool created = false;
            auto queued = commands.queue({.id = body->id,
                                          .device_id = device_id,
                                          .action = *action,
                                          .argument = body->argument,
                                          .lifetime = body->lifetime,
                                          .requested_by = "token:" + me.id + " (" + me.name + ")",
                                          .reason = body->reason},
                                         &created);
            if (!queued.ok()) return error_response(queued.error());
            return json_response(created ? 201 : 200, command_view(*queued));
          })));

  // The device's command history, newest first; `after` (a command id, the last of the page
  // before) pages on.
  router.add("GET", "/api/v1/devices/{id}/commands",
             offloaded(guarded(
                 tokens, Role::kViewer,
                 [&devices, &commands](const Request& req, const Params& p, const ApiToken&) {
                   auto q = query_of(req, {"limit", "after"});
                   if (!q.ok()) return error_response(q.error());
                   auto limit = q->number("limit", 100, 1, kMaxHistoryPage);
                   if (!limit.ok()) return error_response(limit.error());
                   const std::string id(p.get("id"));
                   if (!devices.device(id))
                     return error_response(not_found("unknown device '" + id + "'"));
                   auto list = commands.history(id, *limit, q->get("after"));
                   if (!list.ok()) return error_response(list.error());
                   json out = json::array();
                   for (const Command& c : *list) out.push_back(command_view(c));
                   json answer{{"device_id", id}, {"commands", out}};
                   // A full page may have more behind it: where the next starts.
                   if (list->size() == *limit) answer["next"] = list->back().id;
                   return ok_json(answer);
                 })));

  router.add("GET", "/api/v1/commands/{id}",
             offloaded(guarded(tokens, Role::kViewer,
                               [&commands](const Request&, const Params& p, const ApiToken&) {
                                 const std::string id(p.get("id"));
                                 auto c = commands.get(id);
                                 if (!c.ok()) return error_response(c.error());
                                 if (!*c)
                                   return error_response(not_found("no command '" + id + "'"));
                                 return ok_json(command_view(**c));
                               })));

  router.add("POST", "/api/v1/commands/{id}/cancel",
             guarded(tokens, Role::kOperator,
                     [&commands](const Request&, const Params& p, const ApiToken& me) {
                       auto c =
                           commands.cancel(p.get("id"), "token:" + me.id + " (" + me.name + ")");
                       if (!c.ok()) return error_response(c.error());
                       return ok_json(command_view(*c));
                     }));

  router.add("POST", "/api/device/v1/commands/{id}/result",
             [&auth, &commands](const Request& req, const Params& p) {
               auto device = bearer_device(auth, req);
               if (!device.ok()) return error_response(device.error());
               auto body = parse_body<Outcome>(req, [](const JsonReader& r) {
                 r.allow_only({"outcome", "exit_code", "output"});
                 Outcome o;
                 o.outcome = r.str("outcome");
                 if (r.has("exit_code")) {
                   const auto& v = r.raw().at("exit_code");
                   if (!v.is_number_integer() || v.get<int64_t>() < -1 || v.get<int64_t>() > 255)
                     r.fail("exit_code", "must be an integer from -1 to 255");
                   o.exit_code = static_cast<int>(v.get<int64_t>());
                 }
                 o.output = r.str_or("output", "");
                 return o;
               });
               if (!body.ok()) return error_response(body.error());
               auto outcome = protocol::parse_command_outcome(body->outcome);
               if (!outcome.ok()) return error_response(outcome.error());
               auto c = commands.record_result(
                   {*device, p.get("id"), *outcome, body->exit_code, body->output});
               if (!c.ok()) return error_response(c.error());
               return ok_json({{"id", c->id}, {"state", to_string(c->state)}});
             });
}

}  // namespace drover::http
