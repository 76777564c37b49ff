#include "fleet/audit_log.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "../common/forwarding_store.h"
#include "base/memory_file_system.h"

namespace drover {
namespace {

namespace stdfs = std::filesystem;

struct Dir {
  std::string path;
  Dir() {
    std::string tmpl = (stdfs::temp_directory_path() / "drover-audit-XXXXXX").string();
    path = ::mkdtemp(tmpl.data());
  }
  ~Dir() {
    std::error_code ignored;
    stdfs::remove_all(path, ignored);
  }
};

AuditEvent event(int i) {
  return {.actor = "token:t1:alice",
          .action = "POST /api/v1/rollouts/{id}/pause",
          .subject = "ro-" + std::to_string(i),
          .detail = {{"reason", "step " + std::to_string(i)}}};
}

class AuditLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = open_sqlite_store(dir.path + "/store.db");
    ASSERT_TRUE(s.ok()) << s.error().to_string();
    store = std::move(*s);
  }
  Result<std::unique_ptr<AuditLog>> open_log() {
    return AuditLog::open(
        *store, real_file_system(), clock,
        {.key_path = dir.path + "/audit.key", .checkpoint_path = dir.path + "/audit.checkpoint"});
  }
  // Runs SQL on the database behind the store's back, as someone with the file would.
  void tamper(const std::string& sql) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open((dir.path + "/store.db").c_str(), &db), SQLITE_OK);
    char* err = nullptr;
    const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
    EXPECT_EQ(rc, SQLITE_OK) << (err ? err : "");
    sqlite3_free(err);
    sqlite3_close(db);
  }
  Result<AuditVerification> verify(std::string_view public_key,
                                   std::optional<std::string_view> saved = std::nullopt) {
    auto records = store->read_audit(0, 100000);
    if (!records.ok()) return records.error();
    return verify_audit_log(*records, public_key, saved);
  }

  Dir dir;
  ManualClock clock{Timestamp(std::chrono::milliseconds(1'780'000'000'000))};
  std::unique_ptr<Store> store;
};

TEST_F(AuditLogTest, EntriesAreReadBackWithSignedCheckpointsAndProofs) {
  auto log = open_log();
  ASSERT_TRUE(log.ok()) << log.error().to_string();
  EXPECT_EQ((*log)->checkpoint().error().code, ErrorCode::kNotFound);
  for (int i = 0; i < 10; ++i) {
    clock.advance(seconds(1));
    auto index = (*log)->record(event(i));
    ASSERT_TRUE(index.ok()) << index.error().to_string();
    EXPECT_EQ(*index, static_cast<uint64_t>(i));
  }
  auto entries = (*log)->entries(3, 4);
  ASSERT_TRUE(entries.ok());
  ASSERT_EQ(entries->size(), 4u);
  EXPECT_EQ((*entries)[0].index, 3u);
  EXPECT_EQ((*entries)[0].event.subject, "ro-3");
  EXPECT_EQ((*entries)[0].event.detail.at("reason"), "step 3");
  EXPECT_EQ((*entries)[0].at, Timestamp(std::chrono::milliseconds(1'780'000'004'000)));

  auto cp = (*log)->checkpoint();
  ASSERT_TRUE(cp.ok());
  EXPECT_EQ(cp->size, 10u);
  // The checkpoint is what a third party checks, with nothing but the public key.
  auto reparsed = parse_audit_checkpoint(cp->text, (*log)->public_key());
  ASSERT_TRUE(reparsed.ok());
  EXPECT_EQ(reparsed->root, cp->root);
  for (const AuditEntry& e : *entries) {
    auto proof = (*log)->inclusion_proof(e.index, cp->size);
    ASSERT_TRUE(proof.ok());
    EXPECT_TRUE(security::verify_inclusion(e.index, cp->size, e.leaf_hash, *proof, cp->root).ok());
  }
  // Another key's view of the same checkpoint: refused.
  auto other = security::SigningKey::generate();
  EXPECT_FALSE(parse_audit_checkpoint(cp->text, other->public_key()).ok());

  auto verified = verify((*log)->public_key(), cp->text);
  ASSERT_TRUE(verified.ok()) << verified.error().to_string();
  EXPECT_EQ(verified->size, 10u);
  EXPECT_EQ(verified->root, cp->root);
}

