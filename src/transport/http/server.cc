#include "transport/http/server.h"

#include <algorithm>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "transport/http/reserve_descriptor.h"
#include "transport/http/session.h"
#include "transport/http/tls_context.h"

namespace drover::http {

namespace {

// Accepts connections and runs the I/O threads; what the connections share is host_.
class ServerImpl final : public HttpServer {
 public:
  ServerImpl(ServerOptions options, Handler handler)
      : host_(std::move(options), std::move(handler)),
        ios_(make_contexts(std::max(1, host_.options().threads))),
        acceptor_(*ios_.front()),
        accept_backoff_(*ios_.front()) {}

  ~ServerImpl() override { stop(); }

  Status listen() {
    const ServerOptions& options = host_.options();
    DROVER_TRY(configure_tls(options, tls_));
    beast::error_code ec;
    auto address = asio::ip::make_address(options.host, ec);
    if (ec) {
      tcp::resolver resolver(*ios_.front());
      auto found = resolver.resolve(options.host, std::to_string(options.port), ec);
      if (ec || found.empty())
        return invalid_argument("cannot resolve listen host '" + options.host + "'");
      address = found.begin()->endpoint().address();
    }
    const tcp::endpoint endpoint(address, options.port);
    auto fail = [&](const char* what) {
      return Error{ErrorCode::kIo, std::string("cannot ") + what + " " + options.host + ":" +
                                       std::to_string(options.port) + ": " + ec.message()};
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
  size_t connections() const override { return host_.connections(); }

  void stop() override {
    std::call_once(stopped_, [this] {
      host_.begin_stop();
      asio::post(acceptor_.get_executor(), [this] {
        beast::error_code ignored;
        acceptor_.close(ignored);
        accept_backoff_.cancel();
      });
      host_.close_idle();
      host_.wait_drained(host_.options().drain_timeout);
      guards_.clear();
      for (auto& io : ios_) io->stop();  // whatever did not finish in time is cut
      for (auto& t : threads_) t.join();
      threads_.clear();
      host_.join_workers();
    });
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
        const bool refuse =
            host_.connections() >= host_.options().max_connections || host_.stopping();
        host_.open(std::move(s), tls_ ? &*tls_ : nullptr)->start(refuse);
      }
      accept();
    });
  }

  void shed_one() { reserve_.shed(acceptor_.native_handle(), tls_.has_value()); }

  // Declared first so that ios_ go before it: their leftover handlers hold sessions, which
  // call host_.closed() when they are destroyed with them.
  SessionHost host_;
  std::once_flag stopped_;
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

  static std::vector<std::unique_ptr<asio::io_context>> make_contexts(int n) {
    std::vector<std::unique_ptr<asio::io_context>> out;
    out.reserve(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) out.push_back(std::make_unique<asio::io_context>(1));
    return out;
  }
};

}  // namespace

Result<std::unique_ptr<HttpServer>> HttpServer::start(ServerOptions options, Handler handler) {
  if (!handler) return invalid_argument("an HTTP server needs a handler");
  if (options.max_connections == 0) return invalid_argument("max_connections must be > 0");
  auto server = std::make_unique<ServerImpl>(std::move(options), std::move(handler));
  DROVER_TRY(server->listen());
  return std::unique_ptr<HttpServer>(std::move(server));
}

}  // namespace drover::http
