// ConfigApplier: the device's side of configuration (docs/configuration.md, docs/agent.md
// "Configuration"). At each check-in the agent reports the SHA-256 of the document on disk;
// when the server answers with another, the applier fetches its type's document, checks it
// — its hash, the envelope it came with, and this device's own envelope installed with its
// firmware, so a value the hardware does not tolerate is refused whatever the server says —
// writes it atomically and runs the apply command (a service reload). An apply command that
// fails puts the previous document back (and runs the command again for it).
//
// A document refused is not fetched again until the server names another (or a remote
// reapply_config asks); a failed apply is tried again after `retry_after`. A file changed on
// the device by hand reports another hash, so the server's answer repairs it.
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
};

class ConfigApplier {
 public:
  ConfigApplier(ConfigApplyOptions options, CommandRunner& runner, Clock& clock,
                FileSystem& fs = real_file_system());

  // Reads the device's own envelope, if one is configured. kInvalidArgument when it is not
  // a valid envelope; kNotFound / kIo when it cannot be read.
  Status start();

  // What the next check-in says: the hash of the document on disk now ("" for none) and why
  // the one the server wants is not applied ("" when nothing went wrong).
  protocol::ConfigReport report();

  // After a check-in: the server wants `wanted` (nullopt: what the device runs is right).
  void on_answer(const std::optional<ConfigWanted>& wanted, ServerLink& server);

  // The remote reapply_config: fetches the type's document and applies it even when the
  // device runs it already (an apply command run again: a service that lost its settings).
  // What it did; kFailedPrecondition when the document is refused, kIo when it could not be
  // fetched or applied.
  Result<std::string> reapply(ServerLink& server);

  // Lines for the log since the last call: documents applied, refused, failed.
  std::vector<std::string> take_log();

 private:
  Result<std::string> fetch_and_apply(ServerLink& server);
  std::string on_disk_sha();

  ConfigApplyOptions o_;
  CommandRunner& runner_;
  Clock& clock_;
  FileSystem& fs_;
  std::optional<protocol::ConfigEnvelope> own_;  // the device's envelope, when configured
  std::string error_;                            // reported until a document is applied
  std::string failed_sha_;  // the document that failed (refused: for good; else until retry)
  bool refused_ = false;
  Timestamp retry_at_{};
  std::vector<std::string> log_;
};

}  // namespace drover::agent
