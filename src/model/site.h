// A site (a building, a farm, a depot) with its IANA time zone and the maintenance windows,
// in local time, during which its devices may be updated.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/clock.h"
#include "base/result.h"

namespace date {
class time_zone;
}

namespace drover {

// A weekly window in local time: on each day in `days`, from `start_minute` for `length`.
// A window may run past midnight (22:00 for 8h ends at 06:00 the next day); `days` names
// the day it starts on.
struct MaintenanceWindow {
  uint8_t days = 0x7f;     // bit 0 = Monday ... bit 6 = Sunday
  int start_minute = 0;    // minutes after local midnight, 0..1439
  int length_minutes = 0;  // 1..10080
  friend bool operator==(const MaintenanceWindow&, const MaintenanceWindow&) = default;
};

struct Site {
  std::string name;
  std::string time_zone = "UTC";           // IANA name, e.g. "America/Chicago"
  std::vector<MaintenanceWindow> windows;  // empty: always open
  friend bool operator==(const Site&, const Site&) = default;
};

Status validate(const Site& s);
// Each window has days, a start within the day and a length of 1 minute to 7 days.
Status validate_windows(const std::vector<MaintenanceWindow>& windows);

// The time zone database entry for an IANA name, or an error naming it.
Result<const date::time_zone*> locate_time_zone(const std::string& name);

// Answers "is the site's window open at t, and until when does that hold?" for one site.
// Thread-compatible. Local time comes from the system tz database (DST handled: a window
// of "01:00 for 4h" is four real hours long except across a DST change, where it ends at
// the local wall-clock time 05:00).
class WindowSchedule {
 public:
  // `site` must have passed validate().
  explicit WindowSchedule(const Site& site);

  bool always_open() const { return windows_.empty(); }
  bool is_open(Timestamp t) const;
  // The first instant >= t at which the site is open, or Timestamp::max() if never.
  Timestamp next_open(Timestamp t) const;
  // The first instant >= t at which the site is closed (t itself when closed now), or
  // Timestamp::max() if always open.
  Timestamp next_close(Timestamp t) const;
  // The open stretches that meet [from, until), clipped to it, sorted, with touching and
  // overlapping windows merged. `until` - `from` is at most eight days. Always open: the
  // whole of [from, until).
  std::vector<TimeRange> open_between(Timestamp from, Timestamp until) const;

 private:
  // Open intervals [start, end) in UTC that intersect the local week around t.
  void intervals_near(Timestamp t, std::vector<std::pair<Timestamp, Timestamp>>& out) const;

  const date::time_zone* zone_ = nullptr;
  std::vector<MaintenanceWindow> windows_;
};

// `open` with every stretch of `closed` taken out; both sorted and disjoint, as
// open_between() returns them.
std::vector<TimeRange> subtract(const std::vector<TimeRange>& open,
                                const std::vector<TimeRange>& closed);

}  // namespace drover
