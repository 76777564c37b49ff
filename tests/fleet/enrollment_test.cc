// Device identity: scoped enrollment tokens, undoing a rejection, and factory identity
// (X.509 certificates of a manufacturer CA) — through DeviceAuth on a real registry.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "../common/factory_pki.h"
#include "../common/fleet_fixture.h"
#include "../common/forwarding_store.h"
#include "fleet/device_auth.h"
#include "model/codec.h"
#include "store/group_commit.h"

namespace drover::testing {
namespace {

using security::SigningKey;

SigningKey new_key() { return std::move(SigningKey::generate()).value(); }

// A store whose writes can be made to fail.
class FailingStore final : public ForwardingStore {
 public:
  using ForwardingStore::ForwardingStore;
  Status apply(const WriteBatch& b) override {
    if (fail) return io_error("disk gone");
    return ForwardingStore::apply(b);
  }
  std::atomic<bool> fail{false};
};

class EnrollmentTest : public ::testing::Test {
 protected:
  explicit EnrollmentTest(Timestamp start = at("2026-06-01T12:00:00Z"),
                          std::unique_ptr<Store> inner = make_memory_store())
      : failing_(new FailingStore(std::move(inner))), f(start, std::unique_ptr<Store>(failing_)) {
    make_auth();
  }

  void make_auth(std::optional<security::FactoryTrust> factory = std::nullopt) {
    AuthOptions o;
    o.enrollment_tokens = {"pre-shared-1"};
    o.store = &f.store();
    o.factory = std::move(factory);
    auth.reset();
    auth = std::make_unique<DeviceAuth>(*f.service, f.clock,
                                        *security::TokenSigner::create(std::string(32, 'x')), o);
  }

  // kConcurrentDevices devices dev-0, dev-1, ... enrolling with `token` at once, each on its
  // own thread (with `in_commit_scope`, as drover serve runs them: answered once durable);
  // how many were accepted.
  static constexpr int kConcurrentDevices = 16;
  int enroll_at_once(const std::string& token, bool in_commit_scope) {
    std::vector<SigningKey> keys;
    keys.reserve(kConcurrentDevices);
    for (int i = 0; i < kConcurrentDevices; ++i) keys.push_back(new_key());
    std::atomic<int> accepted{0};
    std::vector<std::thread> threads;
    threads.reserve(kConcurrentDevices);
    for (int i = 0; i < kConcurrentDevices; ++i) {
      threads.emplace_back([&, i] {
        std::optional<CommitScope> scope;
        if (in_commit_scope) scope.emplace();
        auto r = auth->enroll(request("dev-" + std::to_string(i), keys[i], token));
        if (r.ok() && (!scope || scope->wait().ok())) ++accepted;
      });
    }
    for (auto& th : threads) th.join();
    return accepted.load();
  }

  EnrollRequest request(const std::string& id, const SigningKey& k, std::string token = {},
                        std::string type = "ctl", std::string revision = "rev-a") {
    EnrollRequest r;
    r.device_id = id;
    r.device_type = std::move(type);
    r.hardware_revision = std::move(revision);
    r.public_key = k.public_key();
    r.enrollment_token = std::move(token);
    r.installed = {{"firmware", "1.0.0"}};
    return r;
  }

  CreatedEnrollmentToken make_token(EnrollmentTokenSpec spec) {
    if (spec.name.empty()) spec.name = "line-3";
    auto t = auth->create_enrollment_token(std::move(spec));
    EXPECT_TRUE(t.ok()) << t.error().to_string();
    return std::move(t).value();
  }

  uint64_t uses(const std::string& id) { return f.store().get_enrollment_token(id).value()->uses; }

  Result<IssuedToken> login(const std::string& id, const SigningKey& k) {
    auto c = auth->challenge(id);
    if (!c.ok()) return c.error();
    return auth->authenticate(id, *c, k.sign(DeviceAuth::challenge_message(id, *c)));
  }

