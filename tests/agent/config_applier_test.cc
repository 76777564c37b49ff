// ConfigApplier on the device: a document is applied only inside both envelopes (the one it
// comes with and the device's own), journaled before it is written, taken by the apply
// command or put back; a stop at any point leaves a document whose apply command ran; a
// refused one is not fetched again, even after a restart; a file changed by hand is repaired.
#include "agent/config_applier.h"

#include <gtest/gtest.h>

#include <memory>

#include "base/memory_file_system.h"

namespace drover::agent {
namespace {

using protocol::ConfigValues;

protocol::ConfigEnvelope envelope(std::string_view text) {
  auto e = protocol::decode_config_envelope(text);
  EXPECT_TRUE(e.ok()) << e.error().to_string();
  return e.ok() ? *e : protocol::ConfigEnvelope{};
}

// The server's envelope is wide; the device's own (shipped with its firmware) is narrower.
constexpr std::string_view kServerEnvelope =
    R"({"fields": [{"name": "setpoint_c", "min": 0, "max": 40}, {"name": "fan", "kind": "integer"}]})";
constexpr std::string_view kOwnEnvelope =
    R"({"fields": [{"name": "setpoint_c", "min": 10, "max": 28}, {"name": "fan", "kind": "integer", "min": 0, "max": 5}]})";
constexpr const char* kPath = "/etc/ctl/config.json";
constexpr const char* kOwn = "/usr/share/ctl/envelope.json";
constexpr const char* kState = "/data/config.json";

class ScriptedRunner final : public CommandRunner {
 public:
  struct Call {
    std::vector<std::string> argv;
    Environment env;
    std::string file_then;  // the document on disk when the command ran
  };
  explicit ScriptedRunner(MemoryFileSystem& fs) : fs_(fs) {}
  std::vector<Call> calls;
  int exit_code = 0;
  // When set, the files as they are while the apply command runs (an agent killed then).
  std::unique_ptr<MemoryFileSystem> crashed;
  bool crash_next = false;
  Result<CommandResult> run(const std::vector<std::string>& argv, Duration,
                            const Environment& env) override {
    auto file = fs_.read(kPath);
    calls.push_back({argv, env, file.ok() ? *file : ""});
    if (crash_next) {
      crash_next = false;
      crashed = std::make_unique<MemoryFileSystem>();
      for (const char* p : {kPath, kOwn, kState}) {
        if (auto f = fs_.read(p); f.ok()) {
          EXPECT_TRUE(crashed->write(p, *f).ok());
        }
      }
    }
    CommandResult r;
    r.exit_code = exit_code;
    r.output = exit_code == 0 ? "" : "sensord: bad setpoint\n";
    return r;
  }

