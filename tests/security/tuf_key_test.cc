// Keys as update metadata carries them: the three TUF key types, their key ids, and
// signatures that must verify exactly when they were made by the key over the message.
#include "security/tuf_key.h"

#include <gtest/gtest.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "security/crypto.h"

namespace drover::security {
namespace {

using nlohmann::json;

// Keys the way an operator's HSM or KMS would hold them: made and used with OpenSSL
// directly, since Drover itself only creates Ed25519 keys.
struct ForeignKey {
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key{nullptr, EVP_PKEY_free};

  static ForeignKey ec(const char* curve) {
    ForeignKey k;
    k.key.reset(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", curve));
    return k;
  }
  static ForeignKey rsa(size_t bits) {
    ForeignKey k;
    k.key.reset(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", bits));
    return k;
  }
  std::string pem() const {
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
    PEM_write_bio_PUBKEY(bio.get(), key.get());
    char* data = nullptr;
    const long n = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, static_cast<size_t>(n));
  }
  // pss_salt: RSA_PSS_SALTLEN_DIGEST or _MAX for RSASSA-PSS; 0 for PKCS#1 v1.5 (RSA) or
  // plain ECDSA.
  std::string sign(std::string_view message, int pss_salt = 0,
                   const EVP_MD* md = EVP_sha256()) const {
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
    EVP_PKEY_CTX* pctx = nullptr;
    EXPECT_EQ(EVP_DigestSignInit(ctx.get(), &pctx, md, nullptr, key.get()), 1);
    if (pss_salt != 0) {
      EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING);
      EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, pss_salt);
    }
    size_t len = 0;
    EVP_DigestSign(ctx.get(), nullptr, &len, reinterpret_cast<const unsigned char*>(message.data()),
                   message.size());
    std::string sig(len, '\0');
    EXPECT_EQ(
        EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len,
                       reinterpret_cast<const unsigned char*>(message.data()), message.size()),
        1);
    sig.resize(len);
    return sig;
  }
};

json key_object(const std::string& keytype, const std::string& scheme, const std::string& pub) {
  return json{{"keytype", keytype}, {"scheme", scheme}, {"keyval", {{"public", pub}}}};
}

TEST(TufKey, Ed25519KeysDroverMakesVerifyTheirSignaturesOnly) {
  auto signer = SigningKey::generate();
  ASSERT_TRUE(signer.ok());
  auto key = PublicKey::ed25519(signer->public_key());
  ASSERT_TRUE(key.ok()) << key.error().message;
  EXPECT_EQ(key->scheme(), KeyScheme::kEd25519);
  const std::string message = R"({"_type":"timestamp","version":7})";
  const std::string sig = signer->sign(message);
  EXPECT_TRUE(key->verify(message, sig));
  EXPECT_FALSE(key->verify(message + " ", sig));
  std::string flipped = sig;
  flipped[10] = static_cast<char>(flipped[10] ^ 1);
  EXPECT_FALSE(key->verify(message, flipped));
  EXPECT_FALSE(key->verify(message, sig.substr(0, 63)));
  EXPECT_FALSE(key->verify(message, ""));
  auto other = SigningKey::generate();
  EXPECT_FALSE(key->verify(message, other->sign(message)));

  // The key id is the SHA-256 of exactly this canonical text.
  const std::string hex = to_hex(signer->public_key());
  EXPECT_EQ(key->key_id(), to_hex(sha256(R"({"keytype":"ed25519","keyval":{"public":")" + hex +
                                         R"("},"scheme":"ed25519"})")));
  // Read back from its key object (as root metadata lists it): the same key.
  auto again = PublicKey::from_json(key->to_json());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->key_id(), key->key_id());
  EXPECT_EQ(again->material(), signer->public_key());
  EXPECT_TRUE(again->verify(message, sig));
}

