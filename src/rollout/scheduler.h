// Delivery constraints: maintenance windows per site (cached, so the hot check-in path does
// not consult the tz database), and the offer rate limiter.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/clock.h"
#include "base/flat_index.h"
#include "model/rollout.h"
#include "model/site.h"

namespace drover {

// Caches each site's open/closed state until the next change. A lookup hashes the name and
// reads one slot of a flat index, as it runs on every check-in of a device whose turn has
// come. Not thread-safe.
class WindowCache {
 public:
  // Registers or replaces a site.
  void put(const Site& site);
  bool has(std::string_view site) const { return slot(site) != nullptr; }
  // Whether `site` is inside a window at `t`; std::nullopt when the site is unknown.
  std::optional<bool> open_if_known(std::string_view site, Timestamp t);
  // True when `site` is unknown (no constraint known) or inside a window at `t`.
  bool is_open(std::string_view site, Timestamp t) { return open_if_known(site, t).value_or(true); }
  // The next instant >= t at which `site` opens (t if open now); max() if never.
  Timestamp next_open(std::string_view site, Timestamp t);
  // The instant at which `site`, open at t, closes (following back-to-back windows); t when
  // it is closed at t; max() for an unknown or always-open site.
  Timestamp open_until(std::string_view site, Timestamp t);
  // The site's open stretches in [from, until) (WindowSchedule::open_between; at most a
  // week); the whole of it for an unknown site. Cached: the tz arithmetic runs once a day
  // per site, not once per offer.
  std::vector<TimeRange> open_between(std::string_view site, Timestamp from, Timestamp until);
  // The site's IANA time zone; "UTC" for an unknown site.
  const std::string& time_zone(std::string_view site) const;

 private:
  struct Entry {
    std::string name;
    std::string time_zone;
    std::unique_ptr<WindowSchedule> schedule;
    Timestamp valid_from{Timestamp::max()};  // [valid_from, valid_until) has state `open`
    Timestamp valid_until{};
    bool open = false;
    // open_between() over [stretches_from, stretches_from + 8 days), reused for a day.
    Timestamp stretches_from{Timestamp::max()};
    std::vector<TimeRange> stretches;
  };
  Entry* slot(std::string_view site);
  const Entry* slot(std::string_view site) const;
  // Brings e's cached state up to `t`; returns whether it is open then.
  static bool refresh(Entry& e, Timestamp t);

  std::vector<Entry> entries_;
  FlatIndex index_;  // name hash -> position in entries_
};

// Token bucket for offers per minute, with an optional linear ramp from
// `ramp_from_per_minute` to `max_per_minute` over `ramp_over` after `start`.
// The bucket holds at most ten seconds' worth of offers (at least one), so a burst after a
// quiet spell stays small. Not persisted: after a restart it starts empty, which can only
// slow delivery, never exceed the rate.
class RateLimiter {
 public:
  RateLimiter() = default;
  RateLimiter(const DeliveryConstraints& c, Timestamp start);

  bool unlimited() const { return max_per_minute_ <= 0; }
  // Takes one token if one is available at `now`.
  bool try_take(Timestamp now);
  double rate_per_minute(Timestamp now) const;

 private:
  double max_per_minute_ = 0;
  double from_per_minute_ = 0;
  Duration ramp_over_{0};
  Timestamp start_{};
  Timestamp last_{};
  double tokens_ = 0;
};

}  // namespace drover
