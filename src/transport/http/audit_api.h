// The audit log over HTTP (docs/api/operator.md, "Audit log"): every operator request that
// may change something is recorded before it runs, and the log is read, proved and
// verified under /api/v1/audit.
#pragma once

#include "fleet/audit_log.h"
#include "fleet/operator_tokens.h"
#include "transport/http/router.h"
#include "transport/http/server.h"

namespace drover::http {

// Wraps the handler of the whole server: a request to the operator API (/api/v1/) with a
// method other than GET or HEAD and a valid operator token is recorded — who (the token's
// id, name and role), what (method and route pattern), on what (the path), the request's
// JSON body when it is small (a digest and size otherwise), its id — before `inner` sees it,
// on a worker thread; if the record cannot be written the request is answered 503 and
// nothing is done. Its outcome (the status) is recorded after it as a second entry. Requests
// without a valid operator token are not recorded (they change nothing, and recording them
// would let anyone fill the log).
Handler with_audit(AuditLog& log, OperatorTokens& tokens, const Router& router, Handler inner);

// GET /api/v1/audit/entries, /entries/{index}, /records, /checkpoint, /key,
// /proof/inclusion, /proof/consistency; for tokens of the viewer role and up.
void add_audit_api(Router& router, OperatorTokens& tokens, AuditLog& log);

}  // namespace drover::http
