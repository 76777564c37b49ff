#include "sim/device_model.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <optional>
#include <string_view>

namespace drover::sim {
namespace {

using R = protocol::Report;

// A timed phase of an update: what the device reports as it enters, how long it lasts, the
// window tally it adds to when it starts outside its window, the defect that may strike at
// its end, and where it goes then, failed or passed. kIdle as a destination ends the update
// with the report it sends.
struct PhaseRule {
  std::optional<R> entry_report;
  Duration Scenario::*lasts = nullptr;  // nullptr: not a fixed time (bytes, a window)
  uint32_t WindowReport::*outside = nullptr;
  std::optional<DefectKind> fails_by;
  Phase failed = Phase::kIdle;
  std::optional<R> failed_report;
  Phase passed = Phase::kIdle;
  std::optional<R> passed_report;
};

// Indexed by Phase. kIdle and kHolding are not timed: a check-in or a window ends them.
constexpr std::array<PhaseRule, 6> kPhaseRules{{
    /* kIdle */ {},
    // Its bytes decide how long (continued after every link drop); then it installs, or
    // holds the image when the offer came with windows.
    /* kDownloading */ {R::kDownloading, nullptr, nullptr, {}, {}, {}, Phase::kInstalling, {}},
    /* kHolding */ {},
    /* kInstalling */
    {R::kInstalling,
     &Scenario::install_time,
     &WindowReport::installs_outside,
     DefectKind::kInstallFails,
     Phase::kIdle,
     R::kInstallFailed,
     Phase::kRebooting,
     {}},
    // The trial boot; passed, the image commits once the device reaches the server.
    /* kRebooting */
    {R::kRebooting,
     &Scenario::reboot_time,
     &WindowReport::reboots_outside,
     DefectKind::kBootFails,
     Phase::kRollingBack,
     {},
     Phase::kIdle,
     R::kSucceeded},
    // The bootloader falls back to the previous slot.
    /* kRollingBack */
    {{},
     &Scenario::reboot_time,
     &WindowReport::reboots_outside,
     {},
     {},
     {},
     Phase::kIdle,
     R::kRolledBack},
}};

// A rule that can end the update (kIdle as a destination) says what the device reports then.
constexpr bool every_ending_reports() {
  for (const PhaseRule& r : kPhaseRules) {
    if (r.fails_by && r.failed == Phase::kIdle && !r.failed_report) return false;
    if (r.lasts != nullptr && r.passed == Phase::kIdle && !r.passed_report) return false;
  }
  return true;
}
static_assert(every_ending_reports());
static_assert(kPhaseRules.size() == static_cast<size_t>(Phase::kRollingBack) + 1);

const PhaseRule& rule(Phase p) { return kPhaseRules[static_cast<size_t>(p)]; }

// What a twin device says with a report, as an agent would: the history shows it.
std::string_view twin_message(R event, const UpdateOffer& offer) {
  switch (event) {
    case R::kInstallFailed:
      return offer.revert ? "the revert could not be installed"
                          : "install failed (the scenario's install_fails defect)";
    case R::kRolledBack:
      return "the trial boot failed; back on the previous slot (boot_fails defect)";
    case R::kUnhealthy:
      return "health check failed after the commit (fails_after defect)";
    case R::kWithdraw:
      return "no maintenance window fits the install: none in the coming week leaves the "
             "scenario's install_time + reboot_time";
    default:
      return {};
  }
}

}  // namespace

DeviceModel::DeviceModel(FleetWorld& world, DeviceService& service, ManualClock& clock,
                         Narrator& narrator, RunState& run)
    : world_(world),
      sc_(world.scenario()),
      service_(service),
      clock_(clock),
      narrator_(narrator),
      run_(run) {}

void DeviceModel::handle(const Event& e) {
  const uint32_t dev = e.device;
  SimDevice& d = world_.device(dev);
  switch (static_cast<EventKind>(e.kind)) {
    case EventKind::kCheckIn:
      if (run_.draining) {
        // The fleet is done: no new offers, but news held while offline still goes out.
        if (d.pending_report < 0) return;
        if (!world_.online(dev, clock_.now()) || !flush_report(dev)) {
          world_.schedule(
              dev, std::max(world_.next_online(dev, clock_.now()), clock_.now() + minutes(1)),
              EventKind::kCheckIn);
        }
        return;
      }
      check_in(dev);
      return;
    case EventKind::kPhaseDone:
      phase_done(dev);
      return;
    case EventKind::kApply:
      // Only the latest plan counts: a later answer may have moved or cancelled this one.
      if (d.phase != Phase::kHolding || d.waiting || d.apply_at_ms != e.at_ms) return;
      // As the agent does: ask first when the link is up (the update may have been called
      // off); out of reach, the windows it has hold.
      if (world_.online(dev, clock_.now())) {
        hold_check_in(dev);
      } else {
        enter(dev, Phase::kInstalling);
      }
      return;
    case EventKind::kUnhealthy: {
      // Only if it still runs the version that carries the defect.
      const UpdateOffer& o = offers_[d.unhealthy_offer];
      if (d.phase == Phase::kIdle && world_.inventory_runs(d.inventory, o.component, o.version))
        deliver(dev, R::kUnhealthy, d.unhealthy_offer);
      return;
    }
    case EventKind::kGoesDark: {
      // A goes_silent defect shows only while the device runs the version that carries it.
      const UpdateOffer& o = offers_[d.unhealthy_offer];
      if (world_.inventory_runs(d.inventory, o.component, o.version)) world_.go_dark(dev);
      return;
    }
    case EventKind::kLost:
      return;  // the run's
  }
}

// The next events' devices are known: fetch their records (the twin's and the service's)
// into the cache together rather than one cache miss after another.
void DeviceModel::warm(std::span<const Event> events) {
  thread_local std::vector<DeviceName> names;
  thread_local std::vector<std::string_view> ids;
  names.clear();
  ids.clear();
  for (const Event& e : events) {
    __builtin_prefetch(&world_.device(e.device));
    names.push_back(world_.name_of(e.device));
  }
  for (const DeviceName& n : names) ids.push_back(n.view());
  service_.warm(ids);
}

// ---------------------------------------------------------------- the conversation

bool DeviceModel::waits_for_link(uint32_t dev, EventKind then) {
  const Timestamp now = clock_.now();
  if (world_.online(dev, now)) return false;
  world_.schedule(dev, world_.next_online(dev, now), then);
  return true;
}

void DeviceModel::next_check_in(uint32_t dev) {
  const ConnectivitySpec& link = world_.link(dev);
  Timestamp at = clock_.now() + world_.jittered(dev, link.poll_interval);
  if (link.kind == LinkKind::kIntermittent && !world_.online(dev, at))
    at = world_.next_online(dev, at);
  world_.schedule(dev, at, EventKind::kCheckIn);
}

bool DeviceModel::flush_report(uint32_t dev) {
  SimDevice& d = world_.device(dev);
  if (d.pending_report < 0) return true;
  const UpdateOffer& o = offers_[d.report_offer];
  ++reports_;
  const DeviceName name = world_.name_of(dev);
  const auto event = static_cast<R>(d.pending_report);
  // What the other slot keeps now: the server's next revert of it needs no download.
  std::string_view standby;
  if (event == R::kSucceeded && d.kept >= 0) {
    for (const InstalledComponent& c : world_.inventory(d.kept))
      if (c.component == o.component) standby = c.version;
  }
  auto r = service_.report_status(
      {name.view(), o.rollout_id, o.version, event, twin_message(event, o), standby});
  if (!r.ok() && r.error().code == ErrorCode::kIo) return false;  // try again next time
  d.pending_report = -1;
  if (d.unhealthy_held) {
    d.unhealthy_held = false;
    d.pending_report = static_cast<int8_t>(R::kUnhealthy);
    d.report_offer = d.unhealthy_offer;
    return flush_report(dev);
  }
  return true;
}

void DeviceModel::deliver(uint32_t dev, R event, int32_t offer) {
  SimDevice& d = world_.device(dev);
  if (event == R::kUnhealthy && d.pending_report >= 0) {
    // The outcome it follows has not gone out yet: both are held, in order.
    d.unhealthy_held = true;
  } else {
    // Only the latest news matters: the table accepts an outcome without the steps before it.
    d.pending_report = static_cast<int8_t>(event);
    d.report_offer = offer;
  }
  if (world_.online(dev, clock_.now())) flush_report(dev);
}

void DeviceModel::check_in(uint32_t dev) {
  SimDevice& d = world_.device(dev);
  if (d.phase == Phase::kHolding) {
    hold_check_in(dev);
    return;
  }
  if (d.phase != Phase::kIdle || waits_for_link(dev, EventKind::kCheckIn)) return;
  flush_report(dev);
  ++checkins_;
  const DeviceName name = world_.name_of(dev);
  auto r = service_.check_in(
      {name.view(), world_.inventory(d.inventory), UpdateState::kIdle, {}, d.keeps});
  if (r.ok() && r->offer) {
    start_offer(dev, *r->offer);
    return;
  }
  if (!r.ok()) narrator_.say("check-in of " + name.str() + " failed: " + r.error().to_string());
  next_check_in(dev);
}

void DeviceModel::start_offer(uint32_t dev, const UpdateOffer& offer) {
  const std::string key = offer.rollout_id + "|" + offer.version + (offer.revert ? "|revert" : "");
  auto [it, fresh] = offer_index_.emplace(key, static_cast<int32_t>(offers_.size()));
  if (fresh) offers_.push_back(offer);
  SimDevice& d = world_.device(dev);
  d.offer = it->second;
  // A switch back boots what the other slot keeps, when it keeps that version.
  const bool kept =
      offer.switch_back && d.keeps && d.kept >= 0 &&
      world_.inventory_runs(static_cast<uint32_t>(d.kept), offer.component, offer.version);
  if (offer.switch_back && !kept && offer.size_bytes == 0) {
    settle(dev, R::kInstallFailed);  // nothing kept and nothing to download: no revert
    return;
  }
  d.switching = kept;
  d.windowed = !offer.windows.empty();
  d.waiting = false;
  d.apply_at_ms = -1;
  d.bytes_left = kept ? 0 : offer.size_bytes;
  enter(dev, Phase::kDownloading);
  continue_download(dev);
}

void DeviceModel::hold_check_in(uint32_t dev) {
  SimDevice& d = world_.device(dev);
  const Timestamp now = clock_.now();
  if (waits_for_link(dev, EventKind::kCheckIn)) return;
  flush_report(dev);
  ++checkins_;
  const DeviceName name = world_.name_of(dev);
  const UpdateOffer& offer = offers_[d.offer];
  auto r = service_.check_in(
      {name.view(), world_.inventory(d.inventory), UpdateState::kReady, offer.rollout_id, d.keeps});
  if (!r.ok() || !r->hold) {
    if (!r.ok()) narrator_.say("check-in of " + name.str() + " failed: " + r.error().to_string());
    next_check_in(dev);
    return;
  }
  const HoldAnswer& h = *r->hold;
  switch (h.action) {
    case HoldAnswer::Action::kDrop:
      d.phase = Phase::kIdle;
      d.apply_at_ms = -1;
      if (h.withdrawn) {
        narrator_.tell_device(
            world_, dev,
            "dropped its image of " + offer.version + " before installing it: " + h.reason,
            run_.withdrawn);
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
        if (world_.link_up_at(dev, start + span) >= w.until) continue;
        at = start;
        break;
      }
      if (at == now) {
        enter(dev, Phase::kInstalling);
        return;
      }
      if (at == Timestamp::max() && h.windows.size() < kMaxOfferWindows) {
        // None of the coming week's windows leaves room: as the agent does, it drops the
        // image and tells the server, which stops waiting for it.
        d.phase = Phase::kIdle;
        d.apply_at_ms = -1;
        narrator_.tell_device(
            world_, dev, "dropped its image of " + offer.version + ": no window fits the install",
            run_.withdrawn);
        deliver(dev, R::kWithdraw, d.offer);
        next_check_in(dev);
        return;
      }
      if (at == Timestamp::max()) {
        d.apply_at_ms = -1;  // none in sight: ask again at the next poll
        break;
      }
      if (d.apply_at_ms < 0) ++run_.windows.held;
      // Nothing to ask until then: the server's next word matters at the window.
      d.apply_at_ms = at.time_since_epoch().count();
      world_.schedule(dev, at, EventKind::kApply);
      return;
    }
  }
  next_check_in(dev);
}

