#include "agent/update_module.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <utility>

namespace drover::agent {
namespace {

namespace fs = std::filesystem;

Error os_error(const std::string& what) { return io_error(what + ": " + errno_text(errno)); }

Status sync_parent(const std::string& path) {
  const std::string dir = fs::path(path).parent_path().string();
  const int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return os_error("opening " + dir);
  const int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return os_error("syncing " + dir);
  return ok_status();
}

Status run_checked(CommandRunner& commands, const std::vector<std::string>& argv, Duration timeout,
                   const Environment& env, const char* what) {
  if (argv.empty()) return ok_status();
  auto r = commands.run(argv, timeout, env);
  if (!r.ok()) return r.error();
  if (!r->ok()) {
    return Error{ErrorCode::kFailedPrecondition,
                 std::string(what) + " '" + argv.front() + "' " +
                     (r->timed_out ? "timed out" : "exited " + std::to_string(r->exit_code)) +
                     (r->output.empty() ? "" : ": " + r->output.substr(0, 512))};
  }
  return ok_status();
}

Environment record_env(const UpdateRecord& r) {
  return {{"DROVER_COMPONENT", r.component},
          {"DROVER_VERSION", r.version},
          {"DROVER_FROM_VERSION", r.from_version}};
}

// ---------------------------------------------------------------- file

class FileModule final : public UpdateModule {
 public:
  FileModule(FileModuleOptions o, CommandRunner& commands)
      : o_(std::move(o)), commands_(commands) {}

  // new content beside the target, the current one kept as a hard link (atomic, and
  // idempotent: it is made only once per update), then one rename.
  Status install(const std::string& artifact, UpdateRecord& record) override {
    const std::string fresh = o_.target + ".drover-new";
    DROVER_TRY(copy_file_synced(artifact, fresh));
    std::error_code ec;
    if (fs::exists(o_.target, ec) && !fs::exists(previous(), ec)) {
      if (::link(o_.target.c_str(), previous().c_str()) != 0)
        return os_error("keeping " + o_.target);
    }
    if (::rename(fresh.c_str(), o_.target.c_str()) != 0) return os_error("replacing " + o_.target);
    DROVER_TRY(sync_parent(o_.target));
    return run_checked(commands_, o_.restart_command, o_.restart_timeout, record_env(record),
                       "restart command");
  }
  Result<BootState> boot_state(const UpdateRecord&) override { return BootState::kNew; }
  Status reboot() override { return ok_status(); }
  Status commit(const UpdateRecord&) override {
    std::error_code ec;
    fs::remove(previous(), ec);
    if (ec) return io_error("removing " + previous() + ": " + ec.message());
    return sync_parent(o_.target);
  }
  Result<bool> roll_back(const UpdateRecord& record) override {
    std::error_code ec;
    if (fs::exists(previous(), ec)) {
      if (::rename(previous().c_str(), o_.target.c_str()) != 0)
        return os_error("restoring " + o_.target);
      DROVER_TRY(sync_parent(o_.target));
      DROVER_TRY(run_checked(commands_, o_.restart_command, o_.restart_timeout, record_env(record),
                             "restart command"));
    }
    fs::remove(o_.target + ".drover-new", ec);
    return true;
  }

 private:
  std::string previous() const { return o_.target + ".drover-prev"; }
  FileModuleOptions o_;
  CommandRunner& commands_;
};

// ---------------------------------------------------------------- ab-slot

class AbSlotModule final : public UpdateModule {
 public:
  AbSlotModule(AbSlotOptions o, Bootloader& boot) : o_(std::move(o)), boot_(boot) {}

  Status install(const std::string& artifact, UpdateRecord& record) override {
    auto s = slots(record);
    if (!s.ok()) return s.error();
    const auto [target, booted] = *s;
    if (booted == target) {
      return Error{ErrorCode::kFailedPrecondition,
                   "slot " + record.slot + " is the running one; it cannot be written"};
    }
    DROVER_TRY(copy_file_synced(artifact, path(target)));
    return boot_.arm_trial(target);
  }

  bool keeps_previous() const override { return true; }

  Status switch_to_kept(UpdateRecord& record) override {
    auto s = slots(record);
    if (!s.ok()) return s.error();
    const auto [target, booted] = *s;
    if (booted == target) {
      // Armed before a power cut, and the trial already booted it: carry on from there.
      auto committed = boot_.committed();
      if (!committed.ok()) return committed.error();
      if (*committed != target) return ok_status();
      return Error{ErrorCode::kFailedPrecondition,
                   "slot " + record.slot + " is the running one; there is nothing to switch to"};
    }
    return boot_.arm_trial(target);
  }