TEST(TufKey, EcdsaP256AndRsaPssKeysFromOperatorsAreVerified) {
  const std::string message = "signed bytes";
  ForeignKey ec = ForeignKey::ec("P-256");
  for (const char* keytype : {"ecdsa", "ecdsa-sha2-nistp256"}) {
    auto key = PublicKey::from_json(key_object(keytype, "ecdsa-sha2-nistp256", ec.pem()));
    ASSERT_TRUE(key.ok()) << key.error().message;
    EXPECT_EQ(key->scheme(), KeyScheme::kEcdsaP256Sha256);
    EXPECT_TRUE(key->verify(message, ec.sign(message)));
    EXPECT_FALSE(key->verify(message + "!", ec.sign(message)));
    EXPECT_FALSE(key->verify(message, ForeignKey::ec("P-256").sign(message)));
    // A DER signature with a byte more is not the same signature.
    EXPECT_FALSE(key->verify(message, ec.sign(message) + std::string(1, '\0')));
  }
  // Two spellings of one key: two key ids, one key.
  auto a = PublicKey::from_json(key_object("ecdsa", "ecdsa-sha2-nistp256", ec.pem()));
  auto b = PublicKey::from_json(key_object("ecdsa-sha2-nistp256", "ecdsa-sha2-nistp256", ec.pem()));
  EXPECT_NE(a->key_id(), b->key_id());
  EXPECT_EQ(a->material(), b->material());

  ForeignKey rsa = ForeignKey::rsa(2048);
  auto key = PublicKey::from_json(key_object("rsa", "rsassa-pss-sha256", rsa.pem()));
  ASSERT_TRUE(key.ok()) << key.error().message;
  // Signers choose the salt's length: the digest's, or the most that fits. Both verify.
  EXPECT_TRUE(key->verify(message, rsa.sign(message, RSA_PSS_SALTLEN_DIGEST)));
  EXPECT_TRUE(key->verify(message, rsa.sign(message, RSA_PSS_SALTLEN_MAX)));
  EXPECT_FALSE(key->verify(message, rsa.sign(message)))
      << "a PKCS#1 v1.5 signature is not an RSASSA-PSS one";
  EXPECT_FALSE(key->verify("other", rsa.sign(message, RSA_PSS_SALTLEN_DIGEST)));

  // PKCS#1 v1.5 RSA and P-384 keys, as HSMs and cloud KMSs often hold them.
  auto v15 = PublicKey::from_json(key_object("rsa", "rsa-pkcs1v15-sha256", rsa.pem()));
  ASSERT_TRUE(v15.ok()) << v15.error().message;
  EXPECT_TRUE(v15->verify(message, rsa.sign(message)));
  EXPECT_FALSE(v15->verify(message, rsa.sign(message, RSA_PSS_SALTLEN_DIGEST)));
  ForeignKey p384 = ForeignKey::ec("P-384");
  auto k384 = PublicKey::from_json(key_object("ecdsa", "ecdsa-sha2-nistp384", p384.pem()));
  ASSERT_TRUE(k384.ok()) << k384.error().message;
  EXPECT_EQ(k384->scheme(), KeyScheme::kEcdsaP384Sha384);
  EXPECT_TRUE(k384->verify(message, p384.sign(message, 0, EVP_sha384())));
  EXPECT_FALSE(k384->verify(message, p384.sign(message)))
      << "a SHA-256 digest is not this scheme's";
}

TEST(TufKey, RefusalsLeaveOpenSslsErrorQueueAsTheyFoundIt) {
  ForeignKey ec = ForeignKey::ec("P-256");
  auto key = PublicKey::from_json(key_object("ecdsa", "ecdsa-sha2-nistp256", ec.pem()));
  ASSERT_TRUE(key.ok());
  ERR_clear_error();
  EXPECT_FALSE(key->verify("m", "not a signature"));
  EXPECT_FALSE(PublicKey::from_json(key_object("ecdsa", "ecdsa-sha2-nistp256", "junk")).ok());
  EXPECT_EQ(ERR_peek_error(), 0u) << "nothing left for a later TLS call to misread";
  // An error the caller had pending is still there, and only it.
  ERR_raise(ERR_LIB_USER, 42);
  EXPECT_FALSE(key->verify("m", "not a signature"));
  EXPECT_FALSE(PublicKey::from_json(key_object("rsa", "rsassa-pss-sha256", "junk")).ok());
  EXPECT_EQ(ERR_GET_REASON(ERR_get_error()), 42);
  EXPECT_EQ(ERR_peek_error(), 0u);
}

