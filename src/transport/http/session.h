// Session: one connection of the HTTP server, and SessionHost: what every connection shares
// with the server — its options and handler, the workers that compute offloaded answers, and
// the book of open connections that stop() drains. The server (server.cc) accepts connections
// and owns the threads; a Session (session.cc) reads, dispatches and answers requests.
// Internal to the HTTP server: it includes Asio and Beast.
#pragma once

// First: Boost 1.74's asio/awaitable.hpp uses std::exchange without including <utility>.
// clang-format off
#include <utility>
// clang-format on

#include <algorithm>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "base/mutex.h"
#include "transport/http/server.h"
#include "transport/http/spool_body.h"

namespace drover::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;

inline std::chrono::steady_clock::duration steady(Duration d) {
  return std::chrono::duration_cast<std::chrono::steady_clock::duration>(d);
}

class Session;

class SessionHost {
 public:
  SessionHost(ServerOptions options, Handler handler)
      : options_(std::move(options)), handler_(std::move(handler)) {}
  SessionHost(const SessionHost&) = delete;
  SessionHost& operator=(const SessionHost&) = delete;

  const ServerOptions& options() const { return options_; }
  // The largest body any route accepts (a request head is read under it).
  size_t largest_body() const {
    size_t most = options_.max_body_bytes;
    for (const auto& large : options_.large_bodies) most = std::max(most, large.max_bytes);
    return most;
  }
  bool stopping() const { return stopping_; }
  void begin_stop() { stopping_ = true; }

  Response handle(const Request& request) {
    return guarded(request.id, [&] { return handler_(request); });
  }
  // LargeBody::admit, guarded like a handler.
  std::optional<Response> admit(const ServerOptions::LargeBody& route, Request& head) {
    return guarded(head.id, [&] { return route.admit(head); });
  }
  // Runs `fn`; what it throws is logged with the request id and answered 500, naming only the id.
  template <typename Fn>
  auto guarded(const std::string& request_id, Fn&& fn) -> decltype(fn()) {
    try {
      return fn();
    } catch (const std::exception& e) {
      if (options_.error_log) options_.error_log(request_id, e.what());
    } catch (...) {
      if (options_.error_log)
        options_.error_log(request_id, "an exception that is not a std::exception");
    }
    return Response::error(500, "internal", "internal error (request " + request_id + ")");
  }
  // Runs `work` on a worker thread (Response::offload). The pool starts with the first
  // offloaded answer: a server whose routes never offload (the simulator's) runs none.
  template <typename Work>
  void offload(Work&& work) {
    std::call_once(workers_started_, [this] {
      workers_ =
          std::make_unique<asio::thread_pool>(static_cast<size_t>(std::max(1, options_.workers)));
    });
    asio::post(*workers_, std::forward<Work>(work));
  }
  // Offloaded work still running finishes (its answer goes nowhere once the I/O threads are
  // gone). Called by stop() after it joined the I/O threads, which start the pool.
  void join_workers() {
    if (workers_) workers_->join();
  }
  std::string next_request_id();

  // The book of open connections. open() counts and books a new one (the acceptor's thread
  // only); a Session's destructor calls closed().
  std::shared_ptr<Session> open(tcp::socket socket, asio::ssl::context* tls);
  void closed(uint64_t id);
  size_t connections() const { return open_.load(); }
  // Closes every connection waiting for its next request (see Session::close_if_idle).
  void close_idle();
  // Waits until every connection has closed, or `timeout` has passed.
  void wait_drained(Duration timeout);

 private:
  ServerOptions options_;
  Handler handler_;
  Mutex mu_;
  CondVar drained_;
  std::map<uint64_t, std::weak_ptr<Session>> sessions_ GUARDED_BY(mu_);
  std::atomic<size_t> open_{0};
  std::atomic<bool> stopping_{false};
  std::atomic<uint64_t> request_ids_{0};
  uint64_t next_id_ = 1;  // the acceptor's thread only
  std::once_flag workers_started_;
  std::unique_ptr<asio::thread_pool> workers_;
};

