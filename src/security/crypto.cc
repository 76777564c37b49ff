#include "security/crypto.h"

#include <fcntl.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <charconv>
#include <cstring>

namespace drover::security {
namespace {

struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct MdCtxFree {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;
using MdCtx = std::unique_ptr<EVP_MD_CTX, MdCtxFree>;
using Bio = std::unique_ptr<BIO, BioFree>;

const unsigned char* bytes(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

constexpr char kBase64Url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

}  // namespace

Result<std::string> random_bytes(size_t n) {
  std::string out(n, '\0');
  if (n > 0 && RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) != 1)
    return Error{ErrorCode::kInternal, "the random number generator failed"};
  return out;
}

std::string sha256(std::string_view data) {
  std::string out(32, '\0');
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), reinterpret_cast<unsigned char*>(out.data()), &len,
             EVP_sha256(), nullptr);
  return out;
}

struct Sha256::Impl {
  MdCtx ctx{EVP_MD_CTX_new()};
};

Sha256::Sha256() : impl_(std::make_unique<Impl>()) {
  DROVER_CHECK(impl_->ctx && EVP_DigestInit_ex(impl_->ctx.get(), EVP_sha256(), nullptr) == 1);
}
Sha256::~Sha256() = default;
Sha256::Sha256(Sha256&&) noexcept = default;
Sha256& Sha256::operator=(Sha256&&) noexcept = default;

void Sha256::update(std::string_view piece) {
  DROVER_CHECK(EVP_DigestUpdate(impl_->ctx.get(), piece.data(), piece.size()) == 1);
}

std::string Sha256::finish() {
  std::string out(32, '\0');
  unsigned int len = 0;
  DROVER_CHECK(EVP_DigestFinal_ex(impl_->ctx.get(), reinterpret_cast<unsigned char*>(out.data()),
                                  &len) == 1);
  return out;
}

Result<FileDigest> sha256_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return not_found(path + " does not exist");
    return io_error("opening " + path + ": " + errno_text(errno));
  }
  Sha256 hash;
  FileDigest out;
  char buf[64 * 1024];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      const std::string failure = errno_text(errno);
      ::close(fd);
      return io_error("reading " + path + ": " + failure);
    }
    out.size += static_cast<uint64_t>(n);
    hash.update(std::string_view(buf, static_cast<size_t>(n)));
  }
  ::close(fd);
  out.sha256 = hash.finish();
  return out;
}

struct HmacSha256::Impl {
  EVP_MD* md = nullptr;  // fetched once: EVP_sha256() would be looked up on every init
  MdCtx inner, outer;    // the states after (key ^ ipad) and (key ^ opad)
  ~Impl() { EVP_MD_free(md); }
};

HmacSha256::HmacSha256(std::string_view key) : impl_(std::make_unique<Impl>()) {
  impl_->md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  DROVER_CHECK(impl_->md != nullptr);
  constexpr size_t kBlock = 64;
  std::string k(key);
  if (k.size() > kBlock) k = sha256(k);
  k.resize(kBlock, '\0');
  std::string ipad(kBlock, '\0'), opad(kBlock, '\0');
  for (size_t i = 0; i < kBlock; ++i) {
    ipad[i] = static_cast<char>(k[i] ^ 0x36);
    opad[i] = static_cast<char>(k[i] ^ 0x5c);
  }
  impl_->inner.reset(EVP_MD_CTX_new());
  impl_->outer.reset(EVP_MD_CTX_new());
  DROVER_CHECK(impl_->inner && impl_->outer &&
               EVP_DigestInit_ex(impl_->inner.get(), impl_->md, nullptr) == 1 &&
               EVP_DigestUpdate(impl_->inner.get(), ipad.data(), kBlock) == 1 &&
               EVP_DigestInit_ex(impl_->outer.get(), impl_->md, nullptr) == 1 &&
               EVP_DigestUpdate(impl_->outer.get(), opad.data(), kBlock) == 1);
  OPENSSL_cleanse(k.data(), k.size());
  OPENSSL_cleanse(ipad.data(), ipad.size());
  OPENSSL_cleanse(opad.data(), opad.size());
}

