// Cryptographic primitives, all from OpenSSL 3 (libcrypto): Ed25519 device identities,
// SHA-256, HMAC-SHA256 bearer tokens, secure random bytes, and the encodings they travel in.
// Every function that takes untrusted bytes (keys, signatures, tokens) returns an error or
// false for anything malformed; none throws.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "base/clock.h"
#include "base/result.h"

namespace drover::security {

// Bytes from the operating system's CSPRNG. kInternal if it fails.
Result<std::string> random_bytes(size_t n);

std::string sha256(std::string_view data);  // 32 raw bytes
// The SHA-256 of a whole file, read in pieces (artifacts do not fit in memory), and its size.
// kNotFound when absent, kIo when it cannot be read.
struct FileDigest {
  std::string sha256;  // 32 raw bytes
  uint64_t size = 0;
};
Result<FileDigest> sha256_file(const std::string& path);
std::string hmac_sha256(std::string_view key, std::string_view data);  // 32 raw bytes

// SHA-256 over data that arrives in pieces (an upload as it is read). Not thread-safe.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(Sha256&&) noexcept;
  Sha256& operator=(Sha256&&) noexcept;
  void update(std::string_view piece);
  std::string finish();  // 32 raw bytes; the object is then spent

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};
// Equal length and contents, in time that does not depend on where they differ.
bool constant_time_equal(std::string_view a, std::string_view b);

std::string to_hex(std::string_view bytes);  // lower case
// Hex (either case) to bytes. kInvalidArgument for an odd length or a non-hex character.
Result<std::string> from_hex(std::string_view hex);
// RFC 4648 §5, without padding.
std::string to_base64url(std::string_view bytes);
Result<std::string> from_base64url(std::string_view text);

// An Ed25519 private key: a device's identity, generated on the device, never sent.
class SigningKey {
 public:
  static constexpr size_t kPublicKeySize = 32;
  static constexpr size_t kSignatureSize = 64;

  static Result<SigningKey> generate();
  // From the PKCS#8 PEM that private_pem() writes. kInvalidArgument for anything else.
  static Result<SigningKey> from_pem(std::string_view pem);

  SigningKey(SigningKey&&) noexcept;
  SigningKey& operator=(SigningKey&&) noexcept;
  ~SigningKey();

  std::string private_pem() const;
  std::string public_key() const;                    // 32 raw bytes
  std::string sign(std::string_view message) const;  // 64 raw bytes

 private:
  struct Impl;
  explicit SigningKey(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Whether `public_key` (32 bytes) encodes a point of the Ed25519 curve (RFC 8032 §5.1.3):
// y below the field prime and x² = (y² − 1)/(d·y² + 1) a square. Any other 32 bytes would be
// accepted as a key and then verify nothing, locking its holder out. The eight points of
// small order (1, 2, 4 and 8, the identity among them: keys for which signatures can be
// forged) are refused too.
bool is_ed25519_point(std::string_view public_key);

// Whether `signature` is public_key's Ed25519 signature of `message`. False for keys and
// signatures of the wrong size or that are not valid points.
bool verify_ed25519(std::string_view public_key, std::string_view message,
                    std::string_view signature);

// Short-lived bearer tokens: "<subject, base64url>.<expires, ms since epoch>.<tag>", where
// the tag is HMAC-SHA256 under the server's secret over the first two parts. Nothing is
// stored per token; a token is valid until it expires (or the secret changes).
struct TokenClaims {
  std::string subject;  // e.g. "device:dev-000123"
  Timestamp expires{};
};

// HMAC-SHA256 with a key prepared once (its inner and outer hash states), for a key used on
// every request: a tag then costs two SHA-256 compressions of the data and one of the inner
// hash, with no algorithm lookup. Thread-safe: const calls may run concurrently.
class HmacSha256 {
 public:
  explicit HmacSha256(std::string_view key);
  ~HmacSha256();
  HmacSha256(HmacSha256&&) noexcept;
  HmacSha256& operator=(HmacSha256&&) noexcept;
  std::string operator()(std::string_view data) const;  // 32 raw bytes

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

class TokenSigner {
 public:
  // `secret`: at least 32 bytes (kInvalidArgument otherwise).
  static Result<TokenSigner> create(const std::string& secret);

  std::string issue(std::string_view subject, Timestamp expires) const;
  // kUnauthenticated for a malformed, forged or expired token (the message says which).
  Result<TokenClaims> verify(std::string_view token, Timestamp now) const;

 private:
  explicit TokenSigner(std::string_view secret)
      : mac_(std::make_shared<const HmacSha256>(secret)) {}
  std::shared_ptr<const HmacSha256> mac_;
};

}  // namespace drover::security