TEST_F(AuditLogTest, ReopenedItVerifiesWhatIsStoredAndGoesOn) {
  std::string old_checkpoint, key;
  {
    auto log = open_log();
    ASSERT_TRUE(log.ok());
    for (int i = 0; i < 5; ++i) ASSERT_TRUE((*log)->record(event(i)).ok());
    old_checkpoint = (*log)->checkpoint()->text;
    key = (*log)->public_key();
  }
  auto log = open_log();
  ASSERT_TRUE(log.ok()) << log.error().to_string();
  EXPECT_EQ((*log)->public_key(), key);  // the same key, read back
  EXPECT_EQ((*log)->size(), 5u);
  ASSERT_TRUE((*log)->record(event(5)).ok());
  auto cp = (*log)->checkpoint();
  auto old = parse_audit_checkpoint(old_checkpoint, key);
  ASSERT_TRUE(old.ok());
  auto proof = (*log)->consistency_proof(5, 6);
  ASSERT_TRUE(proof.ok());
  EXPECT_TRUE(security::verify_consistency(5, 6, old->root, cp->root, *proof).ok());
  EXPECT_TRUE(verify(key, old_checkpoint).ok());
}

TEST_F(AuditLogTest, AnotherWriterOnTheSameDatabaseIsCaughtUpWith) {
  auto server = open_log();
  auto cli = open_log();
  ASSERT_TRUE(server.ok() && cli.ok());
  ASSERT_TRUE((*server)->record(event(0)).ok());
  auto by_cli = (*cli)->record(event(1));  // it reads the server's entry first
  ASSERT_TRUE(by_cli.ok()) << by_cli.error().to_string();
  EXPECT_EQ(*by_cli, 1u);
  auto next = (*server)->record(event(2));
  ASSERT_TRUE(next.ok()) << next.error().to_string();
  EXPECT_EQ(*next, 2u);
  EXPECT_TRUE(verify((*server)->public_key()).ok());
}

