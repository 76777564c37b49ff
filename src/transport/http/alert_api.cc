#include "transport/http/alert_api.h"

#include <nlohmann/json.hpp>
#include <string>

#include "base/json_reader.h"
#include "health/remediation_file.h"
#include "transport/http/json_body.h"
#include "transport/http/operator_access.h"

namespace drover::http {
namespace {

using nlohmann::json;

constexpr size_t kMaxAlertPage = 1000;

json optional_ms(Timestamp t) {
  return t == Timestamp{} ? json(nullptr) : json(t.time_since_epoch().count());
}

json alert_view(const Alert& a) {
  return {{"id", a.id},
          {"device_id", a.device_id},
          {"rule", a.rule},
          {"condition", a.condition},
          {"state", to_string(a.state)},
          {"summary", a.summary},
          {"escalated", a.escalated},
          {"escalation", a.escalation},
          {"resolution", a.resolution},
          {"commands", a.commands},
          {"opened_at", a.opened_at.time_since_epoch().count()},
          {"updated_at", a.updated_at.time_since_epoch().count()},
          {"acknowledged_at", optional_ms(a.acknowledged_at)},
          {"acknowledged_by", a.acknowledged_by},
          {"resolved_at", optional_ms(a.resolved_at)},
          {"resolved_by", a.resolved_by},
          {"version", a.version},
          {"notified_version", a.notified_version}};
}

std::string who(const ApiToken& me) { return "token:" + me.id + " (" + me.name + ")"; }

}  // namespace

std::string alert_document(const Alert& a) {
  return alert_view(a).dump(-1, ' ', false, json::error_handler_t::replace);
}

void add_alert_api(Router& router, OperatorTokens& tokens, health::Remediator& remediator) {
  // The rules and limits this server runs, as a --remediation-rules file would give them.
  router.add(
      "GET", "/api/v1/remediation/rules",
      guarded(tokens, Role::kViewer, [&remediator](const Request&, const Params&, const ApiToken&) {
        const health::RemediationPolicy policy{remediator.rules(), remediator.limits()};
        return ok_json(json::parse(health::to_json(policy)));
      }));
  // Newest first; `after` (the last id of the page before) pages on.
  router.add(
      "GET", "/api/v1/alerts",
      offloaded(guarded(
          tokens, Role::kViewer, [&remediator](const Request& req, const Params&, const ApiToken&) {
            auto q = query_of(req, {"device", "state", "limit", "after"});
            if (!q.ok()) return error_response(q.error());
            auto limit = q->number("limit", 100, 1, kMaxAlertPage);
            if (!limit.ok()) return error_response(limit.error());
            const std::string_view state = q->has("state") ? q->get("state") : "unresolved";
            if (state != "unresolved" && state != "all")
              return error_response(invalid_argument("state must be unresolved or all"));
            Store::AlertQuery query;
            query.device_id = std::string(q->get("device"));
            query.unresolved_only = state == "unresolved";
            query.limit = *limit;
            std::string after(q->get("after"));
            if (!after.empty()) {
              auto cursor = remediator.get(after);
              if (!cursor.ok()) return error_response(cursor.error());
              if (!*cursor) return error_response(not_found("no alert '" + after + "'"));
              query.before = (*cursor)->opened_at;
              query.before_id = after;
            }
            auto list = remediator.list(query);
            if (!list.ok()) return error_response(list.error());
            json out = json::array();
            for (const Alert& a : *list) out.push_back(alert_view(a));
            json answer{{"alerts", out}};
            if (list->size() == *limit) answer["next"] = list->back().id;
            return ok_json(answer);
          })));

  router.add("GET", "/api/v1/alerts/{id}",
             offloaded(guarded(tokens, Role::kViewer,
                               [&remediator](const Request&, const Params& p, const ApiToken&) {
                                 const std::string id(p.get("id"));
                                 auto a = remediator.get(id);
                                 if (!a.ok()) return error_response(a.error());
                                 if (!*a) return error_response(not_found("no alert '" + id + "'"));
                                 return ok_json(alert_view(**a));
                               })));

  router.add("POST", "/api/v1/alerts/{id}/acknowledge",
             offloaded(guarded(tokens, Role::kOperator,
                               [&remediator](const Request&, const Params& p, const ApiToken& me) {
                                 auto a = remediator.acknowledge(p.get("id"), who(me));
                                 if (!a.ok()) return error_response(a.error());
                                 return ok_json(alert_view(*a));
                               })));

  struct Note {
    std::string note;
  };
  router.add("POST", "/api/v1/alerts/{id}/resolve",
             offloaded(guarded(
                 tokens, Role::kOperator,
                 [&remediator](const Request& req, const Params& p, const ApiToken& me) {
                   std::string note;
                   if (!req.body.empty()) {
                     auto body = parse_body<Note>(req, [](const JsonReader& r) {
                       r.allow_only({"note"});
                       return Note{r.str_or("note", "")};
                     });
                     if (!body.ok()) return error_response(body.error());
                     note = body->note;
                   }
                   if (note.size() > kMaxAlertText)
                     return error_response(invalid_argument("note is longer than 512 bytes"));
                   auto a = remediator.resolve(p.get("id"), who(me), note);
                   if (!a.ok()) return error_response(a.error());
                   return ok_json(alert_view(*a));
                 })));
}

}  // namespace drover::http