HmacSha256::~HmacSha256() = default;
HmacSha256::HmacSha256(HmacSha256&&) noexcept = default;
HmacSha256& HmacSha256::operator=(HmacSha256&&) noexcept = default;

std::string HmacSha256::operator()(std::string_view data) const {
  // One scratch context per thread, reused: copying a prepared state allocates nothing.
  thread_local MdCtx scratch(EVP_MD_CTX_new());
  unsigned char inner[32];
  std::string out(32, '\0');
  unsigned int len = 0;
  DROVER_CHECK(
      scratch && EVP_MD_CTX_copy_ex(scratch.get(), impl_->inner.get()) == 1 &&
      EVP_DigestUpdate(scratch.get(), data.data(), data.size()) == 1 &&
      EVP_DigestFinal_ex(scratch.get(), inner, &len) == 1 &&
      EVP_MD_CTX_copy_ex(scratch.get(), impl_->outer.get()) == 1 &&
      EVP_DigestUpdate(scratch.get(), inner, sizeof inner) == 1 &&
      EVP_DigestFinal_ex(scratch.get(), reinterpret_cast<unsigned char*>(out.data()), &len) == 1);
  return out;
}

std::string hmac_sha256(std::string_view key, std::string_view data) {
  return HmacSha256(key)(data);
}

bool constant_time_equal(std::string_view a, std::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string to_hex(std::string_view in) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(in.size() * 2);
  for (unsigned char c : in) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 15]);
  }
  return out;
}

