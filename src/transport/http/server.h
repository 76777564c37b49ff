// HttpServer: an asynchronous HTTP/1.1 server (Boost.Asio/Beast behind this header, which
// includes neither) for the device and operator APIs.
//
// Keep-alive; every limit a public endpoint needs, each answered with its own status and a
// JSON error body before the connection closes: request head larger than max_header_bytes
// (431), body larger than max_body_bytes (413), a head or body that does not arrive within
// its timeout (408: slow-loris clients hold no connection for long), a malformed request
// (400), more than max_connections at once (503). Out of file descriptors (EMFILE), the
// acceptor backs off instead of spinning, and sheds the waiting connection with a 503 through a
// descriptor it keeps in reserve for that. Handlers run on the I/O threads and must
// not block for long; what takes long goes to the workers (Response::offload). Every request gets
// an id (Request::id), sent back as X-Request-Id; a handler that throws is answered 500 with that
// id and nothing of the exception, which goes to error_log.
//
// stop() is graceful: it stops accepting, lets every request already read finish and its
// response go out, closes idle keep-alive connections, and returns when all are done (or
// after `drain_timeout`, when the rest are cut) — except work offloaded to the workers
// (Response::offload), which it lets finish (a plan, an fsync: cutting it would gain
// nothing), its answer then going nowhere.
//
// Thread-safety: start/stop/port from any thread; handlers are called concurrently.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/clock.h"
#include "base/result.h"
#include "base/units.h"

namespace drover::http {

struct Request {
  std::string method;  // "GET", "POST", ... as sent
  std::string target;  // path and query, as sent
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  // A body spooled to disk (ServerOptions::LargeBody::spool_directory) instead of `body`:
  // the file, its size and SHA-256, computed as it arrived. The handler may rename the file
  // away; the server removes it after the handler when it is still there.
  struct Spooled {
    std::string path;
    uint64_t size = 0;
    std::string sha256;  // 32 raw bytes
  };
  std::optional<Spooled> spooled;
  // Set by a LargeBody::admit hook: held by the server until the handler has run or the body
  // has failed (an admitted upload's promise of disk space, say), then released.
  std::shared_ptr<void> admission;
  std::string remote;  // peer address, for logs
  std::string id;      // this server's id for the request, for logs (also X-Request-Id)

  // The value of header `name` (case-insensitive), or "" when absent.
  std::string_view header(std::string_view name) const;
  std::string_view path() const;   // target without the query
  std::string_view query() const;  // after '?', or ""
};

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  // When set, the body is `length` bytes of the file at `path` from `offset`, streamed from
  // disk piece by piece (a large artifact never sits in memory); `body` is ignored. A file
  // that cannot be read by then is answered with 500.
  struct FileRange {
    std::string path;
    uint64_t offset = 0;
    uint64_t length = 0;
  };
  std::optional<FileRange> file;
  // When set, the response waits before it goes out: `defer` is called once with a
  // continuation, which it calls once, from any thread, when the response may go — with ok,
  // or with an error, which replaces the response (503 for kIo). Meanwhile the connection
  // reads nothing and its I/O thread serves the others. Answers wait so for their writes to
  // be durable (transport/http/durable.h).
  std::function<void(std::function<void(Status)>)> defer;
  // When set, the answer is what this returns, computed on one of the server's worker
  // threads (ServerOptions::workers) instead of the I/O thread, which serves the other
  // connections meanwhile; the rest of this response is ignored (but its route). For work
  // that takes long or waits: planning over the whole fleet, making an upload durable, a
  // write outside the group commit. Thrown exceptions are answered like a handler's.
  std::function<Response()> offload;
  // The route pattern that answered ("/api/v1/devices/{id}"; set by Router, "" when none
  // matched): a label for metrics that does not grow with ids.
  std::string_view route;

  static Response json(int status, std::string body);
  // {"error": {"code": code, "message": message}}
  static Response error(int status, std::string_view code, std::string_view message);
};

using Handler = std::function<Response(const Request&)>;

