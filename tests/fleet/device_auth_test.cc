#include "fleet/device_auth.h"

#include <gtest/gtest.h>

#include "../common/fleet_fixture.h"
#include "../common/forwarding_store.h"
#include "base/memory_file_system.h"
#include "fleet/audit_log.h"

namespace drover::testing {
namespace {

using security::SigningKey;

class DeviceAuthTest : public ::testing::Test {
 protected:
  DeviceAuthTest() { make_auth(); }

  void make_auth(AuthOptions o = {}) {
    o.enrollment_tokens = {"factory-token-1", "factory-token-2"};
    auth.reset();
    auth = std::make_unique<DeviceAuth>(*f.service, f.clock,
                                        *security::TokenSigner::create(std::string(32, 'x')), o);
  }

  EnrollRequest request(const std::string& id, const SigningKey& k, std::string token = {}) {
    EnrollRequest r;
    r.device_id = id;
    r.device_type = "ctl";
    r.hardware_revision = "rev-a";
    r.public_key = k.public_key();
    r.enrollment_token = std::move(token);
    r.installed = {{"firmware", "1.0.0"}};
    return r;
  }

  // The whole handshake: challenge, sign, authenticate.
  Result<IssuedToken> login(const std::string& id, const SigningKey& k) {
    auto c = auth->challenge(id);
    if (!c.ok()) return c.error();
    return auth->authenticate(id, *c, k.sign(DeviceAuth::challenge_message(id, *c)));
  }

