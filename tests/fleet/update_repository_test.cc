// The repository `drover serve` publishes, read by the agent's own TUF client: what it signs
// is trusted, what it re-signs keeps clients going, a root rotation needs both thresholds,
// and versions only grow, across a crash between two files too.
#include "fleet/update_repository.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "base/memory_file_system.h"
#include "base/units.h"
#include "fleet/repository_keys.h"
#include "fleet/targets_delegations.h"
#include "security/crypto.h"
#include "security/tuf_client.h"
#include "security/tuf_metadata.h"
#include "security/tuf_repository.h"

namespace drover {
namespace {

namespace tuf = security::tuf;

const std::string kDir = "/data/tuf";
const std::string kOffline = "/offline";
const std::string kUrl = "https://server/tuf/metadata/";

Artifact artifact(const std::string& version, const std::string& content = "image",
                  const std::string& name = "firmware") {
  Artifact a;
  a.name = name;
  a.version = version;
  a.device_types = {"bms"};
  a.hardware_revisions = {"rev-b"};
  a.depends = {{"bootloader", ">=2.0.0"}};
  a.size_bytes = content.size();
  a.sha256 = security::to_hex(security::sha256(content + version));
  return a;
}

// A delegated role of `name` for `paths`, its keys online.
TargetsDelegation delegation(const std::string& name, std::vector<std::string> paths) {
  TargetsDelegation d;
  d.role = name;
  d.paths = std::move(paths);
  return d;
}

// Serves the repository's metadata by URL, as drover serve's route does.
class RepositoryFetcher final : public tuf::MetadataFetcher {
 public:
  explicit RepositoryFetcher(UpdateRepository*& repo) : repo_(repo) {}
  Status fetch_to(const std::string& url, const Sink& sink) override {
    if (!url.starts_with(kUrl)) return not_found("not the repository");
    auto bytes = repo_->metadata(url.substr(kUrl.size()));
    if (!bytes.ok()) return bytes.error();
    return sink(*bytes);
  }

 private:
  UpdateRepository*& repo_;
};

// A device's client, trusting root version 1 of the repository in `fs`.
class Device {
 public:
  Device(MemoryFileSystem& repo_fs, UpdateRepository*& repo, Clock& clock) : fetcher_(repo) {
    EXPECT_TRUE(
        tuf::Updater::init(fs_, "/device", *repo_fs.read(kDir + "/metadata/1.root.json")).ok());
    updater_ = std::make_unique<tuf::Updater>(
        tuf::Updater::open({"/device", kUrl, {}}, fetcher_, clock, fs_).value());
  }
  Status refresh() { return updater_->refresh(); }
  Result<tuf::TargetInfo> find(const std::string& path) { return updater_->find_target(path); }
  const tuf::Metadata& root() { return updater_->root(); }

 private:
  MemoryFileSystem fs_;
  RepositoryFetcher fetcher_;
  std::unique_ptr<tuf::Updater> updater_;
};

class UpdateRepositoryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(create_repository(fs, kDir, kOffline, {}, clock.now()).ok());
    reopen();
  }
  void reopen() {
    auto opened = UpdateRepository::open(fs, kDir, clock);
    ASSERT_TRUE(opened.ok()) << opened.error().to_string();
    owned = std::move(*opened);
    repo = owned.get();
  }
  int64_t version(const std::string& role) { return role_state(role).version; }
  RepositoryState::Role role_state(const std::string& role) {
    for (const auto& r : repo->state().roles)
      if (r.name == role) return r;
    RepositoryState::Role none;
    none.version = -1;
    return none;
  }
  // The targets a role's file served now lists.
  std::vector<std::string> listed_by(const std::string& role) {
    const std::string file = std::to_string(version(role)) + "." + role + ".json";
    auto bytes = repo->metadata(file);
    EXPECT_TRUE(bytes.ok()) << file;
    std::vector<std::string> out;
    if (!bytes.ok()) return out;
    auto m = tuf::parse_metadata(*bytes, "targets");
    EXPECT_TRUE(m.ok()) << file;
    if (!m.ok()) return out;
    for (const auto& entry : m->targets) out.push_back(entry.first);
    return out;
  }

  MemoryFileSystem fs;
  ManualClock clock{parse_utc_timestamp("2027-01-01T00:00:00Z").value()};
  std::unique_ptr<UpdateRepository> owned;
  UpdateRepository* repo = nullptr;
};

TEST_F(UpdateRepositoryTest, ArtifactsArePublishedAsTargetsWithDroversMetadataSigned) {
  const Artifact a = artifact("4.2.1"), b = artifact("4.3.0");
  ASSERT_TRUE(repo->publish({a, b}).ok());
  Device device(fs, repo, clock);
  ASSERT_TRUE(device.refresh().ok());
  auto found = device.find("firmware/4.2.1");
  ASSERT_TRUE(found.ok()) << found.error().to_string();
  EXPECT_EQ(found->file.length, a.size_bytes);
  EXPECT_EQ(security::to_hex(found->file.hashes.at("sha256")), a.sha256);
  EXPECT_EQ(found->file.custom,
            R"({"depends":[{"component":"bootloader","constraint":">=2.0.0"}],)"
            R"("device_types":["bms"],"hardware_revisions":["rev-b"],"version":"4.2.1"})");
  EXPECT_TRUE(repo->is_signed(a));
  EXPECT_TRUE(repo->is_signed(b));

  // What is not listed, or listed with other content or other metadata, is not signed.
  EXPECT_FALSE(repo->is_signed(artifact("5.0.0")));
  EXPECT_FALSE(repo->is_signed(artifact("4.2.1", "other image")));
  Artifact wider = a;
  wider.device_types = {"bms", "inverter"};
  EXPECT_FALSE(repo->is_signed(wider));

  // A removed artifact is no longer a target, for the server and the device alike.
  ASSERT_TRUE(repo->publish({b}).ok());
  EXPECT_FALSE(repo->is_signed(a));
  ASSERT_TRUE(device.refresh().ok());
  EXPECT_EQ(device.find("firmware/4.2.1").error().code, ErrorCode::kNotFound);
  EXPECT_TRUE(device.find("firmware/4.3.0").ok());
}