  FailingStore* failing_;  // owned by f
  Fleet f;
  std::unique_ptr<DeviceAuth> auth;
  SigningKey key = new_key();
};

TEST_F(EnrollmentTest, AScopedTokenAdmitsOnlyItsDeviceTypesAndRevisions) {
  EnrollmentTokenSpec t_spec;
  t_spec.device_types = {"ctl"};
  t_spec.hardware_revisions = {"rev-a", "rev-b"};
  const auto t = make_token(t_spec);
  auto wrong_type = auth->enroll(request("dev-1", key, t.text, "pump"));
  ASSERT_FALSE(wrong_type.ok());
  EXPECT_EQ(wrong_type.error().code, ErrorCode::kPermissionDenied);
  EXPECT_NE(wrong_type.error().message.find("device type 'pump'"), std::string::npos)
      << wrong_type.error().message;
  EXPECT_EQ(auth->enroll(request("dev-1", key, t.text, "ctl", "rev-c")).error().code,
            ErrorCode::kPermissionDenied);
  // Refused: nothing written, no use counted.
  EXPECT_FALSE(f.service->device("dev-1"));
  EXPECT_EQ(uses(t.record.id), 0u);

  EXPECT_EQ(*auth->enroll(request("dev-1", key, t.text, "ctl", "rev-b")), Enrollment::kAccepted);
  const Device d = *f.service->device("dev-1");
  EXPECT_EQ(d.enrolled_by, "token:" + t.record.id);
  EXPECT_EQ(d.hardware_revision, "rev-b");
  EXPECT_EQ(uses(t.record.id), 1u);
  EXPECT_TRUE(login("dev-1", key).ok());
}

TEST_F(EnrollmentTest, UsesAreLimitedAndCountedOncePerDevice) {
  EnrollmentTokenSpec t_spec;
  t_spec.max_uses = 2;
  const auto t = make_token(t_spec);
  const SigningKey k2 = new_key();
  const SigningKey k3 = new_key();
  EXPECT_EQ(*auth->enroll(request("dev-1", key, t.text)), Enrollment::kAccepted);
  // Enrolling again with the same key changes nothing and uses nothing.
  EXPECT_EQ(*auth->enroll(request("dev-1", key, t.text)), Enrollment::kAccepted);
  EXPECT_EQ(uses(t.record.id), 1u);
  EXPECT_EQ(*auth->enroll(request("dev-2", k2, t.text)), Enrollment::kAccepted);
  auto third = auth->enroll(request("dev-3", k3, t.text));
  ASSERT_FALSE(third.ok());
  EXPECT_EQ(third.error().code, ErrorCode::kUnauthenticated);
  EXPECT_NE(third.error().message.find("used up (2 of 2"), std::string::npos)
      << third.error().message;
  EXPECT_FALSE(f.service->device("dev-3"));
  EXPECT_EQ(uses(t.record.id), 2u);
}

// A device enrolls again each time its agent starts. With the key it is enrolled with, that
// binds nothing and needs nothing: the single-use token it came with (used up by it), one
// since expired or revoked, or a wrong one, must not lock it out after a restart — while
// the same token still admits no other device and binds no other key.
TEST_F(EnrollmentTest, ADeviceComesBackAfterItsTokenIsUsedUpExpiredOrRevoked) {
  EnrollmentTokenSpec once;
  once.max_uses = 1;
  once.lifetime = hours(1);
  const auto t = make_token(once);
  EXPECT_EQ(*auth->enroll(request("dev-1", key, t.text)), Enrollment::kAccepted);
  EXPECT_EQ(*auth->enroll(request("dev-1", key, t.text)), Enrollment::kAccepted);  // used up
  EXPECT_EQ(uses(t.record.id), 1u);
  const SigningKey other = new_key();
  auto second = auth->enroll(request("dev-2", other, t.text));
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.error().message.find("used up"), std::string::npos);
  f.clock.advance(hours(2));
  EXPECT_EQ(*auth->enroll(request("dev-1", key, t.text)), Enrollment::kAccepted);  // expired
  ASSERT_TRUE(auth->revoke_enrollment_token(t.record.id).ok());
  EXPECT_EQ(*auth->enroll(request("dev-1", key, t.text)), Enrollment::kAccepted);  // revoked
  EXPECT_EQ(*auth->enroll(request("dev-1", key, "pre-shared-2")), Enrollment::kAccepted);  // wrong
  // Another key under the id is still judged by the token, and refused.
  auto taken = auth->enroll(request("dev-1", other, t.text));
  ASSERT_FALSE(taken.ok());
  EXPECT_EQ(taken.error().code, ErrorCode::kUnauthenticated);
  EXPECT_EQ(f.service->device("dev-1")->public_key, security::to_base64url(key.public_key()));
  EXPECT_TRUE(login("dev-1", key).ok());
  // A device not accepted (pending) gets no such pass: its token is judged.
  EXPECT_EQ(*auth->enroll(request("dev-3", other, "")), Enrollment::kPending);
  auto pending = auth->enroll(request("dev-3", other, t.text));
  ASSERT_FALSE(pending.ok());
  EXPECT_EQ(pending.error().code, ErrorCode::kUnauthenticated);
}

TEST_F(EnrollmentTest, ConcurrentEnrollmentsNeverExceedTheLimit) {
  EnrollmentTokenSpec t_spec;
  t_spec.max_uses = 5;
  const auto t = make_token(t_spec);
  EXPECT_EQ(enroll_at_once(t.text, /*in_commit_scope=*/false), 5);
  EXPECT_EQ(uses(t.record.id), 5u);
  size_t enrolled = 0;
  for (int i = 0; i < kConcurrentDevices; ++i)
    enrolled += f.service->device("dev-" + std::to_string(i)) ? 1 : 0;
  EXPECT_EQ(enrolled, 5u);
}

// As `drover serve` runs: writes queued by a group commit (slow here), each enrollment in its
// own commit scope on its own thread, answered before its write is durable. Uses and
// revocations are decided on what was accepted, not on what the store shows yet.
class SlowStore final : public ForwardingStore {
 public:
  using ForwardingStore::ForwardingStore;
  Status apply(const WriteBatch& b) override {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    return ForwardingStore::apply(b);
  }
};

class GroupCommitEnrollmentTest : public EnrollmentTest {
 protected:
  GroupCommitEnrollmentTest()
      : EnrollmentTest(
            at("2026-06-01T12:00:00Z"),
            std::make_unique<GroupCommitStore>(std::make_unique<SlowStore>(make_memory_store()))) {}
};

TEST_F(GroupCommitEnrollmentTest, UsesAndRevocationsHoldBeforeTheirWritesAreDurable) {
  EnrollmentTokenSpec spec;
  spec.max_uses = 5;
  const auto t = make_token(spec);
  EXPECT_EQ(enroll_at_once(t.text, /*in_commit_scope=*/true), 5);
  ASSERT_TRUE(f.store().settle_all().ok());
  EXPECT_EQ(uses(t.record.id), 5u);

  // A revocation answered (queued, not yet durable) stops the next enrollment at once.
  EnrollmentTokenSpec other_spec;
  other_spec.name = "other";
  const auto other = make_token(other_spec);
  {
    CommitScope scope;
    ASSERT_TRUE(auth->revoke_enrollment_token(other.record.id).ok());
    const SigningKey k = new_key();
    std::thread([&] {
      CommitScope inner;
      auto r = auth->enroll(request("late", k, other.text));
      ASSERT_FALSE(r.ok());
      EXPECT_NE(r.error().message.find("was revoked"), std::string::npos) << r.error().message;
    }).join();
  }
  ASSERT_TRUE(f.store().settle_all().ok());
  EXPECT_NE(f.store().get_enrollment_token(other.record.id).value()->revoked_at, Timestamp{});
  EXPECT_EQ(f.store().get_enrollment_token(other.record.id).value()->uses, 0u);
}

TEST_F(EnrollmentTest, AClaimWithTheDevicesOwnKeyIsRebuiltFromTheVouchedRequest) {
  // Public keys are public: someone claims the id with the real device's key, as a pump.
  EnrollRequest fake = request("dev-1", key, "", "pump", "rev-z");
  fake.site = "open";
  fake.installed = {{"firmware", "0.0.1"}};
  EXPECT_EQ(*auth->enroll(fake), Enrollment::kPending);
  EnrollmentTokenSpec spec;
  spec.device_types = {"ctl", "pump"};
  const auto t = make_token(spec);
  EXPECT_EQ(*auth->enroll(request("dev-1", key, t.text)), Enrollment::kAccepted);
  const Device d = *f.service->device("dev-1");
  EXPECT_EQ(d.device_type, "ctl");
  EXPECT_EQ(d.hardware_revision, "rev-a");
  EXPECT_EQ(d.site, "");
  EXPECT_EQ(*d.installed_version("firmware"), "1.0.0");
}

TEST_F(EnrollmentTest, TheUseIsWrittenWithTheDeviceOrNotAtAll) {
  EnrollmentTokenSpec t_spec;
  t_spec.max_uses = 1;
  const auto t = make_token(t_spec);
  failing_->fail = true;
  EXPECT_EQ(auth->enroll(request("dev-1", key, t.text)).error().code, ErrorCode::kIo);
  failing_->fail = false;
  EXPECT_FALSE(f.service->device("dev-1"));
  EXPECT_EQ(uses(t.record.id), 0u);
  // The one use is still there for the device.
  EXPECT_EQ(*auth->enroll(request("dev-1", key, t.text)), Enrollment::kAccepted);
  EXPECT_EQ(uses(t.record.id), 1u);
}

TEST_F(EnrollmentTest, ExpiredRevokedAndWrongTokensAreRefused) {
  EnrollmentTokenSpec t_spec;
  t_spec.lifetime = hours(1);
  const auto t = make_token(t_spec);
  EnrollmentTokenSpec forever_spec;
  forever_spec.name = "forever";
  const auto forever = make_token(forever_spec);
  // The right id with a wrong secret: "not valid", and nothing more.
  std::string wrong = t.text;
  wrong.back() = wrong.back() == 'A' ? 'B' : 'A';
  auto refused = auth->enroll(request("dev-1", key, wrong));
  EXPECT_EQ(refused.error().code, ErrorCode::kUnauthenticated);
  EXPECT_EQ(refused.error().message, "the enrollment token is not valid");
  EXPECT_EQ(
      auth->enroll(request("dev-1", key, "drover_enroll_0000000000000000_" + std::string(43, 'a')))
          .error()
          .code,
      ErrorCode::kUnauthenticated);

  f.clock.advance(hours(1));
  auto expired = auth->enroll(request("dev-1", key, t.text));
  EXPECT_EQ(expired.error().code, ErrorCode::kUnauthenticated);
  EXPECT_NE(expired.error().message.find("has expired"), std::string::npos);

  auto revoked = auth->revoke_enrollment_token(forever.record.id);
  ASSERT_TRUE(revoked.ok());
  EXPECT_EQ(revoked->revoked_at, f.clock.now());
  f.clock.advance(minutes(1));
  EXPECT_EQ(auth->revoke_enrollment_token(forever.record.id)->revoked_at, revoked->revoked_at);
  EXPECT_NE(auth->enroll(request("dev-1", key, forever.text)).error().message.find("was revoked"),
            std::string::npos);
  EXPECT_EQ(auth->revoke_enrollment_token("0123456789abcdef").error().code, ErrorCode::kNotFound);
  EXPECT_FALSE(f.service->device("dev-1"));
}

TEST_F(EnrollmentTest, ADecommissionedIdDoesNotEnrollAgain) {
  const auto t = make_token(EnrollmentTokenSpec{});
  EXPECT_EQ(*auth->enroll(request("dev-1", key, t.text)), Enrollment::kAccepted);
  ASSERT_TRUE(f.service->decommission("dev-1").ok());
  const SigningKey k2 = new_key();
  EXPECT_EQ(auth->enroll(request("dev-1", k2, t.text)).error().code,
            ErrorCode::kFailedPrecondition);
  EXPECT_EQ(auth->enroll(request("dev-1", key, "pre-shared-1")).error().code,
            ErrorCode::kFailedPrecondition);
  EXPECT_EQ(uses(t.record.id), 1u);
}

TEST_F(EnrollmentTest, OnlyTheHashIsStored) {
  EnrollmentTokenSpec t_spec;
  const auto t = make_token(t_spec);
  const auto all = auth->enrollment_tokens();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 1u);
  EXPECT_EQ(all->front().secret_sha256, security::to_hex(security::sha256(t.text)));
  // The secret follows the id and its '_' (the secret's own base64url may hold a '_' too).
  const size_t id_at = t.text.find(t.record.id);
  ASSERT_NE(id_at, std::string::npos);
  const std::string secret = t.text.substr(id_at + t.record.id.size() + 1);
  ASSERT_GE(secret.size(), 40u) << t.text;
  EXPECT_EQ(to_json(all->front()).find(secret), std::string::npos);
  EXPECT_EQ(to_json(all->front()).find(t.text), std::string::npos);
}