void DeviceModel::continue_download(uint32_t dev) {
  SimDevice& d = world_.device(dev);
  const Timestamp now = clock_.now();
  if (waits_for_link(dev, EventKind::kPhaseDone)) return;
  const auto bps = static_cast<double>(world_.link(dev).bandwidth_bps);
  const auto need =
      Duration(static_cast<int64_t>(std::ceil(static_cast<double>(d.bytes_left) * 8000.0 / bps)));
  const Timestamp until = world_.online_until(dev, now);
  if (until == Timestamp::max() || now + need <= until) {
    d.bytes_left = 0;
    world_.schedule(dev, now + need, EventKind::kPhaseDone);
    return;
  }
  // The link drops first: keep what arrived and resume at the next window (HTTP Range).
  const auto got = static_cast<uint64_t>(static_cast<double>((until - now).count()) * bps / 8000.0);
  d.bytes_left -= std::min(got, d.bytes_left - 1);
  world_.schedule(dev, world_.next_online(dev, until), EventKind::kPhaseDone);
}

// ---------------------------------------------------------------- the timed phases

void DeviceModel::enter(uint32_t dev, Phase phase) {
  SimDevice& d = world_.device(dev);
  const Timestamp now = clock_.now();
  d.phase = phase;
  if (phase == Phase::kInstalling) {
    d.apply_at_ms = -1;
    if (!d.switching) d.kept = -1;  // the other slot is overwritten
  }
  if (phase == Phase::kRebooting && !offers_[d.offer].revert) d.installed_new = true;
  const PhaseRule& r = rule(phase);
  if (r.outside != nullptr && !world_.in_window(dev, now)) ++(run_.windows.*r.outside);
  if (r.entry_report) deliver(dev, *r.entry_report, d.offer);
  if (r.lasts != nullptr) world_.schedule(dev, now + sc_.*r.lasts, EventKind::kPhaseDone);
}

