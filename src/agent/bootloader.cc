#include "agent/bootloader.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <map>
#include <utility>
#include <vector>

namespace drover::agent {

const char* to_string(Slot s) { return s == Slot::kA ? "A" : "B"; }

Result<Slot> parse_slot(std::string_view s) {
  if (s == "A") return Slot::kA;
  if (s == "B") return Slot::kB;
  return invalid_argument("slot '" + std::string(s) + "' is not A or B");
}

namespace {

// The environment variables shared with the boot scripts (docs/agent.md).
constexpr const char* kSlotVar = "drover_slot";           // the committed slot; unset: A
constexpr const char* kTrialVar = "drover_trial";         // the slot to try; unset or empty: none
constexpr const char* kUpgradeVar = "upgrade_available";  // "1" while a trial is armed
constexpr const char* kBootcountVar = "bootcount";        // boots since arming (U-Boot counts)
constexpr const char* kBootlimitVar = "bootlimit";        // boots a trial gets; unset: 1

constexpr Duration kCommandTimeout = seconds(10);
constexpr std::string_view kCmdlineKey = "drover.slot=";

Error failed_precondition(std::string message) {
  return {ErrorCode::kFailedPrecondition, std::move(message)};
}
Error corruption(std::string message) { return {ErrorCode::kCorruption, std::move(message)}; }

std::string join(const std::vector<std::string>& argv) {
  std::string out;
  for (const std::string& a : argv) out += (out.empty() ? "" : " ") + a;
  return out;
}

Status write_all(int fd, std::string_view data, const std::string& path) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return io_error("cannot write " + path + ": " + errno_text(errno));
    data.remove_prefix(static_cast<size_t>(n));
  }
  return ok_status();
}