TEST_F(EnrollmentTest, ASiteScopedTokenPlacesOrChecksTheDevicesSite) {
  EnrollmentTokenSpec one_spec;
  one_spec.name = "one";
  one_spec.sites = {"open"};
  const auto one = make_token(one_spec);
  EnrollmentTokenSpec two_spec;
  two_spec.name = "two";
  two_spec.sites = {"north", "open"};
  const auto two = make_token(two_spec);
  EXPECT_EQ(*auth->enroll(request("dev-1", key, one.text)), Enrollment::kAccepted);
  EXPECT_EQ(f.service->device("dev-1")->site, "open");

  const SigningKey k2 = new_key();
  auto unnamed = auth->enroll(request("dev-2", k2, two.text));
  EXPECT_EQ(unnamed.error().code, ErrorCode::kPermissionDenied);
  EnrollRequest elsewhere = request("dev-2", k2, two.text);
  elsewhere.site = "south";
  EXPECT_EQ(auth->enroll(elsewhere).error().code, ErrorCode::kPermissionDenied);
  elsewhere.site = "north";
  EXPECT_EQ(*auth->enroll(elsewhere), Enrollment::kAccepted);
  EXPECT_EQ(f.service->device("dev-2")->site, "north");
}

TEST_F(EnrollmentTest, AProvisionedDeviceIsCheckedAsTheOperatorRecordedIt) {
  Device d;
  d.id = "dev-1";
  d.device_type = "pump";
  d.hardware_revision = "rev-a";
  ASSERT_TRUE(f.service->provision({d}).ok());
  EnrollmentTokenSpec t_spec;
  t_spec.device_types = {"ctl"};
  const auto t = make_token(t_spec);
  // The request claims "ctl"; the record says "pump": the record is what the token admits.
  EXPECT_EQ(auth->enroll(request("dev-1", key, t.text, "ctl")).error().code,
            ErrorCode::kPermissionDenied);
  EXPECT_TRUE(f.service->device("dev-1")->public_key.empty());
}

