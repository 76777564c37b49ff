// Agent: the device's side of updates, as one loop step at a time. Each run_once() looks at
// the saved update record (update_state.h) and does the one thing that step calls for —
// check in, download a piece, verify, install, reboot, run the commit checks, roll back,
// deliver an outcome — saving the record before every transition. Killed at any instant, a
// new Agent over the same data directory carries on from the saved step: a download resumes
// at its saved byte, an install is repeated (modules are idempotent), a trial boot is judged
// by the bootloader's own state, and an outcome not yet delivered is delivered.
//
// Failures to reach the server are retried with exponential backoff and full jitter, capped
// at a maximum; the server's own poll interval is used otherwise.
//
// Thread-compatible: one thread drives an Agent.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "agent/command.h"
#include "agent/config_applier.h"
#include "agent/remote_commands.h"
#include "agent/server_link.h"
#include "agent/signed_offers.h"
#include "agent/update_module.h"
#include "agent/update_state.h"
#include "base/clock.h"
#include "base/file_system.h"
#include "base/random.h"

namespace drover::agent {

struct HealthCheck {
  std::vector<std::string> command;  // exit 0 = healthy
  Duration timeout = seconds(30);
};

struct AgentOptions {
  // update.json, inventory.json, previous.json, kept.json, download.part, device.key
  // (device.key.next during a key rotation; tuf/, the trusted signed update metadata, when
  // required)
  std::string data_dir;
  std::string component = "firmware";   // what this agent's update module installs
  Duration default_poll = minutes(30);  // until the server says otherwise
  Duration backoff_initial = seconds(5);
  Duration backoff_max = hours(1);
  Duration commit_timeout = minutes(10);  // the checks must pass within this after the boot
  // How long the install, the reboot and the commit checks take at most: the verified image
  // is held until a maintenance window opens that still has this long to run.
  Duration apply_time = minutes(20);
  // A link that is up only at known times (a satellite pass, a scheduled modem): when it is
  // next up at or after t (t if up then). The commit needs the server, so a window is used
  // only if the link comes up in it after the install and reboot. Empty: always up.
  std::function<Timestamp(Timestamp)> link_up_at;
  Duration check_retry = seconds(15);  // between rounds of failing checks
  std::vector<HealthCheck> health_checks;
  // Executables run when a step is entered (<dir>/<step>, e.g. installing, committing); a
  // non-zero exit fails the step. Empty: none.
  std::string state_scripts;
  // An offer declaring a larger image is refused before anything is downloaded.
  uint64_t max_download_bytes = uint64_t{8} << 30;
  // Left free on data_dir's file system by a download: one that would leave less is not
  // started (the offer fails, and is retried with backoff).
  uint64_t min_free_bytes = uint64_t{32} << 20;
  // The free bytes of the file system holding a path (statvfs); tests inject a full disk.
  // Empty: the operating system's answer.
  std::function<Result<uint64_t>(const std::string&)> free_bytes;
  // Signed update metadata required (SignedOffers): every offer to download is checked
  // against it before a byte is fetched, and versions only go forward — an older one is
  // taken only as the revert of this device's last update, to the version it ran before.
  // Null: offers are taken as the server makes them. Not owned.
  OfferCheck* offer_check = nullptr;
  // Remote commands from check-in answers, when given (not owned; started by Agent::start):
  // taken, run and reported at each check-in. Null: commands are ignored.
  RemoteCommands* remote_commands = nullptr;
  // How a remote "reboot" reboots the device: returns only when it did not. Empty: refused.
  std::function<Status()> reboot_device;
  // Configuration, when given (not owned; started by the caller): its hash reported at each
  // check-in, the server's document applied when it wants another, reapply_config taken.
  // Null: the device applies no configuration (and says nothing of it).
  ConfigApplier* config = nullptr;
};

// The shortest wait between check-ins whatever the server says: a server (or a bug) that
// asks for 0 ms does not turn the agent into a busy loop.
inline constexpr Duration kMinPoll = seconds(1);

class Agent {
 public:
  Agent(AgentOptions options, ServerLink& server, UpdateModule& module, CommandRunner& commands,
        Clock& clock, uint64_t seed, FileSystem& fs = real_file_system());

  // Loads the saved record and inventory (inventory.json; `initial` when there is none yet).
  // kCorruption / kIo from the files.
  Status start(const Inventory& initial);

