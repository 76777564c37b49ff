#include "transport/http/server.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <cctype>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>

#include "base/file_system.h"
#include "base/mutex.h"
#include "transport/http/reserve_descriptor.h"
#include "transport/http/spool_body.h"
#include "transport/http/tls_context.h"

namespace drover::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;

namespace {

std::chrono::steady_clock::duration steady(Duration d) {
  return std::chrono::duration_cast<std::chrono::steady_clock::duration>(d);
}

class ServerImpl;

// One connection: requests are read and answered one at a time, on its io_context's thread.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, ServerImpl& server, uint64_t id, asio::ssl::context* tls);
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
  ServerImpl& server_;
  uint64_t id_;
  bool idle_ = false;  // waiting for the first byte of a request
  size_t limit_ = 0;   // the body limit of the request being read
  std::string remote_;
};

class ServerImpl final : public HttpServer {
 public:
  ServerImpl(ServerOptions options, Handler handler)
      : options_(std::move(options)),
        handler_(std::move(handler)),
        ios_(make_contexts(std::max(1, options_.threads))),
        acceptor_(*ios_.front()),
        accept_backoff_(*ios_.front()) {}

  ~ServerImpl() override { stop(); }

  Status listen() {
    DROVER_TRY(configure_tls(options_, tls_));
    beast::error_code ec;
    auto address = asio::ip::make_address(options_.host, ec);
    if (ec) {
      tcp::resolver resolver(*ios_.front());
      auto found = resolver.resolve(options_.host, std::to_string(options_.port), ec);
      if (ec || found.empty())
        return invalid_argument("cannot resolve listen host '" + options_.host + "'");
      address = found.begin()->endpoint().address();
    }
    const tcp::endpoint endpoint(address, options_.port);
    auto fail = [&](const char* what) {
      return Error{ErrorCode::kIo, std::string("cannot ") + what + " " + options_.host + ":" +
                                       std::to_string(options_.port) + ": " + ec.message()};
    };
    acceptor_.open(endpoint.protocol(), ec);
    if (ec) return fail("open");
    acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
    if (ec) return fail("configure");
    acceptor_.bind(endpoint, ec);
    if (ec) return fail("bind");
    acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) return fail("listen on");
    port_ = acceptor_.local_endpoint().port();
    reserve_.take();
    accept();
    for (auto& io : ios_) {
      guards_.push_back(asio::make_work_guard(*io));
      threads_.emplace_back([context = io.get()] { context->run(); });
    }
    return ok_status();
  }

  uint16_t port() const override { return port_; }
  size_t connections() const override { return open_.load(); }

  void stop() override {
    std::call_once(stopped_, [this] {
      stopping_ = true;
      asio::post(acceptor_.get_executor(), [this] {
        beast::error_code ignored;
        acceptor_.close(ignored);
        accept_backoff_.cancel();
      });
      std::vector<std::shared_ptr<Session>> live;
      {
        MutexLock lock(mu_);
        for (auto& [id, weak] : sessions_) {
          if (auto s = weak.lock()) live.push_back(std::move(s));
        }
      }
      for (auto& s : live) s->close_if_idle();
      live.clear();
      {
        MutexLock lock(mu_);
        drained_.wait_for(mu_, steady(options_.drain_timeout), [this] { return open_ == 0; });
      }
      guards_.clear();
      for (auto& io : ios_) io->stop();  // whatever did not finish in time is cut
      for (auto& t : threads_) t.join();
      threads_.clear();
      // Offloaded work still running finishes; its answer goes nowhere. (The I/O threads,
      // which start the pool, are joined: workers_ is read alone.)
      if (workers_) workers_->join();
    });
  }

  // Called by sessions.
  const ServerOptions& options() const { return options_; }
  size_t largest_body() const {
    size_t most = options_.max_body_bytes;
    for (const auto& large : options_.large_bodies) most = std::max(most, large.max_bytes);
    return most;
  }
  bool stopping() const { return stopping_; }
  Response handle(const Request& request) {
    return guarded(request.id, [&] { return handler_(request); });
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
  std::string next_request_id() {
    char id[24];
    std::snprintf(id, sizeof id, "r%" PRIx64, request_ids_.fetch_add(1) + 1);
    return id;
  }
  void opened(uint64_t id, const std::shared_ptr<Session>& s) {
    MutexLock lock(mu_);
    sessions_.emplace(id, s);
  }
  void closed(uint64_t id) {
    MutexLock lock(mu_);
    sessions_.erase(id);
    --open_;
    drained_.notify_all();
  }

 private:
  void accept() {
    // Each connection lives on one thread's io_context, round robin: its handlers never run
    // concurrently, with no strand or lock between them.
    asio::io_context& home = *ios_[next_context_++ % ios_.size()];
    acceptor_.async_accept(home.get_executor(), [this](beast::error_code ec, tcp::socket s) {
      if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
      if (ec == asio::error::no_descriptors ||
          ec == boost::system::errc::too_many_files_open_in_system ||
          ec == asio::error::no_buffer_space || ec == asio::error::no_memory) {
        // Accepting again at once would fail again at once (a spinning core): the waiting
        // client is answered 503 through the reserve descriptor, and accepting resumes
        // after a pause, when connections may have closed.
        shed_one();
        accept_backoff_.expires_after(std::chrono::milliseconds(50));
        accept_backoff_.async_wait([this](beast::error_code wait_ec) {
          if (!wait_ec && acceptor_.is_open()) accept();
        });
        return;
      }
      if (!ec) {
        const bool refuse = open_.load() >= options_.max_connections || stopping_;
        ++open_;
        auto session =
            std::make_shared<Session>(std::move(s), *this, next_id_++, tls_ ? &*tls_ : nullptr);
        opened(next_id_ - 1, session);
        session->start(refuse);
      }
      accept();
    });
  }

  void shed_one() { reserve_.shed(acceptor_.native_handle(), tls_.has_value()); }

  // Declared so that ios_ go before what their leftover handlers touch when they are
  // destroyed with it (sessions call closed()).
  ServerOptions options_;
  Handler handler_;
  Mutex mu_;
  CondVar drained_;
  std::map<uint64_t, std::weak_ptr<Session>> sessions_ GUARDED_BY(mu_);
  std::atomic<size_t> open_{0};
  std::atomic<bool> stopping_{false};
  std::atomic<uint64_t> request_ids_{0};
  std::once_flag stopped_;
  uint64_t next_id_ = 1;     // the acceptor's thread only
  size_t next_context_ = 0;  // the acceptor's thread only
  uint16_t port_ = 0;
  std::optional<asio::ssl::context> tls_;
  // One io_context per I/O thread (concurrency hint 1: no locking inside asio either).
  std::vector<std::unique_ptr<asio::io_context>> ios_;
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> guards_;
  tcp::acceptor acceptor_;
  asio::steady_timer accept_backoff_;  // the acceptor's pause when out of descriptors
  ReserveDescriptor reserve_;          // given up to shed a connection when out of them
  std::vector<std::thread> threads_;
  std::once_flag workers_started_;
  std::unique_ptr<asio::thread_pool> workers_;  // for Response::offload; destroyed (joined) first

  static std::vector<std::unique_ptr<asio::io_context>> make_contexts(int n) {
    std::vector<std::unique_ptr<asio::io_context>> out;
    out.reserve(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) out.push_back(std::make_unique<asio::io_context>(1));
    return out;
  }
};

