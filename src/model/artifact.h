// An update artifact: one version of one component, the devices it is built for, and what
// it needs already installed.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/result.h"
#include "model/device.h"

namespace drover {

struct Dependency {
  std::string component;   // another component on the device, e.g. "bootloader"
  std::string constraint;  // VersionConstraint text, e.g. ">=2.1.0"
  friend bool operator==(const Dependency&, const Dependency&) = default;
};

struct Artifact {
  std::string name;                             // the component it installs, e.g. "firmware"
  std::string version;                          // semantic version
  std::vector<std::string> device_types;        // non-empty
  std::vector<std::string> hardware_revisions;  // empty: every revision of those types
  std::vector<Dependency> depends;
  uint64_t size_bytes = 0;
  std::string sha256;  // 64 lowercase hex digits

  // "firmware@4.2.1"
  std::string key() const { return name + "@" + version; }
  friend bool operator==(const Artifact&, const Artifact&) = default;
};

// Checks names, version, hash and dependency constraints; sorts the lists.
Status validate(Artifact& a);

// Whether `a` may be installed on `d` as it is now: type, revision and every dependency.
// On refusal the error (kFailedPrecondition) says which rule failed.
Status check_compatible(const Artifact& a, const Device& d);

}  // namespace drover
