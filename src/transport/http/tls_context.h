// The TLS context of an HttpServer (included only by server.cc: it brings in Asio's SSL).
#pragma once

#include <boost/asio/ssl/context.hpp>
#include <optional>

#include "base/result.h"
#include "transport/http/server.h"

namespace drover::http {

// With no certificate and key in `options`: plain TCP, `tls` left empty. Otherwise TLS 1.2 or
// newer with the given certificate chain and key, forward-secret AEAD suites only; with a
// client CA, every client must present a certificate it signed (mutual TLS).
// kInvalidArgument naming the file that cannot be used.
Status configure_tls(const ServerOptions& options, std::optional<boost::asio::ssl::context>& tls);

}  // namespace drover::http
