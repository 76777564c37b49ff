#include "fleet/artifact_service.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <sstream>
#include <utility>

#include "../common/fleet_fixture.h"
#include "../common/forwarding_store.h"
#include "security/crypto.h"

namespace drover::testing {
namespace {

namespace fs = std::filesystem;

std::string sha256_hex(std::string_view s) { return security::to_hex(security::sha256(s)); }

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Fails every write on cue, and can run something in the middle of a list_rollouts() (after
// reading the list it returns), as another request's thread could.
class FailingStore final : public ForwardingStore {
 public:
  using ForwardingStore::ForwardingStore;
  bool fail = false;
  // Reads do not see artifact records yet, as a group-committed store's reads do not see
  // writes still queued for the disk.
  bool lagging = false;
  std::function<void()> during_list_rollouts;
  Result<std::optional<Artifact>> get_artifact(std::string_view name,
                                               std::string_view version) override {
    if (lagging) return std::optional<Artifact>();
    return ForwardingStore::get_artifact(name, version);
  }
  Status apply(const WriteBatch& b) override {
    if (fail) return io_error("disk full");
    return ForwardingStore::apply(b);
  }
  Result<std::vector<Rollout>> list_rollouts() override {
    auto out = ForwardingStore::list_rollouts();
    if (auto hook = std::exchange(during_list_rollouts, nullptr)) hook();
    return out;
  }
};

class ArtifactServiceTest : public ::testing::Test {
 protected:
  ArtifactServiceTest() {
    std::string pattern = (fs::temp_directory_path() / "drover-artifacts-XXXXXX").string();
    EXPECT_NE(::mkdtemp(pattern.data()), nullptr);
    root_ = pattern;
    auto owned = std::make_unique<FailingStore>(make_memory_store());
    store_ = owned.get();
    fleet_ = std::make_unique<Fleet>(at("2026-06-01T12:00:00Z"), std::move(owned));
    ArtifactSpace space;
    space.reserve_bytes = 1000;
    space.free_bytes = [this](const std::string& path) -> Result<uint64_t> {
      EXPECT_EQ(path, (root_ / "content").string());
      return free_;
    };
    service_ = std::make_unique<ArtifactService>(fleet_->store(), *fleet_->engine,
                                                 (root_ / "content").string(), space);
  }
  ~ArtifactServiceTest() override {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }

  static Artifact meta(std::string name, std::string version) {
    Artifact a;
    a.name = std::move(name);
    a.version = std::move(version);
    a.device_types = {"ctl"};
    return a;
  }

  // Content files (incoming/ is a directory, not content).
  size_t files() const {
    std::error_code ec;
    size_t n = 0;
    for (auto it = fs::directory_iterator(root_ / "content", ec); !ec && it != fs::end(it);
         it.increment(ec)) {
      n += it->is_regular_file() ? 1 : 0;
    }
    return n;
  }

  fs::path root_;
  uint64_t free_ = uint64_t{1} << 40;  // what the disk has free, as the service is told
  FailingStore* store_ = nullptr;
  std::unique_ptr<Fleet> fleet_;
  std::unique_ptr<ArtifactService> service_;
};

TEST_F(ArtifactServiceTest, UploadComputesSizeAndHashWhateverTheCallerSays) {
  Artifact m = meta("app", "1.0.0");
  m.size_bytes = 999;
  m.sha256 = std::string(64, 'f');
  m.device_types = {"zeta", "alpha"};
  auto a = service_->upload(m, "payload");
  ASSERT_TRUE(a.ok()) << a.error().to_string();
  EXPECT_EQ(a->size_bytes, 7u);
  EXPECT_EQ(a->sha256, sha256_hex("payload"));
  EXPECT_EQ(a->device_types, (std::vector<std::string>{"alpha", "zeta"}));
  EXPECT_EQ(service_->path_of(*a), (root_ / "content" / sha256_hex("payload")).string());
  EXPECT_EQ(read_file(service_->path_of(*a)), "payload");
  auto got = service_->get("app", "1.0.0");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(*got, *a);
  EXPECT_EQ(service_->get("app", "1.0.1").error().code, ErrorCode::kNotFound);
}

TEST_F(ArtifactServiceTest, InvalidUploadsWriteNoFileAndNoRecord) {
  const size_t records = fleet_->store().list_artifacts()->size();
  struct Case {
    Artifact m;
    std::string content, expected;
  };
  Artifact no_types = meta("app", "1.0.0");
  no_types.device_types.clear();
  Artifact self_dep = meta("app", "1.0.0");
  self_dep.depends = {{"app", ">=1.0.0"}};
  const std::vector<Case> cases = {
      {meta("../app", "1.0.0"), "x", ""},
      {meta("app", "../1"), "x", ""},
      {meta("app", "1.0.0"), "", ""},
      {no_types, "x", ""},
      {self_dep, "x", ""},
      {meta("app", "1.0.0"), "x", sha256_hex("y")},
      {meta("app", "1.0.0"), "x", "short"},
  };
  for (const Case& c : cases) {
    auto r = service_->upload(c.m, c.content, c.expected);
    ASSERT_FALSE(r.ok()) << c.m.key();
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument) << c.m.key();
  }
  EXPECT_EQ(files(), 0u);
  EXPECT_EQ(fleet_->store().list_artifacts()->size(), records);
}

TEST_F(ArtifactServiceTest, AFailedRecordWriteRecordsNothing) {
  store_->fail = true;
  auto r = service_->upload(meta("app", "1.0.0"), "payload");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kIo);
  store_->fail = false;
  EXPECT_FALSE(fleet_->store().get_artifact("app", "1.0.0")->has_value());
  // The content went first (persist, then act) and may stay behind; the retry succeeds.
  auto retry = service_->upload(meta("app", "1.0.0"), "payload");
  ASSERT_TRUE(retry.ok()) << retry.error().to_string();
  EXPECT_EQ(read_file(service_->path_of(*retry)), "payload");
  EXPECT_EQ(files(), 1u);
}

TEST_F(ArtifactServiceTest, AnUnwritableDirectoryIsAnIoErrorAndRecordsNothing) {
  // The content directory's place is taken by a file.
  std::ofstream(root_ / "content") << "in the way";
  auto r = service_->upload(meta("app", "1.0.0"), "payload");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kIo);
  EXPECT_FALSE(fleet_->store().get_artifact("app", "1.0.0")->has_value());
  EXPECT_EQ(read_file(root_ / "content"), "in the way");
}