  // Does the next thing and returns how long to wait before calling again.
  Duration run_once();

  const UpdateRecord& record() const { return record_; }
  const Inventory& inventory() const { return inventory_; }
  // The image the other slot keeps from before the last update (kept.json), when the
  // module keeps one: what a switch-back revert boots. Empty fields when none is known.
  struct Kept {
    std::string component, version, slot;
    bool operator==(const Kept&) const = default;
  };
  const Kept& kept() const { return kept_; }
  // What ran before each component's last committed update (previous.json).
  const Inventory& previous() const { return previous_; }
  // The last problem met (for logs), "" when the last step went well.
  const std::string& last_error() const { return last_error_; }

 private:
  Duration idle();
  // Why `offer` would take this device back to an older version than it runs, when that is
  // not the revert of its last update; "" when it does not.
  std::string rollback_refused(const Offer& offer) const;
  Duration downloading();
  // A download attempt failed, to be tried again: when it added nothing (`progressed` false)
  // and a poll interval has passed since the last check-in, hears from the server first (its
  // commands may give the download up).
  Duration retry_download(const Error& e, bool progressed);
  Duration verifying();
  Duration ready();
  // Ready: asks the server whether the held update still stands (and its windows). False
  // when what it said could not be saved: nothing may be installed on it then.
  // Asks the server about the held image; `answered` says whether it answered (out of
  // reach, the windows already known hold).
  bool ask_about_hold(bool* answered);
  // No window the server sent leaves apply_time: holding on would hold forever. The image is
  // dropped and the server told ("withdraw"), so the rollout stops waiting for this device.
  Duration give_up_hold();
  Duration installing();
  Duration rebooting();
  Duration committing();
  Duration rolling_back();

  // Moves through the table and saves; false (and last_error_) when the save failed.
  bool advance(UpdateEvent event, const std::function<void(UpdateRecord&)>& change = {});
  // A failure in the current step: to Idle (nothing touched yet) or RollingBack.
  Duration fail(const std::string& why);
  Duration retry_later(const Error& e);  // backoff for a server that cannot be reached
  // When to check in next, as the server asked (never sooner than kMinPoll).
  Duration poll_after(const CheckInAnswer& answer) const;
  // Exponential backoff with full jitter after `failures` failures in a row.
  Duration backoff(uint32_t failures);
  // An attempt at an offer failed (or it was refused): the same offer is not taken again
  // before a backoff that doubles with each failure, whatever the server says.
  void offer_failed(const std::string& key);
  // Whether the offer `key` is still in its backoff; `wait` is then how long is left.
  bool offer_backing_off(const std::string& key, Duration* wait) const;
  // Refuses an offer without starting it: tells the server and backs off the offer.
  Duration refuse_offer(const Offer& offer, const std::string& why);
  bool run_state_script(UpdateStep step);
  // Checks in (with the configuration's report, when there is one) and, answered, takes the
  // answer's commands and configuration.
  Result<CheckInAnswer> check_in(protocol::UpdateState state, std::string_view holding);
  // A check-in's remote commands: journaled, run, reported. Problems are kept in
  // last_error_; they never fail the step (the server sends an unreported command again).
  void handle_commands(const std::vector<RemoteCommand>& commands);
  // The remote "clear_update": gives up a download under way or an image held for its
  // window; what it did. kFailedPrecondition past the point of giving up.
  Result<std::string> clear_update(bool download_only);
  void best_effort_report(protocol::Report status);
  Status save_inventory();
  // Writes kept.json and, once it is on disk, kept_.
  Status save_kept(Kept k);
  std::string path(const char* name) const;

  AgentOptions o_;
  ServerLink& server_;
  UpdateModule& module_;
  CommandRunner& commands_;
  Clock& clock_;
  Rng rng_;
  FileSystem& fs_;
  UpdateStateFile state_;
  UpdateRecord record_;
  Inventory inventory_;
  Inventory previous_;
  Kept kept_;
  Duration poll_;
  uint32_t failures_ = 0;      // consecutive failures to reach the server
  Timestamp last_check_in_{};  // the last check-in the server answered (none yet: epoch)
  // The last offer that failed ("rollout/component@version/sha256"), how often in a row,
  // and when it may be taken again.
  std::string failed_offer_;
  uint32_t offer_failures_ = 0;
  Timestamp offer_retry_at_{};
  std::string last_error_;
};

}  // namespace drover::agent