TEST_F(UpdateRepositoryTest, OnlyWhatChangedOrFallsDueIsSignedAgain) {
  ASSERT_TRUE(repo->publish({artifact("1.0.0")}).ok());
  EXPECT_EQ(version("targets"), 1);
  EXPECT_EQ(version("snapshot"), 1);
  EXPECT_EQ(version("timestamp"), 1);
  ASSERT_TRUE(repo->publish({artifact("1.0.0")}).ok());  // nothing changed, nothing due
  EXPECT_EQ(version("timestamp"), 1);

  Device device(fs, repo, clock);
  ASSERT_TRUE(device.refresh().ok());
  // A day and a half with a refresh every hour: the timestamp (a day) is signed again each
  // half day, the snapshot (a week) and targets (90 days) not at all; the device keeps up.
  for (int hour = 1; hour <= 36; ++hour) {
    clock.advance_to(clock.now() + hours(1));
    ASSERT_TRUE(repo->refresh().ok());
    ASSERT_TRUE(device.refresh().ok()) << "hour " << hour;
  }
  EXPECT_EQ(version("timestamp"), 4);
  EXPECT_EQ(version("snapshot"), 1);
  EXPECT_EQ(version("targets"), 1);

  // Unrefreshed, the timestamp expires and the device refuses to go on with it.
  clock.advance_to(clock.now() + hours(25));
  EXPECT_FALSE(device.refresh().ok());
  ASSERT_TRUE(repo->refresh().ok());
  EXPECT_TRUE(device.refresh().ok());
}

TEST_F(UpdateRepositoryTest, VersionsGrowAcrossARestartAndACrashBetweenFiles) {
  ASSERT_TRUE(repo->publish({artifact("1.0.0")}).ok());
  Device device(fs, repo, clock);
  ASSERT_TRUE(device.refresh().ok());

  // The timestamp cannot be written: targets 2 and snapshot 2 are on disk, unnamed.
  class NoTimestamp final : public ForwardingFileSystem {
   public:
    explicit NoTimestamp(FileSystem& fs) : ForwardingFileSystem(fs) {}
    Status rename(const std::string& from, const std::string& to) override {
      if (to.ends_with("/timestamp.json")) return Error{ErrorCode::kIo, "cut"};
      return ForwardingFileSystem::rename(from, to);
    }
  } cut(fs);
  {
    auto crashing = UpdateRepository::open(cut, kDir, clock).value();
    EXPECT_EQ(crashing->publish({artifact("1.0.0"), artifact("2.0.0")}).error().code,
              ErrorCode::kIo);
  }
  ASSERT_TRUE(fs.read(kDir + "/metadata/2.targets.json").ok());

  // After the restart the device still sees version 1, and the next one skips past 2.
  reopen();
  EXPECT_EQ(version("targets"), 1);
  EXPECT_FALSE(repo->is_signed(artifact("2.0.0")));
  ASSERT_TRUE(repo->publish({artifact("1.0.0"), artifact("2.0.0")}).ok());
  EXPECT_EQ(version("targets"), 3);
  EXPECT_EQ(version("snapshot"), 3);
  EXPECT_EQ(version("timestamp"), 2);
  ASSERT_TRUE(device.refresh().ok());
  EXPECT_TRUE(device.find("firmware/2.0.0").ok());
}

// A publish that fails half-way changes nothing the server says (the artifact is not
// signed, devices see the old files), and the next one, in the same process, completes it.
TEST_F(UpdateRepositoryTest, AFailedPublishChangesNothingAndTheNextOneCompletesIt) {
  ASSERT_TRUE(repo->publish({artifact("1.0.0")}).ok());
  Device device(fs, repo, clock);
  ASSERT_TRUE(device.refresh().ok());

  class Failing final : public ForwardingFileSystem {
   public:
    explicit Failing(FileSystem& fs) : ForwardingFileSystem(fs) {}
    std::string fail_suffix;  // a rename to a name ending so fails
    Status rename(const std::string& from, const std::string& to) override {
      if (!fail_suffix.empty() && to.ends_with(fail_suffix)) return Error{ErrorCode::kIo, "cut"};
      return ForwardingFileSystem::rename(from, to);
    }
  } failing(fs);
  auto owned_here = UpdateRepository::open(failing, kDir, clock).value();
  repo = owned_here.get();
  for (const char* cut : {".snapshot.json", "/timestamp.json"}) {
    failing.fail_suffix = cut;
    EXPECT_EQ(repo->publish({artifact("1.0.0"), artifact("2.0.0")}).error().code, ErrorCode::kIo)
        << cut;
    EXPECT_FALSE(repo->is_signed(artifact("2.0.0"))) << cut;
    EXPECT_TRUE(repo->is_signed(artifact("1.0.0"))) << cut;
    ASSERT_TRUE(device.refresh().ok());
    EXPECT_EQ(device.find("firmware/2.0.0").error().code, ErrorCode::kNotFound);
    // A refresh with the same artifacts retries; it fails the same way while the disk does.
    EXPECT_FALSE(repo->refresh().ok()) << cut;
  }
  failing.fail_suffix.clear();
  ASSERT_TRUE(repo->refresh().ok());
  EXPECT_TRUE(repo->is_signed(artifact("2.0.0")));
  ASSERT_TRUE(device.refresh().ok());
  EXPECT_TRUE(device.find("firmware/2.0.0").ok());
  // No version was used twice: the files written by the failed attempts were skipped.
  EXPECT_GT(version("targets"), 3);
}