TEST_F(ArtifactServiceTest, RemoveKeepsContentOtherVersionsShare) {
  ASSERT_TRUE(service_->upload(meta("app", "1.0.0"), "same").ok());
  ASSERT_TRUE(service_->upload(meta("lib", "1.0.0"), "same").ok());
  EXPECT_EQ(files(), 1u);
  ASSERT_TRUE(service_->remove("app", "1.0.0").ok());
  EXPECT_EQ(files(), 1u);
  EXPECT_EQ(service_->remove("app", "1.0.0").error().code, ErrorCode::kNotFound);
  ASSERT_TRUE(service_->remove("lib", "1.0.0").ok());
  EXPECT_EQ(files(), 0u);
  // Removing an unknown artifact touches no file.
  ASSERT_TRUE(service_->upload(meta("app", "2.0.0"), "two").ok());
  EXPECT_EQ(service_->remove("nope", "1.0.0").error().code, ErrorCode::kNotFound);
  EXPECT_EQ(files(), 1u);
}

TEST_F(ArtifactServiceTest, RemoveRefusesWhatARolloutInstallsOrMaySendBack) {
  Fleet& f = *fleet_;
  f.add_devices(2, "rev-a");
  auto created = f.engine->create(simple_plan({{"all", 100, 0, Duration(0)}}));
  ASSERT_TRUE(created.ok());
  for (const char* version : {"2.0.0", "1.0.0"}) {
    auto st = service_->remove("firmware", version);
    ASSERT_FALSE(st.ok()) << version;
    EXPECT_EQ(st.error().code, ErrorCode::kFailedPrecondition) << version;
    EXPECT_NE(st.error().message.find(created->id), std::string::npos) << st.error().message;
    EXPECT_TRUE(f.store().get_artifact("firmware", version)->has_value());
  }
  // A version of another component is free to go.
  ASSERT_TRUE(service_->upload(meta("app", "1.0.0"), "app").ok());
  EXPECT_TRUE(service_->remove("app", "1.0.0").ok());
}

RolloutPlan app_plan(const std::string& version) {
  RolloutPlan p = simple_plan({{"all", 100, 0, Duration(0)}});
  p.artifact_name = "app";
  p.artifact_version = version;
  return p;
}