Session::Session(tcp::socket socket, ServerImpl& server, uint64_t id, asio::ssl::context* tls)
    : stream_(std::move(socket)), timer_(stream_.get_executor()), server_(server), id_(id) {
  beast::error_code ec;
  auto peer = stream_.socket().remote_endpoint(ec);
  if (!ec) {
    const std::string address = peer.address().to_string();
    remote_ = (peer.address().is_v6() ? "[" + address + "]" : address) + ":" +
              std::to_string(peer.port());
  }
  if (tls != nullptr) {
    tls_ = std::make_unique<beast::ssl_stream<beast::tcp_stream>>(std::move(stream_), *tls);
  }
}

Session::~Session() {
  cancel_clock_timer();
  server_.closed(id_);
}

void Session::cancel_clock_timer() {
  if (clock_timer_ == 0) return;
  server_.options().deadline_clock->cancel(clock_timer_);
  clock_timer_ = 0;
}

void Session::start(bool refuse) {
  asio::dispatch(lowest().get_executor(), [self = shared_from_this(), refuse] {
    if (self->tls_) return self->handshake(refuse);
    if (refuse) {
      self->answer(Response::error(503, "overloaded", "too many connections; try again later"),
                   false);
      return;
    }
    self->wait_for_request();
  });
}

// TLS: the handshake must finish within the header timeout, like a request head would.
void Session::handshake(bool refuse) {
  arm(server_.options().header_timeout);
  tls_->async_handshake(
      asio::ssl::stream_base::server, [self = shared_from_this(), refuse](beast::error_code ec) {
        self->disarm();
        if (ec) return self->close();  // not TLS, or a bad or missing client certificate
        if (refuse) {
          return self->answer(
              Response::error(503, "overloaded", "too many connections; try again later"), false);
        }
        self->wait_for_request();
      });
}

