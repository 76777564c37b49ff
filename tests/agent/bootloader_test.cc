#include "agent/bootloader.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace drover::agent {
namespace {

using Argv = std::vector<std::string>;
using Env = std::map<std::string, std::string>;

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Plays fw_printenv, fw_setenv -s and grub-editenv on an in-memory environment, and records
// every command line. The script file of fw_setenv is read inside run(), before the
// bootloader deletes it.
class FakeFirmware final : public CommandRunner {
 public:
  Env env;
  std::vector<Argv> calls;
  std::vector<std::string> scripts;       // the text of each fw_setenv script
  std::vector<std::string> script_paths;  // and where it was

  // Failure injection.
  std::string fail_program;  // this program exits 1 with `fail_output`
  std::string fail_output = "Cannot access MTD device /dev/mtd3: Permission denied\n";
  bool time_out = false;            // every command times out
  bool not_installed = false;       // nothing can be started
  bool libubootenv = false;         // fw_printenv -n: unset prints an empty line, exit 0
  std::string printenv_noise;       // printed (as stderr would be) before each value
  bool empty_is_a_value = false;    // an older libubootenv: `name=` stores an empty value
  bool setenv_ignores_all = false;  // fw_setenv exits 0 and changes nothing

  Result<CommandResult> run(const Argv& argv, Duration timeout, const Environment&) override {
    calls.push_back(argv);
    EXPECT_EQ(timeout, seconds(10));
    if (not_installed) return io_error("cannot run " + argv[0] + ": No such file or directory");
    if (time_out) return CommandResult{-1, true, "partial output"};
    if (argv[0] == fail_program) return CommandResult{1, false, fail_output};
    if (argv[0] == "fw_printenv") return printenv(argv);
    if (argv[0] == "fw_setenv") return setenv(argv);
    if (argv[0] == "grub-editenv") return editenv(argv);
    ADD_FAILURE() << "unexpected command " << argv[0];
    return CommandResult{127, false, "not found"};
  }

  // Commands that write the environment.
  std::vector<Argv> writes() const {
    std::vector<Argv> out;
    for (const Argv& a : calls) {
      if (a[0] == "fw_setenv" || (a[0] == "grub-editenv" && a.size() > 2 && a[2] != "list"))
        out.push_back(a);
    }
    return out;
  }

 private:
  CommandResult printenv(const Argv& argv) {
    EXPECT_EQ(argv.size(), 3u);
    EXPECT_EQ(argv[1], "-n");
    const auto it = env.find(argv[2]);
    if (it == env.end()) {
      if (libubootenv) return CommandResult{0, false, printenv_noise + "\n"};
      return CommandResult{1, false, "## Error: \"" + argv[2] + "\" not defined\n"};
    }
    return CommandResult{0, false, printenv_noise + it->second + "\n"};
  }

  CommandResult setenv(const Argv& argv) {
    EXPECT_EQ(argv.size(), 3u);
    EXPECT_EQ(argv[1], "-s");
    const std::string text = slurp(argv[2]);
    scripts.push_back(text);
    script_paths.push_back(argv[2]);
    if (setenv_ignores_all) return CommandResult{0, false, ""};
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
      const size_t eq = line.find('=');
      if (eq == std::string::npos) {
        ADD_FAILURE() << "libubootenv would skip the script line '" << line << "'";
        continue;
      }
      const std::string name = line.substr(0, eq);
      const std::string value = line.substr(eq + 1);
      if (value.empty() && !empty_is_a_value)
        env.erase(name);
      else
        env[name] = value;
    }
    return CommandResult{0, false, ""};
  }

  CommandResult editenv(const Argv& argv) {
    EXPECT_GE(argv.size(), 3u);
    if (argv[2] == "list") {
      std::string out;
      for (const auto& [k, v] : env) out += k + "=" + v + "\n";
      return CommandResult{0, false, out};
    }
    if (argv[2] == "set") {
      for (size_t i = 3; i < argv.size(); ++i) {
        const size_t eq = argv[i].find('=');
        EXPECT_NE(eq, std::string::npos) << argv[i];
        env[argv[i].substr(0, eq)] = argv[i].substr(eq + 1);
      }
      return CommandResult{0, false, ""};
    }
    if (argv[2] == "unset") {
      for (size_t i = 3; i < argv.size(); ++i) env.erase(argv[i]);
      return CommandResult{0, false, ""};
    }
    return CommandResult{1, false, "grub-editenv: error: unknown command " + argv[2] + "\n"};
  }
};

class BootloaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/drover-bootloader-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    cmdline_ = dir_ + "/cmdline";
    set_cmdline("console=ttyS0,115200 root=/dev/mmcblk0p2 rootwait drover.slot=A quiet\n");
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  void set_cmdline(const std::string& text) { std::ofstream(cmdline_, std::ios::trunc) << text; }

  std::unique_ptr<Bootloader> uboot() { return make_uboot_bootloader(fw_, cmdline_); }
  std::unique_ptr<Bootloader> grub() {
    return make_grub_bootloader(fw_, "/boot/grub/grubenv", cmdline_);
  }

  FakeFirmware fw_;
  std::string dir_, cmdline_;
};

std::optional<Slot> trial_of(Bootloader& b) {
  auto t = b.trial();
  EXPECT_TRUE(t.ok()) << t.error().to_string();
  return t.ok() ? *t : std::nullopt;
}

TEST(Slot, NamesAndParsing) {
  EXPECT_STREQ(to_string(Slot::kA), "A");
  EXPECT_STREQ(to_string(Slot::kB), "B");
  EXPECT_EQ(*parse_slot("A"), Slot::kA);
  EXPECT_EQ(*parse_slot("B"), Slot::kB);
  for (const char* bad : {"", "a", "b", "C", "AB", " A", "A ", "slot A"}) {
    auto s = parse_slot(bad);
    ASSERT_FALSE(s.ok()) << bad;
    EXPECT_EQ(s.error().code, ErrorCode::kInvalidArgument);
  }
  EXPECT_EQ(other(Slot::kA), Slot::kB);
  EXPECT_EQ(other(Slot::kB), Slot::kA);
}

// ---- the kernel command line ----

TEST_F(BootloaderTest, BootedSlotComesFromTheKernelCommandLine) {
  auto b = uboot();
  EXPECT_EQ(*b->booted(), Slot::kA);
  set_cmdline("drover.slot=B");  // no newline, only token
  EXPECT_EQ(*b->booted(), Slot::kB);
  set_cmdline("root=/dev/sda3\tdrover.slot=B\n  ro");  // tabs and newlines separate too
  EXPECT_EQ(*b->booted(), Slot::kB);
  set_cmdline("root=/dev/sda3 drover.slot=\"B\" ro\n");  // quoted, as the kernel allows
  EXPECT_EQ(*b->booted(), Slot::kB);
  set_cmdline("drover.slot=A root=/dev/sda3 drover.slot=B\n");  // repeated: the last counts
  EXPECT_EQ(*b->booted(), Slot::kB);
  EXPECT_TRUE(fw_.calls.empty());  // nothing asked of the bootloader's tools
}

TEST_F(BootloaderTest, AMissingOrMalformedSlotOnTheCommandLineIsAFailedPrecondition) {
  auto b = grub();
  for (const char* text :
       {"", "\n", "console=ttyS0 root=/dev/sda2 ro\n", "drover.slot\n", "drover.slot=\n",
        "drover.slot=C\n", "drover.slot=a\n", "drover.slot=AB\n", "xdrover.slot=A\n",
        "drover.slots=A\n", "drover_slot=A\n", "dyndbg=\"drover.slot=A x\"\n"}) {
    set_cmdline(text);
    auto s = b->booted();
    ASSERT_FALSE(s.ok()) << "'" << text << "'";
    EXPECT_EQ(s.error().code, ErrorCode::kFailedPrecondition) << text;
    EXPECT_NE(s.error().message.find("drover.slot"), std::string::npos);
    EXPECT_NE(s.error().message.find(cmdline_), std::string::npos);
  }
}

TEST_F(BootloaderTest, AnUnreadableCommandLineIsAnIoError) {
  std::filesystem::remove(cmdline_);
  auto s = uboot()->booted();
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kIo);
}

// ---- U-Boot ----