// The engine caches the artifacts it has looked up (RolloutEngine::artifact). An artifact
// looked up by a create() that then failed to write (here: the disk was full) and deleted
// afterwards must not be found in that cache: not by a later create() (a rollout of an
// artifact that no longer exists would fail the next load() with kCorruption), and not after
// a re-upload with other content (the offer must carry the new size and sha256).
TEST_F(ArtifactServiceTest, ADeletedArtifactCannotBeRolledOutFromTheEnginesCache) {
  Fleet& f = *fleet_;
  f.add_devices(2, "rev-a");
  ASSERT_TRUE(service_->upload(meta("app", "1.0.0"), "old content").ok());
  store_->fail = true;
  ASSERT_FALSE(f.engine->create(app_plan("1.0.0")).ok());  // looked up, then the write failed
  store_->fail = false;
  ASSERT_TRUE(service_->remove("app", "1.0.0").ok());  // no rollout uses it

  auto stale = f.engine->create(app_plan("1.0.0"));
  if (stale.ok()) {
    ADD_FAILURE() << "a rollout of a deleted artifact was created: " << stale->id;
    ASSERT_TRUE(f.engine->abort(stale->id).ok());
  } else {
    EXPECT_EQ(stale.error().code, ErrorCode::kFailedPrecondition);
  }

  // Uploaded again with other content, a rollout offers the new content.
  auto fresh = service_->upload(meta("app", "1.0.0"), "new, longer content");
  ASSERT_TRUE(fresh.ok());
  const std::string id = f.start(app_plan("1.0.0"));
  auto offer = f.check_in(f.ids[0]);
  ASSERT_TRUE(offer.has_value());
  EXPECT_EQ(offer->sha256, fresh->sha256);
  EXPECT_EQ(offer->size_bytes, fresh->size_bytes);
  RolloutEngine restarted(f.store(), f.clock);
  EXPECT_TRUE(restarted.load().ok());
}

// A DELETE of an artifact and a POST of a rollout for it, on two server threads: the
// create() is started (on another thread) just as remove() reads the rollouts, and may not
// slip in between remove()'s check and its delete. One of the two must lose, and the engine
// must load afterwards (a rollout whose artifact is gone would fail load() with kCorruption).
TEST_F(ArtifactServiceTest, ARolloutCreatedDuringARemoveKeepsItsArtifact) {
  Fleet& f = *fleet_;
  f.add_devices(2, "rev-a");
  ASSERT_TRUE(service_->upload(meta("app", "1.0.0"), "content").ok());
  std::future<Result<Rollout>> racing;
  bool fired = false;
  store_->during_list_rollouts = [&] {
    if (fired) return;
    fired = true;
    racing = std::async(std::launch::async, [&] { return f.engine->create(app_plan("1.0.0")); });
    // Give it every chance to run now, in the middle of remove().
    racing.wait_for(std::chrono::milliseconds(200));
  };
  const Status removed = service_->remove("app", "1.0.0");
  ASSERT_TRUE(fired);
  const Result<Rollout> created = racing.get();
  EXPECT_TRUE(!removed.ok() || !created.ok()) << "removed the artifact of " << created->id;
  if (created.ok()) {
    EXPECT_TRUE(f.store().get_artifact("app", "1.0.0")->has_value());
  }
  RolloutEngine restarted(f.store(), f.clock);
  const Status loaded = restarted.load();
  EXPECT_TRUE(loaded.ok()) << loaded.error().to_string();
}

// Room on the disk: an upload that would leave less than the reserve free is refused before a
// byte is written, with what is free in the message; one that fits is stored.
TEST_F(ArtifactServiceTest, AnUploadThatDoesNotFitIsRefusedBeforeItIsWritten) {
  free_ = 1000 + 6;                                            // the reserve and six bytes
  auto r = service_->upload(meta("app", "1.0.0"), "payload");  // seven
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kResourceExhausted);
  EXPECT_NE(r.error().message.find("1006 B free"), std::string::npos) << r.error().message;
  EXPECT_EQ(files(), 0u);
  EXPECT_FALSE(fleet_->store().get_artifact("app", "1.0.0")->has_value());
  EXPECT_EQ(service_->admit(7).error().code, ErrorCode::kResourceExhausted);
  EXPECT_TRUE(service_->admit(6).ok());
  EXPECT_TRUE(fs::is_directory(service_->incoming_directory()));
  free_ = 900;  // below the reserve already
  EXPECT_EQ(service_->admit(0).error().code, ErrorCode::kResourceExhausted);
  free_ = 1000 + 7;
  EXPECT_TRUE(service_->upload(meta("app", "1.0.0"), "payload").ok());
  EXPECT_EQ(files(), 1u);
  // Removing needs no room: it is how space is freed.
  free_ = 0;
  EXPECT_TRUE(service_->remove("app", "1.0.0").ok());
  EXPECT_EQ(files(), 0u);
}