void Session::arm(Duration d) {
  const uint64_t mine = ++deadline_;
  if (Clock* clock = server_.options().deadline_clock) {
    cancel_clock_timer();  // one deadline at a time: the clock keeps no stale ones
    clock_timer_ =
        clock->schedule_after(d, [weak = weak_from_this(), mine, ex = lowest().get_executor()] {
          if (auto self = weak.lock()) asio::post(ex, [self, mine] { self->expire(mine); });
        });
    return;
  }
  timer_.expires_after(steady(d));
  timer_.async_wait([self = shared_from_this(), mine](beast::error_code ec) {
    if (!ec) self->expire(mine);
  });
}

void Session::expire(uint64_t deadline) {
  if (deadline != deadline_) return;  // disarmed or armed again since
  timed_out_ = true;
  beast::error_code ignored;
  lowest().socket().cancel(ignored);
}

void Session::close_if_idle() {
  asio::post(lowest().get_executor(), [self = shared_from_this()] {
    if (self->idle_) self->close();
  });
}

void Session::wait_for_request() {
  if (server_.stopping()) return close();
  spool_parser_.reset();
  parser_.emplace();
  parser_->header_limit(static_cast<uint32_t>(server_.options().max_header_bytes));
  // Beast checks a Content-Length against the limit as the head completes, before this
  // session knows the route: the head is read under the largest limit any route has, and
  // on_header() applies the request's own.
  parser_->body_limit(server_.largest_body());
  limit_ = server_.options().max_body_bytes;
  if (buffer_.size() > 0) return read_header();  // pipelined bytes are already here
  // Idle until the first byte arrives; only then does the (shorter) header clock start.
  idle_ = true;
  lowest().expires_never();
  arm(answered_ == 0 ? server_.options().first_request_timeout : server_.options().idle_timeout);
  io([&](auto& s) {
    s.async_read_some(buffer_.prepare(4096),
                      [self = shared_from_this()](beast::error_code ec, size_t n) {
                        self->idle_ = false;
                        self->disarm();
                        if (ec) return self->close();  // idle timeout, peer gone, or stop
                        self->buffer_.commit(n);
                        self->read_header();
                      });
  });
}

void Session::read_header() {
  arm(server_.options().header_timeout);
  io([&](auto& s) {
    bhttp::async_read_header(
        s, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->on_header(ec); });
  });
}

void Session::on_header(beast::error_code ec) {
  disarm();
  if (ec) return refuse_after_read_error(ec);
  request_id_ = server_.next_request_id();
  Duration body_timeout = server_.options().body_timeout;
  size_t limit = server_.options().max_body_bytes;
  const ServerOptions::LargeBody* route = nullptr;
  const auto& head = parser_->get();
  for (const auto& large : server_.options().large_bodies) {
    if (head.method_string() == large.method && head.target().starts_with(large.path_prefix)) {
      route = &large;
      limit = large.max_bytes;
      body_timeout = large.timeout;
      break;
    }
  }
  const auto length = parser_->content_length();
  if (length && *length > limit) {
    linger_ = true;  // the body may be on its way: let the answer reach the client
    return refuse_body_too_large(limit);
  }
  parser_->body_limit(limit);  // what is left of it, for chunked bodies
  limit_ = limit;
  if (route != nullptr && route->admit) {
    Request request = request_from(head.base());
    const auto started = std::chrono::steady_clock::now();
    if (auto refused = server_.admit(*route, request)) {
      const auto handled = std::chrono::steady_clock::now();
      refused->headers.emplace_back("X-Request-Id", request.id);
      linger_ = parser_->content_length().value_or(1) > 0;  // a body may be on its way
      return send(std::move(*refused), record_of(request, started, handled), false, handled);
    }
    admission_ = std::move(request.admission);
  }
  // A client that asked to be told before it sends the body is told now.
  if (beast::iequals(head[bhttp::field::expect], "100-continue")) {
    static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
    lowest().expires_after(steady(server_.options().body_timeout));
    io([&](auto& s) {
      asio::async_write(
          s, asio::buffer(kContinue.data(), kContinue.size()),
          [self = shared_from_this(), route, body_timeout](beast::error_code wec, size_t) {
            if (wec) return self->close();
            self->lowest().expires_never();
            if (route != nullptr && !route->spool_directory.empty())
              return self->read_spooled(route->spool_directory, body_timeout);
            self->read_body(body_timeout);
          });
    });
    return;
  }
  if (route != nullptr && !route->spool_directory.empty())
    return read_spooled(route->spool_directory, body_timeout);
  read_body(body_timeout);
}