  Fleet f;
  std::unique_ptr<DeviceAuth> auth;
  SigningKey key = std::move(SigningKey::generate()).value();
  SigningKey other_key = std::move(SigningKey::generate()).value();
};

TEST_F(DeviceAuthTest, ATokenAdmitsADeviceAtOnce) {
  EXPECT_EQ(*auth->enroll(request("dev-1", key, "factory-token-2")), Enrollment::kAccepted);
  auto token = login("dev-1", key);
  ASSERT_TRUE(token.ok()) << token.error().to_string();
  EXPECT_EQ(token->expires, f.clock.now() + minutes(15));
  EXPECT_EQ(*auth->authorize(token->token), "dev-1");
  auto d = f.service->device("dev-1");
  ASSERT_TRUE(d);
  EXPECT_EQ(d->public_key, security::to_base64url(key.public_key()));
  EXPECT_EQ(d->installed_version("firmware") != nullptr, true);
}

TEST_F(DeviceAuthTest, WithoutATokenADeviceWaitsForAnOperator) {
  EXPECT_EQ(*auth->enroll(request("dev-1", key)), Enrollment::kPending);
  EXPECT_EQ(login("dev-1", key).error().code, ErrorCode::kPermissionDenied);
  ASSERT_TRUE(auth->accept("dev-1").ok());
  EXPECT_TRUE(login("dev-1", key).ok());
  EXPECT_EQ(auth->accept("dev-1").error().code, ErrorCode::kFailedPrecondition);

  EXPECT_EQ(*auth->enroll(request("dev-2", key)), Enrollment::kPending);
  ASSERT_TRUE(auth->reject("dev-2").ok());
  EXPECT_EQ(login("dev-2", key).error().code, ErrorCode::kPermissionDenied);
  EXPECT_EQ(auth->enroll(request("dev-2", key, "factory-token-1")).error().code,
            ErrorCode::kPermissionDenied);  // a token does not undo a rejection
}

TEST_F(DeviceAuthTest, BadEnrollmentsAreRefusedAndWriteNothing) {
  EXPECT_EQ(auth->enroll(request("dev-1", key, "guessed")).error().code,
            ErrorCode::kUnauthenticated);
  EnrollRequest short_key = request("dev-1", key);
  short_key.public_key.pop_back();
  EXPECT_EQ(auth->enroll(short_key).error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(auth->enroll(request("../etc", key)).error().code, ErrorCode::kInvalidArgument);
  // 32 bytes that are no point of the curve (y = p), and the identity point.
  EnrollRequest no_point = request("dev-1", key, "factory-token-1");
  no_point.public_key = std::string(31, '\xff') + '\x7f';
  no_point.public_key[0] = '\xed';
  auto refused = auth->enroll(no_point);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(refused.error().message.find("not a point"), std::string::npos);
  no_point.public_key = std::string(1, '\x01') + std::string(31, '\0');
  EXPECT_EQ(auth->enroll(no_point).error().code, ErrorCode::kInvalidArgument);
  EXPECT_FALSE(f.service->device("dev-1").has_value());
  EXPECT_EQ(f.service->device_count(), 0u);
}

TEST_F(DeviceAuthTest, AnIdIsNotEnoughToTakeADeviceOver) {
  ASSERT_EQ(*auth->enroll(request("dev-1", key, "factory-token-1")), Enrollment::kAccepted);
  EXPECT_EQ(*auth->enroll(request("dev-1", key)), Enrollment::kAccepted);  // same key: no change
  EXPECT_EQ(auth->enroll(request("dev-1", other_key, "factory-token-1")).error().code,
            ErrorCode::kAlreadyExists);
  EXPECT_EQ(login("dev-1", other_key).error().code, ErrorCode::kUnauthenticated);
  // A device an operator provisioned, not yet enrolled: without a token no key is bound to
  // it, and it stays accepted for the device that brings the token.
  f.add_devices(1, "rev-a");
  const std::string provisioned = f.ids.back();
  EXPECT_EQ(auth->enroll(request(provisioned, other_key)).error().code,
            ErrorCode::kUnauthenticated);
  EXPECT_EQ(f.service->device(provisioned)->public_key, "");
  EXPECT_EQ(f.service->device(provisioned)->enrollment, Enrollment::kAccepted);
  EXPECT_EQ(*auth->enroll(request(provisioned, key, "factory-token-1")), Enrollment::kAccepted);
  EXPECT_TRUE(login(provisioned, key).ok());
}

// Someone enrols a device's id first, without a token: the real device, with its token,
// still gets in, and the squatter's key does not.
TEST_F(DeviceAuthTest, APendingClaimGivesWayToTheDeviceWithTheToken) {
  ASSERT_EQ(*auth->enroll(request("dev-9", other_key)), Enrollment::kPending);
  EXPECT_EQ(*auth->enroll(request("dev-9", key, "factory-token-2")), Enrollment::kAccepted);
  EXPECT_TRUE(login("dev-9", key).ok());
  EXPECT_EQ(login("dev-9", other_key).error().code, ErrorCode::kUnauthenticated);
  // Once accepted, the binding stands: a token does not let another key replace it.
  EXPECT_EQ(auth->enroll(request("dev-9", other_key, "factory-token-2")).error().code,
            ErrorCode::kAlreadyExists);
}

TEST_F(DeviceAuthTest, ChallengesAreSingleUseExpireAndMustBeSignedByTheKey) {
  ASSERT_TRUE(auth->enroll(request("dev-1", key, "factory-token-1")).ok());
  auto c = auth->challenge("dev-1");
  ASSERT_TRUE(c.ok());
  const std::string signed_c = key.sign(DeviceAuth::challenge_message("dev-1", *c));
  EXPECT_EQ(
      auth->authenticate("dev-1", *c, other_key.sign(DeviceAuth::challenge_message("dev-1", *c)))
          .error()
          .code,
      ErrorCode::kUnauthenticated);
  // The forged answer used nothing up: the device's own answer works, once.
  EXPECT_TRUE(auth->authenticate("dev-1", *c, signed_c).ok());
  EXPECT_EQ(auth->authenticate("dev-1", *c, signed_c).error().message,
            "the challenge was used already");
  c = auth->challenge("dev-1");
  f.clock.advance(seconds(61));
  EXPECT_EQ(auth->authenticate("dev-1", *c, key.sign(DeviceAuth::challenge_message("dev-1", *c)))
                .error()
                .message,
            "the challenge expired");
  EXPECT_EQ(auth->authenticate("dev-1", "made-up", "sig").error().code,
            ErrorCode::kUnauthenticated);
  EXPECT_EQ(auth->challenge("nobody").error().code, ErrorCode::kNotFound);
}

// Nobody can lock a device out of login: challenges asked for in its name by someone else,
// forged answers and bogus tokens change nothing for the challenge the device holds.
TEST_F(DeviceAuthTest, OthersCannotCancelADevicesChallenge) {
  ASSERT_TRUE(auth->enroll(request("dev-1", key, "factory-token-1")).ok());
  ASSERT_TRUE(auth->enroll(request("dev-2", other_key, "factory-token-1")).ok());
  auto mine = auth->challenge("dev-1");
  ASSERT_TRUE(mine.ok());
  for (int i = 0; i < 100; ++i) {
    auto theirs = auth->challenge("dev-1");  // an attacker asking in dev-1's name
    ASSERT_TRUE(theirs.ok());
    EXPECT_NE(*theirs, *mine);
    EXPECT_FALSE(auth->authenticate("dev-1", *theirs, "forged").ok());
    EXPECT_FALSE(auth->authenticate("dev-1", *mine, "forged").ok());
  }
  // Another device's challenge is not dev-1's, even with a valid signature over it.
  auto other = auth->challenge("dev-2");
  EXPECT_EQ(
      auth->authenticate("dev-1", *other, key.sign(DeviceAuth::challenge_message("dev-1", *other)))
          .error()
          .message,
      "not a challenge issued to this device");
  // Nor is the challenge of a device whose id extends this one's past a ':'.
  ASSERT_TRUE(auth->enroll(request("dev-1:x", other_key, "factory-token-1")).ok());
  auto longer = auth->challenge("dev-1:x");
  ASSERT_TRUE(longer.ok());
  EXPECT_EQ(auth->authenticate("dev-1", *longer,
                               key.sign(DeviceAuth::challenge_message("dev-1", *longer)))
                .error()
                .message,
            "not a challenge issued to this device");
  EXPECT_TRUE(
      auth->authenticate("dev-1", *mine, key.sign(DeviceAuth::challenge_message("dev-1", *mine)))
          .ok());
}

TEST_F(DeviceAuthTest, TokensSpeakForOneDeviceOnlyAndStopWhenItIsDecommissioned) {
  ASSERT_TRUE(auth->enroll(request("dev-a", key, "factory-token-1")).ok());
  ASSERT_TRUE(auth->enroll(request("dev-b", other_key, "factory-token-1")).ok());
  auto a = login("dev-a", key);
  auto b = login("dev-b", other_key);
  EXPECT_EQ(*auth->authorize(a->token), "dev-a");
  EXPECT_EQ(*auth->authorize(b->token), "dev-b");
  EXPECT_EQ(login("dev-b", key).error().code, ErrorCode::kUnauthenticated);  // A's key, B's id
  // Decommissioned: the token it already holds stops working at once.
  Device d = *f.service->device("dev-a");
  d.decommissioned = true;
  ASSERT_TRUE(f.service->provision({d}).ok());
  EXPECT_EQ(auth->authorize(a->token).error().code, ErrorCode::kPermissionDenied);
  // Expired and forged tokens.
  f.clock.advance(minutes(16));
  EXPECT_EQ(auth->authorize(b->token).error().code, ErrorCode::kUnauthenticated);
  EXPECT_EQ(auth->authorize("x.y.z").error().code, ErrorCode::kUnauthenticated);
}

TEST_F(DeviceAuthTest, KeyRotationNeedsTheCurrentKeyAndKeepsTheDevice) {
  ASSERT_TRUE(auth->enroll(request("dev-1", key, "factory-token-1")).ok());
  const std::string new_pub = other_key.public_key();
  EXPECT_EQ(auth->rotate_key("dev-1", new_pub,
                             other_key.sign(DeviceAuth::rotation_message("dev-1", new_pub)))
                .error()
                .code,
            ErrorCode::kUnauthenticated);  // signed by the new key, not the current one
  EXPECT_TRUE(login("dev-1", key).ok());
  ASSERT_TRUE(
      auth->rotate_key("dev-1", new_pub, key.sign(DeviceAuth::rotation_message("dev-1", new_pub)))
          .ok());
  EXPECT_EQ(login("dev-1", key).error().code, ErrorCode::kUnauthenticated);
  EXPECT_TRUE(login("dev-1", other_key).ok());
  EXPECT_EQ(f.service->device("dev-1")->installed_version("firmware") != nullptr, true);
}

// A rotation revokes the tokens issued before it (the old key may be why it rotated), also
// across a restart; bytes that are no key are refused, and the device keeps its key.
TEST_F(DeviceAuthTest, ARotationRevokesEarlierTokensAndRefusesBytesThatAreNoKey) {
  ASSERT_TRUE(auth->enroll(request("dev:1", key, "factory-token-1")).ok());
  auto before = login("dev:1", key);
  ASSERT_TRUE(before.ok());
  EXPECT_EQ(*auth->authorize(before->token), "dev:1");
  std::string not_a_key(32, '\0');  // y = 0: on the curve, but of order 4
  EXPECT_EQ(auth->rotate_key("dev:1", not_a_key,
                             key.sign(DeviceAuth::rotation_message("dev:1", not_a_key)))
                .error()
                .code,
            ErrorCode::kInvalidArgument);
  EXPECT_TRUE(auth->authorize(before->token).ok());  // nothing changed
  const std::string new_pub = other_key.public_key();
  ASSERT_TRUE(
      auth->rotate_key("dev:1", new_pub, key.sign(DeviceAuth::rotation_message("dev:1", new_pub)))
          .ok());
  auto stale = auth->authorize(before->token);
  ASSERT_FALSE(stale.ok());
  EXPECT_EQ(stale.error().code, ErrorCode::kUnauthenticated);
  EXPECT_NE(stale.error().message.find("rotated"), std::string::npos);
  auto after = login("dev:1", other_key);
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(*auth->authorize(after->token), "dev:1");
  f.restart();
  make_auth();
  EXPECT_EQ(auth->authorize(before->token).error().code, ErrorCode::kUnauthenticated);
  EXPECT_EQ(*auth->authorize(after->token), "dev:1");
}

TEST_F(DeviceAuthTest, IdentitiesSurviveARestart) {
  ASSERT_TRUE(auth->enroll(request("dev-1", key, "factory-token-1")).ok());
  f.restart();
  make_auth();
  EXPECT_TRUE(login("dev-1", key).ok());
}

// The record of used challenges lives in memory: a restart loses it, so a challenge from
// before one — even answered already, by the device itself — is not taken after it (the
// signing key is the same), while a fresh one is.
TEST_F(DeviceAuthTest, AChallengeFromBeforeARestartIsNotTakenAfterIt) {
  ASSERT_TRUE(auth->enroll(request("dev-1", key, "factory-token-1")).ok());
  auto used = auth->challenge("dev-1");
  auto unused = auth->challenge("dev-1");
  ASSERT_TRUE(used.ok() && unused.ok());
  const std::string answer = key.sign(DeviceAuth::challenge_message("dev-1", *used));
  ASSERT_TRUE(auth->authenticate("dev-1", *used, answer).ok());
  f.clock.advance(seconds(5));  // well inside the challenges' 60 s
  f.restart();
  make_auth();
  for (const std::string& c : {*used, *unused}) {
    auto replay =
        auth->authenticate("dev-1", c, key.sign(DeviceAuth::challenge_message("dev-1", c)));
    ASSERT_FALSE(replay.ok());
    EXPECT_EQ(replay.error().code, ErrorCode::kUnauthenticated);
    EXPECT_EQ(replay.error().message,
              "the challenge was issued before the server restarted; ask for a new one");
  }
  EXPECT_TRUE(login("dev-1", key).ok());
}

TEST_F(DeviceAuthTest, PendingEnrollmentsExpireAndFreeTheirPlace) {
  // A claim left from before enrollment times were kept: the first sweep gives it its time.
  Device legacy;
  legacy.id = "legacy";
  legacy.device_type = "ctl";
  legacy.hardware_revision = "rev-a";
  legacy.public_key = security::to_base64url(other_key.public_key());
  legacy.enrollment = Enrollment::kPending;
  ASSERT_TRUE(f.service->provision({legacy}).ok());
  std::vector<Result<size_t>> told;
  AuthOptions o;
  o.max_pending = 3;
  o.pending_lifetime = hours(24);
  o.pending_sweep = minutes(10);
  o.on_expiry = [&](const Result<size_t>& r) { told.push_back(r); };
  make_auth(o);
  const Timestamp start = f.clock.now();

  ASSERT_EQ(*auth->enroll(request("p-1", key)), Enrollment::kPending);
  EXPECT_EQ(f.service->device("p-1")->enrolled_at, start);
  f.clock.advance(hours(12));
  ASSERT_EQ(*auth->enroll(request("p-2", key)), Enrollment::kPending);
  ASSERT_EQ(*auth->enroll(request("a-1", key, "factory-token-1")), Enrollment::kAccepted);
  EXPECT_EQ(auth->enroll(request("p-3", key)).error().code, ErrorCode::kResourceExhausted);

  // The sweeps until p-1's day is over (the one at 24 h included) remove nothing and say
  // nothing.
  f.clock.advance(hours(12));
  EXPECT_TRUE(told.empty());
  EXPECT_EQ(f.service->pending_count(), 3u);
  EXPECT_EQ(f.service->device("legacy")->enrolled_at, start + minutes(10));
  EXPECT_EQ((*f.store().get_device("legacy"))->enrolled_at, start + minutes(10));
  // The first sweep after it: p-1 goes, p-2 stays; the legacy claim a sweep later.
  f.clock.advance(minutes(10));
  ASSERT_EQ(told.size(), 1u);
  ASSERT_TRUE(told[0].ok());
  EXPECT_EQ(*told[0], 1u);
  EXPECT_FALSE(f.service->device("p-1"));
  EXPECT_TRUE(f.service->device("legacy"));
  f.clock.advance(minutes(10));
  ASSERT_EQ(told.size(), 2u);
  EXPECT_EQ(*told[1], 1u);
  EXPECT_FALSE(f.service->device("legacy"));
  EXPECT_FALSE(f.store().get_device("p-1")->has_value());
  EXPECT_TRUE(f.store().get_device("p-2")->has_value());
  EXPECT_EQ(f.service->pending_count(), 1u);
  EXPECT_TRUE(login("a-1", key).ok());  // the registry's index still finds the rest
  // Their places are free, and an expired id may enroll again, with any key.
  EXPECT_EQ(*auth->enroll(request("p-3", key)), Enrollment::kPending);
  EXPECT_EQ(*auth->enroll(request("p-1", other_key)), Enrollment::kPending);
  EXPECT_EQ(f.service->device("p-1")->enrolled_at, f.clock.now());

  // Accepted and rejected devices never expire; nothing is told while nothing goes.
  ASSERT_TRUE(auth->reject("p-2").ok());
  ASSERT_TRUE(auth->accept("p-3").ok());
  ASSERT_TRUE(auth->accept("p-1").ok());
  f.clock.advance(days(3));
  EXPECT_EQ(told.size(), 2u);
  for (const char* id : {"a-1", "p-1", "p-2", "p-3"}) EXPECT_TRUE(f.service->device(id)) << id;
  // The removal was written: a restart does not bring them back.
  f.restart();
  make_auth(o);
  EXPECT_FALSE(f.service->device("legacy"));
  EXPECT_TRUE(login("p-1", other_key).ok());
}

TEST_F(DeviceAuthTest, ExpiringSomeOfManyDevicesKeepsEveryOtherOneFindable) {
  AuthOptions o;
  o.pending_lifetime = hours(1);
  make_auth(o);
  std::vector<std::string> ids;
  for (int i = 0; i < 500; ++i) {
    ids.push_back("dev-" + std::to_string(i));
    const bool pending = i % 3 == 0;
    ASSERT_TRUE(auth->enroll(request(ids.back(), key, pending ? "" : "factory-token-1")).ok());
  }
  f.clock.advance(hours(2));  // the sweeps ran; check directly as well
  EXPECT_EQ(*auth->expire_pending(), 0u);
  EXPECT_EQ(f.service->device_count(), 333u);
  for (int i = 0; i < 500; ++i) {
    const bool pending = i % 3 == 0;
    EXPECT_EQ(f.service->device(ids[i]).has_value(), !pending) << ids[i];
    CheckInRequest check_in;
    check_in.device_id = ids[i];
    auto answer = f.service->check_in(check_in);
    EXPECT_EQ(answer.ok(), !pending) << ids[i];
  }
}

TEST_F(DeviceAuthTest, ExpiryDuringARolloutLeavesItsDevicesTheirOffers) {
  AuthOptions o;
  o.pending_lifetime = hours(1);
  make_auth(o);
  // Strays enroll between the fleet's devices, so their removal moves half the fleet in the
  // registry.
  f.add_devices(20, "rev-a");  // accepted, running firmware 1.0.0
  for (int i = 0; i < 30; ++i) {
    EnrollRequest stray = request("stray-" + std::to_string(i), key);
    stray.installed = {{"firmware", "0." + std::to_string(i) + ".0"}};  // inventories of their own
    ASSERT_TRUE(auth->enroll(stray).ok());
  }
  f.add_devices(20, "rev-a");
  const std::string rollout = f.start(simple_plan({{"all", 100, 0, Duration(0)}}));
  // Some check in first (their cursors into the engine are set), on both sides of the strays.
  for (int i = 10; i < 30; ++i) ASSERT_TRUE(f.check_in(f.ids[i]));
  const size_t inventories = f.service->distinct_inventories();
  f.clock.advance(hours(2));
  EXPECT_EQ(f.service->pending_count(), 0u);
  EXPECT_EQ(f.service->device_count(), 40u);
  EXPECT_EQ(f.service->distinct_inventories(), inventories - 30);
  // The devices offered before get the same offer again; the others their first.
  for (const std::string& id : f.ids) {
    auto offer = f.check_in(id);
    ASSERT_TRUE(offer) << id;
    EXPECT_EQ(offer->rollout_id, rollout);
    EXPECT_EQ(f.state_of(rollout, id), DeploymentState::kOffered);
    EXPECT_EQ(f.service->device(id)->id, id);
  }
}

// A store whose writes fail while `failing` is set.
class FailingWrites final : public ForwardingStore {
 public:
  FailingWrites() : ForwardingStore(make_memory_store()) {}
  Status apply(const WriteBatch& b) override {
    if (failing) return Error{ErrorCode::kIo, "disk gone"};
    return ForwardingStore::apply(b);
  }
  bool failing = false;
};

TEST(DeviceAuthExpiry, AFailedSweepChangesNothingAndIsToldThenRetried) {
  auto owned = std::make_unique<FailingWrites>();
  FailingWrites& store = *owned;
  Fleet f(at("2026-06-01T12:00:00Z"), std::move(owned));
  std::vector<Result<size_t>> told;
  AuthOptions o;
  o.pending_lifetime = hours(1);
  o.pending_sweep = minutes(5);
  o.on_expiry = [&](const Result<size_t>& r) { told.push_back(r); };
  DeviceAuth auth(*f.service, f.clock, *security::TokenSigner::create(std::string(32, 'x')), o);
  const SigningKey key = std::move(SigningKey::generate()).value();
  EnrollRequest r;
  r.device_id = "stray";
  r.device_type = "ctl";
  r.hardware_revision = "rev-a";
  r.public_key = key.public_key();
  ASSERT_TRUE(auth.enroll(r).ok());
  store.failing = true;
  f.clock.advance(hours(1) + minutes(5));
  ASSERT_EQ(told.size(), 1u);
  ASSERT_FALSE(told[0].ok());
  EXPECT_EQ(told[0].error().code, ErrorCode::kIo);
  EXPECT_TRUE(f.service->device("stray"));
  EXPECT_EQ(f.service->pending_count(), 1u);
  store.failing = false;
  f.clock.advance(minutes(5));
  ASSERT_EQ(told.size(), 2u);
  EXPECT_EQ(*told[1], 1u);
  EXPECT_FALSE(f.service->device("stray"));
  EXPECT_FALSE(f.store().get_device("stray")->has_value());
}

// The audit log records an enrollment before the record is written; when the write is then
// refused, a second entry says so, and the log never claims an enrollment that did not
// happen without saying it failed.
TEST(DeviceAuthAudit, AnEnrollmentWhoseWriteFailsIsSaidToHaveFailed) {
  class DevicesFail : public ForwardingStore {
   public:
    using ForwardingStore::ForwardingStore;
    Status apply(const WriteBatch& b) override {
      if (fail && !b.devices.empty()) return io_error("disk full");
      return ForwardingStore::apply(b);
    }
    bool fail = false;
  };
  auto owned = std::make_unique<DevicesFail>(make_memory_store());
  DevicesFail* store = owned.get();
  Fleet f(at("2026-06-01T12:00:00Z"), std::move(owned));
  MemoryFileSystem fs;
  auto log = AuditLog::open(f.store(), fs, f.clock,
                            {.key_path = "/audit.key", .checkpoint_path = "/audit.checkpoint"});
  ASSERT_TRUE(log.ok()) << log.error().to_string();
  AuthOptions o;
  o.enrollment_tokens = {"factory-token-1"};
  o.audit = log->get();
  DeviceAuth auth(*f.service, f.clock, *security::TokenSigner::create(std::string(32, 'x')), o);
  const SigningKey key = std::move(SigningKey::generate()).value();
  EnrollRequest r;
  r.device_id = "dev-1";
  r.device_type = "ctl";
  r.hardware_revision = "rev-a";
  r.public_key = key.public_key();
  r.enrollment_token = "factory-token-1";

  store->fail = true;
  auto refused = auth.enroll(r);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::kIo);
  EXPECT_FALSE(f.service->device("dev-1").has_value());
  auto entries = (*log)->entries(0, 10);
  ASSERT_TRUE(entries.ok()) << entries.error().to_string();
  ASSERT_EQ(entries->size(), 2u);
  EXPECT_EQ((*entries)[0].event.action, "device.enrolled");
  EXPECT_EQ((*entries)[1].event.action, "device.enrollment_failed");
  EXPECT_EQ((*entries)[1].event.subject, "dev-1");
  EXPECT_NE((*entries)[1].event.detail.at("reason").find("disk full"), std::string::npos);

  store->fail = false;  // the device tries again and gets in: one more entry, no failure
  ASSERT_TRUE(auth.enroll(r).ok());
  entries = (*log)->entries(0, 10);
  ASSERT_TRUE(entries.ok());
  ASSERT_EQ(entries->size(), 3u);
  EXPECT_EQ((*entries)[2].event.action, "device.enrolled");
}

}  // namespace
}  // namespace drover::testing