TEST_F(UpdateRepositoryTest, OldFilesArePrunedAndOnlyMetadataNamesAreServed) {
  for (int i = 1; i <= 12; ++i)
    ASSERT_TRUE(repo->publish({artifact(std::to_string(i) + ".0.0")}).ok());
  EXPECT_EQ(version("targets"), 12);
  EXPECT_EQ(repo->metadata("4.targets.json").error().code, ErrorCode::kNotFound);
  EXPECT_TRUE(repo->metadata("5.targets.json").ok());  // the 8 newest are kept
  EXPECT_TRUE(repo->metadata("12.snapshot.json").ok());
  EXPECT_TRUE(repo->metadata("1.root.json").ok());
  EXPECT_TRUE(repo->metadata("timestamp.json").ok());
  for (const char* name : {"2.root.json", "01.root.json", "root.json", "targets.json",
                           "../keys/x.pem", "1.root.json/../../keys", "-1.root.json", "",
                           "99999999999999999999.root.json", "1.ROOT.json"}) {
    EXPECT_EQ(repo->metadata(name).error().code, ErrorCode::kNotFound) << name;
  }
}

// Three root keys, two of them needed.
class RootRotationTest : public UpdateRepositoryTest {
 protected:
  void SetUp() override {
    KeySetup setup;
    setup.root_keys = 3;
    setup.root_threshold = 2;
    auto files = create_repository(fs, kDir, kOffline, setup, clock.now());
    ASSERT_TRUE(files.ok());
    root_files = *files;
    EXPECT_EQ(create_repository(fs, kDir, kOffline, setup, clock.now()).error().code,
              ErrorCode::kAlreadyExists);
    setup.root_threshold = 4;
    EXPECT_EQ(create_repository(fs, "/elsewhere", kOffline, setup, clock.now()).error().code,
              ErrorCode::kInvalidArgument);
  }
  std::vector<std::string> root_files;
};

TEST_F(RootRotationTest, ARootRotationNeedsTheOldAndTheNewThresholds) {
  ASSERT_EQ(root_files.size(), 3u);
  reopen();
  ASSERT_TRUE(repo->publish({artifact("1.0.0")}).ok());
  Device device(fs, repo, clock);
  ASSERT_TRUE(device.refresh().ok());

  // One old key is short of the old threshold: nothing is written.
  RootRotation rotation;
  rotation.signing_key_files = {root_files[0]};
  rotation.new_online_roles = {"timestamp"};
  auto refused = rotate_root(fs, kDir, kOffline, rotation, clock.now());
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::kUnauthenticated) << refused.error().to_string();
  EXPECT_FALSE(fs.read(kDir + "/metadata/2.root.json").ok());

  // Refused before anything is made: no new timestamp key in keys/.
  EXPECT_EQ(fs.list(kDir + "/keys").value().size(), 3u);

  // Two old keys, and one new root key (threshold 1) that signs too: version 2, with a new
  // timestamp key that the running repository takes at its next refresh.
  rotation.signing_key_files = {root_files[0], root_files[2]};
  rotation.new_root_keys = 1;
  rotation.new_root_threshold = 1;
  auto rotated = rotate_root(fs, kDir, kOffline, rotation, clock.now());
  ASSERT_TRUE(rotated.ok()) << rotated.error().to_string();
  ASSERT_EQ(rotated->size(), 1u);
  // Until the server has signed under it, the new root is not served: devices go on.
  EXPECT_EQ(repo->metadata("2.root.json").error().code, ErrorCode::kNotFound);
  ASSERT_TRUE(device.refresh().ok());
  EXPECT_EQ(device.root().version, 1);
  ASSERT_TRUE(repo->refresh().ok());
  EXPECT_EQ(version("root"), 2);
  EXPECT_EQ(version("timestamp"), 2);
  ASSERT_TRUE(device.refresh().ok());
  EXPECT_EQ(device.root().version, 2);
  EXPECT_EQ(device.root().roles.at("root").keyids.size(), 1u);

  // The old root keys alone can no longer rotate: the new root's threshold is not met.
  rotation = {};
  rotation.signing_key_files = {root_files[0], root_files[1]};
  EXPECT_EQ(rotate_root(fs, kDir, kOffline, rotation, clock.now()).error().code,
            ErrorCode::kUnauthenticated);
  // The new key alone can.
  rotation.signing_key_files = *rotated;
  ASSERT_TRUE(rotate_root(fs, kDir, kOffline, rotation, clock.now()).ok());
  reopen();  // a restart walks the chain 1 → 3
  EXPECT_EQ(version("root"), 3);
}