void Session::read_body(Duration timeout) {
  arm(timeout);
  io([&](auto& s) {
    bhttp::async_read(
        s, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code read_ec, size_t) { self->on_body(read_ec); });
  });
}

void Session::read_spooled(const std::string& directory, Duration timeout) {
  spool_parser_.emplace(std::move(*parser_));
  parser_.reset();
  spool_parser_->body_limit(limit_);
  const std::string path = directory + "/" + request_id_ + "-" + std::to_string(id_) + ".part";
  if (auto ec = SpoolBody::open(spool_parser_->get().body(), path)) {
    spool_parser_.reset();
    linger_ = true;
    return refuse_spool_failure(ec.value());
  }
  arm(timeout);
  io([&](auto& s) {
    bhttp::async_read(s, buffer_, *spool_parser_,
                      [self = shared_from_this()](beast::error_code read_ec, size_t) {
                        self->on_spooled_body(read_ec);
                      });
  });
}

Request Session::request_from(const bhttp::request_header<>& head) const {
  Request request;
  request.method = std::string(head.method_string());
  request.target = std::string(head.target());
  request.headers.reserve(16);
  for (const auto& field : head) {
    request.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
  }
  request.remote = remote_;
  request.id = request_id_;
  return request;
}

void Session::on_body(beast::error_code ec) {
  disarm();
  if (ec) return refuse_after_read_error(ec);
  auto& msg = parser_->get();
  Request request = request_from(msg.base());
  request.body = std::move(msg.body());
  dispatch(request, msg.keep_alive());
}

void Session::on_spooled_body(beast::error_code ec) {
  disarm();
  auto& msg = spool_parser_->get();
  SpoolBody::File& file = *msg.body();
  if (ec) {
    const int write_error = file.write_error;
    spool_parser_.reset();  // no partial file stays behind
    admission_.reset();
    if (write_error != 0) {
      linger_ = true;
      return refuse_spool_failure(write_error);
    }
    return refuse_after_read_error(ec);
  }
  Request request = request_from(msg.base());
  ::close(file.fd);
  file.fd = -1;
  request.spooled = Request::Spooled{file.path, file.size, file.hash.finish()};
  const bool keep_alive = msg.keep_alive();
  dispatch(request, keep_alive);  // respond() ends the spool and the admission
}

AccessRecord Session::record_of(const Request& request,
                                std::chrono::steady_clock::time_point started,
                                std::chrono::steady_clock::time_point handled) const {
  AccessRecord record;
  if (!server_.options().access_log) return record;
  record.request_id = request.id;
  record.remote = request.remote;
  record.method = request.method;
  record.path = std::string(request.path());
  record.request_bytes = request.spooled ? request.spooled->size : request.body.size();
  record.handler_ms = std::chrono::duration<double, std::milli>(handled - started).count();
  return record;
}

void Session::dispatch(const Request& request, bool keep_alive) {
  ++answered_;
  const auto started = std::chrono::steady_clock::now();
  Response response = server_.handle(request);
  const auto handled = std::chrono::steady_clock::now();
  AccessRecord record = record_of(request, started, handled);
  if (!response.offload) {
    return respond(std::move(response), request.id, std::move(record), keep_alive, handled);
  }
  // Computed on a worker; the connection reads nothing meanwhile, its I/O thread serves others.
  server_.offload([self = shared_from_this(), home = lowest().get_executor(),
                   work = std::move(response.offload), route = response.route, id = request.id,
                   record = std::move(record), keep_alive, started]() mutable {
    Response produced = self->server_.guarded(id, work);
    if (produced.route.empty()) produced.route = route;
    const auto done = std::chrono::steady_clock::now();
    record.handler_ms = std::chrono::duration<double, std::milli>(done - started).count();
    // The session goes with the answer: it must end on its own I/O thread, not here.
    asio::post(home, [self = std::move(self), produced = std::move(produced), id = std::move(id),
                      record = std::move(record), keep_alive, done]() mutable {
      self->respond(std::move(produced), id, std::move(record), keep_alive, done);
    });
  });
}

