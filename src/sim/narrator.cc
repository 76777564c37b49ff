#include "sim/narrator.h"

#include <cstdio>

#include "base/units.h"
#include "sim/fleet_world.h"

namespace drover::sim {

Narrator::Narrator(Timestamp start, const Clock& clock,
                   std::function<void(const std::string&)> timeline, bool held)
    : start_(start), clock_(clock), timeline_(std::move(timeline)), held_(held) {}

std::string Narrator::stamp(Timestamp t) const {
  const int64_t s = std::chrono::duration_cast<std::chrono::seconds>(t - start_).count();
  char buf[64];
  std::snprintf(buf, sizeof buf, "T+%02lld:%02lld:%02lld", static_cast<long long>(s / 3600),
                static_cast<long long>(s / 60 % 60), static_cast<long long>(s % 60));
  return std::string(buf) + "  " + format_utc_timestamp(t).substr(11, 5) + "Z";
}

void Narrator::say(const std::string& line) {
  if (timeline_) tell(stamp(clock_.now()) + "  " + line);
}

void Narrator::tell_device(const FleetWorld& world, uint32_t dev, const std::string& what,
                           uint32_t& told) {
  if (++told > kDeviceLines) return;
  say("[device] " + world.name_of(dev).str() + " (" + world.revision(dev) + ", " +
      world.site(dev).name + "): " + what +
      (told == kDeviceLines ? " (further devices like this are counted, not listed)" : ""));
}

void Narrator::engine_event(const EngineEvent& e) {
  std::string line = stamp(e.at) + "  [" + to_string(e.kind) + "] " + e.text;
  if (!held_) {
    tell(line);
    return;
  }
  MutexLock lock(mu_);
  held_lines_.push_back(std::move(line));
}

void Narrator::flush_engine_lines() {
  if (!held_) return;
  std::vector<std::string> lines;
  {
    MutexLock lock(mu_);
    lines.swap(held_lines_);
  }
  for (const auto& line : lines) tell(line);
}

}  // namespace drover::sim
