// Semantic versions (semver.org 2.0): MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD], ordered by
// precedence (build metadata ignored), and constraints such as ">=2.0.0, <3.0.0".
#pragma once

#include <compare>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace drover {

struct Version {
  uint32_t major = 0;
  uint32_t minor = 0;
  uint32_t patch = 0;
  std::string prerelease;  // dot-separated identifiers, empty for a release
  std::string build;       // ignored for ordering and equality of precedence

  static Result<Version> parse(std::string_view text);
  std::string to_string() const;

  // Precedence order; build metadata does not take part.
  friend std::strong_ordering operator<=>(const Version& a, const Version& b);
  friend bool operator==(const Version& a, const Version& b) { return std::is_eq(a <=> b); }
};

// A conjunction of comparisons: "=1.2.3", ">=2.0.0, <3.0.0", "1.2.3" (exact).
class VersionConstraint {
 public:
  static Result<VersionConstraint> parse(std::string_view text);
  bool matches(const Version& v) const;
  const std::string& text() const { return text_; }

 private:
  enum class Op { kEq, kNe, kLt, kLe, kGt, kGe };
  struct Term {
    Op op;
    Version version;
  };
  std::vector<Term> terms_;
  std::string text_;
};

}  // namespace drover
