// The twin's clock and links: scheduling device events, jittered polls, when an
// intermittent link is up, and whether a moment is inside a device's own window (its site's
// maintenance window less its quiet hours).
#include "sim/simulator_impl.h"

namespace drover::sim::detail {

void Simulator::schedule(uint32_t dev, Timestamp at, EventKind kind) {
  if (at == Timestamp::max()) return;  // a link that never comes up: the device stays silent
  queue_.push(Event{at.time_since_epoch().count(), seq_++, dev, static_cast<uint8_t>(kind)});
}

Duration Simulator::jittered(Duration d) {
  const double f = 1 + sc_.checkin_jitter * (2 * rng_.uniform() - 1);
  return Duration(
      std::max<int64_t>(1000, static_cast<int64_t>(static_cast<double>(d.count()) * f)));
}

const std::string* Simulator::link_key(uint32_t dev) const {
  const SimDevice& d = devices_[dev];
  if (sc_.connectivity[d.connectivity].kind != LinkKind::kIntermittent) return nullptr;
  return &link_keys_[d.site * sc_.connectivity.size() + d.connectivity];
}

bool Simulator::online(uint32_t dev, Timestamp t) {
  const std::string* key = link_key(dev);
  return key == nullptr || links_.is_open(*key, t);
}

Timestamp Simulator::next_online(uint32_t dev, Timestamp t) {
  const std::string* key = link_key(dev);
  if (key == nullptr) return t;
  const Timestamp open = links_.next_open(*key, t);
  if (open == t || open == Timestamp::max()) return open;
  // Devices on the same schedule do not all connect in the same second.
  return open +
         Duration(static_cast<int64_t>(rng_.uniform() * 60'000 * (1 + 4 * sc_.checkin_jitter)));
}

Timestamp Simulator::link_open_at_or_after(uint32_t dev, Timestamp t) {
  const std::string* key = link_key(dev);
  return key == nullptr ? t : links_.next_open(*key, t);
}

Timestamp Simulator::online_until(uint32_t dev, Timestamp t) {
  const std::string* key = link_key(dev);
  return key == nullptr ? Timestamp::max() : links_.open_until(*key, t);
}

bool Simulator::in_window(uint32_t dev, Timestamp t) {
  const SimDevice& d = devices_[dev];
  const std::string& site = sites_[d.site].name;
  if (!maintenance_.is_open(site, t)) return false;
  return d.quiet == 0 || !quiet_.is_open(site + "#" + std::to_string(d.quiet - 1), t);
}

bool Simulator::links_ever_meet(uint32_t dev) {
  // Within a week, is the device ever online while its site's window is open?
  const SimDevice& d = devices_[dev];
  WindowCache site_windows;
  site_windows.put(sites_[d.site]);
  for (Timestamp t = clock_.now(); t < clock_.now() + days(7); t += minutes(1)) {
    if (online(dev, t) && site_windows.is_open(sites_[d.site].name, t)) return true;
  }
  return false;
}

}  // namespace drover::sim::detail
