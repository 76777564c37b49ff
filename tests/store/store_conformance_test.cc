// The Store contract, run against every backend (StoreConformanceTest), and the properties
// only the durable SQLite backend has: reopening, schema versions, corruption and crashes
// (SqliteStoreTest).
#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "store/group_commit.h"
#include "store/store.h"

namespace drover {
namespace {

namespace fs = std::filesystem;

// ---------------------------------------------------------------- helpers

// A fresh directory under the system temp directory, removed with everything in it.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "drover-store-test-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) {
      std::perror("mkdtemp");
      std::abort();
    }
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const fs::path& path() const { return path_; }
  std::string file(const char* name) const { return (path_ / name).string(); }

 private:
  fs::path path_;
};

// A raw connection, for tests that tamper with the file behind the store's back.
class RawDb {
 public:
  explicit RawDb(const std::string& path) {
    if (sqlite3_open(path.c_str(), &db_) != SQLITE_OK) {
      ADD_FAILURE() << "cannot open " << path << ": " << sqlite3_errmsg(db_);
    }
  }
  ~RawDb() { sqlite3_close(db_); }
  RawDb(const RawDb&) = delete;
  RawDb& operator=(const RawDb&) = delete;

  void exec(const std::string& sql) {
    char* error = nullptr;
    if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &error) != SQLITE_OK) {
      ADD_FAILURE() << sql << ": " << (error != nullptr ? error : "?");
    }
    sqlite3_free(error);
  }

 private:
  sqlite3* db_ = nullptr;
};

// Builds a WriteBatch kind by kind. (Designated initializers would read better, but GCC's
// -Wmissing-field-initializers flags every kind left out.)
ApiToken make_token(std::string id, Role role) {
  ApiToken t;
  t.id = std::move(id);
  t.name = "token " + t.id;
  t.role = role;
  t.secret_sha256 = std::string(64, 'a');
  t.created_at = Timestamp(Duration(1'700'000'000'000));
  return t;
}

class Batch {
 public:
  Batch& devices(std::vector<Device> v) { return set(b_.devices, std::move(v)); }
  Batch& sites(std::vector<Site> v) { return set(b_.sites, std::move(v)); }
  Batch& artifacts(std::vector<Artifact> v) { return set(b_.artifacts, std::move(v)); }
  Batch& rollouts(std::vector<Rollout> v) { return set(b_.rollouts, std::move(v)); }
  Batch& deployments(std::vector<Deployment> v) { return set(b_.deployments, std::move(v)); }
  Batch& api_tokens(std::vector<ApiToken> v) { return set(b_.api_tokens, std::move(v)); }
  Batch& enrollment_tokens(std::vector<EnrollmentToken> v) {
    return set(b_.enrollment_tokens, std::move(v));
  }
  Batch& steps(std::vector<DeploymentStep> v) { return set(b_.steps, std::move(v)); }
  Batch& removed_devices(std::vector<std::string> v) {
    return set(b_.removed_devices, std::move(v));
  }
  Batch& held(std::vector<HeldCondition> v) { return set(b_.held_conditions, std::move(v)); }
  Batch& removed_held(std::vector<std::pair<std::string, std::string>> v) {
    return set(b_.removed_held_conditions, std::move(v));
  }
  operator const WriteBatch&() const { return b_; }  // NOLINT: implicit by design

 private:
  template <typename T>
  Batch& set(std::vector<T>& field, std::vector<T> v) {
    field = std::move(v);
    return *this;
  }
  WriteBatch b_;
};

Timestamp at_ms(int64_t ms) { return Timestamp(Duration(ms)); }

Device make_device(const std::string& id) {
  Device d;
  d.id = id;
  d.device_type = "bacnet-controller";
  d.hardware_revision = "rev-b";
  d.site = "bldg-017";
  d.connectivity = "lte";
  d.tags = {"floor-3", "hvac", "pilot"};  // sorted, as validate() leaves them
  d.installed = {{"bootloader", "2.1.0"}, {"firmware", "4.1.0-rc.1"}, {"rootfs", "1.0.3"}};
  d.update_state = UpdateState::kInstalling;
  d.public_key = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
  d.enrollment = Enrollment::kPending;
  d.attributes = {{"os", "linux-6.1"}, {"ram_mb", "512"}};  // sorted, as validate() leaves them
  return d;
}

Site make_site(const std::string& name) {
  Site s;
  s.name = name;
  s.time_zone = "America/Chicago";
  s.windows = {{0x1f, 22 * 60, 8 * 60}, {0x60, 2 * 60, 4 * 60}};  // weeknights; weekend mornings
  return s;
}

DeviceProfile make_profile(const std::string& type) {
  DeviceProfile p;
  p.device_type = type;
  p.telemetry = {minutes(15), minutes(5), Duration(0)};
  p.metrics = {{"battery_percent", hours(1), {AggregateFunction::kMin, AggregateFunction::kLast}},
               {"*", Duration(0), {}}};
  EXPECT_TRUE(validate(p).ok());
  return p;
}

Artifact make_artifact(const std::string& name, const std::string& version) {
  Artifact a;
  a.name = name;
  a.version = version;
  a.device_types = {"bacnet-controller", "modbus-gateway"};
  a.hardware_revisions = {"rev-b", "rev-c"};
  a.depends = {{"bootloader", ">=2.1.0"}, {"rootfs", ">=1.0.0, <2.0.0"}};
  a.size_bytes = 48'123'456;
  a.sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
  return a;
}

// GCC 12 at -O2 reports the constant array behind RolloutPlan's default stratify_by list as
// "may be used uninitialized" once the constructor is inlined here: a false positive.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
RolloutPlan make_plan() {
  RolloutPlan p;
  p.name = "firmware-4-2";
  p.artifact_name = "firmware";
  p.artifact_version = "4.2.1";
  p.filter.device_types = {"bacnet-controller"};
  p.filter.sites = {"bldg-017", "bldg-020"};
  p.filter.tags = {"hvac"};
  p.stratify_by = {StratumDimension::kHardwareRevision, StratumDimension::kSite};
  p.stages = {{"canary", 1, 0, hours(2)},
              {"early", 10, 0, hours(12)},
              {"broad", 50, 0, hours(24)},
              {"all", 100, 0, Duration(0)}};
  p.gate = {0.02, 0.005, 0.99, 20, {}, hours(24)};
  p.on_failure = FailurePolicy::kPause;
  p.constraints = {true, true, hours(6), 120, 10, hours(1), 500};
  p.settle_fraction = 0.8;
  p.min_per_stratum = 3;
  return p;
}

Rollout make_rollout(const std::string& id) {
  Rollout r;
  r.id = id;
  r.plan = make_plan();
  r.state = RolloutState::kRunning;
  r.stage = 2;
  r.created_at = at_ms(1'700'000'000'000);
  r.started_at = at_ms(1'700'000'060'000);
  r.stages = {
      {"canary", at_ms(1'700'000'060'000), at_ms(1'700'003'600'000), at_ms(1'700'010'800'000), 12},
      {"early", at_ms(1'700'010'800'000), at_ms(1'700'020'000'000), at_ms(1'700'063'200'000), 118},
      {"broad", at_ms(1'700'063'200'000), Timestamp{}, Timestamp{}, 590}};
  r.halted = {{"rev-c|bldg-020|", "rev-c", "bldg-020", "", "failure rate 0.31 > 0.02 (n=26)",
               FailurePolicy::kPause, at_ms(1'700'050'000'123)},
              {"rev-b|bldg-017|", "rev-b", "bldg-017", "", "operator", FailurePolicy::kAbort,
               at_ms(1'700'051'000'000)}};
  r.targets = 1180;
  r.gates_from = at_ms(1'700'052'000'000);
  return r;
}

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

Deployment make_deployment(const std::string& rollout_id, const std::string& device_id) {
  Deployment d;
  d.rollout_id = rollout_id;
  d.device_id = device_id;
  d.stage = 1;
  d.stratum = "rev-b|bldg-017|";
  d.state = DeploymentState::kRebooting;
  d.from_version = "4.1.0-rc.1";
  d.updated_at = at_ms(1'700'012'345'678);
  d.offers = 2;
  d.error = "download stalled at 61%; resent";
  d.switch_back = true;
  return d;
}

DeploymentStep make_step(const std::string& rollout_id, const std::string& device_id,
                         const std::string& event) {
  static int64_t clock_ms = 1'700'012'345'000;
  DeploymentStep s;
  s.rollout_id = rollout_id;
  s.device_id = device_id;
  s.at = at_ms(clock_ms += 1000);
  s.event = event;
  s.state = DeploymentState::kFailed;
  s.message = "health check 'app-ok' failed: exit 3\noutput: \"port 502 refused\" ünïcode";
  return s;
}