std::string trim_right(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

// The command's failure as an error naming the command and quoting what it printed.
Error command_failed(const std::vector<std::string>& argv, const CommandResult& r) {
  const std::string why =
      r.timed_out ? "timed out after " + std::to_string(kCommandTimeout.count() / 1000) + " s"
                  : "exited with " + std::to_string(r.exit_code);
  const std::string output = trim_right(r.output);
  return io_error(join(argv) + ": " + why + (output.empty() ? "" : ": " + output));
}

// Runs `argv`; kIo when it cannot start or does not exit with 0.
Result<std::string> run_checked(CommandRunner& commands, const std::vector<std::string>& argv) {
  auto r = commands.run(argv, kCommandTimeout);
  if (!r.ok()) return r.error();
  if (!r->ok()) return command_failed(argv, *r);
  return std::move(r->output);
}

// Splits the kernel command line as the kernel does: at blanks outside double quotes, the
// quotes themselves dropped (`drover.slot="B"` is `drover.slot=B`).
std::vector<std::string> cmdline_tokens(std::string_view text) {
  std::vector<std::string> out;
  std::string token;
  bool quoted = false;
  bool in_token = false;
  for (const char c : text) {
    if (c == '"') {
      quoted = !quoted;
      in_token = true;
    } else if (!quoted && (c == ' ' || c == '\t' || c == '\n' || c == '\r')) {
      if (in_token) out.push_back(std::move(token));
      token.clear();
      in_token = false;
    } else {
      token += c;
      in_token = true;
    }
  }
  if (in_token) out.push_back(std::move(token));
  return out;
}

Result<Slot> slot_from_cmdline(const std::string& path) {
  auto text = real_file_system().read(path);
  if (!text.ok()) return io_error("cannot read the kernel command line: " + text.error().message);
  std::optional<std::string> value;
  for (const std::string& token : cmdline_tokens(*text)) {
    // A repeated parameter: the last one counts, as for the kernel's own parameters.
    if (token.starts_with(kCmdlineKey)) value = token.substr(kCmdlineKey.size());
  }
  if (!value) {
    return failed_precondition("kernel command line " + path +
                               " has no drover.slot=A|B: the boot script does not say which "
                               "slot it booted (docs/agent.md)");
  }
  auto slot = parse_slot(*value);
  if (!slot.ok())
    return failed_precondition("kernel command line " + path + ": drover.slot='" + *value +
                               "' is not A or B");
  return slot;
}

// Variables as read back; an unset variable is absent. Empty counts as unset everywhere.
using Vars = std::map<std::string, std::string>;
// What a change writes: a value, or nullopt to clear the variable.
using Changes = std::vector<std::pair<std::string, std::optional<std::string>>>;

std::string value_of(const Vars& vars, const std::string& name) {
  const auto it = vars.find(name);
  return it == vars.end() ? std::string() : it->second;
}

// A U-Boot or GRUB environment: the slot logic over two primitives, read and write.
class EnvBootloader : public Bootloader {
 public:
  EnvBootloader(CommandRunner& commands, std::string cmdline_path, std::string what)
      : commands_(commands), cmdline_path_(std::move(cmdline_path)), what_(std::move(what)) {}

  Result<Slot> booted() override { return slot_from_cmdline(cmdline_path_); }

  Result<Slot> committed() override {
    auto vars = read({kSlotVar});
    if (!vars.ok()) return vars.error();
    const std::string v = value_of(*vars, kSlotVar);
    if (v.empty()) return Slot::kA;
    return slot_value(kSlotVar, v);
  }

  // Armed: drover_trial names a slot, upgrade_available is 1, and the boots counted since
  // arming (bootcount) have not used up bootlimit. U-Boot counts the trial boot itself, so
  // from inside the trial boot this is nullopt, as with GRUB, whose script clears
  // drover_trial before it boots the trial.
  Result<std::optional<Slot>> trial() override {
    auto vars = read({kTrialVar, kUpgradeVar, kBootcountVar, kBootlimitVar});
    if (!vars.ok()) return vars.error();
    const std::string t = value_of(*vars, kTrialVar);
    if (t.empty() || value_of(*vars, kUpgradeVar) != "1") return std::optional<Slot>();
    auto slot = slot_value(kTrialVar, t);
    if (!slot.ok()) return slot.error();
    auto count = number_value(*vars, kBootcountVar, 0);
    if (!count.ok()) return count.error();
    auto limit = number_value(*vars, kBootlimitVar, 1);
    if (!limit.ok()) return limit.error();
    if (*count >= *limit) return std::optional<Slot>();
    return std::optional<Slot>(*slot);
  }

  Status arm_trial(Slot s) override {
    return change({{kTrialVar, to_string(s)}, {kUpgradeVar, "1"}, {kBootcountVar, "0"}});
  }

  Status commit(Slot s) override {
    return change({{kSlotVar, to_string(s)},
                   {kTrialVar, std::nullopt},
                   {kUpgradeVar, "0"},
                   {kBootcountVar, "0"}});
  }

  Status disarm_trial() override { return change({{kTrialVar, std::nullopt}, {kUpgradeVar, "0"}}); }

 protected:
  // The values of `names` (absent: unset). kIo when the tool fails.
  virtual Result<Vars> read(const std::vector<std::string>& names) = 0;
  // All of `changes` in one write of the environment. kIo when the tool fails.
  virtual Status write(const Changes& changes) = 0;

  CommandRunner& commands_;
  const std::string& what() const { return what_; }

 private:
  Result<Slot> slot_value(const char* name, const std::string& v) const {
    auto slot = parse_slot(v);
    if (!slot.ok()) return corruption(what_ + ": " + name + "='" + v + "' is not A or B");
    return slot;
  }

  Result<uint64_t> number_value(const Vars& vars, const char* name, uint64_t unset) const {
    const std::string v = value_of(vars, name);
    if (v.empty()) return unset;
    uint64_t n = 0;
    const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
    if (ec != std::errc() || end != v.data() + v.size())
      return corruption(what_ + ": " + name + "='" + v + "' is not a number");
    return n;
  }

  // Writes, then reads the variables back: a tool that exits 0 without applying a line
  // (libubootenv's fw_setenv skips script lines it does not understand) must not pass for
  // a trial armed or a slot committed.
  Status change(const Changes& changes) {
    DROVER_TRY(write(changes));
    std::vector<std::string> names;
    for (const auto& c : changes) names.push_back(c.first);
    auto vars = read(names);
    if (!vars.ok()) return vars.error();
    for (const auto& [name, value] : changes) {
      const std::string want = value.value_or("");
      const std::string got = value_of(*vars, name);
      if (got != want)
        return io_error(what_ + ": after the write " + name + " is '" + got + "', not '" + want +
                        "': the change did not reach the environment");
    }
    return ok_status();
  }

  std::string cmdline_path_;
  std::string what_;
};

// U-Boot through fw_printenv/fw_setenv (libubootenv or U-Boot's own tools).
class UBootBootloader final : public EnvBootloader {
 public:
  UBootBootloader(CommandRunner& commands, std::string cmdline_path, std::string config)
      : EnvBootloader(commands, std::move(cmdline_path), "U-Boot environment"),
        config_(std::move(config)) {}

 protected:
  // One `fw_printenv -n NAME` per variable (-n takes exactly one name). An unset variable:
  // U-Boot's tool fails with "not defined"; libubootenv's prints an empty line. Warnings go to
  // stderr, which the runner merges in before the value (stdout is flushed at exit), so the
  // value is the last line.
  Result<Vars> read(const std::vector<std::string>& names) override {
    Vars out;
    for (const std::string& name : names) {
      const std::vector<std::string> argv = tool("fw_printenv", {"-n", name});
      auto r = commands_.run(argv, kCommandTimeout);
      if (!r.ok()) return r.error();
      if (!r->ok()) {
        if (!r->timed_out && r->output.find("not defined") != std::string::npos) continue;
        return command_failed(argv, *r);
      }
      std::string text = r->output;
      if (!text.empty() && text.back() == '\n') text.pop_back();
      const size_t nl = text.rfind('\n');
      std::string value = nl == std::string::npos ? text : text.substr(nl + 1);
      if (!value.empty()) out[name] = std::move(value);
    }
    return out;
  }

  // One `fw_setenv -s SCRIPT`: one write of the environment for the whole change. Lines are
  // `name=value`, and `name=` to clear: libubootenv reads only that form (a line without
  // '=' is skipped), and U-Boot's tool takes '=' as the separator too. An older libubootenv
  // stores `name=` as an empty value, which reads as unset.
  Status write(const Changes& changes) override {
    std::string script;
    for (const auto& [name, value] : changes) script += name + "=" + value.value_or("") + "\n";

    std::error_code ec;
    std::filesystem::path dir = std::filesystem::temp_directory_path(ec);
    if (ec) dir = "/tmp";
    std::string path = (dir / "drover-fw_setenv-XXXXXX").string();
    const int fd = ::mkostemp(path.data(), O_CLOEXEC);
    if (fd < 0) return io_error(what() + ": cannot create a script file: " + errno_text(errno));
    Status st = write_all(fd, script, path);
    if (::close(fd) != 0 && st.ok())
      st = io_error(what() + ": cannot write " + path + ": " + errno_text(errno));
    if (st.ok()) {
      auto out = run_checked(commands_, tool("fw_setenv", {"-s", path}));
      if (!out.ok()) st = out.error();
    }
    ::unlink(path.c_str());
    return st;
  }

 private:
  std::vector<std::string> tool(const char* name, std::vector<std::string> args) const {
    std::vector<std::string> argv = {name};
    if (!config_.empty()) argv.insert(argv.end(), {"-c", config_});
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
  }

  std::string config_;
};

// GRUB through grub-editenv on the environment block file.
class GrubBootloader final : public EnvBootloader {
 public:
  GrubBootloader(CommandRunner& commands, std::string env_file, std::string cmdline_path)
      : EnvBootloader(commands, std::move(cmdline_path), "GRUB environment " + env_file),
        env_file_(std::move(env_file)) {}

 protected:
  // `grub-editenv FILE list`: one `name=value` per line.
  Result<Vars> read(const std::vector<std::string>& names) override {
    auto out = run_checked(commands_, {"grub-editenv", env_file_, "list"});
    if (!out.ok()) return out.error();
    Vars vars;
    size_t pos = 0;
    const std::string& text = *out;
    while (pos < text.size()) {
      size_t end = text.find('\n', pos);
      if (end == std::string::npos) end = text.size();
      const std::string line = text.substr(pos, end - pos);
      pos = end + 1;
      const size_t eq = line.find('=');
      if (eq == std::string::npos) continue;
      const std::string name = line.substr(0, eq);
      for (const std::string& wanted : names) {
        if (name == wanted && eq + 1 < line.size()) vars[name] = line.substr(eq + 1);
      }
    }
    return vars;
  }

  // One `grub-editenv FILE set a=1 b=2 ...`: one rewrite of the block. A cleared variable is
  // set empty (the boot script treats empty as unset), which keeps every change one call.
  Status write(const Changes& changes) override {
    std::vector<std::string> argv = {"grub-editenv", env_file_, "set"};
    for (const auto& [name, value] : changes) argv.push_back(name + "=" + value.value_or(""));
    auto out = run_checked(commands_, argv);
    if (!out.ok()) return out.error();
    return ok_status();
  }

 private:
  std::string env_file_;
};

// The FileBootloader's file: `committed=A`, `booted=A`, `trial=` (or `trial=B`), one a line,
// in that order (docs/agent.md).
std::string encode_file_state(Slot committed, Slot booted, std::optional<Slot> trial) {
  return std::string("committed=") + to_string(committed) + "\nbooted=" + to_string(booted) +
         "\ntrial=" + (trial ? to_string(*trial) : "") + "\n";
}

}  // namespace