// One connection: requests are read and answered one at a time, on its io_context's thread.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, SessionHost& server, uint64_t id, asio::ssl::context* tls);
  ~Session();

  void start(bool refuse);
  // On stop: a connection waiting for its next request is closed now; one in the middle of a
  // request finishes it first.
  void close_if_idle();

 private:
  void handshake(bool refuse);
  void wait_for_request();
  void read_header();
  void on_header(beast::error_code ec);
  // The body, in memory or spooled to a file (LargeBody::spool_directory).
  void read_body(Duration timeout);
  void read_spooled(const std::string& directory, Duration timeout);
  void on_body(beast::error_code ec);
  void on_spooled_body(beast::error_code ec);
  // The request from its head; the body is the caller's to add.
  Request request_from(const bhttp::request_header<>& head) const;
  // Calls the handler and sends (or defers, or offloads) its answer.
  void dispatch(const Request& request, bool keep_alive);
  // Sends the handler's answer, or parks it until Response::defer lets it go.
  void respond(Response response, const std::string& request_id, AccessRecord record,
               bool keep_alive, std::chrono::steady_clock::time_point handled);
  AccessRecord record_of(const Request& request, std::chrono::steady_clock::time_point started,
                         std::chrono::steady_clock::time_point handled) const;
  // Logs the answered request and answers it.
  void send(Response response, AccessRecord record, bool keep_alive,
            std::chrono::steady_clock::time_point handled);
  void answer(Response r, bool keep_alive);
  void answer_file(Response r, bool keep_alive);
  struct FileSend;
  void send_file_piece(std::shared_ptr<FileSend> send);
  void refuse_after_read_error(beast::error_code ec);
  void refuse_body_too_large(size_t limit);
  // A spool file could not be created or written: 507 when the disk is full, 503 otherwise.
  void refuse_spool_failure(int error_number);
  void close();
  // After refusing a request whose body was not read: the client may still be sending it,
  // and closing with unread bytes resets the connection, which can destroy the answer
  // before the client reads it. Reads and drops what comes for a little while, then closes.
  void linger();
  struct Dropped;
  void drop_more(const std::shared_ptr<Dropped>& d);
  // Read deadlines are kept here rather than by the stream, which would close the socket on
  // expiry: a client too slow with its request is still told so (408) before it is cut.
  void arm(Duration d);
  void disarm() {
    ++deadline_;
    cancel_clock_timer();
  }
  void expire(uint64_t deadline);  // deadline number `deadline` is due
  // With ServerOptions::deadline_clock: the armed deadline's timer there, taken back.
  void cancel_clock_timer();
  Clock::TimerId clock_timer_ = 0;

  // Plain TCP, or TLS over it: tls_ then owns the TCP stream and stream_ is left moved from.
  // Every use goes through lowest() (timeouts, the socket) or io() (reads and writes).
  beast::tcp_stream stream_;
  std::unique_ptr<beast::ssl_stream<beast::tcp_stream>> tls_;
  beast::tcp_stream& lowest() { return tls_ ? beast::get_lowest_layer(*tls_) : stream_; }
  template <typename Fn>
  void io(Fn&& fn) {
    if (tls_) {
      fn(*tls_);
    } else {
      fn(stream_);
    }
  }
  asio::steady_timer timer_;
  uint64_t deadline_ = 0;  // the armed deadline's number; a fired one that is not current is stale
  bool timed_out_ = false;
  beast::flat_buffer buffer_;
  // What LargeBody::admit left in the request's admission: held until the body's handler has
  // run or the body has failed.
  std::shared_ptr<void> admission_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  std::optional<bhttp::request_parser<SpoolBody>> spool_parser_;
  std::string request_id_;  // the request being read
  bool linger_ = false;     // close() lingers first (see linger())
  uint64_t answered_ = 0;   // requests handled on this connection
  SessionHost& server_;
  uint64_t id_;
  bool idle_ = false;  // waiting for the first byte of a request
  size_t limit_ = 0;   // the body limit of the request being read
  std::string remote_;
};

}  // namespace drover::http