// Runs a Result-returning call and unwraps it, failing the test (not crashing) on an error.
// `lhs` names a new variable, so it cannot be parenthesized.
// NOLINTBEGIN(bugprone-macro-parentheses)
#define ASSERT_OK_AND_ASSIGN(lhs, expr)                               \
  auto lhs##_result = (expr);                                         \
  ASSERT_TRUE(lhs##_result.ok()) << lhs##_result.error().to_string(); \
  auto lhs = std::move(lhs##_result).value()
// NOLINTEND(bugprone-macro-parentheses)

#define ASSERT_OK(expr)                                                           \
  do {                                                                            \
    auto assert_ok_status_ = (expr);                                              \
    ASSERT_TRUE(assert_ok_status_.ok()) << assert_ok_status_.error().to_string(); \
  } while (false)

template <typename T>
std::vector<std::string> keys_of(const std::vector<T>& records, std::string (*key)(const T&)) {
  std::vector<std::string> out;
  out.reserve(records.size());
  for (const auto& r : records) out.push_back(key(r));
  return out;
}
std::string artifact_key(const Artifact& a) { return a.name + "@" + a.version; }
std::string deployment_key(const Deployment& d) { return d.rollout_id + "/" + d.device_id; }

// ---------------------------------------------------------------- the conformance suite

// kGroupCommit: SQLite behind the group commit's writer (store/group_commit.h), as drover
// serve runs it.
enum class Backend { kMemory, kSqlite, kGroupCommit };
const char* name_of(Backend b) {
  switch (b) {
    case Backend::kMemory:
      return "Memory";
    case Backend::kSqlite:
      return "Sqlite";
    case Backend::kGroupCommit:
      return "GroupCommit";
  }
  return "?";
}
void PrintTo(Backend b, std::ostream* os) { *os << name_of(b); }

class StoreConformanceTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    if (GetParam() == Backend::kMemory) {
      store_ = make_memory_store();
      return;
    }
    dir_.emplace();
    auto opened = open_sqlite_store(dir_->file("store.db"));
    ASSERT_TRUE(opened.ok()) << opened.error().to_string();
    store_ = std::move(opened).value();
    if (GetParam() == Backend::kGroupCommit)
      store_ = std::make_unique<GroupCommitStore>(std::move(store_));
  }

  Store& store() { return *store_; }

  std::optional<TempDir> dir_;
  std::unique_ptr<Store> store_;
};

INSTANTIATE_TEST_SUITE_P(Backends, StoreConformanceTest,
                         ::testing::Values(Backend::kMemory, Backend::kSqlite,
                                           Backend::kGroupCommit),
                         [](const ::testing::TestParamInfo<Backend>& param) {
                           return std::string(name_of(param.param));
                         });

TEST_P(StoreConformanceTest, DevicesRoundTripListInIdOrderAndOverwrite) {
  Device b = make_device("dev-b");
  Device a = make_device("dev-a");
  a.decommissioned = true;
  a.update_state = UpdateState::kRollingBack;
  a.tags = {};
  Device c = make_device("dev-c");
  c.site = "";
  c.connectivity = "";
  c.installed = {};
  ASSERT_OK(store().apply(Batch().devices({b, c, a})));

  ASSERT_OK_AND_ASSIGN(got, store().get_device("dev-a"));
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(*got, a);
  ASSERT_OK_AND_ASSIGN(all, store().list_devices());
  EXPECT_EQ(all, (std::vector<Device>{a, b, c}));

  b.hardware_revision = "rev-c";
  b.tags = {"hvac"};
  b.set_installed("firmware", "4.2.1");
  b.update_state = UpdateState::kIdle;
  ASSERT_OK(store().apply(Batch().devices({b})));
  ASSERT_OK_AND_ASSIGN(got_b, store().get_device("dev-b"));
  EXPECT_EQ(got_b, b);
  ASSERT_OK_AND_ASSIGN(after, store().list_devices());
  EXPECT_EQ(after, (std::vector<Device>{a, b, c}));
}

TEST_P(StoreConformanceTest, SitesRoundTripListInNameOrderAndOverwrite) {
  Site z = make_site("zurich-depot");
  Site a = make_site("amsterdam-farm");
  a.time_zone = "Europe/Amsterdam";
  a.windows = {};  // always open
  Site m = make_site("memphis-dc");
  ASSERT_OK(store().apply(Batch().sites({z, a, m})));

  ASSERT_OK_AND_ASSIGN(got, store().get_site("memphis-dc"));
  EXPECT_EQ(got, m);
  ASSERT_OK_AND_ASSIGN(all, store().list_sites());
  EXPECT_EQ(all, (std::vector<Site>{a, m, z}));

  m.windows.push_back({0x7f, 23 * 60 + 30, 90});  // runs past midnight
  m.time_zone = "UTC";
  ASSERT_OK(store().apply(Batch().sites({m})));
  ASSERT_OK_AND_ASSIGN(got_m, store().get_site("memphis-dc"));
  EXPECT_EQ(got_m, m);
  ASSERT_OK_AND_ASSIGN(after, store().list_sites());
  EXPECT_EQ(after.size(), 3u);
}

TEST_P(StoreConformanceTest, ArtifactsRoundTripListInNameVersionOrderAndOverwrite) {
  Artifact fw2 = make_artifact("firmware", "2.0.0");
  Artifact fw1 = make_artifact("firmware", "1.0.0");
  fw1.hardware_revisions = {};
  fw1.depends = {};
  Artifact boot = make_artifact("bootloader", "3.0.0");
  boot.depends = {{"rootfs", "=1.0.3"}};
  Artifact rootfs = make_artifact("rootfs", "1.0.0-beta.2");
  rootfs.depends = {{"bootloader", ">=2.0.0"}};
  ASSERT_OK(store().apply(Batch().artifacts({fw2, rootfs, fw1, boot})));

  ASSERT_OK_AND_ASSIGN(got, store().get_artifact("firmware", "1.0.0"));
  EXPECT_EQ(got, fw1);
  ASSERT_OK_AND_ASSIGN(other, store().get_artifact("firmware", "2.0.0"));
  EXPECT_EQ(other, fw2);
  ASSERT_OK_AND_ASSIGN(all, store().list_artifacts());
  EXPECT_EQ(keys_of(all, &artifact_key),
            (std::vector<std::string>{"bootloader@3.0.0", "firmware@1.0.0", "firmware@2.0.0",
                                      "rootfs@1.0.0-beta.2"}));
  EXPECT_EQ(all, (std::vector<Artifact>{boot, fw1, fw2, rootfs}));

  fw2.size_bytes = 7;
  fw2.sha256 = std::string(64, 'e');
  ASSERT_OK(store().apply(Batch().artifacts({fw2})));
  ASSERT_OK_AND_ASSIGN(got_fw2, store().get_artifact("firmware", "2.0.0"));
  EXPECT_EQ(got_fw2, fw2);
  ASSERT_OK_AND_ASSIGN(after, store().list_artifacts());
  EXPECT_EQ(after.size(), 4u);
}

TEST_P(StoreConformanceTest, RolloutsRoundTripListInIdOrderAndOverwrite) {
  Rollout r2 = make_rollout("ro-2");
  Rollout r1 = make_rollout("ro-1");
  r1.state = RolloutState::kCreated;
  r1.stage = 0;
  r1.stages = {};
  r1.halted = {};
  r1.started_at = Timestamp{};
  r1.plan.stages = {{"first", 0, 10, minutes(30)}, {"rest", 0, 1000, Duration(0)}};  // count sizing
  r1.plan.constraints = {};
  ASSERT_OK(store().apply(Batch().rollouts({r2, r1})));

  ASSERT_OK_AND_ASSIGN(got, store().get_rollout("ro-2"));
  EXPECT_EQ(got, r2);
  ASSERT_OK_AND_ASSIGN(all, store().list_rollouts());
  EXPECT_EQ(all, (std::vector<Rollout>{r1, r2}));

  r2.state = RolloutState::kCompleted;
  r2.stage = 3;
  r2.stages.push_back(
      {"all", at_ms(1'700'100'000'000), at_ms(1'700'100'500'000), at_ms(1'700'101'000'000), 460});
  r2.finished_at = at_ms(1'700'101'000'000);
  ASSERT_OK(store().apply(Batch().rollouts({r2})));
  ASSERT_OK_AND_ASSIGN(got_r2, store().get_rollout("ro-2"));
  EXPECT_EQ(got_r2, r2);
  ASSERT_OK_AND_ASSIGN(after, store().list_rollouts());
  EXPECT_EQ(after, (std::vector<Rollout>{r1, r2}));
}