TEST_F(BootloaderTest, UBootFreshEnvironmentIsSlotACommittedNoTrial) {
  auto b = uboot();
  EXPECT_EQ(*b->committed(), Slot::kA);
  EXPECT_EQ(trial_of(*b), std::nullopt);
  EXPECT_TRUE(fw_.writes().empty());
  for (const Argv& a : fw_.calls) EXPECT_EQ(a[0], "fw_printenv");
}

TEST_F(BootloaderTest, UBootArmTrialIsOneScriptWithExactlyTheTrialVariables) {
  fw_.env = {{"drover_slot", "A"}, {"bootlimit", "1"}, {"bootcount", "3"}};
  auto b = uboot();
  ASSERT_TRUE(b->arm_trial(Slot::kB).ok());
  ASSERT_EQ(fw_.writes().size(), 1u);
  EXPECT_EQ(fw_.scripts[0], "drover_trial=B\nupgrade_available=1\nbootcount=0\n");
  EXPECT_FALSE(std::filesystem::exists(fw_.script_paths[0])) << "the script file is left over";
  EXPECT_EQ(fw_.env, (Env{{"drover_slot", "A"},
                          {"drover_trial", "B"},
                          {"upgrade_available", "1"},
                          {"bootcount", "0"},
                          {"bootlimit", "1"}}));
  EXPECT_EQ(trial_of(*b), Slot::kB);
  EXPECT_EQ(*b->committed(), Slot::kA);
}

TEST_F(BootloaderTest, UBootCommitIsOneScript) {
  fw_.env = {{"drover_slot", "A"},
             {"drover_trial", "B"},
             {"upgrade_available", "1"},
             {"bootcount", "1"},
             {"bootlimit", "1"}};
  set_cmdline("root=/dev/mmcblk0p3 drover.slot=B\n");
  auto b = uboot();
  EXPECT_EQ(*b->booted(), Slot::kB);
  ASSERT_TRUE(b->commit(Slot::kB).ok());
  ASSERT_EQ(fw_.writes().size(), 1u);
  EXPECT_EQ(fw_.scripts[0], "drover_slot=B\ndrover_trial=\nupgrade_available=0\nbootcount=0\n");
  EXPECT_FALSE(std::filesystem::exists(fw_.script_paths[0]));
  EXPECT_EQ(fw_.env, (Env{{"drover_slot", "B"},
                          {"upgrade_available", "0"},
                          {"bootcount", "0"},
                          {"bootlimit", "1"}}));
  EXPECT_EQ(*b->committed(), Slot::kB);
  EXPECT_EQ(trial_of(*b), std::nullopt);
}

TEST_F(BootloaderTest, UBootDisarmIsOneScript) {
  fw_.env = {
      {"drover_slot", "B"}, {"drover_trial", "A"}, {"upgrade_available", "1"}, {"bootcount", "0"}};
  auto b = uboot();
  ASSERT_TRUE(b->disarm_trial().ok());
  ASSERT_EQ(fw_.writes().size(), 1u);
  EXPECT_EQ(fw_.scripts[0], "drover_trial=\nupgrade_available=0\n");
  EXPECT_EQ(fw_.env, (Env{{"drover_slot", "B"}, {"upgrade_available", "0"}, {"bootcount", "0"}}));
  EXPECT_EQ(trial_of(*b), std::nullopt);
  EXPECT_EQ(*b->committed(), Slot::kB);
}

TEST_F(BootloaderTest, UBootCountsTheTrialBootSoTheTrialIsUsedUpInsideIt) {
  fw_.env = {{"drover_slot", "A"},
             {"drover_trial", "B"},
             {"upgrade_available", "1"},
             {"bootcount", "0"},
             {"bootlimit", "1"}};
  auto b = uboot();
  EXPECT_EQ(trial_of(*b), Slot::kB);  // armed, not booted yet
  fw_.env["bootcount"] = "1";         // U-Boot counted the trial boot
  EXPECT_EQ(trial_of(*b), std::nullopt);
  fw_.env["bootcount"] = "2";  // and the fallback boot (altbootcmd)
  EXPECT_EQ(trial_of(*b), std::nullopt);
  fw_.env["bootlimit"] = "3";  // a board that gives a trial three boots
  EXPECT_EQ(trial_of(*b), Slot::kB);
  fw_.env.erase("bootlimit");  // unset: one boot, as docs/agent.md asks for
  fw_.env["bootcount"] = "0";
  EXPECT_EQ(trial_of(*b), Slot::kB);
  fw_.env["upgrade_available"] = "0";  // the boot script ignores drover_trial then
  EXPECT_EQ(trial_of(*b), std::nullopt);
}

