// What an unauthenticated client can make the server do is bounded: enrollments without a
// token per source address and in total, what such a device may store, and logins per
// source. Each refusal is a clear 4xx/507 that stores nothing.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "../common/fleet_fixture.h"
#include "transport/http/device_api.h"
#include "transport/http/rate_limit.h"

namespace drover::http {
namespace {

using drover::testing::Fleet;
using nlohmann::json;
using security::SigningKey;
using security::to_base64url;

TEST(RateLimit, ABucketPerSourceRefillsAtItsRate) {
  ManualClock clock(Timestamp(hours(1000)));
  SourceRateLimiter limiter(clock, {2, 3, 100});  // 2/s, bursts of 3
  for (int i = 0; i < 3; ++i) EXPECT_EQ(limiter.take("a"), Duration(0)) << i;
  const Duration wait = limiter.take("a");
  EXPECT_GT(wait, Duration(0));
  EXPECT_LE(wait, Duration(500));
  EXPECT_EQ(limiter.take("b"), Duration(0));  // another source has its own bucket
  clock.advance_to(clock.now() + Duration(500));
  EXPECT_EQ(limiter.take("a"), Duration(0));
  EXPECT_GT(limiter.take("a"), Duration(0));
}

TEST(RateLimit, AFloodOfSourcesIsBoundedAndSharesOneBucket) {
  ManualClock clock(Timestamp(hours(1000)));
  SourceRateLimiter limiter(clock, {1, 2, 10});  // a table of 10 sources
  for (int i = 0; i < 1000; ++i)
    limiter.take("10.0." + std::to_string(i / 256) + "." + std::to_string(i % 256));
  // The table is full of busy sources: a newcomer shares the one bucket the flood drained.
  EXPECT_GT(limiter.take("192.0.2.1"), Duration(0));
  // Once they are idle again (full buckets), they are forgotten and newcomers get their own.
  clock.advance_to(clock.now() + seconds(5));
  EXPECT_EQ(limiter.take("192.0.2.1"), Duration(0));
  EXPECT_EQ(limiter.take("192.0.2.1"), Duration(0));
  EXPECT_GT(limiter.take("192.0.2.1"), Duration(0));
}

TEST(RateLimit, TheAddressOfARemote) {
  EXPECT_EQ(source_address("192.0.2.7:5144"), "192.0.2.7");
  EXPECT_EQ(source_address("[2001:db8::1]:443"), "2001:db8::1");
  EXPECT_EQ(source_address("[::1]:80"), "::1");
  EXPECT_TRUE(is_loopback("127.0.0.1"));
  EXPECT_TRUE(is_loopback("::1"));
  EXPECT_FALSE(is_loopback("192.0.2.7"));
}

TEST(RateLimit, OneSourceIsAnIpv4AddressOrAnIpv6Slash64) {
  EXPECT_EQ(source_key("192.0.2.7"), "192.0.2.7");
  EXPECT_EQ(source_key("::ffff:192.0.2.7"), "192.0.2.7");
  EXPECT_EQ(source_key("2001:db8:0:1::a"), "2001:db8:0:1::/64");
  EXPECT_EQ(source_key("2001:db8:0:1:ffff:ffff:ffff:ffff"), "2001:db8:0:1::/64");
  EXPECT_EQ(source_key("2001:DB8:0:1::b"), "2001:db8:0:1::/64");
  EXPECT_EQ(source_key("2001:db8:0:2::a"), "2001:db8:0:2::/64");
  EXPECT_EQ(source_key("not:an address"), "not:an address");
  EXPECT_EQ(source_key(""), "");
}

class DeviceLimitsTest : public ::testing::Test {
 protected:
  DeviceLimitsTest() {
    AuthOptions o;
    o.enrollment_tokens = {"factory-token"};
    o.max_pending = 5;
    o.max_pending_components = 2;
    auth = std::make_unique<DeviceAuth>(*f.service, f.clock,
                                        *security::TokenSigner::create(std::string(32, 'k')), o);
    add_device_api(router, *auth, *f.service, nullptr, {&enroll_limit, &login_limit});
  }

  Response post(const std::string& path, const json& body, const std::string& from) {
    Request r;
    r.method = "POST";
    r.target = path;
    r.body = body.dump();
    r.remote = from + ":40000";
    return router(r);
  }
  Response enroll(const std::string& id, const std::string& from, const std::string& token = {},
                  int components = 1) {
    json installed = json::object();
    for (int i = 0; i < components; ++i) installed["c" + std::to_string(i)] = "1.0.0";
    json body = {{"device_id", id},
                 {"device_type", "ctl"},
                 {"hardware_revision", "rev-a"},
                 {"public_key", to_base64url(key.public_key())},
                 {"installed", installed}};
    if (!token.empty()) body["enrollment_token"] = token;
    return post("/api/device/v1/enroll", body, from);
  }

