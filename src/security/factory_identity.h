// Factory identity: a device whose manufacturer gave it an X.509 certificate (its private key
// kept on the device, often in a secure element) enrolls without a shared secret. It signs
// its enrollment — its id, device type, hardware revision and the Ed25519 key it will log in
// with — with the certificate's key and sends the certificate chain; the server checks the
// chain against the manufacturer CAs the operator trusts (at the server's time), the
// signature, and that the certificate names exactly what the enrollment claims:
//
//   subject CN                 the device id
//   subject OU "type=<t>"      the device type      (exactly one of each)
//   subject OU "revision=<r>"  the hardware revision
//
// The leaf must not be a CA and, when it states a key usage, must allow digitalSignature.
// Its key may be Ed25519, ECDSA on P-256 (SHA-256) or P-384 (SHA-384), or RSA of 2048 bits
// or more (RSA-PSS, SHA-256). Chains are at most kMaxChainCertificates long and
// kMaxChainBytes of PEM.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/clock.h"
#include "base/result.h"

namespace drover::security {

inline constexpr size_t kMaxChainCertificates = 8;
inline constexpr size_t kMaxChainBytes = size_t{64} * 1024;

// The bytes a device signs with its certificate's key to enroll.
std::string factory_enrollment_message(std::string_view device_id, std::string_view device_type,
                                       std::string_view hardware_revision,
                                       std::string_view public_key);

struct FactoryIdentity {
  std::string device_id;
  std::string device_type;
  std::string hardware_revision;
  std::string fingerprint;  // SHA-256 of the leaf certificate's DER, lowercase hex
  std::string issuer;       // the leaf's issuer, one line (for the audit log)
};

// The manufacturer CAs an operator trusts. Copies share the loaded store; thread-safe.
class FactoryTrust {
 public:
  // From PEM texts, each holding one or more CA certificates. kInvalidArgument when a text
  // holds no certificate or one that is not a CA.
  static Result<FactoryTrust> from_pem(const std::vector<std::string>& ca_pems);

  // The identity `chain_pem` (leaf first, then intermediates) proves, when the chain leads
  // to a trusted CA at `now` and `signature` is the leaf key's signature of `message`.
  // kUnauthenticated naming what failed; kInvalidArgument for an unreadable or oversized
  // chain or a leaf that does not name an identity as above.
  Result<FactoryIdentity> verify(std::string_view chain_pem, std::string_view message,
                                 std::string_view signature, Timestamp now) const;

 private:
  struct Store;
  std::shared_ptr<const Store> store_;
};

// Signs `message` with a PEM private key (PKCS#8 or traditional) of one of the kinds above,
// as verify() expects. kInvalidArgument for an unreadable or unsupported key.
Result<std::string> sign_with_private_key(std::string_view key_pem, std::string_view message);

}  // namespace drover::security
