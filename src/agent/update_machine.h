// The device side of an update, as one (state, event) -> state table (DESIGN.md §3):
//
//   Idle -offer-> Downloading -downloaded-> Verifying -verified-> Ready -window_open->
//   Installing -installed-> Rebooting -booted_new-> Committing -committed-> Idle (succeeded)
//
// Ready holds the verified image until the device's maintenance window opens (at once when
// the offer set none); a server that calls the update off meanwhile has it dropped.
//
// Before anything is written to the inactive slot a failure simply ends the attempt (back to
// Idle, nothing to undo); from Installing on, any failure, a trial boot that comes up in the
// old slot, or a commit timeout goes through RollingBack, which ends when the device runs
// its previous image again. A pair missing from the table is a bug in the caller: kConflict,
// nothing changes.
#pragma once

#include <cstdint>
#include <string_view>

#include "base/result.h"

namespace drover::agent {

enum class UpdateStep : uint8_t {
  kIdle,
  kDownloading,  // fetching the artifact, resumable
  kVerifying,    // size and sha256 (and signatures) of what was fetched
  kReady,        // the verified image waits for a window long enough to install it
  kInstalling,   // the update module writes the inactive slot
  kRebooting,    // the bootloader is told to try the new slot once
  kCommitting,   // running from the new slot: self-check, application checks, server reachable
  kRollingBack,  // back to the previous slot
  kCount,        // not a step: how many there are
};
inline constexpr int kUpdateStepCount = static_cast<int>(UpdateStep::kCount);

enum class UpdateEvent : uint8_t {
  kOffer,          // the server offered an artifact
  kDownloaded,     // every byte is on disk
  kVerified,       // size and hash match the offer
  kInstalled,      // the inactive slot holds the new image; the bootloader will try it
  kBootedNew,      // up again, in the new slot (trial boot)
  kBootedOld,      // up again, but the bootloader fell back: the trial boot failed
  kCommitted,      // checks passed; the new slot is made permanent
  kFailed,         // the current step failed (network, hash, install, a health check)
  kCommitTimeout,  // the checks did not pass in time
  kRolledBack,     // the previous slot is active and permanent again
  kWindowOpen,     // a window has opened that the install, reboot and commit fit in
  kDropped,        // called off before the install (the server, clear_update): image deleted
  kOfferKept,      // the server offered the image the other slot keeps: nothing to fetch
  kCount,          // not an event: how many there are
};
inline constexpr int kUpdateEventCount = static_cast<int>(UpdateEvent::kCount);

const char* to_string(UpdateStep s);
const char* to_string(UpdateEvent e);
Result<UpdateStep> parse_update_step(std::string_view s);

// The step after `event` in `step`. kConflict when the table has no such row.
Result<UpdateStep> next_step(UpdateStep step, UpdateEvent event);

// Whether the inactive slot may hold a partial or unconfirmed image in `step`: a power cut
// there must end in RollingBack (or in the new image, once it committed), never in Idle.
bool touches_slots(UpdateStep step);

}  // namespace drover::agent
