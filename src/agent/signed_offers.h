// What an update offer must be before the agent downloads a byte of it, judged by the signed
// update metadata (TUF, security/tuf_client.h) and not by the check-in answer: the server
// that makes the offer may be compromised, the repository's keys are not.
//
// SignedOffers refreshes the trusted metadata (the whole client workflow: root rotations,
// rollback and freeze checks, ...), finds the target "<component>/<version>", and requires
// the offer's size and SHA-256 to be the target's, the signed `custom` version to be the
// offer's, this device's type and hardware revision to be among the signed ones, and each
// signed dependency ({"component", "constraint"}) met by what the device runs. The
// agent then verifies the downloaded image against that very hash before the inactive slot
// is touched.
//
// Thread-compatible.
#pragma once

#include <memory>
#include <string>

#include "agent/server_link.h"
#include "base/clock.h"
#include "base/file_system.h"
#include "base/result.h"
#include "security/tuf_client.h"

namespace drover::agent {

class OfferCheck {
 public:
  virtual ~OfferCheck() = default;
  // ok when `offer` may be downloaded to a device that runs `installed`. kIo when the
  // metadata could not be fetched (the network: try again later); any other error refuses
  // the offer, its message says why.
  virtual Status check(const Offer& offer, const Inventory& installed) = 0;
};

struct SignedOffersOptions {
  std::string metadata_dir;  // the trusted metadata (root.json, ...), the agent's own
  std::string metadata_url;  // e.g. "https://server/tuf/metadata/"
  std::string initial_root;  // the root installed at the factory, taken when none is trusted
  std::string device_type, hardware_revision;
};

class SignedOffers final : public OfferCheck {
 public:
  // Trusts `initial_root` first if metadata_dir holds no root yet (it must verify under its
  // own keys). kInvalidArgument / kUnauthenticated for a root that does not, kIo for files.
  static Result<std::unique_ptr<SignedOffers>> open(SignedOffersOptions options,
                                                    security::tuf::MetadataFetcher& fetcher,
                                                    Clock& clock,
                                                    FileSystem& fs = real_file_system());
  Status check(const Offer& offer, const Inventory& installed) override;

 private:
  SignedOffers(SignedOffersOptions options, security::tuf::Updater updater);
  SignedOffersOptions o_;
  security::tuf::Updater updater_;
};

}  // namespace drover::agent
