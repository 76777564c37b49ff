// Update modules: what installing an artifact means on this device. The Agent drives a module
// through the update table (update_machine.h) and saves its record before every call, so a
// call may be repeated after a crash in the middle of it: every method is idempotent.
//
//   file    replaces one file atomically (the previous one kept until commit), then runs a
//           restart command;
//   ab-slot writes the inactive slot and arms a trial boot through a Bootloader;
//   script  runs configured install / commit / rollback commands.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "agent/bootloader.h"
#include "agent/command.h"
#include "agent/update_state.h"
#include "base/result.h"

namespace drover::agent {

// Where the device stands after install().
enum class BootState : uint8_t {
  kPending,  // the new image needs a reboot that has not happened yet
  kNew,      // running the new image, not yet committed
  kOld,      // the trial boot failed: running the previous image
};

class UpdateModule {
 public:
  virtual ~UpdateModule() = default;
  // Installs the verified artifact at `artifact`. Fills in what the module needs to find
  // later (e.g. record.slot) before the caller saves the record.
  virtual Status install(const std::string& artifact, UpdateRecord& record) = 0;
  virtual Result<BootState> boot_state(const UpdateRecord& record) = 0;
  // Reboots into the new image (ab-slot); nothing for the others.
  virtual Status reboot() = 0;
  // Makes the new image permanent.
  virtual Status commit(const UpdateRecord& record) = 0;
  // Returns to the previous image. true when the device runs it now; false when a reboot
  // was asked for and roll_back() must be called again after it.
  virtual Result<bool> roll_back(const UpdateRecord& record) = 0;
  // Whether the image that ran before an update stays on the device after it commits (in
  // the other A/B slot), so that it can be booted again without a download.
  virtual bool keeps_previous() const { return false; }
  // Instead of install(): arms a trial boot of the image the other slot keeps (sets
  // record.slot). Only for a module that keeps_previous(); kFailedPrecondition otherwise.
  virtual Status switch_to_kept(UpdateRecord& record) {
    (void)record;
    return Error{ErrorCode::kFailedPrecondition, "this update module keeps no previous image"};
  }
};

struct FileModuleOptions {
  std::string target;                        // the file replaced
  std::vector<std::string> restart_command;  // run after replacing and after rolling back
  Duration restart_timeout = seconds(60);
};
std::unique_ptr<UpdateModule> make_file_module(FileModuleOptions options, CommandRunner& commands);

struct AbSlotOptions {
  std::string slot_a, slot_b;  // block devices (or files) holding the two images
  // Reboots the machine: by default the reboot command; tests and the simulator play the
  // boot themselves.
  std::function<Status()> reboot;
};
std::unique_ptr<UpdateModule> make_ab_slot_module(AbSlotOptions options, Bootloader& bootloader);

struct ScriptModuleOptions {
  std::vector<std::string> install, commit, rollback;  // commit and rollback may be empty
  Duration timeout = minutes(10);
};
// The commands get DROVER_ARTIFACT (install only), DROVER_COMPONENT, DROVER_VERSION and
// DROVER_FROM_VERSION in their environment.
std::unique_ptr<UpdateModule> make_script_module(ScriptModuleOptions options,
                                                 CommandRunner& commands);

// Copies `from` to `to` (created or truncated) and fsyncs it. kIo on failure.
Status copy_file_synced(const std::string& from, const std::string& to);

}  // namespace drover::agent