TEST_F(BootloaderTest, UBootWithLibubootenvTools) {
  fw_.libubootenv = true;  // unset prints an empty line and exits 0
  fw_.printenv_noise = "Cannot read environment, using default\n";
  auto b = uboot();
  EXPECT_EQ(*b->committed(), Slot::kA);
  EXPECT_EQ(trial_of(*b), std::nullopt);
  ASSERT_TRUE(b->arm_trial(Slot::kB).ok());
  EXPECT_EQ(trial_of(*b), Slot::kB);
  ASSERT_TRUE(b->commit(Slot::kB).ok());
  EXPECT_EQ(*b->committed(), Slot::kB);
  EXPECT_EQ(trial_of(*b), std::nullopt);
}

TEST_F(BootloaderTest, UBootWhereAnEmptyScriptValueIsStoredEmpty) {
  fw_.empty_is_a_value = true;  // older libubootenv: `drover_trial=` keeps an empty variable
  auto b = uboot();
  ASSERT_TRUE(b->arm_trial(Slot::kB).ok());
  ASSERT_TRUE(b->disarm_trial().ok());
  EXPECT_EQ(fw_.env.at("drover_trial"), "");
  EXPECT_EQ(trial_of(*b), std::nullopt);  // empty is no trial, as for the boot script
}

TEST_F(BootloaderTest, UBootWriteFailureIsAnIoErrorWithTheToolsOutput) {
  fw_.env = {{"drover_slot", "A"}};
  fw_.fail_program = "fw_setenv";
  auto b = uboot();
  for (Status st : {b->arm_trial(Slot::kB), b->commit(Slot::kB), b->disarm_trial()}) {
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.error().code, ErrorCode::kIo);
    EXPECT_NE(st.error().message.find("Cannot access MTD device /dev/mtd3"), std::string::npos)
        << st.error().message;
    EXPECT_NE(st.error().message.find("fw_setenv -s"), std::string::npos);
  }
  EXPECT_EQ(fw_.env, (Env{{"drover_slot", "A"}}));
  for (const std::string& p : fw_.script_paths) EXPECT_FALSE(std::filesystem::exists(p)) << p;
  fw_.fail_program.clear();
  EXPECT_EQ(*b->committed(), Slot::kA);
  EXPECT_EQ(trial_of(*b), std::nullopt);
}

TEST_F(BootloaderTest, UBootReadFailureIsAnIoErrorNotADefault) {
  fw_.fail_program = "fw_printenv";
  fw_.fail_output = "Cannot read environment: bad CRC, no redundant copy\n";
  auto b = uboot();
  auto c = b->committed();
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().code, ErrorCode::kIo);
  EXPECT_NE(c.error().message.find("bad CRC"), std::string::npos);
  auto t = b->trial();
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.error().code, ErrorCode::kIo);
  // A write cannot be confirmed without reading it back.
  auto st = b->arm_trial(Slot::kB);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, ErrorCode::kIo);
}

TEST_F(BootloaderTest, UBootAWriteThatDidNotLandIsAnIoError) {
  fw_.setenv_ignores_all = true;  // exits 0, e.g. a tool that skips lines it cannot parse
  auto b = uboot();
  auto st = b->arm_trial(Slot::kB);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, ErrorCode::kIo);
  EXPECT_NE(st.error().message.find("drover_trial"), std::string::npos) << st.error().message;
  EXPECT_EQ(trial_of(*b), std::nullopt);
}

