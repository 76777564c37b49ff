#include "model/version.h"

#include <charconv>

namespace drover {
namespace {

bool parse_number(std::string_view s, uint32_t& out) {
  if (s.empty() || (s.size() > 1 && s[0] == '0')) return false;  // no leading zeros
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && ptr == s.data() + s.size();
}

bool valid_identifiers(std::string_view s, bool numeric_no_leading_zero) {
  if (s.empty()) return false;
  size_t start = 0;
  while (start <= s.size()) {
    size_t dot = s.find('.', start);
    std::string_view id = s.substr(start, dot == std::string_view::npos ? s.npos : dot - start);
    if (id.empty()) return false;
    bool all_digits = true;
    for (char c : id) {
      const bool alnum = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
      if (!alnum && c != '-') return false;
      if (c < '0' || c > '9') all_digits = false;
    }
    if (numeric_no_leading_zero && all_digits && id.size() > 1 && id[0] == '0') return false;
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return true;
}

bool is_numeric(std::string_view id) {
  for (char c : id) {
    if (c < '0' || c > '9') return false;
  }
  return !id.empty();
}

// Prerelease precedence per semver 2.0 §11.
std::strong_ordering compare_prerelease(std::string_view a, std::string_view b) {
  if (a.empty() && b.empty()) return std::strong_ordering::equal;
  if (a.empty()) return std::strong_ordering::greater;  // a release outranks its prereleases
  if (b.empty()) return std::strong_ordering::less;
  while (true) {
    const size_t da = a.find('.');
    const size_t db = b.find('.');
    std::string_view ia = a.substr(0, da);
    std::string_view ib = b.substr(0, db);
    const bool na = is_numeric(ia);
    const bool nb = is_numeric(ib);
    std::strong_ordering c = std::strong_ordering::equal;
    if (na && nb) {
      c = ia.size() != ib.size() ? ia.size() <=> ib.size() : ia.compare(ib) <=> 0;
    } else if (na != nb) {
      c = na ? std::strong_ordering::less : std::strong_ordering::greater;
    } else {
      c = ia.compare(ib) <=> 0;
    }
    if (std::is_neq(c)) return c;
    const bool ea = da == std::string_view::npos;
    const bool eb = db == std::string_view::npos;
    if (ea || eb) {
      if (ea && eb) return std::strong_ordering::equal;
      return ea ? std::strong_ordering::less : std::strong_ordering::greater;
    }
    a.remove_prefix(da + 1);
    b.remove_prefix(db + 1);
  }
}

}  // namespace

Result<Version> Version::parse(std::string_view text) {
  const std::string original(text);
  auto bad = [&](const char* why) {
    return invalid_argument("bad version '" + original + "': " + why);
  };
  if (text.empty()) return bad("empty");
  if (text.size() > 256) return bad("longer than 256 characters");
  Version v;
  const size_t plus = text.find('+');
  if (plus != std::string_view::npos) {
    v.build = std::string(text.substr(plus + 1));
    if (!valid_identifiers(v.build, false)) return bad("bad build metadata");
    text = text.substr(0, plus);
  }
  const size_t dash = text.find('-');
  if (dash != std::string_view::npos) {
    v.prerelease = std::string(text.substr(dash + 1));
    if (!valid_identifiers(v.prerelease, true)) return bad("bad prerelease");
    text = text.substr(0, dash);
  }
  const size_t d1 = text.find('.');
  const size_t d2 = d1 == std::string_view::npos ? d1 : text.find('.', d1 + 1);
  if (d1 == std::string_view::npos || d2 == std::string_view::npos) {
    return bad("expected MAJOR.MINOR.PATCH");
  }
  if (!parse_number(text.substr(0, d1), v.major) ||
      !parse_number(text.substr(d1 + 1, d2 - d1 - 1), v.minor) ||
      !parse_number(text.substr(d2 + 1), v.patch)) {
    return bad("MAJOR, MINOR and PATCH must be numbers without leading zeros");
  }
  return v;
}

std::string Version::to_string() const {
  std::string out =
      std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(patch);
  if (!prerelease.empty()) out += "-" + prerelease;
  if (!build.empty()) out += "+" + build;
  return out;
}

std::strong_ordering operator<=>(const Version& a, const Version& b) {
  if (auto c = a.major <=> b.major; std::is_neq(c)) return c;
  if (auto c = a.minor <=> b.minor; std::is_neq(c)) return c;
  if (auto c = a.patch <=> b.patch; std::is_neq(c)) return c;
  return compare_prerelease(a.prerelease, b.prerelease);
}

Result<VersionConstraint> VersionConstraint::parse(std::string_view text) {
  VersionConstraint out;
  out.text_ = std::string(text);
  std::string_view rest = text;
  while (true) {
    const size_t comma = rest.find(',');
    std::string_view part = rest.substr(0, comma);
    while (!part.empty() && part.front() == ' ') part.remove_prefix(1);
    while (!part.empty() && part.back() == ' ') part.remove_suffix(1);
    Op op = Op::kEq;
    for (auto [prefix, o] :
         {std::pair{">=", Op::kGe}, std::pair{"<=", Op::kLe}, std::pair{"!=", Op::kNe},
          std::pair{">", Op::kGt}, std::pair{"<", Op::kLt}, std::pair{"=", Op::kEq}}) {
      if (part.starts_with(prefix)) {
        op = o;
        part.remove_prefix(std::string_view(prefix).size());
        break;
      }
    }
    while (!part.empty() && part.front() == ' ') part.remove_prefix(1);
    auto v = Version::parse(part);
    if (!v.ok()) {
      return invalid_argument("bad version constraint '" + std::string(text) +
                              "': " + v.error().message);
    }
    out.terms_.push_back({op, std::move(*v)});
    if (comma == std::string_view::npos) break;
    rest = rest.substr(comma + 1);
  }
  return out;
}

bool VersionConstraint::matches(const Version& v) const {
  for (const Term& t : terms_) {
    const auto c = v <=> t.version;
    bool ok = false;
    switch (t.op) {
      case Op::kEq:
        ok = std::is_eq(c);
        break;
      case Op::kNe:
        ok = std::is_neq(c);
        break;
      case Op::kLt:
        ok = std::is_lt(c);
        break;
      case Op::kLe:
        ok = std::is_lteq(c);
        break;
      case Op::kGt:
        ok = std::is_gt(c);
        break;
      case Op::kGe:
        ok = std::is_gteq(c);
        break;
    }
    if (!ok) return false;
  }
  return true;
}

}  // namespace drover
