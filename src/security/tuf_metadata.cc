#include "security/tuf_metadata.h"

#include <fnmatch.h>
#include <openssl/evp.h>

#include <nlohmann/json.hpp>
#include <set>

#include "base/try_assign.h"
#include "base/units.h"
#include "security/canonical_json.h"
#include "security/crypto.h"

namespace drover::security::tuf {
namespace {

using nlohmann::json;

constexpr std::string_view kTopLevelRoles[] = {"root", "timestamp", "snapshot", "targets"};

bool is_top_level(std::string_view name) {
  for (std::string_view r : kTopLevelRoles) {
    if (r == name) return true;
  }
  return false;
}

bool is_top_level_ignoring_case(std::string_view name) {
  std::string lower(name);
  for (char& c : lower) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return is_top_level(lower);
}

// Reading fields with the path of the field in every message ("signed.roles.root.threshold
// must be an integer of at least 1").
class Fields {
 public:
  Fields(const json& object, std::string path) : o_(object), path_(std::move(path)) {}

  const std::string& path() const { return path_; }
  std::string at(std::string_view name) const { return path_ + "." + std::string(name); }
  bool has(const char* name) const { return o_.contains(name); }

  Result<const json*> get(const char* name, json::value_t type, const char* what) const {
    auto it = o_.find(name);
    if (it == o_.end()) return invalid_argument(at(name) + " is missing");
    // An integer field is either signed or unsigned in nlohmann's terms.
    const bool integer = type == json::value_t::number_integer && it->is_number_integer();
    if (!integer && it->type() != type) return invalid_argument(at(name) + " must be " + what);
    return &*it;
  }
  Result<std::string> string(const char* name) const {
    DROVER_TRY_ASSIGN(const json* v, get(name, json::value_t::string, "a string"));
    return v->get<std::string>();
  }
  Result<int64_t> integer(const char* name, int64_t min) const {
    DROVER_TRY_ASSIGN(const json* v, get(name, json::value_t::number_integer, "an integer"));
    if (v->is_number_unsigned() && v->get<uint64_t>() > uint64_t{INT64_MAX})
      return invalid_argument(at(name) + " is too large");
    const auto n = v->get<int64_t>();
    if (n < min) return invalid_argument(at(name) + " must be at least " + std::to_string(min));
    return n;
  }
  Result<const json*> object(const char* name) const {
    return get(name, json::value_t::object, "an object");
  }
  Result<const json*> array(const char* name) const {
    return get(name, json::value_t::array, "an array");
  }