TEST_F(BootloaderTest, UBootToolsMissingOrTimingOutAreIoErrors) {
  auto b = uboot();
  fw_.not_installed = true;
  EXPECT_EQ(b->committed().error().code, ErrorCode::kIo);
  EXPECT_EQ(b->arm_trial(Slot::kB).error().code, ErrorCode::kIo);
  fw_.not_installed = false;
  fw_.time_out = true;
  auto c = b->committed();
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().code, ErrorCode::kIo);
  EXPECT_NE(c.error().message.find("timed out"), std::string::npos) << c.error().message;
  EXPECT_EQ(b->commit(Slot::kA).error().code, ErrorCode::kIo);
}

TEST_F(BootloaderTest, UBootValuesItDidNotWriteAreCorruption) {
  auto b = uboot();
  fw_.env = {{"drover_slot", "C"}};
  EXPECT_EQ(b->committed().error().code, ErrorCode::kCorruption);
  fw_.env = {{"drover_trial", "slot-b"}, {"upgrade_available", "1"}};
  EXPECT_EQ(b->trial().error().code, ErrorCode::kCorruption);
  fw_.env = {{"drover_trial", "B"}, {"upgrade_available", "1"}, {"bootcount", "x1"}};
  EXPECT_EQ(b->trial().error().code, ErrorCode::kCorruption);
  fw_.env = {{"drover_trial", "B"}, {"upgrade_available", "1"}, {"bootlimit", "-1"}};
  EXPECT_EQ(b->trial().error().code, ErrorCode::kCorruption);
}

// ---- GRUB ----

TEST_F(BootloaderTest, GrubFreshEnvironmentIsSlotACommittedNoTrial) {
  auto b = grub();
  EXPECT_EQ(*b->committed(), Slot::kA);
  EXPECT_EQ(trial_of(*b), std::nullopt);
  EXPECT_EQ(fw_.calls[0], (Argv{"grub-editenv", "/boot/grub/grubenv", "list"}));
  EXPECT_TRUE(fw_.writes().empty());
}

TEST_F(BootloaderTest, GrubEachChangeIsOneSetCall) {
  auto b = grub();
  ASSERT_TRUE(b->arm_trial(Slot::kB).ok());
  ASSERT_EQ(fw_.writes().size(), 1u);
  EXPECT_EQ(fw_.writes()[0], (Argv{"grub-editenv", "/boot/grub/grubenv", "set", "drover_trial=B",
                                   "upgrade_available=1", "bootcount=0"}));
  EXPECT_EQ(fw_.env, (Env{{"drover_trial", "B"}, {"upgrade_available", "1"}, {"bootcount", "0"}}));
  EXPECT_EQ(trial_of(*b), Slot::kB);

  // The GRUB script clears drover_trial (save_env) before it boots the trial.
  fw_.env["drover_trial"] = "";
  EXPECT_EQ(trial_of(*b), std::nullopt);

  fw_.calls.clear();
  ASSERT_TRUE(b->commit(Slot::kB).ok());
  ASSERT_EQ(fw_.writes().size(), 1u);
  EXPECT_EQ(fw_.writes()[0], (Argv{"grub-editenv", "/boot/grub/grubenv", "set", "drover_slot=B",
                                   "drover_trial=", "upgrade_available=0", "bootcount=0"}));
  EXPECT_EQ(fw_.env, (Env{{"drover_slot", "B"},
                          {"drover_trial", ""},
                          {"upgrade_available", "0"},
                          {"bootcount", "0"}}));
  EXPECT_EQ(*b->committed(), Slot::kB);
  EXPECT_EQ(trial_of(*b), std::nullopt);

  ASSERT_TRUE(b->arm_trial(Slot::kA).ok());
  fw_.calls.clear();
  ASSERT_TRUE(b->disarm_trial().ok());
  ASSERT_EQ(fw_.writes().size(), 1u);
  EXPECT_EQ(fw_.writes()[0], (Argv{"grub-editenv", "/boot/grub/grubenv", "set",
                                   "drover_trial=", "upgrade_available=0"}));
  EXPECT_EQ(trial_of(*b), std::nullopt);
  EXPECT_EQ(*b->committed(), Slot::kB);
}

TEST_F(BootloaderTest, GrubReadsOnlyNameValueLines) {
  fw_.env = {{"saved_entry", "gnulinux-advanced=x"}, {"drover_slot", "B"}};
  auto b = grub();
  EXPECT_EQ(*b->committed(), Slot::kB);
}

