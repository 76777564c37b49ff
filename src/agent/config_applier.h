// ConfigApplier: the device's side of configuration (docs/configuration.md, docs/agent.md
// "Configuration documents"). At each check-in the agent reports the SHA-256 of the document
// it runs; when the server answers with another, the applier fetches its type's document,
// checks it — its hash, the envelope it came with, and this device's own envelope installed
// with its firmware, so a value the hardware does not tolerate is refused whatever the server
// says — writes it atomically and runs the apply command (a service reload). An apply command
// that fails puts the previous document back (and runs the command again for it).
//
// Nothing is lost to a crash: what it applied last (the document itself), what it is in the
// middle of (with the bytes it replaces) and what failed are kept in <state_dir>/config.json,
// written before each step. An agent stopped between writing a document and its apply
// command's end puts the previous one back at its next start, so the hash it reports is
// always that of a document whose apply command ran.
//
// A refused version is not fetched again until the server names another (or a remote
// reapply_config asks); a failed one is tried again after `retry_after`. A file changed on
// the device is repaired: with the server's document, or — while that one is refused — with
// the copy of what this device last applied.
//
// Thread-compatible: the agent's one thread drives it.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "agent/command.h"
#include "agent/server_link.h"
#include "base/clock.h"
#include "base/file_system.h"
#include "base/result.h"
#include "protocol/device_config.h"

namespace drover::agent {

struct ConfigApplyOptions {
  std::string path;                // where the document lives (its canonical JSON)
  std::vector<std::string> apply;  // run after each write (e.g. systemctl reload sensord)
  Duration apply_timeout = minutes(2);
  // This device's own envelope (a JSON file shipped with its firmware); "": the server's only.
  std::string envelope_file;
  Duration retry_after = hours(1);  // before a document whose apply failed is tried again
  std::string state_dir;            // where config.json is kept (the agent's data directory)
};

class ConfigApplier {
 public:
  ConfigApplier(ConfigApplyOptions options, CommandRunner& runner, Clock& clock,
                FileSystem& fs = real_file_system());

  // Reads the device's own envelope and the saved state, and finishes what a stop cut
  // short (the previous document put back). Never fails the agent: an own envelope that
  // cannot be read or is not valid refuses every document (and says why at each check-in);
  // a state file that does not parse is started afresh (said in the log).
  void start();

  // What the next check-in says: the hash of the document it runs ("" for none) and why the
  // one the server wants is not applied ("" when nothing went wrong).
  protocol::ConfigReport report();

  // After a check-in: the server wants `wanted` (nullopt: what the device runs is right).
  void on_answer(const std::optional<ConfigWanted>& wanted, ServerLink& server);

  // The remote reapply_config: fetches the type's document and applies it even when the
  // device runs it already (an apply command run again: a service that lost its settings).
  // What it did; kFailedPrecondition when the document is refused, kIo when it could not be
  // fetched or applied.
  Result<std::string> reapply(ServerLink& server);

  // Lines for the log since the last call (at most kMaxLog kept): documents applied,
  // refused, failed, put back.
  std::vector<std::string> take_log();
  static constexpr size_t kMaxLog = 64;

 private:
  struct Applied {  // the last document whose apply command succeeded
    uint64_t version = 0;
    std::string sha256;
    std::string document;  // its canonical bytes
    std::string envelope;  // the envelope it was checked against (JSON)
  };
  struct Pending {  // a document written, its apply command not yet done
    uint64_t version = 0;
    std::string sha256;
    std::optional<std::string> previous;  // the bytes it replaced; nullopt: there was no file
  };
  struct Failed {  // the newest failure to apply a document, until one is applied
    std::string sha256;
    Timestamp retry_at{};  // not tried again before
    std::string error;
  };
  struct Refused {  // a document its checks refused: not fetched again for this hash
    std::string sha256;
    std::string envelope_sha256;  // of the own envelope it was judged by ("" for none)
    std::string error;
  };
  struct OnDisk {
    std::string sha256;  // "" for none
    std::string error;   // a read that failed other than for a missing file
  };

  Result<std::string> fetch_and_apply(ServerLink& server, const std::string& wanted_sha);
  // Journals, writes `bytes`, runs the apply command; on failure puts the previous back.
  Result<std::string> install(uint64_t version, const std::string& sha256, const std::string& bytes,
                              const std::string& envelope, const std::string& what);
  // Puts pending_'s previous bytes back and runs the apply command for them; what happened.
  // pending_ is cleared only when the bytes are back.
  std::string restore();
  // The copy of what was applied last, written back over a file changed on the device.
  void put_back_applied();
  OnDisk on_disk();
  Error fail(const std::string& sha256, const std::string& error, ErrorCode code);
  Status save();
  void log(std::string line);

  ConfigApplyOptions o_;
  CommandRunner& runner_;
  Clock& clock_;
  FileSystem& fs_;
  std::optional<protocol::ConfigEnvelope> own_;  // the device's envelope, when configured
  std::string own_sha256_;                       // of its file's bytes ("" for none)
  std::string broken_;  // why the own envelope cannot be used ("" when it can)
  std::optional<Applied> applied_;
  std::optional<Pending> pending_;
  std::optional<Failed> failed_;
  std::optional<Refused> refused_;
  Timestamp put_back_at_{};  // a put-back that failed is not tried again before
  bool unsaved_ = false;     // the state file is behind (its last write failed)
  std::vector<std::string> log_;
};

}  // namespace drover::agent
