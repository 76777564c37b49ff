#include "transport/http/durable.h"

#include <algorithm>
#include <string>
#include <utility>

namespace drover::http {

namespace {

// Lets `response` go once what `scope` (and, `floor`, what was queued for the request before
// it) needs is durable.
Response wait_for(GroupCommitStore& store, CommitScope& scope, const std::string& method,
                  Response response, uint64_t floor) {
  if (method != "GET" && !scope.own_only()) scope.depend_on_all();
  const uint64_t needed = std::max(scope.needed(), floor);
  if (needed == 0 || store.durable(needed)) return response;
  // A wait the handler set already (the telemetry store's) comes after this one, never
  // instead of it.
  response.defer = [&store, needed,
                    then = std::move(response.defer)](std::function<void(Status)> go) mutable {
    store.when_durable(needed, [then = std::move(then), go = std::move(go)](Status s) mutable {
      if (!s.ok() || !then) return go(std::move(s));
      then(std::move(go));
    });
  };
  return response;
}

}  // namespace

Handler with_durable_answers(GroupCommitStore& store, Handler inner) {
  return [&store, inner = std::move(inner)](const Request& request) {
    CommitScope scope(&store);
    Response response = inner(request);
    if (!response.offload) return wait_for(store, scope, request.method, std::move(response), 0);
    // The answer is made on a worker thread: its writes go through a scope of its own there,
    // and it waits also for whatever this thread queued for the request before.
    response.offload = [&store, work = std::move(response.offload), method = request.method,
                        before = scope.needed()] {
      CommitScope worker(&store);
      return wait_for(store, worker, method, work(), before);
    };
    return response;
  };
}

}  // namespace drover::http
