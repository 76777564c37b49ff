// drover-agent: the device side. Reads its configuration (docs/agent.md), enrolls and logs in
// with the device's own Ed25519 key (made on first start), checks in at the interval the
// server gives, and carries updates through the update table with automatic rollback.
//   drover-agent [--config FILE] [--once]
//   drover-agent tuf --metadata-dir DIR ... init|refresh|download   (app/agent_tuf.h)
// --once: run until the device is idle with nothing left to do now, then exit (for tests,
// and for devices woken by a timer).
#include <malloc.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/stat.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "agent/agent.h"
#include "agent/bootloader.h"
#include "agent/config.h"
#include "agent/link_watchdog.h"
#include "agent/server_link.h"
#include "agent/signed_offers.h"
#include "agent/telemetry_agent.h"
#include "agent/tuf_fetcher.h"
#include "agent/update_module.h"
#include "app/agent_tuf.h"
#include "app/build_info.h"
#include "app/cli.h"
#include "base/clock.h"
#include "base/file_system.h"
#include "security/crypto.h"

namespace {

using namespace drover;
using namespace drover::agent;

// The agent's log on stderr (journald keeps it under systemd): one line per event with its
// time (UTC, ms), level and the update step it happened in — as text, or one JSON object per
// line with --log-format json. Each line is one write, so lines never interleave.
struct Log {
  bool json = false;
  const char* step = "start";

  void line(const char* level, const std::string& text) const {
    const int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                               std::chrono::system_clock::now().time_since_epoch())
                               .count();
    const time_t now_s = static_cast<time_t>(now_ms / 1000);
    tm utc{};
    ::gmtime_r(&now_s, &utc);
    char at[80];
    std::snprintf(at, sizeof at, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", utc.tm_year + 1900,
                  utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec,
                  static_cast<int>(now_ms % 1000));
    std::string out;
    if (json) {
      out = nlohmann::json{{"ts", at}, {"level", level}, {"step", step}, {"msg", text}}.dump(
                -1, ' ', false, nlohmann::json::error_handler_t::replace) +
            "\n";
    } else {
      char head[160];
      std::snprintf(head, sizeof head, "%s %-5s [%s] ", at, level, step);
      out = head + text + "\n";
    }
    std::fwrite(out.data(), 1, out.size(), stderr);
  }
  void info(const std::string& text) const { line("info", text); }
  void warn(const std::string& text) const { line("warn", text); }
  void error(const std::string& text) const { line("error", text); }
};
Log g_log;

int fail(const std::string& what) {
  g_log.error(what);
  return 1;
}

void log_line(const std::string& text) { g_log.info(text); }

// A step change in words: what the agent now does and to what ("a revert" for a fleet
// rollback sending the previous version back, so it does not read as an install).
std::string step_change(UpdateStep from, const UpdateRecord& r) {
  std::string out = std::string(to_string(from)) + " -> " + to_string(r.step);
  if (!r.version.empty()) {
    out += r.revert ? " (revert: " + r.component + " back to " + r.version +
                          (r.switch_back ? ", switching back to the kept slot)" : ")")
                    : " (" + r.component + " " + r.version +
                          (r.from_version.empty() ? "" : ", from " + r.from_version) + ")";
  }
  if (r.step == UpdateStep::kIdle && r.report) {
    out += "; to report: " + std::string(protocol::to_string(*r.report));
    if (!r.message.empty()) out += " (" + r.message + ")";
  }
  return out;
}

// Required signed update metadata that cannot be trusted: no offer is taken.
class RefuseEveryOffer final : public OfferCheck {
 public:
  explicit RefuseEveryOffer(std::string why) : why_(std::move(why)) {}
  Status check(const Offer&, const Inventory&) override {
    return Error{ErrorCode::kFailedPrecondition, why_};
  }