void Session::respond(Response response, const std::string& request_id, AccessRecord record,
                      bool keep_alive, std::chrono::steady_clock::time_point handled) {
  // The handler is done (here or on a worker): a spooled body it did not take is removed,
  // and what its admission held is released.
  spool_parser_.reset();
  admission_.reset();
  response.headers.emplace_back("X-Request-Id", request_id);
  if (!response.defer) return send(std::move(response), std::move(record), keep_alive, handled);
  auto defer = std::move(response.defer);
  response.defer = nullptr;
  auto pending = std::make_shared<Response>(std::move(response));
  defer([self = shared_from_this(), pending, record = std::move(record), id = request_id,
         keep_alive, handled](const Status& allowed) mutable {
    asio::post(self->lowest().get_executor(), [self, pending, record = std::move(record), id,
                                               keep_alive, handled, allowed]() mutable {
      if (!allowed.ok()) {
        const Error& e = allowed.error();
        // Only the request id and the route carry over to the error.
        const std::string_view route = pending->route;
        *pending = Response::error(
            e.code == ErrorCode::kIo ? 503 : 500,
            e.code == ErrorCode::kIo ? "unavailable" : "internal",
            e.code == ErrorCode::kIo ? "the change could not be stored" : "internal error");
        pending->route = route;
        pending->headers.emplace_back("X-Request-Id", id);
      }
      self->send(std::move(*pending), std::move(record), keep_alive, handled);
    });
  });
}

void Session::send(Response response, AccessRecord record, bool keep_alive,
                   std::chrono::steady_clock::time_point handled) {
  if (const auto& log = server_.options().access_log) {
    record.status = response.status;
    record.route = response.route;
    record.response_bytes = response.file ? response.file->length : response.body.size();
    record.wait_ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - handled)
            .count();
    log(record);
  }
  answer(std::move(response), keep_alive);
}

void Session::refuse_body_too_large(size_t limit) {
  answer(Response::error(413, "body_too_large",
                         "request body larger than " + std::to_string(limit) + " bytes"),
         false);
}

void Session::refuse_spool_failure(int error_number) {
  if (is_out_of_space(error_number)) {
    return answer(
        Response::error(507, "resource_exhausted", "no room on the server's disk for this body"),
        false);
  }
  answer(Response::error(503, "unavailable", "the body could not be stored"), false);
}

void Session::refuse_after_read_error(beast::error_code ec) {
  if (timed_out_) {
    timed_out_ = false;
    return answer(Response::error(408, "timeout", "the request did not arrive in time"), false);
  }
  if (ec == bhttp::error::end_of_stream || ec == asio::error::eof ||
      ec == asio::error::operation_aborted || ec == asio::error::connection_reset) {
    return close();
  }
  if (ec == bhttp::error::header_limit) {
    return answer(
        Response::error(431, "header_too_large",
                        "request head larger than " +
                            std::to_string(server_.options().max_header_bytes) + " bytes"),
        false);
  }
  if (ec == bhttp::error::body_limit) return refuse_body_too_large(limit_);
  answer(Response::error(400, "bad_request", "malformed request: " + ec.message()), false);
}

void Session::answer(Response r, bool keep_alive) {
  keep_alive = keep_alive && !server_.stopping();
  if (r.file) return answer_file(std::move(r), keep_alive);
  auto res = std::make_shared<bhttp::response<bhttp::string_body>>(
      static_cast<bhttp::status>(r.status), 11);
  res->set(bhttp::field::server, "drover");
  if (!r.content_type.empty()) res->set(bhttp::field::content_type, r.content_type);
  for (auto& [name, value] : r.headers) res->set(name, value);
  res->body() = std::move(r.body);
  res->keep_alive(keep_alive);
  res->prepare_payload();
  lowest().expires_after(steady(server_.options().body_timeout));
  io([&](auto& s) {
    bhttp::async_write(s, *res,
                       [self = shared_from_this(), res, keep_alive](beast::error_code ec, size_t) {
                         if (ec || !keep_alive) return self->close();
                         self->wait_for_request();
                       });
  });
}

