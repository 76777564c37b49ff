// The web console's routes (console.h): its files under /console/ with their types, cache
// rules and security headers; / and /console sending a browser there; an unknown file a 404;
// and a drover built without the console answering with the page that says so.
#include "transport/http/console.h"

#include <gtest/gtest.h>

#include <array>
#include <string>

namespace drover::http {
namespace {

Request get(std::string target) {
  Request r;
  r.method = "GET";
  r.target = std::move(target);
  return r;
}

std::string header(const Response& r, std::string_view name) {
  for (const auto& [k, v] : r.headers) {
    if (k == name) return v;
  }
  return "";
}

constexpr std::array<ConsoleFile, 3> kFiles = {{
    {"index.html", "<!doctype html><title>console</title>"},
    {"assets/index-abc123.js", "console.log(1)"},
    {"favicon.svg", "<svg/>"},
}};

TEST(Console, ServesItsFilesWithTypesCacheRulesAndAPolicy) {
  Router router;
  add_console(router, kFiles);
  const Response index = router(get("/console/"));
  EXPECT_EQ(index.status, 200);
  EXPECT_EQ(index.body, "<!doctype html><title>console</title>");
  EXPECT_EQ(index.content_type, "text/html; charset=utf-8");
  EXPECT_EQ(header(index, "Cache-Control"), "no-cache");  // it names the built files
  const std::string policy = header(index, "Content-Security-Policy");
  EXPECT_NE(policy.find("script-src 'self'"), std::string::npos) << policy;
  EXPECT_EQ(policy.find("unsafe-inline"), std::string::npos) << policy;
  EXPECT_NE(policy.find("frame-ancestors 'none'"), std::string::npos) << policy;
  EXPECT_EQ(header(index, "X-Content-Type-Options"), "nosniff");

  const Response script = router(get("/console/assets/index-abc123.js"));
  EXPECT_EQ(script.status, 200);
  EXPECT_EQ(script.body, "console.log(1)");
  EXPECT_EQ(script.content_type, "text/javascript; charset=utf-8");
  EXPECT_EQ(header(script, "Cache-Control"), "public, max-age=31536000, immutable");

  const Response icon = router(get("/console/favicon.svg"));
  EXPECT_EQ(icon.status, 200);
  EXPECT_EQ(icon.content_type, "image/svg+xml");
  EXPECT_EQ(header(icon, "Cache-Control"), "no-cache");  // not a hashed name
}

TEST(Console, SendsBrowsersToItAndRefusesWhatItDoesNotHave) {
  Router router;
  add_console(router, kFiles);
  for (const char* target : {"/", "/console"}) {
    const Response r = router(get(target));
    EXPECT_EQ(r.status, 308) << target;
    EXPECT_EQ(header(r, "Location"), "console/") << target;  // relative: a proxy's prefix stays
  }
  EXPECT_EQ(router(get("/console/assets/other.js")).status, 404);
  EXPECT_EQ(router(get("/console/index.html/x")).status, 404);
  // A path outside the table is never looked up on disk: traversal finds nothing.
  EXPECT_EQ(router(get("/console/..%2F..%2Fetc%2Fpasswd")).status, 404);
  EXPECT_EQ(router(get("/console/assets/..%2Findex.html")).status, 404);
  Request post = get("/console/");
  post.method = "POST";
  EXPECT_EQ(router(post).status, 405);
}

TEST(Console, WithoutItsFilesSaysHowToBuildThemIn) {
  Router router;
  add_console(router, {});
  const Response r = router(get("/console/"));
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.content_type, "text/html; charset=utf-8");
  EXPECT_NE(r.body.find("built without its web console"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("npm ci"), std::string::npos) << r.body;
  EXPECT_EQ(router(get("/console/assets/index-abc123.js")).status, 404);
}

TEST(Console, ContentTypesByExtension) {
  EXPECT_EQ(console_content_type("a/b.css"), "text/css; charset=utf-8");
  EXPECT_EQ(console_content_type("x.woff2"), "font/woff2");
  EXPECT_EQ(console_content_type("x.png"), "image/png");
  EXPECT_EQ(console_content_type("noext"), "application/octet-stream");
  EXPECT_EQ(console_content_type("x.exe"), "application/octet-stream");
}

}  // namespace
}  // namespace drover::http
