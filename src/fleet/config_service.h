// ConfigService: device configuration (docs/configuration.md). Each device type's documents,
// versioned, checked against the envelope of the type's profile when written; the newest is
// what every device of the type is given. A device reports the hash of what it runs at each
// check-in; a device that runs anything else is told the hash it should run (DeviceService
// asks target()) and fetches the document (for_device()).
//
// A profile write that would leave the newest document outside its new envelope is refused
// (put_profile), so what devices are given is always inside what their hardware tolerates.
//
// Thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/clock.h"
#include "base/mutex.h"
#include "base/result.h"
#include "model/config_document.h"
#include "model/device_profile.h"
#include "protocol/device_config.h"
#include "store/store.h"

namespace drover {

// What a device of the type should run.
using protocol::ConfigTarget;

// kFailedPrecondition when the profile's envelope refuses the newest document of its type.
Status envelope_keeps_newest(Store& store, const DeviceProfile& profile);

class ConfigService {
 public:
  ConfigService(Store& store, Clock& clock) : store_(store), clock_(clock) {}

  // Learns every type's newest document from the store (before devices check in).
  Status load();

  // Writes a new version of the type's configuration: `values` (a JSON object) checked
  // against its profile's envelope. Values equal to the newest version's are that version,
  // unchanged (a repeated write makes no new version). kNotFound: the type has no profile;
  // kFailedPrecondition: its profile declares no envelope; kInvalidArgument: a value the
  // envelope refuses (nothing is written then).
  Result<ConfigDocument> put(std::string_view device_type, std::string_view values,
                             std::string_view author, std::string_view note);
  // A version (0: the newest). kNotFound when there is none.
  Result<ConfigDocument> get(std::string_view device_type, uint64_t version = 0);
  // Every version, oldest first.
  Result<std::vector<ConfigDocument>> history(std::string_view device_type);
  // The newest document's version and hash; nullopt when the type has none. Memory only.
  std::optional<ConfigTarget> target(std::string_view device_type) const;
  // Whether a device of the type that runs the document hashing to `sha256` should run
  // another; if so, which (in *out). Called on every check-in that reports a configuration:
  // memory only, nothing copied when it runs the newest.
  bool differs(std::string_view device_type, std::string_view sha256, ConfigTarget* out) const;
  // What the device API hands a device of the type: the newest document with its envelope.
  Result<protocol::DeviceConfig> for_device(std::string_view device_type);

  // Writes a profile (validated) unless its envelope refuses the type's newest document:
  // kFailedPrecondition naming the value. ProfileService::put comes here when attached.
  Result<DeviceProfile> put_profile(DeviceProfile profile);

 private:
  // What a type's writes are decided on: its profile's envelope (nullopt: no profile) and
  // its newest document. Kept here, not read back from the store, because under group
  // commit a read may miss another request's write that is queued but not yet committed:
  // two writes would then take the same version, or a profile and a document each pass a
  // check against what the other replaces. Read from the store the first time a type is
  // met; then every write of the type goes through here and keeps it.
  struct TypeState {
    std::optional<protocol::ConfigEnvelope> envelope;
    std::optional<ConfigDocument> newest;
  };
  Result<TypeState*> state_of(const std::string& device_type) REQUIRES(write_mu_);

  Store& store_;
  Clock& clock_;
  Mutex write_mu_{LockLevel::kConfigWrite};  // one write of a document or a profile at a time
  std::map<std::string, TypeState, std::less<>> types_ GUARDED_BY(write_mu_);
  TypeState nothing_ GUARDED_BY(write_mu_);  // state_of() a type nothing is known of
  mutable Mutex mu_ ACQUIRED_AFTER(write_mu_);
  std::map<std::string, ConfigTarget, std::less<>> targets_ GUARDED_BY(mu_);
};

}  // namespace drover
