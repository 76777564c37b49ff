#include "security/tuf_key.h"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <nlohmann/json.hpp>

#include "security/canonical_json.h"
#include "security/crypto.h"
#include "security/openssl_errors.h"

namespace drover::security {
namespace {

using nlohmann::json;

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct MdCtxFree {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};

const unsigned char* bytes(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

constexpr int kMinRsaBits = 2048;

struct SchemeInfo {
  std::string_view scheme;
  KeyScheme value;
  std::string_view group;  // an EC key's curve as OpenSSL names it; "" for RSA
  std::string_view curve;  // and as people do
};
constexpr SchemeInfo kPemSchemes[] = {
    {"ecdsa-sha2-nistp256", KeyScheme::kEcdsaP256Sha256, "prime256v1", "P-256"},
    {"ecdsa-sha2-nistp384", KeyScheme::kEcdsaP384Sha384, "secp384r1", "P-384"},
    {"rsassa-pss-sha256", KeyScheme::kRsaPssSha256, "", ""},
    {"rsa-pkcs1v15-sha256", KeyScheme::kRsaPkcs1v15Sha256, "", ""},
};

}  // namespace

struct PublicKey::Pkey {
  explicit Pkey(EVP_PKEY* k) : key(k) {}
  ~Pkey() { EVP_PKEY_free(key); }
  Pkey(const Pkey&) = delete;
  Pkey& operator=(const Pkey&) = delete;
  EVP_PKEY* key;
};

Result<PublicKey> PublicKey::from_json(const json& key) {
  const OpenSslErrorScope errors;
  if (!key.is_object()) return invalid_argument("a key is an object");
  auto text = [&](const json& o, const char* name) -> const std::string* {
    auto it = o.find(name);
    return it != o.end() && it->is_string() ? &it->get_ref<const std::string&>() : nullptr;
  };
  const std::string* keytype = text(key, "keytype");
  const std::string* scheme = text(key, "scheme");
  auto keyval = key.find("keyval");
  if (keytype == nullptr || scheme == nullptr || keyval == key.end() || !keyval->is_object())
    return invalid_argument("a key needs keytype, scheme and keyval");
  const std::string* pub = text(*keyval, "public");
  if (pub == nullptr) return invalid_argument("a key's keyval needs a public string");

  PublicKey k;
  k.keytype_ = *keytype;
  k.scheme_name_ = *scheme;
  k.public_ = *pub;
  if (*keytype == "ed25519" && *scheme == "ed25519") {
    auto raw = from_hex(*pub);
    if (!raw.ok() || raw->size() != 32 || !is_ed25519_point(*raw))
      return invalid_argument("an ed25519 key's public is 64 hex digits of a point of the curve");
    k.scheme_ = KeyScheme::kEd25519;
    k.material_ = std::move(*raw);
    k.pkey_ = std::make_shared<const Pkey>(EVP_PKEY_new_raw_public_key(
        EVP_PKEY_ED25519, nullptr, bytes(k.material_), k.material_.size()));
  } else {
    const SchemeInfo* info = nullptr;
    for (const SchemeInfo& s : kPemSchemes) {
      const bool type_fits =
          s.group.empty() ? *keytype == "rsa" : *keytype == "ecdsa" || *keytype == s.scheme;
      if (*scheme == s.scheme && type_fits) info = &s;
    }
    if (info == nullptr) {
      return invalid_argument("unsupported key: keytype \"" + printable(*keytype, 40) +
                              "\" with scheme \"" + printable(*scheme, 40) + "\"");
    }
    k.scheme_ = info->value;
    std::unique_ptr<BIO, BioFree> bio(BIO_new_mem_buf(pub->data(), static_cast<int>(pub->size())));
    EVP_PKEY* parsed = bio ? PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr) : nullptr;
    if (parsed == nullptr) return invalid_argument("a key's public is not a PEM public key");
    k.pkey_ = std::make_shared<const Pkey>(parsed);
    if (!info->group.empty()) {
      char group[64] = {};
      size_t len = 0;
      if (!EVP_PKEY_is_a(parsed, "EC") ||
          EVP_PKEY_get_utf8_string_param(parsed, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group,
                                         &len) != 1 ||
          std::string_view(group, len) != info->group) {
        return invalid_argument("an " + std::string(info->scheme) + " key is an EC key on the " +
                                std::string(info->curve) + " curve");
      }
    } else if (!EVP_PKEY_is_a(parsed, "RSA") || EVP_PKEY_get_bits(parsed) < kMinRsaBits) {
      return invalid_argument("an " + std::string(info->scheme) +
                              " key is an RSA key of at least " + std::to_string(kMinRsaBits) +
                              " bits");
    }
    unsigned char* der = nullptr;
    const int der_len = i2d_PUBKEY(parsed, &der);
    if (der_len <= 0) return invalid_argument("a key's public cannot be encoded");
    k.material_.assign(reinterpret_cast<const char*>(der), static_cast<size_t>(der_len));
    OPENSSL_free(der);
  }
  if (!k.pkey_ || k.pkey_->key == nullptr) return invalid_argument("a key OpenSSL refuses");
  return k;
}

Result<PublicKey> PublicKey::ed25519(std::string_view raw) {
  return from_json(
      json{{"keytype", "ed25519"}, {"scheme", "ed25519"}, {"keyval", {{"public", to_hex(raw)}}}});
}

json PublicKey::to_json() const {
  return json{{"keytype", keytype_}, {"scheme", scheme_name_}, {"keyval", {{"public", public_}}}};
}

std::string PublicKey::key_id() const {
  // The key object holds strings only: its canonical form cannot fail.
  return to_hex(sha256(canonical_json(to_json()).value()));
}

bool PublicKey::verify(std::string_view message, std::string_view signature) const {
  const OpenSslErrorScope errors;
  if (!pkey_ || signature.empty()) return false;
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  EVP_PKEY_CTX* pctx = nullptr;  // owned by ctx
  // Ed25519 hashes inside the scheme: no digest is named.
  const EVP_MD* md = scheme_ == KeyScheme::kEd25519           ? nullptr
                     : scheme_ == KeyScheme::kEcdsaP384Sha384 ? EVP_sha384()
                                                              : EVP_sha256();
  if (!ctx || EVP_DigestVerifyInit(ctx.get(), &pctx, md, nullptr, pkey_->key) != 1) return false;
  if (scheme_ == KeyScheme::kRsaPssSha256 &&
      (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
       EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256()) != 1 ||
       // Signers differ in the salt they choose (the digest's length, or the most that
       // fits); the salt's length is recovered from the signature itself.
       EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_AUTO) != 1)) {
    return false;
  }
  return EVP_DigestVerify(ctx.get(), bytes(signature), signature.size(), bytes(message),
                          message.size()) == 1;
}

}  // namespace drover::security