TEST_F(EnrollmentTest, ARejectedClaimGivesWayToAVouchedDeviceAndAnAdminCanUndoIt) {
  // Someone claims the real device's id first, with their own key and type; it is rejected.
  const SigningKey squatter = new_key();
  EXPECT_EQ(*auth->enroll(request("dev-1", squatter, "", "pump", "rev-z")), Enrollment::kPending);
  ASSERT_TRUE(auth->reject("dev-1").ok());
  EXPECT_EQ(f.service->device("dev-1")->enrolled_by, "claim");
  // The squatter's key stays refused, token or not.
  EnrollmentTokenSpec t_spec;
  const auto t = make_token(t_spec);
  EXPECT_EQ(auth->enroll(request("dev-1", squatter, t.text, "pump", "rev-z")).error().code,
            ErrorCode::kPermissionDenied);
  // The real device, with a token, takes its id back: its own type and revision.
  EXPECT_EQ(*auth->enroll(request("dev-1", key, t.text)), Enrollment::kAccepted);
  const Device d = *f.service->device("dev-1");
  EXPECT_EQ(d.device_type, "ctl");
  EXPECT_EQ(d.hardware_revision, "rev-a");
  EXPECT_EQ(d.public_key, security::to_base64url(key.public_key()));
  EXPECT_TRUE(login("dev-1", key).ok());
  EXPECT_EQ(auth->unreject("dev-1").error().code, ErrorCode::kFailedPrecondition);

  // A real device rejected by mistake: an admin undoes it, an operator accepts it.
  const SigningKey k2 = new_key();
  EXPECT_EQ(*auth->enroll(request("dev-2", k2)), Enrollment::kPending);
  ASSERT_TRUE(auth->reject("dev-2").ok());
  EXPECT_EQ(login("dev-2", k2).error().code, ErrorCode::kPermissionDenied);
  f.clock.advance(hours(2));
  ASSERT_TRUE(auth->unreject("dev-2").ok());
  EXPECT_EQ(f.service->device("dev-2")->enrollment, Enrollment::kPending);
  EXPECT_EQ(f.service->device("dev-2")->enrolled_at, f.clock.now());
  ASSERT_TRUE(auth->accept("dev-2").ok());
  EXPECT_TRUE(login("dev-2", k2).ok());
  EXPECT_EQ(auth->unreject("nobody").error().code, ErrorCode::kNotFound);
}

