#include "transport/http/router.h"

#include <gtest/gtest.h>

namespace drover::http {
namespace {

Request req(std::string method, std::string target) {
  Request r;
  r.method = std::move(method);
  r.target = std::move(target);
  return r;
}

Router sample() {
  Router r;
  r.add("GET", "/api/v1/devices",
        [](const Request&, const Params&) { return Response::json(200, "list"); });
  r.add("GET", "/api/v1/devices/{id}", [](const Request&, const Params& p) {
    return Response::json(200, "device " + std::string(p.get("id")));
  });
  r.add("POST", "/api/v1/devices/{id}/accept", [](const Request&, const Params& p) {
    return Response::json(200, "accept " + std::string(p.get("id")));
  });
  r.add("DELETE", "/api/v1/devices/{id}", [](const Request&, const Params& p) {
    return Response::json(200, "delete " + std::string(p.get("id")));
  });
  return r;
}

TEST(Router, MatchesLiteralsAndParameters) {
  const Router r = sample();
  EXPECT_EQ(r(req("GET", "/api/v1/devices")).body, "list");
  EXPECT_EQ(r(req("GET", "/api/v1/devices?limit=5")).body, "list");  // the query is not the path
  EXPECT_EQ(r(req("GET", "/api/v1/devices/dev-1")).body, "device dev-1");
  EXPECT_EQ(r(req("POST", "/api/v1/devices/dev-1/accept")).body, "accept dev-1");
  EXPECT_EQ(r(req("DELETE", "/api/v1/devices/dev-1")).body, "delete dev-1");
}

TEST(Router, ParametersArePercentDecodedAndStayOneSegment) {
  const Router r = sample();
  EXPECT_EQ(r(req("GET", "/api/v1/devices/a%20b")).body, "device a b");
  // An encoded slash is data, not a separator: the handler sees it and can refuse the name.
  EXPECT_EQ(r(req("GET", "/api/v1/devices/..%2F..%2Fetc")).body, "device ../../etc");
  EXPECT_EQ(r(req("GET", "/api/v1/devices/a/b")).status, 404);
}

TEST(Router, MalformedEscapesAndEncodedNulAre400) {
  const Router r = sample();
  for (const char* bad : {"/api/v1/devices/%", "/api/v1/devices/%4", "/api/v1/devices/%zz",
                          "/api/v1/devices/a%00b"}) {
    const Response res = r(req("GET", bad));
    EXPECT_EQ(res.status, 400) << bad;
    EXPECT_NE(res.body.find("bad_path"), std::string::npos) << bad;
  }
}

TEST(Router, UnknownPathsAre404AndWrongMethods405WithAllow) {
  const Router r = sample();
  const Response missing = r(req("GET", "/api/v1/nothing"));
  EXPECT_EQ(missing.status, 404);
  EXPECT_NE(missing.body.find("\"code\":\"not_found\""), std::string::npos);
  EXPECT_EQ(r(req("GET", "/api/v1/devices/")).status, 404);  // an empty id is no id
  const Response wrong = r(req("PUT", "/api/v1/devices/dev-1"));
  EXPECT_EQ(wrong.status, 405);
  ASSERT_EQ(wrong.headers.size(), 1u);
  EXPECT_EQ(wrong.headers[0].first, "Allow");
  EXPECT_EQ(wrong.headers[0].second, "GET, DELETE");
}

// Found by fuzz_router: a 404 quoting a path that is not UTF-8 must still be a 404 with a
// JSON body, not an exception out of the JSON encoder.
TEST(Router, ErrorsQuotingInvalidUtf8AreStillWellFormed) {
  const Router r = sample();
  const Response res = r(req("GET", std::string("/api/\xff\xfe/x\xc3")));
  EXPECT_EQ(res.status, 404);
  EXPECT_NE(res.body.find("\"code\":\"not_found\""), std::string::npos);
  EXPECT_NE(res.body.find("\xEF\xBF\xBD"), std::string::npos) << res.body;  // U+FFFD
}

TEST(Router, PercentDecode) {
  std::string out;
  EXPECT_TRUE(percent_decode("a%2Fb%2fc", out));
  EXPECT_EQ(out, "a/b/c");
  EXPECT_TRUE(percent_decode("", out));
  EXPECT_EQ(out, "");
  EXPECT_FALSE(percent_decode("%", out));
  EXPECT_FALSE(percent_decode("%g0", out));
  EXPECT_FALSE(percent_decode("%00", out));
}

// ---------------------------------------------------------------- Query

Query parsed(std::string_view text) {
  auto q = Query::parse(text);
  EXPECT_TRUE(q.ok()) << text << ": " << q.error().to_string();
  return q.ok() ? *q : Query();
}

TEST(Query, DecodesFormUrlEncoding) {
  const Query q = parsed("a=1&b=x%20y&c=%C3%A9t%C3%A9&d=a%26b%3Dc&e=b=c");
  EXPECT_EQ(q.get("a"), "1");
  EXPECT_EQ(q.get("b"), "x y");
  EXPECT_EQ(q.get("c"), "\xC3\xA9t\xC3\xA9");
  EXPECT_EQ(q.get("d"), "a&b=c");  // encoded separators are data
  EXPECT_EQ(q.get("e"), "b=c");    // only the first '=' separates
  EXPECT_FALSE(q.has("x"));
  EXPECT_EQ(q.get("x"), "");
  EXPECT_TRUE(q.all("x").empty());
  EXPECT_FALSE(q.has("A"));  // keys are case-sensitive
}

TEST(Query, PlusIsASpaceAndAnEncodedPlusIsAPlus) {
  const Query q = parsed("v=%3E%3D1.0.0+%3C2.0.0&w=1.0.0%2Bbuild.7&x=%2b&y=a++b&key+with+spaces=1");
  EXPECT_EQ(q.get("v"), ">=1.0.0 <2.0.0");
  EXPECT_EQ(q.get("w"), "1.0.0+build.7");
  EXPECT_EQ(q.get("x"), "+");
  EXPECT_EQ(q.get("y"), "a  b");
  EXPECT_TRUE(q.has("key with spaces"));
  EXPECT_EQ(q.get("key with spaces"), "1");
  // A space-decoding pass must not run after the escapes are decoded.
  EXPECT_EQ(parsed("s=%2B%2B+%2B").get("s"), "++ +");
}

TEST(Query, RepeatedKeysKeepEveryValueInOrder) {
  const Query q = parsed("tag=b&site=x&tag=a&tag=b&tag=");
  EXPECT_EQ(q.all("tag"), (std::vector<std::string>{"b", "a", "b", ""}));
  EXPECT_EQ(q.get("tag"), "b");  // the first
  EXPECT_EQ(q.all("site"), (std::vector<std::string>{"x"}));
}

TEST(Query, AKeyWithoutEqualsHasAnEmptyValue) {
  const Query q = parsed("verbose&limit=5&dry%2Drun");
  EXPECT_TRUE(q.has("verbose"));
  EXPECT_EQ(q.get("verbose"), "");
  EXPECT_EQ(q.all("verbose"), (std::vector<std::string>{""}));
  EXPECT_TRUE(q.has("dry-run"));
  EXPECT_EQ(q.get("limit"), "5");
  EXPECT_TRUE(parsed("k=").has("k"));
  EXPECT_EQ(parsed("k=").get("k"), "");
}

TEST(Query, EmptyPartsAreSkipped) {
  const Query q = parsed("&&a=1&&b=2&");
  EXPECT_EQ(q.get("a"), "1");
  EXPECT_EQ(q.get("b"), "2");
  EXPECT_TRUE(q.allow_only({"a", "b"}).ok());
  const Query empty = parsed("");
  EXPECT_FALSE(empty.has(""));
  EXPECT_TRUE(empty.allow_only({}).ok());
}

TEST(Query, MalformedEscapesAndEncodedNulAreErrors) {
  for (const char* bad : {"a=%", "a=%4", "a=%zz", "a=%g0", "a=1&b=x%", "%zz=1", "%=1", "a%4=1",
                          "a=%00", "%00=1", "a=x%00y", "a%00", "ok=1&bad=%0"}) {
    auto q = Query::parse(bad);
    ASSERT_FALSE(q.ok()) << bad;
    EXPECT_EQ(q.error().code, ErrorCode::kInvalidArgument) << bad;
  }
  // A literal '%' is written %25.
  EXPECT_EQ(parsed("p=100%25").get("p"), "100%");
}

TEST(Query, NumbersAreWholeAndInTheirRange) {
  auto q = Query::parse("limit=50&from=-1&size=12x&huge=99999999999999999999&zero=0");
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(*q->number("limit", 100, 1, 1000), 50u);
  EXPECT_EQ(*q->number("absent", 7), 7u);
  for (const char* bad : {"from", "size", "huge"}) {
    auto n = q->number(bad, 0);
    ASSERT_FALSE(n.ok()) << bad;
    EXPECT_EQ(n.error().message, std::string(bad) + " must be a whole number");
  }
  auto zero = q->number("zero", 100, 1, 1000);
  ASSERT_FALSE(zero.ok());
  EXPECT_EQ(zero.error().message, "zero must be a number from 1 to 1000");
  EXPECT_FALSE(q->number("limit", 100, 1, 49).ok());
}

TEST(Query, AllowOnlyNamesTheFirstUnknownKey) {
  const Query q = parsed("limit=5&tga=x&sitee=y");
  auto st = q.allow_only({"limit", "tag", "site"});
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(st.error().message.find("'tga'"), std::string::npos) << st.error().message;
  EXPECT_TRUE(q.allow_only({"limit", "tga", "sitee"}).ok());
  // A bare key is checked like any other.
  EXPECT_FALSE(parsed("limit=5&debug").allow_only({"limit"}).ok());
  // The decoded key is what is checked.
  EXPECT_TRUE(parsed("li%6Dit=5").allow_only({"limit"}).ok());
  EXPECT_FALSE(parsed("Limit=5").allow_only({"limit"}).ok());
}

}  // namespace
}  // namespace drover::http