TEST(TufKey, KeysThatAreNotWhatTheySayAreRefused) {
  ForeignKey ec = ForeignKey::ec("P-256");
  ForeignKey p384 = ForeignKey::ec("P-384");
  ForeignKey rsa = ForeignKey::rsa(2048);
  ForeignKey small_rsa = ForeignKey::rsa(1024);
  auto signer = SigningKey::generate();
  const std::string ed = to_hex(signer->public_key());
  struct Case {
    json key;
    std::string says;
  };
  const Case cases[] = {
      {json::array(), "an object"},
      {json{{"keytype", "ed25519"}, {"scheme", "ed25519"}}, "keyval"},
      {json{{"keytype", "ed25519"}, {"keyval", {{"public", ed}}}}, "keytype, scheme"},
      {json{{"keytype", "ed25519"}, {"scheme", "ed25519"}, {"keyval", {{"private", ed}}}},
       "public string"},
      {json{{"keytype", 1}, {"scheme", "ed25519"}, {"keyval", {{"public", ed}}}}, "keytype"},
      {key_object("ed25519", "ecdsa-sha2-nistp256", ed), "unsupported key"},
      {key_object("dsa", "dsa-sha1", ed), "unsupported key"},
      {key_object("rsa", "rsa-pkcs1v15-md5", rsa.pem()), "unsupported key"},
      {key_object("ecdsa", "rsa-pkcs1v15-sha256", rsa.pem()), "unsupported key"},
      {key_object("ed25519", "ed25519", ed.substr(2)), "64 hex digits"},
      {key_object("ed25519", "ed25519", ed + "00"), "64 hex digits"},
      {key_object("ed25519", "ed25519", std::string(64, 'z')), "64 hex digits"},
      // Off the curve (y >= p), and the identity (a small-order point: forgeable).
      {key_object("ed25519", "ed25519", std::string(63, 'f') + "7"), "point of the curve"},
      {key_object("ed25519", "ed25519", "01" + std::string(62, '0')), "point of the curve"},
      {key_object("ecdsa", "ecdsa-sha2-nistp256", "not a pem"), "PEM"},
      {key_object("ecdsa", "ecdsa-sha2-nistp256", ed), "PEM"},
      {key_object("ecdsa", "ecdsa-sha2-nistp256", p384.pem()), "P-256"},
      {key_object("ecdsa", "ecdsa-sha2-nistp256", rsa.pem()), "P-256"},
      {key_object("rsa", "rsassa-pss-sha256", ec.pem()), "RSA key"},
      {key_object("rsa", "rsassa-pss-sha256", small_rsa.pem()), "2048 bits"},
  };
  for (const Case& c : cases) {
    auto key = PublicKey::from_json(c.key);
    ASSERT_FALSE(key.ok()) << c.key.dump();
    EXPECT_EQ(key.error().code, ErrorCode::kInvalidArgument);
    EXPECT_NE(key.error().message.find(c.says), std::string::npos)
        << c.key.dump() << ": " << key.error().message;
  }
}

TEST(TufKey, HexIsReadStrictly) {
  EXPECT_EQ(from_hex("00ffA0").value(), std::string("\x00\xff\xa0", 3));
  EXPECT_EQ(from_hex("").value(), "");
  EXPECT_FALSE(from_hex("abc").ok());
  EXPECT_FALSE(from_hex("0g").ok());
  EXPECT_FALSE(from_hex(" 0").ok());
}

}  // namespace
}  // namespace drover::security