 private:
  const json& o_;
  std::string path_;
};

Result<Hashes> read_hashes(const json& v, const std::string& path) {
  if (!v.is_object() || v.empty()) return invalid_argument(path + " must be a non-empty object");
  Hashes out;
  for (const auto& [algorithm, digest] : v.items()) {
    const std::string at = path + "." + printable(algorithm, 32);
    if (!digest.is_string()) return invalid_argument(at + " must be hex");
    const auto& hex = digest.get_ref<const std::string&>();
    auto raw = from_hex(hex);
    if (!raw.ok()) return invalid_argument(at + " must be hex");
    // Known algorithms are checked for their length here; another is kept, and refused
    // when a file is checked against it (check_length_and_hashes).
    if ((algorithm == "sha256" && raw->size() != 32) ||
        (algorithm == "sha512" && raw->size() != 64))
      return invalid_argument(at + " has the wrong length");
    out.emplace(algorithm, std::move(*raw));
  }
  return out;
}

Result<RoleKeys> read_role_keys(const Fields& f) {
  RoleKeys r;
  DROVER_TRY_ASSIGN(const json* keyids, f.array("keyids"));
  std::set<std::string> seen;
  for (const json& id : *keyids) {
    if (!id.is_string()) return invalid_argument(f.at("keyids") + " must hold strings");
    if (!seen.insert(id.get<std::string>()).second)
      return invalid_argument(f.at("keyids") + " names a key twice");
    r.keyids.push_back(id.get<std::string>());
  }
  DROVER_TRY_ASSIGN(int64_t threshold, f.integer("threshold", 1));
  if (threshold > 1024) return invalid_argument(f.at("threshold") + " is too large");
  r.threshold = static_cast<int>(threshold);
  return r;
}

// A key this reader cannot use (a type it does not know, material that is not a key) does
// not refuse the file: it can never vote, and why is kept for the message of a threshold
// that then falls short. A root that merely adds a key of a newer type must not stop a
// fleet's updates.
void read_keys(const json& keys, std::map<std::string, PublicKey>& out,
               std::map<std::string, std::string>& unusable) {
  for (const auto& [id, object] : keys.items()) {
    auto key = PublicKey::from_json(object);
    if (key.ok()) {
      out.emplace(id, std::move(*key));
    } else {
      unusable.emplace(id, key.error().message);
    }
  }
}

Result<MetaFile> read_meta_file(const json& v, const std::string& path) {
  if (!v.is_object()) return invalid_argument(path + " must be an object");
  Fields f(v, path);
  MetaFile m;
  DROVER_TRY_ASSIGN(m.version, f.integer("version", 1));
  if (f.has("length")) {
    DROVER_TRY_ASSIGN(int64_t length, f.integer("length", 0));
    m.length = static_cast<uint64_t>(length);
  }
  if (f.has("hashes")) {
    DROVER_TRY_ASSIGN(m.hashes, read_hashes(v["hashes"], f.at("hashes")));
  }
  return m;
}

Status read_root(const Fields& f, Metadata& m) {
  if (f.has("consistent_snapshot")) {
    DROVER_TRY_ASSIGN(const json* cs,
                      f.get("consistent_snapshot", json::value_t::boolean, "true or false"));
    m.consistent_snapshot = cs->get<bool>();
  }
  DROVER_TRY_ASSIGN(const json* keys, f.object("keys"));
  read_keys(*keys, m.keys, m.unusable_keys);
  DROVER_TRY_ASSIGN(const json* roles, f.object("roles"));
  for (const auto& [name, role] : roles->items()) {
    if (!is_top_level(name))
      return invalid_argument(f.at("roles") + " names \"" + printable(name, 64) +
                              "\", which is not a top-level role");
    if (!role.is_object())
      return invalid_argument(f.at("roles") + "." + printable(name) + " must be an object");
    DROVER_TRY_ASSIGN(RoleKeys keys_of_role,
                      read_role_keys(Fields(role, f.at("roles") + "." + printable(name))));
    m.roles.emplace(name, std::move(keys_of_role));
  }
  for (std::string_view r : kTopLevelRoles) {
    if (m.roles.count(std::string(r)) == 0)
      return invalid_argument(f.at("roles") + " lacks the " + std::string(r) + " role");
  }
  return ok_status();
}

Result<Delegations> read_delegations(const json& v, const std::string& path) {
  if (!v.is_object()) return invalid_argument(path + " must be an object");
  Fields f(v, path);
  Delegations d;
  DROVER_TRY_ASSIGN(const json* keys, f.object("keys"));
  read_keys(*keys, d.keys, d.unusable_keys);
  if (f.has("succinct_roles") == f.has("roles"))
    return invalid_argument(path + " needs exactly one of roles and succinct_roles");
  if (f.has("succinct_roles")) {
    DROVER_TRY_ASSIGN(const json* succinct, f.object("succinct_roles"));
    Fields sf(*succinct, f.at("succinct_roles"));
    SuccinctRoles s;
    DROVER_TRY_ASSIGN(s.keys, read_role_keys(sf));
    DROVER_TRY_ASSIGN(const int64_t bits, sf.integer("bit_length", 1));
    if (bits > 32) return invalid_argument(sf.at("bit_length") + " is more than 32");
    s.bit_length = static_cast<int>(bits);
    DROVER_TRY_ASSIGN(s.name_prefix, sf.string("name_prefix"));
    if (s.name_prefix.empty()) return invalid_argument(sf.at("name_prefix") + " is empty");
    d.succinct = std::move(s);
    return d;
  }
  DROVER_TRY_ASSIGN(const json* roles, f.array("roles"));
  std::set<std::string> names;
  for (size_t i = 0; i < roles->size(); ++i) {
    const json& role = (*roles)[i];
    const std::string at = f.at("roles") + "[" + std::to_string(i) + "]";
    if (!role.is_object()) return invalid_argument(at + " must be an object");
    Fields rf(role, at);
    DelegatedRole r;
    DROVER_TRY_ASSIGN(r.name, rf.string("name"));
    // Not a top-level role's name in any case: on a file system that ignores case,
    // "Root.json" would be root.json.
    if (is_top_level_ignoring_case(r.name))
      return invalid_argument(at + ".name: a delegated role cannot be named " + printable(r.name));
    if (r.name.empty()) return invalid_argument(at + ".name is empty");
    if (!names.insert(r.name).second)
      return invalid_argument(at + ".name: \"" + printable(r.name) + "\" is delegated twice");
    DROVER_TRY_ASSIGN(r.keys, read_role_keys(rf));
    DROVER_TRY_ASSIGN(const json* terminating,
                      rf.get("terminating", json::value_t::boolean, "true or false"));
    r.terminating = terminating->get<bool>();
    const bool has_paths = rf.has("paths"), has_prefixes = rf.has("path_hash_prefixes");
    if (has_paths == has_prefixes)
      return invalid_argument(at + " needs exactly one of paths and path_hash_prefixes");
    DROVER_TRY_ASSIGN(const json* patterns, rf.array(has_paths ? "paths" : "path_hash_prefixes"));
    for (const json& p : *patterns) {
      if (!p.is_string()) return invalid_argument(at + ": paths and prefixes are strings");
      (has_paths ? r.paths : r.path_hash_prefixes).push_back(p.get<std::string>());
    }
    d.roles.push_back(std::move(r));
  }
  return d;
}

Status read_targets(const Fields& f, Metadata& m) {
  DROVER_TRY_ASSIGN(const json* targets, f.object("targets"));
  for (const auto& [path, entry] : targets->items()) {
    const std::string at = f.at("targets") + "[\"" + printable(path, 64) + "\"]";
    if (!entry.is_object()) return invalid_argument(at + " must be an object");
    Fields tf(entry, at);
    TargetFile t;
    DROVER_TRY_ASSIGN(int64_t length, tf.integer("length", 0));
    t.length = static_cast<uint64_t>(length);
    DROVER_TRY_ASSIGN(const json* hashes, tf.get("hashes", json::value_t::object, "an object"));
    DROVER_TRY_ASSIGN(t.hashes, read_hashes(*hashes, tf.at("hashes")));
    if (auto custom = entry.find("custom"); custom != entry.end()) {
      DROVER_TRY_ASSIGN(t.custom, canonical_json(*custom));
    }
    m.targets.emplace(path, std::move(t));
  }
  if (f.has("delegations")) {
    DROVER_TRY_ASSIGN(const json* delegations, f.object("delegations"));
    DROVER_TRY_ASSIGN(m.delegations, read_delegations(*delegations, f.at("delegations")));
  }
  return ok_status();
}

Status check_spec_version(const std::string& v, const std::string& path) {
  // "1.0.31": major.minor[.patch], digits only; the major must be 1.
  int parts = 0;
  size_t start = 0;
  while (start <= v.size()) {
    const size_t dot = std::min(v.find('.', start), v.size());
    if (dot == start)
      return invalid_argument(path + " \"" + printable(v, 32) + "\" is not a version");
    for (size_t i = start; i < dot; ++i) {
      if (v[i] < '0' || v[i] > '9')
        return invalid_argument(path + " \"" + printable(v, 32) + "\" is not a version");
    }
    ++parts;
    start = dot + 1;
  }
  if (parts < 2 || parts > 3)
    return invalid_argument(path + " \"" + printable(v, 32) + "\" is not a version");
  if (v.substr(0, v.find('.')) != "1")
    return invalid_argument(path + " " + printable(v, 32) +
                            ": only specification 1.x is supported");
  return ok_status();
}

}  // namespace

namespace {

// Hex digits the last bin of `bits` needs ("%x" of 2^bits - 1).
size_t bin_digits(int bits) { return static_cast<size_t>((bits + 3) / 4); }

}  // namespace

std::string SuccinctRoles::role_for(std::string_view target_path) const {
  const std::string hash = sha256(target_path);
  uint32_t first = 0;
  for (int i = 0; i < 4; ++i) first = (first << 8) | static_cast<unsigned char>(hash[i]);
  const uint64_t bin = uint64_t{first} >> (32 - bit_length);
  std::string hex = to_hex(std::string{static_cast<char>(bin >> 24), static_cast<char>(bin >> 16),
                                       static_cast<char>(bin >> 8), static_cast<char>(bin)});
  return name_prefix + "-" + hex.substr(hex.size() - bin_digits(bit_length));
}

bool SuccinctRoles::is_role(std::string_view name) const {
  const size_t digits = bin_digits(bit_length);
  if (name.size() != name_prefix.size() + 1 + digits || !name.starts_with(name_prefix) ||
      name[name_prefix.size()] != '-')
    return false;
  uint64_t bin = 0;
  for (const char c : name.substr(name_prefix.size() + 1)) {
    const int v = (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
    if (v < 0) return false;
    bin = bin * 16 + static_cast<uint64_t>(v);
  }
  return bin < (uint64_t{1} << bit_length);
}

std::vector<DelegatedRole> Delegations::roles_for(std::string_view target_path) const {
  std::vector<DelegatedRole> out;
  if (succinct) {
    DelegatedRole r;
    r.name = succinct->role_for(target_path);
    r.keys = succinct->keys;
    out.push_back(std::move(r));
    return out;
  }
  for (const DelegatedRole& r : roles) {
    if (r.trusted_for(target_path)) out.push_back(r);
  }
  return out;
}

std::optional<DelegatedRole> Delegations::role(std::string_view name) const {
  if (succinct) {
    if (!succinct->is_role(name)) return std::nullopt;
    DelegatedRole r;
    r.name = std::string(name);
    r.keys = succinct->keys;
    return r;
  }
  for (const DelegatedRole& r : roles) {
    if (r.name == name) return r;
  }
  return std::nullopt;
}

bool DelegatedRole::trusted_for(std::string_view target_path) const {
  if (!path_hash_prefixes.empty()) {
    const std::string hash = to_hex(sha256(target_path));
    for (const std::string& prefix : path_hash_prefixes) {
      if (hash.compare(0, prefix.size(), prefix) == 0) return true;
    }
    return false;
  }
  // Segment by segment: a pattern matches a path of as many segments, each segment as
  // fnmatch(3) without flags would ("*" never crosses a "/").
  auto segments = [](std::string_view s) {
    std::vector<std::string> out;
    size_t start = 0;
    while (true) {
      const size_t slash = s.find('/', start);
      out.emplace_back(s.substr(start, slash - start));
      if (slash == std::string_view::npos) break;
      start = slash + 1;
    }
    return out;
  };
  // fnmatch reads C strings: a NUL would end a path or a pattern early ("foo" would then
  // trust "foo\0anything"). No such path is trusted, no such pattern trusts anything.
  if (target_path.find('\0') != std::string_view::npos) return false;
  const std::vector<std::string> target = segments(target_path);
  for (const std::string& pattern : paths) {
    if (pattern.find('\0') != std::string::npos) continue;
    const std::vector<std::string> parts = segments(pattern);
    if (parts.size() != target.size()) continue;
    bool all = true;
    for (size_t i = 0; all && i < parts.size(); ++i) {
      // No backslash escapes, as in the specification's reference (Python's fnmatch).
      all = ::fnmatch(parts[i].c_str(), target[i].c_str(), FNM_NOESCAPE) == 0;
    }
    if (all) return true;
  }
  return false;
}

Result<Metadata> parse_metadata(std::string_view bytes, std::string_view expected_type,
                                ParseLimits limits) {
  const StrictJsonLimits json_limits{.max_bytes = limits.max_bytes, .max_depth = 32};
  DROVER_TRY_ASSIGN(json doc, parse_strict_json(bytes, json_limits));
  if (!doc.is_object()) return invalid_argument("metadata must be a JSON object");
  Fields top(doc, "");
  DROVER_TRY_ASSIGN(const json* sigs, top.array("signatures"));
  DROVER_TRY_ASSIGN(const json* s, top.object("signed"));
  Metadata m;
  std::set<std::string> signers;
  for (const json& sig : *sigs) {
    if (!sig.is_object()) return invalid_argument(".signatures must hold objects");
    Fields sf(sig, ".signatures[]");
    DROVER_TRY_ASSIGN(std::string keyid, sf.string("keyid"));
    DROVER_TRY_ASSIGN(std::string hex, sf.string("sig"));
    auto raw = from_hex(hex);
    if (!raw.ok()) return invalid_argument(".signatures[].sig must be hex");
    if (!signers.insert(keyid).second)
      return invalid_argument(".signatures has two signatures by key " + printable(keyid, 64));
    m.signatures.emplace_back(std::move(keyid), std::move(*raw));
  }
  DROVER_TRY_ASSIGN(m.signed_bytes, canonical_json(*s));

  Fields f(*s, ".signed");
  DROVER_TRY_ASSIGN(m.type, f.string("_type"));
  if (m.type != expected_type)
    return invalid_argument("expected " + std::string(expected_type) + " metadata, got \"" +
                            printable(m.type, 32) + "\"");
  DROVER_TRY_ASSIGN(m.spec_version, f.string("spec_version"));
  DROVER_TRY(check_spec_version(m.spec_version, f.at("spec_version")));
  DROVER_TRY_ASSIGN(m.version, f.integer("version", 1));
  DROVER_TRY_ASSIGN(std::string expires, f.string("expires"));
  auto when = parse_utc_timestamp(expires);
  if (!when.ok()) {
    return invalid_argument(f.at("expires") + " \"" + printable(expires, 32) +
                            "\" is not a time of the form YYYY-MM-DDTHH:MM:SSZ");
  }
  m.expires = *when;

  if (m.type == "root") {
    DROVER_TRY(read_root(f, m));
  } else if (m.type == "timestamp" || m.type == "snapshot") {
    DROVER_TRY_ASSIGN(const json* meta, f.object("meta"));
    for (const auto& [name, entry] : meta->items()) {
      DROVER_TRY_ASSIGN(MetaFile file, read_meta_file(entry, f.at("meta") + "." + printable(name)));
      m.meta.emplace(name, std::move(file));
    }
    // Other entries in a timestamp's meta mean nothing to this client and are ignored.
    if (m.type == "timestamp" && m.meta.count("snapshot.json") == 0)
      return invalid_argument(f.at("meta") + " of timestamp must name snapshot.json");
  } else if (m.type == "targets") {
    DROVER_TRY(read_targets(f, m));
  } else {
    return invalid_argument("unknown metadata type \"" + printable(m.type, 32) + "\"");
  }
  return m;
}

Status verify_signatures(const Metadata& m, const std::map<std::string, PublicKey>& keys,
                         const RoleKeys& role, std::string_view role_name) {
  std::set<std::string> counted;  // key material: one key is one vote
  int missing = 0;
  for (const std::string& id : role.keyids) {
    auto key = keys.find(id);
    if (key == keys.end()) {
      ++missing;
      continue;
    }
    for (const auto& [signer, signature] : m.signatures) {
      if (signer == id && key->second.verify(m.signed_bytes, signature)) {
        counted.insert(key->second.material());
        break;
      }
    }
  }
  if (static_cast<int>(counted.size()) >= role.threshold) return ok_status();
  return Error{
      ErrorCode::kUnauthenticated,
      std::string(role_name) + " metadata version " + std::to_string(m.version) + " has " +
          std::to_string(counted.size()) + " valid signature(s) of the " +
          std::to_string(role.threshold) + " its role needs" +
          (missing == 0 ? std::string()
                        : " (" + std::to_string(missing) +
                              " of its keys unknown or of a kind this client cannot use)")};
}

struct StreamCheck::Impl {
  struct Digest {
    std::string algorithm, expected;
    EVP_MD_CTX* ctx = nullptr;  // null: an algorithm this client cannot compute
  };
  std::optional<uint64_t> length;
  uint64_t seen = 0;
  std::vector<Digest> digests;

  ~Impl() {
    for (Digest& d : digests) EVP_MD_CTX_free(d.ctx);
  }
};

StreamCheck::StreamCheck(std::optional<uint64_t> length, const Hashes& hashes)
    : impl_(std::make_unique<Impl>()) {
  impl_->length = length;
  for (const auto& [algorithm, expected] : hashes) {
    const EVP_MD* md = algorithm == "sha256"   ? EVP_sha256()
                       : algorithm == "sha512" ? EVP_sha512()
                                               : nullptr;
    Impl::Digest d{algorithm, expected, nullptr};
    if (md != nullptr) {
      d.ctx = EVP_MD_CTX_new();
      if (d.ctx != nullptr && EVP_DigestInit_ex(d.ctx, md, nullptr) != 1) {
        EVP_MD_CTX_free(d.ctx);
        d.ctx = nullptr;
      }
    }
    impl_->digests.push_back(std::move(d));
  }
}

StreamCheck::~StreamCheck() = default;
StreamCheck::StreamCheck(StreamCheck&&) noexcept = default;
StreamCheck& StreamCheck::operator=(StreamCheck&&) noexcept = default;

uint64_t StreamCheck::bytes() const { return impl_->seen; }

Status StreamCheck::update(std::string_view piece) {
  if (impl_->length && piece.size() > *impl_->length - impl_->seen) {
    return Error{ErrorCode::kResourceExhausted,
                 "more than the " + std::to_string(*impl_->length) + " bytes listed"};
  }
  impl_->seen += piece.size();
  for (Impl::Digest& d : impl_->digests) {
    if (d.ctx != nullptr) EVP_DigestUpdate(d.ctx, piece.data(), piece.size());
  }
  return ok_status();
}

Status StreamCheck::finish() {
  if (impl_->length && impl_->seen != *impl_->length) {
    return invalid_argument("the file is " + std::to_string(impl_->seen) + " bytes, not " +
                            std::to_string(*impl_->length));
  }
  for (Impl::Digest& d : impl_->digests) {
    if (d.ctx == nullptr) {
      return invalid_argument("cannot check a hash of algorithm \"" + printable(d.algorithm, 32) +
                              "\"");
    }
    std::string got(static_cast<size_t>(EVP_MD_CTX_get_size(d.ctx)), '\0');
    unsigned int len = 0;
    if (EVP_DigestFinal_ex(d.ctx, reinterpret_cast<unsigned char*>(got.data()), &len) != 1 ||
        got != d.expected) {
      return invalid_argument("the file's " + d.algorithm + " differs from the one listed");
    }
  }
  return ok_status();
}

Status check_length_and_hashes(std::string_view bytes, std::optional<uint64_t> length,
                               const Hashes& hashes) {
  // The length first: a longer file is told as such, not as a failed update.
  if (length && bytes.size() != *length) {
    return invalid_argument("the file is " + std::to_string(bytes.size()) + " bytes, not " +
                            std::to_string(*length));
  }
  StreamCheck check(length, hashes);
  DROVER_TRY(check.update(bytes));
  return check.finish();
}

Result<std::string> sign_metadata(const json& signed_part,
                                  const std::vector<const SigningKey*>& keys) {
  if (!signed_part.is_object()) return invalid_argument("the signed part is an object");
  DROVER_TRY_ASSIGN(std::string bytes, canonical_json(signed_part));
  json signatures = json::array();
  for (const SigningKey* key : keys) {
    DROVER_TRY_ASSIGN(PublicKey pub, PublicKey::ed25519(key->public_key()));
    signatures.push_back({{"keyid", pub.key_id()}, {"sig", to_hex(key->sign(bytes))}});
  }
  return canonical_json(json{{"signatures", std::move(signatures)}, {"signed", signed_part}});
}

Result<std::string> encode_name(std::string_view name, size_t max_bytes) {
  if (name.empty()) return invalid_argument("an empty role name or target path");
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  const bool dots_only = name == "." || name == "..";
  for (char c : name) {
    const auto u = static_cast<unsigned char>(c);
    const bool plain = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                       c == '-' || c == '_' || c == '~' || (c == '.' && !dots_only);
    if (plain) {
      out += c;
    } else {
      out += '%';
      out += kHex[u >> 4];
      out += kHex[u & 15];
    }
    if (out.size() > max_bytes) break;
  }
  if (out.size() > max_bytes)
    return invalid_argument("the name \"" + printable(name, 32) +
                            "...\" is too long for a file name");
  return out;
}

}  // namespace drover::security::tuf
