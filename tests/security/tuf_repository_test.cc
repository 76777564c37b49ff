// The repository side: files built and signed here are what the client takes, a root
// rotation that a client would refuse is refused before it is published, and timestamps are
// signed again well before they expire.
#include "security/tuf_repository.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "../common/tuf_repository.h"
#include "base/memory_file_system.h"
#include "base/units.h"
#include "security/tuf_client.h"

namespace drover::security::tuf {
namespace {

using drover::testing::FakeRepository;
using drover::testing::kMetadataUrl;
using drover::testing::kTargetsUrl;

const Timestamp kNow = parse_utc_timestamp("2026-12-01T00:00:00Z").value();

PublicKey pub(const SigningKey& k) { return PublicKey::ed25519(k.public_key()).value(); }

struct Keys {
  SigningKey root = SigningKey::generate().value();
  SigningKey timestamp = SigningKey::generate().value();
  SigningKey snapshot = SigningKey::generate().value();
  SigningKey targets = SigningKey::generate().value();

  RootSpec spec(int64_t version = 1) const {
    RootSpec s;
    s.version = version;
    s.expires = kNow + days(365);
    s.root = {{pub(root)}, 1};
    s.timestamp = {{pub(timestamp)}, 1};
    s.snapshot = {{pub(snapshot)}, 1};
    s.targets = {{pub(targets)}, 1};
    return s;
  }
};

TargetFile image(const std::string& contents, const std::string& custom) {
  return TargetFile{
      .length = contents.size(), .hashes = {{"sha256", sha256(contents)}}, .custom = custom};
}

TEST(TufRepository, WhatItSignsTheClientTakes) {
  Keys k;
  FakeRepository repo;
  const std::string root = sign_root(k.spec(), nullptr, {&k.root}).value();
  repo.files[kMetadataUrl + "1.root.json"] = root;

  TargetsSpec t;
  t.version = 3;
  t.expires = kNow + days(90);
  const std::string contents = "image 4.2.1";
  t.targets["bms-controller/firmware-4.2.1.img"] =
      image(contents, R"({"version":"4.2.1","device_types":["bms-controller"]})");
  const std::string targets = sign_targets(t, {&k.targets}).value();
  const std::string snapshot =
      sign_snapshot(7, kNow + days(7), {{"targets.json", describe(targets, 3)}}, {&k.snapshot})
          .value();
  const std::string timestamp =
      sign_timestamp(9, kNow + days(1), describe(snapshot, 7), {&k.timestamp}).value();
  repo.files[kMetadataUrl + "3.targets.json"] = targets;
  repo.files[kMetadataUrl + "7.snapshot.json"] = snapshot;
  repo.files[kMetadataUrl + "timestamp.json"] = timestamp;
  repo.files[kTargetsUrl + "bms-controller/" + to_hex(sha256(contents)) + ".firmware-4.2.1.img"] =
      contents;

  MemoryFileSystem fs;
  ManualClock clock(kNow);
  ASSERT_TRUE(Updater::init(fs, "/tuf", root).ok());
  auto u = Updater::open({.metadata_dir = "/tuf", .metadata_url = kMetadataUrl, .limits = {}}, repo,
                         clock, fs);
  ASSERT_TRUE(u.ok());
  ASSERT_TRUE(u->refresh().ok());
  auto found = u->find_target("bms-controller/firmware-4.2.1.img");
  ASSERT_TRUE(found.ok()) << found.error().message;
  EXPECT_EQ(found->file.custom, R"({"device_types":["bms-controller"],"version":"4.2.1"})");
  EXPECT_TRUE(u->download_target(*found, kTargetsUrl, "/targets").ok());
  EXPECT_EQ(fs.read("/targets/bms-controller%2Ffirmware-4.2.1.img").value(), contents);

  // The snapshot names the targets file's bytes: another file under that version is refused.
  TargetsSpec other = t;
  other.targets.clear();
  repo.files[kMetadataUrl + "3.targets.json"] = sign_targets(other, {&k.targets}).value();
  MemoryFileSystem fresh;
  ASSERT_TRUE(Updater::init(fresh, "/tuf", root).ok());
  auto v = Updater::open({.metadata_dir = "/tuf", .metadata_url = kMetadataUrl, .limits = {}}, repo,
                         clock, fresh);
  Status refused = v->refresh();
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("is not the targets the snapshot lists"),
            std::string::npos)
      << refused.error().message;
}

TEST(TufRepository, ARootRotationAClientWouldRefuseIsRefusedBeforeItIsPublished) {
  Keys k;
  const std::string v1 = sign_root(k.spec(), nullptr, {&k.root}).value();
  const Metadata first = parse_metadata(v1, "root").value();
  SigningKey b = SigningKey::generate().value(), c = SigningKey::generate().value();
  RootSpec next = k.spec(2);
  next.root = {{pub(b), pub(c)}, 2};

  auto new_only = sign_root(next, &first, {&b, &c});
  ASSERT_FALSE(new_only.ok());
  EXPECT_EQ(new_only.error().code, ErrorCode::kUnauthenticated);
  EXPECT_NE(new_only.error().message.find("the keys of version 1"), std::string::npos)
      << new_only.error().message;
  auto one_new = sign_root(next, &first, {&k.root, &b});
  ASSERT_FALSE(one_new.ok());
  EXPECT_NE(one_new.error().message.find("its own keys"), std::string::npos);
  EXPECT_NE(one_new.error().message.find("1 valid signature(s) of the 2"), std::string::npos);
  auto both = sign_root(next, &first, {&k.root, &b, &c});
  ASSERT_TRUE(both.ok()) << both.error().message;

  // And a client walks from version 1 to it.
  FakeRepository repo;
  repo.files[kMetadataUrl + "2.root.json"] = *both;
  MemoryFileSystem fs;
  ManualClock clock(kNow);
  ASSERT_TRUE(Updater::init(fs, "/tuf", v1).ok());
  auto u = Updater::open({.metadata_dir = "/tuf", .metadata_url = kMetadataUrl, .limits = {}}, repo,
                         clock, fs);
  EXPECT_FALSE(u->refresh().ok()) << "no timestamp served";
  EXPECT_EQ(u->root().version, 2);

  // Versions follow one another.
  RootSpec skip = k.spec(3);
  auto skipped = sign_root(skip, &first, {&k.root});
  ASSERT_FALSE(skipped.ok());
  EXPECT_EQ(skipped.error().code, ErrorCode::kFailedPrecondition);
}

TEST(TufRepository, SpecsThatCannotBeServedAreRefusedSayingWhy) {
  Keys k;
  RootSpec no_keys = k.spec();
  no_keys.snapshot.keys.clear();
  auto r1 = sign_root(no_keys, nullptr, {&k.root});
  ASSERT_FALSE(r1.ok());
  EXPECT_EQ(r1.error().message, "the snapshot role has no keys");
  RootSpec high = k.spec();
  high.root.threshold = 2;
  auto r2 = sign_root(high, nullptr, {&k.root});
  ASSERT_FALSE(r2.ok());
  EXPECT_NE(r2.error().message.find("threshold 2 is not between 1 and its 1 keys"),
            std::string::npos);
  EXPECT_FALSE(sign_root(k.spec(), nullptr, {}).ok());

  TargetsSpec t;
  t.expires = kNow + days(1);
  t.targets["a.img"] = TargetFile{.length = 3, .hashes = {}, .custom = ""};
  EXPECT_NE(sign_targets(t, {&k.targets}).error().message.find("has no hashes"), std::string::npos);
  t.targets["a.img"] = image("abc", "{not json");
  EXPECT_NE(sign_targets(t, {&k.targets}).error().message.find("custom"), std::string::npos);
  t.targets["a.img"] = image("abc", "");
  t.targets[std::string(252, 'n')] = image("abc", "");
  EXPECT_NE(sign_targets(t, {&k.targets}).error().message.find("too long"), std::string::npos);
  t.targets.erase(std::string(252, 'n'));
  t.delegations = {DelegationSpec{.name = "Root",
                                  .keys = {{pub(k.targets)}, 1},
                                  .terminating = false,
                                  .paths = {"*"},
                                  .path_hash_prefixes = {}}};
  auto named = sign_targets(t, {&k.targets});
  ASSERT_FALSE(named.ok());
  EXPECT_NE(named.error().message.find("would not be read by a client"), std::string::npos);
  t.delegations[0].name = "bms-team";
  t.delegations[0].path_hash_prefixes = {"ab"};
  EXPECT_NE(sign_targets(t, {&k.targets}).error().message.find("exactly one of paths"),
            std::string::npos);
  t.delegations[0].path_hash_prefixes.clear();
  EXPECT_TRUE(sign_targets(t, {&k.targets}).ok());
  EXPECT_FALSE(sign_snapshot(1, kNow, {}, {&k.snapshot}).ok()) << "targets.json must be listed";
}

TEST(TufRepository, FilesAreSignedAgainOnceHalfTheirLifetimeIsGone) {
  const Timestamp expires = kNow + days(1);
  EXPECT_FALSE(due_for_resigning(expires, days(1), kNow));
  EXPECT_FALSE(due_for_resigning(expires, days(1), kNow + hours(12) - seconds(1)));
  EXPECT_TRUE(due_for_resigning(expires, days(1), kNow + hours(12)));
  EXPECT_TRUE(due_for_resigning(expires, days(1), expires + hours(1)));
}

}  // namespace
}  // namespace drover::security::tuf
