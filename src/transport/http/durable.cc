#include "transport/http/durable.h"

#include <utility>

namespace drover::http {

Handler with_durable_answers(GroupCommitStore& store, Handler inner) {
  return [&store, inner = std::move(inner)](const Request& request) {
    CommitScope scope(&store);
    Response response = inner(request);
    if (request.method != "GET" && !scope.own_only()) scope.depend_on_all();
    const uint64_t needed = scope.needed();
    if (needed == 0 || store.durable(needed)) return response;
    response.defer = [&store, needed](std::function<void(Status)> go) {
      store.when_durable(needed, std::move(go));
    };
    return response;
  };
}

}  // namespace drover::http
