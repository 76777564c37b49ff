#include "agent/update_state.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>

namespace drover::agent {
namespace {

// The real file system, with a fault at the N-th operation: the operation fails, and a
// failing write leaves only the first half of its data — what a power cut mid-write leaves.
class FaultyFileSystem final : public ForwardingFileSystem {
 public:
  int fail_at = -1;  // the operation index that fails; -1: none
  int ops = 0;

  Result<std::string> read(const std::string& path) override {
    return real_file_system().read(path);
  }
  Status write(const std::string& path, std::string_view data) override {
    if (ops++ == fail_at) {
      (void)real_file_system().write(path, data.substr(0, data.size() / 2));
      return Error{ErrorCode::kIo, "injected: power cut mid-write"};
    }
    return real_file_system().write(path, data);
  }
  Status sync(const std::string& path) override {
    if (ops++ == fail_at) return Error{ErrorCode::kIo, "injected: fsync failed"};
    return real_file_system().sync(path);
  }
  Status rename(const std::string& from, const std::string& to) override {
    if (ops++ == fail_at) return Error{ErrorCode::kIo, "injected: rename failed"};
    return real_file_system().rename(from, to);
  }
  Status sync_dir(const std::string& dir) override {
    if (ops++ == fail_at) return Error{ErrorCode::kIo, "injected: directory fsync failed"};
    return real_file_system().sync_dir(dir);
  }
  Status remove(const std::string& p) override { return real_file_system().remove(p); }
};

class UpdateStateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/drover-agent-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    path_ = dir_ + "/update.json";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  static UpdateRecord offered() {
    UpdateRecord r;
    r.step = UpdateStep::kDownloading;
    r.rollout_id = "rollout-0001";
    r.component = "firmware";
    r.version = "2.0.0";
    r.size = 32 << 20;
    r.sha256 = std::string(64, 'a');
    r.from_version = "1.0.0";
    r.bytes_done = 1 << 20;
    r.switch_back = true;
    r.entries = 1;
    return r;
  }

  std::string dir_, path_;
};

TEST_F(UpdateStateTest, NoFileMeansIdleAndRecordsRoundTrip) {
  UpdateStateFile file(real_file_system(), path_);
  auto fresh = file.load();
  ASSERT_TRUE(fresh.ok());
  EXPECT_EQ(*fresh, UpdateRecord{});
  ASSERT_TRUE(file.save(offered()).ok());
  EXPECT_EQ(*file.load(), offered());
  EXPECT_FALSE(std::filesystem::exists(path_ + ".tmp"));
}

TEST_F(UpdateStateTest, AdvanceSavesBeforeItReturns) {
  UpdateStateFile file(real_file_system(), path_);
  auto verifying = file.advance(offered(), UpdateEvent::kDownloaded,
                                [](UpdateRecord& r) { r.bytes_done = r.size; });
  ASSERT_TRUE(verifying.ok());
  EXPECT_EQ(verifying->step, UpdateStep::kVerifying);
  EXPECT_EQ(*file.load(), *verifying);  // what the caller acts on is what a restart finds
  auto refused = file.advance(*verifying, UpdateEvent::kCommitted);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::kConflict);
  EXPECT_EQ(*file.load(), *verifying);  // a refused transition saves nothing
}

// A fault at every operation of a save, in turn: afterwards the file holds the old record
// or the new one, never a mix, and a failed save says so.
TEST_F(UpdateStateTest, ACutAtAnyStepOfASaveLeavesTheOldOrTheNewRecord) {
  const UpdateRecord before = offered();
  UpdateRecord after = offered();
  after.step = UpdateStep::kVerifying;
  after.bytes_done = after.size;
  ASSERT_TRUE(UpdateStateFile(real_file_system(), path_).save(before).ok());
  for (int cut = 0; cut < 4; ++cut) {
    FaultyFileSystem fs;
    fs.fail_at = cut;
    UpdateStateFile file(fs, path_);
    const Status st = file.save(after);
    EXPECT_FALSE(st.ok()) << "cut " << cut;
    auto found = UpdateStateFile(real_file_system(), path_).load();
    ASSERT_TRUE(found.ok()) << "cut " << cut << ": " << found.error().to_string();
    // Up to the rename the old record stands; once renamed, the new one (only the directory
    // fsync failed).
    EXPECT_EQ(*found, cut < 3 ? before : after) << "cut " << cut;
    // A failed save leaves no temporary file (on a full disk it would keep the space).
    EXPECT_NE(::access((path_ + ".tmp").c_str(), F_OK), 0) << "cut " << cut;
    ASSERT_TRUE(UpdateStateFile(real_file_system(), path_).save(before).ok());
  }
  FaultyFileSystem fs;
  ASSERT_TRUE(UpdateStateFile(fs, path_).save(after).ok());
  EXPECT_EQ(fs.ops, 4);  // write, fsync, rename, fsync dir: every one was cut above
}

// A held image's windows and the server's "wait" survive a restart.
TEST_F(UpdateStateTest, AHeldImageKeepsItsWindowsAcrossARestart) {
  UpdateStateFile file(real_file_system(), path_);
  UpdateRecord r = offered();
  r.step = UpdateStep::kReady;
  r.bytes_done = r.size;
  r.windows = {{Timestamp(hours(10)), Timestamp(hours(12))},
               {Timestamp(hours(34)), Timestamp(hours(36))}};
  r.waiting = true;
  ASSERT_TRUE(file.save(r).ok());
  auto loaded = UpdateStateFile(real_file_system(), path_).load();
  ASSERT_TRUE(loaded.ok()) << loaded.error().to_string();
  EXPECT_EQ(*loaded, r);
}

// Every outcome the agent keeps until it is delivered reads back after a restart — the
// withdrawal of a held image too (a restart before it went out used to make the file
// unreadable).
TEST_F(UpdateStateTest, EveryUndeliveredOutcomeSurvivesARestart) {
  UpdateStateFile file(real_file_system(), path_);
  for (protocol::Report outcome :
       {protocol::Report::kSucceeded, protocol::Report::kInstallFailed,
        protocol::Report::kRolledBack, protocol::Report::kUnhealthy, protocol::Report::kWithdraw}) {
    UpdateRecord r = offered();
    r.step = UpdateStep::kIdle;
    r.report = outcome;
    r.message = "why";
    ASSERT_TRUE(file.save(r).ok());
    auto loaded = UpdateStateFile(real_file_system(), path_).load();
    ASSERT_TRUE(loaded.ok()) << protocol::to_string(outcome) << ": " << loaded.error().to_string();
    EXPECT_EQ(*loaded, r);
  }
}

TEST_F(UpdateStateTest, AFileThatIsNotARecordIsCorruption) {
  UpdateStateFile file(real_file_system(), path_);
  for (const char* bad :
       {"", "{", "[]", R"({"step":"exploding"})", R"({"step":"idle","x":1})",
        R"({"step":"idle","report":"maybe"})",
        R"({"step":"idle","report":"downloading"})",  // a report, but no outcome
        R"({"step":"downloading","size":10,"bytes_done":11})", R"({"step":"idle","size":-1})",
        R"({"step":"ready","windows":[[2000,1000]]})", R"({"step":"ready","windows":[[1000]]})",
        R"({"step":"ready","windows":[[-1,1000]]})", R"({"step":"ready","windows":{"a":1}})",
        R"({"step":"ready","waiting":"yes"})"}) {
    ASSERT_TRUE(real_file_system().write(path_, bad).ok());
    auto r = file.load();
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().code, ErrorCode::kCorruption) << bad;
  }
}

}  // namespace
}  // namespace drover::agent
