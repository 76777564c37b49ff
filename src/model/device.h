// A device as the registry knows it: identity attributes set at provisioning, and what the
// device last reported (installed versions, update state).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/clock.h"
#include "base/result.h"
#include "model/site.h"
#include "protocol/device.h"

namespace drover {

// What the device says it is doing, as reported at check-in: the protocol's word.
using UpdateState = protocol::UpdateState;
using protocol::parse_update_state;
using protocol::to_string;

// How far the control plane trusts a device's identity (its Ed25519 key).
enum class Enrollment : uint8_t {
  kAccepted,  // provisioned by an operator, enrolled with a valid token, or accepted by one
  kPending,   // enrolled without a token: it waits for an operator
  kRejected,  // an operator refused it: it never authenticates
};
const char* to_string(Enrollment e);
Result<Enrollment> parse_enrollment(std::string_view s);

struct InstalledComponent {
  std::string component;  // e.g. "firmware", "rootfs", "bootloader"
  std::string version;    // semantic version as reported
  friend bool operator==(const InstalledComponent&, const InstalledComponent&) = default;
  // By component, then version: inventories (sorted vectors of these) order as keys.
  // (clang-tidy 14 takes the defaulted comparison's implicit `0` for a null pointer.)
  // NOLINTNEXTLINE(modernize-use-nullptr)
  friend auto operator<=>(const InstalledComponent&, const InstalledComponent&) = default;
};

// Field order matters on the check-in path: what every check-in reads (id, installed,
// update_state, decommissioned) shares the record's first cache line.
// A fact a device reports about itself in its inventory: "os" = "linux-6.1", "ram_mb" =
// "512". Free text; nothing schedules on it.
struct DeviceAttribute {
  std::string key;    // a name (is_valid_name), at most 64 characters
  std::string value;  // printable, at most 256 bytes
  friend bool operator==(const DeviceAttribute&, const DeviceAttribute&) = default;
};
inline constexpr size_t kMaxDeviceAttributes = 64;
inline constexpr size_t kMaxInstalledComponents = 64;
inline constexpr size_t kMaxQuietHours = 16;

struct Device {
  std::string id;
  std::vector<InstalledComponent> installed;  // sorted by component, unique
  UpdateState update_state = UpdateState::kIdle;
  bool decommissioned = false;
  std::string device_type;        // e.g. "bacnet-controller"
  std::string hardware_revision;  // e.g. "rev-b"
  std::string site;               // Site::name
  std::string connectivity;       // connectivity class, e.g. "ethernet", "lte", "satellite"
  std::vector<std::string> tags;  // sorted, unique
  // The device's Ed25519 public key, 32 bytes in base64url (43 characters); empty until it
  // enrolls. Only the device holds the private key.
  std::string public_key;
  Enrollment enrollment = Enrollment::kAccepted;
  std::vector<DeviceAttribute> attributes;  // sorted by key, unique; from the inventory
  // The device's own quiet hours, in its site's local time (a vehicle's owner, a shift that
  // must not be interrupted): they narrow the site's maintenance windows.
  std::vector<MaintenanceWindow> quiet_hours;
  // The device keeps the image it ran before an update (A/B slots), so a fleet revert
  // switches back to it without a download. Reported by the device at check-in.
  bool keeps_previous = false;
  // When the device bound its key by enrolling (zero: provisioned without a key, or enrolled
  // before this was kept). A pending enrollment expires from here (AuthOptions).
  Timestamp enrolled_at{};
  // What vouched for the key when it was bound: "claim" (nobody: it waited for an operator),
  // "token:<id>" (an enrollment token), "pre-shared token", "factory:<certificate sha256>"
  // (a manufacturer's certificate). Empty: provisioned, or enrolled before this was kept.
  std::string enrolled_by;
  // What the device says of its configuration (docs/configuration.md): the SHA-256 (hex) of
  // the document it runs ("" for none) and, when it could not apply the one it was given,
  // why (at most protocol::kMaxConfigError bytes).
  std::string config_sha256;
  std::string config_error;

  // The installed version of `component`, or nullptr.
  const std::string* installed_version(std::string_view component) const;
  // Sets (or adds) the version of `component`, keeping `installed` sorted.
  void set_installed(std::string_view component, std::string_view version);

  friend bool operator==(const Device&, const Device&) = default;
};

// Checks ids, names, versions and attributes; sorts tags, components and attributes. Fails
// on duplicates.
Status validate(Device& d);

// Ids and names: 1..128 characters of [A-Za-z0-9._:-], not starting with '.' or '-'.
bool is_valid_name(std::string_view s);

}  // namespace drover