// A file body on its way out: the response and its serializer, the file and what is left.
struct Session::FileSend {
  bhttp::response<bhttp::buffer_body> res;
  std::optional<bhttp::response_serializer<bhttp::buffer_body>> serializer;
  int fd = -1;
  uint64_t offset = 0;
  uint64_t remaining = 0;
  bool keep_alive = false;
  std::array<char, 64 * kKiB> piece;
  ~FileSend() {
    if (fd >= 0) ::close(fd);
  }
};

void Session::answer_file(Response r, bool keep_alive) {
  const int fd = ::open(r.file->path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return answer(Response::error(500, "internal", "the file to send cannot be opened"),
                  keep_alive);
  }
  auto send = std::make_shared<FileSend>();
  send->fd = fd;
  send->offset = r.file->offset;
  send->remaining = r.file->length;
  send->keep_alive = keep_alive;
  send->res.result(static_cast<bhttp::status>(r.status));
  send->res.version(11);
  send->res.set(bhttp::field::server, "drover");
  if (!r.content_type.empty()) send->res.set(bhttp::field::content_type, r.content_type);
  for (auto& [name, value] : r.headers) send->res.set(name, value);
  send->res.content_length(r.file->length);
  send->res.keep_alive(keep_alive);
  send->res.body().data = nullptr;
  send->res.body().more = true;
  send->serializer.emplace(send->res);
  lowest().expires_after(steady(server_.options().body_timeout));
  io([&](auto& s) {
    bhttp::async_write_header(s, *send->serializer,
                              [self = shared_from_this(), send](beast::error_code ec, size_t) {
                                if (ec) return self->close();
                                self->send_file_piece(send);
                              });
  });
}

void Session::send_file_piece(std::shared_ptr<FileSend> send) {
  const size_t want = static_cast<size_t>(std::min<uint64_t>(send->remaining, send->piece.size()));
  ssize_t got = 0;
  if (want > 0) {
    got = ::pread(send->fd, send->piece.data(), want, static_cast<off_t>(send->offset));
    // The file shrank or failed under us: the length promised cannot be kept, so the client
    // must see a cut connection, not a short body taken for whole.
    if (got <= 0) return close();
  }
  send->offset += static_cast<uint64_t>(got);
  send->remaining -= static_cast<uint64_t>(got);
  send->res.body().data = got > 0 ? send->piece.data() : nullptr;
  send->res.body().size = static_cast<size_t>(got);
  send->res.body().more = send->remaining > 0;
  lowest().expires_after(steady(server_.options().body_timeout));
  io([&](auto& s) {
    bhttp::async_write(s, *send->serializer,
                       [self = shared_from_this(), send](beast::error_code ec, size_t) {
                         if (ec == bhttp::error::need_buffer) ec = {};
                         if (ec) return self->close();
                         if (!send->serializer->is_done()) return self->send_file_piece(send);
                         if (!send->keep_alive) return self->close();
                         self->wait_for_request();
                       });
  });
}

void Session::close() {
  admission_.reset();
  disarm();
  beast::error_code ignored;
  timer_.cancel(ignored);
  lowest().socket().shutdown(tcp::socket::shutdown_send, ignored);
  if (linger_) return linger();
  lowest().socket().close(ignored);
}

struct Session::Dropped {
  std::array<char, 16 * kKiB> scratch;
  size_t total = 0;
};

void Session::linger() {
  linger_ = false;  // the next close() is final
  arm(seconds(2));  // its expiry cancels the read below, which then closes
  drop_more(std::make_shared<Dropped>());
}

void Session::drop_more(const std::shared_ptr<Dropped>& d) {
  constexpr size_t kMostDropped = 8 * kMiB;
  lowest().socket().async_read_some(asio::buffer(d->scratch),
                                    [self = shared_from_this(), d](beast::error_code ec, size_t n) {
                                      d->total += n;
                                      if (ec || d->total > kMostDropped) return self->close();
                                      self->drop_more(d);
                                    });
}

}  // namespace

Result<std::unique_ptr<HttpServer>> HttpServer::start(ServerOptions options, Handler handler) {
  if (!handler) return invalid_argument("an HTTP server needs a handler");
  if (options.max_connections == 0) return invalid_argument("max_connections must be > 0");
  auto server = std::make_unique<ServerImpl>(std::move(options), std::move(handler));
  DROVER_TRY(server->listen());
  return std::unique_ptr<HttpServer>(std::move(server));
}

}  // namespace drover::http