TEST_P(StoreConformanceTest, DeploymentsRoundTripAndOverwrite) {
  Deployment d = make_deployment("ro-1", "dev-a");
  Deployment e = make_deployment("ro-1", "dev-b");
  e.state = DeploymentState::kPending;
  e.offers = 0;
  e.error = "";
  e.from_version = "";
  e.updated_at = Timestamp{};
  ASSERT_OK(store().apply(Batch().deployments({e, d})));

  ASSERT_OK_AND_ASSIGN(got, store().get_deployment("ro-1", "dev-a"));
  EXPECT_EQ(got, d);
  ASSERT_OK_AND_ASSIGN(got_e, store().get_deployment("ro-1", "dev-b"));
  EXPECT_EQ(got_e, e);

  d.state = DeploymentState::kSucceeded;
  d.stage = 2;
  d.stratum = "rev-c|bldg-020|";
  d.offers = 3;
  d.updated_at = at_ms(1'700'020'000'001);
  d.error = "";
  ASSERT_OK(store().apply(Batch().deployments({d})));
  ASSERT_OK_AND_ASSIGN(got_d, store().get_deployment("ro-1", "dev-a"));
  EXPECT_EQ(got_d, d);
  ASSERT_OK_AND_ASSIGN(all, store().list_deployments("ro-1"));
  EXPECT_EQ(all, (std::vector<Deployment>{d, e}));
}

TEST_P(StoreConformanceTest, CommandsRoundTripListNewestFirstByDeviceAndOpenOnesApart) {
  auto command = [](const std::string& id, const std::string& device, int64_t created_ms) {
    Command c;
    c.id = id;
    c.device_id = device;
    c.action = protocol::CommandAction::kRestartService;
    c.argument = "sensord";
    c.requested_by = "test";
    c.created_at = Timestamp(Duration(created_ms));
    c.expires_at = c.created_at + hours(1);
    return c;
  };
  WriteBatch batch;
  batch.commands = {command("c1", "dev-a", 1000), command("c2", "dev-a", 3000),
                    command("c3", "dev-b", 2000), command("c4", "dev-a", 2000)};
  ASSERT_OK(store().apply(batch));
  Command done = command("c1", "dev-a", 1000);
  done.state = CommandState::kFailed;
  done.finished_at = Timestamp(Duration(5000));
  done.exit_code = 3;
  done.output = "no such unit\n";
  batch.commands = {done};
  ASSERT_OK(store().apply(batch));

  ASSERT_OK_AND_ASSIGN(one, store().get_command("c1"));
  ASSERT_TRUE(one.has_value());
  EXPECT_EQ(*one, done);
  ASSERT_OK_AND_ASSIGN(none, store().get_command("c9"));
  EXPECT_FALSE(none.has_value());
  auto ids = [](const std::vector<Command>& list) {
    std::vector<std::string> out;
    for (const Command& c : list) out.push_back(c.id);
    return out;
  };
  ASSERT_OK_AND_ASSIGN(history, store().list_commands("dev-a", 10));
  EXPECT_EQ(ids(history), (std::vector<std::string>{"c2", "c4", "c1"}));
  ASSERT_OK_AND_ASSIGN(page, store().list_commands("dev-a", 2));
  EXPECT_EQ(ids(page), (std::vector<std::string>{"c2", "c4"}));
  ASSERT_OK_AND_ASSIGN(older, store().list_commands("dev-a", 10, Timestamp(Duration(2000))));
  EXPECT_EQ(ids(older), (std::vector<std::string>{"c1"}));
  ASSERT_OK_AND_ASSIGN(open, store().list_open_commands());
  EXPECT_EQ(ids(open), (std::vector<std::string>{"c2", "c3", "c4"}));
  ASSERT_OK_AND_ASSIGN(nobody, store().list_commands("dev-z", 10));
  EXPECT_TRUE(nobody.empty());
}

TEST_P(StoreConformanceTest, AlertsRoundTripListNewestFirstFilteredAndPaged) {
  auto alert = [](const std::string& id, const std::string& device, int64_t opened_ms) {
    Alert a;
    a.id = id;
    a.device_id = device;
    a.rule = "no-data";
    a.condition = "no_data";
    a.summary = "checks in but sends nothing";
    a.opened_at = Timestamp(Duration(opened_ms));
    a.updated_at = a.opened_at;
    return a;
  };
  WriteBatch batch;
  batch.alerts = {alert("a1", "dev-a", 1000), alert("a2", "dev-a", 3000),
                  alert("a3", "dev-b", 2000), alert("a4", "dev-a", 2000)};
  batch.alerts[2].notified_version = 1;  // a3: its webhook receiver has it
  ASSERT_OK(store().apply(batch));
  Alert closed = alert("a1", "dev-a", 1000);
  closed.state = AlertState::kResolved;
  closed.resolved_at = Timestamp(Duration(5000));
  closed.resolved_by = "ops";
  closed.resolution = "fixed by hand";
  closed.commands = {"a1-1"};
  closed.version = 2;
  closed.notified_version = 2;
  batch.alerts = {closed};
  ASSERT_OK(store().apply(batch));

  ASSERT_OK_AND_ASSIGN(one, store().get_alert("a1"));
  ASSERT_TRUE(one.has_value());
  EXPECT_EQ(*one, closed);
  ASSERT_OK_AND_ASSIGN(none, store().get_alert("a9"));
  EXPECT_FALSE(none.has_value());
  auto ids = [this](const Store::AlertQuery& q) {
    std::vector<std::string> out;
    auto list = store().list_alerts(q);
    EXPECT_TRUE(list.ok());
    if (list.ok()) {
      for (const Alert& a : *list) out.push_back(a.id);
    }
    return out;
  };
  Store::AlertQuery q;
  EXPECT_EQ(ids(q), (std::vector<std::string>{"a2", "a4", "a3", "a1"}));
  q.device_id = "dev-a";
  EXPECT_EQ(ids(q), (std::vector<std::string>{"a2", "a4", "a1"}));
  q.unresolved_only = true;
  EXPECT_EQ(ids(q), (std::vector<std::string>{"a2", "a4"}));
  q = {};
  q.unnotified_only = true;
  EXPECT_EQ(ids(q), (std::vector<std::string>{"a2", "a4"}));
  q = {};
  q.limit = 2;
  EXPECT_EQ(ids(q), (std::vector<std::string>{"a2", "a4"}));
  q.before = Timestamp(Duration(2000));  // the page after a4
  q.before_id = "a4";
  EXPECT_EQ(ids(q), (std::vector<std::string>{"a3", "a1"}));
  // A change the receiver has not had yet puts a delivered alert back among the unnotified.
  Alert changed = closed;
  changed.version = 3;
  batch.alerts = {changed};
  ASSERT_OK(store().apply(batch));
  q = {};
  q.unnotified_only = true;
  EXPECT_EQ(ids(q), (std::vector<std::string>{"a2", "a4", "a1"}));
}

TEST_P(StoreConformanceTest, EnrollmentTokensRoundTripAndCountUsesWithTheirDevice) {
  EnrollmentToken t;
  t.id = "bbbbbbbbbbbbbbbb";
  t.name = "line 3";
  t.secret_sha256 = std::string(64, 'c');
  t.device_types = {"ctl", "pump"};
  t.hardware_revisions = {"rev-a"};
  t.sites = {"north"};
  t.max_uses = 10;
  t.created_at = Timestamp(Duration(1'700'000'000'000));
  t.expires_at = t.created_at + hours(24);
  t.created_by = "token:aaaaaaaaaaaaaaaa (admin)";
  EnrollmentToken other = t;
  other.id = "aaaaaaaaaaaaaaaa";
  other.device_types.clear();
  other.max_uses = 0;
  ASSERT_OK(store().apply(Batch().enrollment_tokens({t, other})));
  ASSERT_OK_AND_ASSIGN(got, store().get_enrollment_token("bbbbbbbbbbbbbbbb"));
  EXPECT_EQ(got, t);
  ASSERT_OK_AND_ASSIGN(missing, store().get_enrollment_token("cccccccccccccccc"));
  EXPECT_FALSE(missing.has_value());
  ASSERT_OK_AND_ASSIGN(all, store().list_enrollment_tokens());
  EXPECT_EQ(all, (std::vector<EnrollmentToken>{other, t}));

  // A use is written with the device it enrolled, or neither is.
  t.uses = 1;
  ASSERT_OK(store().apply(Batch().devices({make_device("dev-1")}).enrollment_tokens({t})));
  ASSERT_OK_AND_ASSIGN(used, store().get_enrollment_token(t.id));
  EXPECT_EQ(used->uses, 1u);
  t.uses = 2;
  EnrollmentToken nameless = other;
  nameless.id.clear();
  EXPECT_FALSE(
      store().apply(Batch().devices({make_device("dev-2")}).enrollment_tokens({t, nameless})).ok());
  ASSERT_OK_AND_ASSIGN(still, store().get_enrollment_token(t.id));
  EXPECT_EQ(still->uses, 1u);
  ASSERT_OK_AND_ASSIGN(no_device, store().get_device("dev-2"));
  EXPECT_FALSE(no_device.has_value());
}

