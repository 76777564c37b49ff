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
  const Response res = r(req("GET", std::string("/api/\xff\xfe/x\xc3", 13)));
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

}  // namespace
}  // namespace drover::http