TEST_F(UpdateRepositoryTest, MissingKeysAndADamagedRootAreClearErrors) {
  auto keys = fs.list(kDir + "/keys").value();
  ASSERT_EQ(keys.size(), 3u);  // timestamp, snapshot, targets
  for (const std::string& k : keys) ASSERT_TRUE(fs.remove(kDir + "/keys/" + k).ok());
  reopen();
  const Status refused = repo->publish({artifact("1.0.0")});
  EXPECT_EQ(refused.error().code, ErrorCode::kFailedPrecondition);
  EXPECT_NE(refused.error().message.find("not in /data/tuf/keys"), std::string::npos);
  EXPECT_EQ(repo->metadata("timestamp.json").error().code, ErrorCode::kNotFound);

  std::string root = fs.read(kDir + "/metadata/1.root.json").value();
  root[root.find("\"threshold\":1") + 12] = '2';
  ASSERT_TRUE(fs.write(kDir + "/metadata/1.root.json", root).ok());
  auto damaged = UpdateRepository::open(fs, kDir, clock);
  ASSERT_FALSE(damaged.ok());
  EXPECT_EQ(damaged.error().code, ErrorCode::kCorruption) << damaged.error().to_string();

  MemoryFileSystem empty;
  EXPECT_EQ(UpdateRepository::open(empty, kDir, clock).error().code, ErrorCode::kNotFound);
}

// A targets key rotated to a key that is not online: the targets served no longer verify
// under the new root, so nothing is signed any more, and publishing says so.
TEST_F(UpdateRepositoryTest, TargetsThatNoLongerVerifySignNothing) {
  ASSERT_TRUE(repo->publish({artifact("1.0.0")}).ok());
  ASSERT_TRUE(repo->is_signed(artifact("1.0.0")));
  const std::vector<std::string> offline = fs.list(kOffline).value();
  ASSERT_EQ(offline.size(), 1u);
  RootRotation rotation;
  rotation.signing_key_files = {kOffline + "/" + offline[0]};
  rotation.new_online_roles = {"targets"};
  ASSERT_TRUE(rotate_root(fs, kDir, kOffline, rotation, clock.now()).ok());
  // The operator takes the new targets key offline.
  const auto before = repo->state();
  std::string new_key;
  const std::vector<std::string> key_files = fs.list(kDir + "/keys").value();
  for (const std::string& k : key_files) {
    bool known = false;
    for (const auto& r : before.roles)
      for (const std::string& id : r.key_ids) known = known || k == id + ".pem";
    if (!known) new_key = k;
  }
  ASSERT_FALSE(new_key.empty());
  ASSERT_TRUE(fs.remove(kDir + "/keys/" + new_key).ok());

  const Status refused = repo->refresh();
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::kFailedPrecondition);
  EXPECT_NE(refused.error().message.find("not signed by the targets keys of root version 2"),
            std::string::npos)
      << refused.error().message;
  EXPECT_FALSE(repo->is_signed(artifact("1.0.0")));
  for (const auto& r : repo->state().roles) {
    if (r.name == "targets") {
      EXPECT_FALSE(r.valid);
    }
  }
}

TEST_F(UpdateRepositoryTest, TargetsSignedOfflineAreTakenAtTheNextPublish) {
  const Artifact a = artifact("1.0.0"), b = artifact("1.1.0");
  ASSERT_TRUE(repo->publish({a}).ok());
  Device device(fs, repo, clock);
  ASSERT_TRUE(device.refresh().ok());
  // The operator takes the targets key offline.
  std::string targets_id;
  for (const auto& r : repo->state().roles) {
    if (r.name == "targets") targets_id = r.key_ids.at(0);
  }
  const std::string online = kDir + "/keys/" + targets_id + ".pem";
  const std::string offline = kOffline + "/targets.pem";
  ASSERT_TRUE(fs.write(offline, *fs.read(online)).ok());
  ASSERT_TRUE(fs.remove(online).ok());
  reopen();  // the server restarted without it

  // A new artifact is not signed by the server any more.
  clock.advance(hours(1));
  ASSERT_TRUE(repo->publish({a, b}).ok());
  EXPECT_TRUE(repo->is_signed(a));
  EXPECT_FALSE(repo->is_signed(b));
  const int64_t served = version("targets");

  // Keys that are not the root's targets keys sign nothing.
  std::string root_key;
  const std::vector<std::string> offline_files = fs.list(kOffline).value();
  for (const std::string& f : offline_files) {
    if (f.starts_with("root-")) root_key = kOffline + "/" + f;
  }
  ASSERT_FALSE(root_key.empty());
  auto refused = sign_targets_offline(fs, kDir, {a, b}, {root_key}, days(90), clock.now());
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::kUnauthenticated) << refused.error().message;
  EXPECT_FALSE(fs.read(kDir + "/metadata/" + std::to_string(served + 1) + ".targets.json").ok());

  // Signed offline: taken at the next publish, for the server and the device alike.
  auto signed_version = sign_targets_offline(fs, kDir, {a, b}, {offline}, days(90), clock.now());
  ASSERT_TRUE(signed_version.ok()) << signed_version.error().to_string();
  EXPECT_EQ(signed_version->version, served + 1);
  EXPECT_FALSE(repo->is_signed(b));  // not before the server publishes it
  ASSERT_TRUE(repo->refresh().ok());
  EXPECT_TRUE(repo->is_signed(b));
  EXPECT_EQ(version("targets"), served + 1);
  ASSERT_TRUE(device.refresh().ok());
  EXPECT_TRUE(device.find("firmware/1.1.0").ok());

  // A file that does not verify is not taken, and the server goes on serving what it had.
  ASSERT_TRUE(fs.write(kDir + "/metadata/" + std::to_string(served + 2) + ".targets.json",
                       "{\"signed\": {}}")
                  .ok());
  clock.advance(days(2));
  ASSERT_TRUE(repo->refresh().ok());
  EXPECT_EQ(version("targets"), served + 1);
  EXPECT_TRUE(repo->is_signed(b));
  ASSERT_TRUE(device.refresh().ok());

  // With the targets key online the server signs targets itself: offline signing is refused.
  ASSERT_TRUE(fs.write(online, *fs.read(offline)).ok());
  EXPECT_EQ(sign_targets_offline(fs, kDir, {a}, {offline}, days(90), clock.now()).error().code,
            ErrorCode::kFailedPrecondition);
}