TEST_P(StoreConformanceTest, ApiTokensRoundTripListInIdOrderAndOverwrite) {
  ApiToken b = make_token("bbbbbbbbbbbbbbbb", Role::kViewer);
  ApiToken a = make_token("aaaaaaaaaaaaaaaa", Role::kAdmin);
  a.expires_at = a.created_at + hours(24);
  ASSERT_OK(store().apply(Batch().api_tokens({b, a})));

  ASSERT_OK_AND_ASSIGN(got, store().get_api_token("aaaaaaaaaaaaaaaa"));
  EXPECT_EQ(got, a);
  ASSERT_OK_AND_ASSIGN(missing, store().get_api_token("cccccccccccccccc"));
  EXPECT_FALSE(missing.has_value());
  ASSERT_OK_AND_ASSIGN(all, store().list_api_tokens());
  EXPECT_EQ(all, (std::vector<ApiToken>{a, b}));

  b.revoked_at = b.created_at + minutes(5);
  ASSERT_OK(store().apply(Batch().api_tokens({b})));
  ASSERT_OK_AND_ASSIGN(revoked, store().get_api_token("bbbbbbbbbbbbbbbb"));
  EXPECT_EQ(revoked, b);
  ASSERT_OK_AND_ASSIGN(after, store().list_api_tokens());
  EXPECT_EQ(after.size(), 2u);

  // A token with an empty id is refused, and with it the whole batch.
  ApiToken nameless = make_token("", Role::kAdmin);
  EXPECT_FALSE(store().apply(Batch().devices({make_device("dev-x")}).api_tokens({nameless})).ok());
  ASSERT_OK_AND_ASSIGN(no_device, store().get_device("dev-x"));
  EXPECT_FALSE(no_device.has_value());
}

TEST_P(StoreConformanceTest, MissingKeysReadAsNullopt) {
  ASSERT_OK(store().apply(Batch()
                              .devices({make_device("dev-a")})
                              .sites({make_site("site-a")})
                              .artifacts({make_artifact("firmware", "1.0.0")})
                              .rollouts({make_rollout("ro-1")})
                              .deployments({make_deployment("ro-1", "dev-a")})));

  ASSERT_OK_AND_ASSIGN(device, store().get_device("dev-b"));
  EXPECT_FALSE(device.has_value());
  ASSERT_OK_AND_ASSIGN(empty_id, store().get_device(""));
  EXPECT_FALSE(empty_id.has_value());
  ASSERT_OK_AND_ASSIGN(site, store().get_site("site-b"));
  EXPECT_FALSE(site.has_value());
  ASSERT_OK_AND_ASSIGN(other_version, store().get_artifact("firmware", "1.0.1"));
  EXPECT_FALSE(other_version.has_value());
  ASSERT_OK_AND_ASSIGN(other_name, store().get_artifact("rootfs", "1.0.0"));
  EXPECT_FALSE(other_name.has_value());
  ASSERT_OK_AND_ASSIGN(rollout, store().get_rollout("ro-2"));
  EXPECT_FALSE(rollout.has_value());
  ASSERT_OK_AND_ASSIGN(other_device, store().get_deployment("ro-1", "dev-b"));
  EXPECT_FALSE(other_device.has_value());
  ASSERT_OK_AND_ASSIGN(other_rollout, store().get_deployment("ro-2", "dev-a"));
  EXPECT_FALSE(other_rollout.has_value());
  ASSERT_OK_AND_ASSIGN(none, store().list_deployments("ro-2"));
  EXPECT_TRUE(none.empty());
}

TEST_P(StoreConformanceTest, ListDeploymentsReturnsOnlyThatRolloutInDeviceOrder) {
  // Rollout ids that are prefixes of each other, to catch a range scan that runs over.
  WriteBatch batch;
  for (const char* rollout : {"r1", "r", "r10", "r2", "r1-0"}) {
    for (const char* device : {"dev-c", "dev-a", "dev-b"}) {
      batch.deployments.push_back(make_deployment(rollout, device));
    }
  }
  ASSERT_OK(store().apply(batch));

  ASSERT_OK_AND_ASSIGN(r1, store().list_deployments("r1"));
  EXPECT_EQ(keys_of(r1, &deployment_key),
            (std::vector<std::string>{"r1/dev-a", "r1/dev-b", "r1/dev-c"}));
  ASSERT_OK_AND_ASSIGN(r, store().list_deployments("r"));
  EXPECT_EQ(keys_of(r, &deployment_key),
            (std::vector<std::string>{"r/dev-a", "r/dev-b", "r/dev-c"}));
  ASSERT_OK_AND_ASSIGN(r10, store().list_deployments("r10"));
  EXPECT_EQ(r10.size(), 3u);
  for (const auto& d : r10) EXPECT_EQ(d.rollout_id, "r10");
  ASSERT_OK_AND_ASSIGN(prefix_only, store().list_deployments("r1-"));
  EXPECT_TRUE(prefix_only.empty());
}

TEST_P(StoreConformanceTest, MixedBatchIsWrittenTogetherAndLaterDuplicatesWin) {
  Device first = make_device("dev-a");
  Device second = first;
  second.update_state = UpdateState::kIdle;
  second.set_installed("firmware", "4.2.1");
  WriteBatch batch{
      .devices = {first, make_device("dev-b"), second},
      .sites = {make_site("bldg-017")},
      .profiles = {make_profile("bms-controller"), make_profile("meter")},
      .artifacts = {make_artifact("firmware", "4.2.1")},
      .rollouts = {make_rollout("ro-1")},
      .deployments = {make_deployment("ro-1", "dev-a"), make_deployment("ro-1", "dev-b")},
      .api_tokens = {make_token("0123456789abcdef", Role::kOperator)},
      .enrollment_tokens = {},
      .commands = {},
      .alerts = {},
      .configs = {},
      .steps = {make_step("ro-1", "dev-a", "offer"), make_step("ro-1", "dev-b", "offer"),
                make_step("ro-1", "dev-a", "install_failed")},
      .removed_devices = {},
      .held_conditions = {},
      .removed_held_conditions = {}};
  ASSERT_OK(store().apply(batch));

  ASSERT_OK_AND_ASSIGN(devices, store().list_devices());
  EXPECT_EQ(devices, (std::vector<Device>{second, make_device("dev-b")}));
  ASSERT_OK_AND_ASSIGN(sites, store().list_sites());
  EXPECT_EQ(sites, batch.sites);
  ASSERT_OK_AND_ASSIGN(profiles, store().list_profiles());
  EXPECT_EQ(profiles, batch.profiles);
  ASSERT_OK_AND_ASSIGN(artifacts, store().list_artifacts());
  EXPECT_EQ(artifacts, batch.artifacts);
  ASSERT_OK_AND_ASSIGN(rollouts, store().list_rollouts());
  EXPECT_EQ(rollouts, batch.rollouts);
  ASSERT_OK_AND_ASSIGN(deployments, store().list_deployments("ro-1"));
  EXPECT_EQ(deployments, batch.deployments);
  ASSERT_OK_AND_ASSIGN(tokens, store().list_api_tokens());
  EXPECT_EQ(tokens, batch.api_tokens);
  // Steps are appended, never replaced, and read back per deployment in order.
  ASSERT_OK_AND_ASSIGN(history_a, store().list_deployment_steps("ro-1", "dev-a"));
  EXPECT_EQ(history_a, (std::vector<DeploymentStep>{batch.steps[0], batch.steps[2]}));
  ASSERT_OK(store().apply(Batch().steps({make_step("ro-1", "dev-a", "revert")})));
  ASSERT_OK_AND_ASSIGN(longer, store().list_deployment_steps("ro-1", "dev-a"));
  ASSERT_EQ(longer.size(), 3u);
  EXPECT_EQ(longer[2].event, "revert");
  ASSERT_OK_AND_ASSIGN(none, store().list_deployment_steps("ro-1", "dev-z"));
  EXPECT_TRUE(none.empty());
}

