#include "sim/field_twin.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <queue>
#include <set>
#include <unordered_set>

#include "agent/link_watchdog.h"
#include "base/memory_file_system.h"
#include "base/random.h"
#include "base/units.h"
#include "fleet/command_queue.h"
#include "health/remediator.h"
#include "sim/local_plane.h"
#include "telemetry/telemetry_service.h"

namespace drover::sim {
namespace {

constexpr int64_t kStartMs = 1'780'272'000'000;  // 2026-06-01T00:00:00Z
constexpr Timestamp kNever = Timestamp::max();
constexpr Duration kLostAfter = hours(72);
constexpr Duration kVisitAfter = hours(int64_t{7} * 24);  // from when the device went quiet
constexpr Duration kMonth = hours(int64_t{30} * 24);
constexpr Duration kLongestOutage = hours(36);
constexpr double kOutageSigma = 1.2;
const char* const kCollector = "collector";

struct Unit {
  std::string id;
  bool faulty = false;
  FieldFault fault = FieldFault::kCollectorHung;
  bool stubborn = false;  // a hang a restart does not cure; a disk a reboot does not free
  Timestamp fault_at{};
  Timestamp stopped = kNever;        // no data produced since
  Timestamp offline_since = kNever;  // not heard from since
  Timestamp outage_end = kNever;     // a transient outage ends then
  Timestamp down_since = kNever;     // no data delivered since (stopped or offline)
  uint32_t epoch = 0;                // changes whenever the device goes down or comes up
  Duration phase{0};                 // of its check-ins and batches
  Timestamp booted{};                // its agent's run began then (it tried the server at once)
  Timestamp link_up{};               // its link last came back then
  Timestamp stuck_since = kNever;    // an update's download has got nowhere since
  bool watched = false;              // a look of its link watchdog is scheduled
};

// What the devices' link watchdogs run: the reset of the modem of the device being looked
// at, done to its model.
class TwinModems final : public agent::CommandRunner {
 public:
  explicit TwinModems(std::function<void()> reset) : reset_(std::move(reset)) {}
  Result<agent::CommandResult> run(const std::vector<std::string>&, Duration,
                                   const agent::Environment&) override {
    reset_();
    agent::CommandResult r;
    r.exit_code = 0;
    return r;
  }

 private:
  std::function<void()> reset_;
};

// How fresh each device's telemetry is, from its model: what the telemetry service would
// say from the batches (a batch every report_every while it produces data and is online,
// a check-in every check_in_every while online; an outage's backlog arrives when the link
// comes back). The whole fleet is one cohort: the rules ask for nothing else.
class FieldFreshness final : public telemetry::FreshnessSource {
 public:
  FieldFreshness(const std::vector<Unit>& units, const Clock& clock, Timestamp start,
                 const FieldTwinOptions& o)
      : units_(units), clock_(clock), start_(start), o_(o) {
    contract_.report_every = o.report_every;
    contract_.late_after = minutes(5);
  }

  Result<std::vector<telemetry::DeviceFreshness>> freshness(
      const telemetry::Cohort&) const override {
    const Timestamp now = clock_.now();
    std::vector<telemetry::DeviceFreshness> out(units_.size());
    for (size_t i = 0; i < units_.size(); ++i) {
      const Unit& u = units_[i];
      telemetry::DeviceFreshness& f = out[i];
      f.device = u.id;
      f.device_type = "soil-sensor";
      f.contract = contract_;
      Duration data_age{0}, contact_age{0};
      if (u.offline_since == kNever) {
        const Duration since_check_in = since_last(now, u.phase, o_.check_in_every);
        if (u.stopped == kNever) {
          data_age = since_last(now, u.phase, o_.report_every);
          contact_age = std::min(data_age, since_check_in);
        } else {
          data_age = now - u.stopped;
          contact_age = since_check_in;
        }
      } else {
        contact_age = now - u.offline_since;
        data_age = now - std::min(u.stopped, u.offline_since);
      }
      f.data_age_s = static_cast<double>(data_age.count()) / 1000;
      f.contact_age_s = static_cast<double>(contact_age.count()) / 1000;
      f.freshness = judge(contract_, data_age, contact_age);
    }
    return out;
  }

