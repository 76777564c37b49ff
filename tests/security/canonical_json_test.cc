// Canonical JSON and the strict parser signed documents go through.
#include "security/canonical_json.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

namespace drover::security {
namespace {

std::string canon(std::string_view text) {
  auto v = parse_strict_json(text);
  EXPECT_TRUE(v.ok()) << v.error().message;
  if (!v.ok()) return "";
  auto c = canonical_json(*v);
  EXPECT_TRUE(c.ok()) << c.error().message;
  return c.ok() ? *c : "";
}

TEST(CanonicalJson, OneSpellingForEachDocument) {
  EXPECT_EQ(canon(R"( { "b" : 1 , "a" : [ true , false , null , "x\"y\\z" ] } )"),
            R"({"a":[true,false,null,"x\"y\\z"],"b":1})");
  // Keys in the order of their UTF-8 bytes: upper case before lower, "a" before "aa",
  // anything beyond ASCII last.
  EXPECT_EQ(canon(R"({"é": 1, "aa": 2, "a": 3, "B": 4})"),
            "{\"B\":4,\"a\":3,\"aa\":2,\"\xc3\xa9\":1}");
  // Only " and \ are escaped; an escaped newline or \u00e9 in the input is the raw byte in
  // the output.
  EXPECT_EQ(canon(R"(["line\nbreak", "\u00e9", "\/"])"), "[\"line\nbreak\",\"\xc3\xa9\",\"/\"]");
  EXPECT_EQ(canon("[18446744073709551615, -9223372036854775808, 0, -0]"),
            "[18446744073709551615,-9223372036854775808,0,0]");
  EXPECT_EQ(canon("{}"), "{}");
  EXPECT_EQ(canon("[]"), "[]");
  EXPECT_EQ(canon(R"("")"), R"("")");
  // The canonical form is a fixed point.
  const std::string doc = canon(R"({"signed": {"_type": "root", "version": 3,
      "keys": {"z": {"keyval": {"public": "ab"}}, "a": {}}}, "signatures": []})");
  EXPECT_EQ(canon(doc), doc);
}

TEST(CanonicalJson, FloatingPointNumbersHaveNoCanonicalForm) {
  for (const char* text : {"1.0", "[1e2]", R"({"a": {"b": 0.5}})", "-0.0"}) {
    auto v = parse_strict_json(text);
    ASSERT_TRUE(v.ok()) << text;
    auto c = canonical_json(*v);
    ASSERT_FALSE(c.ok()) << text;
    EXPECT_EQ(c.error().code, ErrorCode::kInvalidArgument);
    EXPECT_NE(c.error().message.find("floating-point"), std::string::npos);
  }
}

TEST(CanonicalJson, TheStrictParserRefusesWhatTwoReadersCouldReadTwoWays) {
  struct Case {
    std::string text, says;
  };
  const Case cases[] = {
      {R"({"version": 1, "version": 9})", "appears twice"},
      {R"({"signed": {"a": 1, "b": {"c": 1, "c": 2}}})", "appears twice"},
      {R"([{"a": 1}, {"a": 2}, {"b": {}, "a": {"b": 1}, "c": 1, "c": 1}])", "appears twice"},
      {"\"\xff\"", "malformed"},
      {"\"\xc3\"", "malformed"},
      {R"({"a": 1,})", "malformed"},
      {R"({"a": 1} trailing)", "malformed"},
      {"", "malformed"},
      {"[1, 2", "malformed"},
      {std::string(33, '[') + std::string(33, ']'), "deeper than 32"},
      {std::string(100000, '[') + std::string(100000, ']'), "deeper than 32"},
  };
  for (const Case& c : cases) {
    auto v = parse_strict_json(c.text);
    ASSERT_FALSE(v.ok()) << c.text.substr(0, 60);
    EXPECT_EQ(v.error().code, ErrorCode::kInvalidArgument);
    EXPECT_NE(v.error().message.find(c.says), std::string::npos) << v.error().message;
  }
  // What is allowed: the same key in sibling objects, and nesting up to the limit.
  EXPECT_TRUE(parse_strict_json(R"([{"a": 1}, {"a": 2}, {"b": {"a": 3}, "a": 4}])").ok());
  EXPECT_TRUE(parse_strict_json(std::string(32, '[') + std::string(32, ']')).ok());
  EXPECT_TRUE(
      parse_strict_json(R"({"a": [[{"b": []}]]})", {.max_bytes = 100, .max_depth = 5}).ok());
  EXPECT_FALSE(
      parse_strict_json(R"({"a": [[{"b": []}]]})", {.max_bytes = 100, .max_depth = 4}).ok());
  auto big = parse_strict_json(R"(["0123456789"])", {.max_bytes = 10, .max_depth = 32});
  ASSERT_FALSE(big.ok());
  EXPECT_NE(big.error().message.find("more than the 10 allowed"), std::string::npos);
}

}  // namespace
}  // namespace drover::security
