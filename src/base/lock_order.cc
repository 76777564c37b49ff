#include "base/lock_order.h"

#include <array>
#include <cstdio>
#include <cstdlib>

#include "base/enum_names.h"

namespace drover {
namespace {

constexpr EnumNames<LockLevel, static_cast<size_t>(LockLevel::kCount) - 1> kNames{{
    {LockLevel::kRemediator, "remediator"},
    {LockLevel::kRolloutStart, "rollout start"},
    {LockLevel::kArtifacts, "artifacts"},
    {LockLevel::kDeviceAuth, "device auth"},
    {LockLevel::kDeviceRegistry, "device registry"},
    {LockLevel::kRolloutEngine, "rollout engine"},
    {LockLevel::kCommandQueue, "command queue"},
    {LockLevel::kAuditLog, "audit log"},
    {LockLevel::kConfigWrite, "config write"},
    {LockLevel::kStoreWriter, "store writer"},
    {LockLevel::kStoreReader, "store reader"},
    {LockLevel::kGroupCommit, "group commit"},
    {LockLevel::kTelemetryService, "telemetry service"},
    {LockLevel::kTelemetryStore, "telemetry store"},
    {LockLevel::kUpdateRepository, "update repository"},
    {LockLevel::kLeaf, "leaf"},
}};

// Deep enough for the deepest legal chain (one lock per level).
struct Held {
  std::array<LockLevel, static_cast<size_t>(LockLevel::kCount)> levels{};
  size_t count = 0;
};
thread_local Held held;

}  // namespace

const char* to_string(LockLevel level) { return enum_name(kNames, level); }

namespace lock_order {

int highest_held() {
  // Holds are pushed in increasing order, so the last one is the highest.
  return held.count == 0 ? 0 : static_cast<int>(held.levels[held.count - 1]);
}

bool acquire(LockLevel level) {
  if (static_cast<int>(level) <= highest_held()) return false;
  held.levels[held.count++] = level;  // increasing levels: count < kCount
  return true;
}

void release(LockLevel level) {
  for (size_t i = held.count; i-- > 0;) {
    if (held.levels[i] != level) continue;
    for (size_t j = i + 1; j < held.count; ++j) held.levels[j - 1] = held.levels[j];
    --held.count;
    return;
  }
}

void acquire_or_abort(LockLevel level) {
  if (acquire(level)) return;
  std::fprintf(stderr,
               "lock order violation: taking the %s lock while holding the %s lock "
               "(base/lock_order.h)\n",
               to_string(level), to_string(static_cast<LockLevel>(highest_held())));
  std::abort();
}

}  // namespace lock_order
}  // namespace drover