// Uploads still arriving hold what they declared: a second one is judged against what is
// left after the first, and the room comes back when the first is over (its hold released).
TEST_F(ArtifactServiceTest, AdmittedUploadsHoldTheirRoomUntilTheyAreOver) {
  free_ = 1000 + 10;  // the reserve and ten bytes
  auto first = service_->admit(6);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(service_->promised_bytes(), 6u);
  auto second = service_->admit(6);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.error().code, ErrorCode::kResourceExhausted);
  EXPECT_NE(second.error().message.find("6 B promised"), std::string::npos)
      << second.error().message;
  auto small = service_->admit(4);
  ASSERT_TRUE(small.ok());
  // In-memory uploads count the promises too.
  auto in_memory = service_->upload(meta("app", "1.0.0"), "x");
  ASSERT_FALSE(in_memory.ok());
  EXPECT_EQ(in_memory.error().code, ErrorCode::kResourceExhausted);
  // What has arrived is counted once, by the disk: the first has spooled 4 of its 6 bytes
  // (6 free now), so 2 of it and the small one's 4 are still to come.
  std::ofstream(service_->incoming_directory() + "/r1-1.part") << "abcd";
  free_ -= 4;
  EXPECT_FALSE(service_->admit(1).ok());
  small->reset();
  EXPECT_TRUE(service_->admit(4).ok());   // 6 free, 2 still to come
  EXPECT_FALSE(service_->admit(5).ok());  // counting the spooled bytes twice would refuse 4
  fs::remove(service_->incoming_directory() + "/r1-1.part");
  free_ += 4;
  first->reset();
  EXPECT_EQ(service_->promised_bytes(), 0u);
  EXPECT_TRUE(service_->admit(10).ok());
}

// A spooled upload is moved into place, not copied, and checked like any other.
TEST_F(ArtifactServiceTest, ASpooledUploadIsMovedIntoPlace) {
  ASSERT_TRUE(service_->admit(7).ok());
  const std::string spooled = service_->incoming_directory() + "/r1.part";
  std::ofstream(spooled) << "payload";
  auto bad = service_->upload_file(meta("app", "1.0.0"), spooled, 7, security::sha256("payload"),
                                   sha256_hex("other"));
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(files(), 0u);
  auto a = service_->upload_file(meta("app", "1.0.0"), spooled, 7, security::sha256("payload"),
                                 sha256_hex("payload"));
  ASSERT_TRUE(a.ok()) << a.error().to_string();
  EXPECT_EQ(a->sha256, sha256_hex("payload"));
  EXPECT_EQ(a->size_bytes, 7u);
  EXPECT_EQ(read_file(service_->path_of(*a)), "payload");
  EXPECT_FALSE(fs::exists(spooled));
  EXPECT_EQ(*fleet_->store().get_artifact("app", "1.0.0"), *a);
}

// What crashes leave is swept at start: partial uploads, temporary files, content no record
// names. Recorded content and files that are not Drover's stay.
TEST_F(ArtifactServiceTest, SweepRemovesWhatCrashesLeftAndNothingElse) {
  auto kept = service_->upload(meta("app", "1.0.0"), "payload");
  ASSERT_TRUE(kept.ok());
  ASSERT_TRUE(service_->admit(1).ok());
  const fs::path dir = root_ / "content";
  std::ofstream(dir / sha256_hex("orphan")) << "orphan";
  std::ofstream(dir / (sha256_hex("half") + ".tmp")) << "ha";
  std::ofstream(dir / "incoming" / "r9-3.part") << "partial upload";
  std::ofstream(dir / "README") << "an operator's note";
  auto swept = service_->sweep();
  ASSERT_TRUE(swept.ok()) << swept.error().to_string();
  EXPECT_EQ(swept->files, 3u);
  EXPECT_EQ(swept->bytes, 6u + 2u + 14u);
  EXPECT_EQ(read_file(service_->path_of(*kept)), "payload");
  EXPECT_TRUE(fs::exists(dir / "README"));
  EXPECT_FALSE(fs::exists(dir / sha256_hex("orphan")));
  EXPECT_EQ(files(), 2u);  // the content and the note
  EXPECT_EQ(service_->sweep()->files, 0u);
}

// Immutability holds while the first upload's record is still on its way to the disk: a
// second upload of the same version with other content is refused, the same one accepted.
TEST_F(ArtifactServiceTest, ImmutabilityHoldsBeforeTheRecordIsDurable) {
  ASSERT_TRUE(service_->upload(meta("app", "1.0.0"), "first").ok());
  store_->lagging = true;
  auto other = service_->upload(meta("app", "1.0.0"), "second");
  ASSERT_FALSE(other.ok());
  EXPECT_EQ(other.error().code, ErrorCode::kAlreadyExists);
  EXPECT_TRUE(service_->upload(meta("app", "1.0.0"), "first").ok());
  store_->lagging = false;
  EXPECT_EQ(read_file(service_->path_of(*service_->get("app", "1.0.0"))), "first");
}

}  // namespace
}  // namespace drover::testing
