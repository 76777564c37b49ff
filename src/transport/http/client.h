// HttpClient: a small blocking HTTP/1.1 client, plain or over TLS 1.2+ (Boost.Beast and
// OpenSSL behind this header, which includes neither) for the CLI and the agent. One keep-alive
// connection, reopened when the server has closed it; every step bounded by a timeout.
//
// A request that fails because a reused connection turned out to be closed (the server
// dropped it while idle) is sent once more on a fresh connection: nothing of it was read.
//
// Thread-compatible: one request at a time per client.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/clock.h"
#include "base/result.h"

namespace drover::http {

using Headers = std::vector<std::pair<std::string, std::string>>;

struct ClientResponse {
  int status = 0;
  Headers headers;
  std::string body;  // empty when a sink took it
  // The value of header `name` (case-insensitive), or "".
  std::string_view header(std::string_view name) const;
};

struct ClientOptions {
  Duration connect_timeout = seconds(10);
  // Each step of one request: writing each 256 KiB piece of it, waiting for the answer's
  // head, reading its body (whole, or each piece of a streamed one).
  Duration request_timeout = seconds(30);
  std::string user_agent = "drover";
  // The largest answer body read into memory (request(), and get_to()'s non-2xx answers are
  // capped at 64 KiB anyway): a larger one is refused (kIo, naming the limit) before it is
  // read — a server, or something posing as one, cannot make the client allocate at will.
  // get_to()'s 2xx content goes to its sink and is bounded by the sink.
  uint64_t max_answer_bytes = uint64_t{64} << 20;
  // https: the CA certificates (PEM) the server's certificate must chain to (empty: the
  // system's), and a client certificate and key (PEM) for servers that want mutual TLS.
  // The server's name is always verified against its certificate.
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
  // Called as a request body is sent, after each piece of 256 KiB, with the body's bytes
  // sent so far and its size (a progress bar for large uploads).
  std::function<void(uint64_t sent, uint64_t total)> upload_progress;
};

// "http[s]://host:port/prefix" split up. kInvalidArgument for anything else.
struct Url {
  std::string scheme;  // "http" or "https"
  std::string host;
  uint16_t port = 80;
  std::string prefix;  // path prefix without a trailing '/', may be ""
};
Result<Url> parse_url(std::string_view url);

// Percent-encodes `s` for a path segment or a query value (unreserved characters stay).
std::string url_encode(std::string_view s);

class HttpClient {
 public:
  // `base_url` is "http[s]://host[:port][/prefix]"; targets of requests are appended to it.
  // kInvalidArgument for a bad URL or TLS files that cannot be used.
  static Result<std::unique_ptr<HttpClient>> create(std::string_view base_url,
                                                    ClientOptions options = {});
  virtual ~HttpClient() = default;

  // Sends one request. A status of 4xx/5xx is a response, not an error; errors are kIo
  // (connect, timeout, reset) and kInvalidArgument (an unusable target).
  virtual Result<ClientResponse> request(std::string_view method, std::string_view target,
                                         std::string_view body = {},
                                         const Headers& headers = {}) = 0;

  // A GET whose body goes to `sink` piece by piece instead of into memory (large
  // downloads) — only a 2xx body: another status's body (an error document) is kept in the
  // response instead, at most 64 KiB of it. The sink's error stops the transfer and is
  // returned.
  virtual Result<ClientResponse> get_to(std::string_view target, const Headers& headers,
                                        const std::function<Status(std::string_view)>& sink) = 0;

  // Drops the connection (the next request opens a new one).
  virtual void close() = 0;
};

}  // namespace drover::http
