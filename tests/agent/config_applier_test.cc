// ConfigApplier on the device: a document is applied only inside both envelopes (the one it
// comes with and the device's own), written whole, taken by the apply command or put back;
// a refused one is not fetched again; a file changed by hand is repaired; reapply_config runs
// the apply command even when nothing changed.
#include "agent/config_applier.h"

#include <gtest/gtest.h>

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
  Result<CommandResult> run(const std::vector<std::string>& argv, Duration,
                            const Environment& env) override {
    auto file = fs_.read("/etc/ctl/config.json");
    calls.push_back({argv, env, file.ok() ? *file : ""});
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
  bool reachable = true;
  void set(uint64_t version, ConfigValues values) {
    config = {"ctl", version, protocol::config_sha256(values), std::move(values),
              envelope(kServerEnvelope)};
  }
  ConfigWanted wanted() const { return {config.version, config.sha256}; }
  Result<protocol::DeviceConfig> device_config() override {
    ++fetches;
    if (!reachable) return io_error("connection refused");
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

struct Device {
  MemoryFileSystem fs;
  ManualClock clock{Timestamp(hours(24 * 20000))};
  ScriptedRunner runner{fs};
  ConfigServer server;
  ConfigApplier applier;
  explicit Device(bool own_envelope = true)
      : applier({"/etc/ctl/config.json",
                 {"systemctl", "reload", "sensord"},
                 minutes(1),
                 own_envelope ? "/usr/share/ctl/envelope.json" : "",
                 hours(1)},
                runner, clock, fs) {
    EXPECT_TRUE(fs.write("/usr/share/ctl/envelope.json", kOwnEnvelope).ok());
    EXPECT_TRUE(applier.start().ok());
  }
  std::string on_disk() {
    auto f = fs.read("/etc/ctl/config.json");
    return f.ok() ? *f : "(none)";
  }
};

TEST(ConfigApplier, ADocumentIsWrittenWholeThenTakenByTheApplyCommandAndReported) {
  Device d;
  EXPECT_EQ(d.applier.report(), (protocol::ConfigReport{"", ""}));  // none yet
  d.server.set(1, {{"setpoint_c", 21.5}, {"fan", int64_t{2}}});
  d.applier.on_answer(d.server.wanted(), d.server);
  EXPECT_EQ(d.on_disk(), R"({"fan":2,"setpoint_c":21.5})");
  ASSERT_EQ(d.runner.calls.size(), 1u);
  EXPECT_EQ(d.runner.calls[0].argv, (std::vector<std::string>{"systemctl", "reload", "sensord"}));
  EXPECT_EQ(d.runner.calls[0].file_then, d.on_disk());  // written before the command ran
  const Environment want_env = {{"DROVER_CONFIG_PATH", "/etc/ctl/config.json"},
                                {"DROVER_CONFIG_VERSION", "1"},
                                {"DROVER_CONFIG_SHA256", d.server.config.sha256}};
  EXPECT_EQ(d.runner.calls[0].env, want_env);
  EXPECT_EQ(d.applier.report(), (protocol::ConfigReport{d.server.config.sha256, ""}));
  // Running it, nothing is fetched or run again.
  d.applier.on_answer(d.server.wanted(), d.server);
  d.applier.on_answer(std::nullopt, d.server);
  EXPECT_EQ(d.server.fetches, 1);
  EXPECT_EQ(d.runner.calls.size(), 1u);
  const std::vector<std::string> log = d.applier.take_log();
  ASSERT_EQ(log.size(), 1u);
  EXPECT_EQ(log[0], "configuration version 1 (" + d.server.config.sha256.substr(0, 12) +
                        ") applied to /etc/ctl/config.json");
}

TEST(ConfigApplier, AValueOutsideTheDevicesOwnEnvelopeIsRefusedAndNotFetchedAgain) {
  Device d;
  d.server.set(1, {{"setpoint_c", 21.0}});
  d.applier.on_answer(d.server.wanted(), d.server);
  const std::string applied = d.on_disk();
  // 35 °C is inside the server's envelope (0–40) but not this hardware's (10–28).
  d.server.set(2, {{"setpoint_c", 35.0}});
  d.applier.on_answer(d.server.wanted(), d.server);
  EXPECT_EQ(d.on_disk(), applied);       // untouched
  EXPECT_EQ(d.runner.calls.size(), 1u);  // nothing run for it
  const protocol::ConfigReport r = d.applier.report();
  EXPECT_EQ(r.sha256, protocol::config_sha256_of(applied));  // still runs version 1
  EXPECT_EQ(r.error, "configuration version 2 (" + d.server.config.sha256.substr(0, 12) +
                         ") refused: outside this device's own envelope "
                         "(/usr/share/ctl/envelope.json): setpoint_c: 35.0 is above the "
                         "envelope's maximum 28.0");
  // Asked again at every check-in, it does not fetch the refused document again, even later.
  d.clock.advance(hours(5));
  d.applier.on_answer(d.server.wanted(), d.server);
  EXPECT_EQ(d.server.fetches, 2);
  // A new version inside it is applied, and the error goes.
  d.server.set(3, {{"setpoint_c", 26.0}});
  d.applier.on_answer(d.server.wanted(), d.server);
  EXPECT_EQ(d.on_disk(), R"({"setpoint_c":26.0})");
  EXPECT_EQ(d.applier.report().error, "");
}

TEST(ConfigApplier, AFailedApplyPutsThePreviousDocumentBackAndIsTriedAgainLater) {
  Device d;
  d.server.set(1, {{"setpoint_c", 21.0}});
  d.applier.on_answer(d.server.wanted(), d.server);
  const std::string v1 = d.on_disk();
  d.server.set(2, {{"setpoint_c", 22.0}});
  d.runner.exit_code = 3;
  d.applier.on_answer(d.server.wanted(), d.server);
  // The new document was on disk when the command failed; the previous is back, and the
  // command ran again for it.
  ASSERT_EQ(d.runner.calls.size(), 3u);
  EXPECT_EQ(d.runner.calls[1].file_then, R"({"setpoint_c":22.0})");
  EXPECT_EQ(d.runner.calls[2].file_then, v1);
  EXPECT_EQ(d.on_disk(), v1);
  EXPECT_EQ(d.applier.report().sha256, protocol::config_sha256_of(v1));
  EXPECT_NE(d.applier.report().error.find("the apply command failed (exit 3): sensord: bad "
                                          "setpoint; the previous document is back"),
            std::string::npos)
      << d.applier.report().error;
  // Not again before retry_after; then again, and it takes.
  d.runner.exit_code = 0;
  d.clock.advance(minutes(59));
  d.applier.on_answer(d.server.wanted(), d.server);
  EXPECT_EQ(d.server.fetches, 2);
  d.clock.advance(minutes(2));
  d.applier.on_answer(d.server.wanted(), d.server);
  EXPECT_EQ(d.server.fetches, 3);
  EXPECT_EQ(d.on_disk(), R"({"setpoint_c":22.0})");
  EXPECT_EQ(d.applier.report().error, "");
}

TEST(ConfigApplier, AFirstDocumentWhoseApplyFailsLeavesNone) {
  Device d(false);
  d.runner.exit_code = 1;
  d.server.set(1, {{"setpoint_c", 21.0}});
  d.applier.on_answer(d.server.wanted(), d.server);
  EXPECT_EQ(d.on_disk(), "(none)");
  EXPECT_EQ(d.applier.report().sha256, "");
  EXPECT_NE(d.applier.report().error.find("no document is left"), std::string::npos);
}

TEST(ConfigApplier, AFileChangedByHandIsRepairedAndReapplyRunsTheCommandEvenWhenInSync) {
  Device d;
  d.server.set(1, {{"setpoint_c", 21.0}});
  d.applier.on_answer(d.server.wanted(), d.server);
  ASSERT_TRUE(d.fs.write("/etc/ctl/config.json", R"({"setpoint_c": 40})").ok());
  // The check-in reports what is on disk: the server sees another hash and says which it
  // wants; the applier puts it back.
  EXPECT_NE(d.applier.report().sha256, d.server.config.sha256);
  d.applier.on_answer(d.server.wanted(), d.server);
  EXPECT_EQ(d.on_disk(), R"({"setpoint_c":21.0})");
  EXPECT_EQ(d.runner.calls.size(), 2u);
  // reapply_config: in sync, fetched and applied again all the same (a service that lost
  // its settings reloads them).
  auto again = d.applier.reapply(d.server);
  ASSERT_TRUE(again.ok()) << again.error().to_string();
  EXPECT_EQ(d.runner.calls.size(), 3u);
  EXPECT_EQ(d.server.fetches, 3);
  // Unreachable: an error for the command, no verdict on the document.
  d.server.reachable = false;
  auto unreachable = d.applier.reapply(d.server);
  ASSERT_FALSE(unreachable.ok());
  EXPECT_EQ(unreachable.error().code, ErrorCode::kIo);
  EXPECT_EQ(d.applier.report().error, "");
  // Refused by the device's envelope: kFailedPrecondition.
  d.server.reachable = true;
  d.server.set(2, {{"fan", int64_t{9}}});
  auto refused = d.applier.reapply(d.server);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::kFailedPrecondition);
}

TEST(ConfigApplier, ABadOwnEnvelopeStopsTheStart) {
  MemoryFileSystem fs;
  ManualClock clock{Timestamp(hours(1))};
  ScriptedRunner runner{fs};
  ASSERT_TRUE(fs.write("/env.json", R"({"fields": [{"name": "x", "min": 5, "max": 1}]})").ok());
  ConfigApplier bad({"/c.json", {}, minutes(1), "/env.json", hours(1)}, runner, clock, fs);
  auto st = bad.start();
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, ErrorCode::kInvalidArgument);
  ConfigApplier missing({"/c.json", {}, minutes(1), "/nowhere.json", hours(1)}, runner, clock, fs);
  EXPECT_EQ(missing.start().error().code, ErrorCode::kNotFound);
}

}  // namespace
}  // namespace drover::agent