TEST_F(UpdateRepositoryTest, ADelegatedRoleSignsTheArtifactsItsPatternsMatch) {
  TargetsDelegation d = delegation("thermostats", {"thermostat-*/*"});
  d.terminating = true;
  auto keys = delegate_targets(fs, kDir, d);
  ASSERT_TRUE(keys.ok()) << keys.error().to_string();
  ASSERT_EQ(keys->written.size(), 1u);
  EXPECT_TRUE(keys->written.front().starts_with(kDir + "/keys/"));  // online: the server signs
  reopen();                                                         // as drover keys list opens it
  EXPECT_EQ(role_state("thermostats").delegation, RepositoryState::Delegation::kPending);

  const Artifact fw = artifact("1.0.0"), thermo = artifact("2.0.0", "image", "thermostat-fw");
  ASSERT_TRUE(repo->publish({fw, thermo}).ok());
  EXPECT_EQ(listed_by("targets"), std::vector<std::string>{"firmware/1.0.0"});
  EXPECT_EQ(listed_by("thermostats"), std::vector<std::string>{"thermostat-fw/2.0.0"});
  const RepositoryState::Role role = role_state("thermostats");
  EXPECT_EQ(role.delegation, RepositoryState::Delegation::kServed);
  EXPECT_TRUE(role.valid);
  EXPECT_EQ(role.paths, d.paths);
  EXPECT_TRUE(role.terminating);
  EXPECT_FALSE(role.signed_offline());
  EXPECT_TRUE(repo->is_signed(fw));
  EXPECT_TRUE(repo->is_signed(thermo));
  EXPECT_EQ(repo->state().signed_targets, 2u);

  // A device finds each where the repository put it.
  Device device(fs, repo, clock);
  ASSERT_TRUE(device.refresh().ok());
  auto found = device.find("thermostat-fw/2.0.0");
  ASSERT_TRUE(found.ok()) << found.error().to_string();
  EXPECT_EQ(found->role, "thermostats");
  EXPECT_EQ(security::to_hex(found->file.hashes.at("sha256")), thermo.sha256);
  EXPECT_EQ(device.find("firmware/1.0.0")->role, "targets");

  // Only the role whose listing changed is signed again.
  const int64_t top_level = version("targets");
  const Artifact thermo2 = artifact("2.1.0", "image", "thermostat-fw");
  ASSERT_TRUE(repo->publish({fw, thermo, thermo2}).ok());
  EXPECT_EQ(version("targets"), top_level);
  EXPECT_EQ(version("thermostats"), 2);
  ASSERT_TRUE(device.refresh().ok());
  EXPECT_EQ(device.find("thermostat-fw/2.1.0")->role, "thermostats");

  // Removed, its artifacts go back to the top-level targets; the snapshot still lists the
  // role's file (a device takes a role's disappearance for an attack) and devices go on.
  auto unused = undelegate_targets(fs, kDir, "thermostats");
  ASSERT_TRUE(unused.ok());
  EXPECT_EQ(*unused, keys->written);  // its online key: kept until the targets drop the role
  ASSERT_TRUE(repo->refresh().ok());
  EXPECT_EQ(listed_by("targets").size(), 3u);
  EXPECT_TRUE(repo->is_signed(thermo2));
  ASSERT_TRUE(device.refresh().ok());
  EXPECT_EQ(device.find("thermostat-fw/2.1.0")->role, "targets");
  auto snapshot = tuf::parse_metadata(
      *repo->metadata(std::to_string(version("snapshot")) + ".snapshot.json"), "snapshot");
  EXPECT_EQ(snapshot->meta.count("thermostats.json"), 1u);

  // A restart serves what was published.
  reopen();
  EXPECT_TRUE(repo->is_signed(thermo2));
  EXPECT_EQ(role_state("thermostats").version, -1);  // no longer delegated nor configured
}