void DeviceModel::phase_done(uint32_t dev) {
  SimDevice& d = world_.device(dev);
  const UpdateOffer& offer = offers_[d.offer];
  const Timestamp now = clock_.now();
  switch (d.phase) {
    case Phase::kIdle:
    case Phase::kHolding:  // its install starts with a kApply event
      return;
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
      break;
    case Phase::kInstalling:
    case Phase::kRebooting:
    case Phase::kRollingBack:
      break;
  }
  const PhaseRule& r = rule(d.phase);
  const bool failed = r.fails_by && world_.defect(dev, offer, *r.fails_by);
  const Phase next = failed ? r.failed : r.passed;
  if (next != Phase::kIdle) {
    enter(dev, next);
  } else if (!failed && d.phase == Phase::kRebooting && !world_.online(dev, now)) {
    // The new image commits only once it reaches the server (the agent's own check).
    world_.schedule(dev, world_.next_online(dev, now), EventKind::kPhaseDone);
  } else {
    settle(dev, *(failed ? r.failed_report : r.passed_report));
  }
}

void DeviceModel::settle(uint32_t dev, R report) {
  if (report == R::kSucceeded) {
    commit(dev);
    return;
  }
  SimDevice& d = world_.device(dev);
  d.phase = Phase::kIdle;
  if (report == R::kRolledBack) {
    if (d.switching) d.kept = -1;  // the kept image did not come up
    narrator_.tell_device(
        world_, dev,
        "trial boot of " + offers_[d.offer].version + " failed; back on the previous slot",
        run_.self_rollbacks);
  }
  d.switching = false;
  deliver(dev, report, d.offer);
  next_check_in(dev);
}

