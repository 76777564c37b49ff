#include "model/artifact.h"

#include <algorithm>

#include "model/version.h"

namespace drover {
namespace {
bool sorted_unique_names(std::vector<std::string>& v) {
  std::sort(v.begin(), v.end());
  return std::adjacent_find(v.begin(), v.end()) == v.end() &&
         std::all_of(v.begin(), v.end(), [](const std::string& s) { return is_valid_name(s); });
}
}  // namespace

Status validate(Artifact& a) {
  if (!is_valid_name(a.name)) return invalid_argument("bad artifact name '" + a.name + "'");
  const std::string where = "artifact '" + a.name + "@" + a.version + "': ";
  if (auto v = Version::parse(a.version); !v.ok())
    return invalid_argument(where + v.error().message);
  if (a.device_types.empty()) return invalid_argument(where + "device_types must not be empty");
  if (!sorted_unique_names(a.device_types))
    return invalid_argument(where + "bad or duplicate device type");
  if (!sorted_unique_names(a.hardware_revisions)) {
    return invalid_argument(where + "bad or duplicate hardware revision");
  }
  for (const auto& dep : a.depends) {
    if (!is_valid_name(dep.component)) return invalid_argument(where + "bad dependency component");
    if (dep.component == a.name)
      return invalid_argument(where + "an artifact cannot depend on its own component");
    if (auto c = VersionConstraint::parse(dep.constraint); !c.ok()) {
      return invalid_argument(where + c.error().message);
    }
  }
  std::sort(a.depends.begin(), a.depends.end(),
            [](const auto& x, const auto& y) { return x.component < y.component; });
  if (a.size_bytes == 0) return invalid_argument(where + "size must be positive");
  if (a.sha256.size() != 64 || !std::all_of(a.sha256.begin(), a.sha256.end(), [](char c) {
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
      })) {
    return invalid_argument(where + "sha256 must be 64 lowercase hex digits");
  }
  return ok_status();
}

Status check_compatible(const Artifact& a, const Device& d) {
  auto refuse = [&](const std::string& why) {
    return Error{ErrorCode::kFailedPrecondition,
                 a.key() + " does not fit device '" + d.id + "': " + why};
  };
  if (!std::binary_search(a.device_types.begin(), a.device_types.end(), d.device_type)) {
    return refuse("device type " + d.device_type + " not supported");
  }
  if (!a.hardware_revisions.empty() &&
      !std::binary_search(a.hardware_revisions.begin(), a.hardware_revisions.end(),
                          d.hardware_revision)) {
    return refuse("hardware revision " + d.hardware_revision + " not supported");
  }
  for (const auto& dep : a.depends) {
    const std::string* have = d.installed_version(dep.component);
    if (have == nullptr)
      return refuse("needs " + dep.component + " " + dep.constraint + ", not installed");
    auto v = Version::parse(*have);
    auto c = VersionConstraint::parse(dep.constraint);
    if (!v.ok() || !c.ok() || !c->matches(*v)) {
      return refuse("needs " + dep.component + " " + dep.constraint + ", has " + *have);
    }
  }
  return ok_status();
}

}  // namespace drover