// Factory identity runs on the wall clock: the certificates are valid for two days from now.
class FactoryIdentityTest : public EnrollmentTest {
 protected:
  FactoryIdentityTest()
      // A few minutes on: certificates made during the test are valid from when they are made.
      : EnrollmentTest(std::chrono::time_point_cast<Duration>(std::chrono::system_clock::now()) +
                       minutes(5)) {
    EXPECT_TRUE(pki.ok());
    auto trust = security::FactoryTrust::from_pem({FactoryPki::read(pki.pem("maker-ca"))});
    EXPECT_TRUE(trust.ok()) << trust.error().to_string();
    make_auth(std::move(*trust));
  }

  // A request for `id` signed with the key of certificate `cert`.
  EnrollRequest factory_request(const std::string& id, const std::string& cert, const SigningKey& k,
                                std::string type = "ctl", std::string revision = "rev-a") {
    EnrollRequest r = request(id, k, "", std::move(type), std::move(revision));
    r.factory_certificate = pki.chain(cert);
    r.factory_signature = security::sign_with_private_key(
                              FactoryPki::read(pki.key(cert)),
                              security::factory_enrollment_message(
                                  r.device_id, r.device_type, r.hardware_revision, r.public_key))
                              .value();
    return r;
  }

  FactoryPki pki;
};