TEST_F(BootloaderTest, GrubFailureIsAnIoErrorWithTheToolsOutput) {
  fw_.fail_program = "grub-editenv";
  fw_.fail_output =
      "grub-editenv: error: cannot open `/boot/grub/grubenv': Read-only file system.\n";
  auto b = grub();
  auto st = b->commit(Slot::kB);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, ErrorCode::kIo);
  EXPECT_NE(st.error().message.find("Read-only file system"), std::string::npos);
  auto c = b->committed();
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().code, ErrorCode::kIo);
  EXPECT_FALSE(b->trial().ok());
  EXPECT_TRUE(fw_.env.empty());
}

bool on_path(const std::string& program) {
  const char* path = ::getenv("PATH");
  std::stringstream dirs(path ? path : "");
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    if (!dir.empty() && ::access((dir + "/" + program).c_str(), X_OK) == 0) return true;
  }
  return false;
}

TEST_F(BootloaderTest, GrubWithTheRealGrubEditenv) {
  if (!on_path("grub-editenv")) GTEST_SKIP() << "grub-editenv is not installed";
  const std::string envfile = dir_ + "/grubenv";
  auto created = system_commands().run({"grub-editenv", envfile, "create"}, seconds(10));
  ASSERT_TRUE(created.ok() && created->ok());
  auto list = [&] {
    auto r = system_commands().run({"grub-editenv", envfile, "list"}, seconds(10));
    EXPECT_TRUE(r.ok() && r->ok());
    return r.ok() ? r->output : std::string();
  };
  auto b = make_grub_bootloader(system_commands(), envfile, cmdline_);
  EXPECT_EQ(*b->committed(), Slot::kA);
  EXPECT_EQ(trial_of(*b), std::nullopt);
  ASSERT_TRUE(b->arm_trial(Slot::kB).ok());
  EXPECT_EQ(list(), "drover_trial=B\nupgrade_available=1\nbootcount=0\n");
  EXPECT_EQ(trial_of(*b), Slot::kB);
  ASSERT_TRUE(b->commit(Slot::kB).ok());
  EXPECT_EQ(*b->committed(), Slot::kB);
  EXPECT_EQ(trial_of(*b), std::nullopt);
  ASSERT_TRUE(b->disarm_trial().ok());
  EXPECT_EQ(slurp(envfile).size(), 1024u);  // still one environment block
}

// An empty U-Boot environment of `size` bytes, as mkenvimage makes it: the CRC-32 of the
// data area (little-endian), then the data, all zero.
std::string empty_uboot_env(size_t size) {
  const std::string data(size - 4, '\0');
  uint32_t crc = 0xffffffffu;
  for (const char ch : data) {
    crc ^= static_cast<uint8_t>(ch);
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1u)));
  }
  crc = ~crc;
  std::string out;
  for (int k = 0; k < 4; ++k) out.push_back(static_cast<char>(crc >> (8 * k)));
  return out + data;
}

