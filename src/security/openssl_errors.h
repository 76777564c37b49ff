// OpenSSL leaves the reasons for a refused key, signature or certificate on the thread's
// error queue, where a later TLS call on the same thread would find them and misreport its
// own result. An OpenSslErrorScope takes off again what is added while it lives, and leaves
// what was there before alone. Include only from .cc files of src/security/.
#pragma once

#include <openssl/err.h>

namespace drover::security {

class OpenSslErrorScope {
 public:
  OpenSslErrorScope() { ERR_set_mark(); }
  ~OpenSslErrorScope() { ERR_pop_to_mark(); }
  OpenSslErrorScope(const OpenSslErrorScope&) = delete;
  OpenSslErrorScope& operator=(const OpenSslErrorScope&) = delete;
};

}  // namespace drover::security
