// Public keys as signed update metadata carries them (TUF specification 1.0, "KEY"): the key
// object `{"keytype", "scheme", "keyval": {"public"}}`, and signatures over canonical JSON.
//
//   keytype                 scheme               keyval.public             sig (hex)
//   ed25519                 ed25519              64 hex digits             64 bytes
//   ecdsa (or the scheme)   ecdsa-sha2-nistp256  PEM SubjectPublicKeyInfo  DER, SHA-256
//   ecdsa (or the scheme)   ecdsa-sha2-nistp384  PEM SubjectPublicKeyInfo  DER, SHA-384
//   rsa                     rsassa-pss-sha256    PEM, at least 2048 bits   RSASSA-PSS, SHA-256
//   rsa                     rsa-pkcs1v15-sha256  PEM, at least 2048 bits   PKCS#1 v1.5, SHA-256
//
// Drover creates Ed25519 keys (SigningKey); the others are verified so that metadata
// signed with an operator's existing ECDSA or RSA keys (an HSM, a cloud KMS) is accepted.
// Thread-safe: a PublicKey is immutable once made.
#pragma once

#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>

#include "base/result.h"

namespace drover::security {

enum class KeyScheme {
  kEd25519,
  kEcdsaP256Sha256,
  kEcdsaP384Sha384,
  kRsaPssSha256,
  kRsaPkcs1v15Sha256
};

class PublicKey {
 public:
  // From a key object. kInvalidArgument, saying what is wrong, for an unknown key type or
  // scheme, a type and scheme that do not go together, a missing field, or key material
  // that is not a valid key of its type (an Ed25519 key off the curve or of small order, an
  // ECDSA key on another curve, an RSA key under 2048 bits). Other fields are allowed (and
  // not kept).
  static Result<PublicKey> from_json(const nlohmann::json& key);
  // The Ed25519 key of SigningKey::public_key() (32 raw bytes). kInvalidArgument if it is
  // not a valid point.
  static Result<PublicKey> ed25519(std::string_view raw);

  KeyScheme scheme() const { return scheme_; }
  // The key object: keytype, scheme and keyval.public as read (other fields are not kept).
  nlohmann::json to_json() const;
  // The hex SHA-256 of the canonical JSON of to_json(): the key id Drover names its keys by
  // (other metadata may name a key otherwise: a key id is a label in the file).
  std::string key_id() const;
  // The key material alone, for telling two key ids of one key apart from two keys:
  // the raw 32 bytes (Ed25519) or the DER SubjectPublicKeyInfo (ECDSA, RSA).
  const std::string& material() const { return material_; }

  // Whether `signature` (raw bytes, already decoded from hex) is this key's signature of
  // `message` under its scheme. False for anything malformed; never throws.
  bool verify(std::string_view message, std::string_view signature) const;

 private:
  struct Pkey;
  PublicKey() = default;
  KeyScheme scheme_ = KeyScheme::kEd25519;
  std::string keytype_, scheme_name_, public_;  // as read
  std::string material_;
  std::shared_ptr<const Pkey> pkey_;  // parsed once; shared by copies
};

}  // namespace drover::security
