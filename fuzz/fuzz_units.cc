// Fuzzes the unit and version parsers with the same input, and checks that whatever one
// accepts survives its printer: parse(format(parse(x))) == parse(x).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/units.h"
#include "model/version.h"

namespace {

using namespace drover;

// A broken invariant is a crash, so libFuzzer keeps the input.
void check(bool ok) {
  if (!ok) __builtin_trap();
}

void fuzz_one(std::string_view text) {
  if (auto d = parse_duration(text); d.ok()) {
    check(d->count() >= 0);
    auto back = parse_duration(format_duration(*d));
    check(back.ok() && *back == *d);
  }
  (void)parse_bytes(text);
  if (auto b = parse_bitrate(text); b.ok()) check(*b >= 1);
  if (auto m = parse_time_of_day(text); m.ok()) {
    check(*m >= 0 && *m <= 24 * 60);
    auto back = parse_time_of_day(format_time_of_day(*m));
    check(back.ok() && *back == *m);
  }
  if (auto days = parse_weekdays(text); days.ok()) {
    check(*days != 0 && (*days & 0x80) == 0);
    auto back = parse_weekdays(format_weekdays(*days));
    check(back.ok() && *back == *days);
  }
  if (auto t = parse_utc_timestamp(text); t.ok()) {
    auto back = parse_utc_timestamp(format_utc_timestamp(*t));
    check(back.ok() && *back == *t);
  }
  if (auto v = Version::parse(text); v.ok()) {
    auto back = Version::parse(v->to_string());
    check(back.ok() && *back == *v && back->build == v->build && back->prerelease == v->prerelease);
  }
  if (auto c = VersionConstraint::parse(text); c.ok()) {
    check(VersionConstraint::parse(c->text()).ok());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  fuzz_one(text);
  // "constraint\nversion": also exercise matching, and compare the two halves as versions.
  if (const size_t nl = text.find('\n'); nl != std::string_view::npos) {
    const std::string_view left = text.substr(0, nl);
    const std::string_view right = text.substr(nl + 1);
    auto c = VersionConstraint::parse(left);
    auto v = Version::parse(right);
    if (c.ok() && v.ok()) (void)c->matches(*v);
    if (auto a = Version::parse(left); a.ok() && v.ok()) {
      // Precedence is a total order: antisymmetric, and consistent with ==.
      const auto ab = *a <=> *v;
      const auto ba = *v <=> *a;
      check((ab < 0) == (ba > 0) && (ab == 0) == (ba == 0) && (ab == 0) == (*a == *v));
    }
  }
  return 0;
}