 private:
  MemoryFileSystem& fs_;
};

class ConfigServer final : public ServerLink {
 public:
  protocol::DeviceConfig config;
  int fetches = 0;
  std::optional<Error> answer_error;
  void set(uint64_t version, ConfigValues values) {
    config = {"ctl", version, protocol::config_sha256(values), std::move(values),
              envelope(kServerEnvelope)};
  }
  ConfigWanted wanted() const { return {config.version, config.sha256}; }
  Result<protocol::DeviceConfig> device_config() override {
    ++fetches;
    if (answer_error) return *answer_error;
    return config;
  }
  Status connect(const Inventory&) override { return ok_status(); }
  Result<CheckInAnswer> check_in(const Inventory&, protocol::UpdateState, std::string_view, bool,
                                 const protocol::ConfigReport*) override {
    return CheckInAnswer{};
  }
  Status report(const std::string&, const std::string&, protocol::Report, const std::string&,
                const std::string&) override {
    return ok_status();
  }
  Result<uint64_t> download(const UpdateRecord&, const std::string&, uint64_t,
                            const std::function<void(uint64_t)>&) override {
    return uint64_t{0};
  }
};

// The files, with renames onto the document failing while `broken` is set (a restore that
// cannot write).
class FlakyFileSystem final : public ForwardingFileSystem {
 public:
  explicit FlakyFileSystem(FileSystem& target) : ForwardingFileSystem(target) {}
  bool broken = false;
  Status rename(const std::string& from, const std::string& to) override {
    if (broken && to == kPath) return io_error("no space left on device");
    return ForwardingFileSystem::rename(from, to);
  }
};

ConfigApplyOptions options(bool own_envelope) {
  return {kPath,      {"systemctl", "reload", "sensord"},
          minutes(1), own_envelope ? kOwn : "",
          hours(1),   "/data"};
}

struct Device {
  MemoryFileSystem fs;
  FlakyFileSystem flaky{fs};
  ManualClock clock{Timestamp(hours(24 * 20000))};
  ScriptedRunner runner{fs};
  ConfigServer server;
  std::unique_ptr<ConfigApplier> applier;
  explicit Device(bool own_envelope = true) {
    EXPECT_TRUE(fs.write(kOwn, kOwnEnvelope).ok());
    restart(own_envelope);
  }
  // A new agent over the same files.
  void restart(bool own_envelope = true) {
    applier = std::make_unique<ConfigApplier>(options(own_envelope), runner, clock, flaky);
    applier->start();
  }
  void answer() { applier->on_answer(server.wanted(), server); }
  std::string on_disk() {
    auto f = fs.read(kPath);
    return f.ok() ? *f : "(none)";
  }
};

TEST(ConfigApplier, ADocumentIsWrittenWholeThenTakenByTheApplyCommandAndReported) {
  Device d;
  EXPECT_EQ(d.applier->report(), (protocol::ConfigReport{"", ""}));  // none yet
  d.server.set(1, {{"setpoint_c", 21.5}, {"fan", int64_t{2}}});
  d.answer();
  EXPECT_EQ(d.on_disk(), R"({"fan":2,"setpoint_c":21.5})");
  ASSERT_EQ(d.runner.calls.size(), 1u);
  EXPECT_EQ(d.runner.calls[0].argv, (std::vector<std::string>{"systemctl", "reload", "sensord"}));
  EXPECT_EQ(d.runner.calls[0].file_then, d.on_disk());  // written before the command ran
  const Environment want_env = {{"DROVER_CONFIG_PATH", kPath},
                                {"DROVER_CONFIG_VERSION", "1"},
                                {"DROVER_CONFIG_SHA256", d.server.config.sha256}};
  EXPECT_EQ(d.runner.calls[0].env, want_env);
  EXPECT_EQ(d.applier->report(), (protocol::ConfigReport{d.server.config.sha256, ""}));
  // Running it, nothing is fetched or run again.
  d.answer();
  d.applier->on_answer(std::nullopt, d.server);
  EXPECT_EQ(d.server.fetches, 1);
  EXPECT_EQ(d.runner.calls.size(), 1u);
  const std::vector<std::string> log = d.applier->take_log();
  ASSERT_EQ(log.size(), 1u);
  EXPECT_EQ(log[0], "configuration version 1 (" + d.server.config.sha256.substr(0, 12) +
                        ") applied to /etc/ctl/config.json");
  // The same values written otherwise (a service that rewrites its file) are still it.
  ASSERT_TRUE(d.fs.write(kPath, "{\n  \"setpoint_c\": 21.5,\n  \"fan\": 2\n}\n").ok());
  EXPECT_EQ(d.applier->report().sha256, d.server.config.sha256);
  d.answer();
  EXPECT_EQ(d.runner.calls.size(), 1u);
}

TEST(ConfigApplier,
     AValueOutsideTheDevicesOwnEnvelopeIsRefusedAndNotFetchedAgainEvenAfterARestart) {
  Device d;
  d.server.set(1, {{"setpoint_c", 21.0}});
  d.answer();
  const std::string applied = d.on_disk();
  // 35 °C is inside the server's envelope (0–40) but not this hardware's (10–28).
  d.server.set(2, {{"setpoint_c", 35.0}});
  d.answer();
  EXPECT_EQ(d.on_disk(), applied);       // untouched
  EXPECT_EQ(d.runner.calls.size(), 1u);  // nothing run for it
  const protocol::ConfigReport r = d.applier->report();
  EXPECT_EQ(r.sha256, protocol::config_sha256_of(applied));  // still runs version 1
  const std::string refusal = "configuration version 2 (" + d.server.config.sha256.substr(0, 12) +
                              ") refused: outside this device's own envelope "
                              "(/usr/share/ctl/envelope.json): setpoint_c: 35.0 is above the "
                              "envelope's maximum 28.0";
  EXPECT_EQ(r.error, refusal);
  // Asked again at every check-in, it does not fetch the refused document again: not later,
  // not after a restart (the refusal is kept on disk).
  d.clock.advance(hours(5));
  d.answer();
  d.restart();
  EXPECT_EQ(d.applier->report().error, refusal);
  d.answer();
  EXPECT_EQ(d.server.fetches, 2);
  // Meanwhile a file changed by hand gets what this device last applied.
  ASSERT_TRUE(d.fs.write(kPath, R"({"setpoint_c": 40})").ok());
  d.answer();
  EXPECT_EQ(d.on_disk(), applied);
  EXPECT_EQ(d.runner.calls.size(), 2u);
  EXPECT_EQ(d.applier->report().error, refusal);  // the refusal stands
  // A new version inside it is applied, and the error goes.
  d.server.set(3, {{"setpoint_c", 26.0}});
  d.answer();
  EXPECT_EQ(d.on_disk(), R"({"setpoint_c":26.0})");
  EXPECT_EQ(d.applier->report().error, "");
}

TEST(ConfigApplier, AFailedApplyPutsThePreviousDocumentBackAndIsTriedAgainLater) {
  Device d;
  d.server.set(1, {{"setpoint_c", 21.0}});
  d.answer();
  const std::string v1 = d.on_disk();
  d.server.set(2, {{"setpoint_c", 22.0}});
  d.runner.exit_code = 3;
  d.answer();
  // The new document was on disk when the command failed; the previous is back, and the
  // command ran again for it, told so.
  ASSERT_EQ(d.runner.calls.size(), 3u);
  EXPECT_EQ(d.runner.calls[1].file_then, R"({"setpoint_c":22.0})");
  EXPECT_EQ(d.runner.calls[2].file_then, v1);
  const Environment restore_env = {{"DROVER_CONFIG_PATH", kPath},
                                   {"DROVER_CONFIG_VERSION", "1"},
                                   {"DROVER_CONFIG_SHA256", protocol::config_sha256_of(v1)},
                                   {"DROVER_CONFIG_RESTORE", "1"}};
  EXPECT_EQ(d.runner.calls[2].env, restore_env);
  EXPECT_EQ(d.on_disk(), v1);
  EXPECT_EQ(d.applier->report().sha256, protocol::config_sha256_of(v1));
  // The restore's own command failed too (exit 3 still), and the report says so.
  EXPECT_NE(d.applier->report().error.find("the apply command failed (exit 3): sensord: bad "
                                           "setpoint; the previous document is back, but for it "
                                           "the apply command failed (exit 3)"),
            std::string::npos)
      << d.applier->report().error;
  // Not again before retry_after (nor when the server says the device runs what it should);
  // then again, and it takes.
  d.runner.exit_code = 0;
  d.clock.advance(minutes(59));
  d.answer();
  EXPECT_EQ(d.server.fetches, 2);
  d.clock.advance(minutes(2));
  d.answer();
  EXPECT_EQ(d.server.fetches, 3);
  EXPECT_EQ(d.on_disk(), R"({"setpoint_c":22.0})");
  EXPECT_EQ(d.applier->report().error, "");
}

TEST(ConfigApplier, AnAgentStoppedDuringTheApplyCommandPutsThePreviousBackAtItsStart) {
  Device d;
  d.server.set(1, {{"setpoint_c", 21.0}});
  d.answer();
  const std::string v1 = d.on_disk();
  d.server.set(2, {{"setpoint_c", 23.0}});
  d.runner.crash_next = true;  // the files as they are while version 2's command runs
  d.answer();
  ASSERT_NE(d.runner.crashed, nullptr);
  EXPECT_EQ(*d.runner.crashed->read(kPath), R"({"setpoint_c":23.0})");
  // A new agent over those files: version 2 is on disk but its command never ended, so it
  // must not be reported as run. The previous goes back and its command runs.
  ManualClock clock{d.clock.now()};
  ScriptedRunner runner{*d.runner.crashed};
  ConfigApplier after(options(true), runner, clock, *d.runner.crashed);
  after.start();
  EXPECT_EQ(*d.runner.crashed->read(kPath), v1);
  ASSERT_EQ(runner.calls.size(), 1u);
  EXPECT_EQ(runner.calls[0].file_then, v1);
  const protocol::ConfigReport r = after.report();
  EXPECT_EQ(r.sha256, protocol::config_sha256_of(v1));
  EXPECT_NE(r.error.find("configuration version 2"), std::string::npos) << r.error;
  EXPECT_NE(r.error.find("cut short"), std::string::npos) << r.error;
  // Tried again after retry_after.
  clock.advance(hours(1) + seconds(1));
  after.on_answer(d.server.wanted(), d.server);
  EXPECT_EQ(*d.runner.crashed->read(kPath), R"({"setpoint_c":23.0})");
  EXPECT_EQ(after.report().error, "");
}

TEST(ConfigApplier, APutBackThatFailsKeepsTheRefusalAndWaitsBeforeTryingAgain) {
  Device d;
  d.server.set(1, {{"setpoint_c", 21.0}});
  d.answer();
  const std::string v1 = d.on_disk();
  d.server.set(2, {{"setpoint_c", 35.0}});  // refused by the device's own envelope
  d.answer();
  const std::string refusal = d.applier->report().error;
  ASSERT_NE(refusal.find("refused"), std::string::npos);
  ASSERT_TRUE(d.fs.write(kPath, R"({"setpoint_c": 12})").ok());
  d.runner.exit_code = 1;  // the put-back's apply command fails: the edited file stays
  d.answer();
  EXPECT_EQ(d.on_disk(), R"({"setpoint_c": 12})");
  EXPECT_EQ(d.applier->report().error, refusal);  // the refusal stands, not fetched again
  const size_t ran = d.runner.calls.size();
  for (int i = 0; i < 5; ++i) d.answer();  // nothing again before retry_after
  EXPECT_EQ(d.runner.calls.size(), ran);
  EXPECT_EQ(d.server.fetches, 2);
  d.runner.exit_code = 0;
  d.clock.advance(hours(1) + seconds(1));
  d.answer();
  EXPECT_EQ(d.on_disk(), v1);
  EXPECT_EQ(d.server.fetches, 2);
  EXPECT_EQ(d.applier->report().error, refusal);
}

TEST(ConfigApplier, ARestoreThatCannotWriteIsOwedBeforeAnythingElseAndReportedAsIs) {
  Device d;
  d.server.set(1, {{"setpoint_c", 21.0}});
  d.answer();
  const std::string v1 = d.on_disk();
  d.server.set(2, {{"setpoint_c", 22.0}});
  d.runner.exit_code = 4;
  d.flaky.broken = false;
  // The apply command fails; then the disk refuses the previous document back.
  struct Breaker final : CommandRunner {
    ScriptedRunner& inner;
    FlakyFileSystem& fs;
    Breaker(ScriptedRunner& r, FlakyFileSystem& f) : inner(r), fs(f) {}
    Result<CommandResult> run(const std::vector<std::string>& argv, Duration t,
                              const Environment& env) override {
      fs.broken = true;
      return inner.run(argv, t, env);
    }
  } breaker(d.runner, d.flaky);
  ConfigApplier applier(options(true), breaker, d.clock, d.flaky);
  applier.start();
  applier.on_answer(d.server.wanted(), d.server);
  EXPECT_EQ(d.on_disk(), R"({"setpoint_c":22.0})");  // the failed document is still there
  // What runs is what ran before it, and the report says the restore failed.
  protocol::ConfigReport r = applier.report();
  EXPECT_EQ(r.sha256, protocol::config_sha256_of(v1));
  EXPECT_NE(r.error.find("putting the previous document back failed"), std::string::npos)
      << r.error;
  // Nothing else while it is owed: no fetch, no reapply.
  applier.on_answer(d.server.wanted(), d.server);
  EXPECT_EQ(d.server.fetches, 2);
  EXPECT_EQ(applier.reapply(d.server).error().code, ErrorCode::kIo);
  // The disk takes it again: the next answer puts it back and runs the command for it.
  d.flaky.broken = false;
  d.runner.exit_code = 0;
  ConfigApplier after(options(true), d.runner, d.clock, d.flaky);  // a restart, too
  after.start();
  EXPECT_EQ(d.on_disk(), v1);
  EXPECT_EQ(d.runner.calls.back().env.back(),
            (std::pair<std::string, std::string>{"DROVER_CONFIG_RESTORE", "1"}));
  EXPECT_EQ(after.report().sha256, protocol::config_sha256_of(v1));
  d.clock.advance(hours(1) + seconds(1));
  after.on_answer(d.server.wanted(), d.server);
  EXPECT_EQ(d.on_disk(), R"({"setpoint_c":22.0})");
  EXPECT_EQ(after.report().error, "");
}

TEST(ConfigApplier, AFirstDocumentWhoseApplyFailsLeavesNone) {
  Device d(false);
  d.runner.exit_code = 1;
  d.server.set(1, {{"setpoint_c", 21.0}});
  d.answer();
  EXPECT_EQ(d.on_disk(), "(none)");
  EXPECT_EQ(d.applier->report().sha256, "");
  EXPECT_NE(d.applier->report().error.find("no document is left"), std::string::npos);
}

TEST(ConfigApplier, AFileChangedByHandIsRepairedAndReapplyRunsTheCommandEvenWhenInSync) {
  Device d;
  d.server.set(1, {{"setpoint_c", 21.0}});
  d.answer();
  ASSERT_TRUE(d.fs.write(kPath, R"({"setpoint_c": 40})").ok());
  // The check-in reports what is on disk: the server sees another hash and says which it
  // wants; the applier puts it back.
  EXPECT_NE(d.applier->report().sha256, d.server.config.sha256);
  d.answer();
  EXPECT_EQ(d.on_disk(), R"({"setpoint_c":21.0})");
  EXPECT_EQ(d.runner.calls.size(), 2u);
  // reapply_config: in sync, fetched and applied again all the same (a service that lost
  // its settings reloads them).
  auto again = d.applier->reapply(d.server);
  ASSERT_TRUE(again.ok()) << again.error().to_string();
  EXPECT_EQ(d.runner.calls.size(), 3u);
  EXPECT_EQ(d.server.fetches, 3);
  // Unreachable: an error for the command, no verdict on the document.
  d.server.answer_error = io_error("connection refused");
  auto unreachable = d.applier->reapply(d.server);
  ASSERT_FALSE(unreachable.ok());
  EXPECT_EQ(unreachable.error().code, ErrorCode::kIo);
  EXPECT_EQ(d.applier->report().error, "");
  // A reapply whose command fails is said at the check-ins that follow, though the server
  // wants what runs.
  d.server.answer_error.reset();
  d.runner.exit_code = 2;
  ASSERT_FALSE(d.applier->reapply(d.server).ok());
  d.applier->on_answer(std::nullopt, d.server);
  EXPECT_NE(d.applier->report().error.find("exit 2"), std::string::npos);
  d.runner.exit_code = 0;
  // Refused by the device's envelope: kFailedPrecondition, nothing written or run.
  const size_t ran = d.runner.calls.size();
  d.server.set(2, {{"fan", int64_t{9}}});
  auto refused = d.applier->reapply(d.server);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::kFailedPrecondition);
  EXPECT_EQ(d.on_disk(), R"({"setpoint_c":21.0})");
  EXPECT_EQ(d.runner.calls.size(), ran);
  EXPECT_NE(d.applier->report().error.find("fan: 9 is above"), std::string::npos);
}

TEST(ConfigApplier, ADocumentThatDoesNotCheckIsReportedAndTriedAgainOnlyLater) {
  Device d;
  d.server.set(1, {{"setpoint_c", 21.0}});
  d.server.answer_error = invalid_argument("configuration: sha256: does not match the values");
  d.answer();
  EXPECT_NE(d.applier->report().error.find("does not check"), std::string::npos);
  d.answer();
  EXPECT_EQ(d.server.fetches, 1);  // not at every check-in
  d.server.answer_error.reset();
  d.clock.advance(hours(2));
  d.answer();
  EXPECT_EQ(d.on_disk(), R"({"setpoint_c":21.0})");
}

TEST(ConfigApplier, AnOwnEnvelopeThatCannotBeUsedRefusesEveryDocumentWithoutStoppingTheAgent) {
  Device d;
  ASSERT_TRUE(d.fs.write(kOwn, R"({"fields": [{"name": "x", "min": 5, "max": 1}]})").ok());
  d.restart();
  const std::vector<std::string> log = d.applier->take_log();
  ASSERT_FALSE(log.empty());
  EXPECT_NE(log[0].find("is not valid"), std::string::npos) << log[0];
  d.server.set(1, {{"setpoint_c", 21.0}});
  d.answer();
  EXPECT_EQ(d.server.fetches, 0);
  EXPECT_EQ(d.on_disk(), "(none)");
  EXPECT_NE(d.applier->report().error.find("own envelope"), std::string::npos);
  EXPECT_EQ(d.applier->reapply(d.server).error().code, ErrorCode::kFailedPrecondition);
  ASSERT_TRUE(d.fs.remove(kOwn).ok());
  d.restart();
  EXPECT_NE(d.applier->report().error.find("cannot be read"), std::string::npos);
  // A state file that does not parse is started afresh, said in the log.
  ASSERT_TRUE(d.fs.write(kOwn, kOwnEnvelope).ok());
  ASSERT_TRUE(d.fs.write(kState, "{not json").ok());
  d.restart();
  const std::vector<std::string> fresh = d.applier->take_log();
  ASSERT_EQ(fresh.size(), 1u);
  EXPECT_NE(fresh[0].find("started afresh"), std::string::npos);
  d.answer();
  EXPECT_EQ(d.on_disk(), R"({"setpoint_c":21.0})");
}

TEST(ConfigApplier, TheLogIsBoundedWhenNobodyTakesIt) {
  Device d;
  d.server.set(1, {{"setpoint_c", 21.0}});
  d.server.answer_error = io_error("connection refused");
  for (int i = 0; i < 200; ++i) d.answer();
  EXPECT_EQ(d.applier->take_log().size(), ConfigApplier::kMaxLog + 1);
}

}  // namespace
}  // namespace drover::agent