// Each way of changing history in the database is caught, and says where.
TEST_F(AuditLogTest, EditingDeletingReorderingOrInsertingStoredEntriesIsDetected) {
  std::string key;
  std::string saved;  // an auditor's copy of the checkpoint at 8 entries
  {
    auto log = open_log();
    ASSERT_TRUE(log.ok());
    for (int i = 0; i < 8; ++i) ASSERT_TRUE((*log)->record(event(i)).ok());
    saved = (*log)->checkpoint()->text;
    key = (*log)->public_key();
  }
  ASSERT_TRUE(verify(key, saved).ok());
  const std::string backup = dir.path + "/clean.db";
  tamper("VACUUM INTO '" + backup + "'");
  const auto restore = [&] {
    store.reset();
    stdfs::copy_file(backup, dir.path + "/store.db", stdfs::copy_options::overwrite_existing);
    stdfs::remove(dir.path + "/store.db-wal");
    stdfs::remove(dir.path + "/store.db-shm");
    store = std::move(open_sqlite_store(dir.path + "/store.db")).value();
    ASSERT_TRUE(verify(key, saved).ok());
  };
  const auto expect_caught = [&](const std::string& what, const std::string& sql,
                                 const std::string& message_part) {
    store.reset();
    tamper(sql);
    store = std::move(open_sqlite_store(dir.path + "/store.db")).value();
    auto v = verify(key, saved);
    ASSERT_FALSE(v.ok()) << what << " was not detected";
    EXPECT_EQ(v.error().code, ErrorCode::kCorruption) << what;
    EXPECT_NE(v.error().message.find(message_part), std::string::npos)
        << what << ": " << v.error().message;
    // The server refuses to open it too, rather than sign on top of it.
    auto reopened = open_log();
    ASSERT_FALSE(reopened.ok()) << what;
    EXPECT_EQ(reopened.error().code, ErrorCode::kCorruption) << what;
    restore();
  };
  // An entry's text changed (a pause made to look like someone else's).
  expect_caught("an edit",
                "UPDATE audit_log SET entry = replace(entry, 'alice', 'bobby') WHERE idx = 3",
                "entry 3");
  // An entry gone from the middle.
  expect_caught("a deletion", "DELETE FROM audit_log WHERE idx = 4", "entry 4: missing");
  // Two entries swapped (with their checkpoints: the rows moved whole).
  expect_caught("a reordering",
                "UPDATE audit_log SET idx = 1000 WHERE idx = 2; "
                "UPDATE audit_log SET idx = 2 WHERE idx = 5; "
                "UPDATE audit_log SET idx = 5 WHERE idx = 1000",
                "entry 2");
  // An entry slipped in between, the later ones moved up to make room.
  expect_caught("an insertion",
                "UPDATE audit_log SET idx = idx + 1000 WHERE idx >= 6; "
                "UPDATE audit_log SET idx = idx - 999 WHERE idx >= 1000; "
                "INSERT INTO audit_log SELECT 6, replace(entry, 'ro-6', 'ro-x'), checkpoint "
                "FROM audit_log WHERE idx = 7",
                "entry 6");
  // The newest entries cut off with their checkpoints: the rows left verify among
  // themselves, but not against a checkpoint saved earlier (nor the server's file).
  store.reset();
  tamper("DELETE FROM audit_log WHERE idx >= 6");
  store = std::move(open_sqlite_store(dir.path + "/store.db")).value();
  EXPECT_TRUE(verify(key).ok());
  auto cut = verify(key, saved);
  ASSERT_FALSE(cut.ok());
  EXPECT_NE(cut.error().message.find("entries were removed"), std::string::npos)
      << cut.error().message;
  auto reopened = open_log();
  ASSERT_FALSE(reopened.ok());
  EXPECT_NE(reopened.error().message.find("entries were removed"), std::string::npos);
}

// Opening checks every entry and root but only the newest signature (it covers the whole
// tree); `verify` checks every signature.
TEST_F(AuditLogTest, ABadSignatureIsCaughtOnTheNewestByOpenAndOnAnyByVerify) {
  std::string key;
  {
    auto log = open_log();
    ASSERT_TRUE(log.ok()) << log.error().to_string();
    for (int i = 0; i < 6; ++i) ASSERT_TRUE((*log)->record(event(i)).ok());
    key = (*log)->public_key();
  }
  const auto bad_signature = [&](int idx) {
    tamper(R"(UPDATE audit_log SET checkpoint = replace(checkpoint, '"sig":"', '"sig":"00') )"
           "WHERE idx = " +
           std::to_string(idx));
  };
  bad_signature(5);
  auto opened = open_log();
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.error().code, ErrorCode::kCorruption);
  EXPECT_NE(opened.error().message.find("entry 5"), std::string::npos) << opened.error().message;
  EXPECT_NE(opened.error().message.find("signature"), std::string::npos) << opened.error().message;
  tamper(R"(UPDATE audit_log SET checkpoint = replace(checkpoint, '"sig":"00', '"sig":"') )"
         "WHERE idx = 5");
  ASSERT_TRUE(open_log().ok());

  bad_signature(2);
  EXPECT_TRUE(open_log().ok()) << "the roots still match every entry";
  auto verified = verify(key);
  ASSERT_FALSE(verified.ok());
  EXPECT_EQ(verified.error().code, ErrorCode::kCorruption);
  EXPECT_NE(verified.error().message.find("entry 2"), std::string::npos)
      << verified.error().message;
}

