#include "model/device.h"

#include <algorithm>
#include <array>
#include <cctype>

#include "base/enum_names.h"
#include "base/utf8.h"
#include "model/version.h"
#include "protocol/device_config.h"

namespace drover {

namespace {
constexpr EnumNames<Enrollment, 3> kEnrollmentNames{{
    {Enrollment::kAccepted, "accepted"},
    {Enrollment::kPending, "pending"},
    {Enrollment::kRejected, "rejected"},
}};
}  // namespace

namespace {

// Which bytes a name may hold: [A-Za-z0-9._:-].
constexpr std::array<bool, 256> kNameChars = [] {
  std::array<bool, 256> ok{};
  for (int c = 'a'; c <= 'z'; ++c) ok[c] = true;
  for (int c = 'A'; c <= 'Z'; ++c) ok[c] = true;
  for (int c = '0'; c <= '9'; ++c) ok[c] = true;
  for (char c : {'.', '_', ':', '-'}) ok[static_cast<unsigned char>(c)] = true;
  return ok;
}();

}  // namespace

const char* to_string(Enrollment e) { return enum_name(kEnrollmentNames, e); }
Result<Enrollment> parse_enrollment(std::string_view s) {
  return enum_parse(kEnrollmentNames, s, "enrollment");
}

bool is_valid_name(std::string_view s) {
  if (s.empty() || s.size() > 128 || s[0] == '.' || s[0] == '-') return false;
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return kNameChars[static_cast<unsigned char>(c)]; });
}

const std::string* Device::installed_version(std::string_view component) const {
  for (const auto& c : installed) {
    if (c.component == component) return &c.version;
  }
  return nullptr;
}

void Device::set_installed(std::string_view component, std::string_view version) {
  auto it = std::lower_bound(
      installed.begin(), installed.end(), component,
      [](const InstalledComponent& c, std::string_view n) { return c.component < n; });
  if (it != installed.end() && it->component == component) {
    it->version = std::string(version);
  } else {
    installed.insert(it, {std::string(component), std::string(version)});
  }
}

Status validate(Device& d) {
  // The message is built only on failure: this runs on every provisioned device and every
  // check-in that reports a change.
  auto bad = [&](const std::string& why) {
    return invalid_argument("device '" + d.id + "': " + why);
  };
  if (!is_valid_name(d.id)) return invalid_argument("bad device id '" + d.id + "'");
  if (!is_valid_name(d.device_type)) return bad("bad device_type");
  if (!is_valid_name(d.hardware_revision)) return bad("bad hardware_revision");
  if (!d.site.empty() && !is_valid_name(d.site)) return bad("bad site");
  if (!d.connectivity.empty() && !is_valid_name(d.connectivity)) {
    return bad("bad connectivity class");
  }
  if (!d.config_sha256.empty() && !protocol::is_sha256_hex(d.config_sha256)) {
    return bad("config_sha256 is 64 lower-case hex digits");
  }
  if (d.config_error.size() > protocol::kMaxConfigError || !is_valid_utf8(d.config_error)) {
    return bad("config_error is UTF-8 text of at most 512 bytes");
  }
  if (!d.public_key.empty()) {
    // 32 bytes in unpadded base64url are 43 characters, the last one carrying 4 zero bits.
    const bool b64url = std::all_of(d.public_key.begin(), d.public_key.end(), [](char c) {
      return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_';
    });
    if (d.public_key.size() != 43 || !b64url)
      return bad("public_key must be 32 bytes in base64url");
  }
  std::sort(d.tags.begin(), d.tags.end());
  for (size_t i = 0; i < d.tags.size(); ++i) {
    if (!is_valid_name(d.tags[i])) return bad("bad tag '" + d.tags[i] + "'");
    if (i > 0 && d.tags[i] == d.tags[i - 1]) return bad("duplicate tag '" + d.tags[i] + "'");
  }
  std::sort(d.installed.begin(), d.installed.end(),
            [](const auto& a, const auto& b) { return a.component < b.component; });
  for (size_t i = 0; i < d.installed.size(); ++i) {
    const auto& c = d.installed[i];
    if (!is_valid_name(c.component)) return bad("bad component '" + c.component + "'");
    if (i > 0 && c.component == d.installed[i - 1].component) {
      return bad("component '" + c.component + "' reported twice");
    }
    if (auto v = Version::parse(c.version); !v.ok()) return bad(v.error().message);
  }
  if (d.attributes.size() > kMaxDeviceAttributes) {
    return bad("more than " + std::to_string(kMaxDeviceAttributes) + " attributes");
  }
  std::sort(d.attributes.begin(), d.attributes.end(),
            [](const auto& a, const auto& b) { return a.key < b.key; });
  for (size_t i = 0; i < d.attributes.size(); ++i) {
    const auto& a = d.attributes[i];
    if (!is_valid_name(a.key) || a.key.size() > 64)
      return bad("bad attribute name '" + a.key + "'");
    if (i > 0 && a.key == d.attributes[i - 1].key) return bad("attribute '" + a.key + "' twice");
    const bool printable = std::all_of(a.value.begin(), a.value.end(), [](char c) {
      return static_cast<unsigned char>(c) >= 0x20 && c != 0x7f;
    });
    if (a.value.size() > 256 || !printable) {
      return bad("attribute '" + a.key + "': at most 256 printable bytes");
    }
  }
  if (d.quiet_hours.size() > kMaxQuietHours) {
    return bad("more than " + std::to_string(kMaxQuietHours) + " quiet hours");
  }
  if (auto st = validate_windows(d.quiet_hours); !st.ok())
    return bad("quiet hours: " + st.error().message);
  return ok_status();
}

}  // namespace drover