// Batches arrive in any key order and mix new keys with stored ones; every key must end up
// once, with its latest value, and listing must stay in key order.
TEST_P(StoreConformanceTest, BatchesInAnyOrderMergeWithWhatIsStored) {
  auto id = [](int i) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "dev-%03d", i);
    return std::string(buf);
  };
  WriteBatch evens;
  for (int i = 0; i < 200; i += 2) {
    evens.devices.push_back(make_device(id(i)));
    evens.deployments.push_back(make_deployment("ro-1", id(i)));
  }
  ASSERT_OK(store().apply(evens));

  WriteBatch mixed;  // descending, then an ascending run over stored and new keys
  for (int i = 199; i >= 100; --i) {
    Device d = make_device(id(i));
    d.set_installed("firmware", "9.9." + std::to_string(i));
    mixed.devices.push_back(d);
    Deployment dep = make_deployment("ro-1", id(i));
    dep.offers = static_cast<uint32_t>(i);
    mixed.deployments.push_back(dep);
  }
  for (int i = 0; i < 100; ++i) {
    Device d = make_device(id(i));
    d.set_installed("firmware", "9.9." + std::to_string(i));
    mixed.devices.push_back(d);
    Deployment dep = make_deployment("ro-1", id(i));
    dep.offers = static_cast<uint32_t>(i);
    mixed.deployments.push_back(dep);
  }
  ASSERT_OK(store().apply(mixed));

  ASSERT_OK_AND_ASSIGN(devices, store().list_devices());
  ASSERT_EQ(devices.size(), 200u);
  ASSERT_OK_AND_ASSIGN(deployments, store().list_deployments("ro-1"));
  ASSERT_EQ(deployments.size(), 200u);
  for (int i = 0; i < 200; ++i) {
    EXPECT_EQ(devices[i].id, id(i));
    EXPECT_EQ(*devices[i].installed_version("firmware"), "9.9." + std::to_string(i));
    EXPECT_EQ(deployments[i].device_id, id(i));
    EXPECT_EQ(deployments[i].offers, static_cast<uint32_t>(i));
    ASSERT_OK_AND_ASSIGN(one, store().get_device(id(i)));
    ASSERT_TRUE(one.has_value());
    EXPECT_EQ(*one, devices[i]);
    ASSERT_OK_AND_ASSIGN(dep, store().get_deployment("ro-1", id(i)));
    ASSERT_TRUE(dep.has_value());
    EXPECT_EQ(dep->offers, static_cast<uint32_t>(i));
  }
}

TEST_P(StoreConformanceTest, EmptyBatchChangesNothing) {
  ASSERT_OK(store().apply({}));
  ASSERT_OK_AND_ASSIGN(devices, store().list_devices());
  EXPECT_TRUE(devices.empty());
}

// A batch with a bad record leaves no trace: both stores refuse a record with an empty key
// (check_keys; SQLite also has a CHECK in its schema), here the last record of the batch.
TEST_P(StoreConformanceTest, FailedBatchLeavesTheStoreUnchanged) {
  Device existing = make_device("dev-a");
  ASSERT_OK(store().apply(Batch()
                              .devices({existing})
                              .rollouts({make_rollout("ro-1")})
                              .deployments({make_deployment("ro-1", "dev-a")})));

  Device changed = existing;
  changed.decommissioned = true;
  Rollout ro1 = make_rollout("ro-1");
  ro1.state = RolloutState::kPaused;
  Deployment dep = make_deployment("ro-1", "dev-a");
  dep.state = DeploymentState::kFailed;
  const WriteBatch failing{
      .devices = {changed, make_device("dev-b")},
      .sites = {make_site("bldg-017")},
      .profiles = {make_profile("meter")},
      .artifacts = {make_artifact("firmware", "4.2.1")},
      .rollouts = {ro1, make_rollout("ro-2")},
      .deployments = {dep, make_deployment("ro-2", "dev-a"), make_deployment("", "dev-b")},
      .api_tokens = {make_token("0123456789abcdef", Role::kOperator)},
      .enrollment_tokens = {},
      .commands = {},
      .alerts = {},
      .configs = {},
      .steps = {make_step("ro-1", "dev-a", "install_failed")},
      .removed_devices = {},
      .held_conditions = {},
      .removed_held_conditions = {}};
  Status st = store().apply(failing);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, ErrorCode::kInvalidArgument) << st.error().to_string();

  ASSERT_OK_AND_ASSIGN(devices, store().list_devices());
  EXPECT_EQ(devices, std::vector<Device>{existing});
  ASSERT_OK_AND_ASSIGN(sites, store().list_sites());
  EXPECT_TRUE(sites.empty());
  ASSERT_OK_AND_ASSIGN(profiles, store().list_profiles());
  EXPECT_TRUE(profiles.empty());
  ASSERT_OK_AND_ASSIGN(artifacts, store().list_artifacts());
  EXPECT_TRUE(artifacts.empty());
  ASSERT_OK_AND_ASSIGN(rollouts, store().list_rollouts());
  EXPECT_EQ(rollouts, std::vector<Rollout>{make_rollout("ro-1")});
  ASSERT_OK_AND_ASSIGN(deployments, store().list_deployments("ro-1"));
  EXPECT_EQ(deployments, std::vector<Deployment>{make_deployment("ro-1", "dev-a")});
  ASSERT_OK_AND_ASSIGN(ro2, store().list_deployments("ro-2"));
  EXPECT_TRUE(ro2.empty());
  ASSERT_OK_AND_ASSIGN(tokens, store().list_api_tokens());
  EXPECT_TRUE(tokens.empty());
  ASSERT_OK_AND_ASSIGN(steps, store().list_deployment_steps("ro-1", "dev-a"));
  EXPECT_TRUE(steps.empty());

  // A record failing at the start of a batch, and the store still working afterwards.
  Status first_fails = store().apply(Batch().devices({make_device("")}).sites({make_site("x")}));
  EXPECT_FALSE(first_fails.ok());
  ASSERT_OK_AND_ASSIGN(still_no_sites, store().list_sites());
  EXPECT_TRUE(still_no_sites.empty());
  ASSERT_OK(store().apply(Batch().devices({changed})));
  ASSERT_OK_AND_ASSIGN(got, store().get_device("dev-a"));
  EXPECT_EQ(got, changed);
}

// Big enough that the SQLite store writes it in several chunks (it encodes the next chunk
// while writing one); the memory store takes it as any other batch.
constexpr uint32_t kLargeBatch = 3 * 4096 + 17;

WriteBatch large_batch(const std::string& rollout_id) {
  WriteBatch b;
  for (uint32_t i = 0; i < kLargeBatch; ++i) {
    char device[32];
    std::snprintf(device, sizeof device, "dev-%06u", i);
    Deployment d = make_deployment(rollout_id, device);
    d.offers = i;
    b.deployments.push_back(d);
  }
  // The same key again at the very end, in another chunk: the later record wins.
  Deployment again = b.deployments.front();
  again.state = DeploymentState::kSucceeded;
  b.deployments.push_back(again);
  return b;
}

TEST_P(StoreConformanceTest, LargeBatchIsWrittenInOrder) {
  const WriteBatch batch = large_batch("ro-1");
  ASSERT_OK(store().apply(batch));

  ASSERT_OK_AND_ASSIGN(all, store().list_deployments("ro-1"));
  ASSERT_EQ(all.size(), static_cast<size_t>(kLargeBatch));
  EXPECT_EQ(all.front(), batch.deployments.back());
  EXPECT_TRUE(std::equal(all.begin() + 1, all.end(), batch.deployments.begin() + 1));
}

TEST_P(StoreConformanceTest, FailedLargeBatchLeavesTheStoreUnchanged) {
  WriteBatch batch = large_batch("ro-1");
  batch.deployments[4096 + 100].rollout_id = "";  // in the second chunk
  Status st = store().apply(batch);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, ErrorCode::kInvalidArgument);
  ASSERT_OK_AND_ASSIGN(none, store().list_deployments("ro-1"));
  EXPECT_TRUE(none.empty());
}

// A reader never sees part of a batch: every batch rewrites all deployments of the rollout
// with its own number.
TEST_P(StoreConformanceTest, ReadersSeeWholeBatches) {
  constexpr uint32_t kBatches = 40;
  constexpr int kDevices = 50;
  auto batch_number = [](uint32_t k) {
    WriteBatch b;
    for (int i = 0; i < kDevices; ++i) {
      Deployment d = make_deployment("ro-1", "dev-" + std::to_string(1000 + i));
      d.offers = k;
      b.deployments.push_back(d);
    }
    return b;
  };
  ASSERT_OK(store().apply(batch_number(0)));

  std::thread writer([&] {
    for (uint32_t k = 1; k <= kBatches; ++k) EXPECT_TRUE(store().apply(batch_number(k)).ok());
  });
  // Sets k to the batch the listing shows. A fixed number of reads, not "until the
  // writer is done": std::mutex is not fair, and a spinning reader can starve the writer.
  auto read_one_batch = [&](uint32_t& k) {
    auto listed = store().list_deployments("ro-1");
    ASSERT_TRUE(listed.ok()) << listed.error().to_string();
    ASSERT_EQ(listed->size(), static_cast<size_t>(kDevices));
    k = listed->front().offers;
    for (const auto& d : *listed) ASSERT_EQ(d.offers, k) << "saw parts of two batches";
  };
  uint32_t seen = 0;
  for (int i = 0; i < 200 && !HasFatalFailure(); ++i) {
    uint32_t k = 0;
    read_one_batch(k);
    EXPECT_GE(k, seen);
    seen = k;
    std::this_thread::yield();
  }
  writer.join();
  uint32_t last = 0;
  read_one_batch(last);
  EXPECT_EQ(last, kBatches);
}

