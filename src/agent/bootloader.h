// Bootloader: how the agent switches A/B slots. Two slots hold two root images; the
// bootloader boots the *committed* slot, unless a *trial* is armed, in which case the next
// boot tries the other slot once. If the system that comes up in the trial slot does not
// commit it (a failed boot, a failed health check, a commit timeout), the boot after that
// falls back to the committed slot by itself. The running slot is what the kernel command
// line says (`drover.slot=A|B`, set by the boot script).
//
// Implementations: U-Boot environment (fw_setenv/fw_printenv), GRUB environment block
// (grub-editenv), and a file-backed fake for tests and the simulator. The environment
// variables and the boot scripts that read them are in docs/agent.md.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "agent/command.h"
#include "base/file_system.h"
#include "base/result.h"

namespace drover::agent {

enum class Slot : uint8_t { kA, kB };
const char* to_string(Slot s);  // "A", "B"
Result<Slot> parse_slot(std::string_view s);
inline Slot other(Slot s) { return s == Slot::kA ? Slot::kB : Slot::kA; }

class Bootloader {
 public:
  virtual ~Bootloader() = default;
  // The slot the running system booted from.
  virtual Result<Slot> booted() = 0;
  // The slot that boots when no trial is armed.
  virtual Result<Slot> committed() = 0;
  // The slot the next boot will try once, if a trial is armed.
  virtual Result<std::optional<Slot>> trial() = 0;
  // Arms a trial: the next boot tries `s` once.
  virtual Status arm_trial(Slot s) = 0;
  // Makes `s` the committed slot and disarms any trial.
  virtual Status commit(Slot s) = 0;
  // Disarms a trial: the next boot is the committed slot.
  virtual Status disarm_trial() = 0;
};

// U-Boot: variables drover_slot (committed), drover_trial (the slot to try, or empty) and
// upgrade_available/bootcount (U-Boot's own boot-count limit), through fw_printenv and
// fw_setenv (one fw_setenv -s script per change, so each change is one write of the env).
// `fw_env_config`, when not empty, is passed to both tools with -c (where the environment
// lives: device, offset, size); otherwise they read their default, /etc/fw_env.config.
std::unique_ptr<Bootloader> make_uboot_bootloader(CommandRunner& commands,
                                                  std::string cmdline_path = "/proc/cmdline",
                                                  std::string fw_env_config = {});

// GRUB: the same variables in the environment block `env_file` (e.g. /boot/grub/grubenv),
// through grub-editenv.
std::unique_ptr<Bootloader> make_grub_bootloader(CommandRunner& commands, std::string env_file,
                                                 std::string cmdline_path = "/proc/cmdline");

// A bootloader whose whole state is one small file (written atomically), for tests and the
// simulator; boot() plays the boot ROM and the boot script.
class FileBootloader final : public Bootloader {
 public:
  // The file is created (slot A committed and booted) when missing.
  FileBootloader(FileSystem& fs, std::string path);

  Result<Slot> booted() override;
  Result<Slot> committed() override;
  Result<std::optional<Slot>> trial() override;
  Status arm_trial(Slot s) override;
  Status commit(Slot s) override;
  Status disarm_trial() override;

  // A (re)boot: an armed trial is consumed and its slot boots if `trial_image_boots`; else,
  // or with no trial, the committed slot boots.
  Status boot(bool trial_image_boots = true);

 private:
  struct State {
    Slot committed = Slot::kA;
    Slot booted = Slot::kA;
    std::optional<Slot> trial;
  };
  Result<State> load();
  Status save(const State& s);

  FileSystem& fs_;
  std::string path_;
};

}  // namespace drover::agent