TEST_F(FactoryIdentityTest, ADeviceWithACertificateEnrollsWithoutASharedSecret) {
  ASSERT_TRUE(pki.device("dev-1", "/CN=dev-1/OU=type=ctl/OU=revision=rev-a"));
  EXPECT_EQ(*auth->enroll(factory_request("dev-1", "dev-1", key)), Enrollment::kAccepted);
  const Device d = *f.service->device("dev-1");
  EXPECT_TRUE(d.enrolled_by.starts_with("factory:")) << d.enrolled_by;
  EXPECT_EQ(d.enrolled_by.size(), 8u + 64u);
  EXPECT_TRUE(login("dev-1", key).ok());
}

// Its certificate expired (they are valid for two days here), a device enrolled on it still
// comes back with its key; a new device with such a certificate does not get in.
TEST_F(FactoryIdentityTest, ADeviceComesBackAfterItsCertificateExpired) {
  ASSERT_TRUE(pki.device("dev-1", "/CN=dev-1/OU=type=ctl/OU=revision=rev-a"));
  ASSERT_TRUE(pki.device("dev-2", "/CN=dev-2/OU=type=ctl/OU=revision=rev-a"));
  EXPECT_EQ(*auth->enroll(factory_request("dev-1", "dev-1", key)), Enrollment::kAccepted);
  f.clock.advance(days(3));
  EXPECT_EQ(*auth->enroll(factory_request("dev-1", "dev-1", key)), Enrollment::kAccepted);
  EXPECT_TRUE(login("dev-1", key).ok());
  const SigningKey k2 = new_key();
  auto late = auth->enroll(factory_request("dev-2", "dev-2", k2));
  ASSERT_FALSE(late.ok());
  EXPECT_EQ(late.error().code, ErrorCode::kUnauthenticated) << late.error().to_string();
  EXPECT_FALSE(f.service->device("dev-2"));
}

