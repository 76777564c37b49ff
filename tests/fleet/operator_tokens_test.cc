#include "fleet/operator_tokens.h"

#include <gtest/gtest.h>

#include <set>

#include "../common/fleet_fixture.h"
#include "../common/forwarding_store.h"
#include "model/codec.h"
#include "security/crypto.h"

namespace drover::testing {
namespace {

constexpr std::string_view kPrefix = "drover_";
constexpr size_t kTextChars = 7 + 16 + 1 + 43;

bool is_lower_hex(std::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

bool is_base64url(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
  });
}

// A store whose token reads fail on cue.
class FlakyTokenStore final : public ForwardingStore {
 public:
  using ForwardingStore::ForwardingStore;
  bool fail_reads = false;
  bool fail_writes = false;
  Result<std::optional<ApiToken>> get_api_token(std::string_view id) override {
    if (fail_reads) return io_error("disk on fire");
    return ForwardingStore::get_api_token(id);
  }
  Status apply(const WriteBatch& b) override {
    if (fail_writes) return io_error("disk full");
    return ForwardingStore::apply(b);
  }
};

class OperatorTokensTest : public ::testing::Test {
 protected:
  std::vector<ApiToken> stored() {
    auto all = store->list_api_tokens();
    EXPECT_TRUE(all.ok());
    return all.ok() ? *all : std::vector<ApiToken>{};
  }