TEST_F(BootloaderTest, UBootWithTheRealFwSetenv) {
  if (!on_path("fw_setenv")) GTEST_SKIP() << "fw_setenv (libubootenv-tool) is not installed";
  // The environment in a file, where fw_env.config says it is: 16 KiB at offset 0.
  const std::string envfile = dir_ + "/uboot.env";
  const std::string config = dir_ + "/fw_env.config";
  std::ofstream(envfile, std::ios::binary) << empty_uboot_env(0x4000);
  std::ofstream(config) << envfile << " 0x0 0x4000\n";
  auto printenv = [&] {
    auto r = system_commands().run({"fw_printenv", "-c", config}, seconds(10));
    EXPECT_TRUE(r.ok() && r->ok()) << (r.ok() ? r->output : r.error().to_string());
    return r.ok() ? r->output : std::string();
  };
  auto b = make_uboot_bootloader(system_commands(), cmdline_, config);
  EXPECT_EQ(*b->committed(), Slot::kA);  // nothing set yet
  EXPECT_EQ(trial_of(*b), std::nullopt);
  ASSERT_TRUE(b->arm_trial(Slot::kB).ok());
  const std::string armed = printenv();
  EXPECT_NE(armed.find("drover_trial=B\n"), std::string::npos) << armed;
  EXPECT_NE(armed.find("upgrade_available=1\n"), std::string::npos) << armed;
  EXPECT_NE(armed.find("bootcount=0\n"), std::string::npos) << armed;
  EXPECT_EQ(trial_of(*b), Slot::kB);
  EXPECT_EQ(*b->committed(), Slot::kA);
  ASSERT_TRUE(b->commit(Slot::kB).ok());
  EXPECT_EQ(*b->committed(), Slot::kB);
  EXPECT_EQ(trial_of(*b), std::nullopt);
  const std::string committed = printenv();
  EXPECT_NE(committed.find("drover_slot=B\n"), std::string::npos) << committed;
  EXPECT_EQ(committed.find("drover_trial=B"), std::string::npos) << committed;
  EXPECT_NE(committed.find("upgrade_available=0\n"), std::string::npos) << committed;
  // Armed again and disarmed: back to B committed, no trial.
  ASSERT_TRUE(b->arm_trial(Slot::kA).ok());
  EXPECT_EQ(trial_of(*b), Slot::kA);
  ASSERT_TRUE(b->disarm_trial().ok());
  EXPECT_EQ(trial_of(*b), std::nullopt);
  EXPECT_EQ(*b->committed(), Slot::kB);
  EXPECT_EQ(slurp(envfile).size(), 0x4000u);  // still one environment of the configured size
  // A configuration that points nowhere is an error naming the environment, not "slot A".
  auto lost = make_uboot_bootloader(system_commands(), cmdline_, dir_ + "/missing.config");
  EXPECT_FALSE(lost->committed().ok());
  EXPECT_FALSE(lost->arm_trial(Slot::kB).ok());
}

// ---- FileBootloader ----

class FileBootloaderTest : public BootloaderTest {
 protected:
  std::string state() const { return dir_ + "/boot.state"; }
};

TEST_F(FileBootloaderTest, AMissingFileIsCreatedWithSlotACommittedAndBooted) {
  FileBootloader b(real_file_system(), state());
  EXPECT_EQ(*b.booted(), Slot::kA);
  EXPECT_EQ(*b.committed(), Slot::kA);
  EXPECT_EQ(trial_of(b), std::nullopt);
  EXPECT_EQ(slurp(state()), "committed=A\nbooted=A\ntrial=\n");
}

TEST_F(FileBootloaderTest, TheFullTrialCycle) {
  FileBootloader b(real_file_system(), state());
  // Update to B: the trial boots and is committed.
  ASSERT_TRUE(b.arm_trial(Slot::kB).ok());
  EXPECT_EQ(trial_of(b), Slot::kB);
  EXPECT_EQ(*b.booted(), Slot::kA);  // nothing changes until a boot
  ASSERT_TRUE(b.boot().ok());
  EXPECT_EQ(*b.booted(), Slot::kB);
  EXPECT_EQ(*b.committed(), Slot::kA);
  EXPECT_EQ(trial_of(b), std::nullopt);  // consumed by that one boot
  ASSERT_TRUE(b.commit(Slot::kB).ok());
  ASSERT_TRUE(b.boot().ok());
  EXPECT_EQ(*b.booted(), Slot::kB);
  EXPECT_EQ(*b.committed(), Slot::kB);

  // Update to A: the trial image does not boot; the same boot falls back to B.
  ASSERT_TRUE(b.arm_trial(Slot::kA).ok());
  ASSERT_TRUE(b.boot(/*trial_image_boots=*/false).ok());
  EXPECT_EQ(*b.booted(), Slot::kB);
  EXPECT_EQ(*b.committed(), Slot::kB);
  EXPECT_EQ(trial_of(b), std::nullopt);

  // A trial boot that comes up but never commits: the next boot is the committed slot.
  ASSERT_TRUE(b.arm_trial(Slot::kA).ok());
  ASSERT_TRUE(b.boot().ok());
  EXPECT_EQ(*b.booted(), Slot::kA);
  ASSERT_TRUE(b.boot().ok());
  EXPECT_EQ(*b.booted(), Slot::kB);

  // Disarmed before the reboot: no trial at all.
  ASSERT_TRUE(b.arm_trial(Slot::kA).ok());
  ASSERT_TRUE(b.disarm_trial().ok());
  ASSERT_TRUE(b.boot().ok());
  EXPECT_EQ(*b.booted(), Slot::kB);
}