void DeviceModel::commit(uint32_t dev) {
  SimDevice& d = world_.device(dev);
  const UpdateOffer& offer = offers_[d.offer];
  const Timestamp now = clock_.now();
  Inventory now_running = world_.inventory(d.inventory);
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
  d.inventory = world_.intern(std::move(now_running));
  d.phase = Phase::kIdle;
  if (!world_.in_window(dev, now)) ++run_.windows.commits_outside;
  if (!offer.revert && offer.rollout_id == run_.rollout_id) {
    d.committed_at_ms = (now - run_.rollout_started).count();
  } else {
    if (offer.revert) {
      narrator_.tell_device(world_, dev, "back on " + offer.version + " after the fleet rollback",
                            run_.reverts);
    }
    d.committed_at_ms = -1;
  }
  deliver(dev, R::kSucceeded, d.offer);
  Duration after{0};
  if (world_.defect(dev, offer, DefectKind::kFailsAfter, &after)) {
    d.unhealthy_offer = d.offer;
    world_.schedule(dev, now + after, EventKind::kUnhealthy);
  }
  if (world_.defect(dev, offer, DefectKind::kGoesSilent, &after)) {
    d.unhealthy_offer = d.offer;
    world_.schedule(dev, now + after, EventKind::kGoesDark);
  }
  next_check_in(dev);
}

}  // namespace drover::sim