 private:
  // Time since the last multiple of `every` after start + phase.
  Duration since_last(Timestamp now, Duration phase, Duration every) const {
    const int64_t x = (now - start_ - phase).count() % every.count();
    return Duration(x < 0 ? x + every.count() : x);
  }

  const std::vector<Unit>& units_;
  const Clock& clock_;
  Timestamp start_;
  const FieldTwinOptions& o_;
  TelemetryContract contract_;
};

// A standard normal draw (Box-Muller).
double normal(Rng& rng) {
  constexpr double kTwoPi = 6.283185307179586;
  const double u = std::max(rng.uniform(), 1e-300);
  return std::sqrt(-2 * std::log(u)) * std::cos(kTwoPi * rng.uniform());
}

enum class EventKind : uint8_t {
  kFault,
  kOutageStart,
  kOutageEnd,
  kLostCheck,
  kVisit,
  kWatchdog,
  kUpdateStuck
};
struct Event {
  Timestamp at{};
  uint32_t unit = 0;
  EventKind kind = EventKind::kFault;
  uint32_t epoch = 0;
  bool operator>(const Event& e) const { return at > e.at; }
};

Status check(const FieldTwinOptions& o) {
  if (o.devices == 0 || o.days == 0)
    return invalid_argument("the field twin needs devices and days");
  for (double r : o.faults_per_month) {
    if (!(r >= 0)) return invalid_argument("a fault rate cannot be below zero");
  }
  if (!(o.outages_per_month >= 0)) return invalid_argument("an outage rate cannot be below zero");
  if (!(o.updates_stuck_per_month >= 0))
    return invalid_argument("a stuck-update rate cannot be below zero");
  for (double s : {o.restart_cures, o.reboot_frees_disk, o.modem_reset_cures}) {
    if (!(s >= 0 && s <= 1)) return invalid_argument("a share must be within [0, 1]");
  }
  if (o.report_every <= Duration(0) || o.check_in_every <= Duration(0) || o.tick <= Duration(0) ||
      o.outage_median <= Duration(0)) {
    return invalid_argument("the field twin's periods must be positive");
  }
  return ok_status();
}

}  // namespace

Result<FieldTwinReport> run_field_twin(const FieldTwinOptions& o) {
  DROVER_TRY(check(o));
  const auto wall_start = std::chrono::steady_clock::now();
  ManualClock clock{Timestamp(Duration(kStartMs))};
  LocalPlaneOptions plane_options;
  plane_options.store = o.store;
  plane_options.engine_tick = hours(1);  // no rollout runs: the engine has nothing to do
  plane_options.history = false;
  auto plane = LocalControlPlane::create(clock, plane_options, [](const EngineEvent&) {});
  if (!plane.ok()) return plane.error();

  Rng rng(o.seed);
  const Timestamp start = clock.now();
  const Timestamp end = start + hours(int64_t{24} * o.days);
  std::vector<Unit> units(o.devices);
  std::vector<Device> fleet;
  fleet.reserve(o.devices);
  char name[32];
  for (uint32_t i = 0; i < o.devices; ++i) {
    std::snprintf(name, sizeof name, "field-%05u", i + 1);
    units[i].id = name;
    units[i].phase = Duration(static_cast<int64_t>(rng.below(o.check_in_every.count())));
    units[i].booted = start;
    units[i].link_up = start;
    Device d;
    d.id = name;
    d.device_type = "soil-sensor";
    d.hardware_revision = "rev-a";
    d.site = "north-farm";
    d.set_installed("firmware", "1.0.0");
    fleet.push_back(std::move(d));
  }
  Site site;
  site.name = "north-farm";
  site.time_zone = "UTC";
  DROVER_TRY((*plane)->set_up({site}, {}, std::move(fleet)));
  DeviceService& registry = *(*plane)->devices();
  Store& store = (*plane)->store();
  CommandQueue commands(store, clock);
  DROVER_TRY(commands.load());
  registry.attach_commands(&commands);
  FieldFreshness view(units, clock, start, o);

  FieldTwinReport report;
  report.devices = o.devices;
  report.days = o.days;
  report.remediation = o.remediation;
  report.device_months =
      static_cast<double>(o.devices) * static_cast<double>(o.days) / 30.0;  // 30-day months
  // Devices with a command queued for them or a stuck download (they are the only ones whose
  // check-ins the twin makes through the device service: every other check-in's answer
  // would be empty, and its state idle).
  std::unordered_set<uint32_t> watch;
  std::set<std::string> escalated;
  std::unique_ptr<health::Remediator> remediator;
  if (o.remediation) {
    // drover serve's default rules, and the example rules file's update-stuck
    // (docs/examples/remediation-rules.json): a download stuck for a day is given up.
    std::vector<health::RemediationRule> rules = health::default_rules(kCollector);
    health::RemediationRule stuck;
    stuck.name = "update-stuck";
    stuck.condition = health::Condition::kUpdateStuck;
    stuck.after = hours(24);
    stuck.ladder.push_back(
        {protocol::CommandAction::kClearUpdate, std::string(protocol::kClearDownloadOnly)});
    stuck.verify = hours(1);
    rules.push_back(std::move(stuck));
    auto made = health::Remediator::create(store, clock, view, commands, {std::move(rules), {}});
    if (!made.ok()) return made.error();
    remediator = std::move(*made);
    remediator->set_update_states(&registry);
    remediator->set_listener([&](const Alert& a) {
      if (a.version == 1) ++report.alerts_opened;
      if (a.escalated && escalated.insert(a.id).second) {
        if (a.condition == "offline") ++report.escalated_offline;
        if (a.condition == "update_stuck") ++report.escalated_update_stuck;
        if (a.condition == "no_data") ++report.escalated_no_data;
      }
      if (!a.commands.empty() && a.state != AlertState::kResolved) {
        // The device's number is in its id: field-00001 is units[0].
        watch.insert(static_cast<uint32_t>(std::stoul(a.device_id.substr(6)) - 1));
      }
    });
  }

  std::priority_queue<Event, std::vector<Event>, std::greater<>> events;
  double fault_rate = 0;  // a month
  for (double r : o.faults_per_month) fault_rate += r;
  const double month_ms = static_cast<double>(kMonth.count());
  // Each device draws its faults and its outages from streams of its own, so both runs (with
  // and without the rules) see the same draws: the k-th fault of a device comes the same
  // time after it was last mended, is of the same kind and as stubborn; its k-th outage draw
  // is the same too (whether an outage starts depends on the device being reachable then).
  std::vector<Rng> fault_draws, outage_draws, update_draws;
  fault_draws.reserve(o.devices);
  outage_draws.reserve(o.devices);
  update_draws.reserve(o.devices);
  for (uint32_t i = 0; i < o.devices; ++i) {
    fault_draws.emplace_back(o.seed * 0x9E3779B97F4A7C15ULL + 2 * uint64_t{i} + 1);
    outage_draws.emplace_back(o.seed * 0x9E3779B97F4A7C15ULL + 2 * uint64_t{i} + 2);
    update_draws.emplace_back(o.seed * 0xD1B54A32D192ED03ULL + uint64_t{i} + 7);
  }
  auto after = [&](Rng& draws, double per_month) {  // an exponential wait, for a rate a month
    const double u = std::max(draws.uniform(), 1e-300);
    if (per_month <= 0) return kNever;
    const double wait = -std::log(u) / per_month * month_ms;
    return wait > 1e15 ? kNever : clock.now() + Duration(static_cast<int64_t>(wait));
  };
  auto schedule = [&](Timestamp at, uint32_t i, EventKind kind, uint32_t epoch = 0) {
    if (at < end) events.push({at, i, kind, epoch});
  };
  // The device's down/up bookkeeping, after any change to it.
  auto settle = [&](uint32_t i) {
    Unit& u = units[i];
    const bool down = u.stopped != kNever || u.offline_since != kNever;
    if (down && u.down_since == kNever) {
      u.down_since = std::min(u.stopped, u.offline_since);
      ++u.epoch;
      schedule(u.down_since + kLostAfter, i, EventKind::kLostCheck, u.epoch);
    } else if (!down && u.down_since != kNever) {
      u.down_since = kNever;
      ++u.epoch;
    }
  };
  std::vector<double> mend_minutes;
  auto mend = [&](uint32_t i, bool remotely) {
    Unit& u = units[i];
    if (u.faulty && u.fault == FieldFault::kModemHung && u.outage_end == kNever) {
      u.offline_since = kNever;  // its backlog arrives
      u.link_up = clock.now();
    }
    if (remotely) {
      ++report.mended_remotely[static_cast<size_t>(u.fault)];
      // Its data is back now, or when an outage it is in ends.
      const Timestamp back =
          std::max(clock.now(), u.outage_end == kNever ? Timestamp{} : u.outage_end);
      mend_minutes.push_back(static_cast<double>((back - u.fault_at).count()) / 60'000);
    }
    u.faulty = false;
    u.stubborn = false;
    u.stopped = kNever;
    schedule(after(fault_draws[i], fault_rate), i, EventKind::kFault);
    settle(i);
  };
  // What a reboot cures, whoever asked for it: all but a stubborn disk and hardware.
  auto reboot_cures = [](const Unit& u) {
    return u.faulty &&
           (u.fault == FieldFault::kCollectorHung || u.fault == FieldFault::kAppWedged ||
            u.fault == FieldFault::kModemHung || (u.fault == FieldFault::kDiskFull && !u.stubborn));
  };

  // The agents' link watchdogs (docs/agent.md's example configuration, without a probe: the
  // farm's sensors have nothing beyond the modem to ask), made when a device first loses its
  // link and made again after each reboot (the agent starts afresh from link.json). The
  // agent's requests — its check-ins and its batches, each a request of the link whose
  // answer or silence it notes — are tried every report_every (the check-ins fall on
  // every other one), and once at its start.
  const Duration attempt_every = std::min(o.report_every, o.check_in_every);
  // The device's first attempt at or after t (strictly after, with `strict`), of those on
  // its schedule.
  auto attempt_from = [&](const Unit& u, Timestamp t, bool strict) {
    const int64_t x = (t - start - u.phase).count();
    int64_t k = x >= 0 ? (x + attempt_every.count() - 1) / attempt_every.count()
                       : -(-x / attempt_every.count());
    Timestamp at = start + u.phase + attempt_every * k;
    if (strict && at <= t) at += attempt_every;
    return at;
  };
  MemoryFileSystem watchdog_files;
  std::unordered_map<uint32_t, std::unique_ptr<agent::LinkWatchdog>> watchdogs;
  uint32_t looked_at = 0;  // the device whose watchdog is looking
  bool rebooted = false;   // it rebooted the device
  // Whether all that is down is an outage that will end by itself.
  auto only_outage = [](const Unit& u) {
    return u.outage_end != kNever && !(u.faulty && cuts_link(u.fault));
  };
  TwinModems modems([&] {
    Unit& u = units[looked_at];
    ++report.watchdog_resets;
    if (only_outage(u)) ++report.watchdog_resets_on_outages;
    if (u.faulty && u.fault == FieldFault::kModemHung && !u.stubborn) {
      ++report.watchdog_mended;
      mend(looked_at, true);
    }
  });
  agent::LinkWatchdogOptions watchdog_options;
  watchdog_options.reset_after = hours(2);
  watchdog_options.reset = {"systemctl", "restart", "ModemManager"};
  watchdog_options.reboot_after = hours(24);
  auto reboot = [&]() -> Status {
    Unit& u = units[looked_at];
    ++report.watchdog_reboots;
    if (only_outage(u)) ++report.watchdog_reboots_on_outages;
    rebooted = true;
    u.booted = clock.now();
    if (reboot_cures(u)) {
      ++report.watchdog_mended;
      mend(looked_at, true);
    }
    return ok_status();
  };
  const bool watchdog_on = o.remediation && o.link_watchdog;
  // A look of the device's watchdog at its next request attempt, once its link is down.
  auto watch_link = [&](uint32_t i) {
    Unit& u = units[i];
    if (!watchdog_on || u.watched) return;
    u.watched = true;
    schedule(attempt_from(u, clock.now(), true), i, EventKind::kWatchdog);
  };
  // The watchdog looks after an attempt, as drover-agent has it look after each step: what
  // the link knows then is whether this attempt, and those since the link went down in this
  // run of the agent, were answered. The silence and the watchdog's times all fall on
  // attempts, so looking at attempts alone acts when drover-agent's timer would.
  std::function<Status(uint32_t)> look;
  look = [&](uint32_t i) -> Status {
    Unit& u = units[i];
    u.watched = false;
    if (u.faulty && u.fault == FieldFault::kDead) return ok_status();  // nothing runs
    std::unique_ptr<agent::LinkWatchdog>& watchdog = watchdogs[i];
    if (!watchdog) {
      watchdog = std::make_unique<agent::LinkWatchdog>(u.id + "/link.json", watchdog_options,
                                                       modems, clock, reboot, watchdog_files);
      auto started = watchdog->start();
      if (!started.ok()) return started.error();
    }
    const Timestamp now = clock.now();
    agent::ServerLink::Reach reach;
    if (u.offline_since == kNever) {
      reach.last_answer = now;
    } else {
      // Unanswered since its start (after a reboot in the silence), else since the first
      // attempt after the link went down.
      reach.unanswered_since =
          u.booted >= u.offline_since ? u.booted : attempt_from(u, u.offline_since, false);
      if (*reach.unanswered_since > now) reach.unanswered_since.reset();  // not tried yet
      // Answered last: the last attempt of this run while the link was up, if any.
      const Timestamp up = std::max(u.link_up, u.booted);
      const Timestamp last = attempt_from(u, u.offline_since, false) - attempt_every;
      if (last >= up) {
        reach.last_answer = last;
      } else if (u.booted >= u.link_up && u.booted < u.offline_since) {
        reach.last_answer = u.booted;  // its try at start
      }
    }
    looked_at = i;
    rebooted = false;
    watchdog->check(reach);
    if (rebooted) {
      // The agent starts again after the reboot, from link.json, and tries the server at once.
      watchdog.reset();
      return look(i);
    }
    if (u.offline_since != kNever) watch_link(i);
    return ok_status();
  };

  for (uint32_t i = 0; i < o.devices; ++i) {
    schedule(after(fault_draws[i], fault_rate), i, EventKind::kFault);
    schedule(after(outage_draws[i], o.outages_per_month), i, EventKind::kOutageStart);
    schedule(after(update_draws[i], o.updates_stuck_per_month), i, EventKind::kUpdateStuck);
  }
  // A stuck download given up (by a remote command, or by whoever visits): the device is
  // idle again, and its next stuck download is drawn from then.
  auto unstick = [&](uint32_t i) {
    Unit& u = units[i];
    if (u.stuck_since == kNever) return;
    const double h = static_cast<double>((clock.now() - u.stuck_since).count()) /
                     static_cast<double>(hours(1).count());
    report.stuck_days += h / 24;
    report.stuck_worst_h = std::max(report.stuck_worst_h, h);
    u.stuck_since = kNever;
    schedule(after(update_draws[i], o.updates_stuck_per_month), i, EventKind::kUpdateStuck);
  };

  auto happen = [&](const Event& e) -> Status {
    Unit& u = units[e.unit];
    const Timestamp now = clock.now();
    switch (e.kind) {
      case EventKind::kFault: {
        if (u.faulty) return ok_status();
        Rng& draws = fault_draws[e.unit];
        double pick = draws.uniform() * fault_rate;
        size_t k = 0;
        while (k + 1 < kFieldFaultCount && pick >= o.faults_per_month[k]) {
          pick -= o.faults_per_month[k];
          ++k;
        }
        u.faulty = true;
        u.fault = static_cast<FieldFault>(k);
        u.fault_at = now;
        const double cure = draws.uniform();  // drawn for every fault, used by some
        u.stubborn = (u.fault == FieldFault::kCollectorHung && cure >= o.restart_cures) ||
                     (u.fault == FieldFault::kDiskFull && cure >= o.reboot_frees_disk) ||
                     (u.fault == FieldFault::kModemHung && cure >= o.modem_reset_cures);
        // A hung modem keeps the data on the device (it arrives once the link is back).
        if (u.fault != FieldFault::kModemHung) u.stopped = now;
        if (cuts_link(u.fault)) {
          u.offline_since = std::min(u.offline_since, now);
          if (is_hardware(u.fault)) u.outage_end = kNever;  // a hung modem: an outage goes on
          watch_link(e.unit);
        }
        ++report.faults[k];
        settle(e.unit);
        return ok_status();
      }
      case EventKind::kOutageStart: {
        const bool gone = u.faulty && cuts_link(u.fault);
        Timestamp next = now;
        const double ms = static_cast<double>(o.outage_median.count()) *
                          std::exp(kOutageSigma * normal(outage_draws[e.unit]));
        const Duration lasts =
            std::min(kLongestOutage, Duration(std::max<int64_t>(60'000, std::llround(ms))));
        if (!gone && u.offline_since == kNever) {
          u.offline_since = now;
          u.outage_end = now + lasts;
          next = u.outage_end;
          ++report.outages;
          schedule(u.outage_end, e.unit, EventKind::kOutageEnd);
          settle(e.unit);
          watch_link(e.unit);
        }
        const Timestamp again = after(outage_draws[e.unit], o.outages_per_month);
        if (again != kNever) schedule(next + (again - now), e.unit, EventKind::kOutageStart);
        return ok_status();
      }
      case EventKind::kOutageEnd:
        if (u.outage_end != now) return ok_status();
        u.outage_end = kNever;
        if (u.faulty && cuts_link(u.fault)) return ok_status();  // a hung modem keeps it down
        u.offline_since = kNever;
        u.link_up = now;
        if (u.down_since != kNever && u.stopped != kNever && u.stopped > u.down_since) {
          // Stuck during the outage: its backlog up to then arrives now, so it has been
          // quiet only since it stopped.
          u.down_since = kNever;
        }
        settle(e.unit);
        return ok_status();
      case EventKind::kLostCheck: {
        if (e.epoch != u.epoch || u.down_since == kNever) return ok_status();
        // Quiet for 72 hours: lost. (An outage alone ends within 36 hours, so a fault is
        // behind every loss.)
        ++report.lost_total;
        if (u.faulty) ++report.lost[static_cast<size_t>(u.fault)];
        schedule(std::max(now, u.down_since + kVisitAfter), e.unit, EventKind::kVisit, u.epoch);
        return ok_status();
      }
      case EventKind::kVisit:
        if (e.epoch != u.epoch || u.down_since == kNever) return ok_status();
        ++report.visits;
        if (u.stuck_since != kNever) {
          ++report.stuck_unstuck_by_visit;
          unstick(e.unit);  // whoever visits sets the update right too
        }
        if (u.offline_since != kNever) u.link_up = now;
        u.offline_since = kNever;
        u.outage_end = kNever;
        if (u.faulty) {
          mend(e.unit, false);
        } else {
          settle(e.unit);
        }
        return ok_status();
      case EventKind::kWatchdog:
        return look(e.unit);
      case EventKind::kUpdateStuck:
        // Its check-ins now say it is downloading; its agent's attempts get nowhere. It goes
        // on sending data: not a loss, but a device that never gets its update.
        if (u.stuck_since != kNever) return ok_status();
        if (u.faulty && u.fault == FieldFault::kDead) {
          // Nothing downloads on a dead board; the next draw is from now.
          schedule(after(update_draws[e.unit], o.updates_stuck_per_month), e.unit,
                   EventKind::kUpdateStuck);
          return ok_status();
        }
        u.stuck_since = now;
        ++report.updates_stuck;
        if (remediator) watch.insert(e.unit);  // its check-ins through the device service
        return ok_status();
    }
    return ok_status();
  };

  // What the device's agent does with a command (remote_commands allowing a restart of the
  // collector and a reboot), reported at once.
  auto run_command = [&](uint32_t i, const Command& c) -> Status {
    using protocol::CommandAction;
    Unit& u = units[i];
    const bool for_update = c.action == CommandAction::kClearUpdate && u.stuck_since != kNever;
    if (!u.faulty && !for_update) ++report.healthy_commanded;
    CommandResult result;
    result.device_id = c.device_id;
    result.command_id = c.id;
    bool cures = false;
    if (c.action == CommandAction::kRestartService && c.argument == kCollector) {
      cures = u.faulty && u.fault == FieldFault::kCollectorHung && !u.stubborn;
      result.exit_code = 0;
      result.output = "collector restarted\n";
    } else if (c.action == CommandAction::kReboot) {
      cures = reboot_cures(u);
      // The agent starts again, and its watchdog with it (from link.json).
      u.booted = clock.now();
      watchdogs.erase(i);
      result.exit_code = 0;
    } else if (c.action == CommandAction::kClearUpdate &&
               c.argument == protocol::kClearDownloadOnly) {
      // The agent gives the download up and reports it install_failed.
      result.exit_code = 0;
      result.output = for_update ? "gave up the download\n" : "nothing to clear\n";
      if (for_update) {
        ++report.updates_given_up;
        unstick(i);
      }
    } else {
      result.outcome = protocol::CommandOutcome::kRefused;
      result.output = "not allowed by remote_commands";
    }
    auto recorded = commands.record_result(result);
    if (!recorded.ok()) return recorded.error();
    if (cures) mend(i, true);
    return ok_status();
  };
  // The check-ins of watched devices due in (from, to], made through the device service.
  std::vector<uint32_t> due;
  auto check_ins = [&](Timestamp from, Timestamp to) -> Status {
    due.clear();
    for (uint32_t i : watch) {
      const Unit& u = units[i];
      const int64_t every = o.check_in_every.count();
      const int64_t a = (from - start - u.phase).count();
      const int64_t b = (to - start - u.phase).count();
      // A multiple of `every` in (a, b]?
      const auto floor_div = [every](int64_t x) {
        return x >= 0 ? x / every : -((-x + every - 1) / every);
      };
      if (floor_div(b) > floor_div(a)) due.push_back(i);
    }
    std::sort(due.begin(), due.end());
    for (uint32_t i : due) {
      Unit& u = units[i];
      if (u.offline_since != kNever) continue;  // out of reach
      auto device = registry.device(u.id);
      if (!device) return not_found("the field twin's device " + u.id + " is not registered");
      const UpdateState state =
          u.stuck_since != kNever ? UpdateState::kDownloading : UpdateState::kIdle;
      auto answer = registry.check_in({u.id, device->installed, state, "", false});
      if (!answer.ok()) return answer.error();
      for (const Command& c : answer->commands) DROVER_TRY(run_command(i, c));
      // Watched while it has a command, or a stuck download (until it has said it is idle).
      if (commands.open_for(u.id).empty() && state == UpdateState::kIdle) watch.erase(i);
    }
    return ok_status();
  };

  Timestamp last = start;
  for (Timestamp t = start + o.tick; t <= end; t += o.tick) {
    while (!events.empty() && events.top().at <= t) {
      const Event e = events.top();
      events.pop();
      if (e.at > clock.now()) clock.advance_to(e.at);
      DROVER_TRY(happen(e));
    }
    if (t > clock.now()) clock.advance_to(t);
    if (!remediator) continue;
    DROVER_TRY(check_ins(last, t));
    last = t;
    auto expired = commands.expire_due();
    if (!expired.ok()) return expired.error();
    report.commands_expired += static_cast<uint32_t>(*expired);
    auto judged = remediator->tick();
    if (!judged.ok()) return judged.error();
  }

  if (remediator) {
    Store::AlertQuery every_alert;
    every_alert.limit = SIZE_MAX;
    auto alerts = remediator->list(every_alert);
    if (!alerts.ok()) return alerts.error();
    for (const Alert& a : *alerts) {
      for (const std::string& id : a.commands) {
        auto c = commands.get(id);
        if (!c.ok()) return c.error();
        if (!*c) continue;
        if ((*c)->action == protocol::CommandAction::kReboot) ++report.reboots;
        if ((*c)->action == protocol::CommandAction::kRestartService) ++report.restarts;
      }
    }
  }
  for (const Unit& u : units) {
    if (u.stuck_since == kNever) continue;
    ++report.stuck_at_end;
    const double h =
        static_cast<double>((end - u.stuck_since).count()) / static_cast<double>(hours(1).count());
    report.stuck_days += h / 24;
    report.stuck_at_end_oldest_h = std::max(report.stuck_at_end_oldest_h, h);
  }
  uint32_t hardware_lost = 0;
  for (size_t k = 0; k < kFieldFaultCount; ++k) {
    if (is_hardware(static_cast<FieldFault>(k))) hardware_lost += report.lost[k];
  }
  report.loss_per_month = report.lost_total / report.device_months;
  report.hardware_loss_per_month = hardware_lost / report.device_months;
  if (!mend_minutes.empty()) {
    std::sort(mend_minutes.begin(), mend_minutes.end());
    report.mend_median_min = mend_minutes[mend_minutes.size() / 2];
    report.mend_worst_min = mend_minutes.back();
  }
  report.wall_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
  return report;
}

}  // namespace drover::sim