Result<std::string> from_hex(std::string_view hex) {
  if (hex.size() % 2 != 0) return invalid_argument("hex of odd length");
  auto digit = [](char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out(hex.size() / 2, '\0');
  for (size_t i = 0; i < out.size(); ++i) {
    const int hi = digit(hex[2 * i]), lo = digit(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return invalid_argument("not hex");
    out[i] = static_cast<char>(hi << 4 | lo);
  }
  return out;
}

std::string to_base64url(std::string_view in) {
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= in.size(); i += 3) {
    const uint32_t v = static_cast<uint32_t>(static_cast<unsigned char>(in[i])) << 16 |
                       static_cast<uint32_t>(static_cast<unsigned char>(in[i + 1])) << 8 |
                       static_cast<unsigned char>(in[i + 2]);
    for (int shift : {18, 12, 6, 0}) out.push_back(kBase64Url[(v >> shift) & 63]);
  }
  const size_t rest = in.size() - i;
  if (rest > 0) {
    uint32_t v = static_cast<uint32_t>(static_cast<unsigned char>(in[i])) << 16;
    if (rest == 2) v |= static_cast<uint32_t>(static_cast<unsigned char>(in[i + 1])) << 8;
    out.push_back(kBase64Url[(v >> 18) & 63]);
    out.push_back(kBase64Url[(v >> 12) & 63]);
    if (rest == 2) out.push_back(kBase64Url[(v >> 6) & 63]);
  }
  return out;
}

Result<std::string> from_base64url(std::string_view text) {
  static const std::array<int8_t, 256> kValue = [] {
    std::array<int8_t, 256> v{};
    v.fill(-1);
    for (int k = 0; k < 64; ++k)
      v[static_cast<unsigned char>(kBase64Url[k])] = static_cast<int8_t>(k);
    return v;
  }();
  if (text.size() % 4 == 1) return invalid_argument("base64url text of impossible length");
  std::string out;
  out.reserve(text.size() * 3 / 4);
  uint32_t acc = 0;
  int bits = 0;
  for (char c : text) {
    const int8_t v = kValue[static_cast<unsigned char>(c)];
    if (v < 0) return invalid_argument("not base64url");
    acc = acc << 6 | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  // The leftover bits must be zero, or two texts would decode to the same bytes.
  if ((acc & ((1u << bits) - 1)) != 0) return invalid_argument("not canonical base64url");
  return out;
}

struct SigningKey::Impl {
  Pkey key;
};

SigningKey::SigningKey(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
SigningKey::SigningKey(SigningKey&&) noexcept = default;
SigningKey& SigningKey::operator=(SigningKey&&) noexcept = default;
SigningKey::~SigningKey() = default;

Result<SigningKey> SigningKey::generate() {
  Pkey key(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
  if (!key) return Error{ErrorCode::kInternal, "Ed25519 key generation failed"};
  return SigningKey(std::make_unique<Impl>(Impl{std::move(key)}));
}

Result<SigningKey> SigningKey::from_pem(std::string_view pem) {
  Bio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return Error{ErrorCode::kInternal, "out of memory"};
  Pkey key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  if (!key || EVP_PKEY_get_id(key.get()) != EVP_PKEY_ED25519)
    return invalid_argument("not an Ed25519 private key in PEM");
  return SigningKey(std::make_unique<Impl>(Impl{std::move(key)}));
}

std::string SigningKey::private_pem() const {
  Bio bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_PrivateKey(bio.get(), impl_->key.get(), nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(len));
}

std::string SigningKey::public_key() const {
  std::string out(kPublicKeySize, '\0');
  size_t len = out.size();
  EVP_PKEY_get_raw_public_key(impl_->key.get(), reinterpret_cast<unsigned char*>(out.data()), &len);
  return out;
}

std::string SigningKey::sign(std::string_view message) const {
  MdCtx ctx(EVP_MD_CTX_new());
  std::string sig(kSignatureSize, '\0');
  size_t len = sig.size();
  EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, impl_->key.get());
  EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len, bytes(message),
                 message.size());
  return sig;
}

bool is_ed25519_point(std::string_view public_key) {
  if (public_key.size() != SigningKey::kPublicKeySize) return false;
  // Little-endian y with the sign of x in the top bit (either sign is fine once x ≠ 0).
  unsigned char le[32];
  std::memcpy(le, public_key.data(), 32);
  le[31] &= 0x7f;
  // The y of the four points of order 8 (x² = −y²: doubled, they land on y = 0).
  static constexpr unsigned char kOrder8[2][32] = {
      {0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b,
       0x76, 0x0d, 0x10, 0x67, 0x0f, 0x2a, 0x20, 0x53, 0xfa, 0x2c, 0x39,
       0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77, 0x92, 0xac, 0x03, 0x7a},
      {0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4,
       0x89, 0xf2, 0xef, 0x98, 0xf0, 0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6,
       0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53, 0xfc, 0x05}};
  for (const auto& y8 : kOrder8) {
    if (std::memcmp(le, y8, 32) == 0) return false;
  }
  using Bn = std::unique_ptr<BIGNUM, decltype(&BN_free)>;
  auto bn = [] { return Bn(BN_new(), &BN_free); };
  std::unique_ptr<BN_CTX, decltype(&BN_CTX_free)> ctx(BN_CTX_new(), &BN_CTX_free);
  Bn p = bn(), y = bn(), d = bn(), y2 = bn(), u = bn(), v = bn(), w = bn(), e = bn(), t = bn();
  if (!ctx || !p || !y || !d || !y2 || !u || !v || !w || !e || !t) return false;
  bool ok = BN_lebin2bn(le, 32, y.get()) != nullptr;
  // p = 2^255 - 19
  ok = ok && BN_set_bit(p.get(), 255) == 1 && BN_sub_word(p.get(), 19) == 1;
  if (!ok || BN_cmp(y.get(), p.get()) >= 0) return false;
  // d = -121665 / 121666 (mod p)
  ok = BN_set_word(t.get(), 121666) == 1 &&
       BN_mod_inverse(d.get(), t.get(), p.get(), ctx.get()) != nullptr &&
       BN_mul_word(d.get(), 121665) == 1 && BN_mod(d.get(), d.get(), p.get(), ctx.get()) == 1 &&
       BN_sub(d.get(), p.get(), d.get()) == 1;
  // u = y² - 1, v = d·y² + 1
  ok = ok && BN_mod_sqr(y2.get(), y.get(), p.get(), ctx.get()) == 1 && BN_one(t.get()) == 1 &&
       BN_mod_sub(u.get(), y2.get(), t.get(), p.get(), ctx.get()) == 1 &&
       BN_mod_mul(v.get(), d.get(), y2.get(), p.get(), ctx.get()) == 1 &&
       BN_mod_add(v.get(), v.get(), t.get(), p.get(), ctx.get()) == 1;
  if (!ok) return false;
  // y = 0 or ±1 are points of order 1, 2 or 4 (the identity among them): keys for which
  // signatures can be forged. Refused, though on the curve, as are those of order 8 above.
  if (BN_is_zero(y.get()) || BN_is_zero(u.get())) return false;
  // x² = u/v must be a square: Euler's criterion, (u/v)^((p-1)/2) = 1.
  ok = BN_mod_inverse(w.get(), v.get(), p.get(), ctx.get()) != nullptr &&
       BN_mod_mul(w.get(), w.get(), u.get(), p.get(), ctx.get()) == 1 &&
       BN_copy(e.get(), p.get()) != nullptr && BN_sub_word(e.get(), 1) == 1 &&
       BN_rshift1(e.get(), e.get()) == 1 &&
       BN_mod_exp(t.get(), w.get(), e.get(), p.get(), ctx.get()) == 1;
  return ok && BN_is_one(t.get());
}

bool verify_ed25519(std::string_view public_key, std::string_view message,
                    std::string_view signature) {
  if (public_key.size() != SigningKey::kPublicKeySize ||
      signature.size() != SigningKey::kSignatureSize)
    return false;
  Pkey key(
      EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, bytes(public_key), public_key.size()));
  if (!key) return false;
  MdCtx ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, key.get()) != 1)
    return false;
  return EVP_DigestVerify(ctx.get(), bytes(signature), signature.size(), bytes(message),
                          message.size()) == 1;
}

