#include "transport/http/client.h"

#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <cctype>
#include <charconv>
#include <limits>
#include <optional>
#include <type_traits>

namespace drover::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;

// Not boost::none: Boost 1.74's parser compares the content length against the optional
// limit directly, and any length is "greater" than an empty optional.
constexpr uint64_t kNoBodyLimit = std::numeric_limits<uint64_t>::max();

std::chrono::milliseconds as_ms(Duration d) { return std::chrono::milliseconds(d.count()); }

Error io(const std::string& what, const beast::error_code& ec) {
  return io_error(what + ": " + ec.message());
}

// An error that a closed keep-alive connection produces before any response byte.
bool stale_connection(const beast::error_code& ec) {
  return ec == bhttp::error::end_of_stream || ec == asio::error::eof ||
         ec == asio::error::connection_reset || ec == asio::error::broken_pipe;
}

class BeastClient final : public HttpClient {
 public:
  BeastClient(Url url, ClientOptions options)
      : url_(std::move(url)), options_(std::move(options)) {}

  // https: TLS 1.2+, the server's certificate verified against the CA file (or the system's
  // trust store) and its name.
  Status configure_tls() {
    if (url_.scheme != "https") return ok_status();
    tls_ctx_.emplace(asio::ssl::context::tls_client);
    beast::error_code ec;
    tls_ctx_->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                              asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                              asio::ssl::context::no_tlsv1_1,
                          ec);
    auto bad = [&](const std::string& what, const std::string& file) {
      return invalid_argument("TLS: cannot use " + what + " " + file + ": " + ec.message());
    };
    if (options_.ca_file.empty()) {
      tls_ctx_->set_default_verify_paths(ec);
      if (ec) return bad("the system's CA certificates", "");
    } else {
      tls_ctx_->load_verify_file(options_.ca_file, ec);
      if (ec) return bad("CA file", options_.ca_file);
    }
    if (!options_.cert_file.empty() || !options_.key_file.empty()) {
      tls_ctx_->use_certificate_chain_file(options_.cert_file, ec);
      if (ec) return bad("certificate", options_.cert_file);
      tls_ctx_->use_private_key_file(options_.key_file, asio::ssl::context::pem, ec);
      if (ec) return bad("key", options_.key_file);
    }
    tls_ctx_->set_verify_mode(asio::ssl::verify_peer, ec);
    return ok_status();
  }

  Result<ClientResponse> request(std::string_view method, std::string_view target,
                                 std::string_view body, const Headers& headers) override {
    return with_retry(
        [&](bool& stale) { return exchange(method, target, body, headers, nullptr, stale); });
  }

  Result<ClientResponse> get_to(std::string_view target, const Headers& headers,
                                const std::function<Status(std::string_view)>& sink) override {
    return with_retry(
        [&](bool& stale) { return exchange("GET", target, {}, headers, &sink, stale); });
  }

  void close() override {
    if (connected()) {
      beast::error_code ignored;
      lowest().socket().shutdown(tcp::socket::shutdown_both, ignored);
      lowest().socket().close(ignored);
    }
    tls_.reset();
    stream_.reset();
    buffer_.clear();
  }

 private:
  template <typename Exchange>
  Result<ClientResponse> with_retry(Exchange exchange_once) {
    const bool reused = connected();
    bool stale = false;
    auto first = exchange_once(stale);
    if (first.ok() || !(reused && stale)) return first;
    close();
    return exchange_once(stale);
  }

  bool connected() const { return tls_ != nullptr || stream_.has_value(); }
  beast::tcp_stream& lowest() { return tls_ ? beast::get_lowest_layer(*tls_) : *stream_; }
  template <typename Fn>
  auto on_stream(Fn&& fn) {
    return tls_ ? fn(*tls_) : fn(*stream_);
  }

  // Beast's deadlines (expires_after) bound asynchronous operations only: a blocking call
  // would wait for ever on a server that accepts and then says nothing. So every step is
  // started asynchronously and the client's own io_context runs until it has finished,
  // either by itself or because the deadline closed the socket (error::timeout).
  template <typename Start>
  beast::error_code await(Start&& start, size_t* transferred = nullptr) {
    beast::error_code result = asio::error::would_block;
    start([&result, transferred](beast::error_code ec, auto... rest) {
      result = ec;
      if constexpr (sizeof...(rest) == 1 && (std::is_integral_v<decltype(rest)> && ...)) {
        if (transferred != nullptr) *transferred = (rest + ...);
      }
    });
    io_.restart();
    io_.run();
    return result;
  }

  // Each read under a fresh deadline: the wait for the answer's head (the server may be
  // making an upload durable), then the rest of a body read whole.
  template <typename Parser>
  beast::error_code read_head(Parser& parser) {
    lowest().expires_after(as_ms(options_.request_timeout));
    return on_stream([&](auto& st) {
      return await(
          [&](auto done) { bhttp::async_read_header(st, buffer_, parser, std::move(done)); });
    });
  }

  template <typename Parser>
  beast::error_code read_rest(Parser& parser) {
    lowest().expires_after(as_ms(options_.request_timeout));
    return on_stream([&](auto& st) {
      return await([&](auto done) { bhttp::async_read(st, buffer_, parser, std::move(done)); });
    });
  }

  // After a write failed: the whole answer the server sent before it closed, if it did
  // (read within a few seconds, at most 64 KiB of it), else nothing.
  std::optional<ClientResponse> early_answer() {
    bhttp::response_parser<bhttp::string_body> parser;
    parser.body_limit(64u << 10);
    lowest().expires_after(std::chrono::seconds(5));
    beast::error_code ec = on_stream([&](auto& st) {
      return await([&](auto done) { bhttp::async_read(st, buffer_, parser, std::move(done)); });
    });
    if (ec || !parser.is_done()) return std::nullopt;
    auto msg = parser.release();
    ClientResponse out;
    fill(out, msg);
    out.body = std::move(msg.body());
    return out;
  }

  Status connect() {
    if (connected()) return ok_status();
    beast::error_code ec;
    tcp::resolver resolver(io_);
    auto endpoints = resolver.resolve(url_.host, std::to_string(url_.port), ec);
    if (ec) return io("resolving " + url_.host, ec);
    stream_.emplace(io_);
    stream_->expires_after(as_ms(options_.connect_timeout));
    ec = await([&](auto done) { stream_->async_connect(endpoints, std::move(done)); });
    if (ec) {
      stream_.reset();
      return io("connecting to " + url_.host + ":" + std::to_string(url_.port), ec);
    }
    stream_->socket().set_option(tcp::no_delay(true), ec);
    if (!tls_ctx_) return ok_status();
    tls_ = std::make_unique<beast::ssl_stream<beast::tcp_stream>>(std::move(*stream_), *tls_ctx_);
    stream_.reset();
    // SNI, and the name (or address) the certificate must carry, checked by OpenSSL itself.
    SSL* ssl = tls_->native_handle();
    asio::ip::make_address(url_.host, ec);
    const bool literal_address = !ec;
    ec = {};
    const bool named =
        literal_address ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), url_.host.c_str()) == 1
                        : SSL_ctrl(ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
                                   const_cast<char*>(url_.host.c_str())) == 1 &&
                              SSL_set1_host(ssl, url_.host.c_str()) == 1;
    if (!named) {
      close();
      return io_error("TLS: cannot set the expected server name " + url_.host);
    }
    lowest().expires_after(as_ms(options_.connect_timeout));
    ec = await(
        [&](auto done) { tls_->async_handshake(asio::ssl::stream_base::client, std::move(done)); });
    if (ec) {
      close();
      return io_error("TLS handshake with " + url_.host + ":" + std::to_string(url_.port) + ": " +
                      ec.message());
    }
    return ok_status();
  }

  Result<ClientResponse> exchange(std::string_view method, std::string_view target,
                                  std::string_view body, const Headers& headers,
                                  const std::function<Status(std::string_view)>* sink,
                                  bool& stale) {
    stale = false;
    if (target.empty() || target.front() != '/')
      return invalid_argument("request target must start with '/'");
    DROVER_TRY(connect());
    bhttp::request<bhttp::string_body> req;
    req.method_string(beast::string_view(method.data(), method.size()));
    req.target(url_.prefix + std::string(target));
    req.version(11);
    req.set(bhttp::field::host, url_.host + ":" + std::to_string(url_.port));
    req.set(bhttp::field::user_agent, options_.user_agent);
    for (const auto& [name, value] : headers) req.set(name, value);
    if (!body.empty() || method == "POST" || method == "PUT") {
      req.body() = std::string(body);
      req.prepare_payload();
    }
    // The request goes in pieces of at most 256 KiB, each under its own deadline: a large
    // upload over a slow link takes as long as it takes, a stalled one ends.
    beast::error_code ec;
    bhttp::request_serializer<bhttp::string_body> sr(req);
    sr.limit(size_t{256} * 1024);
    uint64_t sent = 0;  // the head's few hundred bytes included
    while (!ec && !sr.is_done()) {
      lowest().expires_after(as_ms(options_.request_timeout));
      size_t n = 0;
      ec = on_stream([&](auto& st) {
        return await([&](auto done) { bhttp::async_write_some(st, sr, std::move(done)); }, &n);
      });
      sent += n;
      if (options_.upload_progress && !body.empty())
        options_.upload_progress(std::min<uint64_t>(sent, body.size()), body.size());
    }
    if (ec) {
      // A server may answer before it has read the whole request (a refused upload: 401,
      // 413, 507 on its head) and close: its answer says more than the broken pipe.
      if (sent > 0 && sink == nullptr) {
        if (auto early = early_answer()) {
          close();
          return *std::move(early);
        }
      }
      stale = stale_connection(ec);
      close();
      return io("sending " + std::string(method) + " " + std::string(target), ec);
    }

    ClientResponse out;
    if (sink == nullptr) {
      bhttp::response_parser<bhttp::string_body> parser;
      // The declared length is judged on the head (before anything is allocated for it);
      // the parser's own limit then bounds a chunked body as it arrives.
      parser.body_limit(options_.max_answer_bytes);
      ec = read_head(parser);
      // (content_length() may be asked only of a whole head.)
      const auto declared = ec ? boost::optional<uint64_t>() : parser.content_length();
      if (!ec && !(declared && *declared > options_.max_answer_bytes)) ec = read_rest(parser);
      if (ec == bhttp::error::body_limit ||
          (!ec && declared && *declared > options_.max_answer_bytes)) {
        close();
        return io_error("the answer to " + std::string(method) + " " + std::string(target) +
                        " is larger than " + std::to_string(options_.max_answer_bytes) +
                        " bytes, the most this client reads");
      }
      if (ec) {
        stale = stale_connection(ec) && !parser.got_some();
        close();
        return io("reading the answer to " + std::string(method) + " " + std::string(target), ec);
      }
      auto msg = parser.release();
      fill(out, msg);
      out.body = std::move(msg.body());
      if (!msg.keep_alive()) close();
      return out;
    }

    // Streaming: read the head, then the body in pieces into the sink.
    bhttp::response_parser<bhttp::buffer_body> parser;
    parser.body_limit(kNoBodyLimit);
    ec = read_head(parser);
    if (ec) {
      stale = stale_connection(ec) && !parser.got_some();
      close();
      return io("reading the answer to GET " + std::string(target), ec);
    }
    fill(out, parser.get());
    // Only a 2xx body is the content asked for; any other is an answer about it (an error
    // document), kept in the response, at most 64 KiB of it.
    const bool content = out.status >= 200 && out.status < 300;
    char piece[64 * 1024];
    while (!parser.is_done()) {
      parser.get().body().data = piece;
      parser.get().body().size = sizeof piece;
      lowest().expires_after(as_ms(options_.request_timeout));
      ec = read_rest(parser);
      if (ec == bhttp::error::need_buffer) ec = {};
      if (ec) {
        close();
        return io("downloading " + std::string(target), ec);
      }
      const size_t n = sizeof piece - parser.get().body().size;
      if (n > 0 && !content) {
        constexpr size_t kKept = 64u << 10;
        out.body.append(piece, std::min(n, kKept - out.body.size()));
        if (out.body.size() == kKept) {
          // The rest is not read (an endless error document would hold the client for as
          // long as it trickles): the answer is its status, the connection is dropped.
          close();
          return out;
        }
        continue;
      }
      if (n > 0) {
        if (Status st = (*sink)(std::string_view(piece, n)); !st.ok()) {
          close();  // the rest of the body is unread: the connection cannot be reused
          return st.error();
        }
      }
    }
    if (!parser.get().keep_alive()) close();
    return out;
  }

  template <typename Message>
  static void fill(ClientResponse& out, const Message& msg) {
    out.status = static_cast<int>(msg.result_int());
    for (const auto& field : msg) {
      out.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
    }
  }

  Url url_;
  ClientOptions options_;
  asio::io_context io_;
  std::optional<asio::ssl::context> tls_ctx_;
  std::optional<beast::tcp_stream> stream_;                    // plain, or...
  std::unique_ptr<beast::ssl_stream<beast::tcp_stream>> tls_;  // ...TLS over it
  beast::flat_buffer buffer_;
};

}  // namespace