TEST_F(UpdateRepositoryTest, ATeamSigningOfflineIsTheOnlyOneWhoCanSignItsArtifacts) {
  TargetsDelegation d = delegation("pumps", {"pump-*/*"});
  d.offline_dir = kOffline + "/pumps";
  auto made = delegate_targets(fs, kDir, d);
  ASSERT_TRUE(made.ok()) << made.error().to_string();
  const std::vector<std::string>* keys = &made->written;
  ASSERT_EQ(keys->size(), 1u);
  EXPECT_TRUE(keys->front().starts_with(kOffline + "/pumps/pumps-"));

  const Artifact fw = artifact("1.0.0"), pump = artifact("3.0.0", "image", "pump-ctl");
  ASSERT_TRUE(repo->publish({fw, pump}).ok());
  EXPECT_TRUE(repo->is_signed(fw));
  EXPECT_FALSE(repo->is_signed(pump));  // the team has not signed it
  EXPECT_TRUE(role_state("pumps").signed_offline());
  Device device(fs, repo, clock);
  ASSERT_TRUE(device.refresh().ok());
  EXPECT_TRUE(device.find("firmware/1.0.0").ok());
  EXPECT_FALSE(device.find("pump-ctl/3.0.0").ok());

  // Another key signs nothing, the top-level targets key included; the team's key signs the
  // pumps' artifacts only.
  std::string online_targets_key;
  for (const std::string& id : role_state("targets").key_ids)
    online_targets_key = kDir + "/keys/" + id + ".pem";
  EXPECT_EQ(sign_targets_offline(fs, kDir, {fw, pump}, {online_targets_key}, days(30), clock.now(),
                                 "pumps")
                .error()
                .code,
            ErrorCode::kUnauthenticated);
  EXPECT_EQ(sign_targets_offline(fs, kDir, {pump}, {keys->front()}, days(30), clock.now(), "valves")
                .error()
                .code,
            ErrorCode::kNotFound);
  auto signed_targets =
      sign_targets_offline(fs, kDir, {fw, pump}, {keys->front()}, days(30), clock.now(), "pumps");
  ASSERT_TRUE(signed_targets.ok()) << signed_targets.error().to_string();
  EXPECT_EQ(signed_targets->version, 1);
  EXPECT_EQ(signed_targets->targets, std::vector<std::string>{"pump-ctl/3.0.0"});
  ASSERT_TRUE(repo->refresh().ok());
  EXPECT_TRUE(repo->is_signed(pump));
  ASSERT_TRUE(device.refresh().ok());
  EXPECT_EQ(device.find("pump-ctl/3.0.0")->role, "pumps");

  // A server that signs the pumps' file with its own key (as a compromised one would) is
  // not believed: the file is not taken, and a device would refuse it.
  tuf::TargetsSpec forged;
  forged.version = 2;
  forged.expires = clock.now() + days(30);
  const Artifact evil = artifact("9.9.9", "evil", "pump-ctl");
  forged.targets["pump-ctl/9.9.9"] = tuf::TargetFile{evil.size_bytes,
                                                     {{"sha256", *security::from_hex(evil.sha256)}},
                                                     UpdateRepository::target_custom(evil)};
  auto server_key = security::SigningKey::from_pem(*fs.read(online_targets_key));
  ASSERT_TRUE(server_key.ok());
  ASSERT_TRUE(
      fs.write(kDir + "/metadata/2.pumps.json", *tuf::sign_targets(forged, {&*server_key})).ok());
  ASSERT_TRUE(repo->publish({fw, pump, evil}).ok());
  EXPECT_EQ(version("pumps"), 1);
  EXPECT_FALSE(repo->is_signed(evil));
  EXPECT_TRUE(repo->is_signed(pump));

  // A file of the team's that delegates further (to roles the server does not build) is not
  // taken: a device would search those first and see otherwise than the server.
  tuf::TargetsSpec deeper;
  deeper.version = 3;
  deeper.expires = clock.now() + days(30);
  deeper.targets["pump-ctl/3.0.0"] = forged.targets.begin()->second;
  deeper.targets["pump-ctl/3.0.0"].hashes = {{"sha256", *security::from_hex(pump.sha256)}};
  deeper.targets["pump-ctl/3.0.0"].length = pump.size_bytes;
  deeper.targets["pump-ctl/3.0.0"].custom = UpdateRepository::target_custom(pump);
  tuf::DelegationSpec sub;
  sub.name = "sub";
  sub.paths = {"pump-*/*"};
  sub.keys.keys = {*security::PublicKey::ed25519(server_key->public_key())};
  deeper.delegations = {sub};
  auto team_key = security::SigningKey::from_pem(*fs.read(keys->front()));
  ASSERT_TRUE(team_key.ok());
  ASSERT_TRUE(
      fs.write(kDir + "/metadata/3.pumps.json", *tuf::sign_targets(deeper, {&*team_key})).ok());
  ASSERT_TRUE(repo->refresh().ok());
  EXPECT_EQ(version("pumps"), 1);

  // Expired, the team's artifacts are no longer signed — at once, not at the next refresh —
  // and the server says so.
  clock.advance(days(31));
  EXPECT_FALSE(repo->is_signed(pump));
  EXPECT_FALSE(repo->is_signed(fw)) << "the timestamp expired too: devices would refuse it";
  ASSERT_TRUE(repo->refresh().ok());
  EXPECT_FALSE(role_state("pumps").valid);
  EXPECT_FALSE(repo->is_signed(pump));
  EXPECT_TRUE(repo->is_signed(fw));
  ASSERT_TRUE(device.refresh().ok());
  EXPECT_FALSE(device.find("pump-ctl/3.0.0").ok());
}

