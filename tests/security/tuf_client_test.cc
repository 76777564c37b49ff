// The client workflow against a repository an attacker may control: every attack of TUF's
// threat model that metadata alone can mount, each ending in a clear error with the trusted
// metadata left as it was; and the recoveries the specification promises.
#include "security/tuf_client.h"

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "../common/tuf_repository.h"
#include "base/memory_file_system.h"
#include "base/units.h"

namespace drover::security::tuf {
namespace {

using nlohmann::json;

using drover::testing::Delegation;
using drover::testing::FakeRepository;
using drover::testing::id;
using drover::testing::key_json;
using drover::testing::kMetadataUrl;
using drover::testing::kTargetsUrl;
using drover::testing::new_key;
using drover::testing::Publisher;
const std::string kDir = "/var/lib/drover/tuf";
const Timestamp kNow = parse_utc_timestamp("2026-12-01T00:00:00Z").value();

class TufClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pub.publish();
    ASSERT_TRUE(Updater::init(fs, kDir, pub.root_file()).ok());
  }
  Updater open() {
    auto u = Updater::open({.metadata_dir = kDir, .metadata_url = kMetadataUrl, .limits = {}}, repo,
                           clock, fs);
    EXPECT_TRUE(u.ok()) << u.error().message;
    return std::move(*u);
  }
  // A refresh by a fresh client (as the agent makes each cycle): "" when it succeeds, else
  // the error's code and message.
  std::string refresh() {
    Updater u = open();
    Status s = u.refresh();
    return s.ok() ? "" : s.error().to_string();
  }
  std::string trusted(const std::string& file) {
    auto bytes = fs.read(kDir + "/" + file);
    return bytes.ok() ? *bytes : "";
  }
  // A client of another repository, its root trusted from that repository's publisher.
  Result<Updater> client_of(FakeRepository& r, const Publisher& p, MemoryFileSystem& store) {
    Status trusted = Updater::init(store, kDir, p.root_file());
    if (!trusted.ok()) return trusted.error();
    return Updater::open({.metadata_dir = kDir, .metadata_url = kMetadataUrl, .limits = {}}, r,
                         clock, store);
  }
  int trusted_version(const std::string& file, const std::string& type) {
    auto m = parse_metadata(trusted(file), type);
    return m.ok() ? static_cast<int>(m->version) : 0;
  }

  FakeRepository repo;
  Publisher pub{repo};
  MemoryFileSystem fs;
  ManualClock clock{kNow};
};

TEST_F(TufClientTest, ARefreshTrustsTheRepositoryAndFindsTargets) {
  ASSERT_EQ(refresh(), "");
  EXPECT_EQ(trusted_version("timestamp.json", "timestamp"), 1);
  EXPECT_EQ(trusted_version("snapshot.json", "snapshot"), 1);
  EXPECT_EQ(trusted_version("targets.json", "targets"), 1);
  // Consistent snapshots: versioned snapshot and targets names.
  EXPECT_EQ(repo.count("/1.snapshot.json"), 1u);
  EXPECT_EQ(repo.count("/1.targets.json"), 1u);
  EXPECT_EQ(repo.count("/2.root.json"), 1u) << "the root is checked for a newer version";

  Updater u = open();
  ASSERT_TRUE(u.refresh().ok());
  auto t = u.find_target("firmware/bms-4.2.0.img");
  ASSERT_TRUE(t.ok()) << t.error().message;
  EXPECT_EQ(t->role, "targets");
  EXPECT_EQ(t->file.length, 11u);
  EXPECT_EQ(u.target_url(*t, kTargetsUrl),
            kTargetsUrl + "firmware/" + to_hex(sha256("image 4.2.0")) + ".bms-4.2.0.img");
  ASSERT_TRUE(u.download_target(*t, kTargetsUrl, "/targets").ok());
  EXPECT_EQ(fs.read("/targets/firmware%2Fbms-4.2.0.img").value(), "image 4.2.0");
  // Present with the right hashes: not fetched again.
  const size_t before = repo.requests.size();
  ASSERT_TRUE(u.download_target(*t, kTargetsUrl, "/targets").ok());
  EXPECT_EQ(repo.requests.size(), before);
  auto missing = u.find_target("firmware/none.img");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);

  // A second cycle with nothing new: snapshot and targets come from disk.
  repo.requests.clear();
  ASSERT_EQ(refresh(), "");
  EXPECT_EQ(repo.requests, (std::vector<std::string>{kMetadataUrl + "2.root.json",
                                                     kMetadataUrl + "timestamp.json"}));
}

