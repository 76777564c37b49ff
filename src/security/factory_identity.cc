#include "security/factory_identity.h"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>

#include "security/crypto.h"
#include "security/openssl_errors.h"
#include "security/tuf_key.h"

namespace drover::security {
namespace {

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct CtxFree {
  void operator()(X509_STORE_CTX* c) const { X509_STORE_CTX_free(c); }
};
struct StackFree {
  void operator()(STACK_OF(X509) * s) const { sk_X509_free(s); }  // the certificates stay
};
struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct MdCtxFree {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
using X509Ptr = std::unique_ptr<X509, X509Free>;

Error unauthenticated(std::string why) {
  return {ErrorCode::kUnauthenticated, "factory certificate: " + std::move(why)};
}
// An encrypted key is refused, not asked for on the terminal (OpenSSL's default).
int no_passphrase(char* /*buf*/, int /*size*/, int /*rwflag*/, void* /*u*/) { return -1; }

Error malformed(const std::string& why) { return invalid_argument("factory certificate: " + why); }

// Every certificate in a PEM text, in order. Empty when there is none; nullopt when the text
// holds something that is not a certificate after the first.
std::optional<std::vector<X509Ptr>> read_certificates(std::string_view pem, size_t max) {
  std::unique_ptr<BIO, BioFree> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return std::nullopt;
  std::vector<X509Ptr> out;
  for (;;) {
    X509* x = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr);
    if (x == nullptr) break;
    out.emplace_back(x);
    if (out.size() > max) return std::nullopt;
  }
  // The loop ends at the end of the text or at something that is no certificate: only the
  // first is fine.
  const unsigned long err = ERR_peek_last_error();
  if (ERR_GET_LIB(err) == ERR_LIB_PEM && ERR_GET_REASON(err) == PEM_R_NO_START_LINE) {
    return out;
  }
  if (err != 0) return std::nullopt;
  return out;
}

std::string entry_text(const X509_NAME_ENTRY* entry) {
  unsigned char* utf8 = nullptr;
  const int len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(entry));
  if (len < 0) return {};
  std::string out(reinterpret_cast<const char*>(utf8), static_cast<size_t>(len));
  OPENSSL_free(utf8);
  return out;
}

// The values of one attribute of a name, in order.
std::vector<std::string> values_of(const X509_NAME* name, int nid) {
  std::vector<std::string> out;
  for (int i = X509_NAME_get_index_by_NID(name, nid, -1); i >= 0;
       i = X509_NAME_get_index_by_NID(name, nid, i)) {
    out.push_back(entry_text(X509_NAME_get_entry(name, i)));
  }
  return out;
}

// The leaf's public key as a signature-checking key of a supported kind.
Result<PublicKey> leaf_key(X509* leaf) {
  EVP_PKEY* pk = X509_get0_pubkey(leaf);
  if (pk == nullptr) return malformed("the certificate's public key cannot be read");
  if (EVP_PKEY_is_a(pk, "ED25519")) {
    unsigned char raw[32];
    size_t len = sizeof raw;
    if (EVP_PKEY_get_raw_public_key(pk, raw, &len) != 1 || len != sizeof raw) {
      return malformed("the certificate's Ed25519 key cannot be read");
    }
    return PublicKey::ed25519(std::string_view(reinterpret_cast<const char*>(raw), len));
  }
  std::string scheme;
  std::string keytype;
  if (EVP_PKEY_is_a(pk, "EC")) {
    char group[64] = {};
    size_t len = 0;
    EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group, &len);
    const std::string_view g(group, len);
    scheme = g == "prime256v1"  ? "ecdsa-sha2-nistp256"
             : g == "secp384r1" ? "ecdsa-sha2-nistp384"
                                : "";
    keytype = "ecdsa";
  } else if (EVP_PKEY_is_a(pk, "RSA")) {
    scheme = "rsassa-pss-sha256";
    keytype = "rsa";
  }
  if (scheme.empty()) {
    return malformed(
        "the certificate's key is of an unsupported kind (Ed25519, ECDSA P-256 or "
        "P-384, RSA)");
  }
  std::unique_ptr<BIO, BioFree> bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PUBKEY(bio.get(), pk) != 1) {
    return malformed("the certificate's public key cannot be encoded");
  }
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio.get(), &data);
  return PublicKey::from_json(
      nlohmann::json{{"keytype", keytype},
                     {"scheme", scheme},
                     {"keyval", {{"public", std::string(data, static_cast<size_t>(size))}}}});
}

}  // namespace