std::string_view ClientResponse::header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (beast::iequals(k, beast::string_view(name.data(), name.size()))) return v;
  }
  return {};
}

Result<Url> parse_url(std::string_view url) {
  Url out;
  const size_t scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos)
    return invalid_argument("server URL must be http(s)://HOST[:PORT], got '" + std::string(url) +
                            "'");
  out.scheme = std::string(url.substr(0, scheme_end));
  if (out.scheme != "http" && out.scheme != "https") {
    return invalid_argument("server URL scheme must be http or https, got '" + out.scheme + "'");
  }
  if (out.scheme == "https") out.port = 443;
  std::string_view rest = url.substr(scheme_end + 3);
  const size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  if (slash != std::string_view::npos) {
    std::string_view prefix = rest.substr(slash);
    while (prefix.ends_with('/')) prefix.remove_suffix(1);
    out.prefix = std::string(prefix);
  }
  if (authority.starts_with('[')) {
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) return invalid_argument("unterminated [IPv6] in URL");
    out.host = std::string(authority.substr(1, close - 1));
    authority.remove_prefix(close + 1);
    if (!authority.empty() && authority.front() != ':')
      return invalid_argument("junk after [IPv6] in URL");
  } else {
    const size_t colon = authority.rfind(':');
    out.host = std::string(authority.substr(0, colon));
    authority = colon == std::string_view::npos ? std::string_view() : authority.substr(colon);
  }
  if (out.host.empty()) return invalid_argument("server URL has no host");
  // A name or an IPv4 literal (letters, digits, '-', '.', and the '_' container names use),
  // or inside brackets an IPv6 literal (hex digits, ':', '.'; no zone, which a Host header
  // and a certificate check cannot carry): nothing a resolver or a log line would misread.
  const bool bracketed = rest.starts_with('[');
  const bool host_ok =
      bracketed ? out.host.find(':') != std::string::npos &&
                      std::all_of(out.host.begin(), out.host.end(),
                                  [](char c) {
                                    return std::isxdigit(static_cast<unsigned char>(c)) ||
                                           c == ':' || c == '.';
                                  })
                : std::all_of(out.host.begin(), out.host.end(), [](char c) {
                    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' ||
                           c == '_';
                  });
  if (!host_ok) {
    return invalid_argument("server URL '" + std::string(url) +
                            "' has a host that is neither a name nor an IP address");
  }
  if (!authority.empty()) {
    const std::string_view digits = authority.substr(1);
    unsigned port = 0;
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), port);
    if (ec != std::errc() || end != digits.data() + digits.size() || port == 0 || port > 65535)
      return invalid_argument("bad port in server URL '" + std::string(url) + "'");
    out.port = static_cast<uint16_t>(port);
  }
  return out;
}

std::string url_encode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

Result<std::unique_ptr<HttpClient>> HttpClient::create(std::string_view base_url,
                                                       ClientOptions options) {
  auto url = parse_url(base_url);
  if (!url.ok()) return url.error();
  auto client = std::make_unique<BeastClient>(std::move(*url), std::move(options));
  DROVER_TRY(client->configure_tls());
  return std::unique_ptr<HttpClient>(std::move(client));
}

}  // namespace drover::http
