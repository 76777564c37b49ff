#include "model/site.h"

#include <date/tz.h>

#include <algorithm>

#include "model/device.h"

namespace drover {

Result<const date::time_zone*> locate_time_zone(const std::string& name) {
  try {
    return date::locate_zone(name);
  } catch (const std::exception&) {
    return invalid_argument("unknown time zone '" + name + "'");
  }
}

Status validate(const Site& s) {
  if (!is_valid_name(s.name)) return invalid_argument("bad site name '" + s.name + "'");
  const std::string where = "site '" + s.name + "': ";
  if (auto z = locate_time_zone(s.time_zone); !z.ok())
    return invalid_argument(where + z.error().message);
  if (auto st = validate_windows(s.windows); !st.ok())
    return invalid_argument(where + st.error().message);
  return ok_status();
}

Status validate_windows(const std::vector<MaintenanceWindow>& windows) {
  for (const auto& w : windows) {
    if ((w.days & 0x7f) == 0 || (w.days & 0x80) != 0) return invalid_argument("window has no days");
    if (w.start_minute < 0 || w.start_minute >= 24 * 60) {
      return invalid_argument("window start must be within 00:00..23:59");
    }
    if (w.length_minutes <= 0 || w.length_minutes > 7 * 24 * 60) {
      return invalid_argument("window length must be between 1 minute and 7 days");
    }
  }
  return ok_status();
}

WindowSchedule::WindowSchedule(const Site& site) : windows_(site.windows) {
  auto z = locate_time_zone(site.time_zone);
  DROVER_CHECK(z.ok());
  zone_ = *z;
}

void WindowSchedule::intervals_near(Timestamp t,
                                    std::vector<std::pair<Timestamp, Timestamp>>& out) const {
  namespace chr = std::chrono;
  const auto local_now = zone_->to_local(chr::time_point_cast<chr::seconds>(t));
  const auto today = chr::floor<date::days>(local_now);
  for (int offset = -8; offset <= 8; ++offset) {
    const date::local_days day = today + date::days(offset);
    const unsigned bit = (date::weekday(day).c_encoding() + 6) % 7;  // Monday = 0
    for (const auto& w : windows_) {
      if ((w.days & (1u << bit)) == 0) continue;
      const auto local_start = day + chr::minutes(w.start_minute);
      const auto local_end = local_start + chr::minutes(w.length_minutes);
      const auto start = zone_->to_sys(local_start, date::choose::earliest);
      const auto end = zone_->to_sys(local_end, date::choose::earliest);
      if (end > start) {
        out.emplace_back(chr::time_point_cast<Duration>(start),
                         chr::time_point_cast<Duration>(end));
      }
    }
  }
  std::sort(out.begin(), out.end());
}

bool WindowSchedule::is_open(Timestamp t) const {
  if (windows_.empty()) return true;
  std::vector<std::pair<Timestamp, Timestamp>> iv;
  intervals_near(t, iv);
  return std::any_of(iv.begin(), iv.end(),
                     [&](const auto& i) { return i.first <= t && t < i.second; });
}

Timestamp WindowSchedule::next_open(Timestamp t) const {
  if (windows_.empty()) return t;
  std::vector<std::pair<Timestamp, Timestamp>> iv;
  intervals_near(t, iv);
  Timestamp best = Timestamp::max();
  for (const auto& [start, end] : iv) {
    if (start <= t && t < end) return t;
    if (start > t) best = std::min(best, start);
  }
  return best;
}

Timestamp WindowSchedule::next_close(Timestamp t) const {
  if (windows_.empty()) return Timestamp::max();
  Timestamp cursor = t;
  // Follow chains of touching or overlapping windows; a week of back-to-back windows means
  // the site never closes.
  for (int hops = 0; hops < 64; ++hops) {
    std::vector<std::pair<Timestamp, Timestamp>> iv;
    intervals_near(cursor, iv);
    Timestamp end = cursor;
    for (const auto& [s, e] : iv) {
      if (s <= end && end < e) end = e;
    }
    if (end == cursor) return cursor;
    cursor = end;
    if (cursor - t > days(7)) return Timestamp::max();
  }
  return Timestamp::max();
}

std::vector<TimeRange> WindowSchedule::open_between(Timestamp from, Timestamp until) const {
  DROVER_CHECK(until - from <= days(8));
  std::vector<TimeRange> out;
  if (until <= from) return out;
  if (windows_.empty()) {
    out.push_back({from, until});
    return out;
  }
  // The local days around `from` (eight either side) hold every window that meets the eight
  // days from it: a window is at most seven days long, so it starts at most seven days
  // before `from`.
  std::vector<std::pair<Timestamp, Timestamp>> iv;
  intervals_near(from, iv);
  for (const auto& [s, e] : iv) {
    const Timestamp a = std::max(s, from);
    const Timestamp b = std::min(e, until);
    if (a >= b) continue;
    if (!out.empty() && a <= out.back().until) {
      out.back().until = std::max(out.back().until, b);
    } else {
      out.push_back({a, b});
    }
  }
  return out;
}

std::vector<TimeRange> subtract(const std::vector<TimeRange>& open,
                                const std::vector<TimeRange>& closed) {
  std::vector<TimeRange> out;
  size_t k = 0;
  for (TimeRange r : open) {
    while (k < closed.size() && closed[k].until <= r.from) ++k;
    for (size_t j = k; j < closed.size() && closed[j].from < r.until; ++j) {
      if (closed[j].from > r.from) out.push_back({r.from, closed[j].from});
      r.from = std::max(r.from, closed[j].until);
    }
    if (r.from < r.until) out.push_back(r);
  }
  return out;
}

}  // namespace drover
