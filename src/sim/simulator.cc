
#include "sim/local_plane.h"
#include "sim/remote_plane.h"
#include "sim/simulator_impl.h"

namespace drover::sim {
namespace detail {

// ---------------------------------------------------------------- set-up

void Simulator::generate_fleet(std::vector<Device>& out) {
  for (const auto& g : sc_.site_groups) {
    const int width = std::max<int>(3, static_cast<int>(std::to_string(g.count).size()));
    for (uint32_t k = 1; k <= g.count; ++k) {
      sites_.push_back(Site{g.prefix + "-" + pad(k, width), g.time_zone, g.maintenance_windows});
      site_group_.push_back(g.prefix);
    }
  }
  std::map<std::string, uint16_t> rev_ids;
  const uint32_t n = opt_.devices.value_or(sc_.devices);
  id_width_ = std::max<int>(6, static_cast<int>(std::to_string(n).size()));
  Inventory initial = sc_.installed;
  std::sort(initial.begin(), initial.end(),
            [](const auto& a, const auto& b) { return a.component < b.component; });
  const uint32_t initial_id = intern(std::move(initial));
  devices_.resize(n);
  out.reserve(n);
  for (uint32_t i = 0; i < n; ++i) {
    const auto& type = sc_.device_types[pick_share(rng_, sc_.device_types)];
    const auto& rev = type.hardware_revisions[pick_share(rng_, type.hardware_revisions)];
    const auto site = static_cast<uint32_t>(rng_.below(sites_.size()));
    const auto conn = static_cast<uint16_t>(pick_share(rng_, sc_.connectivity));
    Device d;
    d.id = name_of(i).str();
    d.device_type = type.name;
    d.hardware_revision = rev.name;
    d.site = sites_[site].name;
    d.connectivity = sc_.connectivity[conn].name;
    d.installed = sc_.installed;
    uint8_t quiet = 0;
    if (!sc_.quiet_hours.empty()) {
      double u = rng_.uniform();
      for (size_t k = 0; k < sc_.quiet_hours.size() && quiet == 0; ++k) {
        u -= sc_.quiet_hours[k].share;
        if (u < 0) {
          quiet = static_cast<uint8_t>(k + 1);
          d.quiet_hours = sc_.quiet_hours[k].windows;
        }
      }
    }
    auto [it, fresh] = rev_ids.emplace(rev.name, static_cast<uint16_t>(revisions_.size()));
    if (fresh) revisions_.push_back(rev.name);
    // Its own draw, so the share changes nothing else about the fleet.
    const double u_keeps =
        static_cast<double>(mix64(seed_ ^ (uint64_t{i} + 1) * 0xa0761d6478bd642fULL) >> 11) *
        0x1.0p-53;
    d.keeps_previous = u_keeps < sc_.keeps_previous;
    SimDevice& s = devices_[i];
    s.keeps = d.keeps_previous;
    s.inventory = initial_id;
    s.site = site;
    s.connectivity = conn;
    s.hardware_revision = it->second;
    s.quiet = quiet;
    out.push_back(std::move(d));
  }
  for (const Site& site : sites_) {
    maintenance_.put(site);
    for (size_t k = 0; k < sc_.quiet_hours.size(); ++k)
      quiet_.put(
          Site{site.name + "#" + std::to_string(k), site.time_zone, sc_.quiet_hours[k].windows});
  }
  // Intermittent links are online in windows of the site's local time.
  link_keys_.resize(sites_.size() * sc_.connectivity.size());
  for (size_t s = 0; s < sites_.size(); ++s) {
    for (size_t c = 0; c < sc_.connectivity.size(); ++c) {
      if (sc_.connectivity[c].kind != LinkKind::kIntermittent) continue;
      std::string key = sites_[s].name + "#" + sc_.connectivity[c].name;
      links_.put(Site{key, sites_[s].time_zone, sc_.connectivity[c].online});
      link_keys_[s * sc_.connectivity.size() + c] = std::move(key);
    }
  }
}

DeviceName Simulator::name_of(uint32_t dev) const {
  // id_width_ has room for the largest index, so the digits fill it from the right.
  DeviceName name;
  std::memcpy(name.text, "dev-", 4);
  name.size = 4 + static_cast<size_t>(id_width_);
  uint32_t n = dev + 1;
  for (size_t k = name.size; k > 4; --k, n /= 10)
    name.text[k - 1] = static_cast<char>('0' + n % 10);
  return name;
}

uint32_t Simulator::intern(Inventory inventory) {
  auto [it, fresh] = inventory_ids_.emplace(inventory, static_cast<uint32_t>(inventories_.size()));
  if (fresh) inventories_.push_back(std::move(inventory));
  return it->second;
}

Status Simulator::set_up() {
  if (remote()) {
    if (opt_.store != "memory")
      return invalid_argument(
          "--store is the in-process server's; with --server the server has its own");
    if (opt_.network->enrollment_token.empty())
      return invalid_argument("--server needs the server's enrollment token for the agents");
  }
  if (opt_.network) DROVER_TRY(prepare_net_dir());  // before anything is written or sent
  std::vector<Device> fleet;
  generate_fleet(fleet);
  auto plane = make_plane();
  if (!plane.ok()) return plane.error();
  plane_ = std::move(*plane);
  if (opt_.network) {
    DROVER_TRY(plane_->set_up(sites_, sc_.artifacts, fleet));  // a copy: the agents need it
    DROVER_TRY(start_agents(fleet, plane_->agent_access()));
  } else {
    DROVER_TRY(plane_->set_up(sites_, sc_.artifacts, std::move(fleet)));
  }
  service_ = plane_->devices();
  // The set-up took its time on the clock the plane keeps: the fleet starts now.
  if (const Timestamp now = plane_->now(); now > clock_.now()) clock_.advance_to(now);
  schedule_first_check_ins();
  schedule_rollout();
  return ok_status();
}

Result<std::unique_ptr<ControlPlane>> Simulator::make_plane() {
  auto content = [this](const Artifact& a) { return payload(a); };
  if (remote()) {
    // A server elsewhere, on its own clock (NetworkSimOptions::server_clock).
    const NetworkSimOptions& no = *opt_.network;
    auto plane = RemoteControlPlane::create(
        {no.server, no.token, no.enrollment_token, no.ca_file, no.server_clock, content},
        [this](const std::string& line) { say(line); });
    if (!plane.ok()) return plane.error();
    return std::unique_ptr<ControlPlane>(std::move(*plane));
  }
  LocalPlaneOptions lo;
  lo.store = opt_.store;
  lo.engine_tick = sc_.engine_tick;
  lo.history = devices_.size() <= Report::kHistoryDevices;
  if (opt_.network) {
    lo.server_dir = net_dir_ + "/server/artifacts";
    lo.enrollment_token = "sim-" + std::to_string(mix64(seed_ ^ stable_hash(net_dir_)));
    lo.content = content;
  }
  auto plane = LocalControlPlane::create(clock_, std::move(lo),
                                         [this](const EngineEvent& e) { on_engine_event(e); });
  if (!plane.ok()) return plane.error();
  return std::unique_ptr<ControlPlane>(std::move(*plane));
}

void Simulator::schedule_rollout() {
  clock_.schedule_at(clock_.now() + sc_.rollout_start_after, [this] {
    auto id = plane_->start_rollout(sc_.rollout);
    if (!id.ok()) {
      say("rollout could not start: " + id.error().to_string());
      rollout_over_ = true;
      return;
    }
    rollout_id_ = *id;
    rollout_started_ = clock_.now();
  });
}

std::string Simulator::payload(const Artifact& a) const {
  return artifact_payload(
      a, std::max<uint64_t>(1, std::min(a.size_bytes, opt_.network->payload_bytes)));
}

void Simulator::schedule_first_check_ins() {
  // Devices first appear spread over one poll interval (intermittent ones when their link
  // first comes up).
  for (uint32_t i = 0; i < devices_.size(); ++i) {
    const auto& link = sc_.connectivity[devices_[i].connectivity];
    const Timestamp start = clock_.now();  // the scenario's start (a remote run: after set-up)
    Timestamp first =
        start + Duration(static_cast<int64_t>(rng_.uniform() * link.poll_interval.count()));
    if (link.kind == LinkKind::kIntermittent) first = next_online(i, start);
    schedule(i, first, EventKind::kCheckIn);
    // Its own draws, so the share changes nothing else about the fleet.
    const uint64_t h = mix64(seed_ ^ (uint64_t{i} + 1) * 0x9fb21c651e98df25ULL);
    if (static_cast<double>(h >> 11) * 0x1.0p-53 < sc_.lost.share) {
      const double when = static_cast<double>(mix64(h) >> 11) * 0x1.0p-53;
      schedule(i, start + Duration(static_cast<int64_t>(when * sc_.lost.within.count())),
               EventKind::kLost);
    }
  }
}

// ---------------------------------------------------------------- device behaviour

void Simulator::handle(const Event& e) {
  SimDevice& dev = devices_[e.device];
  if (dev.dark) return;  // nothing it does reaches anyone any more
  const auto kind = static_cast<EventKind>(e.kind);
  if (kind == EventKind::kLost || kind == EventKind::kGoesDark) {
    // A goes_silent defect shows only while the device runs the version that carries it (in
    // a network run the agent's inventory is its own: there it shows regardless).
    bool runs = kind == EventKind::kLost || net_ != nullptr;
    if (!runs) {
      const UpdateOffer& o = offers_[dev.unhealthy_offer];
      for (const auto& c : inventories_[dev.inventory])
        runs = runs || (c.component == o.component && c.version == o.version);
    }
    if (runs) {
      dev.dark = true;
      ++dark_;
    }
    return;
  }
  if (net_) {
    if (static_cast<EventKind>(e.kind) == EventKind::kUnhealthy) {
      agent_unhealthy(e.device);
    } else {
      step_agent(e.device);
    }
    return;
  }
  switch (static_cast<EventKind>(e.kind)) {
    case EventKind::kCheckIn:
      if (draining_) {
        // The fleet is done: no new offers, but news held while offline still goes out.
        SimDevice& d = devices_[e.device];
        if (d.pending_report < 0) return;
        if (!online(e.device, clock_.now()) || !flush_report(e.device)) {
          schedule(e.device,
                   std::max(next_online(e.device, clock_.now()), clock_.now() + minutes(1)),
                   EventKind::kCheckIn);
        }
        return;
      }
      check_in(e.device);
      return;
    case EventKind::kPhaseDone:
      phase_done(e.device);
      return;
    case EventKind::kApply: {
      // Only the latest plan counts: a later answer may have moved or cancelled this one.
      const SimDevice& d = devices_[e.device];
      if (d.phase != Phase::kHolding || d.waiting || d.apply_at_ms != e.at_ms) return;
      // As the agent does: ask first when the link is up (the update may have been called
      // off); out of reach, the windows it has hold.
      if (online(e.device, clock_.now())) {
        hold_check_in(e.device);
      } else {
        begin_install(e.device);
      }
      return;
    }
    case EventKind::kUnhealthy: {
      // Only if it still runs the version that carries the defect.
      const SimDevice& d = devices_[e.device];
      const UpdateOffer& o = offers_[d.unhealthy_offer];
      for (const auto& c : inventories_[d.inventory]) {
        if (c.component == o.component && c.version == o.version && d.phase == Phase::kIdle) {
          deliver(e.device, protocol::Report::kUnhealthy, d.unhealthy_offer);
        }
      }
      return;
    }
    case EventKind::kLost:
    case EventKind::kGoesDark:
      return;  // handled above
  }
}

void Simulator::next_check_in(uint32_t dev) {
  const auto& link = sc_.connectivity[devices_[dev].connectivity];
  Timestamp at = clock_.now() + jittered(link.poll_interval);
  if (link.kind == LinkKind::kIntermittent && !online(dev, at)) at = next_online(dev, at);
  if (at != Timestamp::max()) schedule(dev, at, EventKind::kCheckIn);
}

namespace {

// What a twin device says with a report, as an agent would: the history shows it.
std::string_view twin_message(protocol::Report event, const UpdateOffer& offer) {
  switch (event) {
    case protocol::Report::kInstallFailed:
      return offer.revert ? "the revert could not be installed"
                          : "install failed (the scenario's install_fails defect)";
    case protocol::Report::kRolledBack:
      return "the trial boot failed; back on the previous slot (boot_fails defect)";
    case protocol::Report::kUnhealthy:
      return "health check failed after the commit (fails_after defect)";
    case protocol::Report::kWithdraw:
      return "no maintenance window fits the install: none in the coming week leaves the "
             "scenario's install_time + reboot_time";
    default:
      return {};
  }
}

}  // namespace

bool Simulator::flush_report(uint32_t dev) {
  SimDevice& d = devices_[dev];
  if (d.pending_report < 0) return true;
  const UpdateOffer& o = offers_[d.report_offer];
  ++reports_;
  const DeviceName name = name_of(dev);
  const auto event = static_cast<protocol::Report>(d.pending_report);
  // What the other slot keeps now: the server's next revert of it needs no download.
  std::string_view standby;
  if (event == protocol::Report::kSucceeded && d.kept >= 0) {
    for (const InstalledComponent& c : inventories_[d.kept])
      if (c.component == o.component) standby = c.version;
  }
  auto r = service_->report_status(
      {name.view(), o.rollout_id, o.version, event, twin_message(event, o), standby});
  if (!r.ok() && r.error().code == ErrorCode::kIo) return false;  // try again next time
  d.pending_report = -1;
  if (d.unhealthy_held) {
    d.unhealthy_held = false;
    d.pending_report = static_cast<int8_t>(protocol::Report::kUnhealthy);
    d.report_offer = d.unhealthy_offer;
    return flush_report(dev);
  }
  return true;
}

void Simulator::deliver(uint32_t dev, protocol::Report event, int32_t offer) {
  SimDevice& d = devices_[dev];
  if (event == protocol::Report::kUnhealthy && d.pending_report >= 0) {
    // The outcome it follows has not gone out yet: both are held, in order.
    d.unhealthy_held = true;
    if (online(dev, clock_.now())) flush_report(dev);
    return;
  }
  // Only the latest news matters: the table accepts an outcome without the steps before it.
  d.pending_report = static_cast<int8_t>(event);
  d.report_offer = offer;
  if (online(dev, clock_.now())) flush_report(dev);
}

void Simulator::check_in(uint32_t dev) {
  SimDevice& d = devices_[dev];
  if (d.phase == Phase::kHolding) {
    hold_check_in(dev);
    return;
  }
  if (d.phase != Phase::kIdle) return;
  if (!online(dev, clock_.now())) {
    const Timestamp at = next_online(dev, clock_.now());
    if (at != Timestamp::max()) schedule(dev, at, EventKind::kCheckIn);
    return;
  }
  flush_report(dev);
  ++checkins_;
  const DeviceName name = name_of(dev);
  auto r =
      service_->check_in({name.view(), inventories_[d.inventory], UpdateState::kIdle, {}, d.keeps});
  if (r.ok() && r->offer) {
    start_offer(dev, *r->offer);
    return;
  }
  if (!r.ok()) say("check-in of " + name.str() + " failed: " + r.error().to_string());
  next_check_in(dev);
}

void Simulator::start_offer(uint32_t dev, const UpdateOffer& offer) {
  const std::string key = offer.rollout_id + "|" + offer.version + (offer.revert ? "|revert" : "");
  auto [it, fresh] = offer_index_.emplace(key, static_cast<int32_t>(offers_.size()));
  if (fresh) offers_.push_back(offer);
  SimDevice& d = devices_[dev];
  d.offer = it->second;
  // A switch back boots what the other slot keeps, when it keeps that version.
  bool kept = false;
  if (offer.switch_back && d.keeps && d.kept >= 0) {
    for (const InstalledComponent& c : inventories_[d.kept])
      kept = kept || (c.component == offer.component && c.version == offer.version);
  }
  if (offer.switch_back && !kept && offer.size_bytes == 0) {
    // Nothing kept and nothing to download: the revert cannot happen.
    deliver(dev, protocol::Report::kInstallFailed, d.offer);
    next_check_in(dev);
    return;
  }
  d.switching = kept;
  d.phase = Phase::kDownloading;
  d.windowed = !offer.windows.empty();
  d.waiting = false;
  d.apply_at_ms = -1;
  d.bytes_left = kept ? 0 : offer.size_bytes;
  deliver(dev, protocol::Report::kDownloading, d.offer);
  continue_download(dev);
}

void Simulator::begin_install(uint32_t dev) {
  SimDevice& d = devices_[dev];
  const Timestamp now = clock_.now();
  d.phase = Phase::kInstalling;
  d.apply_at_ms = -1;
  if (!d.switching) d.kept = -1;  // the other slot is overwritten
  if (!in_window(dev, now)) ++windows_report_.installs_outside;
  deliver(dev, protocol::Report::kInstalling, d.offer);
  schedule(dev, now + sc_.install_time, EventKind::kPhaseDone);
}

void Simulator::hold_check_in(uint32_t dev) {
  SimDevice& d = devices_[dev];
  const Timestamp now = clock_.now();
  if (!online(dev, now)) {
    schedule(dev, next_online(dev, now), EventKind::kCheckIn);
    return;
  }
  flush_report(dev);
  ++checkins_;
  const DeviceName name = name_of(dev);
  const UpdateOffer& offer = offers_[d.offer];
  auto r = service_->check_in(
      {name.view(), inventories_[d.inventory], UpdateState::kReady, offer.rollout_id, d.keeps});
  if (!r.ok() || !r->hold) {
    if (!r.ok()) say("check-in of " + name.str() + " failed: " + r.error().to_string());
    next_check_in(dev);
    return;
  }
  const HoldAnswer& h = *r->hold;
  switch (h.action) {
    case HoldAnswer::Action::kDrop:
      d.phase = Phase::kIdle;
      d.apply_at_ms = -1;
      if (h.withdrawn) {
        tell_device(dev,
                    "dropped its image of " + offer.version + " before installing it: " + h.reason,
                    withdrawn_);
      }
      next_check_in(dev);
      return;
    case HoldAnswer::Action::kWait:
      d.waiting = true;
      d.apply_at_ms = -1;
      break;
    case HoldAnswer::Action::kApply: {
      d.waiting = false;
      // The first window that still has room for the install and the reboot.
      const Duration span = sc_.install_time + sc_.reboot_time;
      Timestamp at = h.windows.empty() ? now : Timestamp::max();
      for (const TimeRange& w : h.windows) {
        const Timestamp start = std::max(now, w.from);
        if (w.until - start < span) continue;
        // The commit needs the server: a device that knows its link will be down from the
        // end of the reboot until the window closes waits for a window where it is not.
        if (link_open_at_or_after(dev, start + span) >= w.until) continue;
        at = start;
        break;
      }
      if (at == now) {
        begin_install(dev);
        return;
      }
      if (at == Timestamp::max() && h.windows.size() < kMaxOfferWindows) {
        // None of the coming week's windows leaves room: as the agent does, it drops the
        // image and tells the server, which stops waiting for it.
        d.phase = Phase::kIdle;
        d.apply_at_ms = -1;
        tell_device(dev, "dropped its image of " + offer.version + ": no window fits the install",
                    withdrawn_);
        deliver(dev, protocol::Report::kWithdraw, d.offer);
        next_check_in(dev);
        return;
      }
      if (at == Timestamp::max()) {
        d.apply_at_ms = -1;  // none in sight: ask again at the next poll
        break;
      }
      if (d.apply_at_ms < 0) ++windows_report_.held;
      // Nothing to ask until then: the server's next word matters at the window.
      d.apply_at_ms = at.time_since_epoch().count();
      schedule(dev, at, EventKind::kApply);
      return;
    }
  }
  next_check_in(dev);
}

void Simulator::continue_download(uint32_t dev) {
  SimDevice& d = devices_[dev];
  const Timestamp now = clock_.now();
  if (!online(dev, now)) {
    schedule(dev, next_online(dev, now), EventKind::kPhaseDone);
    return;
  }
  const double bps = static_cast<double>(sc_.connectivity[d.connectivity].bandwidth_bps);
  const auto need =
      Duration(static_cast<int64_t>(std::ceil(static_cast<double>(d.bytes_left) * 8000.0 / bps)));
  const Timestamp until = online_until(dev, now);
  if (until == Timestamp::max() || now + need <= until) {
    d.bytes_left = 0;
    schedule(dev, now + need, EventKind::kPhaseDone);
    return;
  }
  // The link drops first: keep what arrived and resume at the next window (HTTP Range).
  const auto got = static_cast<uint64_t>(static_cast<double>((until - now).count()) * bps / 8000.0);
  d.bytes_left -= std::min(got, d.bytes_left - 1);
  schedule(dev, next_online(dev, until), EventKind::kPhaseDone);
}

bool Simulator::defect(uint32_t dev, const UpdateOffer& offer, DefectKind kind, Duration* after) {
  if (opt_.preflight || offer.revert) return false;
  const SimDevice& d = devices_[dev];
  for (size_t k = 0; k < sc_.defects.size(); ++k) {
    const DefectSpec& spec = sc_.defects[k];
    if (spec.kind != kind) continue;
    if (!spec.hardware_revision.empty() &&
        spec.hardware_revision != revisions_[d.hardware_revision])
      continue;
    if (!spec.connectivity.empty() && spec.connectivity != sc_.connectivity[d.connectivity].name)
      continue;
    if (!spec.time_zone.empty() && spec.time_zone != sites_[d.site].time_zone) continue;
    if (!spec.site_prefix.empty() && site_group_[d.site] != spec.site_prefix) continue;
    if (!(spec.version.empty() ? offer.version == sc_.rollout.artifact_version
                               : offer.version == spec.version)) {
      continue;
    }
    // One draw per (device, defect): independent of event order.
    const uint64_t h =
        mix64(seed_ ^ mix64(stable_hash(name_of(dev).view()) ^ (k + 1) * 0x9e3779b97f4a7c15ULL));
    const double u = static_cast<double>(h >> 11) * 0x1.0p-53;
    if (u < spec.probability) {
      if (after != nullptr) *after = spec.after;
      return true;
    }
  }
  return false;
}

void Simulator::phase_done(uint32_t dev) {
  SimDevice& d = devices_[dev];
  const UpdateOffer& offer = offers_[d.offer];
  const Timestamp now = clock_.now();
  switch (d.phase) {
    case Phase::kDownloading:
      if (d.bytes_left > 0) {
        continue_download(dev);
        return;
      }
      if (d.windowed) {
        // Verified: it waits for its window (and asks the server whether the update stands).
        d.phase = Phase::kHolding;
        hold_check_in(dev);
        return;
      }
      begin_install(dev);
      return;
    case Phase::kInstalling:
      if (defect(dev, offer, DefectKind::kInstallFails)) {
        d.phase = Phase::kIdle;
        d.switching = false;
        deliver(dev, protocol::Report::kInstallFailed, d.offer);
        next_check_in(dev);
        return;
      }
      d.phase = Phase::kRebooting;
      if (!offer.revert) d.installed_new = true;
      if (!in_window(dev, now)) ++windows_report_.reboots_outside;
      deliver(dev, protocol::Report::kRebooting, d.offer);
      schedule(dev, now + sc_.reboot_time, EventKind::kPhaseDone);
      return;
    case Phase::kRebooting: {
      if (defect(dev, offer, DefectKind::kBootFails)) {
        // The trial boot fails: the bootloader falls back to the previous slot.
        d.phase = Phase::kRollingBack;
        if (!in_window(dev, now)) ++windows_report_.reboots_outside;
        schedule(dev, now + sc_.reboot_time, EventKind::kPhaseDone);
        return;
      }
      if (!online(dev, now)) {
        // The new image commits only once it reaches the server (the agent's own check).
        schedule(dev, next_online(dev, now), EventKind::kPhaseDone);
        return;
      }
      Inventory now_running = inventories_[d.inventory];
      auto it = std::lower_bound(
          now_running.begin(), now_running.end(), offer.component,
          [](const InstalledComponent& c, const std::string& n) { return c.component < n; });
      if (it != now_running.end() && it->component == offer.component) {
        it->version = offer.version;
      } else {
        now_running.insert(it, {offer.component, offer.version});
      }
      // The slot it left keeps what it ran.
      d.kept = d.keeps ? static_cast<int32_t>(d.inventory) : -1;
      d.switching = false;
      d.inventory = intern(std::move(now_running));
      d.phase = Phase::kIdle;
      if (!in_window(dev, now)) ++windows_report_.commits_outside;
      if (!offer.revert && offer.rollout_id == rollout_id_) {
        d.committed_at_ms = (now - rollout_started_).count();
      } else {
        if (offer.revert)
          tell_device(dev, "back on " + offer.version + " after the fleet rollback", reverts_);
        d.committed_at_ms = -1;
      }
      deliver(dev, protocol::Report::kSucceeded, d.offer);
      Duration after{0};
      if (defect(dev, offer, DefectKind::kFailsAfter, &after)) {
        d.unhealthy_offer = d.offer;
        schedule(dev, now + after, EventKind::kUnhealthy);
      }
      if (defect(dev, offer, DefectKind::kGoesSilent, &after)) {
        d.unhealthy_offer = d.offer;
        schedule(dev, now + after, EventKind::kGoesDark);
      }
      next_check_in(dev);
      return;
    }
    case Phase::kRollingBack:
      d.phase = Phase::kIdle;
      if (d.switching) d.kept = -1;  // the kept image did not come up
      d.switching = false;
      tell_device(dev, "trial boot of " + offer.version + " failed; back on the previous slot",
                  self_rollbacks_);
      deliver(dev, protocol::Report::kRolledBack, d.offer);
      next_check_in(dev);
      return;
    case Phase::kIdle:
    case Phase::kHolding:  // its install starts with a kApply event
      return;
  }
}

// ---------------------------------------------------------------- the loop

Result<Report> Simulator::run() {
  const auto wall_start = std::chrono::steady_clock::now();
  DROVER_TRY(set_up());
  const Timestamp horizon = clock_.now() + sc_.horizon;  // the start, after a remote set-up
  Timestamp stop = horizon;
  bool drained = false;
  int64_t watches = 0;
  const Duration watch_every = plane_->watch_every();
  std::function<void()> watch = [&] {
    check_done();
    // While draining, stop as soon as no device is mid-update or holding a report.
    if (draining_ && ++watches % plane_->watches_per_drain_check() == 0) {
      drained = std::none_of(devices_.begin(), devices_.end(), [](const SimDevice& d) {
        return d.phase != Phase::kIdle || d.pending_report >= 0;
      });
    }
    clock_.schedule_after(watch_every, watch);
  };
  clock_.schedule_after(watch_every, watch);

  while (true) {
    if (!draining_ && (rollout_over_ || clock_.now() >= horizon)) {
      draining_ = true;
      stop = clock_.now() + sc_.drain;
    }
    const Timestamp next_event =
        queue_.empty() ? Timestamp::max() : Timestamp(Duration(queue_.top().at_ms));
    const Timestamp next_timer = clock_.next_due();
    const Timestamp next = std::min(next_event, next_timer);
    if (next == Timestamp::max() || next > stop) break;
    if (draining_ && (queue_.empty() || drained)) break;
    plane_->keep_pace(next);  // a server elsewhere: the pace of its clock
    if (next_timer <= next_event) {
      clock_.run_next();
      flush_engine_lines();
      continue;
    }
    const Event e = queue_.top();
    if (auto batch = queue_.upcoming(kWarmBatch); !net_ && !batch.empty()) warm(batch);
    queue_.pop();
    clock_.advance_to(Timestamp(Duration(e.at_ms)));
    handle(e);
    flush_engine_lines();
  }
  const double wall =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
  check_done();
  if (self_rollbacks_ > 0) {
    say("[devices] " + std::to_string(self_rollbacks_) +
        " failed their trial boot and fell back by themselves");
  }
  if (reverts_ > 0)
    say("[devices] " + std::to_string(reverts_) + " were sent back by the fleet rollback");
  if (net_ && net_->downloads_cut() > 0) {
    say("[network] " + std::to_string(net_->downloads_cut()) +
        " downloads were cut when a link went down, and resumed with Range requests");
  }
  return finish(wall);
}

// The next events' devices are known: fetch their records (the twin's and the service's)
// into the cache together rather than one cache miss after another.
void Simulator::warm(std::span<const Event> events) {
  thread_local std::vector<DeviceName> names;
  thread_local std::vector<std::string_view> ids;
  names.clear();
  ids.clear();
  for (const Event& e : events) {
    __builtin_prefetch(&devices_[e.device]);
    names.push_back(name_of(e.device));
  }
  for (const DeviceName& n : names) ids.push_back(n.view());
  service_->warm(ids);
}

}  // namespace detail

// Measured 2026-11-30 at 2476c8b: peak RSS 219,880 KiB at 100,000 devices and 1,770,660 KiB
// at 1,000,000, i.e. 1,764 bytes per device and about 46 MiB besides.
constexpr uint64_t kMeasuredBytesPerDevice = 1764;

uint64_t estimate_memory_bytes(uint32_t devices) {
  // Peak resident size of `drover sim scenarios/million.json --devices N`, measured at
  // 100,000 and 1,000,000 devices (docs/scenarios.md, "Limits"), with a quarter added for
  // what other scenarios (more sites, longer inventories) may need.
  constexpr uint64_t kFixed = 64ull << 20;
  constexpr uint64_t kPerDevice = kMeasuredBytesPerDevice + kMeasuredBytesPerDevice / 4;
  return kFixed + kPerDevice * devices;
}

Result<Report> run_simulation(const Scenario& scenario, const SimOptions& options) {
  if (options.devices && *options.devices == 0)
    return invalid_argument("--devices must be at least 1");
  const uint32_t devices = options.devices.value_or(scenario.devices);
  if (options.memory_available && estimate_memory_bytes(devices) > *options.memory_available) {
    auto gib = [](uint64_t b) {
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.1f GiB", static_cast<double>(b) / (1ull << 30));
      return std::string(buf);
    };
    return Error{ErrorCode::kFailedPrecondition,
                 "a fleet of " + std::to_string(devices) + " devices needs about " +
                     gib(estimate_memory_bytes(devices)) + " on the twin, and this machine has " +
                     gib(*options.memory_available) +
                     " available: run fewer devices (--devices) or on a larger machine"};
  }
  if (options.network && options.preflight)
    return invalid_argument("a pre-flight runs on the twin, not over the network");
  if (options.network && !options.network->server.empty()) {
    // The server elsewhere runs on its clock (the wall clock unless one is given): the
    // scenario starts now.
    std::optional<SystemClock> wall;
    Clock* server_clock = options.network->server_clock;
    if (server_clock == nullptr) server_clock = &wall.emplace();
    SimOptions remote = options;
    remote.network->server_clock = server_clock;
    Scenario now = scenario;
    now.start = std::chrono::floor<std::chrono::seconds>(server_clock->now());
    detail::Simulator sim(now, remote);
    return sim.run();
  }
  detail::Simulator sim(scenario, options);
  return sim.run();
}

}  // namespace drover::sim