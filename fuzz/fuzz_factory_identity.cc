// Fuzzes factory identity (security/factory_identity.h): whatever certificate chain a device
// sends, FactoryTrust::verify answers with an identity or an error, never crashes, and names an
// identity only for a chain that leads to the trusted CA and a signature that verifies. The
// corpus's chain (an Ed25519 device under an intermediate) is signed for the fixed enrollment
// below, so the fuzzer starts from an accepted input.
#include <cstddef>
#include <cstdint>
#include <string>

#include "security/crypto.h"
#include "security/factory_identity.h"

namespace {

using namespace drover;

void check(bool ok) {
  if (!ok) __builtin_trap();
}

// A CA made for this target only (valid until 2126; its key is not kept).
constexpr const char* kCa = R"(-----BEGIN CERTIFICATE-----
MIIBhzCCAS2gAwIBAgIUCMtkdSIYr2tSK9ENe4P89XPV0EIwCgYIKoZIzj0EAwIw
GDEWMBQGA1UEAwwNZnV6ei1tYWtlci1jYTAgFw0yNjEyMDIxMTU0NTlaGA8yMTI2
MTEwODExNTQ1OVowGDEWMBQGA1UEAwwNZnV6ei1tYWtlci1jYTBZMBMGByqGSM49
AgEGCCqGSM49AwEHA0IABNEil3WBGKI+M0CRoROe2SCPXxE+iAFVh3nsWZ8duzN9
ddth98HF1LyEr66kqtPV9JEmfg3RTt+FeYcZjADDTkajUzBRMB0GA1UdDgQWBBQM
KCBOpXt3ftsX2RR0k4AIntPYPTAfBgNVHSMEGDAWgBQMKCBOpXt3ftsX2RR0k4AI
ntPYPTAPBgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0gAMEUCIQDvws4tS3vr
cDDL6bvOz323rwRNPiPetkVOynSlqnKjeQIgYQ8xtD85K/bzwTX+vrTA5tlWVCg+
rbD1xYmTJODU0Jc=
-----END CERTIFICATE-----
)";

// The corpus device's signature of the enrollment below.
constexpr const char* kSignatureHex =
    "781cad553f5f0853c0bcb11216290be735cb57695c6f23f5b7e85eaafb52d785"
    "50f2bd1e3d1de87a460a2739b5da2243ceb2941b5d2c5c1ab937cf78bfb11300";

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const security::FactoryTrust trust = security::FactoryTrust::from_pem({kCa}).value();
  static const std::string message =
      security::factory_enrollment_message("dev-1", "ctl", "rev-a", std::string(32, '\0'));
  static const std::string signature = security::from_hex(kSignatureHex).value();
  const std::string chain(reinterpret_cast<const char*>(data), size);
  const Timestamp now = Timestamp(Duration(1'800'000'000'000));  // 2027
  auto id = trust.verify(chain, message, signature, now);
  if (id.ok()) {
    check(id->device_id == "dev-1" && id->device_type == "ctl" && id->hardware_revision == "rev-a");
    check(id->fingerprint.size() == 64);
  } else {
    check(id.error().code == ErrorCode::kUnauthenticated ||
          id.error().code == ErrorCode::kInvalidArgument);
  }
  return 0;
}