Result<TokenSigner> TokenSigner::create(const std::string& secret) {
  if (secret.size() < 32) return invalid_argument("a token secret needs at least 32 bytes");
  return TokenSigner(secret);
}

std::string TokenSigner::issue(std::string_view subject, Timestamp expires) const {
  const std::string body =
      to_base64url(subject) + "." + std::to_string(expires.time_since_epoch().count());
  return body + "." + to_base64url((*mac_)(body));
}

Result<TokenClaims> TokenSigner::verify(std::string_view token, Timestamp now) const {
  auto bad = [](const char* why) { return Error{ErrorCode::kUnauthenticated, why}; };
  const size_t first = token.find('.');
  const size_t second = first == std::string_view::npos ? first : token.find('.', first + 1);
  if (second == std::string_view::npos || token.find('.', second + 1) != std::string_view::npos)
    return bad("malformed token");
  const std::string_view body = token.substr(0, second);
  auto tag = from_base64url(token.substr(second + 1));
  // The tag is checked before anything in the body is trusted or even parsed.
  if (!tag.ok() || !constant_time_equal(*tag, (*mac_)(body)))
    return bad("token signature does not verify");
  auto subject = from_base64url(token.substr(0, first));
  const std::string_view ms = token.substr(first + 1, second - first - 1);
  int64_t expires_ms = 0;
  const auto parsed = std::from_chars(ms.data(), ms.data() + ms.size(), expires_ms);
  if (!subject.ok() || parsed.ec != std::errc{} || parsed.ptr != ms.data() + ms.size())
    return bad("malformed token");
  TokenClaims claims{std::move(*subject), Timestamp(Duration(expires_ms))};
  if (now >= claims.expires) return bad("token expired");
  return claims;
}

}  // namespace drover::security