TEST_P(StoreConformanceTest, DeleteArtifactRemovesOneVersionAndReportsAbsence) {
  ASSERT_OK(store().apply(
      Batch().artifacts({make_artifact("firmware", "1.0.0"), make_artifact("firmware", "2.0.0")})));

  ASSERT_OK(store().delete_artifact("firmware", "1.0.0"));
  ASSERT_OK_AND_ASSIGN(gone, store().get_artifact("firmware", "1.0.0"));
  EXPECT_FALSE(gone.has_value());
  ASSERT_OK_AND_ASSIGN(left, store().list_artifacts());
  EXPECT_EQ(left, std::vector<Artifact>{make_artifact("firmware", "2.0.0")});

  Status again = store().delete_artifact("firmware", "1.0.0");
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code, ErrorCode::kNotFound);
  Status never = store().delete_artifact("rootfs", "2.0.0");
  ASSERT_FALSE(never.ok());
  EXPECT_EQ(never.error().code, ErrorCode::kNotFound);
}

TEST_P(StoreConformanceTest, RemovedDevicesAreGoneAndOthersStay) {
  ASSERT_OK(store().apply(
      Batch().devices({make_device("dev-a"), make_device("dev-b"), make_device("dev-c")})));
  // Removing an unknown id is no error; a record written and removed in one batch is gone.
  ASSERT_OK(store().apply(
      Batch().devices({make_device("dev-d")}).removed_devices({"dev-b", "dev-d", "dev-zz"})));
  ASSERT_OK_AND_ASSIGN(gone, store().get_device("dev-b"));
  EXPECT_FALSE(gone.has_value());
  ASSERT_OK_AND_ASSIGN(left, store().list_devices());
  EXPECT_EQ(left, (std::vector<Device>{make_device("dev-a"), make_device("dev-c")}));
  ASSERT_OK_AND_ASSIGN(c, store().get_device("dev-c"));
  EXPECT_TRUE(c.has_value());
  // An empty id is refused, and nothing of the batch is written.
  EXPECT_FALSE(store().apply(Batch().devices({make_device("dev-e")}).removed_devices({""})).ok());
  ASSERT_OK_AND_ASSIGN(e, store().get_device("dev-e"));
  EXPECT_FALSE(e.has_value());
  // Back under the same id, as new.
  ASSERT_OK(store().apply(Batch().devices({make_device("dev-b")})));
  ASSERT_OK_AND_ASSIGN(again, store().get_device("dev-b"));
  EXPECT_TRUE(again.has_value());
}

TEST_P(StoreConformanceTest, RemovalsAndRecordsOfSeveralBatchesKeepTheirOrder) {
  ASSERT_OK(store().apply(Batch().devices({make_device("dev-a"), make_device("dev-b")})));
  Device b2 = make_device("dev-b");
  b2.site = "bldg-999";
  // dev-a removed, then written again: there. dev-b written, then removed: gone. dev-c
  // written, removed, written: there.
  const WriteBatch first = Batch().removed_devices({"dev-a"}).devices({b2, make_device("dev-c")});
  const WriteBatch second = Batch().devices({make_device("dev-a")}).removed_devices({"dev-b"});
  const WriteBatch third = Batch().removed_devices({"dev-c"});
  const WriteBatch fourth = Batch().devices({make_device("dev-c")});
  const WriteBatch* all[] = {&first, &second, &third, &fourth};
  ASSERT_OK(store().apply_all(all));
  ASSERT_OK_AND_ASSIGN(left, store().list_devices());
  EXPECT_EQ(left, (std::vector<Device>{make_device("dev-a"), make_device("dev-c")}));
}

// What the group commit hands the store when writers meet: every kind of record of every
// batch is written, a later batch's record replacing an earlier one's of the same key.
TEST_P(StoreConformanceTest, SeveralBatchesWriteEveryKindOfRecord) {
  Command queued;
  queued.id = "c1";
  queued.device_id = "dev-a";
  queued.action = protocol::CommandAction::kReboot;
  queued.requested_by = "test";
  queued.created_at = at_ms(1000);
  queued.expires_at = queued.created_at + hours(1);
  Command done = queued;
  done.state = CommandState::kSucceeded;
  done.finished_at = at_ms(2000);
  done.exit_code = 0;
  Alert opened;
  opened.id = "a1";
  opened.device_id = "dev-a";
  opened.rule = "no-data";
  opened.condition = "no_data";
  opened.summary = "checks in but sends nothing";
  opened.opened_at = at_ms(1000);
  opened.updated_at = opened.opened_at;
  Alert other = opened;
  other.id = "a2";
  WriteBatch first, second, third;
  first.commands = {queued};
  first.alerts = {opened};
  second.devices = {make_device("dev-a")};
  second.alerts = {other};
  third.commands = {done};
  const WriteBatch* all[] = {&first, &second, &third};
  ASSERT_OK(store().apply_all(all));
  ASSERT_OK_AND_ASSIGN(command, store().get_command("c1"));
  ASSERT_TRUE(command.has_value());
  EXPECT_EQ(*command, done);
  ASSERT_OK_AND_ASSIGN(a1, store().get_alert("a1"));
  ASSERT_TRUE(a1.has_value());
  EXPECT_EQ(*a1, opened);
  ASSERT_OK_AND_ASSIGN(a2, store().get_alert("a2"));
  ASSERT_TRUE(a2.has_value());
  EXPECT_EQ(*a2, other);
  ASSERT_OK_AND_ASSIGN(device, store().get_device("dev-a"));
  EXPECT_TRUE(device.has_value());
}

TEST_P(StoreConformanceTest, HeldConditionsRoundTripOverwriteAndGo) {
  const HeldCondition alive{"", "@alive", at_ms(2000), false};
  HeldCondition no_data{"dev-a", "no-data", at_ms(1000), false};
  const HeldCondition memory{"dev-b", "memory-high", at_ms(3000), true};
  ASSERT_OK(store().apply(Batch().held({no_data, alive, memory})));
  ASSERT_OK_AND_ASSIGN(listed, store().list_held_conditions());
  EXPECT_EQ(listed, (std::vector<HeldCondition>{alive, no_data, memory}));  // (device, rule)
  // Overwritten by key; removed (an unknown key is no error); written and removed in one
  // batch: gone.
  no_data.since = at_ms(5000);
  const HeldCondition brief{"dev-c", "no-data", at_ms(6000), false};
  ASSERT_OK(store().apply(
      Batch()
          .held({no_data, brief})
          .removed_held({{"dev-b", "memory-high"}, {"dev-c", "no-data"}, {"dev-zz", "no-data"}})));
  ASSERT_OK_AND_ASSIGN(after, store().list_held_conditions());
  EXPECT_EQ(after, (std::vector<HeldCondition>{alive, no_data}));
  // An empty rule is refused, and nothing of the batch is written.
  EXPECT_FALSE(store().apply(Batch().held({memory, {"dev-d", "", at_ms(1), false}})).ok());
  EXPECT_FALSE(store().apply(Batch().held({memory}).removed_held({{"dev-a", ""}})).ok());
  ASSERT_OK_AND_ASSIGN(unchanged, store().list_held_conditions());
  EXPECT_EQ(unchanged, after);
  // Several batches keep their order: removed then written again is there; written then
  // removed is gone.
  const WriteBatch first = Batch().removed_held({{"dev-a", "no-data"}}).held({memory});
  const WriteBatch second = Batch().held({no_data}).removed_held({{"dev-b", "memory-high"}});
  const WriteBatch third = Batch().held({brief});
  const WriteBatch* all[] = {&first, &second, &third};
  ASSERT_OK(store().apply_all(all));
  ASSERT_OK_AND_ASSIGN(merged, store().list_held_conditions());
  EXPECT_EQ(merged, (std::vector<HeldCondition>{alive, no_data, brief}));
}