TEST_F(AuditLogTest, ASavedCheckpointOfAnotherHistoryIsCaught) {
  std::string key, forked;
  {
    auto log = open_log();
    ASSERT_TRUE(log.ok());
    for (int i = 0; i < 4; ++i) ASSERT_TRUE((*log)->record(event(i)).ok());
    key = (*log)->public_key();
  }
  {
    // The same key, another history: a rewritten log re-signed by whoever holds the key.
    auto other_store = make_memory_store();
    MemoryFileSystem fs;
    ASSERT_TRUE(
        fs.write("/audit.key", real_file_system().read(dir.path + "/audit.key").value()).ok());
    auto other = AuditLog::open(*other_store, fs, clock,
                                {.key_path = "/audit.key", .checkpoint_path = "/audit.cp"});
    ASSERT_TRUE(other.ok());
    for (int i = 0; i < 3; ++i) ASSERT_TRUE((*other)->record(event(100 + i)).ok());
    forked = (*other)->checkpoint()->text;
  }
  auto v = verify(key, forked);
  ASSERT_FALSE(v.ok());
  EXPECT_NE(v.error().message.find("rewritten"), std::string::npos) << v.error().message;
  // A saved checkpoint that is not one (or is signed by another key) is refused outright.
  EXPECT_EQ(verify(key, "{}").error().code, ErrorCode::kInvalidArgument);
  auto stranger = security::SigningKey::generate();
  EXPECT_EQ(verify(stranger->public_key(), forked).error().code, ErrorCode::kInvalidArgument);
}

// Another process appends between this log's read of the store and its own append: the store
// refuses the stale index, and the log reads the other's entry and appends after it.
class RacingStore final : public testing::ForwardingStore {
 public:
  using ForwardingStore::ForwardingStore;
  AuditLog* other = nullptr;
  Status append_audit(const AuditRecord& r) override {
    if (other != nullptr) {
      // Another process: its own thread, holding none of this one's locks.
      AuditLog* o = std::exchange(other, nullptr);
      std::thread([o] { EXPECT_TRUE(o->record(event(99)).ok()); }).join();
    }
    return ForwardingStore::append_audit(r);
  }
};

TEST_F(AuditLogTest, AnAppendRacedByAnotherProcessGoesAfterIt) {
  auto shared = make_memory_store();
  RacingStore racing(std::move(shared));
  MemoryFileSystem fs;
  auto mine = AuditLog::open(racing, fs, clock, {.key_path = "/k", .checkpoint_path = "/cp"});
  ASSERT_TRUE(mine.ok());
  // The other process's log, on the same store.
  auto theirs = AuditLog::open(racing, fs, clock, {.key_path = "/k", .checkpoint_path = "/cp"});
  ASSERT_TRUE(theirs.ok());
  ASSERT_TRUE((*mine)->record(event(0)).ok());
  racing.other = theirs->get();
  auto index = (*mine)->record(event(1));
  ASSERT_TRUE(index.ok()) << index.error().to_string();
  EXPECT_EQ(*index, 2u);  // after the other's entry 1
  auto entries = (*mine)->entries(0, 10);
  ASSERT_TRUE(entries.ok());
  ASSERT_EQ(entries->size(), 3u);
  EXPECT_EQ((*entries)[1].event.subject, "ro-99");
  EXPECT_EQ((*entries)[2].event.subject, "ro-1");
  auto records = racing.read_audit(0, 10);
  EXPECT_TRUE(verify_audit_log(*records, (*mine)->public_key()).ok());
}

// A file system whose writes fail on cue (a full disk for the checkpoint file).
class FailingWrites final : public FileSystem {
 public:
  bool fail = false;
  Result<std::string> read(const std::string& p) override { return mem.read(p); }
  Status write(const std::string& p, std::string_view d) override {
    if (fail) return io_error("no space");
    return mem.write(p, d);
  }
  Status sync(const std::string& p) override { return mem.sync(p); }
  Status rename(const std::string& a, const std::string& b) override { return mem.rename(a, b); }
  Status sync_dir(const std::string& d) override { return mem.sync_dir(d); }
  Status remove(const std::string& p) override { return mem.remove(p); }
  Result<std::unique_ptr<AppendFile>> open_append(const std::string& p) override {
    return mem.open_append(p);
  }
  Result<std::unique_ptr<ReadFile>> open_read(const std::string& p) override {
    return mem.open_read(p);
  }
  Result<std::vector<std::string>> list(const std::string& d) override { return mem.list(d); }
  Status make_dir(const std::string& d) override { return mem.make_dir(d); }
  Status truncate(const std::string& p, uint64_t n) override { return mem.truncate(p, n); }
  MemoryFileSystem mem;
};