std::unique_ptr<Bootloader> make_uboot_bootloader(CommandRunner& commands, std::string cmdline_path,
                                                  std::string fw_env_config) {
  return std::make_unique<UBootBootloader>(commands, std::move(cmdline_path),
                                           std::move(fw_env_config));
}

std::unique_ptr<Bootloader> make_grub_bootloader(CommandRunner& commands, std::string env_file,
                                                 std::string cmdline_path) {
  return std::make_unique<GrubBootloader>(commands, std::move(env_file), std::move(cmdline_path));
}

FileBootloader::FileBootloader(FileSystem& fs, std::string path)
    : fs_(fs), path_(std::move(path)) {}

Result<FileBootloader::State> FileBootloader::load() {
  auto text = fs_.read(path_);
  if (!text.ok()) {
    if (text.error().code != ErrorCode::kNotFound) return text.error();
    const State fresh;
    DROVER_TRY(save(fresh));
    return fresh;
  }
  const auto bad = [&](const std::string& why) {
    return corruption("bootloader state " + path_ + ": " + why);
  };
  // Exactly the three lines encode_file_state() writes.
  std::vector<std::string> lines;
  size_t pos = 0;
  while (pos < text->size()) {
    const size_t end = text->find('\n', pos);
    if (end == std::string::npos) return bad("the last line is cut off");
    lines.push_back(text->substr(pos, end - pos));
    pos = end + 1;
  }
  const char* const keys[] = {"committed=", "booted=", "trial="};
  if (lines.size() != 3) return bad("expected 3 lines, found " + std::to_string(lines.size()));
  std::string values[3];
  for (int i = 0; i < 3; ++i) {
    if (!lines[i].starts_with(keys[i]))
      return bad("line " + std::to_string(i + 1) + " is '" + lines[i] + "', expected " + keys[i]);
    values[i] = lines[i].substr(std::strlen(keys[i]));
  }
  State s;
  auto committed = parse_slot(values[0]);
  auto booted = parse_slot(values[1]);
  if (!committed.ok()) return bad(committed.error().message);
  if (!booted.ok()) return bad(booted.error().message);
  s.committed = *committed;
  s.booted = *booted;
  if (!values[2].empty()) {
    auto trial = parse_slot(values[2]);
    if (!trial.ok()) return bad(trial.error().message);
    s.trial = *trial;
  }
  return s;
}