  Fleet f;
  std::unique_ptr<DeviceAuth> auth;
  SourceRateLimiter enroll_limit{f.clock, {0.1, 3, 1000}};
  SourceRateLimiter login_limit{f.clock, {1, 4, 1000}};
  Router router;
  SigningKey key = std::move(SigningKey::generate()).value();
};

TEST_F(DeviceLimitsTest, EnrollmentsWithoutATokenAreLimitedPerSourceAndInTotal) {
  for (int i = 0; i < 3; ++i) EXPECT_EQ(enroll("p" + std::to_string(i), "192.0.2.1").status, 200);
  const Response limited = enroll("p3", "192.0.2.1");
  EXPECT_EQ(limited.status, 429) << limited.body;
  bool retry_after = false;
  for (const auto& [name, value] : limited.headers) retry_after |= name == "Retry-After";
  EXPECT_TRUE(retry_after);
  EXPECT_FALSE(f.service->device("p3").has_value());
  // A token is not limited, and another source has its own allowance.
  EXPECT_EQ(enroll("t1", "192.0.2.1", "factory-token").status, 200);
  EXPECT_EQ(enroll("p4", "198.51.100.9").status, 200);
  EXPECT_EQ(enroll("p5", "198.51.100.9").status, 200);
  EXPECT_EQ(f.service->pending_count(), 5u);
  // Five wait for an operator: the sixth is refused whatever its source, until one is decided.
  const Response full = enroll("p6", "203.0.113.5");
  EXPECT_EQ(full.status, 507) << full.body;
  EXPECT_NE(full.body.find("wait for an operator"), std::string::npos);
  EXPECT_FALSE(f.service->device("p6").has_value());
  ASSERT_EQ(f.service->device("p0")->installed.size(), 1u);
  ASSERT_TRUE(auth->reject("p0").ok());
  EXPECT_EQ(f.service->pending_count(), 4u);
  // A rejected device keeps only its identity: what it brought is dropped, in the store too.
  EXPECT_TRUE(f.service->device("p0")->installed.empty());
  EXPECT_TRUE((*f.store().get_device("p0"))->installed.empty());
  EXPECT_EQ(enroll("p0", "203.0.113.9").status, 403);
  EXPECT_EQ(enroll("p6", "203.0.113.5").status, 200);
  // What such a device may bring is bounded; with a token the model's limit applies.
  EXPECT_EQ(enroll("p7", "203.0.113.6", "", 3).status, 400);
  EXPECT_EQ(enroll("t2", "203.0.113.6", "factory-token", 3).status, 200);
  EXPECT_EQ(enroll("t3", "203.0.113.6", "factory-token", 65).status, 400);
  // The loopback is not limited (a local proxy, the simulator).
  ASSERT_TRUE(auth->accept("p1").ok());
  for (int i = 0; i < 10; ++i)
    EXPECT_EQ(post("/api/device/v1/auth/challenge", {{"device_id", "p1"}}, "127.0.0.1").status,
              200);
}

TEST_F(DeviceLimitsTest, AnIpv6SubscriberIsOneSourceForItsWholeSlash64) {
  // Three from one /64 use its burst, whatever the interface identifier.
  EXPECT_EQ(enroll("v0", "[2001:db8:0:1::a]").status, 200);
  EXPECT_EQ(enroll("v1", "[2001:db8:0:1::b]").status, 200);
  EXPECT_EQ(enroll("v2", "[2001:db8:0:1:1234:5678:9abc:def0]").status, 200);
  EXPECT_EQ(enroll("v3", "[2001:db8:0:1::c]").status, 429);
  EXPECT_FALSE(f.service->device("v3").has_value());
  // The neighbouring /64 is someone else.
  EXPECT_EQ(enroll("v4", "[2001:db8:0:2::a]").status, 200);
}

TEST_F(DeviceLimitsTest, LoginsAreLimitedPerSource) {
  ASSERT_EQ(enroll("d1", "198.51.100.1", "factory-token").status, 200);
  int ok = 0, limited = 0;
  for (int i = 0; i < 10; ++i) {
    const int status =
        post("/api/device/v1/auth/challenge", {{"device_id", "d1"}}, "192.0.2.1").status;
    ok += status == 200;
    limited += status == 429;
  }
  EXPECT_EQ(ok, 4);
  EXPECT_EQ(limited, 6);
  f.clock.advance(seconds(2));
  EXPECT_EQ(post("/api/device/v1/auth/challenge", {{"device_id", "d1"}}, "192.0.2.1").status, 200);
  // A forged answer counts against the same allowance.
  EXPECT_EQ(post("/api/device/v1/auth/token",
                 {{"device_id", "d1"}, {"challenge", "x"}, {"signature", "AA"}}, "192.0.2.1")
                .status,
            401);
  EXPECT_EQ(post("/api/device/v1/auth/token",
                 {{"device_id", "d1"}, {"challenge", "x"}, {"signature", "AA"}}, "192.0.2.1")
                .status,
            429);
  // Guessing enrollment tokens counts as logging in: the source's bucket (refilled to its
  // burst of 4 by now) allows 4 guesses, then 429.
  int guesses = 0;
  while (enroll("g" + std::to_string(guesses), "198.51.100.1", "guess").status == 401) ++guesses;
  EXPECT_EQ(guesses, 4);
  EXPECT_EQ(enroll("g9", "198.51.100.1", "guess").status, 429);
}

}  // namespace
}  // namespace drover::http