TEST_F(FileBootloaderTest, StatePersistsAcrossInstances) {
  {
    FileBootloader b(real_file_system(), state());
    ASSERT_TRUE(b.commit(Slot::kB).ok());
    ASSERT_TRUE(b.boot().ok());
    ASSERT_TRUE(b.arm_trial(Slot::kA).ok());
  }
  EXPECT_EQ(slurp(state()), "committed=B\nbooted=B\ntrial=A\n");
  FileBootloader again(real_file_system(), state());
  EXPECT_EQ(*again.committed(), Slot::kB);
  EXPECT_EQ(*again.booted(), Slot::kB);
  EXPECT_EQ(trial_of(again), Slot::kA);
  ASSERT_TRUE(again.boot().ok());
  FileBootloader third(real_file_system(), state());
  EXPECT_EQ(*third.booted(), Slot::kA);
  EXPECT_EQ(trial_of(third), std::nullopt);
}

TEST_F(FileBootloaderTest, ACorruptFileIsCorruption) {
  for (const char* text : {"", "garbage", "committed=A\nbooted=A\ntrial=\nextra=1\n",
                           "committed=A\nbooted=A\n", "committed=A\nbooted=A\ntrial=",
                           "committed=C\nbooted=A\ntrial=\n", "committed=A\nbooted=\ntrial=\n",
                           "committed=A\nbooted=A\ntrial=X\n", "booted=A\ncommitted=A\ntrial=\n",
                           "committed=A\r\nbooted=A\r\ntrial=\r\n", "{\"committed\": \"A\"}\n"}) {
    std::ofstream(state(), std::ios::trunc) << text;
    FileBootloader b(real_file_system(), state());
    EXPECT_EQ(b.booted().error().code, ErrorCode::kCorruption) << "'" << text << "'";
    EXPECT_EQ(b.committed().error().code, ErrorCode::kCorruption);
    EXPECT_EQ(b.trial().error().code, ErrorCode::kCorruption);
    EXPECT_EQ(b.arm_trial(Slot::kB).error().code, ErrorCode::kCorruption);
    EXPECT_EQ(b.commit(Slot::kB).error().code, ErrorCode::kCorruption);
    EXPECT_EQ(b.disarm_trial().error().code, ErrorCode::kCorruption);
    EXPECT_EQ(b.boot().error().code, ErrorCode::kCorruption);
    EXPECT_EQ(slurp(state()), text) << "a corrupt file is left for someone to look at";
  }
}

// Fails every write: a full disk.
class FullFileSystem final : public ForwardingFileSystem {
 public:
  Result<std::string> read(const std::string& path) override {
    return real_file_system().read(path);
  }
  Status write(const std::string&, std::string_view) override {
    return io_error("injected: no space left on device");
  }
  Status sync(const std::string& p) override { return real_file_system().sync(p); }
  Status rename(const std::string& a, const std::string& b) override {
    return real_file_system().rename(a, b);
  }
  Status sync_dir(const std::string& d) override { return real_file_system().sync_dir(d); }
  Status remove(const std::string& p) override { return real_file_system().remove(p); }
};

TEST_F(FileBootloaderTest, AFailedWriteChangesNothing) {
  {
    FileBootloader b(real_file_system(), state());
    ASSERT_TRUE(b.commit(Slot::kB).ok());
  }
  FullFileSystem full;
  FileBootloader b(full, state());
  EXPECT_EQ(b.arm_trial(Slot::kA).error().code, ErrorCode::kIo);
  EXPECT_EQ(b.boot().error().code, ErrorCode::kIo);
  EXPECT_EQ(trial_of(b), std::nullopt);
  EXPECT_EQ(*b.committed(), Slot::kB);

  FileBootloader fresh(full, dir_ + "/never-created");
  EXPECT_EQ(fresh.booted().error().code, ErrorCode::kIo);
}

}  // namespace
}  // namespace drover::agent