std::string factory_enrollment_message(std::string_view device_id, std::string_view device_type,
                                       std::string_view hardware_revision,
                                       std::string_view public_key) {
  return "drover-enroll-v1\n" + std::string(device_id) + "\n" + std::string(device_type) + "\n" +
         std::string(hardware_revision) + "\n" + to_base64url(public_key);
}

struct FactoryTrust::Store {
  explicit Store(X509_STORE* s) : store(s) {}
  ~Store() { X509_STORE_free(store); }
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;
  X509_STORE* store;
};

Result<FactoryTrust> FactoryTrust::from_pem(const std::vector<std::string>& ca_pems) {
  const OpenSslErrorScope errors;
  auto store = std::make_shared<Store>(X509_STORE_new());
  if (store->store == nullptr) return Error{ErrorCode::kInternal, "X509_STORE_new failed"};
  size_t n = 0;
  for (const std::string& pem : ca_pems) {
    auto certs = read_certificates(pem, 1000);
    if (!certs || certs->empty()) {
      return invalid_argument("a manufacturer CA file holds no PEM certificate");
    }
    for (X509Ptr& c : *certs) {
      if (X509_check_ca(c.get()) == 0) {
        char subject[256] = {};
        X509_NAME_oneline(X509_get_subject_name(c.get()), subject, sizeof subject);
        return invalid_argument(std::string("'") + subject + "' is not a CA certificate");
      }
      if (X509_STORE_add_cert(store->store, c.get()) != 1) {
        return invalid_argument("a manufacturer CA certificate was refused");
      }
      ++n;
    }
  }
  if (n == 0) return invalid_argument("no manufacturer CA certificate given");
  FactoryTrust t;
  t.store_ = std::move(store);
  return t;
}

Result<FactoryIdentity> FactoryTrust::verify(std::string_view chain_pem, std::string_view message,
                                             std::string_view signature, Timestamp now) const {
  const OpenSslErrorScope errors;
  if (!store_) return unauthenticated("this server trusts no manufacturer CA");
  if (chain_pem.size() > kMaxChainBytes) {
    return malformed("the chain is longer than " + std::to_string(kMaxChainBytes) + " bytes");
  }
  auto certs = read_certificates(chain_pem, kMaxChainCertificates);
  if (!certs || certs->empty()) {
    return malformed("not a chain of at most " + std::to_string(kMaxChainCertificates) +
                     " PEM certificates");
  }
  X509* leaf = certs->front().get();
  std::unique_ptr<STACK_OF(X509), StackFree> untrusted(sk_X509_new_null());
  if (!untrusted) return Error{ErrorCode::kInternal, "sk_X509_new_null failed"};
  for (size_t i = 1; i < certs->size(); ++i) sk_X509_push(untrusted.get(), (*certs)[i].get());
  std::unique_ptr<X509_STORE_CTX, CtxFree> ctx(X509_STORE_CTX_new());
  if (!ctx || X509_STORE_CTX_init(ctx.get(), store_->store, leaf, untrusted.get()) != 1) {
    return Error{ErrorCode::kInternal, "X509_STORE_CTX_init failed"};
  }
  // The server's clock (the twin's virtual one in the simulator), not the system's.
  X509_STORE_CTX_set_time(
      ctx.get(), 0,
      static_cast<time_t>(
          std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count()));
  if (X509_verify_cert(ctx.get()) != 1) {
    return unauthenticated(std::string("the chain does not verify: ") +
                           X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx.get())));
  }
  if (X509_check_ca(leaf) != 0) return unauthenticated("a CA certificate cannot enroll a device");
  if ((X509_get_extension_flags(leaf) & EXFLAG_KUSAGE) != 0 &&
      (X509_get_key_usage(leaf) & KU_DIGITAL_SIGNATURE) == 0) {
    return unauthenticated("the certificate's key usage does not allow signing");
  }

  FactoryIdentity id;
  const X509_NAME* subject = X509_get_subject_name(leaf);
  const std::vector<std::string> cn = values_of(subject, NID_commonName);
  if (cn.size() != 1 || cn.front().empty()) {
    return malformed("the subject must have exactly one common name (the device id)");
  }
  id.device_id = cn.front();
  int types = 0;
  int revisions = 0;
  for (const std::string& ou : values_of(subject, NID_organizationalUnitName)) {
    if (ou.starts_with("type=")) {
      id.device_type = ou.substr(5);
      ++types;
    } else if (ou.starts_with("revision=")) {
      id.hardware_revision = ou.substr(9);
      ++revisions;
    }
  }
  if (types != 1 || revisions != 1 || id.device_type.empty() || id.hardware_revision.empty()) {
    return malformed(
        "the subject must have exactly one OU \"type=<device type>\" and one OU "
        "\"revision=<hardware revision>\"");
  }
  auto key = leaf_key(leaf);
  if (!key.ok()) return key.error();
  if (!key->verify(message, signature)) {
    return unauthenticated("the enrollment is not signed by the certificate's key");
  }
  unsigned char* der = nullptr;
  const int der_len = i2d_X509(leaf, &der);
  if (der_len <= 0) return malformed("the certificate cannot be encoded");
  id.fingerprint = to_hex(
      sha256(std::string_view(reinterpret_cast<const char*>(der), static_cast<size_t>(der_len))));
  OPENSSL_free(der);
  char issuer[256] = {};
  X509_NAME_oneline(X509_get_issuer_name(leaf), issuer, sizeof issuer);
  id.issuer = issuer;
  return id;
}