  ManualClock clock{at("2026-06-01T12:00:00Z")};
  std::unique_ptr<Store> store = make_memory_store();
  OperatorTokens tokens{*store, clock};
};

TEST_F(OperatorTokensTest, CreatedTokenHasTheDocumentedShapeAndAuthenticates) {
  auto created = tokens.create("ci-pipeline", Role::kOperator, Duration(0));
  ASSERT_TRUE(created.ok()) << created.error().to_string();
  const std::string& text = created->text;
  ASSERT_EQ(text.size(), kTextChars) << text;
  EXPECT_TRUE(text.starts_with(kPrefix)) << text;
  const std::string id = text.substr(7, 16);
  EXPECT_TRUE(is_lower_hex(id)) << text;
  EXPECT_EQ(text[23], '_') << text;
  EXPECT_TRUE(is_base64url(text.substr(24))) << text;

  const ApiToken& rec = created->record;
  EXPECT_EQ(rec.id, id);
  EXPECT_EQ(rec.name, "ci-pipeline");
  EXPECT_EQ(rec.role, Role::kOperator);
  EXPECT_EQ(rec.created_at, at("2026-06-01T12:00:00Z"));
  EXPECT_EQ(rec.expires_at, Timestamp{});
  EXPECT_EQ(rec.revoked_at, Timestamp{});
  EXPECT_EQ(rec.secret_sha256, security::to_hex(security::sha256(text)));

  auto me = tokens.authenticate(text);
  ASSERT_TRUE(me.ok()) << me.error().to_string();
  EXPECT_EQ(*me, rec);
  // A token without a lifetime still works much later.
  clock.advance(hours(24 * 365 * 5));
  EXPECT_TRUE(tokens.authenticate(text).ok());
}

TEST_F(OperatorTokensTest, EveryRoleRoundTripsAndTokensAreDistinct) {
  std::set<std::string> texts, ids;
  for (Role role : {Role::kViewer, Role::kOperator, Role::kAdmin}) {
    for (int i = 0; i < 3; ++i) {
      auto created =
          tokens.create(std::string(to_string(role)) + "-" + std::to_string(i), role, Duration(0));
      ASSERT_TRUE(created.ok()) << created.error().to_string();
      texts.insert(created->text);
      ids.insert(created->record.id);
      auto me = tokens.authenticate(created->text);
      ASSERT_TRUE(me.ok());
      EXPECT_EQ(me->role, role);
      EXPECT_EQ(me->id, created->record.id);
    }
  }
  EXPECT_EQ(texts.size(), 9u);
  EXPECT_EQ(ids.size(), 9u);
  EXPECT_EQ(stored().size(), 9u);
}

TEST_F(OperatorTokensTest, AnythingButTheExactTextIsUnauthenticated) {
  auto created = tokens.create("ops", Role::kAdmin, Duration(0));
  ASSERT_TRUE(created.ok());
  const std::string text = created->text;
  auto other = tokens.create("other", Role::kViewer, Duration(0));
  ASSERT_TRUE(other.ok());

  std::vector<std::string> bad;
  // Tampered secret: each position of the secret changed to another base64url character.
  for (size_t i = 24; i < text.size(); ++i) {
    std::string t = text;
    t[i] = t[i] == 'A' ? 'B' : 'A';
    bad.push_back(t);
  }
  // Tampered id (still hex, so the format is right; an unknown id).
  std::string unknown_id = text;
  unknown_id[7] = unknown_id[7] == '0' ? '1' : '0';
  bad.push_back(unknown_id);
  bad.push_back("drover_" + std::string(16, '0') + text.substr(23));
  // One token's id with another's secret: the hash covers the whole text.
  bad.push_back(text.substr(0, 24) + other->text.substr(24));
  bad.push_back(other->text.substr(0, 24) + text.substr(24));
  // Wrong prefix, separator, case.
  bad.push_back("Drover_" + text.substr(7));
  bad.push_back("drovr__" + text.substr(7));
  bad.push_back("DROVER_" + text.substr(7));
  std::string sep = text;
  sep[23] = '-';
  bad.push_back(sep);
  std::string upper_id = text;
  for (size_t i = 7; i < 23; ++i) upper_id[i] = static_cast<char>(std::toupper(upper_id[i]));
  if (upper_id != text) bad.push_back(upper_id);
  // Wrong length.
  bad.push_back(text.substr(0, text.size() - 1));
  bad.push_back(text + "A");
  bad.push_back(text + " ");
  bad.push_back(" " + text);
  bad.push_back(text.substr(7));  // without the prefix
  bad.push_back("");
  bad.push_back("drover_");
  bad.push_back(std::string(kTextChars, 'a'));
  bad.push_back(std::string(text.data(), text.size() - 1) + '\0');

  for (const std::string& t : bad) {
    ASSERT_NE(t, text);
    auto r = tokens.authenticate(t);
    ASSERT_FALSE(r.ok()) << "accepted: " << t;
    EXPECT_EQ(r.error().code, ErrorCode::kUnauthenticated) << t;
    // The message does not say which check failed.
    EXPECT_EQ(r.error().message, "invalid, expired or revoked API token") << t;
  }
  // And the genuine one is still fine.
  EXPECT_TRUE(tokens.authenticate(text).ok());
  EXPECT_TRUE(tokens.authenticate(other->text).ok());
}

TEST_F(OperatorTokensTest, ExpiresExactlyAtExpiresAt) {
  const Timestamp created_at = clock.now();
  auto created = tokens.create("short", Role::kViewer, hours(1));
  ASSERT_TRUE(created.ok());
  EXPECT_EQ(created->record.expires_at, created_at + hours(1));
  clock.advance_to(created_at + hours(1) - Duration(1));
  EXPECT_TRUE(tokens.authenticate(created->text).ok());
  clock.advance_to(created_at + hours(1));
  auto r = tokens.authenticate(created->text);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kUnauthenticated);
  clock.advance(hours(100));
  EXPECT_FALSE(tokens.authenticate(created->text).ok());
  // The record is kept (an expired token is listed, not deleted).
  ASSERT_EQ(stored().size(), 1u);
  EXPECT_EQ(stored()[0], created->record);
}

TEST_F(OperatorTokensTest, RevokeTakesEffectAtOnceAndIsIdempotent) {
  auto keep = tokens.create("keep", Role::kAdmin, Duration(0));
  auto drop = tokens.create("drop", Role::kAdmin, Duration(0));
  ASSERT_TRUE(keep.ok() && drop.ok());
  clock.advance(minutes(5));
  const Timestamp revoked_at = clock.now();
  auto revoked = tokens.revoke(drop->record.id);
  ASSERT_TRUE(revoked.ok()) << revoked.error().to_string();
  EXPECT_EQ(revoked->revoked_at, revoked_at);
  EXPECT_EQ(revoked->id, drop->record.id);
  auto r = tokens.authenticate(drop->text);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kUnauthenticated);
  EXPECT_TRUE(tokens.authenticate(keep->text).ok());

  // A second revoke changes nothing, not even the time.
  clock.advance(minutes(5));
  const std::vector<ApiToken> before = stored();
  auto again = tokens.revoke(drop->record.id);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->revoked_at, revoked_at);
  EXPECT_EQ(stored(), before);

  // Revocation through another instance over the same store is seen at once.
  OperatorTokens elsewhere(*store, clock);
  ASSERT_TRUE(elsewhere.revoke(keep->record.id).ok());
  EXPECT_FALSE(tokens.authenticate(keep->text).ok());

  auto unknown = tokens.revoke("0000000000000000");
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(stored().size(), 2u);
}