TEST_F(UpdateRepositoryTest, TheFirstMatchingRoleSignsAndATerminatingOneEndsTheSearch) {
  // "early" matches every pump; "late" the pump-ctl ones only. A pump-ctl artifact is the
  // first one's, as a device searches.
  TargetsDelegation early = delegation("early", {"pump-*/*"});
  early.terminating = true;
  early.offline_dir = kOffline + "/early";
  TargetsDelegation late = delegation("late", {"pump-ctl/*"});
  ASSERT_TRUE(delegate_targets(fs, kDir, early).ok());
  ASSERT_TRUE(delegate_targets(fs, kDir, late).ok());
  const Artifact pump = artifact("1.0.0", "image", "pump-ctl");
  ASSERT_TRUE(repo->publish({pump}).ok());
  // "late" is online but lists nothing: the artifact is the offline "early"'s, unsigned yet.
  EXPECT_TRUE(listed_by("late").empty());
  EXPECT_FALSE(repo->is_signed(pump));
  EXPECT_EQ(delegate_targets(fs, kDir, late).error().code, ErrorCode::kAlreadyExists);

  // Replaced by an online role, "early" signs it at once.
  early.offline_dir.clear();
  early.replace = true;
  ASSERT_TRUE(delegate_targets(fs, kDir, early).ok());
  ASSERT_TRUE(repo->refresh().ok());
  EXPECT_EQ(listed_by("early"), std::vector<std::string>{"pump-ctl/1.0.0"});
  EXPECT_TRUE(repo->is_signed(pump));
  Device device(fs, repo, clock);
  ASSERT_TRUE(device.refresh().ok());
  EXPECT_EQ(device.find("pump-ctl/1.0.0")->role, "early");
}

TEST_F(UpdateRepositoryTest, ADamagedDelegationsFileStopsNothingButIsReported) {
  TargetsDelegation d = delegation("thermostats", {"thermostat-*/*"});
  ASSERT_TRUE(delegate_targets(fs, kDir, d).ok());
  const Artifact thermo = artifact("2.0.0", "image", "thermostat-fw");
  ASSERT_TRUE(repo->publish({thermo}).ok());
  const int64_t timestamp = version("timestamp");
  ASSERT_TRUE(fs.write(kDir + "/delegations.json", "{\"roles\": [{\"name\": ").ok());
  clock.advance(hours(20));  // the timestamp falls due
  Status st = repo->refresh();
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, ErrorCode::kCorruption);
  EXPECT_NE(st.error().message.find("delegations.json"), std::string::npos) << st.error().message;
  EXPECT_NE(st.error().message.find("delegations last read"), std::string::npos);
  EXPECT_GT(version("timestamp"), timestamp);  // devices go on
  EXPECT_TRUE(repo->is_signed(thermo));        // by the role last read
  Device device(fs, repo, clock);
  ASSERT_TRUE(device.refresh().ok());
  EXPECT_EQ(device.find("thermostat-fw/2.0.0")->role, "thermostats");
}

TEST_F(UpdateRepositoryTest, ARoleWithTooFewKeysOnlineIsSignedOfflineAndRolesAreCapped) {
  TargetsDelegation d = delegation("pumps", {"pump-*/*"});
  d.keys = 2;
  d.threshold = 2;
  auto made = delegate_targets(fs, kDir, d);
  ASSERT_TRUE(made.ok());
  // One of its two keys leaves the server: the server cannot sign it, the operator can.
  const std::string away = kOffline + "/pump-key.pem";
  ASSERT_TRUE(fs.write(away, *fs.read(made->written[1])).ok());
  ASSERT_TRUE(fs.remove(made->written[1]).ok());
  const Artifact pump = artifact("1.0.0", "image", "pump-ctl");
  ASSERT_TRUE(repo->publish({pump}).ok());
  EXPECT_FALSE(repo->is_signed(pump));
  auto signed_targets = sign_targets_offline(fs, kDir, {pump}, {made->written[0], away}, days(30),
                                             clock.now(), "pumps");
  ASSERT_TRUE(signed_targets.ok()) << signed_targets.error().to_string();
  EXPECT_EQ(signed_targets->sha256, std::vector<std::string>{pump.sha256});
  ASSERT_TRUE(repo->refresh().ok());
  EXPECT_TRUE(repo->is_signed(pump));

  // A device searches at most 32 roles: no more than 31 are delegated.
  for (int i = 0; i < 30; ++i) {
    TargetsDelegation more = delegation("r" + std::to_string(i), {"r" + std::to_string(i) + "/*"});
    ASSERT_TRUE(delegate_targets(fs, kDir, more).ok()) << i;
  }
  TargetsDelegation one_more = delegation("r99", {"r99/*"});
  EXPECT_EQ(delegate_targets(fs, kDir, one_more).error().code, ErrorCode::kInvalidArgument);
}