TEST_F(TufClientTest, AnInitialRootMustBeSignedByItsOwnKeysAndComplete) {
  MemoryFileSystem empty;
  json unsigned_root = json::parse(pub.root_file());
  unsigned_root["signatures"] = json::array();
  Status no_sig = Updater::init(empty, "/tuf", unsigned_root.dump());
  ASSERT_FALSE(no_sig.ok());
  EXPECT_EQ(no_sig.error().code, ErrorCode::kUnauthenticated);
  json incomplete = pub.root_signed();
  incomplete["roles"].erase("timestamp");
  Status missing =
      Updater::init(empty, "/tuf", sign_metadata(incomplete, {pub.root_keys[0].get()}).value());
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("lacks the timestamp role"), std::string::npos);
  EXPECT_EQ(empty.bytes(), 0u) << "nothing written";
  // And no client opens without a trusted root: nothing is fetched.
  auto u = Updater::open({.metadata_dir = "/tuf", .metadata_url = kMetadataUrl, .limits = {}}, repo,
                         clock, empty);
  ASSERT_FALSE(u.ok());
  EXPECT_EQ(u.error().code, ErrorCode::kNotFound);
  EXPECT_TRUE(repo.requests.empty());
}

TEST_F(TufClientTest, RootRotationNeedsBothTheOldAndTheNewThresholds) {
  ASSERT_EQ(refresh(), "");
  const std::string trusted_root = trusted("root.json");
  auto old_key = pub.root_keys[0];
  auto new_a = std::make_shared<SigningKey>(new_key()),
       new_b = std::make_shared<SigningKey>(new_key());
  pub.root_version = 2;
  pub.root_keys = {new_a, new_b};
  pub.root_threshold = 2;

  // Signed by the new keys only: the trusted root's keys did not agree.
  pub.root_signers = {new_a.get(), new_b.get()};
  pub.publish();
  EXPECT_NE(refresh().find("unauthenticated: root metadata version 2 has 0 valid signature(s)"),
            std::string::npos);
  // Signed by the old key only: the new root's own threshold is not met.
  pub.root_signers = {old_key.get()};
  pub.publish();
  EXPECT_NE(refresh().find("new root metadata version 2 has 0 valid signature(s) of the 2"),
            std::string::npos);
  // Old key and one new key of two: the raised threshold is not met.
  pub.root_signers = {old_key.get(), new_a.get()};
  pub.publish();
  EXPECT_NE(refresh().find("has 1 valid signature(s) of the 2"), std::string::npos);
  // One new key twice under two key ids does not make two.
  json twice = json::parse(pub.root_file());
  twice["signed"]["keys"]["alias"] = key_json(*new_a);
  twice["signed"]["roles"]["root"]["keyids"] = {id(*new_a), "alias"};
  {
    const std::string body = sign_metadata(twice["signed"], {old_key.get(), new_a.get()}).value();
    json file = json::parse(body);
    json a_sig;
    for (const json& s : file["signatures"]) {
      if (s["keyid"] == id(*new_a)) a_sig = s;
    }
    file["signatures"].push_back({{"keyid", "alias"}, {"sig", a_sig["sig"]}});
    repo.files[kMetadataUrl + "2.root.json"] = file.dump();
  }
  EXPECT_NE(refresh().find("has 1 valid signature(s) of the 2"), std::string::npos);
  EXPECT_EQ(trusted("root.json"), trusted_root) << "every failure left the trusted root as it was";

  // Both: the rotation is trusted, and the next cycles use the new keys.
  pub.root_signers = {old_key.get(), new_a.get(), new_b.get()};
  pub.publish();
  ASSERT_EQ(refresh(), "");
  EXPECT_EQ(trusted_version("root.json", "root"), 2);
}

TEST_F(TufClientTest, RootVersionsMustFollowOneAnother) {
  ASSERT_EQ(refresh(), "");
  // 2.root.json holding version 3 (a jump), or version 1 again (a repeat).
  for (int version : {3, 1}) {
    pub.root_version = version;
    repo.files[kMetadataUrl + "2.root.json"] = pub.root_file();
    std::string said = refresh();
    EXPECT_NE(said.find("2.root.json holds root version " + std::to_string(version)),
              std::string::npos)
        << said;
    EXPECT_EQ(trusted_version("root.json", "root"), 1);
  }
}

