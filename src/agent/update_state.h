// The agent's persistent update record, and the file that holds it. The record is saved
// (atomically: base/file_system.h) before every transition of the update table, so after a
// kill or power cut at any point the agent finds the step it was in and resumes or rolls
// back from there. Format: docs/formats.md, "Agent update state".
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "agent/update_machine.h"
#include "base/clock.h"
#include "base/file_system.h"
#include "base/result.h"
#include "protocol/device.h"

namespace drover::agent {

// The most windows an offer or a record carries.
inline constexpr size_t kMaxWindows = 64;

struct UpdateRecord {
  UpdateStep step = UpdateStep::kIdle;
  // The offer being worked on (empty when idle and nothing to report).
  std::string rollout_id;
  std::string component;
  std::string version;
  uint64_t size = 0;
  std::string sha256;        // hex
  std::string from_version;  // what ran before: the rollback target
  uint64_t bytes_done = 0;   // downloaded so far (resume from here)
  bool revert = false;       // a fleet rollback sending the previous version back
  bool switch_back = false;  // the revert boots the image the other slot keeps (no download)
  std::string slot;          // ab-slot: the slot being installed and tried ("A", "B"), or ""
  int64_t deadline_ms = 0;   // Committing: when the checks must have passed (ms since epoch)
  // When the device may interrupt itself for this update (the server's answer, in UTC);
  // empty: any time. Ready waits for one long enough.
  std::vector<TimeRange> windows;
  bool waiting = false;  // Ready: the server said to hold the image without installing it
  // An outcome not yet delivered to the server (protocol::is_outcome), if any.
  std::optional<protocol::Report> report;
  std::string message;  // why the last attempt failed
  // Times the current step was entered: 1 after a transition, and one more each time the
  // agent restarts into it, so a step that kills the agent every time shows up as a loop.
  uint32_t entries = 0;
  friend bool operator==(const UpdateRecord&, const UpdateRecord&) = default;
};

std::string encode(const UpdateRecord& r);
// kCorruption for anything that encode() did not write.
Result<UpdateRecord> decode_update_record(std::string_view text);

class UpdateStateFile {
 public:
  UpdateStateFile(FileSystem& fs, std::string path) : fs_(fs), path_(std::move(path)) {}

  // The saved record; a fresh idle one when there is no file yet. kCorruption when the file
  // holds something else, kIo when it cannot be read.
  Result<UpdateRecord> load();
  // kIo on failure; the previous record is then still the saved one.
  Status save(const UpdateRecord& r);

  // Moves `current` through the table on `event`, lets `change` fill in what the new step
  // needs, and saves the result before returning it: the caller acts only on a record that
  // is on disk. kConflict (no such transition) or kIo; nothing is saved then.
  Result<UpdateRecord> advance(const UpdateRecord& current, UpdateEvent event,
                               const std::function<void(UpdateRecord&)>& change = {});

 private:
  FileSystem& fs_;
  std::string path_;
};

}  // namespace drover::agent
