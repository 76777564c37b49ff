#include "transport/http/session.h"

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <cinttypes>
#include <cstdio>

#include "base/file_system.h"

namespace drover::http {

std::string SessionHost::next_request_id() {
  char id[24];
  std::snprintf(id, sizeof id, "r%" PRIx64, request_ids_.fetch_add(1) + 1);
  return id;
}

std::shared_ptr<Session> SessionHost::open(tcp::socket socket, asio::ssl::context* tls) {
  ++open_;
  const uint64_t id = next_id_++;
  auto session = std::make_shared<Session>(std::move(socket), *this, id, tls);
  MutexLock lock(mu_);
  sessions_.emplace(id, session);
  return session;
}

void SessionHost::closed(uint64_t id) {
  MutexLock lock(mu_);
  sessions_.erase(id);
  --open_;
  drained_.notify_all();
}

void SessionHost::close_idle() {
  std::vector<std::shared_ptr<Session>> live;
  {
    MutexLock lock(mu_);
    for (auto& [id, weak] : sessions_) {
      if (auto s = weak.lock()) live.push_back(std::move(s));
    }
  }
  for (auto& s : live) s->close_if_idle();
}

void SessionHost::wait_drained(Duration timeout) {
  MutexLock lock(mu_);
  drained_.wait_for(mu_, steady(timeout), [this] { return open_ == 0; });
}

Session::Session(tcp::socket socket, SessionHost& server, uint64_t id, asio::ssl::context* tls)
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
  // A 304's Content-Length would describe the body it stands for, not an empty one.
  if (r.status == 304) res->erase(bhttp::field::content_length);
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

}  // namespace drover::http