TEST_F(TufClientTest, RollbacksOfTimestampSnapshotAndTargetsAreRefused) {
  pub.timestamp_version = pub.snapshot_version = pub.targets_version = 5;
  pub.publish();
  ASSERT_EQ(refresh(), "");
  const std::string good_timestamp = trusted("timestamp.json");

  // An older timestamp, validly signed (a replay).
  pub.timestamp_version = 4;
  pub.publish();
  EXPECT_NE(refresh().find("timestamp version 4 is older than the 5 trusted"), std::string::npos);
  // A newer timestamp naming an older snapshot.
  pub.timestamp_version = 6;
  pub.snapshot_version = 4;
  pub.publish();
  EXPECT_NE(refresh().find("names snapshot version 4, older than the 5 trusted"),
            std::string::npos);
  EXPECT_EQ(trusted("timestamp.json"), good_timestamp);
  // A newer snapshot naming an older targets.
  pub.snapshot_version = 6;
  pub.targets_version = 4;
  pub.publish();
  EXPECT_NE(refresh().find("names targets.json version 4, older than the 5 trusted"),
            std::string::npos);
  // A newer snapshot that drops a targets role.
  pub.timestamp_version = pub.snapshot_version = 7;
  pub.targets_version = 6;
  pub.delegations.emplace_back("bms-team", std::vector<std::string>{"firmware/bms-*"});
  pub.publish();
  ASSERT_EQ(refresh(), "");
  pub.delegations.clear();
  pub.timestamp_version = pub.snapshot_version = 8;
  pub.publish();
  EXPECT_NE(refresh().find("snapshot version 8 drops bms-team.json"), std::string::npos);
}

TEST_F(TufClientTest, TheSameTimestampVersionWithOtherContentsIsNotTaken) {
  ASSERT_EQ(refresh(), "");
  const std::string first = trusted("timestamp.json");
  pub.timestamp_expires = "2029-01-01T00:00:00Z";  // the same version 1, other bytes
  pub.publish();
  ASSERT_EQ(refresh(), "");
  EXPECT_EQ(trusted("timestamp.json"), first);
}

TEST_F(TufClientTest, FilesThatAreNotWhatTheParentListsAreRefused) {
  ASSERT_EQ(refresh(), "");
  pub.timestamp_version = pub.snapshot_version = 2;
  pub.publish();
  // The snapshot the timestamp lists, with other bytes (a mix-and-match).
  std::string tampered = repo.files[kMetadataUrl + "2.snapshot.json"];
  tampered.back() = ' ';  // as long as the listed one, other bytes
  repo.served_instead[kMetadataUrl + "2.snapshot.json"] = tampered;
  std::string said = refresh();
  EXPECT_NE(said.find("2.snapshot.json is not the snapshot the timestamp lists: the file's "
                      "sha256 differs"),
            std::string::npos)
      << said;
  // A snapshot of another version than the timestamp names, its length and hashes listed
  // (whoever holds the timestamp key can list anything).
  repo.served_instead.clear();
  pub.snapshot_version = 3;
  const std::string snapshot3 = pub.snapshot_file();
  pub.snapshot_version = 2;
  pub.timestamp_version = 3;
  repo.files[kMetadataUrl + "2.snapshot.json"] = snapshot3;
  repo.files[kMetadataUrl + "timestamp.json"] = pub.timestamp_file(snapshot3);
  said = refresh();
  EXPECT_NE(said.find("snapshot version 3 is not the 2 the timestamp names"), std::string::npos)
      << said;
  EXPECT_EQ(trusted_version("snapshot.json", "snapshot"), 1);
  // Targets of another version than the snapshot names.
  pub.timestamp_version = 4;
  pub.snapshot_version = 3;
  pub.targets_version = 2;
  pub.publish();
  pub.targets_version = 3;
  repo.files[kMetadataUrl + "2.targets.json"] = pub.targets_file("targets");
  said = refresh();
  EXPECT_NE(said.find("targets version 3 is not the 2 the snapshot names"), std::string::npos)
      << said;
  EXPECT_EQ(trusted_version("targets.json", "targets"), 1);
}