Result<std::string> sign_with_private_key(std::string_view key_pem, std::string_view message) {
  const OpenSslErrorScope errors;
  std::unique_ptr<BIO, BioFree> bio(
      BIO_new_mem_buf(key_pem.data(), static_cast<int>(key_pem.size())));
  std::unique_ptr<EVP_PKEY, PkeyFree> pk(
      bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, &no_passphrase, nullptr) : nullptr);
  if (!pk) return invalid_argument("not a PEM private key (or one protected by a passphrase)");
  const EVP_MD* md = nullptr;
  bool pss = false;
  if (EVP_PKEY_is_a(pk.get(), "ED25519")) {
    md = nullptr;
  } else if (EVP_PKEY_is_a(pk.get(), "EC")) {
    char group[64] = {};
    size_t len = 0;
    EVP_PKEY_get_utf8_string_param(pk.get(), OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group, &len);
    const std::string_view g(group, len);
    if (g == "prime256v1") {
      md = EVP_sha256();
    } else if (g == "secp384r1") {
      md = EVP_sha384();
    } else {
      return invalid_argument("an EC key must be on P-256 or P-384");
    }
  } else if (EVP_PKEY_is_a(pk.get(), "RSA")) {
    md = EVP_sha256();
    pss = true;
  } else {
    return invalid_argument("unsupported key (Ed25519, ECDSA P-256 or P-384, RSA)");
  }
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  EVP_PKEY_CTX* pctx = nullptr;  // owned by ctx
  if (!ctx || EVP_DigestSignInit(ctx.get(), &pctx, md, nullptr, pk.get()) != 1) {
    return invalid_argument("the key cannot sign");
  }
  if (pss && (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
              EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256()) != 1 ||
              EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) != 1)) {
    return invalid_argument("the RSA key cannot sign with PSS");
  }
  const auto* data = reinterpret_cast<const unsigned char*>(message.data());
  size_t size = 0;
  if (EVP_DigestSign(ctx.get(), nullptr, &size, data, message.size()) != 1) {
    return invalid_argument("signing failed");
  }
  std::string sig(size, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &size, data,
                     message.size()) != 1) {
    return invalid_argument("signing failed");
  }
  sig.resize(size);
  return sig;
}

}  // namespace drover::security
