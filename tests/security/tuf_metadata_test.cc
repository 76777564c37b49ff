// Signed update metadata files: what is read, what is refused (with which words), and the
// threshold check each role's signatures pass.
#include "security/tuf_metadata.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "base/units.h"
#include "security/canonical_json.h"

namespace drover::security::tuf {
namespace {

using nlohmann::json;

SigningKey new_key() { return SigningKey::generate().value(); }

json key_json(const SigningKey& k) { return PublicKey::ed25519(k.public_key())->to_json(); }
std::string id(const SigningKey& k) { return PublicKey::ed25519(k.public_key())->key_id(); }

json common(const std::string& type, int version) {
  return json{{"_type", type},
              {"spec_version", "1.0.31"},
              {"version", version},
              {"expires", "2030-01-01T00:00:00Z"}};
}

// A root listing `keys` and giving every role `threshold` of them.
json root_signed(const std::vector<const SigningKey*>& keys, int threshold, int version = 1) {
  json s = common("root", version);
  s["consistent_snapshot"] = true;
  json ids = json::array();
  for (const SigningKey* k : keys) {
    s["keys"][id(*k)] = key_json(*k);
    ids.push_back(id(*k));
  }
  for (const char* role : {"root", "timestamp", "snapshot", "targets"})
    s["roles"][role] = {{"keyids", ids}, {"threshold", threshold}};
  return s;
}

std::string sign(const json& s, const std::vector<const SigningKey*>& keys) {
  auto file = sign_metadata(s, keys);
  EXPECT_TRUE(file.ok()) << file.error().message;
  return file.ok() ? *file : "";
}

// A delegated role trusted for every path, by no keys.
json role(const std::string& name) {
  return {{"name", name},
          {"keyids", json::array()},
          {"threshold", 1},
          {"terminating", false},
          {"paths", {"*"}}};
}

// Targets metadata with no targets, delegating to `roles`.
json delegating(const std::vector<json>& roles) {
  json s = common("targets", 1);
  s["targets"] = json::object();
  json list = json::array();
  for (const json& r : roles) list.push_back(r);
  s["delegations"] = {{"keys", json::object()}, {"roles", std::move(list)}};
  return s;
}

json with_meta(json s, json meta) {
  s["meta"] = std::move(meta);
  return s;
}

// What parse_metadata says of `s` (signed by nobody) as `type`: "" when it is read.
std::string refusal(const json& s, const std::string& type) {
  auto m = parse_metadata(json{{"signatures", json::array()}, {"signed", s}}.dump(), type);
  if (m.ok()) return "";
  EXPECT_EQ(m.error().code, ErrorCode::kInvalidArgument);
  return m.error().message;
}

TEST(TufMetadata, ARootIsReadAndItsThresholdCountsKeysNotSignatures) {
  SigningKey a = new_key(), b = new_key(), c = new_key();
  const json s = root_signed({&a, &b, &c}, 2, 4);
  auto root = parse_metadata(sign(s, {&a, &b}), "root");
  ASSERT_TRUE(root.ok()) << root.error().message;
  EXPECT_EQ(root->type, "root");
  EXPECT_EQ(root->version, 4);
  EXPECT_EQ(root->spec_version, "1.0.31");
  EXPECT_TRUE(root->consistent_snapshot);
  EXPECT_EQ(root->expires, parse_utc_timestamp("2030-01-01T00:00:00Z").value());
  EXPECT_EQ(root->keys.size(), 3u);
  EXPECT_EQ(root->roles.at("timestamp").threshold, 2);
  EXPECT_EQ(root->signed_bytes, canonical_json(s).value());
  EXPECT_TRUE(verify_signatures(*root, root->keys, root->roles.at("root"), "root").ok());

  // One signature of two: refused, saying how many were found.
  auto one = parse_metadata(sign(s, {&a}), "root");
  ASSERT_TRUE(one.ok());
  Status short_one = verify_signatures(*one, one->keys, one->roles.at("root"), "root");
  ASSERT_FALSE(short_one.ok());
  EXPECT_EQ(short_one.error().code, ErrorCode::kUnauthenticated);
  EXPECT_EQ(short_one.error().message,
            "root metadata version 4 has 1 valid signature(s) of the 2 its role needs");

  // A signature by a key the role does not list, or a forged one, counts for nothing.
  SigningKey stranger = new_key();
  auto strange = parse_metadata(sign(s, {&a, &stranger}), "root");
  EXPECT_FALSE(verify_signatures(*strange, strange->keys, strange->roles.at("root"), "root").ok());
  json forged = json::parse(sign(s, {&a, &b}));
  forged["signatures"][1]["sig"] = forged["signatures"][0]["sig"];
  auto f = parse_metadata(forged.dump(), "root");
  ASSERT_TRUE(f.ok());
  EXPECT_FALSE(verify_signatures(*f, f->keys, f->roles.at("root"), "root").ok());

  // One key listed under two key ids meets a threshold of two only once.
  json twice = s;
  twice["keys"]["alias"] = key_json(a);
  twice["roles"]["root"]["keyids"] = {id(a), "alias"};
  json file = json::parse(sign(twice, {&a}));
  file["signatures"].push_back({{"keyid", "alias"}, {"sig", file["signatures"][0]["sig"]}});
  auto dup = parse_metadata(file.dump(), "root");
  ASSERT_TRUE(dup.ok()) << dup.error().message;
  EXPECT_EQ(dup->signatures.size(), 2u);
  EXPECT_FALSE(verify_signatures(*dup, dup->keys, dup->roles.at("root"), "root").ok());

  // The same key id twice among the signatures: refused outright.
  json repeated = json::parse(sign(s, {&a}));
  repeated["signatures"].push_back(repeated["signatures"][0]);
  auto rep = parse_metadata(repeated.dump(), "root");
  ASSERT_FALSE(rep.ok());
  EXPECT_NE(rep.error().message.find("two signatures by key"), std::string::npos);
}

TEST(TufMetadata, SignaturesCoverTheMeaningNotTheSpelling) {
  SigningKey a = new_key();
  json s = root_signed({&a}, 1);
  s["x-drover-note"] = "fields this reader does not know are signed too";
  const std::string file = sign(s, {&a});
  // Reformatted on the way (indented, keys reordered by a tool): still verifies.
  auto pretty = parse_metadata(json::parse(file).dump(2), "root");
  ASSERT_TRUE(pretty.ok());
  EXPECT_TRUE(verify_signatures(*pretty, pretty->keys, pretty->roles.at("root"), "root").ok());
  // Any change of meaning, an unknown field's included: no longer verifies.
  for (const auto& change : {std::pair<std::string, json>{"x-drover-note", "changed"},
                             {"version", 2},
                             {"expires", "2031-01-01T00:00:00Z"},
                             {"consistent_snapshot", false}}) {
    json tampered = json::parse(file);
    tampered["signed"][change.first] = change.second;
    auto m = parse_metadata(tampered.dump(), "root");
    ASSERT_TRUE(m.ok()) << change.first;
    EXPECT_FALSE(verify_signatures(*m, m->keys, m->roles.at("root"), "root").ok()) << change.first;
  }
}

TEST(TufMetadata, MalformedFilesAreRefusedSayingWhy) {
  SigningKey a = new_key();
  const json root = root_signed({&a}, 1);
  auto with = [](json s, const std::string& field, json value) {
    s[field] = std::move(value);
    return s;
  };
  auto without = [](json s, const std::string& field) {
    s.erase(field);
    return s;
  };
  struct Case {
    json s;
    std::string type, says;
  };
  json no_snapshot_role = root;
  no_snapshot_role["roles"].erase("snapshot");
  json extra_role = root;
  extra_role["roles"]["mirror"] = root["roles"]["root"];
  json zero_threshold = root;
  zero_threshold["roles"]["root"]["threshold"] = 0;
  json twice_listed = root;
  twice_listed["roles"]["root"]["keyids"] = {id(a), id(a)};
  auto delegations_of = [&](const json& delegations) {
    return with(with(common("targets", 1), "targets", json::object()), "delegations", delegations);
  };
  auto succinct = [](int bits, const std::string& prefix) {
    return json{
        {"keyids", json::array()}, {"threshold", 1}, {"bit_length", bits}, {"name_prefix", prefix}};
  };
  const Case cases[] = {
      {root, "timestamp", "expected timestamp metadata"},
      {with(root, "spec_version", "2.0.0"), "root", "only specification 1.x"},
      {with(root, "spec_version", "1"), "root", "is not a version"},
      {with(root, "spec_version", "1.0.0.0"), "root", "is not a version"},
      {with(root, "spec_version", "1.x"), "root", "is not a version"},
      {with(root, "spec_version", "1..0"), "root", "is not a version"},
      {with(root, "version", 0), "root", "version must be at least 1"},
      {with(root, "version", -3), "root", "version must be at least 1"},
      {with(root, "version", "3"), "root", "version must be an integer"},
      {with(root, "version", true), "root", "version must be an integer"},
      {with(root, "version", 1.5), "root", "floating-point"},
      {with(root, "version", 18446744073709551615ULL), "root", "too large"},
      {with(root, "expires", "2030-01-01"), "root",
       "is not a time of the form YYYY-MM-DDTHH:MM:SSZ"},
      {with(root, "expires", "2030-02-30T00:00:00Z"), "root",
       "\"2030-02-30T00:00:00Z\" is not a time"},
      {without(root, "expires"), "root", "expires is missing"},
      {without(root, "_type"), "root", "_type is missing"},
      {with(root, "consistent_snapshot", "yes"), "root", "true or false"},
      {no_snapshot_role, "root", "lacks the snapshot role"},
      {extra_role, "root", "not a top-level role"},
      {zero_threshold, "root", "threshold must be at least 1"},
      {twice_listed, "root", "names a key twice"},
      {with(common("timestamp", 1), "meta", json::object()), "timestamp",
       "must name snapshot.json"},
      {with(common("snapshot", 1), "meta", {{"targets.json", {{"version", 0}}}}), "snapshot",
       "version must be at least 1"},
      {with(common("snapshot", 1), "meta", {{"targets.json", {{"version", 1}, {"length", -1}}}}),
       "snapshot", "length must be at least 0"},
      {with(common("snapshot", 1), "meta",
            {{"targets.json", {{"version", 1}, {"hashes", json::object()}}}}),
       "snapshot", "non-empty object"},
      {with(common("snapshot", 1), "meta",
            {{"targets.json", {{"version", 1}, {"hashes", {{"sha256", "abcd"}}}}}}),
       "snapshot", "wrong length"},
      {with(common("snapshot", 1), "meta",
            {{"targets.json", {{"version", 1}, {"hashes", {{"sha256", "xy"}}}}}}),
       "snapshot", "must be hex"},
      {with(common("targets", 1), "targets", {{"a.bin", {{"length", 3}}}}), "targets",
       "hashes is missing"},
      {delegating({role("root")}), "targets", "cannot be named root"},
      {delegating({role("Timestamp")}), "targets", "cannot be named Timestamp"},
      {delegating({role("a"), role("a")}), "targets", "delegated twice"},
      {delegating({with(role("a"), "path_hash_prefixes", {"ab"})}), "targets",
       "exactly one of paths and path_hash_prefixes"},
      {delegating({without(role("a"), "terminating")}), "targets", "terminating is missing"},
      {delegations_of({{"keys", json::object()},
                       {"succinct_roles", succinct(4, "b")},
                       {"roles", json::array()}}),
       "targets", "exactly one of roles and succinct_roles"},
      {delegations_of({{"keys", json::object()}}), "targets",
       "exactly one of roles and succinct_roles"},
      {delegations_of({{"keys", json::object()}, {"succinct_roles", succinct(33, "b")}}), "targets",
       "bit_length is more than 32"},
      {delegations_of({{"keys", json::object()}, {"succinct_roles", succinct(0, "b")}}), "targets",
       "bit_length"},
      {delegations_of({{"keys", json::object()}, {"succinct_roles", succinct(4, "")}}), "targets",
       "name_prefix is empty"},
  };
  for (const Case& c : cases) {
    const std::string said = refusal(c.s, c.type);
    EXPECT_NE(said, "") << c.s.dump();
    EXPECT_NE(said.find(c.says), std::string::npos) << c.s.dump() << ": " << said;
  }
  // Not metadata at all.
  for (const std::string& text :
       {std::string("[]"), std::string(R"({"signed": {}})"),
        std::string(R"({"signatures": {}, "signed": {}})"),
        std::string(R"({"signatures": [{"keyid": "a", "sig": "zz"}], "signed": {}})"),
        std::string(R"({"signatures": [], "signed": {"_type": "root", "_type": "targets"}})")}) {
    auto m = parse_metadata(text, "root");
    EXPECT_FALSE(m.ok()) << text;
  }
  // A file larger than allowed is refused before it is parsed.
  const std::string file = sign(root, {&a});
  auto big = parse_metadata(file, "root", {.max_bytes = file.size() - 1});
  ASSERT_FALSE(big.ok());
  EXPECT_NE(big.error().message.find("allowed"), std::string::npos);
}

// What one odd item must not do: refuse a whole file, and with it every update.
TEST(TufMetadata, OneUnusableItemDoesNotRefuseTheFile) {
  SigningKey a = new_key(), b = new_key();
  json s = root_signed({&a, &b}, 1);
  // A key of a kind this client does not know, and one whose material is no key: both
  // listed, neither can vote; the file is read and b's signature counts.
  s["keys"]["future"] = {
      {"keytype", "sphincs"}, {"scheme", "sphincs-shake-256f"}, {"keyval", {{"public", "abcd"}}}};
  s["keys"][id(a)]["keyval"]["public"] = "00";
  s["roles"]["root"]["keyids"].push_back("future");
  auto m = parse_metadata(sign(s, {&a, &b}), "root");
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ(m->keys.size(), 1u);
  EXPECT_EQ(m->unusable_keys.size(), 2u);
  EXPECT_NE(m->unusable_keys.at("future").find("unsupported key"), std::string::npos);
  EXPECT_TRUE(verify_signatures(*m, m->keys, m->roles.at("root"), "root").ok());
  RoleKeys two = m->roles.at("root");
  two.threshold = 2;
  Status short_two = verify_signatures(*m, m->keys, two, "root");
  ASSERT_FALSE(short_two.ok());
  EXPECT_NE(short_two.error().message.find(
                "1 valid signature(s) of the 2 its role needs (2 of its keys unknown or of a "
                "kind this client cannot use)"),
            std::string::npos)
      << short_two.error().message;

  // Targets with names no file can take, and a "custom" that is not an object: read; the
  // names fail where they are used (encode_name), the custom is kept as it is.
  json t = common("targets", 1);
  const json entry = {{"length", 3}, {"hashes", {{"sha256", std::string(64, 'a')}}}};
  t["targets"][""] = entry;
  t["targets"][std::string(300, 'x')] = entry;
  t["targets"]["a.bin"] = entry;
  t["targets"]["a.bin"]["custom"] = "4.2.0";
  auto targets = parse_metadata(sign(t, {&a}), "targets");
  ASSERT_TRUE(targets.ok()) << targets.error().message;
  EXPECT_EQ(targets->targets.size(), 3u);
  EXPECT_EQ(targets->targets.at("a.bin").custom, R"("4.2.0")");
  // A timestamp may list more than the snapshot: the rest is ignored.
  json ts = with_meta(common("timestamp", 1),
                      {{"snapshot.json", {{"version", 1}}}, {"targets.json", {{"version", 1}}}});
  EXPECT_TRUE(parse_metadata(sign(ts, {&a}), "timestamp").ok());
}

TEST(TufMetadata, TargetsAndDelegationsAreRead) {
  SigningKey a = new_key(), d = new_key();
  json s = common("targets", 3);
  s["targets"]["firmware/bms-4.2.0.img"] = {
      {"length", 1024},
      {"hashes", {{"sha256", std::string(64, 'a')}, {"sha512", std::string(128, 'b')}}},
      {"custom", {{"version", "4.2.0"}, {"device_types", {"bms-controller"}}}}};
  s["delegations"] = {{"keys", {{id(d), key_json(d)}}},
                      {"roles",
                       {{{"name", "bms-team"},
                         {"keyids", {id(d)}},
                         {"threshold", 1},
                         {"terminating", true},
                         {"paths", {"firmware/bms-*", "docs/*/notes?.txt"}}},
                        {{"name", "bins"},
                         {"keyids", {id(d)}},
                         {"threshold", 1},
                         {"terminating", false},
                         {"path_hash_prefixes", {"0", "1", "2", "3", "4", "5", "6", "7"}}}}}};
  auto m = parse_metadata(sign(s, {&a}), "targets");
  ASSERT_TRUE(m.ok()) << m.error().message;
  const TargetFile& t = m->targets.at("firmware/bms-4.2.0.img");
  EXPECT_EQ(t.length, 1024u);
  EXPECT_EQ(t.hashes.at("sha256"), std::string(32, '\xaa'));
  EXPECT_EQ(t.custom, R"({"device_types":["bms-controller"],"version":"4.2.0"})");
  ASSERT_TRUE(m->delegations);
  ASSERT_EQ(m->delegations->roles.size(), 2u);
  const DelegatedRole& team = m->delegations->roles[0];
  EXPECT_EQ(team.name, "bms-team");
  EXPECT_TRUE(team.terminating);
  EXPECT_EQ(m->delegations->keys.count(id(d)), 1u);
  // Patterns match segment by segment: "*" never crosses a "/".
  EXPECT_TRUE(team.trusted_for("firmware/bms-4.2.0.img"));
  EXPECT_FALSE(team.trusted_for("firmware/bms-4.2.0/evil.img"));
  EXPECT_FALSE(team.trusted_for("firmware/hvac-1.0.img"));
  EXPECT_FALSE(team.trusted_for("other/firmware/bms-1.img"));
  EXPECT_TRUE(team.trusted_for("docs/v4/notes1.txt"));
  EXPECT_FALSE(team.trusted_for("docs/v4/notes12.txt"));
  EXPECT_FALSE(team.trusted_for("docs/notes1.txt"));
  // A NUL would end the path early for fnmatch: "firmware/bms-1" must not trust more.
  EXPECT_FALSE(team.trusted_for(std::string("firmware/bms-1\0/../../x", 23)));
  // No backslash escapes: "\*" is a backslash then anything.
  DelegatedRole literal{
      .name = "l", .keys = {}, .terminating = false, .paths = {"a\\*"}, .path_hash_prefixes = {}};
  EXPECT_TRUE(literal.trusted_for("a\\b"));
  EXPECT_FALSE(literal.trusted_for("a*"));
  // Hash prefixes: the SHA-256 of "a" begins ca97..., of "b" 3e23....
  const DelegatedRole& bins = m->delegations->roles[1];
  EXPECT_FALSE(bins.trusted_for("a"));
  EXPECT_TRUE(bins.trusted_for("b"));
}

TEST(TufMetadata, LengthsAndHashesAreCheckedExactly) {
  const std::string body = "firmware image";
  // SHA-512 of "abc" (FIPS 180-2), for the second algorithm.
  const std::string abc512 = from_hex(
                                 "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
                                 "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f")
                                 .value();
  EXPECT_TRUE(
      check_length_and_hashes("abc", 3, {{"sha256", sha256("abc")}, {"sha512", abc512}}).ok());
  auto one_of_two = check_length_and_hashes("abd", 3, {{"sha512", abc512}});
  ASSERT_FALSE(one_of_two.ok());
  EXPECT_EQ(one_of_two.error().message, "the file's sha512 differs from the one listed");
  EXPECT_TRUE(check_length_and_hashes(body, body.size(), {{"sha256", sha256(body)}}).ok());
  EXPECT_TRUE(check_length_and_hashes(body, std::nullopt, {}).ok());
  auto longer = check_length_and_hashes(body + "x", body.size(), {{"sha256", sha256(body)}});
  ASSERT_FALSE(longer.ok());
  EXPECT_EQ(longer.error().message, "the file is 15 bytes, not 14");
  auto shorter = check_length_and_hashes(body.substr(1), body.size(), {});
  EXPECT_FALSE(shorter.ok());
  std::string other = body;
  other[0] = 'F';
  auto changed = check_length_and_hashes(other, body.size(), {{"sha256", sha256(body)}});
  ASSERT_FALSE(changed.ok());
  EXPECT_EQ(changed.error().message, "the file's sha256 differs from the one listed");
  auto unknown = check_length_and_hashes(body, body.size(), {{"md5", "xx"}});
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.error().message.find("cannot check"), std::string::npos);
}

TEST(TufMetadata, NamesAreEncodedIntoOneSegmentThatStaysInItsDirectory) {
  EXPECT_EQ(encode_name("firmware/bms-4.2.0.img").value(), "firmware%2Fbms-4.2.0.img");
  EXPECT_EQ(encode_name("../../etc/passwd").value(), "..%2F..%2Fetc%2Fpasswd");
  EXPECT_EQ(encode_name("..").value(), "%2E%2E");
  EXPECT_EQ(encode_name(".").value(), "%2E");
  EXPECT_EQ(encode_name("/abs").value(), "%2Fabs");
  EXPECT_EQ(encode_name("a?b#c d").value(), "a%3Fb%23c%20d");
  EXPECT_EQ(encode_name(std::string("nul\0byte", 8)).value(), "nul%00byte");
  EXPECT_EQ(encode_name("\xc3\xa9").value(), "%C3%A9");
  EXPECT_FALSE(encode_name("").ok());
  EXPECT_TRUE(encode_name(std::string(255, 'a')).ok());
  EXPECT_FALSE(encode_name(std::string(256, 'a')).ok());
  EXPECT_FALSE(encode_name(std::string(86, '/')).ok()) << "258 bytes once encoded";
}

}  // namespace
}  // namespace drover::security::tuf