TEST_F(TufClientTest, ExpiredMetadataOfEveryRoleIsRefused) {
  struct Case {
    std::string Publisher::*expires;
    std::string role;
  };
  for (const Case& c :
       {Case{&Publisher::root_expires, "root"}, Case{&Publisher::timestamp_expires, "timestamp"},
        Case{&Publisher::snapshot_expires, "snapshot"},
        Case{&Publisher::targets_expires, "targets"}}) {
    FakeRepository r;
    Publisher p(r);
    p.publish();
    MemoryFileSystem store;
    ASSERT_TRUE(Updater::init(store, kDir, p.root_file()).ok());
    p.root_version = 2;
    p.*c.expires = "2026-11-30T23:59:59Z";  // a second before the cycle starts
    p.publish();
    auto u = Updater::open({.metadata_dir = kDir, .metadata_url = kMetadataUrl, .limits = {}}, r,
                           clock, store);
    ASSERT_TRUE(u.ok());
    Status s = u->refresh();
    ASSERT_FALSE(s.ok()) << c.role;
    EXPECT_EQ(s.error().code, ErrorCode::kFailedPrecondition);
    EXPECT_NE(s.error().message.find(c.role + " metadata version"), std::string::npos)
        << s.error().message;
    EXPECT_NE(s.error().message.find("expired at 2026-11-30T23:59:59Z"), std::string::npos);
  }
  // A delegated role too, when the search reaches it.
  pub.delegations.emplace_back(
      "bms-team", std::vector<std::string>{"firmware/bms-*"}, "targets",
      std::map<std::string, std::string>{{"firmware/bms-5.0.0.img", "image 5"}});
  pub.delegations.back().expires = "2026-11-01T00:00:00Z";
  pub.publish();
  Updater u = open();
  ASSERT_TRUE(u.refresh().ok());
  auto t = u.find_target("firmware/bms-5.0.0.img");
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.error().message.find("bms-team metadata version 1 expired"), std::string::npos);
}

TEST_F(TufClientTest, AFastForwardAttackIsRecoveredFromByRotatingTheTimestampKey) {
  ASSERT_EQ(refresh(), "");
  // The timestamp key is stolen: the thief signs version 1000 and a client trusts it.
  pub.timestamp_version = 1000;
  pub.publish();
  ASSERT_EQ(refresh(), "");
  EXPECT_EQ(trusted_version("timestamp.json", "timestamp"), 1000);
  // The repository's honest version 2 is now a "rollback" to that client...
  pub.timestamp_version = 2;
  pub.publish();
  EXPECT_NE(refresh().find("timestamp version 2 is older than the 1000 trusted"),
            std::string::npos);
  // ... until the owners rotate the timestamp key in a new root: the fast-forwarded file
  // no longer verifies, is ignored, and version 2 is trusted.
  pub.timestamp_key = std::make_shared<SigningKey>(new_key());
  pub.root_version = 2;
  pub.publish();
  ASSERT_EQ(refresh(), "");
  EXPECT_EQ(trusted_version("timestamp.json", "timestamp"), 2);
}

