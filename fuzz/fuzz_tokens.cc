// Fuzzes what arrives on the wire as credentials: bearer tokens, base64url text, and
// Ed25519 public keys and signatures. Nothing crashes, a token verifies only if this
// signer issued it, and whatever base64url decodes re-encodes to the same text.
#include <cstddef>
#include <cstdint>
#include <string>

#include "security/crypto.h"

namespace {

using namespace drover;
using namespace drover::security;

void check(bool ok) {
  if (!ok) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  static const TokenSigner signer = *TokenSigner::create(std::string(32, 'k'));
  const Timestamp now = Timestamp(Duration(1'800'000'000'000));
  if (auto claims = signer.verify(input, now); claims.ok()) {
    check(claims->expires > now);
    check(signer.issue(claims->subject, claims->expires) == input);  // only ours verify
  }
  if (auto decoded = from_base64url(input); decoded.ok()) check(to_base64url(*decoded) == input);
  // Arbitrary keys and signatures (invalid points, wrong sizes) must be refused cleanly.
  (void)verify_ed25519(input.substr(0, 32), input.size() > 96 ? input.substr(96) : "",
                       input.size() > 32 ? input.substr(32, 64) : "");
  return 0;
}
