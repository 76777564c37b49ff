#include "transport/http/audit_api.h"

#include <charconv>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "security/canonical_json.h"
#include "security/crypto.h"
#include "transport/http/operator_access.h"

namespace drover::http {
namespace {

using nlohmann::json;

// Bodies up to this size are kept in the entry as they came (when they are JSON).
constexpr size_t kMaxRecordedBody = size_t{16} * 1024;
constexpr size_t kMaxAuditPage = 1000;

bool changes_something(const Request& req) {
  return req.method != "GET" && req.method != "HEAD" && req.path().starts_with("/api/v1/");
}

AuditEvent request_event(const Request& req, const ApiToken& token, std::string_view route) {
  AuditEvent e;
  e.actor = "token:" + token.id + ":" + token.name;
  e.action = req.method + " " + std::string(route.empty() ? req.path() : route);
  e.subject = std::string(req.path());
  e.detail["role"] = to_string(token.role);
  e.detail["request_id"] = req.id;
  e.detail["remote"] = req.remote;
  if (!req.query().empty()) e.detail["query"] = std::string(req.query());
  if (req.spooled) {
    e.detail["body_bytes"] = std::to_string(req.spooled->size);
    e.detail["body_sha256"] = security::to_hex(req.spooled->sha256);
  } else if (!req.body.empty()) {
    // A small JSON body is kept (compacted); anything else — a body too large, not JSON, or
    // with a key twice (compacted, it would read otherwise than the handler read it) — by
    // its size and digest.
    auto body = req.body.size() <= kMaxRecordedBody
                    ? security::parse_strict_json(req.body)
                    : Result<json>(invalid_argument("too large to record"));
    if (body.ok()) {
      e.detail["body"] = body->dump(-1, ' ', false, json::error_handler_t::replace);
    } else {
      e.detail["body_bytes"] = std::to_string(req.body.size());
      e.detail["body_sha256"] = security::to_hex(security::sha256(req.body));
    }
  }
  return e;
}

json hex_list(const std::vector<std::string>& hashes) {
  json out = json::array();
  for (const std::string& h : hashes) out.push_back(security::to_hex(h));
  return out;
}

json entry_json(const AuditEntry& e) {
  json detail = json::object();
  for (const auto& [k, v] : e.event.detail) detail[k] = v;
  return {{"index", e.index},
          {"at", e.at.time_since_epoch().count()},
          {"actor", e.event.actor},
          {"action", e.event.action},
          {"subject", e.event.subject},
          {"detail", std::move(detail)},
          {"leaf_hash", security::to_hex(e.leaf_hash)}};
}

json checkpoint_json(const AuditCheckpoint& cp) { return json::parse(cp.text); }

}  // namespace

Handler with_audit(AuditLog& log, OperatorTokens& tokens, const Router& router, Handler inner) {
  auto shared = std::make_shared<const Handler>(std::move(inner));
  return [&log, &tokens, &router, shared](const Request& req) -> Response {
    if (!changes_something(req)) return (*shared)(req);
    auto text = bearer_token(req);
    if (!text.ok()) return (*shared)(req);
    auto token = tokens.authenticate(*text);
    if (!token.ok() && token.error().code == ErrorCode::kUnauthenticated) {
      return (*shared)(req);  // refused by the route's own check: changes nothing
    }
    const std::string_view route = router.route_of(req);
    const auto refused = [route](const std::string& why) {
      Response r =
          Response::error(503, "audit_unavailable",
                          "the audit log could not be written, so nothing was done: " + why);
      r.route = route;
      return r;
    };
    if (!token.ok()) return refused(token.error().message);
    // Recorded here, on the thread the request came in on, as the engine records a pause it
    // makes there: an abort does not queue behind planning on the workers.
    const AuditEvent event = request_event(req, *token, route);
    auto index = log.record(event);
    if (!index.ok()) return refused(index.error().message);
    const auto outcome = [&log, event, index = *index, id = req.id](int status) {
      // The request has been carried out: a failure to record its outcome changes nothing
      // about the answer (the request's own entry stands).
      (void)log.record({.actor = event.actor,
                        .action = "result",
                        .subject = event.subject,
                        .detail = {{"of", std::to_string(index)},
                                   {"status", std::to_string(status)},
                                   {"request_id", id}}});
    };
    Response response;
    try {
      response = (*shared)(req);
    } catch (...) {
      outcome(500);
      throw;
    }
    if (!response.offload) {
      outcome(response.status);
      return response;
    }
    response.offload = [work = std::move(response.offload), outcome]() -> Response {
      Response answered;
      try {
        answered = work();
      } catch (...) {
        outcome(500);
        throw;
      }
      outcome(answered.status);
      return answered;
    };
    return response;
  };
}

void add_audit_api(Router& router, OperatorTokens& tokens, AuditLog& log) {
  router.add("GET", "/api/v1/audit/entries",
             offloaded(guarded(
                 tokens, Role::kViewer, [&log](const Request& req, const Params&, const ApiToken&) {
                   auto q = query_of(req, {"from", "limit"});
                   if (!q.ok()) return error_response(q.error());
                   auto from = q->number("from", 0);
                   auto limit = q->number("limit", 100);
                   if (!from.ok()) return error_response(from.error());
                   if (!limit.ok() || *limit == 0 || *limit > kMaxAuditPage) {
                     return error_response(invalid_argument("limit must be a number from 1 to " +
                                                            std::to_string(kMaxAuditPage)));
                   }
                   auto entries = log.entries(*from, *limit);
                   if (!entries.ok()) return error_response(entries.error());
                   json list = json::array();
                   for (const AuditEntry& e : *entries) list.push_back(entry_json(e));
                   const uint64_t size = log.size();
                   const uint64_t next = *from + entries->size();
                   return ok_json({{"size", size},
                                   {"entries", std::move(list)},
                                   {"next", next < size ? json(next) : json(nullptr)}});
                 })));
  router.add(
      "GET", "/api/v1/audit/entries/{index}",
      offloaded(guarded(
          tokens, Role::kViewer, [&log](const Request&, const Params& params, const ApiToken&) {
            const std::string_view text = params.get("index");
            uint64_t index = 0;
            auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), index);
            if (ec != std::errc() || end != text.data() + text.size()) {
              return error_response(invalid_argument("an entry's index is a whole number"));
            }
            auto entries = log.entries(index, 1);
            if (!entries.ok()) return error_response(entries.error());
            if (entries->empty()) {
              return error_response(
                  not_found("the audit log has no entry " + std::to_string(index)));
            }
            auto cp = log.checkpoint();
            if (!cp.ok()) return error_response(cp.error());
            auto proof = log.inclusion_proof(index, cp->size);
            if (!proof.ok()) return error_response(proof.error());
            json out = entry_json(entries->front());
            out["inclusion"] = {{"checkpoint", checkpoint_json(*cp)}, {"proof", hex_list(*proof)}};
            return ok_json(out);
          })));
  router.add("GET", "/api/v1/audit/records",
             offloaded(guarded(
                 tokens, Role::kViewer, [&log](const Request& req, const Params&, const ApiToken&) {
                   auto q = query_of(req, {"from", "limit"});
                   if (!q.ok()) return error_response(q.error());
                   auto from = q->number("from", 0);
                   auto limit = q->number("limit", kMaxAuditPage);
                   if (!from.ok()) return error_response(from.error());
                   if (!limit.ok() || *limit == 0 || *limit > kMaxAuditPage) {
                     return error_response(invalid_argument("limit must be a number from 1 to " +
                                                            std::to_string(kMaxAuditPage)));
                   }
                   auto records = log.records(*from, *limit);
                   if (!records.ok()) return error_response(records.error());
                   json list = json::array();
                   for (const AuditRecord& r : *records) {
                     list.push_back(
                         {{"index", r.index}, {"entry", r.entry}, {"checkpoint", r.checkpoint}});
                   }
                   return ok_json({{"records", std::move(list)}});
                 })));
  router.add("GET", "/api/v1/audit/checkpoint",
             offloaded(guarded(tokens, Role::kViewer,
                               [&log](const Request&, const Params&, const ApiToken&) {
                                 auto cp = log.checkpoint();
                                 if (!cp.ok()) return error_response(cp.error());
                                 return Response::json(200, cp->text);
                               })));
  router.add("GET", "/api/v1/audit/key",
             offloaded(guarded(tokens, Role::kViewer,
                               [&log](const Request&, const Params&, const ApiToken&) {
                                 return ok_json({{"keyid", log.key_id()},
                                                 {"keytype", "ed25519"},
                                                 {"public", security::to_hex(log.public_key())}});
                               })));
  router.add(
      "GET", "/api/v1/audit/proof/inclusion",
      offloaded(guarded(
          tokens, Role::kViewer, [&log](const Request& req, const Params&, const ApiToken&) {
            auto q = query_of(req, {"index", "size"});
            if (!q.ok()) return error_response(q.error());
            if (!q->has("index") || !q->has("size")) {
              return error_response(invalid_argument("index and size are required"));
            }
            auto index = q->number("index", 0);
            auto size = q->number("size", 0);
            if (!index.ok()) return error_response(index.error());
            if (!size.ok()) return error_response(size.error());
            auto proof = log.inclusion_proof(*index, *size);
            if (!proof.ok()) return error_response(proof.error());
            return ok_json({{"index", *index}, {"size", *size}, {"proof", hex_list(*proof)}});
          })));
  router.add("GET", "/api/v1/audit/proof/consistency",
             offloaded(guarded(
                 tokens, Role::kViewer, [&log](const Request& req, const Params&, const ApiToken&) {
                   auto q = query_of(req, {"from", "to"});
                   if (!q.ok()) return error_response(q.error());
                   if (!q->has("from") || !q->has("to")) {
                     return error_response(invalid_argument("from and to are required"));
                   }
                   auto from = q->number("from", 0);
                   auto to = q->number("to", 0);
                   if (!from.ok()) return error_response(from.error());
                   if (!to.ok()) return error_response(to.error());
                   auto proof = log.consistency_proof(*from, *to);
                   if (!proof.ok()) return error_response(proof.error());
                   return ok_json({{"from", *from}, {"to", *to}, {"proof", hex_list(*proof)}});
                 })));
}

}  // namespace drover::http
