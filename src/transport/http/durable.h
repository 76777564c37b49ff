// Durable answers: a request's writes go through the group commit (store/group_commit.h)
// without an I/O thread waiting on the disk, and its answer goes out only once they are
// durable.
//
// The handler runs inside a CommitScope, so its writes are queued and acted on at once; its
// locks are released when it returns; the response then waits (Response::defer) for:
// - a read (GET): its own writes, if it made any;
// - anything else: everything queued before the answer — a report acknowledged, an offer
//   made, an operator's command done may rest on other requests' changes it saw, and none
//   of that may be lost after the client was told. A handler whose answer reveals nothing
//   of the kind (the check-in told "nothing for you") calls own_writes_only() on the scope.
// A failed commit answers 503 instead. An answer made on a worker thread (Response::offload)
// gets the same, through a scope opened there.
#pragma once

#include "store/group_commit.h"
#include "transport/http/server.h"

namespace drover::http {

Handler with_durable_answers(GroupCommitStore& store, Handler inner);

}  // namespace drover::http