  Result<BootState> boot_state(const UpdateRecord& record) override {
    auto target = parse_slot(record.slot);
    if (!target.ok()) return target.error();
    auto booted = boot_.booted();
    if (!booted.ok()) return booted.error();
    if (*booted == *target) return BootState::kNew;
    auto trial = boot_.trial();
    if (!trial.ok()) return trial.error();
    // Still armed: the reboot has not happened. Consumed: the trial boot fell back.
    return *trial == *target ? BootState::kPending : BootState::kOld;
  }

  Status reboot() override {
    if (!o_.reboot) return invalid_argument("ab-slot: no way to reboot was configured");
    return o_.reboot();
  }

  Status commit(const UpdateRecord& record) override {
    auto target = parse_slot(record.slot);
    if (!target.ok()) return target.error();
    return boot_.commit(*target);
  }

  Result<bool> roll_back(const UpdateRecord& record) override {
    auto target = parse_slot(record.slot);
    if (!target.ok()) {
      return true;  // nothing was written to a slot yet
    }
    auto booted = boot_.booted();
    if (!booted.ok()) return booted.error();
    if (*booted == *target) {
      // Running the new image: commit the old one and boot it.
      DROVER_TRY(boot_.commit(other(*target)));
      DROVER_TRY(reboot());
      return false;
    }
    DROVER_TRY(boot_.disarm_trial());
    auto committed = boot_.committed();
    if (!committed.ok()) return committed.error();
    if (*committed != *booted) DROVER_TRY(boot_.commit(*booted));
    return true;
  }

 private:
  const std::string& path(Slot s) const { return s == Slot::kA ? o_.slot_a : o_.slot_b; }
  // The update's slot — chosen once per update, as the one not running (a restart must not
  // pick the other one) — and the slot running now.
  Result<std::pair<Slot, Slot>> slots(UpdateRecord& record) {
    auto booted = boot_.booted();
    if (!booted.ok()) return booted.error();
    if (record.slot.empty()) record.slot = to_string(other(*booted));
    auto target = parse_slot(record.slot);
    if (!target.ok()) return target.error();
    return std::pair{*target, *booted};
  }
  AbSlotOptions o_;
  Bootloader& boot_;
};

// ---------------------------------------------------------------- script

class ScriptModule final : public UpdateModule {
 public:
  ScriptModule(ScriptModuleOptions o, CommandRunner& commands)
      : o_(std::move(o)), commands_(commands) {}

  Status install(const std::string& artifact, UpdateRecord& record) override {
    Environment env = record_env(record);
    env.emplace_back("DROVER_ARTIFACT", artifact);
    return run_checked(commands_, o_.install, o_.timeout, env, "install command");
  }
  Result<BootState> boot_state(const UpdateRecord&) override { return BootState::kNew; }
  Status reboot() override { return ok_status(); }
  Status commit(const UpdateRecord& record) override {
    return run_checked(commands_, o_.commit, o_.timeout, record_env(record), "commit command");
  }
  Result<bool> roll_back(const UpdateRecord& record) override {
    DROVER_TRY(
        run_checked(commands_, o_.rollback, o_.timeout, record_env(record), "rollback command"));
    return true;
  }

 private:
  ScriptModuleOptions o_;
  CommandRunner& commands_;
};

}  // namespace

Status copy_file_synced(const std::string& from, const std::string& to) {
  const int in = ::open(from.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) return os_error("opening " + from);
  const int out = ::open(to.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (out < 0) {
    Error e = os_error("opening " + to);
    ::close(in);
    return e;
  }
  Status st = ok_status();
  char buf[64 * 1024];
  for (;;) {
    const ssize_t n = ::read(in, buf, sizeof buf);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      st = os_error("reading " + from);
      break;
    }
    for (ssize_t done = 0; done < n;) {
      const ssize_t w = ::write(out, buf + done, static_cast<size_t>(n - done));
      if (w < 0) {
        if (errno == EINTR) continue;
        st = os_error("writing " + to);
        break;
      }
      done += w;
    }
    if (!st.ok()) break;
  }
  if (st.ok() && ::fsync(out) != 0) st = os_error("syncing " + to);
  ::close(in);
  ::close(out);
  return st;
}

std::unique_ptr<UpdateModule> make_file_module(FileModuleOptions options, CommandRunner& commands) {
  return std::make_unique<FileModule>(std::move(options), commands);
}
std::unique_ptr<UpdateModule> make_ab_slot_module(AbSlotOptions options, Bootloader& bootloader) {
  return std::make_unique<AbSlotModule>(std::move(options), bootloader);
}
std::unique_ptr<UpdateModule> make_script_module(ScriptModuleOptions options,
                                                 CommandRunner& commands) {
  return std::make_unique<ScriptModule>(std::move(options), commands);
}

}  // namespace drover::agent