 private:
  std::string why_;
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"drover-agent: updates for this device, safely", "drover-agent"};
  std::string config_path = "/etc/drover/agent.json";
  bool once = false;
  std::string log_format = "text";
  app.add_option("--config", config_path, "configuration file (JSON)");
  app.add_option("--log-format", log_format,
                 "text: time, level, [step], message; json: one object per line")
      ->check(CLI::IsMember({"text", "json"}));
  app.add_flag("--once", once, "run until idle with nothing to do now, then exit");
  app::TufCommand tuf;
  app::add_tuf_command(app, tuf);
  app::add_conventions(app, "drover-agent",
                       {{"tuf",
                         "tuf --metadata-dir /var/lib/drover-agent/tuf --metadata-url "
                         "https://drover.example.com/tuf/metadata refresh"}});
  app.footer("\nExample:\n  drover-agent --config /etc/drover/agent.json\n");
  if (const int rc = app::parse_command_line(app, argc, argv); rc >= 0) return rc;
  if (!tuf.verb.empty()) return app::run_tuf_command(tuf);
  g_log.json = log_format == "json";

  auto text = real_file_system().read(config_path);
  if (!text.ok()) return fail(text.error().to_string());
  auto config = parse_agent_config(*text);
  if (!config.ok()) return fail(config_path + ": " + config.error().message);
  AgentConfig& c = *config;

  std::error_code ec;
  std::filesystem::create_directories(c.agent.data_dir, ec);
  if (ec) return fail("cannot create " + c.agent.data_dir + ": " + ec.message());
  ::chmod(c.agent.data_dir.c_str(), 0700);
  c.link.device_key_file = (std::filesystem::path(c.agent.data_dir) / "device.key").string();
  auto key = load_or_create_key(real_file_system(), c.link.device_key_file);
  if (!key.ok()) return fail(key.error().to_string());

  SystemClock clock;
  auto link = make_http_link(c.link, std::move(*key), clock);
  if (!link.ok()) return fail(link.error().to_string());

  std::unique_ptr<Bootloader> bootloader;
  FileBootloader* fake = nullptr;
  std::unique_ptr<UpdateModule> module;
  const ModuleConfig& m = c.module;
  if (m.type == "file") {
    module = make_file_module({m.target, m.restart}, system_commands());
  } else if (m.type == "script") {
    module = make_script_module({m.install, m.commit, m.rollback}, system_commands());
  } else {
    if (m.bootloader == "uboot") {
      bootloader = make_uboot_bootloader(system_commands(), m.cmdline, m.uboot_config);
    } else if (m.bootloader == "grub") {
      bootloader = make_grub_bootloader(system_commands(), m.grub_env, m.cmdline);
    } else {
      auto owned = std::make_unique<FileBootloader>(real_file_system(), m.bootloader_file);
      fake = owned.get();
      bootloader = std::move(owned);
    }
    AbSlotOptions ab{m.slot_a, m.slot_b, {}};
    const std::vector<std::string> reboot_command = m.reboot;
    const bool trial_boots = m.trial_boot == "boots";
    ab.reboot = [fake, reboot_command, trial_boots]() -> Status {
      if (!reboot_command.empty()) {
        log_line("rebooting: " + reboot_command.front());
        auto r = system_commands().run(reboot_command, seconds(60));
        if (!r.ok()) return r.error();
        if (!r->ok()) return io_error("the reboot command failed: " + r->output);
      }
      if (fake == nullptr) return ok_status();
      // The simulated machine comes back up: in the trial slot, or (trial_boot "fails") in
      // the committed one, as a bootloader does when the new image does not boot.
      if (!trial_boots) log_line("the trial boot fails (trial_boot \"fails\"): falling back");
      return fake->boot(trial_boots);
    };
    module = make_ab_slot_module(std::move(ab), *bootloader);
  }

  // The seed of the agent's jitter comes from the OS's random bytes: devices that boot
  // together (a power cut over a building) must not retry in step.
  auto seed_bytes = security::random_bytes(sizeof(uint64_t));
  if (!seed_bytes.ok()) return fail(seed_bytes.error().to_string());
  uint64_t seed = 0;
  std::memcpy(&seed, seed_bytes->data(), sizeof seed);
  // Signed update metadata, when configured: every offer is checked against it first.
  std::unique_ptr<HttpMetadataFetcher> metadata_fetcher;
  std::unique_ptr<SignedOffers> signed_offers;
  std::unique_ptr<OfferCheck> refuse_all;
  if (!c.initial_root.empty()) {
    metadata_fetcher = std::make_unique<HttpMetadataFetcher>(link_client_options(c.link));
    std::string url = c.link.server;
    if (!url.empty() && url.back() == '/') url.pop_back();
    auto opened = SignedOffers::open(
        {(std::filesystem::path(c.agent.data_dir) / "tuf").string(), url + "/tuf/metadata/",
         c.initial_root, c.link.device_type, c.link.hardware_revision},
        *metadata_fetcher, clock);
    if (opened.ok()) {
      signed_offers = std::move(*opened);
      c.agent.offer_check = signed_offers.get();
    } else {
      // No trusted root: every offer is refused, saying why, but the agent still starts, so
      // an update in the middle of its trial boot commits or rolls back.
      const std::string why = "signed_updates: " + opened.error().to_string();
      log_line(why + "; every offer is refused until this is mended");
      refuse_all = std::make_unique<RefuseEveryOffer>(why);
      c.agent.offer_check = refuse_all.get();
    }
  }
  // Remote commands: journaled in the data directory, run as the configuration allows.
  RemoteCommands remote((std::filesystem::path(c.agent.data_dir) / "commands.json").string(),
                        c.remote, system_commands(), clock);
  c.agent.remote_commands = &remote;
  // Configuration, when the device takes it: its own envelope read before the first check-in.
  std::unique_ptr<ConfigApplier> configuration;
  if (c.configuration) {
    configuration = std::make_unique<ConfigApplier>(*c.configuration, system_commands(), clock);
    configuration->start();  // what it cannot use, it says (and refuses every document)
    for (const std::string& line : configuration->take_log()) g_log.warn(line);
    c.agent.config = configuration.get();
  }
  int signals = -1;  // the stop signals' descriptor, made below (before any command runs)
  std::unique_ptr<TelemetryAgent> telemetry;  // started below, stopped cleanly by a reboot
  // A reboot by `command` (for `why`): a reboot command returns while the system goes down
  // (systemctl reboot), so the agent then waits to be stopped. Still up after five minutes,
  // it did not happen.
  auto reboot_by = [&signals, &telemetry, &clock](std::vector<std::string> command,
                                                  std::string why) -> std::function<Status()> {
    return [argv = std::move(command), why = std::move(why), &signals, &telemetry,
            &clock]() -> Status {
      log_line("rebooting (" + why + "): " + argv.front());
      auto r = system_commands().run(argv, seconds(60));
      if (!r.ok()) return r.error();
      if (!r->ok()) {
        return io_error("the reboot command failed (exit " + std::to_string(r->exit_code) +
                        "): " + r->output);
      }
      pollfd stop{signals, POLLIN, 0};
      if (::poll(&stop, 1, 5 * 60 * 1000) > 0) {
        // A clean stop, as at any SIGTERM: telemetry sends what it holds and notes the stop
        // (so the reboot is counted as asked for, not as a power cut).
        if (telemetry) {
          telemetry->stop();
          for (const std::string& line : telemetry->take_log()) log_line(line);
        }
        clock.stop();
        log_line("stopped for the reboot");
        std::fflush(stdout);
        std::_Exit(0);
      }
      return io_error("the reboot command succeeded, but the device was still up 5 minutes later");
    };
  };
  if (!c.remote_reboot.empty())
    c.agent.reboot_device = reboot_by(c.remote_reboot, "remote command");
  // The link watchdog, when configured: the device's own remedy for a link that hangs.
  std::unique_ptr<LinkWatchdog> watchdog;
  if (c.watchdog) {
    watchdog = std::make_unique<LinkWatchdog>(
        (std::filesystem::path(c.agent.data_dir) / "link.json").string(), *c.watchdog,
        system_commands(), clock, reboot_by(c.watchdog_reboot, "link watchdog"));
    auto started = watchdog->start();
    if (!started.ok()) {
      g_log.warn("link watchdog off: " + started.error().to_string());
      watchdog.reset();
    } else if (!started->empty()) {
      g_log.warn(*started);
    }
  }
  Agent agent(c.agent, **link, *module, system_commands(), clock, seed);
  if (Status st = agent.start(c.installed); !st.ok()) return fail(st.error().to_string());

  // Telemetry, when configured. It shares the link's session; a failure to start it is
  // logged and the agent carries on with updates, which matter more.
  if (c.telemetry) {
    c.telemetry->link_up_at = c.agent.link_up_at;
    telemetry = std::make_unique<TelemetryAgent>(*c.telemetry, **link, clock, ~seed);
    if (Status st = telemetry->start(); !st.ok()) {
      log_line("telemetry off: " + st.error().to_string());
      telemetry.reset();
    }
  }

  // SIGTERM/SIGINT end the wait between steps (never a step itself: each is short, and the
  // state is saved before every transition anyway). They arrive on a descriptor, polled with
  // the StatsD socket.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);
  signals = ::signalfd(-1, &stop, SFD_CLOEXEC);
  if (signals < 0) return fail("signalfd: " + errno_text(errno));

  UpdateStep last = agent.record().step;
  g_log.step = to_string(last);
  log_line(app::version_text("drover-agent") + " started as " + c.link.device_id + " (" +
           c.link.device_type + ", " + c.link.hardware_revision + ") against " + c.link.server +
           ", module " + c.module.type + (telemetry ? ", telemetry on" : "") +
           (watchdog ? ", link watchdog on" : "") +
           (configuration ? ", configuration at " + c.configuration->path : ""));
  Timestamp agent_due = clock.now();
  Timestamp last_trim{};
  Timestamp telemetry_due = clock.now();
  Timestamp watchdog_due = clock.now();
  // The watchdog looks after every step of the agent (what its requests met) and when due.
  auto watch = [&] {
    if (!watchdog) return;
    const LinkWatchdog::Check w = watchdog->check((*link)->reach());
    if (!w.did.empty()) g_log.warn(w.did);
    watchdog_due = clock.now() + w.next;
  };
  for (;;) {
    if (watchdog && clock.now() >= watchdog_due) watch();
    if (telemetry && clock.now() >= telemetry_due) {
      telemetry_due = clock.now() + telemetry->run_once();
      for (const std::string& line : telemetry->take_log()) log_line(line);
    }
    if (clock.now() >= agent_due) {
      const Duration wait = agent.run_once();
      const UpdateRecord& r = agent.record();
      // The error first, in the step where it happened (a failed health check: its command,
      // exit code and the tail of its output), then where that led.
      if (!agent.last_error().empty()) g_log.warn(agent.last_error());
      if (configuration) {
        for (const std::string& line : configuration->take_log()) log_line(line);
      }
      if (r.step != last) {
        g_log.step = to_string(r.step);
        log_line(step_change(last, r));
        last = r.step;
      }
      watch();
      if (once && r.step == UpdateStep::kIdle && !r.report && wait > Duration(0)) break;
      agent_due = clock.now() + std::max(wait, Duration(0));
    }
    // Every step ends in a wait, if only for a signal already pending: a run of steps that
    // go straight on (a server that keeps offering what fails) still stops on SIGTERM.
    Timestamp due = telemetry ? std::min(agent_due, telemetry_due) : agent_due;
    if (watchdog) due = std::min(due, watchdog_due);
    const Duration pause = std::max(due - clock.now(), Duration(0));
    // Going idle for a second or more: the heap's free pages go back to the system (a
    // batch's buffers, a download's), so a device's memory is what the agent holds, not
    // what it once needed. At most once a minute; a heap walk of a few hundred KiB.
    if (pause >= seconds(1) && clock.now() - last_trim >= minutes(1)) {
      ::malloc_trim(0);
      last_trim = clock.now();
    }
    pollfd fds[2] = {{signals, POLLIN, 0}, {telemetry ? telemetry->statsd_fd() : -1, POLLIN, 0}};
    const int ready = ::poll(fds, 2, static_cast<int>(std::min<int64_t>(pause.count(), 3'600'000)));
    if (ready > 0 && (fds[0].revents & POLLIN) != 0) break;
    if (ready > 0 && (fds[1].revents & POLLIN) != 0) telemetry->statsd_readable();
  }
  if (telemetry) {
    telemetry->stop();
    for (const std::string& line : telemetry->take_log()) log_line(line);
  }
  clock.stop();
  log_line("stopped");
  return 0;
}