TEST_P(StoreConformanceTest, ConfigVersionsRoundTripNewestFirstAndPerType) {
  const auto doc = [](const std::string& type, uint64_t version, int64_t fan) {
    ConfigDocument d;
    d.device_type = type;
    d.version = version;
    // Every kind, and the numbers whose text is easiest to get wrong: a whole double, a
    // negative integer, a large exponent, a sum with no short decimal form.
    d.values = {
        {"fan", fan},    {"mode", std::string("eco")}, {"setpoint", 21.5}, {"on", true},
        {"whole", 21.0}, {"offset", int64_t{-3}},      {"big", 1e20},      {"sum", 0.1 + 0.2},
        {"zero", -0.0}};
    d.sha256 = protocol::config_sha256(d.values);
    d.created_at = at_ms(1000 * static_cast<int64_t>(version));
    d.author = "token:0123 (ops)";
    d.note = version == 1 ? "" : "fan up";
    return d;
  };
  ASSERT_OK_AND_ASSIGN(none, store().get_config("bms", 0));
  EXPECT_FALSE(none.has_value());
  WriteBatch batch;
  batch.configs = {doc("bms", 2, 3), doc("bms", 1, 2), doc("meter", 1, 0)};
  ASSERT_OK(store().apply(batch));
  ASSERT_OK_AND_ASSIGN(newest, store().get_config("bms", 0));
  ASSERT_TRUE(newest.has_value());
  EXPECT_EQ(*newest, doc("bms", 2, 3));  // every kind of value read back as written
  ASSERT_OK_AND_ASSIGN(first, store().get_config("bms", 1));
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(*first, doc("bms", 1, 2));
  ASSERT_OK_AND_ASSIGN(missing, store().get_config("bms", 7));
  EXPECT_FALSE(missing.has_value());
  ASSERT_OK_AND_ASSIGN(history, store().list_configs("bms"));
  EXPECT_EQ(history, (std::vector<ConfigDocument>{doc("bms", 1, 2), doc("bms", 2, 3)}));
  ASSERT_OK_AND_ASSIGN(other, store().list_configs("meter"));
  EXPECT_EQ(other.size(), 1u);
  // Version 0 is not a version: refused, nothing of the batch written.
  WriteBatch bad;
  bad.configs = {doc("bms", 3, 4), doc("bms", 0, 1)};
  EXPECT_FALSE(store().apply(bad).ok());
  ASSERT_OK_AND_ASSIGN(still, store().get_config("bms", 0));
  ASSERT_TRUE(still.has_value());
  EXPECT_EQ(still->version, 2u);
}

TEST_P(StoreConformanceTest, NextSequenceCountsFromOnePerName) {
  for (uint64_t want : {1u, 2u, 3u}) {
    ASSERT_OK_AND_ASSIGN(got, store().next_sequence("rollout"));
    EXPECT_EQ(got, want);
  }
  ASSERT_OK_AND_ASSIGN(other, store().next_sequence("deployment"));
  EXPECT_EQ(other, 1u);
  ASSERT_OK_AND_ASSIGN(fourth, store().next_sequence("rollout"));
  EXPECT_EQ(fourth, 4u);
}

TEST_P(StoreConformanceTest, NextSequenceNeverRepeatsAcrossThreads) {
  constexpr int kThreads = 4;
  constexpr int kEach = 50;
  std::vector<std::vector<uint64_t>> got(kThreads);
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        auto v = store().next_sequence("ids");
        EXPECT_TRUE(v.ok());
        if (v.ok()) got[t].push_back(*v);
      }
    });
  }
  for (auto& t : threads) t.join();
  std::set<uint64_t> all;
  for (const auto& values : got) {
    for (size_t i = 1; i < values.size(); ++i) EXPECT_LT(values[i - 1], values[i]);
    all.insert(values.begin(), values.end());
  }
  ASSERT_EQ(all.size(), static_cast<size_t>(kThreads * kEach));
  EXPECT_EQ(*all.begin(), 1u);
  EXPECT_EQ(*all.rbegin(), static_cast<uint64_t>(kThreads * kEach));
}

TEST_P(StoreConformanceTest, TheAuditLogIsAppendedInOrderAndNeverOverwritten) {
  ASSERT_OK_AND_ASSIGN(empty, store().audit_size());
  EXPECT_EQ(empty, 0u);
  for (uint64_t i = 0; i < 5; ++i) {
    ASSERT_OK(store().append_audit({i, "entry " + std::to_string(i), "cp " + std::to_string(i)}));
  }
  // A second writer that read the size before the first appended is refused, and nothing of
  // it is written.
  const Status stale = store().append_audit({3, "forged", "cp"});
  EXPECT_EQ(stale.error().code, ErrorCode::kConflict);
  EXPECT_EQ(store().append_audit({7, "gap", "cp"}).error().code, ErrorCode::kConflict);
  ASSERT_OK_AND_ASSIGN(size, store().audit_size());
  EXPECT_EQ(size, 5u);
  ASSERT_OK_AND_ASSIGN(page, store().read_audit(1, 3));
  ASSERT_EQ(page.size(), 3u);
  for (size_t i = 0; i < page.size(); ++i) {
    EXPECT_EQ(page[i].index, i + 1);
    EXPECT_EQ(page[i].entry, "entry " + std::to_string(i + 1));
    EXPECT_EQ(page[i].checkpoint, "cp " + std::to_string(i + 1));
  }
  ASSERT_OK_AND_ASSIGN(tail, store().read_audit(4, 100));
  ASSERT_EQ(tail.size(), 1u);
  EXPECT_EQ(tail[0].entry, "entry 4");
  ASSERT_OK_AND_ASSIGN(beyond, store().read_audit(5, 100));
  EXPECT_TRUE(beyond.empty());
  ASSERT_OK_AND_ASSIGN(huge, store().read_audit(UINT64_MAX, SIZE_MAX));
  EXPECT_TRUE(huge.empty());
}

TEST_P(StoreConformanceTest, ConcurrentAuditAppendersGetOneIndexEach) {
  constexpr int kThreads = 4;
  constexpr int kEach = 25;
  std::atomic<int> conflicts{0};
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int done = 0; done < kEach;) {
        auto size = store().audit_size();
        ASSERT_TRUE(size.ok());
        const Status st = store().append_audit({*size, "t" + std::to_string(t), "cp"});
        if (st.ok()) {
          ++done;
        } else {
          ASSERT_EQ(st.error().code, ErrorCode::kConflict) << st.error().to_string();
          ++conflicts;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  ASSERT_OK_AND_ASSIGN(all, store().read_audit(0, 1000));
  ASSERT_EQ(all.size(), static_cast<size_t>(kThreads * kEach));
  for (size_t i = 0; i < all.size(); ++i) EXPECT_EQ(all[i].index, i);
}

// ---------------------------------------------------------------- SQLite only

TEST(SqliteStoreTest, DataSurvivesCloseAndReopen) {
  TempDir dir;
  const std::string path = dir.file("store.db");
  const WriteBatch batch{
      .devices = {make_device("dev-a")},
      .sites = {make_site("bldg-017")},
      .profiles = {make_profile("bms-controller")},
      .artifacts = {make_artifact("firmware", "4.2.1")},
      .rollouts = {make_rollout("ro-1")},
      .deployments = {make_deployment("ro-1", "dev-a"), make_deployment("ro-1", "dev-b")},
      .api_tokens = {make_token("0123456789abcdef", Role::kOperator)},
      .enrollment_tokens = {},
      .commands = {},
      .alerts = {},
      .configs = {},
      .steps = {make_step("ro-1", "dev-b", "offer")},
      .removed_devices = {},
      .held_conditions = {{"dev-a", "no-data", at_ms(1000), false}, {"", "@alive", at_ms(7), true}},
      .removed_held_conditions = {}};
  {
    ASSERT_OK_AND_ASSIGN(store, open_sqlite_store(path));
    ASSERT_OK(store->apply(batch));
    ASSERT_OK_AND_ASSIGN(one, store->next_sequence("rollout"));
    EXPECT_EQ(one, 1u);
    ASSERT_OK_AND_ASSIGN(two, store->next_sequence("rollout"));
    EXPECT_EQ(two, 2u);
  }
  // Reopened with the other synchronous mode: the setting is per connection, not per file.
  ASSERT_OK_AND_ASSIGN(store, open_sqlite_store(path, {.synchronous_full = false}));
  ASSERT_OK_AND_ASSIGN(devices, store->list_devices());
  EXPECT_EQ(devices, batch.devices);
  ASSERT_OK_AND_ASSIGN(sites, store->list_sites());
  EXPECT_EQ(sites, batch.sites);
  ASSERT_OK_AND_ASSIGN(profiles, store->list_profiles());
  EXPECT_EQ(profiles, batch.profiles);
  ASSERT_OK_AND_ASSIGN(profile, store->get_profile("bms-controller"));
  EXPECT_EQ(profile, batch.profiles[0]);
  ASSERT_OK_AND_ASSIGN(none, store->get_profile("toaster"));
  EXPECT_EQ(none, std::nullopt);
  ASSERT_OK_AND_ASSIGN(artifacts, store->list_artifacts());
  EXPECT_EQ(artifacts, batch.artifacts);
  ASSERT_OK_AND_ASSIGN(rollout, store->get_rollout("ro-1"));
  EXPECT_EQ(rollout, batch.rollouts[0]);
  ASSERT_OK_AND_ASSIGN(deployments, store->list_deployments("ro-1"));
  EXPECT_EQ(deployments, batch.deployments);
  ASSERT_OK_AND_ASSIGN(three, store->next_sequence("rollout"));
  EXPECT_EQ(three, 3u);
  ASSERT_OK_AND_ASSIGN(steps, store->list_deployment_steps("ro-1", "dev-b"));
  EXPECT_EQ(steps, batch.steps);
  ASSERT_OK_AND_ASSIGN(held, store->list_held_conditions());
  EXPECT_EQ(held, (std::vector<HeldCondition>{batch.held_conditions[1], batch.held_conditions[0]}));
}

TEST(SqliteStoreTest, RefusesASchemaNewerThanThisBuild) {
  TempDir dir;
  const std::string path = dir.file("store.db");
  { ASSERT_OK_AND_ASSIGN(store, open_sqlite_store(path)); }
  RawDb(path).exec("PRAGMA user_version = 9999");

  auto reopened = open_sqlite_store(path);
  ASSERT_FALSE(reopened.ok());
  EXPECT_EQ(reopened.error().code, ErrorCode::kCorruption);
  EXPECT_NE(reopened.error().message.find("9999"), std::string::npos) << reopened.error().message;
}

TEST(SqliteStoreTest, AFileThatIsNotADatabaseIsCorruption) {
  TempDir dir;
  const std::string path = dir.file("store.db");
  std::ofstream(path) << std::string(8192, 'x');
  auto opened = open_sqlite_store(path);
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.error().code, ErrorCode::kCorruption) << opened.error().to_string();
}