TEST_F(FactoryIdentityTest, Ed25519AndRsaDeviceKeysWorkToo) {
  ASSERT_TRUE(
      pki.device("dev-ed", "/CN=dev-ed/OU=type=ctl/OU=revision=rev-a", "maker-ca", "ed25519"));
  ASSERT_TRUE(
      pki.device("dev-rsa", "/CN=dev-rsa/OU=type=ctl/OU=revision=rev-a", "maker-int", "rsa"));
  EXPECT_EQ(*auth->enroll(factory_request("dev-ed", "dev-ed", key)), Enrollment::kAccepted);
  const SigningKey k2 = new_key();
  EXPECT_EQ(*auth->enroll(factory_request("dev-rsa", "dev-rsa", k2)), Enrollment::kAccepted);
}

TEST_F(FactoryIdentityTest, TheCertificateBindsIdTypeAndRevision) {
  ASSERT_TRUE(pki.device("dev-1", "/CN=dev-1/OU=type=ctl/OU=revision=rev-a"));
  // Another id, type or revision than the certificate names — signed by its key all the same.
  for (const auto& [id, type, revision] :
       {std::tuple<std::string, std::string, std::string>{"dev-2", "ctl", "rev-a"},
        {"dev-1", "pump", "rev-a"},
        {"dev-1", "ctl", "rev-b"}}) {
    auto r = auth->enroll(factory_request(id, "dev-1", key, type, revision));
    ASSERT_FALSE(r.ok()) << id << " " << type << " " << revision;
    EXPECT_EQ(r.error().code, ErrorCode::kUnauthenticated) << r.error().message;
  }
  // A provisioned record of another type: neither the record nor the certificate wins.
  Device d;
  d.id = "dev-1";
  d.device_type = "pump";
  d.hardware_revision = "rev-a";
  ASSERT_TRUE(f.service->provision({d}).ok());
  EXPECT_EQ(auth->enroll(factory_request("dev-1", "dev-1", key)).error().code,
            ErrorCode::kFailedPrecondition);
  EXPECT_TRUE(f.service->device("dev-1")->public_key.empty());
}

