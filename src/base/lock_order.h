// The lock order, written once. Every Mutex has a level; a thread may take a mutex only if
// every mutex it already holds has a lower level. Builds without NDEBUG (Debug and the
// sanitizer builds, where CI runs every test) check it at each lock() and abort naming
// both locks, so an inversion is found by the first test that takes the locks in the wrong
// order on one thread, not by the deadlock it could cause between two. clang's
// -Wthread-safety checks ACQUIRED_BEFORE within one function at compile time; this check
// sees across functions, objects and callbacks.
#pragma once

#include <cstdint>

namespace drover {

enum class LockLevel : uint8_t {
  kRemediator = 1,    // Remediator: one tick or alert change at a time, then the queue, store
  kRolloutStart,      // RolloutEngine: one start() plans at a time, then takes the engine
  kArtifacts,         // ArtifactService: one upload or removal, which tells the engine
  kDeviceAuth,        // DeviceAuth: an enrollment decision reads and writes the registry
  kDeviceRegistry,    // DeviceService: a check-in or report calls the engine with it held
  kRolloutEngine,     // RolloutEngine: writes through the store with it held
  kCommandQueue,      // CommandQueue: writes through the store with it held
  kAuditLog,          // AuditLog: one append at a time, through the store
  kConfigWrite,       // ConfigService: one document or profile write at a time, then the store
  kStoreWriter,       // a store's writer (SQLite connection, in-memory tables)
  kStoreReader,       // a store's second, read-only connection
  kGroupCommit,       // the commit queue
  kTelemetryService,  // TelemetryService: per-device series counts, then the store
  kTelemetryStore,    // TimeSeriesStore: heads, series and the log buffer
  kUpdateRepository,  // UpdateRepository: one publish at a time (under the artifacts' lock)
  kLeaf,              // the default: nothing else is taken while it is held
  kCount,
};

const char* to_string(LockLevel level);

namespace lock_order {

#ifdef NDEBUG
inline constexpr bool kChecked = false;
#else
inline constexpr bool kChecked = true;
#endif

// The calling thread's held levels. acquire() returns false (and records nothing) if
// `level` may not be taken now; release() forgets the most recent hold of `level`.
bool acquire(LockLevel level);
void release(LockLevel level);
// The highest level the calling thread holds, or 0 if it holds none.
int highest_held();

// acquire() or abort with a message naming the held and the wanted lock.
void acquire_or_abort(LockLevel level);

}  // namespace lock_order
}  // namespace drover