TEST_F(OperatorTokensTest, TheStoreHoldsOnlyTheHash) {
  auto created = tokens.create("ci", Role::kOperator, hours(24));
  ASSERT_TRUE(created.ok());
  const std::string& text = created->text;
  const std::string secret = text.substr(24);
  ASSERT_EQ(stored().size(), 1u);
  const ApiToken rec = stored()[0];
  EXPECT_EQ(rec, created->record);
  EXPECT_EQ(rec.secret_sha256, security::to_hex(security::sha256(text)));
  const std::string doc = to_json(rec);
  EXPECT_EQ(doc.find(text), std::string::npos) << doc;
  EXPECT_EQ(doc.find(secret), std::string::npos) << doc;
  // Not even in hex or any other obvious encoding of the secret's bytes.
  auto raw = security::from_base64url(secret);
  ASSERT_TRUE(raw.ok());
  EXPECT_EQ(raw->size(), 32u);
  EXPECT_EQ(doc.find(security::to_hex(*raw)), std::string::npos) << doc;
  // The hash alone is no token: presenting it does not authenticate.
  EXPECT_FALSE(tokens.authenticate(rec.secret_sha256).ok());
  EXPECT_FALSE(
      tokens.authenticate("drover_" + rec.id + "_" + rec.secret_sha256.substr(0, 43)).ok());
}

TEST_F(OperatorTokensTest, BadNamesAndLifetimesStoreNothing) {
  for (const std::string& name :
       {std::string(), std::string(129, 'x'), std::string("a\nb"), std::string("tab\t"),
        std::string("nul\0x", 5), std::string("del\x7f")}) {
    auto r = tokens.create(name, Role::kAdmin, Duration(0));
    ASSERT_FALSE(r.ok()) << name;
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument) << name;
  }
  auto negative = tokens.create("fine", Role::kAdmin, Duration(-1));
  ASSERT_FALSE(negative.ok());
  EXPECT_EQ(negative.error().code, ErrorCode::kInvalidArgument);
  EXPECT_TRUE(stored().empty());
  // The longest allowed name is fine.
  EXPECT_TRUE(tokens.create(std::string(128, 'x'), Role::kViewer, Duration(0)).ok());
  EXPECT_EQ(stored().size(), 1u);
}

TEST_F(OperatorTokensTest, ListIsByIdAndIncludesRevokedAndExpired) {
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) {
    auto c =
        tokens.create("t" + std::to_string(i), Role::kViewer, i == 0 ? seconds(1) : Duration(0));
    ASSERT_TRUE(c.ok());
    ids.push_back(c->record.id);
  }
  ASSERT_TRUE(tokens.revoke(ids[1]).ok());
  clock.advance(seconds(2));
  auto all = tokens.list();
  ASSERT_TRUE(all.ok());
  std::vector<std::string> listed;
  for (const ApiToken& t : *all) listed.push_back(t.id);
  std::sort(ids.begin(), ids.end());
  EXPECT_EQ(listed, ids);
}

TEST_F(OperatorTokensTest, StoreFailuresAreNotMistakenForBadTokens) {
  auto owned = std::make_unique<FlakyTokenStore>(make_memory_store());
  FlakyTokenStore& flaky = *owned;
  OperatorTokens t(flaky, clock);
  auto created = t.create("x", Role::kAdmin, Duration(0));
  ASSERT_TRUE(created.ok());
  flaky.fail_reads = true;
  auto r = t.authenticate(created->text);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kIo);
  // A malformed token is refused before the store is asked.
  EXPECT_EQ(t.authenticate("nope").error().code, ErrorCode::kUnauthenticated);
  flaky.fail_reads = false;
  flaky.fail_writes = true;
  auto failed = t.create("y", Role::kAdmin, Duration(0));
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.error().code, ErrorCode::kIo);
  auto not_revoked = t.revoke(created->record.id);
  ASSERT_FALSE(not_revoked.ok());
  EXPECT_EQ(not_revoked.error().code, ErrorCode::kIo);
  flaky.fail_writes = false;
  EXPECT_TRUE(t.authenticate(created->text).ok());
  EXPECT_EQ(t.list()->size(), 1u);
}

}  // namespace
}  // namespace drover::testing
