// Conditional GETs for pollers (the web console asks every few seconds, docs/console.md):
// every 200 answer to a GET with a body in memory carries a strong ETag, a hash of its body,
// and "Cache-Control: no-cache" (use it, but ask again first); a GET whose If-None-Match
// names the same tag is answered 304 with no body. The answer is still computed — what is
// saved is the bytes on the wire and the client's parsing of an unchanged page.
#pragma once

#include <string>
#include <string_view>

#include "transport/http/server.h"

namespace drover::http {

// The tag of a body: a quoted 64-bit FNV-1a hash in hex, "\"9f1c…\"".
std::string etag_of(std::string_view body);

// Whether an If-None-Match header value names `tag` (a list of tags, weak ones compared
// weakly, or "*").
bool etag_matches(std::string_view if_none_match, std::string_view tag);

// Wraps `inner` so that its answers to GET get their ETag and 304s as above; an offloaded
// answer gets them when it is computed. Streamed files, deferred answers and other methods
// pass as they are.
Handler with_etags(Handler inner);

}  // namespace drover::http