TEST_F(UpdateRepositoryTest, ARootIsServedOnlyOnceAPublishUnderItSucceeds) {
  ASSERT_TRUE(repo->publish({artifact("1.0.0")}).ok());
  std::vector<std::string> root_keys;
  const std::vector<std::string> offline_files = fs.list(kOffline).value();
  for (const std::string& f : offline_files) root_keys.push_back(kOffline + "/" + f);
  RootRotation rotation;
  rotation.signing_key_files = root_keys;
  rotation.new_online_roles = {"timestamp"};
  ASSERT_TRUE(rotate_root(fs, kDir, kOffline, rotation, clock.now()).ok());
  // The new timestamp key is lost before the server signs with it: the publish fails, and
  // the new root is not served (devices would refuse the old timestamp under it).
  std::string new_key;
  const std::vector<std::string> online = fs.list(kDir + "/keys").value();
  for (const std::string& f : online) {
    bool old = false;
    for (const auto& r : repo->state().roles) {
      for (const std::string& id : r.key_ids) old = old || f == id + ".pem";
    }
    if (!old) new_key = kDir + "/keys/" + f;
  }
  ASSERT_FALSE(new_key.empty());
  const std::string kept = *fs.read(new_key);
  ASSERT_TRUE(fs.remove(new_key).ok());
  EXPECT_EQ(repo->refresh().error().code, ErrorCode::kFailedPrecondition);
  EXPECT_EQ(repo->metadata("2.root.json").error().code, ErrorCode::kNotFound);
  EXPECT_EQ(version("root"), 1);
  Device device(fs, repo, clock);
  ASSERT_TRUE(device.refresh().ok());
  // Back, the server signs under the new root and serves it.
  ASSERT_TRUE(fs.write(new_key, kept).ok());
  ASSERT_TRUE(repo->refresh().ok());
  EXPECT_TRUE(repo->metadata("2.root.json").ok());
  ASSERT_TRUE(device.refresh().ok());
  EXPECT_EQ(device.root().version, 2);
}

TEST(TargetsDelegationsTest, TheConfigurationIsCheckedStrictly) {
  MemoryFileSystem fs;
  ASSERT_TRUE(fs.make_dir("/tuf").ok());
  EXPECT_TRUE(load_delegations(fs, "/tuf")->empty());  // no file: no roles
  const std::string key = R"({"keytype": "ed25519", "scheme": "ed25519", "keyval": {"public": ")" +
                          security::to_hex(security::SigningKey::generate()->public_key()) +
                          R"("}})";
  auto role = [&](const std::string& fields) {
    return R"({"roles": [{"name": "pumps", "paths": ["pump-*/*"], "keys": [)" + key + "]" + fields +
           "}]}";
  };
  ASSERT_TRUE(fs.write("/tuf/delegations.json", role("")).ok());
  auto good = load_delegations(fs, "/tuf");
  ASSERT_TRUE(good.ok()) << good.error().to_string();
  ASSERT_EQ(good->size(), 1u);
  EXPECT_EQ(good->front().keys.threshold, 1);
  EXPECT_FALSE(good->front().terminating);

  for (const std::string& bad : std::vector<std::string>{
           role(R"(, "threshold": 2)"),           // above its keys
           role(R"(, "threshold": 0)"),           // below 1
           role(R"(, "hash_prefixes": ["ab"])"),  // unknown field
           R"({"roles": [{"name": "../x", "paths": ["a/*"], "keys": [)" + key + "]}]}",
           R"({"roles": [{"name": "targets", "paths": ["a/*"], "keys": [)" + key + "]}]}",
           R"({"roles": [{"name": "pumps", "paths": [], "keys": [)" + key + "]}]}",
           R"({"roles": [{"name": "pumps", "paths": ["a/../b"], "keys": [)" + key + "]}]}",
           R"({"roles": [{"name": "pumps", "paths": ["a/*"], "keys": []}]})",
           R"({"roles": [{"name": "pumps", "paths": ["a/*"], "keys": [)" + key + "," + key + "]}]}",
           // a name twice
           role("").substr(0, role("").size() - 2) +
               R"(}, {"name": "pumps", "paths": ["b/*"], "keys": [)" + key + "]}]}",
           std::string("{\"roles\": 3}"),
           std::string("not json"),
       }) {
    ASSERT_TRUE(fs.write("/tuf/delegations.json", bad).ok());
    auto loaded = load_delegations(fs, "/tuf");
    ASSERT_FALSE(loaded.ok()) << bad;
    EXPECT_EQ(loaded.error().code, ErrorCode::kCorruption) << bad;
    EXPECT_NE(loaded.error().message.find("/tuf/delegations.json"), std::string::npos);
  }

  // Names and patterns Drover makes are checked before anything is written.
  for (const std::string& name :
       std::vector<std::string>{"", "-x", "Pumps", "a.b", "a/b", "snapshot", std::string(65, 'a')})
    EXPECT_FALSE(check_delegated_role_name(name).ok()) << name;
  for (const std::string pattern : {"", "/a", "a//b", "a/./b", "..", "a b", "a/\x01"})
    EXPECT_FALSE(check_path_pattern(pattern).ok()) << pattern;
  EXPECT_TRUE(check_path_pattern("thermostat-*/1.?.*").ok());
}

}  // namespace
}  // namespace drover