TEST(SqliteStoreTest, AnUnopenablePathIsIo) {
  TempDir dir;
  auto opened = open_sqlite_store(dir.file("no-such-directory/store.db"));
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.error().code, ErrorCode::kIo) << opened.error().to_string();
}

TEST(SqliteStoreTest, ACorruptDocumentIsReportedAsCorruption) {
  TempDir dir;
  const std::string path = dir.file("store.db");
  ASSERT_OK_AND_ASSIGN(store, open_sqlite_store(path));
  ASSERT_OK(store->apply(Batch()
                             .devices({make_device("dev-a"), make_device("dev-b")})
                             .rollouts({make_rollout("ro-1")})
                             .deployments({make_deployment("ro-1", "dev-a")})));
  {
    RawDb raw(path);
    raw.exec("UPDATE devices SET doc = '{\"id\": \"dev-b\", garbage' WHERE id = 'dev-b'");
    raw.exec("UPDATE rollouts SET doc = '{\"id\": \"ro-1\"}' WHERE id = 'ro-1'");  // valid JSON,
                                                                                   // bad record
    raw.exec("UPDATE deployments SET doc = x'00ff' WHERE device_id = 'dev-a'");
  }

  ASSERT_OK_AND_ASSIGN(fine, store->get_device("dev-a"));
  EXPECT_EQ(fine, make_device("dev-a"));

  auto device = store->get_device("dev-b");
  ASSERT_FALSE(device.ok());
  EXPECT_EQ(device.error().code, ErrorCode::kCorruption);
  EXPECT_NE(device.error().message.find("devices"), std::string::npos) << device.error().message;
  EXPECT_NE(device.error().message.find("dev-b"), std::string::npos) << device.error().message;

  auto devices = store->list_devices();
  ASSERT_FALSE(devices.ok());
  EXPECT_EQ(devices.error().code, ErrorCode::kCorruption);
  EXPECT_NE(devices.error().message.find("dev-b"), std::string::npos) << devices.error().message;

  auto rollout = store->get_rollout("ro-1");
  ASSERT_FALSE(rollout.ok());
  EXPECT_EQ(rollout.error().code, ErrorCode::kCorruption);
  EXPECT_NE(rollout.error().message.find("rollouts"), std::string::npos) << rollout.error().message;

  auto deployments = store->list_deployments("ro-1");
  ASSERT_FALSE(deployments.ok());
  EXPECT_EQ(deployments.error().code, ErrorCode::kCorruption);
  EXPECT_NE(deployments.error().message.find("ro-1/dev-a"), std::string::npos)
      << deployments.error().message;

  // The store keeps working for records that are intact.
  ASSERT_OK(store->apply(Batch().devices({make_device("dev-b")})));
  ASSERT_OK_AND_ASSIGN(repaired, store->list_devices());
  EXPECT_EQ(repaired.size(), 2u);
}

// ---- a writer killed mid-stream

constexpr uint32_t kCrashDeploymentsPerBatch = 200;
constexpr const char* kCrashRollout = "crash";
constexpr const char* kCrashSequence = "crash-batches";

// Batch k: kCrashDeploymentsPerBatch new deployments numbered by k (in `offers`) and the
// rollout record rewritten to count them, so a half-written batch would show either way.
WriteBatch crash_batch(uint32_t k) {
  WriteBatch b;
  Rollout r = make_rollout(kCrashRollout);
  r.targets = (k + 1) * kCrashDeploymentsPerBatch;
  b.rollouts.push_back(r);
  for (uint32_t i = 0; i < kCrashDeploymentsPerBatch; ++i) {
    char device[32];
    std::snprintf(device, sizeof device, "b%06u-d%03u", k, i);
    Deployment d = make_deployment(kCrashRollout, device);
    d.offers = k;
    b.deployments.push_back(d);
  }
  return b;
}

// The child: commits batches and bumps the sequence until killed, reporting each batch
// number (1-based, after the bump) on `fd`. Never returns.
[[noreturn]] void run_crash_writer(const std::string& path, int fd) {
  auto opened = open_sqlite_store(path, {.synchronous_full = false});
  if (!opened.ok()) _exit(2);
  Store& store = **opened;
  for (uint32_t k = 0; k < 1'000'000; ++k) {
    if (!store.apply(crash_batch(k)).ok()) _exit(3);
    auto n = store.next_sequence(kCrashSequence);
    if (!n.ok() || *n != k + 1) _exit(4);
    const uint32_t reported = k + 1;
    if (write(fd, &reported, sizeof reported) != sizeof reported) _exit(5);
  }
  _exit(6);
}

bool read_report(int fd, uint32_t& out) {
  size_t got = 0;
  auto* bytes = reinterpret_cast<char*>(&out);
  while (got < sizeof out) {
    const ssize_t n = read(fd, bytes + got, sizeof out - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    got += static_cast<size_t>(n);
  }
  return true;
}

TEST(SqliteStoreTest, AWriterKilledMidStreamLeavesAPrefixOfWholeBatches) {
  TempDir dir;
  const std::string path = dir.file("store.db");
  constexpr uint32_t kReportsBeforeKill = 25;

  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    close(fds[0]);
    run_crash_writer(path, fds[1]);
  }
  close(fds[1]);

  uint32_t reported = 0;
  uint32_t value = 0;
  while (reported < kReportsBeforeKill && read_report(fds[0], value)) reported = value;
  kill(child, SIGKILL);
  while (read_report(fds[0], value)) reported = value;  // reports written before it died
  close(fds[0]);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
      << "the writer stopped by itself (exit status " << WEXITSTATUS(status) << ")";
  ASSERT_GE(reported, kReportsBeforeKill);

  ASSERT_OK_AND_ASSIGN(store, open_sqlite_store(path));
  ASSERT_OK_AND_ASSIGN(deployments, store->list_deployments(kCrashRollout));
  std::map<uint32_t, uint32_t> per_batch;
  for (const auto& d : deployments) ++per_batch[d.offers];
  const auto batches = static_cast<uint32_t>(per_batch.size());
  uint32_t expected_k = 0;
  for (const auto& [k, count] : per_batch) {
    EXPECT_EQ(k, expected_k++) << "batches present are not a prefix";
    EXPECT_EQ(count, kCrashDeploymentsPerBatch) << "batch " << k << " is partly written";
  }
  // Every reported batch is there; at most one more committed before its report went out.
  EXPECT_GE(batches, reported);
  EXPECT_LE(batches, reported + 1);
  ASSERT_OK_AND_ASSIGN(rollout, store->get_rollout(kCrashRollout));
  ASSERT_TRUE(rollout.has_value());
  EXPECT_EQ(rollout->targets, batches * kCrashDeploymentsPerBatch);
  // The bump follows its batch: it may be missing for the last one, never ahead of it.
  ASSERT_OK_AND_ASSIGN(next, store->next_sequence(kCrashSequence));
  EXPECT_GE(next, uint64_t{batches});
  EXPECT_LE(next, uint64_t{batches} + 1);
  EXPECT_GE(next, uint64_t{reported} + 1);
}

}  // namespace
}  // namespace drover