// The row is what counts: a checkpoint file that cannot be written does not undo or fail
// an entry that is stored, and is brought up to date at the next append.
TEST_F(AuditLogTest, ACheckpointFileThatCannotBeWrittenDoesNotFailTheRecord) {
  auto mem_store = make_memory_store();
  FailingWrites fs;
  auto log = AuditLog::open(*mem_store, fs, clock, {.key_path = "/k", .checkpoint_path = "/cp"});
  ASSERT_TRUE(log.ok());
  ASSERT_TRUE((*log)->record(event(0)).ok());
  fs.fail = true;
  auto index = (*log)->record(event(1));
  ASSERT_TRUE(index.ok()) << index.error().to_string();
  EXPECT_EQ(*index, 1u);
  EXPECT_FALSE((*log)->file_error().ok());
  EXPECT_EQ(parse_audit_checkpoint(fs.mem.read("/cp").value(), (*log)->public_key())->size, 1u);
  fs.fail = false;
  ASSERT_TRUE((*log)->record(event(2)).ok());
  EXPECT_TRUE((*log)->file_error().ok());
  EXPECT_EQ(parse_audit_checkpoint(fs.mem.read("/cp").value(), (*log)->public_key())->size, 3u);
}

// A store that fails the next append on cue.
class FailingAppends final : public testing::ForwardingStore {
 public:
  using ForwardingStore::ForwardingStore;
  bool fail = false;
  Status append_audit(const AuditRecord& r) override {
    if (fail) return io_error("disk full");
    return ForwardingStore::append_audit(r);
  }
};

TEST_F(AuditLogTest, AnAppendTheStoreRefusesRecordsNothing) {
  FailingAppends failing(make_memory_store());
  MemoryFileSystem fs;
  auto log = AuditLog::open(failing, fs, clock, {.key_path = "/k", .checkpoint_path = "/cp"});
  ASSERT_TRUE(log.ok());
  ASSERT_TRUE((*log)->record(event(0)).ok());
  const std::string before = (*log)->checkpoint()->text;
  failing.fail = true;
  EXPECT_EQ((*log)->record(event(1)).error().code, ErrorCode::kIo);
  EXPECT_EQ((*log)->size(), 1u);
  EXPECT_EQ((*log)->checkpoint()->text, before);
  EXPECT_EQ(fs.read("/cp").value(), before);
  failing.fail = false;
  auto next = (*log)->record(event(2));
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(*next, 1u);
  auto records = failing.read_audit(0, 10);
  ASSERT_TRUE(records.ok());
  EXPECT_TRUE(verify_audit_log(*records, (*log)->public_key()).ok());
}

TEST(AuditEntry, OnlyCanonicalWellFormedEntriesAreRead) {
  const std::string good = R"({"action":"a","actor":"b","at":1,"detail":{"k":"v"},"subject":"c"})";
  ASSERT_TRUE(parse_audit_entry(0, good).ok());
  for (const std::string& bad : std::vector<std::string>{
           std::string(
               R"({"actor":"b","action":"a","at":1,"detail":{},"subject":"c"})"),  // key order
           R"({"action":"a", "actor":"b","at":1,"detail":{},"subject":"c"})",      // a space
           R"({"action":"a","actor":"b","at":1,"detail":{"k":1},"subject":"c"})",
           R"({"action":"a","actor":"b","at":"1","detail":{},"subject":"c"})",
           R"({"action":"a","actor":"b","at":1,"subject":"c"})", std::string(R"([])"),
           std::string(), std::string("{"), std::string("\0", 1),
           std::string(R"({"action":"a","actor":"b","at":1,"detail":{},"subject":"c"} )")}) {
    EXPECT_FALSE(parse_audit_entry(0, bad).ok()) << bad;
  }
}

}  // namespace
}  // namespace drover