Status FileBootloader::save(const State& s) {
  return write_atomically(fs_, path_, encode_file_state(s.committed, s.booted, s.trial));
}

Result<Slot> FileBootloader::booted() {
  auto s = load();
  if (!s.ok()) return s.error();
  return s->booted;
}

Result<Slot> FileBootloader::committed() {
  auto s = load();
  if (!s.ok()) return s.error();
  return s->committed;
}

Result<std::optional<Slot>> FileBootloader::trial() {
  auto s = load();
  if (!s.ok()) return s.error();
  return s->trial;
}

Status FileBootloader::arm_trial(Slot slot) {
  auto s = load();
  if (!s.ok()) return s.error();
  s->trial = slot;
  return save(*s);
}

Status FileBootloader::commit(Slot slot) {
  auto s = load();
  if (!s.ok()) return s.error();
  s->committed = slot;
  s->trial.reset();
  return save(*s);
}

Status FileBootloader::disarm_trial() {
  auto s = load();
  if (!s.ok()) return s.error();
  s->trial.reset();
  return save(*s);
}

Status FileBootloader::boot(bool trial_image_boots) {
  auto s = load();
  if (!s.ok()) return s.error();
  // The boot script consumes the attempt before trying it, so a trial boots at most once.
  s->booted = s->trial && trial_image_boots ? *s->trial : s->committed;
  s->trial.reset();
  return save(*s);
}

}  // namespace drover::agent
