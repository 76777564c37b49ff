#include "rollout/scheduler.h"

#include <algorithm>
#include <utility>

namespace drover {

void WindowCache::put(const Site& site) {
  Entry e;
  e.name = site.name;
  e.time_zone = site.time_zone;
  e.schedule = std::make_unique<WindowSchedule>(site);
  if (Entry* existing = slot(site.name)) {
    *existing = std::move(e);
    return;
  }
  index_.insert(FlatIndex::hash(site.name), entries_.size());
  entries_.push_back(std::move(e));
}

const WindowCache::Entry* WindowCache::slot(std::string_view site) const {
  const Entry* found = nullptr;
  index_.find(FlatIndex::hash(site), [&](uint64_t i) {
    if (entries_[i].name != site) return false;
    found = &entries_[i];
    return true;
  });
  return found;
}

WindowCache::Entry* WindowCache::slot(std::string_view site) {
  return const_cast<Entry*>(std::as_const(*this).slot(site));
}

bool WindowCache::refresh(Entry& e, Timestamp t) {
  if (e.schedule->always_open()) return true;
  if (t < e.valid_from || t >= e.valid_until) {
    e.open = e.schedule->is_open(t);
    e.valid_from = t;
    e.valid_until = e.open ? e.schedule->next_close(t) : e.schedule->next_open(t);
  }
  return e.open;
}

std::optional<bool> WindowCache::open_if_known(std::string_view site, Timestamp t) {
  Entry* e = slot(site);
  if (e == nullptr) return std::nullopt;
  return refresh(*e, t);
}

Timestamp WindowCache::next_open(std::string_view site, Timestamp t) {
  Entry* e = slot(site);
  if (e == nullptr || refresh(*e, t)) return t;
  return e->valid_until;
}

Timestamp WindowCache::open_until(std::string_view site, Timestamp t) {
  Entry* e = slot(site);
  if (e == nullptr || e->schedule->always_open()) return Timestamp::max();
  if (!refresh(*e, t)) return t;
  return e->valid_until;
}

std::vector<TimeRange> WindowCache::open_between(std::string_view site, Timestamp from,
                                                 Timestamp until) {
  Entry* e = slot(site);
  std::vector<TimeRange> out;
  if (until <= from) return out;
  if (e == nullptr || e->schedule->always_open()) {
    out.push_back({from, until});
    return out;
  }
  if (e->stretches_from == Timestamp::max() || from < e->stretches_from ||
      from >= e->stretches_from + hours(24)) {
    e->stretches = e->schedule->open_between(from, from + days(8));
    e->stretches_from = from;
  }
  for (const TimeRange& r : e->stretches) {
    const Timestamp a = std::max(r.from, from);
    const Timestamp b = std::min(r.until, until);
    if (a < b) out.push_back({a, b});
  }
  return out;
}

const std::string& WindowCache::time_zone(std::string_view site) const {
  static const std::string kUtc = "UTC";
  const Entry* e = slot(site);
  return e == nullptr ? kUtc : e->time_zone;
}

RateLimiter::RateLimiter(const DeliveryConstraints& c, Timestamp start)
    : max_per_minute_(c.max_per_minute),
      from_per_minute_(c.ramp_over.count() > 0 ? c.ramp_from_per_minute : c.max_per_minute),
      ramp_over_(c.ramp_over),
      start_(start),
      last_(start),
      tokens_(1) {}

double RateLimiter::rate_per_minute(Timestamp now) const {
  if (ramp_over_.count() <= 0 || now - start_ >= ramp_over_) return max_per_minute_;
  const double f =
      static_cast<double>((now - start_).count()) / static_cast<double>(ramp_over_.count());
  return from_per_minute_ + (max_per_minute_ - from_per_minute_) * std::max(0.0, f);
}

bool RateLimiter::try_take(Timestamp now) {
  if (unlimited()) return true;
  const double rate = rate_per_minute(now);
  if (now > last_) {
    tokens_ += rate * static_cast<double>((now - last_).count()) / 60'000.0;
    last_ = now;
  }
  tokens_ = std::min(tokens_, std::max(1.0, rate / 6.0));
  if (tokens_ < 1.0) return false;
  tokens_ -= 1.0;
  return true;
}

}  // namespace drover