TEST_F(FactoryIdentityTest, ForgedStolenAndForeignCertificatesAreRefused) {
  ASSERT_TRUE(pki.device("dev-1", "/CN=dev-1/OU=type=ctl/OU=revision=rev-a"));
  ASSERT_TRUE(pki.device("rogue", "/CN=dev-1/OU=type=ctl/OU=revision=rev-a", "rogue-ca"));
  ASSERT_TRUE(pki.device("no-ou", "/CN=dev-1"));
  ASSERT_TRUE(pki.device("signer", "/CN=dev-1/OU=type=ctl/OU=revision=rev-a", "maker-int", "ec",
                         "basicConstraints=CA:FALSE\nkeyUsage=critical,keyEncipherment\n"));
  const auto code = [&](const EnrollRequest& r) { return auth->enroll(r).error().code; };
  // Refused as unauthenticated, for the reason named.
  const auto refused_for = [&](const EnrollRequest& r, const std::string& why) {
    auto e = auth->enroll(r);
    if (e.ok()) return ::testing::AssertionFailure() << "accepted";
    if (e.error().code != ErrorCode::kUnauthenticated ||
        e.error().message.find(why) == std::string::npos) {
      return ::testing::AssertionFailure() << e.error().to_string();
    }
    return ::testing::AssertionSuccess();
  };

  // Another CA's certificate.
  EXPECT_TRUE(refused_for(factory_request("dev-1", "rogue", key), "the chain does not verify"));
  // The real certificate (public), signed by someone without its key.
  EnrollRequest stolen = factory_request("dev-1", "dev-1", key);
  stolen.factory_signature = factory_request("dev-1", "rogue", key).factory_signature;
  EXPECT_TRUE(refused_for(stolen, "not signed by the certificate's key"));
  // A signature of another device key: the enrollment's key is what is signed.
  EnrollRequest swapped = factory_request("dev-1", "dev-1", key);
  swapped.public_key = new_key().public_key();
  EXPECT_TRUE(refused_for(swapped, "not signed by the certificate's key"));
  // Without the intermediate the chain does not reach the root.
  EnrollRequest leaf_only = factory_request("dev-1", "dev-1", key);
  leaf_only.factory_certificate = FactoryPki::read(pki.pem("dev-1"));
  EXPECT_TRUE(refused_for(leaf_only, "unable to get local issuer certificate"));
  // The intermediate CA itself, signing for a device.
  EnrollRequest ca = factory_request("dev-1", "dev-1", key);
  ca.factory_certificate =
      FactoryPki::read(pki.pem("maker-int")) + FactoryPki::read(pki.pem("maker-ca"));
  EXPECT_TRUE(refused_for(ca, "a CA certificate cannot enroll"));
  EXPECT_TRUE(refused_for(factory_request("dev-1", "signer", key), "key usage"));
  EXPECT_EQ(code(factory_request("dev-1", "no-ou", key)), ErrorCode::kInvalidArgument);
  EnrollRequest garbage = factory_request("dev-1", "dev-1", key);
  garbage.factory_certificate = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
  EXPECT_EQ(code(garbage), ErrorCode::kInvalidArgument);
  EnrollRequest huge = factory_request("dev-1", "dev-1", key);
  huge.factory_certificate = std::string(security::kMaxChainBytes + 1, 'A');
  EXPECT_EQ(code(huge), ErrorCode::kInvalidArgument);
  EXPECT_FALSE(f.service->device("dev-1"));

  // Expired: the server's clock is what counts.
  f.clock.advance(hours(72));
  auto expired = auth->enroll(factory_request("dev-1", "dev-1", key));
  ASSERT_FALSE(expired.ok());
  EXPECT_EQ(expired.error().code, ErrorCode::kUnauthenticated);
  EXPECT_NE(expired.error().message.find("expired"), std::string::npos) << expired.error().message;
  EXPECT_FALSE(f.service->device("dev-1"));
}

TEST_F(FactoryIdentityTest, AFactoryIdentityWinsOverAClaimAndNeedsATrustedCa) {
  ASSERT_TRUE(pki.device("dev-1", "/CN=dev-1/OU=type=ctl/OU=revision=rev-a"));
  const SigningKey squatter = new_key();
  EXPECT_EQ(*auth->enroll(request("dev-1", squatter, "", "pump", "rev-z")), Enrollment::kPending);
  EXPECT_EQ(*auth->enroll(factory_request("dev-1", "dev-1", key)), Enrollment::kAccepted);
  EXPECT_EQ(f.service->device("dev-1")->device_type, "ctl");
  EXPECT_EQ(login("dev-1", squatter).error().code, ErrorCode::kUnauthenticated);

  make_auth(std::nullopt);  // a server that trusts no manufacturer
  const SigningKey k2 = new_key();
  ASSERT_TRUE(pki.device("dev-2", "/CN=dev-2/OU=type=ctl/OU=revision=rev-a"));
  EXPECT_EQ(auth->enroll(factory_request("dev-2", "dev-2", k2)).error().code,
            ErrorCode::kUnauthenticated);
}

TEST(FactoryTrust, OnlyCaCertificatesAreTrusted) {
  FactoryPki pki;
  ASSERT_TRUE(pki.ok());
  ASSERT_TRUE(pki.device("dev-1", "/CN=dev-1/OU=type=ctl/OU=revision=rev-a"));
  EXPECT_EQ(security::FactoryTrust::from_pem({FactoryPki::read(pki.pem("dev-1"))}).error().code,
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(security::FactoryTrust::from_pem({"not a certificate"}).error().code,
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(security::FactoryTrust::from_pem({}).error().code, ErrorCode::kInvalidArgument);
  EXPECT_TRUE(security::FactoryTrust::from_pem(
                  {FactoryPki::read(pki.pem("maker-ca")) + FactoryPki::read(pki.pem("maker-int"))})
                  .ok());
}

}  // namespace
}  // namespace drover::testing