// One answered request, for the access log.
struct AccessRecord {
  std::string request_id;
  std::string remote;
  std::string method;
  std::string path;        // without the query, which may carry secrets
  std::string_view route;  // Response::route (valid as long as the router)
  int status = 0;
  size_t request_bytes = 0;   // body
  size_t response_bytes = 0;  // body
  double handler_ms = 0;      // time in the handler, wall clock
  double wait_ms = 0;         // then waiting for the answer to be allowed out (Response::defer)
};

struct ServerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 0;  // 0: any free port (see HttpServer::port())
  // TLS (1.2 or newer) when both are given: PEM certificate chain and private key. With a
  // client CA (PEM), mutual TLS: a client without a certificate it signed is cut during the
  // handshake.
  std::string tls_cert_file;
  std::string tls_key_file;
  std::string tls_client_ca_file;
  int threads = 2;
  // Threads for answers computed off the I/O threads (Response::offload).
  int workers = 2;
  size_t max_header_bytes = 16 * kKiB;
  size_t max_body_bytes = kMiB;
  size_t max_connections = 20'000;
  Duration header_timeout = seconds(10);  // from the first byte of a request to its blank line
  Duration body_timeout = seconds(30);
  Duration idle_timeout = seconds(60);  // a keep-alive connection waiting for its next request
  // A new connection waiting for its first request (nobody has shown a credential yet):
  // shorter, so idle strangers cannot hold descriptors for long.
  Duration first_request_timeout = seconds(10);
  Duration drain_timeout = seconds(10);
  // Where the read deadlines above (header, body, idle, first request; also the TLS
  // handshake's and the 2 s a refused body is drained for) come from: null, the server's own
  // steady timers on its I/O threads; otherwise this clock's timers, so that a test moves
  // time itself (tests/common/shared_manual_clock.h, a simulated clock safe to share with the
  // I/O threads) instead of racing real timeouts. A deadline that fires is handed to its
  // connection's I/O thread; one disarmed or replaced is cancelled on the clock. The clock
  // must outlive the server and not run timers while the server is destroyed (a test moves
  // it from its own thread). Write deadlines and drain_timeout stay real time.
  Clock* deadline_clock = nullptr;
  // Routes that take larger bodies than max_body_bytes (artifact uploads): a request whose
  // method matches and whose path starts with `path_prefix` may send up to `max_bytes`,
  // within `timeout`. The first match wins.
  struct LargeBody {
    std::string method;
    std::string path_prefix;
    size_t max_bytes = 0;
    Duration timeout{0};
    // Called with the request's head (no body) before a byte of the body is read: a response
    // it returns is sent instead and the connection closed, the body never read. Refuses who
    // may not send it (401/403) and what will not fit (411/507) before anything is stored.
    // It may leave something in head.admission for the server to hold meanwhile.
    std::function<std::optional<Response>(Request& head)> admit;
    // When set, the body is written to a new file in this directory as it arrives (memory
    // stays bounded whatever its size) and handed over as Request::spooled. A body cut short,
    // timed out or refused leaves no file behind; a full disk is answered 507.
    std::string spool_directory;
  };
  std::vector<LargeBody> large_bodies;
  // Called once per request the handler answered, on the I/O thread; must be thread-safe and
  // quick. Empty: no access log.
  std::function<void(const AccessRecord&)> access_log;
  // Called when a handler throws, with the request's id and what it threw; the client gets a
  // 500 whose body names only the request id. Thread-safe and quick, like access_log.
  std::function<void(std::string_view request_id, std::string_view what)> error_log;
};

class HttpServer {
 public:
  // Binds and starts serving. kInvalidArgument for a bad host or TLS files that cannot be
  // used, kIo when the address cannot be bound.
  static Result<std::unique_ptr<HttpServer>> start(ServerOptions options, Handler handler);

  virtual ~HttpServer() = default;
  virtual uint16_t port() const = 0;
  // Graceful stop, as above. Idempotent.
  virtual void stop() = 0;
  // Connections open right now.
  virtual size_t connections() const = 0;
};

}  // namespace drover::http
