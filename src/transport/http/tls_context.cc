#include "transport/http/tls_context.h"

#include <openssl/ssl.h>

#include <boost/beast/core/error.hpp>
#include <string>

namespace drover::http {

namespace asio = boost::asio;

Status configure_tls(const ServerOptions& options, std::optional<asio::ssl::context>& tls) {
  if (options.tls_cert_file.empty() && options.tls_key_file.empty()) {
    if (!options.tls_client_ca_file.empty())
      return invalid_argument("a client CA needs a server certificate and key (TLS)");
    return ok_status();
  }
  if (options.tls_cert_file.empty() || options.tls_key_file.empty())
    return invalid_argument("TLS needs both a certificate and a key");
  tls.emplace(asio::ssl::context::tls_server);
  boost::beast::error_code ec;
  tls->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                       asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                       asio::ssl::context::no_tlsv1_1 | asio::ssl::context::single_dh_use,
                   ec);
  // TLS 1.2 only with forward-secret key exchange and AEAD ciphers (TLS 1.3's suites all
  // are): a stolen server key must not decrypt recorded traffic.
  if (SSL_CTX_set_cipher_list(tls->native_handle(), "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL") != 1)
    return invalid_argument("TLS: the forward-secret cipher suites are not available");
  auto bad = [&](const std::string& what, const std::string& file) {
    return invalid_argument("TLS: cannot use " + what + " " + file + ": " + ec.message());
  };
  tls->use_certificate_chain_file(options.tls_cert_file, ec);
  if (ec) return bad("certificate", options.tls_cert_file);
  tls->use_private_key_file(options.tls_key_file, asio::ssl::context::pem, ec);
  if (ec) return bad("key", options.tls_key_file);
  if (!options.tls_client_ca_file.empty()) {
    tls->load_verify_file(options.tls_client_ca_file, ec);
    if (ec) return bad("client CA", options.tls_client_ca_file);
    tls->set_verify_mode(asio::ssl::verify_peer | asio::ssl::verify_fail_if_no_peer_cert, ec);
  }
  return ok_status();
}

}  // namespace drover::http
