#include "transport/http/client.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <charconv>
#include <limits>
#include <optional>

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
    if (stream_) {
      beast::error_code ignored;
      stream_->socket().shutdown(tcp::socket::shutdown_both, ignored);
      stream_.reset();
    }
    buffer_.clear();
  }

 private:
  template <typename Exchange>
  Result<ClientResponse> with_retry(Exchange exchange_once) {
    const bool reused = stream_.has_value();
    bool stale = false;
    auto first = exchange_once(stale);
    if (first.ok() || !(reused && stale)) return first;
    close();
    return exchange_once(stale);
  }

  Status connect() {
    if (stream_) return ok_status();
    beast::error_code ec;
    tcp::resolver resolver(io_);
    auto endpoints = resolver.resolve(url_.host, std::to_string(url_.port), ec);
    if (ec) return io("resolving " + url_.host, ec);
    stream_.emplace(io_);
    stream_->expires_after(as_ms(options_.connect_timeout));
    stream_->connect(endpoints, ec);
    if (ec) {
      stream_.reset();
      return io("connecting to " + url_.host + ":" + std::to_string(url_.port), ec);
    }
    stream_->socket().set_option(tcp::no_delay(true), ec);
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
    beast::error_code ec;
    stream_->expires_after(as_ms(options_.request_timeout));
    bhttp::write(*stream_, req, ec);
    if (ec) {
      stale = stale_connection(ec);
      close();
      return io("sending " + std::string(method) + " " + std::string(target), ec);
    }

    ClientResponse out;
    if (sink == nullptr) {
      bhttp::response_parser<bhttp::string_body> parser;
      parser.body_limit(kNoBodyLimit);
      bhttp::read(*stream_, buffer_, parser, ec);
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
    bhttp::read_header(*stream_, buffer_, parser, ec);
    if (ec) {
      stale = stale_connection(ec) && !parser.got_some();
      close();
      return io("reading the answer to GET " + std::string(target), ec);
    }
    fill(out, parser.get());
    char piece[64 * 1024];
    while (!parser.is_done()) {
      parser.get().body().data = piece;
      parser.get().body().size = sizeof piece;
      stream_->expires_after(as_ms(options_.request_timeout));
      bhttp::read(*stream_, buffer_, parser, ec);
      if (ec == bhttp::error::need_buffer) ec = {};
      if (ec) {
        close();
        return io("downloading " + std::string(target), ec);
      }
      const size_t n = sizeof piece - parser.get().body().size;
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
  std::optional<beast::tcp_stream> stream_;
  beast::flat_buffer buffer_;
};

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    const auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

}  // namespace

std::string_view ClientResponse::header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (iequals(k, name)) return v;
  }
  return {};
}

Result<Url> parse_url(std::string_view url) {
  Url out;
  const size_t scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos)
    return invalid_argument("server URL must be http://HOST[:PORT], got '" + std::string(url) +
                            "'");
  out.scheme = std::string(url.substr(0, scheme_end));
  if (out.scheme != "http") {
    return invalid_argument("server URL scheme must be http, got '" + out.scheme + "'");
  }
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
  return std::unique_ptr<HttpClient>(new BeastClient(std::move(*url), std::move(options)));
}

}  // namespace drover::http