TEST_F(TufClientTest, EndlessOrOversizedFilesAreCutOffAtTheirLimit) {
  ASSERT_EQ(refresh(), "");
  pub.timestamp_version = 2;
  pub.publish();
  repo.served_instead[kMetadataUrl + "timestamp.json"] = std::string(20'000, ' ');
  std::string said = refresh();
  EXPECT_NE(said.find("resource_exhausted: timestamp.json: more than the 16384 bytes allowed"),
            std::string::npos)
      << said;
  repo.served_instead.clear();
  // The snapshot may be no longer than the timestamp says.
  pub.snapshot_version = 2;
  pub.publish();
  repo.served_instead[kMetadataUrl + "2.snapshot.json"] =
      repo.files[kMetadataUrl + "2.snapshot.json"] + std::string(10, ' ');
  said = refresh();
  EXPECT_NE(said.find("resource_exhausted: 2.snapshot.json: more than"), std::string::npos) << said;
  repo.served_instead.clear();
  repo.files[kMetadataUrl + "2.root.json"] = std::string(600'000, '{');
  said = refresh();
  EXPECT_NE(said.find("resource_exhausted: 2.root.json: more than the 512000 bytes allowed"),
            std::string::npos)
      << said;
}

TEST_F(TufClientTest, BadTargetsAreRefusedAndAGoodCopyStays) {
  Updater u = open();
  ASSERT_TRUE(u.refresh().ok());
  auto t = u.find_target("firmware/bms-4.2.0.img");
  ASSERT_TRUE(t.ok());
  const std::string url = u.target_url(*t, kTargetsUrl);
  for (const std::string& bad : {std::string("image 4.2."), std::string("image 4.2.0!"),
                                 std::string("image 4.2.1"), std::string("")}) {
    repo.served_instead[url] = bad;
    Status s = u.download_target(*t, kTargetsUrl, "/targets");
    ASSERT_FALSE(s.ok()) << bad;
    EXPECT_FALSE(fs.read("/targets/firmware%2Fbms-4.2.0.img").ok()) << "nothing written";
  }
  repo.served_instead.clear();
  ASSERT_TRUE(u.download_target(*t, kTargetsUrl, "/targets").ok());
  // A bad copy served later does not replace the good one: it is not even fetched.
  repo.served_instead[url] = "evil";
  ASSERT_TRUE(u.download_target(*t, kTargetsUrl, "/targets").ok());
  EXPECT_EQ(fs.read("/targets/firmware%2Fbms-4.2.0.img").value(), "image 4.2.0");
}

TEST_F(TufClientTest, DelegationsAreSearchedInOrderAndTerminatingOnesEndTheSearch) {
  using Listed = std::map<std::string, std::string>;
  pub.delegations = {
      {"a", {"firmware/*"}, "targets", Listed{{"firmware/a.img", "from a"}}},
      {"b", {"firmware/*"}, "targets", Listed{{"firmware/b.img", "from b"}}},
      {"c", {"other/*"}, "targets", Listed{{"other/c.img", "from c"}}},
      {"d", {"other/*"}, "c", Listed{{"other/d.img", "from d"}}},
  };
  pub.delegations[0].terminating = true;
  pub.publish();
  Updater u = open();
  ASSERT_TRUE(u.refresh().ok());
  auto a = u.find_target("firmware/a.img");
  ASSERT_TRUE(a.ok()) << a.error().message;
  EXPECT_EQ(a->role, "a");
  // "a" is terminating for firmware/*: b's listing is never reached.
  auto b = u.find_target("firmware/b.img");
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(repo.count("/1.b.json"), 0u);
  // Depth first: c, then c's delegation d.
  auto d = u.find_target("other/d.img");
  ASSERT_TRUE(d.ok()) << d.error().message;
  EXPECT_EQ(d->role, "d");
  // A role is not trusted outside its paths: c cannot list a firmware file.
  pub.delegations[2].targets["firmware/evil.img"] = "from c";
  pub.delegations[2].version = 2;
  pub.timestamp_version = pub.snapshot_version = 2;
  pub.publish();
  Updater again = open();
  ASSERT_TRUE(again.refresh().ok());
  EXPECT_FALSE(again.find_target("firmware/evil.img").ok());
}

TEST_F(TufClientTest, DelegationCyclesAndTooManyRolesEndTheSearch) {
  // x delegates to y, y back to x (with x's own key): each visited once.
  const Delegation x("x", {"*"});
  const Delegation y("y", {"*"}, "x");
  Delegation back("x", {"*"}, "y");
  back.key = x.key;
  pub.delegations = {x, y, back};
  pub.publish();
  Updater u = open();
  ASSERT_TRUE(u.refresh().ok());
  auto t = u.find_target("nowhere.img");
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(repo.count("/1.x.json"), 1u);
  EXPECT_EQ(repo.count("/1.y.json"), 1u);

  // A chain 40 roles deep: the search gives up after 32 visits.
  FakeRepository r;
  Publisher p(r);
  for (int i = 0; i < 40; ++i) {
    p.delegations.emplace_back("r" + std::to_string(i), std::vector<std::string>{"*"},
                               i == 0 ? "targets" : "r" + std::to_string(i - 1));
  }
  p.delegations.back().targets["deep.img"] = "deep";
  p.publish();
  MemoryFileSystem store;
  auto deep = client_of(r, p, store);
  ASSERT_TRUE(deep.ok()) << deep.error().message;
  ASSERT_TRUE(deep->refresh().ok());
  auto found = deep->find_target("deep.img");
  ASSERT_FALSE(found.ok());
  EXPECT_EQ(found.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(r.count("/1.r30.json"), 1u);
  EXPECT_EQ(r.count("/1.r31.json"), 0u) << "32 roles visited: targets and r0..r30";
}

TEST_F(TufClientTest, HostileNamesStayInTheirDirectories) {
  pub.targets["../../etc/passwd"] = "not a password file";
  pub.delegations = {{"../../escape", {"*"}, "targets", {{"x", "x"}}}};
  pub.publish();
  Updater u = open();
  ASSERT_TRUE(u.refresh().ok()) << "names are encoded, not refused";
  auto t = u.find_target("../../etc/passwd");
  ASSERT_TRUE(t.ok());
  ASSERT_TRUE(u.download_target(*t, kTargetsUrl, "/targets").ok());
  EXPECT_TRUE(fs.read("/targets/..%2F..%2Fetc%2Fpasswd").ok());
  EXPECT_FALSE(fs.read("/etc/passwd").ok());
  auto x = u.find_target("x");
  ASSERT_TRUE(x.ok()) << x.error().message;
  EXPECT_EQ(repo.count("/1...%2F..%2Fescape.json"), 1u);
  EXPECT_TRUE(fs.read(kDir + "/..%2F..%2Fescape.json").ok());
}

TEST_F(TufClientTest, TheSearchIsPreOrderAndATerminatingDelegationDeepDownEndsIt) {
  using Listed = std::map<std::string, std::string>;
  // Two trusted siblings list the same path: the first in the delegator's order wins.
  pub.delegations = {{"first", {"app/*"}, "targets", Listed{{"app/x.img", "from first"}}},
                     {"second", {"app/*"}, "targets", Listed{{"app/x.img", "from second"}}}};
  // A terminating delegation below a role the path does not enter changes nothing.
  pub.delegations.emplace_back("deep", std::vector<std::string>{"lib/*"}, "first");
  pub.delegations.back().terminating = true;
  pub.delegations.emplace_back("late", std::vector<std::string>{"lib/*"}, "targets",
                               Listed{{"lib/y.img", "from late"}});
  pub.publish();
  Updater u = open();
  ASSERT_TRUE(u.refresh().ok());
  auto x = u.find_target("app/x.img");
  ASSERT_TRUE(x.ok()) << x.error().message;
  EXPECT_EQ(x->role, "first");
  EXPECT_EQ(repo.count("/1.second.json"), 0u);
  auto y = u.find_target("lib/y.img");
  ASSERT_TRUE(y.ok()) << y.error().message;
  EXPECT_EQ(y->role, "late");

  // Now "first" is trusted for everything: the search enters it, reaches the terminating
  // "deep" (which lists nothing), and stops there: "late" is never asked.
  FakeRepository r;
  Publisher p(r);
  p.delegations = {{"first", {"*/*"}, "targets", {}},
                   {"late", {"lib/*"}, "targets", Listed{{"lib/y.img", "from late"}}}};
  p.delegations.emplace_back("deep", std::vector<std::string>{"lib/*"}, "first");
  p.delegations.back().terminating = true;
  p.publish();
  MemoryFileSystem store;
  auto t = client_of(r, p, store);
  ASSERT_TRUE(t.ok()) << t.error().message;
  ASSERT_TRUE(t->refresh().ok());
  auto stopped = t->find_target("lib/y.img");
  ASSERT_FALSE(stopped.ok());
  EXPECT_EQ(stopped.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(r.count("/1.deep.json"), 1u);
  EXPECT_EQ(r.count("/1.late.json"), 0u);
}

TEST_F(TufClientTest, ARepositoryWithoutConsistentSnapshotsIsReadByPlainNames) {
  FakeRepository r;
  Publisher p(r);
  p.consistent_snapshot = false;
  p.publish();
  MemoryFileSystem store;
  auto u = client_of(r, p, store);
  ASSERT_TRUE(u.ok()) << u.error().message;
  ASSERT_TRUE(u->refresh().ok());
  EXPECT_EQ(r.count("/snapshot.json"), 1u);
  EXPECT_EQ(r.count("/targets.json"), 1u);
  auto t = u->find_target("firmware/bms-4.2.0.img");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(u->target_url(*t, kTargetsUrl), kTargetsUrl + "firmware/bms-4.2.0.img");
  EXPECT_TRUE(u->download_target(*t, kTargetsUrl, "/targets").ok());
}

TEST_F(TufClientTest, TargetsMustMatchTheHashesTheSnapshotLists) {
  pub.hashes_in_snapshot = true;
  pub.timestamp_version = pub.snapshot_version = pub.targets_version = 2;
  pub.publish();
  std::string forged = repo.files[kMetadataUrl + "2.targets.json"];
  forged.back() = ' ';  // the same length, other bytes
  repo.served_instead[kMetadataUrl + "2.targets.json"] = forged;
  std::string said = refresh();
  EXPECT_NE(said.find("2.targets.json is not the targets the snapshot lists: the file's sha256"),
            std::string::npos)
      << said;
  repo.served_instead.clear();
  EXPECT_EQ(refresh(), "");
}

TEST_F(TufClientTest, ExpiryIsAtTheInstantItNames) {
  pub.timestamp_expires = "2026-12-01T00:00:00Z";  // the cycle starts at this very second
  pub.timestamp_version = 2;
  pub.publish();
  EXPECT_NE(refresh().find("timestamp metadata version 2 expired"), std::string::npos);
  pub.timestamp_expires = "2026-12-01T00:00:01Z";
  pub.timestamp_version = 3;
  pub.publish();
  EXPECT_EQ(refresh(), "");
}

TEST_F(TufClientTest, SeveralRootVersionsAreWalkedInOneRefresh) {
  std::vector<std::shared_ptr<SigningKey>> every_key = pub.root_keys;  // kept alive
  for (int v = 2; v <= 4; ++v) {
    auto next = std::make_shared<SigningKey>(new_key());
    every_key.push_back(next);
    pub.root_version = v;
    pub.root_signers = {pub.root_keys[0].get(), next.get()};
    pub.root_keys = {next};
    pub.publish();
  }
  ASSERT_EQ(refresh(), "");
  EXPECT_EQ(trusted_version("root.json", "root"), 4);
  EXPECT_EQ(repo.count("/2.root.json"), 1u);
  EXPECT_EQ(repo.count("/4.root.json"), 1u);
  EXPECT_EQ(repo.count("/5.root.json"), 1u);
  // The walk has a limit: a repository that never stops serving roots does not hold the
  // client forever.
  FakeRepository r;
  Publisher p(r);
  p.publish();
  MemoryFileSystem store;
  ASSERT_TRUE(Updater::init(store, kDir, p.root_file()).ok());
  for (int v = 2; v <= 6; ++v) {
    p.root_version = v;
    p.publish();
  }
  ClientLimits few;
  few.max_root_rotations = 3;
  auto u = Updater::open({.metadata_dir = kDir, .metadata_url = kMetadataUrl, .limits = few}, r,
                         clock, store);
  ASSERT_TRUE(u->refresh().ok());
  EXPECT_EQ(u->root().version, 4);
  EXPECT_EQ(r.count("/5.root.json"), 0u);
}

TEST_F(TufClientTest, ADelegatedRoleCannotBeRolledBack) {
  pub.delegations.emplace_back("bms-team", std::vector<std::string>{"firmware/bms-*"});
  pub.delegations.back().version = 3;
  pub.publish();
  ASSERT_EQ(refresh(), "");
  pub.delegations.back().version = 2;
  pub.timestamp_version = pub.snapshot_version = 2;
  pub.publish();
  EXPECT_NE(refresh().find("names bms-team.json version 2, older than the 3 trusted"),
            std::string::npos);
}

TEST_F(TufClientTest, AFastForwardedSnapshotIsRecoveredFromByRotatingItsKey) {
  ASSERT_EQ(refresh(), "");
  // Both online keys stolen: timestamp and snapshot at version 1000, targets at 1000.
  pub.timestamp_version = pub.snapshot_version = pub.targets_version = 1000;
  pub.publish();
  ASSERT_EQ(refresh(), "");
  pub.timestamp_version = pub.snapshot_version = pub.targets_version = 2;
  pub.publish();
  EXPECT_NE(refresh().find("older than the 1000 trusted"), std::string::npos);
  // The owners rotate both keys: the fast-forwarded files no longer verify and version 2
  // is trusted again.
  pub.timestamp_key = std::make_shared<SigningKey>(new_key());
  pub.snapshot_key = std::make_shared<SigningKey>(new_key());
  pub.targets_key = std::make_shared<SigningKey>(new_key());
  pub.root_version = 2;
  pub.publish();
  ASSERT_EQ(refresh(), "");
  EXPECT_EQ(trusted_version("snapshot.json", "snapshot"), 2);
  EXPECT_EQ(trusted_version("targets.json", "targets"), 2);
}

TEST_F(TufClientTest, ASlowRepositoryIsCutOff) {
  pub.timestamp_version = 2;
  pub.publish();
  // Each 1,000-byte piece takes 10 s: the 16,384-byte limit allows 60 + 16 s.
  repo.before_piece = [this] { clock.advance_to(clock.now() + seconds(10)); };
  repo.served_instead[kMetadataUrl + "timestamp.json"] = std::string(15'000, ' ');
  std::string said = refresh();
  EXPECT_NE(said.find("io: timestamp.json: slower than 1024 bytes a second"), std::string::npos)
      << said;
  EXPECT_LE(repo.pieces_sent, 9u) << "reading stopped when the time was up";
}

// Succinct hash-bin delegations: each target is looked for only in the bin its path's
// SHA-256 falls in ("bins-<first 3 bits, hex>" here), signed by the bins' shared key.
TEST_F(TufClientTest, SuccinctHashBinDelegationsLeadToTheOneBinOfEachTarget) {
  auto bin_of = [](const std::string& path) {
    const auto first = static_cast<unsigned char>(sha256(path)[0]);
    return "bins-" + std::string(1, "01234567"[first >> 5]);
  };
  std::string x = "firmware/x0.img", y = "firmware/y0.img";
  for (int i = 1; bin_of(y) == bin_of(x); ++i) y = "firmware/y" + std::to_string(i) + ".img";
  pub.succinct = Publisher::Succinct{"bins", 3};
  using Listed = std::map<std::string, std::string>;
  pub.delegations = {{bin_of(x), {}, "", Listed{{x, "image x"}}},
                     // a bin listing a path of another bin is not believed for it
                     {bin_of(y) == "bins-0" ? "bins-1" : "bins-0", {}, "", Listed{{y, "image y"}}}};
  if (pub.delegations[1].name == pub.delegations[0].name) pub.delegations[1].name = "bins-7";
  pub.publish();
  Updater u = open();
  ASSERT_TRUE(u.refresh().ok());
  auto found = u.find_target(x);
  ASSERT_TRUE(found.ok()) << found.error().to_string();
  EXPECT_EQ(found->role, bin_of(x));
  ASSERT_TRUE(u.download_target(*found, kTargetsUrl, "/targets").ok());
  // y is looked for in its own bin only, which the snapshot does not list: a repository fault.
  auto other = u.find_target(y);
  ASSERT_FALSE(other.ok());
  EXPECT_EQ(other.error().code, ErrorCode::kFailedPrecondition) << other.error().to_string();
  EXPECT_EQ(repo.count("/1." + pub.delegations[1].name + ".json"), 0u);

  // A bin signed by another key than the bins' is refused.
  pub.delegations[0].version = 2;
  pub.timestamp_version = pub.snapshot_version = 2;
  json bin = json::parse(pub.targets_file(bin_of(x)));
  pub.publish();
  pub.serve_metadata(bin_of(x) + ".json", 2,
                     sign_metadata(bin["signed"], {pub.delegations[0].key.get()}).value());
  Updater again = open();
  ASSERT_TRUE(again.refresh().ok());
  EXPECT_FALSE(again.find_target(x).ok());
}

TEST(TufSuccinctRoles, BinsAreNamedAndCheckedAsTheSpecificationSays) {
  SuccinctRoles s;
  s.name_prefix = "delegated_bin";
  s.bit_length = 8;  // 256 bins: two hex digits
  // SHA-256("") starts e3 b0 ...: bin 0xe3.
  EXPECT_EQ(s.role_for(""), "delegated_bin-e3");
  EXPECT_TRUE(s.is_role("delegated_bin-00"));
  EXPECT_TRUE(s.is_role("delegated_bin-ff"));
  EXPECT_FALSE(s.is_role("delegated_bin-100"));
  EXPECT_FALSE(s.is_role("delegated_bin-0"));
  EXPECT_FALSE(s.is_role("delegated_bin-FF"));
  EXPECT_FALSE(s.is_role("other-00"));
  s.bit_length = 1;  // two bins, one digit
  EXPECT_EQ(s.role_for(""), "delegated_bin-1");
  EXPECT_FALSE(s.is_role("delegated_bin-2"));
  s.bit_length = 32;
  EXPECT_EQ(s.role_for(""), "delegated_bin-e3b0c442");
  EXPECT_TRUE(s.is_role("delegated_bin-ffffffff"));
  s.bit_length = 5;  // 32 bins, two digits: 0x1c
  EXPECT_EQ(s.role_for(""), "delegated_bin-1c");
  EXPECT_FALSE(s.is_role("delegated_bin-20"));
}

TEST_F(TufClientTest, MissingDelegatedMetadataIsARepositoryFaultNotAMissingTarget) {
  pub.delegations.emplace_back("bms-team", std::vector<std::string>{"firmware/bms-*"});
  pub.publish();
  repo.files.erase(kMetadataUrl + "1.bms-team.json");
  Updater u = open();
  ASSERT_TRUE(u.refresh().ok());
  auto t = u.find_target("firmware/bms-9.img");
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.error().code, ErrorCode::kFailedPrecondition);
  EXPECT_NE(t.error().message.find("though the snapshot lists it"), std::string::npos);
}

}  // namespace
}  // namespace drover::security::tuf
