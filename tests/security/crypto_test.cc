#include "security/crypto.h"

#include <gtest/gtest.h>

#include <set>

namespace drover::security {
namespace {

TEST(Crypto, Sha256AndHmacKnownAnswers) {
  // FIPS 180-2 "abc"; RFC 4231 test case 2.
  EXPECT_EQ(to_hex(sha256("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(to_hex(hmac_sha256("Jefe", "what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(Crypto, Base64UrlRoundTripsAndRefusesNonCanonicalText) {
  for (std::string s : {"", "f", "fo", "foo", "foob", "fooba", "foobar"}) {
    auto back = from_base64url(to_base64url(s));
    ASSERT_TRUE(back.ok()) << s;
    EXPECT_EQ(*back, s);
  }
  EXPECT_EQ(to_base64url("\xfb\xff"), "-_8");  // the url-safe alphabet
  EXPECT_FALSE(from_base64url("Zm9v=").ok());  // no padding, no other characters
  EXPECT_FALSE(from_base64url("Z").ok());      // impossible length
  EXPECT_FALSE(from_base64url("Zh").ok());     // "f" is "Zg": stray low bits are refused
  EXPECT_TRUE(from_base64url("Zg").ok());
}

TEST(Crypto, RandomBytesDiffer) {
  std::set<std::string> seen;
  for (int i = 0; i < 100; ++i) {
    auto r = random_bytes(16);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->size(), 16u);
    seen.insert(*r);
  }
  EXPECT_EQ(seen.size(), 100u);
}

TEST(Crypto, Ed25519SignsAndVerifies) {
  auto key = SigningKey::generate();
  ASSERT_TRUE(key.ok());
  const std::string pub = key->public_key();
  ASSERT_EQ(pub.size(), 32u);
  const std::string sig = key->sign("challenge-123");
  ASSERT_EQ(sig.size(), 64u);
  EXPECT_TRUE(verify_ed25519(pub, "challenge-123", sig));
  EXPECT_FALSE(verify_ed25519(pub, "challenge-124", sig));  // another message
  std::string flipped = sig;
  flipped[10] = static_cast<char>(flipped[10] ^ 1);
  EXPECT_FALSE(verify_ed25519(pub, "challenge-123", flipped));
  auto other = SigningKey::generate();
  EXPECT_FALSE(verify_ed25519(other->public_key(), "challenge-123", sig));  // another key
  EXPECT_FALSE(verify_ed25519(pub.substr(0, 31), "challenge-123", sig));    // wrong sizes
  EXPECT_FALSE(verify_ed25519(pub, "challenge-123", sig.substr(0, 63)));
  EXPECT_FALSE(verify_ed25519(std::string(32, '\0'), "challenge-123", sig));
}

TEST(Crypto, PrivateKeysSurviveTheirPem) {
  auto key = SigningKey::generate();
  ASSERT_TRUE(key.ok());
  auto back = SigningKey::from_pem(key->private_pem());
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->public_key(), key->public_key());
  EXPECT_TRUE(verify_ed25519(key->public_key(), "m", back->sign("m")));
  EXPECT_EQ(SigningKey::from_pem("not a key").error().code, ErrorCode::kInvalidArgument);
  EXPECT_FALSE(SigningKey::from_pem("").ok());
}

TEST(Crypto, TokensVerifyUntilTheyExpire) {
  auto signer = TokenSigner::create(std::string(32, 's'));
  ASSERT_TRUE(signer.ok());
  const Timestamp t0 = Timestamp(Duration(1'800'000'000'000));
  const std::string token = signer->issue("device:dev-1", t0 + minutes(15));
  auto claims = signer->verify(token, t0);
  ASSERT_TRUE(claims.ok()) << claims.error().to_string();
  EXPECT_EQ(claims->subject, "device:dev-1");
  EXPECT_EQ(claims->expires, t0 + minutes(15));
  auto late = signer->verify(token, t0 + minutes(15));
  ASSERT_FALSE(late.ok());
  EXPECT_EQ(late.error().code, ErrorCode::kUnauthenticated);
  EXPECT_EQ(late.error().message, "token expired");
}

TEST(Crypto, ForgedAndMalformedTokensAreRefused) {
  auto signer = TokenSigner::create(std::string(32, 's'));
  auto other = TokenSigner::create(std::string(32, 'o'));
  const Timestamp now = Timestamp(Duration(1'800'000'000'000));
  const std::string token = signer->issue("device:dev-1", now + minutes(15));
  // Signed by another secret.
  EXPECT_EQ(signer->verify(other->issue("device:dev-1", now + minutes(15)), now).error().code,
            ErrorCode::kUnauthenticated);
  // Another subject or a later expiry under the same tag.
  const size_t dot = token.find('.');
  const std::string tag = token.substr(token.rfind('.'));
  EXPECT_FALSE(signer->verify(to_base64url("device:dev-2") + token.substr(dot), now).ok());
  EXPECT_FALSE(signer
                   ->verify(token.substr(0, dot) + "." +
                                std::to_string(now.time_since_epoch().count() + 999'999'999) + tag,
                            now)
                   .ok());
  for (const std::string& bad :
       {std::string(), std::string("."), std::string(".."), std::string("a.b.c.d"), token + ".",
        token.substr(1), token.substr(0, token.size() - 1)}) {
    auto r = signer->verify(bad, now);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().code, ErrorCode::kUnauthenticated) << bad;
  }
  EXPECT_FALSE(TokenSigner::create("short").ok());
}

}  // namespace
TEST(Crypto, Sha256InPiecesIsSha256OfTheWhole) {
  std::string data;
  for (int i = 0; i < 100'000; ++i) data += static_cast<char>(i * 31);
  Sha256 pieces;
  for (size_t at = 0; at < data.size(); at += 777)
    pieces.update(std::string_view(data).substr(at, 777));
  EXPECT_EQ(pieces.finish(), sha256(data));
  Sha256 empty;
  EXPECT_EQ(to_hex(empty.finish()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

// Keys are checked for being points of the curve before they are accepted: every generated
// key and RFC 8032's are; about half of all 32-byte strings are not, nor are y >= p and
// the small-order points with y = 0 or ±1.
TEST(Crypto, Ed25519PointsAreToldFromOtherBytes) {
  for (int i = 0; i < 200; ++i) {
    auto key = SigningKey::generate();
    ASSERT_TRUE(key.ok());
    EXPECT_TRUE(is_ed25519_point(key->public_key())) << to_hex(key->public_key());
  }
  EXPECT_TRUE(is_ed25519_point(
      from_hex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a").value()));
  for (const char* bad : {
           "0100000000000000000000000000000000000000000000000000000000000000",  // identity
           "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",  // y = -1
           "0000000000000000000000000000000000000000000000000000000000000000",  // y = 0
           "0000000000000000000000000000000000000000000000000000000000000080",  // y = 0, x odd
           "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",  // order 8
           "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",  // order 8
           "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",  // order 8
           "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",  // order 8
           "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",  // y = p
           "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",  // y > p
       }) {
    EXPECT_FALSE(is_ed25519_point(from_hex(bad).value())) << bad;
  }
  EXPECT_FALSE(is_ed25519_point(std::string(31, 'a')));
  int refused = 0;
  constexpr int kTries = 2000;
  for (int i = 0; i < kTries; ++i) {
    const std::string candidate = sha256("candidate " + std::to_string(i));
    if (!is_ed25519_point(candidate)) {
      ++refused;
      // A refused key verifies nothing OpenSSL is asked about either.
      EXPECT_FALSE(verify_ed25519(candidate, "m", std::string(64, '\0')));
    }
  }
  // y² - 1 over d·y² + 1 is a square for half the field: 1000 ± 3.5 standard deviations.
  EXPECT_GT(refused, kTries / 2 - 80);
  EXPECT_LT(refused, kTries / 2 + 80);
}

}  // namespace drover::security
