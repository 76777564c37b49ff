#include "model/version.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace drover {
namespace {

Version v(std::string_view text) {
  auto r = Version::parse(text);
  EXPECT_TRUE(r.ok()) << text << ": " << (r.ok() ? "" : r.error().message);
  return r.ok() ? *r : Version{};
}

TEST(Version, ParsesParts) {
  const Version x = v("1.22.333-rc.1+build.7");
  EXPECT_EQ(x.major, 1u);
  EXPECT_EQ(x.minor, 22u);
  EXPECT_EQ(x.patch, 333u);
  EXPECT_EQ(x.prerelease, "rc.1");
  EXPECT_EQ(x.build, "build.7");
  EXPECT_EQ(x.to_string(), "1.22.333-rc.1+build.7");

  const Version y = v("4.2.1");
  EXPECT_EQ(y.prerelease, "");
  EXPECT_EQ(y.build, "");
  EXPECT_EQ(y.to_string(), "4.2.1");

  // Hyphens are allowed inside identifiers; only the first one starts the prerelease.
  const Version z = v("1.0.0-x-y.z+b-1");
  EXPECT_EQ(z.prerelease, "x-y.z");
  EXPECT_EQ(z.build, "b-1");
  EXPECT_EQ(v("4294967295.0.0").major, 4294967295u);
}

// The precedence example from semver.org 2.0 §11, in order.
TEST(Version, SemverPrecedenceList) {
  const std::vector<std::string> ordered{"1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta",
                                         "1.0.0-beta",  "1.0.0-beta.2",  "1.0.0-beta.11",
                                         "1.0.0-rc.1",  "1.0.0"};
  for (size_t i = 0; i < ordered.size(); ++i) {
    for (size_t j = 0; j < ordered.size(); ++j) {
      const Version a = v(ordered[i]);
      const Version b = v(ordered[j]);
      EXPECT_EQ(a < b, i < j) << ordered[i] << " vs " << ordered[j];
      EXPECT_EQ(a == b, i == j) << ordered[i] << " vs " << ordered[j];
    }
  }
}

TEST(Version, NumericPartsCompareNumerically) {
  EXPECT_LT(v("1.9.0"), v("1.10.0"));
  EXPECT_LT(v("1.0.9"), v("1.0.10"));
  EXPECT_LT(v("2.0.0"), v("10.0.0"));
  EXPECT_LT(v("1.99.99"), v("2.0.0"));
  EXPECT_LT(v("1.0.0-2"), v("1.0.0-10"));
  EXPECT_LT(v("1.0.0-99"), v("1.0.0-a"));  // numeric identifiers rank below alphanumeric
  EXPECT_LT(v("1.0.0-Z"), v("1.0.0-a"));   // ASCII order
}

TEST(Version, BuildMetadataIsIgnoredInOrdering) {
  EXPECT_EQ(v("1.0.0+a"), v("1.0.0+b"));
  EXPECT_EQ(v("1.0.0+a"), v("1.0.0"));
  EXPECT_FALSE(v("1.0.0+zzz") < v("1.0.0+aaa"));
  EXPECT_FALSE(v("1.0.0+aaa") < v("1.0.0+zzz"));
  EXPECT_LT(v("1.0.0-rc.1+zzz"), v("1.0.0+aaa"));
}

TEST(Version, RejectsLeadingZeros) {
  for (const char* text : {"01.0.0", "1.02.0", "1.0.03", "00.0.0", "1.0.0-01", "1.0.0-rc.01"}) {
    EXPECT_FALSE(Version::parse(text).ok()) << text;
  }
  // Zero itself, and zeros inside alphanumeric identifiers or build metadata, are fine.
  EXPECT_TRUE(Version::parse("0.0.0").ok());
  EXPECT_TRUE(Version::parse("1.0.0-0").ok());
  EXPECT_TRUE(Version::parse("1.0.0-0a").ok());
  EXPECT_TRUE(Version::parse("1.0.0+001").ok());
}

TEST(Version, RejectsMalformed) {
  for (const char* text :
       {"", "1", "1.0", "1.0.0.0", "v1.0.0", "1.0.0-", "1.0.0+", "1.0.0-a..b", "1.0.0-a_b",
        "1.0.0+a b", " 1.0.0", "1.0.0 ", "-1.0.0", "1.-1.0", "4294967296.0.0", "1.0.x", "1..0"}) {
    auto r = Version::parse(text);
    EXPECT_FALSE(r.ok()) << text;
    if (!r.ok()) {
      EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
    }
  }
  EXPECT_FALSE(Version::parse("1.0.0-" + std::string(300, 'a')).ok());
}

// ---------------------------------------------------------------- constraints

bool matches(std::string_view constraint, std::string_view version) {
  auto c = VersionConstraint::parse(constraint);
  EXPECT_TRUE(c.ok()) << constraint << ": " << (c.ok() ? "" : c.error().message);
  return c.ok() && c->matches(v(version));
}

TEST(VersionConstraint, Range) {
  EXPECT_FALSE(matches(">=2.0.0, <3.0.0", "1.9.9"));
  EXPECT_TRUE(matches(">=2.0.0, <3.0.0", "2.0.0"));
  EXPECT_TRUE(matches(">=2.0.0, <3.0.0", "2.99.0"));
  EXPECT_FALSE(matches(">=2.0.0, <3.0.0", "3.0.0"));
  // A prerelease of 3.0.0 precedes 3.0.0, so it is inside the range.
  EXPECT_TRUE(matches(">=2.0.0, <3.0.0", "3.0.0-rc.1"));
  EXPECT_FALSE(matches(">=2.0.0, <3.0.0", "2.0.0-rc.1"));
}

TEST(VersionConstraint, Operators) {
  EXPECT_TRUE(matches("!=1.2.3", "1.2.4"));
  EXPECT_FALSE(matches("!=1.2.3", "1.2.3"));
  EXPECT_FALSE(matches("!=1.2.3", "1.2.3+other-build"));
  EXPECT_TRUE(matches(">1.2.3", "1.2.4"));
  EXPECT_FALSE(matches(">1.2.3", "1.2.3"));
  EXPECT_TRUE(matches("<=1.2.3", "1.2.3"));
  EXPECT_FALSE(matches("<=1.2.3", "1.2.4"));
  EXPECT_TRUE(matches("=1.2.3", "1.2.3"));
  EXPECT_FALSE(matches("=1.2.3", "1.2.4"));
  EXPECT_TRUE(matches(">= 2.1.0", "2.1.0"));  // a space after the operator is allowed
}

TEST(VersionConstraint, BareVersionIsExact) {
  EXPECT_TRUE(matches("1.2.3", "1.2.3"));
  EXPECT_FALSE(matches("1.2.3", "1.2.4"));
  EXPECT_FALSE(matches("1.2.3", "1.2.3-rc.1"));
  EXPECT_FALSE(matches("1.2.3", "1.2.2"));
}

TEST(VersionConstraint, KeepsItsText) {
  EXPECT_EQ(VersionConstraint::parse(">=2.0.0, <3.0.0").value().text(), ">=2.0.0, <3.0.0");
}

TEST(VersionConstraint, RejectsBadConstraints) {
  for (const char* text : {"", ">=", ">=2.0", "~1.2.3", "^1.2.3", ">=2.0.0,", ",>=2.0.0",
                           ">=2.0.0 <3.0.0", "=>1.0.0", ">>1.0.0", ">=2.0.0,,<3.0.0"}) {
    auto r = VersionConstraint::parse(text);
    EXPECT_FALSE(r.ok()) << text;
    if (!r.ok()) {
      EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
      EXPECT_NE(r.error().message.find("bad version constraint"), std::string::npos)
          << r.error().message;
    }
  }
}

}  // namespace
}  // namespace drover
