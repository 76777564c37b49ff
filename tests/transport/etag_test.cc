// Conditional GETs (etag.h): a 200 answer to a GET carries its body's tag, a GET that names
// that tag gets a 304 with no body, also when the answer is computed off the I/O thread;
// other answers, other methods and streamed files are left as they are. And through a real
// server and client: the 304 goes over the wire without a body.
#include "transport/http/etag.h"

#include <gtest/gtest.h>

#include <string>

#include "transport/http/client.h"

namespace drover::http {
namespace {

std::string header(const Response& r, std::string_view name) {
  for (const auto& [k, v] : r.headers) {
    if (k == name) return v;
  }
  return "";
}

Request get(std::string if_none_match = "") {
  Request r;
  r.method = "GET";
  r.target = "/api/v1/devices";
  if (!if_none_match.empty()) r.headers = {{"If-None-Match", std::move(if_none_match)}};
  return r;
}

TEST(ETag, TagsDependOnEveryByteAndAreQuoted) {
  const std::string a = etag_of("{\"devices\":[]}");
  EXPECT_EQ(a.size(), 18u);
  EXPECT_EQ(a.front(), '"');
  EXPECT_EQ(a.back(), '"');
  EXPECT_EQ(a, etag_of("{\"devices\":[]}"));
  EXPECT_NE(a, etag_of("{\"devices\":[ ]}"));
  EXPECT_NE(etag_of("ab"), etag_of("ba"));
}

TEST(ETag, IfNoneMatchListsWeakTagsAndTheStar) {
  const std::string tag = etag_of("x");
  EXPECT_TRUE(etag_matches(tag, tag));
  EXPECT_TRUE(etag_matches("\"0000000000000000\", " + tag, tag));
  EXPECT_TRUE(etag_matches(" W/" + tag + " ", tag));
  EXPECT_TRUE(etag_matches("*", tag));
  EXPECT_FALSE(etag_matches("\"0000000000000000\"", tag));
  EXPECT_FALSE(etag_matches("", tag));
  EXPECT_FALSE(etag_matches(",,", tag));
  EXPECT_FALSE(etag_matches(tag.substr(1), tag));  // unquoted: not the same tag
}

TEST(ETag, AnUnchangedAnswerIsA304WithoutItsBody) {
  int calls = 0;
  Handler h = with_etags([&](const Request&) {
    ++calls;
    return Response::json(200, "{\"devices\":[1,2,3]}");
  });
  const Response first = h(get());
  EXPECT_EQ(first.status, 200);
  const std::string tag = header(first, "ETag");
  EXPECT_EQ(tag, etag_of("{\"devices\":[1,2,3]}"));
  EXPECT_EQ(header(first, "Cache-Control"), "no-cache");
  const Response again = h(get(tag));
  EXPECT_EQ(again.status, 304);
  EXPECT_TRUE(again.body.empty());
  EXPECT_TRUE(again.content_type.empty());
  EXPECT_EQ(header(again, "ETag"), tag);
  EXPECT_EQ(h(get("\"0123456789abcdef\"")).status, 200);  // another tag: the whole answer
  EXPECT_EQ(calls, 3);                                    // the answer is still computed each time
}

TEST(ETag, AHandlersOwnCacheRuleStands) {
  Handler h = with_etags([](const Request&) {
    Response r = Response::json(200, "console.log(1)");
    r.headers.emplace_back("cache-control", "public, max-age=31536000, immutable");
    return r;
  });
  const Response r = h(get());
  int rules = 0;
  for (const auto& [k, v] : r.headers) rules += k == "cache-control" || k == "Cache-Control";
  EXPECT_EQ(rules, 1);
  EXPECT_EQ(header(r, "cache-control"), "public, max-age=31536000, immutable");
  EXPECT_FALSE(header(r, "ETag").empty());
}

TEST(ETag, OffloadedAnswersAreTaggedWhenComputed) {
  Handler h = with_etags([](const Request&) {
    Response r;
    r.offload = [] { return Response::json(200, "[\"history\"]"); };
    return r;
  });
  Response r = h(get(etag_of("[\"history\"]")));
  ASSERT_TRUE(r.offload);
  const Response done = r.offload();
  EXPECT_EQ(done.status, 304);
  EXPECT_TRUE(done.body.empty());
}

TEST(ETag, OtherAnswersAndMethodsPassUntouched) {
  Handler error = with_etags([](const Request&) { return Response::error(404, "not_found", "x"); });
  const std::string body = Response::error(404, "not_found", "x").body;
  const Response e = error(get(etag_of(body)));
  EXPECT_EQ(e.status, 404);
  EXPECT_EQ(header(e, "ETag"), "");
  Handler ok = with_etags([](const Request&) { return Response::json(200, "{}"); });
  Request post = get(etag_of("{}"));
  post.method = "POST";
  const Response p = ok(post);
  EXPECT_EQ(p.status, 200);
  EXPECT_EQ(header(p, "ETag"), "");
  Handler file = with_etags([](const Request&) {
    Response r;
    r.file = Response::FileRange{"/dev/null", 0, 0};
    return r;
  });
  EXPECT_EQ(header(file(get()), "ETag"), "");
}

TEST(ETag, A304CrossesTheWireWithoutABody) {
  auto server = HttpServer::start(
      {}, with_etags([](const Request&) { return Response::json(200, "{\"rollouts\":[]}"); }));
  ASSERT_TRUE(server.ok()) << server.error().to_string();
  auto client = HttpClient::create("http://127.0.0.1:" + std::to_string((*server)->port()), {});
  ASSERT_TRUE(client.ok());
  auto first = (*client)->request("GET", "/api/v1/rollouts");
  ASSERT_TRUE(first.ok()) << first.error().to_string();
  const std::string tag(first->header("ETag"));
  ASSERT_FALSE(tag.empty());
  auto second = (*client)->request("GET", "/api/v1/rollouts", {}, {{"If-None-Match", tag}});
  ASSERT_TRUE(second.ok()) << second.error().to_string();
  EXPECT_EQ(second->status, 304);
  EXPECT_TRUE(second->body.empty());
  EXPECT_EQ(second->header("Content-Length"), "");  // it would describe the 200's body
  EXPECT_EQ(second->header("ETag"), tag);
  // The connection goes on: the next answer is whole.
  auto third = (*client)->request("GET", "/api/v1/rollouts");
  ASSERT_TRUE(third.ok()) << third.error().to_string();
  EXPECT_EQ(third->body, "{\"rollouts\":[]}");
}

}  // namespace
}  // namespace drover::http
