#include "sim/telemetry_twin.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <queue>

#include "agent/telemetry_agent.h"
#include "base/memory_file_system.h"
#include "base/random.h"
#include "fleet/command_queue.h"
#include "fleet/profile_service.h"
#include "health/health_view.h"
#include "health/remediator.h"
#include "protocol/telemetry_batch.h"
#include "sim/local_plane.h"
#include "telemetry/telemetry_service.h"

namespace drover::sim {
namespace {

using protocol::TelemetrySeries;

constexpr int64_t kStartMs = 1'780'272'000'000;  // 2026-06-01T00:00:00Z
constexpr double kPi = 3.14159265358979323846;
constexpr double kControllerMemory = 512.0 * 1024 * 1024;  // available after start-up

int64_t ms(Timestamp t) { return t.time_since_epoch().count(); }

// The device API's ingest without the HTTP hop: the batch's bytes decoded and stored as the
// route does, the answer built from what the service says.
class TwinLink final : public agent::ServerLink {
 public:
  TwinLink(telemetry::TelemetryService& service, std::string device, TelemetryKind& tally,
           uint64_t& sent)
      : service_(service), device_(std::move(device)), tally_(tally), sent_(sent) {}
  bool online = true;

  Status connect(const agent::Inventory&) override { return ok_status(); }
  Result<agent::CheckInAnswer> check_in(const agent::Inventory&, protocol::UpdateState,
                                        std::string_view, bool,
                                        const protocol::ConfigReport*) override {
    return agent::CheckInAnswer{};
  }
  Status report(const std::string&, const std::string&, protocol::Report, const std::string&,
                const std::string&) override {
    return ok_status();
  }
  Result<uint64_t> download(const agent::UpdateRecord&, const std::string&, uint64_t,
                            const std::function<void(uint64_t)>&) override {
    return io_error("the telemetry twin has no downloads");
  }
  Result<agent::TelemetryAck> send_telemetry(std::string_view body) override {
    if (!online) return io_error("the link is down");
    auto batch = protocol::decode_telemetry_batch(body, true);
    if (!batch.ok()) return batch.error();
    auto stored = service_.ingest(device_, *batch);
    if (!stored.ok()) return stored.error();
    tally_.batches += 1;
    tally_.wire_bytes += body.size();
    tally_.samples_sent += batch->sample_count();
    if (!stored->stored.retry) sent_ += stored->stored.accepted + stored->stored.duplicates;
    agent::TelemetryAck ack;
    ack.sequence = batch->sequence;
    ack.retry = stored->stored.retry;
    ack.accepted = stored->stored.accepted;
    auto rules = service_.rules_for(device_);
    if (rules.ok()) ack.rules = rules->etag;
    return ack;
  }
  Result<protocol::TelemetryRules> telemetry_rules() override {
    if (!online) return io_error("the link is down");
    return service_.rules_for(device_);
  }

 private:
  telemetry::TelemetryService& service_;
  std::string device_;
  TelemetryKind& tally_;
  uint64_t& sent_;
};

enum class Kind : uint8_t { kController, kProbe, kTruck };

struct TwinDevice {
  Kind kind = Kind::kController;
  std::string id;
  std::unique_ptr<TwinLink> link;
  std::unique_ptr<agent::TelemetryAgent> agent;
  Timestamp next_sample{}, agent_due{}, next_check_in{};
  Duration period{0};
  // The stories.
  Timestamp hangs_at = Timestamp::max();   // the collector stops; the device still checks in
  bool hang_needs_reboot = false;          // a restart of the collector does not cure it
  Timestamp dies_at = Timestamp::max();    // nothing more at all
  Timestamp sticks_at = Timestamp::max();  // a sensor repeats its last reading from then
  double stuck_at = NAN;
  Timestamp link_down = Timestamp::max(), link_up = Timestamp::max();
  // The models' state.
  double memory = 0, leaked = 0, leak_per_s = 0, signal = 0, battery = 100, odometer = 0, fuel = 0;
  double speed = 0;
  Timestamp booted{};
  uint64_t boots = 0;
  uint64_t measured = 0, sent = 0;  // samples, this device's
  // A truck's raw samples since its last minute, for the wire comparison.
  std::vector<TelemetrySeries> raw;
};

// Sends and remembers one minute of a truck's raw samples, encoded as a batch and as JSON.
void close_raw_minute(TwinDevice& d, uint64_t& raw_bytes, uint64_t& json_bytes, uint64_t& seq) {
  if (d.raw.empty() || d.raw.front().samples.empty()) return;
  protocol::TelemetryBatch batch;
  batch.stream = 1;
  batch.sequence = ++seq;
  batch.series = d.raw;
  raw_bytes += protocol::encode_telemetry_batch(batch).size();
  nlohmann::json series = nlohmann::json::array();
  for (const TelemetrySeries& s : d.raw) {
    nlohmann::json points = nlohmann::json::array();
    for (const auto& x : s.samples) points.push_back({x.t_ms, x.value});
    series.push_back({{"metric", s.metric}, {"samples", points}});
  }
  json_bytes += nlohmann::json{{"series", series}}.dump().size();
  for (TelemetrySeries& s : d.raw) s.samples.clear();
}

TelemetrySeries one(std::string metric, int64_t t, double v,
                    std::vector<std::pair<std::string, std::string>> labels = {}) {
  return {std::move(metric), std::move(labels), {{t, v}}};
}

constexpr const char* kTruckMetrics[] = {"speed_kmh",
                                         "engine_rpm",
                                         "engine_temp_celsius",
                                         "coolant_temp_celsius",
                                         "oil_pressure_kpa",
                                         "fuel_level_percent",
                                         "battery_voltage_volts",
                                         "throttle_percent",
                                         "brake_pressure_kpa",
                                         "gear",
                                         "latitude",
                                         "longitude",
                                         "heading_degrees",
                                         "accel_x",
                                         "accel_y",
                                         "accel_z",
                                         "cabin_temp_celsius",
                                         "odometer_km",
                                         "tire_pressure_kpa",
                                         "load_kg"};

// One sampling round of a device model at `t`.
std::vector<TelemetrySeries> measure(TwinDevice& d, Timestamp now, Rng& rng) {
  const int64_t t = ms(now);
  const double hours_in = static_cast<double>(t - kStartMs) / 3.6e6;
  const double ambient = 14 + 8 * std::sin(2 * kPi * (hours_in - 9) / 24);
  std::vector<TelemetrySeries> out;
  switch (d.kind) {
    case Kind::kController: {
      // A watchdog reboot now and then (about one a day per controller).
      if (rng.chance(1.0 / 1440)) {
        ++d.boots;
        d.booted = now;
        out.push_back(one("reboot", t, static_cast<double>(d.boots), {{"reason", "watchdog"}}));
      }
      // Available memory varies around its level; a leak takes from the level.
      d.leaked += d.leak_per_s * 60;
      d.memory = std::max(0.0, kControllerMemory - d.leaked + rng.between(-2e5, 2e5));
      d.signal = std::clamp(d.signal + rng.between(-1.5, 1.5), -90.0, -40.0);
      out.push_back(one("cpu_usage_ratio", t, 0.05 + 0.2 * rng.uniform()));
      out.push_back(one("memory_available_bytes", t, std::round(d.memory)));
      const double temperature = std::round((ambient + 22 + rng.between(-1, 1)) * 10) / 10;
      if (now >= d.sticks_at && std::isnan(d.stuck_at)) d.stuck_at = temperature;
      out.push_back(one("temperature_celsius", t, std::isnan(d.stuck_at) ? temperature : d.stuck_at,
                        {{"zone", "0"}}));
      out.push_back(one("wifi_signal_dbm", t, std::round(d.signal)));
      out.push_back(one("uptime_seconds", t, static_cast<double>(ms(now) - ms(d.booted)) / 1000));
      break;
    }
    case Kind::kProbe: {
      // Discharge speeds up in the cold (a lithium cell's capacity falls below 10 °C).
      const double cold = std::max(0.0, 10 - ambient);
      d.battery = std::max(0.0, d.battery - 0.05 * (1 + 0.08 * cold));
      d.signal = std::clamp(d.signal + rng.between(-3, 3), -120.0, -70.0);
      out.push_back(one("battery_level_percent", t, std::round(d.battery * 10) / 10));
      out.push_back(
          one("battery_voltage_volts", t, std::round((3.0 + 1.2 * d.battery / 100) * 1000) / 1000));
      out.push_back(
          one("temperature_celsius", t, std::round((ambient + rng.between(-0.5, 0.5)) * 10) / 10));
      out.push_back(
          one("soil_moisture_percent", t, std::round((31 + 4 * rng.uniform()) * 10) / 10));
      out.push_back(one("link_signal_dbm", t, std::round(d.signal)));
      break;
    }
    case Kind::kTruck: {
      d.speed = std::clamp(d.speed + rng.between(-2, 2.2), 0.0, 95.0);
      d.odometer += d.speed / 3600;
      d.fuel = std::max(5.0, d.fuel - d.speed * 1e-5);
      const double values[20] = {std::round(d.speed * 10) / 10,
                                 std::round(800 + d.speed * 22 + rng.between(-30, 30)),
                                 std::round((88 + rng.between(-1, 1)) * 10) / 10,
                                 std::round((85 + rng.between(-1, 1)) * 10) / 10,
                                 std::round(280 + rng.between(-15, 15)),
                                 std::round(d.fuel * 10) / 10,
                                 std::round((27.6 + rng.between(-0.2, 0.2)) * 100) / 100,
                                 std::round(std::min(100.0, d.speed + rng.between(-5, 5))),
                                 std::round(std::max(0.0, rng.between(-200, 120))),
                                 std::floor(d.speed / 16),
                                 std::round((52.52 + d.odometer * 1e-3) * 1e6) / 1e6,
                                 std::round((13.40 + d.odometer * 7e-4) * 1e6) / 1e6,
                                 std::round(rng.between(0, 360)),
                                 std::round(rng.between(-0.3, 0.3) * 100) / 100,
                                 std::round(rng.between(-0.3, 0.3) * 100) / 100,
                                 std::round((9.81 + rng.between(-0.2, 0.2)) * 100) / 100,
                                 std::round((21 + rng.between(-0.5, 0.5)) * 10) / 10,
                                 std::round(d.odometer * 100) / 100,
                                 std::round(760 + rng.between(-5, 5)),
                                 12'400};
      for (size_t m = 0; m < 20; ++m) {
        out.push_back(one(kTruckMetrics[m], t, values[m]));
        d.raw[m].samples.push_back({t, values[m]});
      }
      break;
    }
  }
  return out;
}

// 1234567 -> "1,234,567".
std::string with_commas(uint64_t n) {
  std::string digits = std::to_string(n);
  for (int i = static_cast<int>(digits.size()) - 3; i > 0; i -= 3) {
    digits.insert(static_cast<size_t>(i), ",");
  }
  return digits;
}

// `d` to the minute (for a person: a forecast or an event's time needs no seconds).
Duration to_minute(Duration d) { return Duration(d.count() / 60'000 * 60'000); }
Duration to_hour(Duration d) { return Duration(d.count() / 3'600'000 * 3'600'000); }

std::string ago(double seconds) {
  if (seconds < 0) return "never";
  return format_duration(Duration(static_cast<int64_t>(seconds) * 1000));
}

}  // namespace

Result<TelemetryTwinReport> run_telemetry_twin(const TelemetryTwinOptions& o) {
  if (o.controllers < 5 || o.probes < 1 || o.trucks < 1)
    return invalid_argument("the telemetry twin needs 5 controllers, a probe and a truck");
  if (o.horizon < hours(4) + minutes(30))
    return invalid_argument("the telemetry twin's stories take at least 4h30m");
  std::string dir = o.dir;
  const bool own_dir = dir.empty();
  if (own_dir) {
    // A fresh directory of its own, in memory when /dev/shm takes one.
    std::error_code ec;
    for (const std::string& base :
         {std::string("/dev/shm"), std::filesystem::temp_directory_path(ec).string()}) {
      std::string pattern = base + "/drover-telemetry-twin-XXXXXX";
      if (::mkdtemp(pattern.data()) != nullptr) {
        dir = pattern;
        break;
      }
    }
    if (dir.empty()) return io_error("no directory for the telemetry twin's store");
  }
  struct Cleanup {
    std::string dir;
    bool own;
    ~Cleanup() {
      std::error_code ec;
      if (own) std::filesystem::remove_all(dir, ec);
    }
  } cleanup{dir, own_dir};

  ManualClock clock{Timestamp(Duration(kStartMs))};
  auto plane = LocalControlPlane::create(clock, {}, [](const EngineEvent&) {});
  if (!plane.ok()) return plane.error();
  std::vector<Device> fleet;
  std::vector<std::unique_ptr<TwinDevice>> devices;
  auto add = [&](Kind kind, const std::string& id, const std::string& type) {
    Device d;
    d.id = id;
    d.device_type = type;
    d.hardware_revision = "rev-a";
    d.site = "north-farm";
    d.set_installed("firmware", "1.0.0");
    fleet.push_back(d);
    auto t = std::make_unique<TwinDevice>();
    t->kind = kind;
    t->id = id;
    devices.push_back(std::move(t));
  };
  char name[32];
  for (uint32_t i = 0; i < o.controllers; ++i) {
    std::snprintf(name, sizeof name, "ctl-%03u", i + 1);
    add(Kind::kController, name, "bms-controller");
  }
  for (uint32_t i = 0; i < o.probes; ++i) {
    std::snprintf(name, sizeof name, "probe-%03u", i + 1);
    add(Kind::kProbe, name, "soil-probe");
  }
  for (uint32_t i = 0; i < o.trucks; ++i) {
    std::snprintf(name, sizeof name, "truck-%03u", i + 1);
    add(Kind::kTruck, name, "truck");
  }
  Site site;
  site.name = "north-farm";
  site.time_zone = "UTC";
  DROVER_TRY((*plane)->set_up({site}, {}, fleet));
  DeviceService& registry = *(*plane)->devices();
  Store& store = (*plane)->store();

  // The profiles: contracts and, for trucks, one-minute aggregates of every metric. A
  // controller samples every minute and sends every five, checking in as often.
  ProfileService profiles(store);
  using F = protocol::AggregateFunction;
  for (const DeviceProfile& p :
       {DeviceProfile{
            "bms-controller",
            {minutes(5), minutes(2), minutes(15)},
            {},
            {MetricCheck{"temperature_celsius", std::nullopt, std::nullopt, hours(1), 0, false}},
            {}},
        DeviceProfile{"soil-probe", {hours(2), minutes(30), Duration(0)}, {}, {}, {}},
        DeviceProfile{"truck",
                      {minutes(1), minutes(1), Duration(0)},
                      {{"*", minutes(1), {F::kMin, F::kMax, F::kMean}}},
                      {},
                      {}}}) {
    auto put = profiles.put(p);
    if (!put.ok()) return put.error();
  }

  auto tsdb = telemetry::TimeSeriesStore::open(real_file_system(), dir, clock);
  if (!tsdb.ok()) return tsdb.error();
  telemetry::TelemetryService service(**tsdb, registry, store, clock);
  // Remediation as drover serve wires it: commands ride the check-in answers, the rules run
  // every minute over telemetry freshness; a controller's collector is its service.
  CommandQueue commands(store, clock);
  DROVER_TRY(commands.load());
  registry.attach_commands(&commands);
  auto remediator = health::Remediator::create(store, clock, service, commands,
                                               {health::default_rules("collector"), {}});
  if (!remediator.ok()) return remediator.error();
  // The rules on health (the default frozen) read it as drover serve's do. ctl-006's sensor
  // sticks 90 minutes before the end: frozen after its hour, the rule's half hour more runs
  // past the end, so the run ends before that alert would open.
  const health::HealthView remediation_health(service, remediator->get(), clock);
  (*remediator)->set_health_source(&remediation_health);

  std::vector<TelemetryKind> kinds = {{"controller"}, {"probe"}, {"truck"}};
  MemoryFileSystem disk;  // every device's queue
  // The devices' agents hold the service, the disk and the tallies: they go first.
  struct DropDevices {
    std::vector<std::unique_ptr<TwinDevice>>& devices;
    ~DropDevices() { devices.clear(); }
  } drop_devices{devices};
  Rng rng(o.seed);
  const Timestamp start = clock.now();
  const Timestamp end = start + o.horizon;
  for (auto& d : devices) {
    TelemetryKind& tally = kinds[static_cast<size_t>(d->kind)];
    ++tally.devices;
    d->link = std::make_unique<TwinLink>(service, d->id, tally, d->sent);
    agent::TelemetryOptions t;
    t.system = false;
    t.queue.dir = "/twin/" + d->id;
    t.queue.stream_seed = rng.next_u64() | 1;
    t.urgent = {"reboot"};
    d->booted = start - hours(30 + static_cast<int64_t>(rng.below(500)));
    d->next_sample = start + Duration(static_cast<int64_t>(rng.below(60'000)));
    switch (d->kind) {
      case Kind::kController:
        d->period = minutes(1);
        t.send_every = minutes(5);
        d->memory = kControllerMemory;
        d->signal = -60;
        d->next_check_in = d->next_sample;
        break;
      case Kind::kProbe: {
        d->period = hours(2);
        // Asleep but for a minute every two hours: the link is up only then.
        const Timestamp wake = d->next_sample;
        t.send_every = seconds(10);
        t.link_up_at = [wake](Timestamp at) {
          if (at < wake) return wake;
          const Duration into = (at - wake) % hours(2);
          return into < minutes(1) ? at : at - into + hours(2);
        };
        d->signal = -95;
        d->battery = 60 + rng.between(0, 40);
        break;
      }
      case Kind::kTruck:
        d->period = seconds(1);
        t.send_every = minutes(1);
        d->fuel = 70 + rng.between(0, 25);
        for (const char* m : kTruckMetrics) d->raw.push_back({m, {}, {}});
        break;
    }
    d->agent = std::make_unique<agent::TelemetryAgent>(t, *d->link, clock, rng.next_u64(), disk);
    DROVER_TRY(d->agent->start());
    d->agent_due = start;
  }
  // The stories: ctl-002's collector hangs after two hours (a restart cures it); ctl-003
  // loses its link from the first hour to the third; ctl-004 dies in the fourth; ctl-001
  // leaks memory.
  devices[0]->leak_per_s = 2048;
  devices[1]->hangs_at = start + hours(2);
  devices[2]->link_down = start + hours(1);
  devices[2]->link_up = start + hours(3);
  devices[3]->dies_at = start + hours(4);
  // ctl-005's collector hangs an hour before the end, and only a reboot cures it.
  devices[4]->hangs_at = end - hours(1);
  devices[4]->hang_needs_reboot = true;
  // ctl-006's temperature sensor sticks 90 minutes before the end: its profile says a reading
  // unchanged for an hour is frozen.
  if (o.controllers > 5) devices[5]->sticks_at = end - minutes(90);

  uint64_t raw_bytes = 0, json_bytes = 0, raw_seq = 0;
  using Wake = std::pair<Timestamp, size_t>;
  std::priority_queue<Wake, std::vector<Wake>, std::greater<>> queue;
  auto next_wake = [&](const TwinDevice& d) {
    Timestamp w = std::min(d.next_sample, d.agent_due);
    if (d.kind == Kind::kController) w = std::min(w, d.next_check_in);
    return w;
  };
  for (size_t i = 0; i < devices.size(); ++i) queue.emplace(next_wake(*devices[i]), i);
  std::vector<Timestamp> raw_minute(devices.size(), start + minutes(1));
  // The server's minute: commands past their expiry closed, the rules judged.
  Timestamp next_tick = start + minutes(1);
  auto tick_until = [&](Timestamp until) -> Status {
    for (; next_tick <= until; next_tick += minutes(1)) {
      if (next_tick > clock.now()) clock.advance_to(next_tick);
      if (auto expired = commands.expire_due(); !expired.ok()) return expired.error();
      if (auto judged = (*remediator)->tick(); !judged.ok()) return judged.error();
    }
    return ok_status();
  };
  // What a controller's agent does with a command (with remote_commands allowing a restart
  // of its collector and a reboot): runs it and reports at once.
  auto run_command = [&](TwinDevice& d, const Command& c, Timestamp now) -> Status {
    using protocol::CommandAction;
    CommandResult result;
    result.device_id = d.id;
    result.command_id = c.id;
    std::string output;
    if (c.action == CommandAction::kRestartService && c.argument == "collector") {
      if (!d.hang_needs_reboot) d.hangs_at = Timestamp::max();
      result.exit_code = 0;
      output = "collector restarted\n";
    } else if (c.action == CommandAction::kReboot) {
      d.hangs_at = Timestamp::max();
      d.booted = now;
      ++d.boots;
      result.exit_code = 0;
    } else {
      result.outcome = protocol::CommandOutcome::kRefused;
      output = "not allowed by remote_commands";
    }
    result.output = output;
    auto recorded = commands.record_result(result);
    return recorded.ok() ? ok_status() : recorded.error();
  };
  while (!queue.empty()) {
    auto [at, i] = queue.top();
    queue.pop();
    if (at > end) break;
    DROVER_TRY(tick_until(at));
    if (at > clock.now()) clock.advance_to(at);
    TwinDevice& d = *devices[i];
    const Timestamp now = clock.now();
    if (now >= d.dies_at) continue;  // no more wake-ups: it is gone
    d.link->online = !(now >= d.link_down && now < d.link_up);
    if (now >= d.next_sample) {
      if (now < d.hangs_at) {
        std::vector<TelemetrySeries> samples = measure(d, now, rng);
        TelemetryKind& tally = kinds[static_cast<size_t>(d.kind)];
        for (const auto& s : samples) {
          tally.samples_measured += s.samples.size();
          d.measured += s.samples.size();
        }
        d.agent->record(samples);
      }
      d.next_sample += d.period;
      if (d.kind == Kind::kTruck && now >= raw_minute[i]) {
        close_raw_minute(d, raw_bytes, json_bytes, raw_seq);
        raw_minute[i] += minutes(1);
      }
      d.agent_due = std::min(d.agent_due, now);
    }
    if (d.kind == Kind::kController && now >= d.next_check_in) {
      // The update agent's check-in, every five minutes while the link is up.
      if (d.link->online) {
        auto device = registry.device(d.id);
        if (device) {
          auto answer = registry.check_in({d.id, device->installed, UpdateState::kIdle, "", false});
          if (answer.ok()) {
            for (const Command& c : answer->commands) DROVER_TRY(run_command(d, c, now));
          }
        }
      }
      d.next_check_in += minutes(5);
    }
    if (now >= d.agent_due) d.agent_due = now + std::max(d.agent->run_once(), Duration(1));
    queue.emplace(next_wake(d), i);
  }
  DROVER_TRY(tick_until(end));
  clock.advance_to(end);

  TelemetryTwinReport report;
  report.horizon = o.horizon;
  for (const auto& d : devices) report.dropped += d->agent->status().queue.dropped_total;
  report.samples_stored = (*tsdb)->stats().samples_accepted;
  auto judged = service.freshness(telemetry::Cohort{});
  if (!judged.ok()) return judged.error();
  std::map<std::string, const telemetry::DeviceFreshness*> by_device;
  for (const auto& f : *judged) {
    ++report.freshness[to_string(f.freshness)];
    by_device[f.device] = &f;
  }
  // A device's judgement; a missing one (it cannot be: every device is judged) reads as "?"
  // with unknown ages.
  static const telemetry::DeviceFreshness kUnknown{};
  auto judged_of = [&](const std::string& id) -> const telemetry::DeviceFreshness& {
    auto it = by_device.find(id);
    return it == by_device.end() ? kUnknown : *it->second;
  };
  auto story = [&](const std::string& id, const std::string& text) {
    auto it = by_device.find(id);
    report.stories.push_back(
        {id, it == by_device.end() ? "?" : to_string(it->second->freshness), text});
  };
  const std::string& probe = devices[o.controllers]->id;
  story(probe, "a soil probe asleep by design, last heard " + ago(judged_of(probe).data_age_s) +
                   " ago: its contract is every 2h, 30m late allowed");
  // Remediation: every alert, oldest first, and the commands queued for them.
  Store::AlertQuery every_alert;
  every_alert.limit = SIZE_MAX;
  auto alerts = (*remediator)->list(every_alert);
  if (!alerts.ok()) return alerts.error();
  report.alerts.assign(alerts->rbegin(), alerts->rend());
  for (const Alert& a : report.alerts) {
    for (const std::string& id : a.commands) {
      auto c = commands.get(id);
      if (!c.ok()) return c.error();
      if (*c) report.commands.push_back(**c);
    }
  }
  auto in = [&](Timestamp t) { return format_duration(to_minute(t - start)) + " in"; };
  // What was done about a device: its alerts, each step, how it ended.
  auto remedied = [&](const std::string& device) {
    std::string text;
    for (const Alert& a : report.alerts) {
      if (a.device_id != device) continue;
      text += (text.empty() ? "" : "; ") + a.id + " (" + a.rule + ") opened " + in(a.opened_at);
      for (const Command& c : report.commands) {
        if (c.device_id != device ||
            std::find(a.commands.begin(), a.commands.end(), c.id) == a.commands.end()) {
          continue;
        }
        text += std::string(", ") + protocol::to_string(c.action) +
                (c.argument.empty() ? "" : " " + c.argument) +
                (c.finished_at == Timestamp{} ? " queued" : " ran " + in(c.finished_at));
      }
      if (a.state == AlertState::kResolved) {
        text += ", resolved " + in(a.resolved_at) + ": " + a.resolution;
      } else if (a.escalated) {
        text += ", handed to a person: " + a.escalation;
      } else {
        text += ", open: the data is not back; the next step waits for the last one's check";
      }
    }
    return text.empty() ? std::string("no alert") : text;
  };
  const std::string& hung = devices[1]->id;
  story(hung, "its collector hung 2h in while it kept checking in; " + remedied(hung));
  const std::string& stuck = devices[4]->id;
  story(stuck, "its collector hung 1h before the end (only a reboot cures it): data " +
                   ago(judged_of(stuck).data_age_s) + " old; " + remedied(stuck));
  story(devices[3]->id, "not heard for " + ago(judged_of(devices[3]->id).contact_age_s));
  if (o.controllers > 5) {
    char reading[32];
    std::snprintf(reading, sizeof reading, "%.1f", devices[5]->stuck_at);
    story(devices[5]->id,
          std::string("its temperature sensor stuck 1h30m before the end: it reads ") + reading +
              " ever since (see its health below)");
  }
  {
    const TwinDevice& d = *devices[2];
    const agent::TelemetryStatus s = d.agent->status();
    story(d.id, "its link was down from hour 1 to hour 3: of " + std::to_string(d.measured) +
                    " samples measured, " + std::to_string(d.sent) + " arrived, " +
                    std::to_string(s.queue.samples) + " wait for the next send, " +
                    std::to_string(s.queue.dropped_total) + " dropped");
  }
  // Device health as drover serve judges it (GET /api/v1/fleet/health, the same HealthView
  // on the same services): the fleet by status, the devices at risk, and the resources
  // forecast to run out within 30 days — here, a controller's memory.
  const health::HealthView view(service, remediator->get(), clock);
  auto judged_health = view.fleet({}, hours(int64_t{24} * 30), devices.size());
  if (!judged_health.ok()) return judged_health.error();
  report.health = {judged_health->healthy, judged_health->degraded, judged_health->critical,
                   judged_health->unknown};
  for (const health::DeviceHealth& h : judged_health->at_risk) {
    report.at_risk.push_back({h.device_id, to_string(h.status), h.score,
                              h.reasons.empty() ? std::string() : h.reasons.front().text});
  }
  for (const auto& [device, f] : judged_health->predicted) {
    if (f.resource != "memory") continue;
    report.forecasts.push_back({device, f.crossing.expected, f.crossing.earliest,
                                f.crossing.latest_s, f.crossing.slope_per_hour});
  }
  std::sort(report.forecasts.begin(), report.forecasts.end(),
            [](const auto& a, const auto& b) { return a.expected < b.expected; });
  for (const TelemetryKind& k : kinds) report.kinds.push_back(k);
  const double truck_hours =
      static_cast<double>(o.trucks) * static_cast<double>(o.horizon.count()) / 3.6e6;
  report.truck_aggregated_bytes_per_hour = static_cast<double>(kinds[2].wire_bytes) / truck_hours;
  report.truck_raw_bytes_per_hour = static_cast<double>(raw_bytes) / truck_hours;
  report.truck_json_bytes_per_hour = static_cast<double>(json_bytes) / truck_hours;
  return report;
}

std::string describe(const TelemetryTwinReport& r) {
  std::string out;
  char line[512];
  uint32_t devices = 0;
  for (const TelemetryKind& k : r.kinds) devices += k.devices;
  std::snprintf(line, sizeof line,
                "Telemetry on the twin: %s of %u devices, each through the agent's rules and "
                "queue into the embedded store (%s samples stored, %s dropped)\n",
                format_duration(r.horizon).c_str(), devices, with_commas(r.samples_stored).c_str(),
                with_commas(r.dropped).c_str());
  out += line;
  for (const TelemetryKind& k : r.kinds) {
    std::snprintf(line, sizeof line,
                  "  %-10s %3u devices  %9s samples measured, %9s sent in %5s batches, %s on "
                  "the wire\n",
                  k.kind.c_str(), k.devices, with_commas(k.samples_measured).c_str(),
                  with_commas(k.samples_sent).c_str(), with_commas(k.batches).c_str(),
                  format_bytes(k.wire_bytes).c_str());
    out += line;
  }
  std::string states;
  for (const char* s : {"fresh", "late", "stale", "offline", "no_contract"}) {
    auto it = r.freshness.find(s);
    states += std::string(states.empty() ? "" : ", ") + s + " " +
              std::to_string(it == r.freshness.end() ? 0 : it->second);
  }
  out += "  freshness against each type's contract: " + states + "\n";
  for (const TelemetryStory& s : r.stories) {
    std::snprintf(line, sizeof line, "  %-10s %-8s %s\n", s.device.c_str(), s.freshness.c_str(),
                  s.text.c_str());
    out += line;
  }
  std::snprintf(line, sizeof line,
                "  remediation (the rules drover serve runs, every minute): %zu alerts, %zu remote "
                "commands\n",
                r.alerts.size(), r.commands.size());
  out += line;
  for (const Alert& a : r.alerts) {
    std::snprintf(line, sizeof line, "    %-9s %-9s %-12s %s\n", a.id.c_str(), a.device_id.c_str(),
                  to_string(a.state),
                  (a.state == AlertState::kResolved ? a.resolution
                   : a.escalated                    ? a.escalation
                                                    : a.summary)
                      .c_str());
    out += line;
  }
  std::snprintf(line, sizeof line,
                "  device health (as GET /api/v1/fleet/health judges it): %zu healthy, %zu "
                "degraded, %zu critical, %zu unknown\n",
                r.health[0], r.health[1], r.health[2], r.health[3]);
  out += line;
  for (const TelemetryTwinReport::AtRisk& a : r.at_risk) {
    std::snprintf(line, sizeof line, "    %-9s %-9s score %3d  %s\n", a.device.c_str(),
                  a.status.c_str(), a.score, a.reason.c_str());
    out += line;
  }
  for (const TelemetryTwinReport::Forecast& f : r.forecasts) {
    const std::string latest =
        std::isfinite(f.latest_s)
            ? format_duration(to_minute(Duration(static_cast<int64_t>(f.latest_s * 1000))))
            : std::string("never");
    std::snprintf(line, sizeof line,
                  "  forecast: %s runs out of memory in about %s (90%%: %s to %s), %s an hour "
                  "less\n",
                  f.device.c_str(), format_duration(to_hour(f.expected)).c_str(),
                  format_duration(to_minute(f.earliest)).c_str(), latest.c_str(),
                  format_bytes(static_cast<uint64_t>(-f.slope_per_hour)).c_str());
    out += line;
  }
  if (r.forecasts.empty()) out += "  forecast: no controller runs out of memory within 30 days\n";
  std::snprintf(line, sizeof line,
                "  a truck's 20 metrics at 1 Hz, per hour on the wire: %s as the profile's "
                "1-minute min/max/mean, %s raw (CBOR + zstd), %s raw as JSON\n",
                format_bytes(static_cast<uint64_t>(r.truck_aggregated_bytes_per_hour)).c_str(),
                format_bytes(static_cast<uint64_t>(r.truck_raw_bytes_per_hour)).c_str(),
                format_bytes(static_cast<uint64_t>(r.truck_json_bytes_per_hour)).c_str());
  out += line;
  return out;
}

}  // namespace drover::sim
