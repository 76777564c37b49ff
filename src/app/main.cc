// drover: the control plane's command line. This issue brings the digital twin:
//   drover sim SCENARIO [--seed N] [--devices N] [--report-json FILE] [--store memory|sqlite:PATH]
//   [--network [--network-dir DIR] [--payload-bytes N]
//              [--server URL --token T --enrollment-token E [--ca-file F] [--initial-root F]]]
//   drover demo [--devices N] [--report-json FILE]
//   drover rollout plan SCENARIO [--seed N] [--devices N] [--json]
//   drover serve [--data DIR] [--listen HOST:PORT] [--threads N] [--enrollment-token T]...
//   [--debug]
//   drover keys gen|list|rotate-root|sign-targets|delegate|undelegate --data DIR ...
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <string>

#include "app/cli.h"
#include "app/demo_scenario.h"
#include "app/keys.h"
#include "app/remote.h"
#include "app/serve.h"
#include "base/system_memory.h"
#include "base/units.h"
#include "sim/field_twin.h"
#include "sim/simulator.h"
#include "sim/telemetry_twin.h"
#include "sim/wear_twin.h"

namespace {

using drover::sim::Report;
using drover::sim::Scenario;
using drover::sim::SimOptions;

struct SimArgs {
  std::string scenario;
  uint64_t seed = 0;
  uint32_t devices = 0;
  std::string report_json;
  std::string store = "memory";
  bool quiet = false;
  bool json = false;
  bool network = false;
  std::string network_dir;
  uint64_t payload_bytes = 64 * drover::kKiB;
  std::string server, token, enrollment_token, ca_file, initial_root;
};

void add_common(CLI::App* cmd, SimArgs& a) {
  cmd->add_option("--seed", a.seed, "override the scenario's random seed");
  cmd->add_option("--devices", a.devices, "override the scenario's device count")
      ->check(CLI::Range(1u, 10'000'000u));
}

SimOptions options_from(const SimArgs& a) {
  SimOptions o;
  if (a.seed != 0) o.seed = a.seed;
  if (a.devices != 0) o.devices = a.devices;
  o.store = a.store;
  o.memory_available = drover::available_memory_bytes();
  if (a.network || !a.server.empty()) {
    drover::sim::NetworkSimOptions n;
    n.dir = a.network_dir;
    n.payload_bytes = a.payload_bytes;
    n.server = a.server;
    n.token = a.token;
    if (n.token.empty() && std::getenv("DROVER_TOKEN") != nullptr)
      n.token = std::getenv("DROVER_TOKEN");
    n.enrollment_token = a.enrollment_token;
    n.ca_file = a.ca_file;
    n.initial_root = a.initial_root;
    o.network = n;
  }
  if (!a.quiet) {
    o.timeline = [](const std::string& line) { std::cout << line << "\n" << std::flush; };
  }
  if (!a.quiet && isatty(STDERR_FILENO)) {
    o.progress = [last = -1](double f, uint32_t updated, uint32_t eligible) mutable {
      const int pct = static_cast<int>(std::min(1.0, f) * 100);
      if (pct == last) return;
      last = pct;
      const int bar = pct / 4;
      std::fprintf(stderr, "\r[%-25s] %3d%% of the horizon  %u / %u updated ",
                   std::string(bar, '#').c_str(), pct, updated, eligible);
      if (pct >= 100) std::fprintf(stderr, "\n");
    };
  }
  return o;
}

std::string seconds_text(const std::optional<double>& s) {
  if (!s) return "never";
  return drover::format_duration(drover::Duration(static_cast<int64_t>(*s) * 1000));
}

void print_summary(const Report& r, bool network) {
  std::printf("\n== %s: %u devices, seed %llu ==\n", r.scenario.c_str(), r.devices_total,
              static_cast<unsigned long long>(r.seed));
  std::printf("  rollout                %s\n", r.rollout_state.c_str());
  std::printf("  eligible               %u\n", r.devices_eligible);
  const drover::RolloutOutcome& o = r.outcome;
  std::printf("  updated                %u\n", r.devices_updated);
  std::printf(
      "  failed                 %u  (install %u, trial boot fell back %u, unhealthy %u, "
      "unhealthy then sent back %u, went silent in the watch %u, failed then due a revert %u)\n",
      r.devices_failed, o.install_failed, o.fell_back, o.unhealthy, o.unhealthy_reverted,
      o.went_silent, o.failed_in_revert);
  std::printf("  sent back (healthy)    %u\n", r.devices_reverted);
  if (r.reverts_switched_back + r.reverts_downloaded > 0) {
    std::printf("  reverts                %u switched back to the kept slot, %u downloaded\n",
                r.reverts_switched_back, r.reverts_downloaded);
  }
  if (o.revert_failed > 0) std::printf("  revert failed          %u\n", o.revert_failed);
  if (o.skipped > 0) std::printf("  excluded by a rule     %u\n", o.skipped);
  std::printf("  not offered (halted)   %u", r.devices_cancelled);
  if (r.devices_withdrawn > 0)
    std::printf("  (%u of them dropped the image they held)", r.devices_withdrawn);
  std::printf("\n");
  for (const auto& w : o.never_offered_why)
    std::printf("    %-20s %u\n", w.reason.c_str(), w.devices);
  if (o.silent > 0 || r.devices_dark > 0) {
    std::printf(
        "  silent                 %u  (past their check-in contract: out of the gates and "
        "settling; %u went dark in the twin)\n",
        o.silent, r.devices_dark);
  }
  std::printf("  unreachable            %u\n", r.devices_unreachable);
  std::printf("  bricked                %u\n", r.devices_bricked);
  std::printf(
      "  outside windows        %u installs, %u reboots, %u commits  (%u held the image for a "
      "later window)\n",
      r.windows.installs_outside, r.windows.reboots_outside, r.windows.commits_outside,
      r.windows.held);
  for (const auto& h : r.halted_strata) {
    std::string who = h.hardware_revision.empty() ? "" : "hardware revision " + h.hardware_revision;
    if (!h.site.empty()) who += (who.empty() ? "" : ", ") + std::string("site ") + h.site;
    if (!h.connectivity.empty())
      who += (who.empty() ? "" : ", ") + std::string("link ") + h.connectivity;
    if (who.empty()) who = "the whole rollout";
    std::printf("  halted                 %s (%u devices, %u never offered): %s\n", who.c_str(),
                h.devices, h.never_offered, h.reason.c_str());
  }
  // Two examples here; the JSON report has more, each with its whole history.
  for (size_t k = 0; k < std::min<size_t>(2, r.failed_sample.size()); ++k) {
    const auto& f = r.failed_sample[k];
    const std::string last = f.history.empty() ? "" : f.history.back().message;
    std::printf("  failed, e.g.           %s (%s): %s\n", f.device_id.c_str(), f.state.c_str(),
                last.empty() ? "no message" : last.c_str());
  }
  std::printf("  time to 50%% / 95%% / 100%% of healthy strata   %s / %s / %s\n",
              seconds_text(r.time_to_50_percent_s).c_str(),
              seconds_text(r.time_to_95_percent_s).c_str(),
              seconds_text(r.time_to_100_percent_s).c_str());
  std::printf(
      "  simulated %s in %.2f s wall; %llu check-ins %s (%.0f/s)\n",
      drover::format_duration(drover::Duration(static_cast<int64_t>(r.simulated_seconds) * 1000))
          .c_str(),
      r.wall_seconds, static_cast<unsigned long long>(r.checkins),
      network ? "by agents over HTTP" : "through DeviceService", r.checkins_per_wall_second);
}

int run(const Scenario& scenario, const SimArgs& args, bool preflight) {
  SimOptions o = options_from(args);
  o.preflight = preflight;
  if (preflight || args.json) o.timeline = nullptr;
  auto report = drover::sim::run_simulation(scenario, o);
  if (!report.ok()) {
    std::cerr << "drover: " << report.error().to_string() << "\n";
    return 1;
  }
  if (!args.report_json.empty()) {
    std::ofstream out(args.report_json);
    out << report->to_json();
    if (!out) {
      std::cerr << "drover: cannot write " << args.report_json << "\n";
      return 1;
    }
  }
  if (args.json) {
    std::cout << report->to_json();
  } else if (preflight) {
    std::printf("pre-flight of rollout %s on the twin of %u devices (defects ignored)\n",
                scenario.rollout.name.c_str(), report->devices_total);
    std::printf("  eligible: %u\n", report->devices_eligible);
    std::printf("  predicted time to 50%%: %s, 95%%: %s, 100%%: %s\n",
                seconds_text(report->time_to_50_percent_s).c_str(),
                seconds_text(report->time_to_95_percent_s).c_str(),
                seconds_text(report->time_to_100_percent_s).c_str());
    if (!report->stages.empty() && report->stages.front().asked) {
      std::printf("  %-10s %8s %10s %8s  %-10s %-14s %s\n", "stage", "adds", "cumulative", "asked",
                  "took", "bound by", "why more than asked");
      for (const auto& st : report->stages) {
        const std::string took =
            st.finished_at_s ? drover::format_duration(drover::Duration(static_cast<int64_t>(
                                   (*st.finished_at_s - st.started_at_s) * 1000)))
                             : "-";
        std::printf("  %-10s %8u %10u %8u  %-10s %-14s %s\n", st.name.c_str(), st.devices,
                    st.planned, st.asked.value_or(0), took.c_str(), st.bound_by.c_str(),
                    st.why.c_str());
      }
    }
    std::printf("  never reached within %s: %zu\n",
                drover::format_duration(scenario.horizon).c_str(), report->never_reached.size());
    size_t shown = 0;
    for (const auto& u : report->never_reached) {
      if (shown++ == 20) {
        std::printf("    ... and %zu more (use --json for all)\n",
                    report->never_reached.size() - 20);
        break;
      }
      std::printf("    %s: %s\n", u.device_id.c_str(), u.reason.c_str());
    }
  } else {
    print_summary(*report, args.network || !args.server.empty());
  }
  return 0;
}

// One example per verb, shown at the end of its --help page (keyed by the verb's path).
std::map<std::string, std::string> examples() {
  return {
      {"sim", "sim scenarios/demo.json --devices 3000 --report-json report.json"},
      {"demo", "demo --devices 2000"},
      {"field", "field --devices 10000 --days 90 --store sqlite:field.db"},
      {"maintenance", "maintenance --pumps 1000 --days 730"},
      {"serve",
       "serve --data ./drover-data --listen 0.0.0.0:8480 --poll-interval 5m "
       "--enrollment-token-file tokens.txt"},
      {"token create",
       "token create --data ./drover-data --name ci --role operator --lifetime 90d"},
      {"token ls", "token ls"},
      {"token revoke", "token revoke 3f9c0a17b2d4e861"},
      {"keys gen", "keys gen --data ./drover-data --root-key-dir /media/offline"},
      {"keys list", "keys list --data ./drover-data"},
      {"keys rotate-root",
       "keys rotate-root --data ./drover-data --root-key /media/offline/root-1.pem --rotate "
       "timestamp"},
      {"keys sign-targets",
       "keys sign-targets --data ./drover-data --targets-key "
       "/media/offline/targets-3f9c0a17b2d4e861.pem"},
      {"keys delegate",
       "keys delegate --data ./drover-data --role thermostats --path 'thermostat-*/*' "
       "--terminating --key-dir /media/thermostat-team"},
      {"keys undelegate", "keys undelegate --data ./drover-data --role thermostats"},
      {"rollout plan", "rollout plan scenarios/demo.json --devices 15000"},
      {"rollout create", "rollout create examples/plan.json --dry-run"},
      {"rollout predict", "rollout predict examples/plan.json --install-time 30s"},
      {"rollout ls", "rollout ls --json"},
      {"rollout status", "rollout status rollout-0001 --watch"},
      {"rollout devices", "rollout devices rollout-0001 --state failed"},
      {"rollout history", "rollout history rollout-0001 thermostat-0017"},
      {"rollout start", "rollout start rollout-0001"},
      {"rollout pause", "rollout pause rollout-0001"},
      {"rollout resume", "rollout resume rollout-0001"},
      {"rollout abort", "rollout abort rollout-0001"},
      {"rollout rollback", "rollout rollback rollout-0001"},
      {"device ls", "device ls --site bldg-7 --tag north --all"},
      {"device show", "device show thermostat-0017"},
      {"device history", "device history thermostat-0017"},
      {"device command",
       "device command thermostat-0017 restart_service sensord --reason \"no samples for 2h\""},
      {"device commands", "device commands thermostat-0017 --limit 20"},
      {"device cancel-command", "device cancel-command cmd-17"},
      {"alert ls", "alert ls --device thermostat-0017 --all"},
      {"alert show", "alert show alert-12"},
      {"alert ack", "alert ack alert-12"},
      {"alert resolve", "alert resolve alert-12 --note \"replaced the modem\""},
      {"alert rules", "alert rules"},
      {"health device", "health device thermostat-0017"},
      {"health fleet", "health fleet --days 14 --site bldg-7"},
      {"device add", "device add thermostat-0017 --type thermostat --revision rev-b --site bldg-7"},
      {"device set", "device set thermostat-0017 --connectivity lte"},
      {"device set-site", "device set-site thermostat-0017 bldg-9"},
      {"device tag", "device tag thermostat-0017 north pilot"},
      {"device untag", "device untag thermostat-0017 pilot"},
      {"device accept", "device accept thermostat-0017"},
      {"device reject", "device reject thermostat-0017"},
      {"device unreject", "device unreject thermostat-0017"},
      {"device decommission", "device decommission thermostat-0017"},
      {"site ls", "site ls"},
      {"site put", "site put examples/site.json"},
      {"artifact upload",
       "artifact upload fw-2.1.0.bin --name firmware --version 2.1.0 --device-type thermostat"},
      {"artifact ls", "artifact ls"},
      {"artifact show", "artifact show firmware 2.1.0"},
      {"artifact rm", "artifact rm firmware 2.0.0"},
      {"profile ls", "profile ls"},
      {"profile show", "profile show thermostat"},
      {"profile set", "profile set thermostat-profile.json"},
      {"config show", "config show bms-controller"},
      {"config history", "config history bms-controller"},
      {"config set", "config set bms-controller winter.json --note 'winter set points'"},
      {"telemetry latest", "telemetry latest thermostat-0017"},
      {"telemetry range",
       "telemetry range thermostat-0017 --metric temperature_c --from -6h --resolution 1m"},
      {"telemetry freshness", "telemetry freshness --stale"},
      {"audit ls", "audit ls --limit 20"},
      {"audit show", "audit show 42"},
      {"audit checkpoint", "audit checkpoint > checkpoint.json"},
      {"audit verify", "audit verify --checkpoint checkpoint.json"},
      {"enrollment-token create",
       "enrollment-token create --name line-3 --device-type thermostat --max-uses 50 --lifetime "
       "24h"},
      {"enrollment-token ls", "enrollment-token ls"},
      {"enrollment-token revoke", "enrollment-token revoke 3f9c0a17b2d4e861"},
  };
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"drover: DevOps for fleets of connected devices", "drover"};
  app.require_subcommand(1);
  drover::app::GlobalFlags globals;
  drover::app::add_global_flags(app, globals);

  SimArgs sim_args;
  auto* sim = app.add_subcommand("sim", "run a scenario on the fleet simulator (the digital twin)");
  sim->add_option("scenario", sim_args.scenario, "scenario file (JSON)")->required();
  add_common(sim, sim_args);
  sim->add_option("--report-json", sim_args.report_json, "write the report to this file");
  sim->add_option("--store", sim_args.store, "memory (default) or sqlite:PATH");
  sim->add_flag("--quiet", sim_args.quiet, "no timeline, no progress bar");
  sim->add_flag("--network", sim_args.network,
                "run the devices as real agents against the real server over loopback");
  sim->add_option("--network-dir", sim_args.network_dir,
                  "--network: the agents' state directories (default: a temporary one)");
  sim->add_option("--payload-bytes", sim_args.payload_bytes,
                  "--network: the bytes an artifact carries over the wire (default 65536)")
      ->check(CLI::Range(uint64_t{4096}, uint64_t{1} << 32));
  sim->add_option("--server", sim_args.server,
                  "--network against this drover serve (real time) instead of one in process");
  sim->add_option("--token", sim_args.token,
                  "--server: an operator API token (default $DROVER_TOKEN)");
  sim->add_option("--enrollment-token", sim_args.enrollment_token,
                  "--server: the server's pre-shared enrollment token, for the agents");
  sim->add_option("--ca-file", sim_args.ca_file, "--server: the CA to trust for https");
  sim->add_flag("--json", sim_args.json, "print the report as JSON (no timeline)");
  sim->add_option("--initial-root", sim_args.initial_root,
                  "--server: the server's root of signed update metadata "
                  "(<data>/tuf/metadata/1.root.json): the agents install only signed targets");

  SimArgs demo_args;
  auto* demo = app.add_subcommand(
      "demo", "a security patch to 15,000 devices in 200 buildings, on the twin");
  add_common(demo, demo_args);
  demo->add_option("--report-json", demo_args.report_json, "write the report to this file");
  demo->add_flag("--json", demo_args.json, "print the rollout's report as JSON (no story)");

  SimArgs plan_args;
  auto* rollout = app.add_subcommand("rollout", "rollout commands");
  rollout->require_subcommand(1);
  auto* plan = rollout->add_subcommand("plan", "pre-flight a scenario's rollout on the twin");
  plan->add_option("scenario", plan_args.scenario, "scenario file (JSON)")->required();
  add_common(plan, plan_args);
  plan->add_flag("--json", plan_args.json, "print the full report as JSON");

  drover::sim::FieldTwinOptions field_args;
  bool field_only_with = false;
  auto* field = app.add_subcommand(
      "field", "the farm's 90 days on the twin: device loss with and without remediation");
  field->add_option("--devices", field_args.devices, "sensors (default 10000)")
      ->check(CLI::Range(1u, 1'000'000u));
  field->add_option("--days", field_args.days, "days (default 90)")->check(CLI::Range(1u, 3650u));
  field->add_option("--seed", field_args.seed, "random seed (default 1)");
  field->add_option("--store", field_args.store,
                    "the remediation run's store: memory (default) or sqlite:PATH (a new file)");
  field->add_flag("--only-with-rules", field_only_with, "skip the run without remediation");
  bool field_json = false;
  field->add_flag("--json", field_json, "print the report as JSON");

  drover::sim::WearTwinOptions wear_args;
  bool wear_json = false;
  auto* maintenance = app.add_subcommand(
      "maintenance", "pumps on the twin: predicted failures against fixed maintenance schedules");
  maintenance->add_option("--pumps", wear_args.pumps, "pumps (default 1000)")
      ->check(CLI::Range(1u, 1'000'000u));
  maintenance->add_option("--days", wear_args.days, "days (default 730)")
      ->check(CLI::Range(1u, 36500u));
  maintenance->add_option("--seed", wear_args.seed, "random seed (default 1)");
  maintenance->add_flag("--json", wear_json, "print the report as JSON");

  drover::app::ServeArgs serve_args;
  auto* serve = app.add_subcommand("serve", "serve the device and operator APIs");
  serve->add_option("--data", serve_args.data, "data directory (created when missing)");
  serve->add_option("--listen", serve_args.listen, "HOST:PORT to listen on (port 0: any)");
  serve->add_option("--threads", serve_args.threads, "I/O threads")->check(CLI::Range(1, 64));
  serve
      ->add_option("--enrollment-token", serve_args.enrollment_tokens,
                   "a pre-shared token that admits enrolling devices at once (repeatable; also "
                   "from DROVER_ENROLLMENT_TOKEN, which keeps it out of the process list)")
      ->envname("DROVER_ENROLLMENT_TOKEN");
  serve->add_option("--enrollment-token-file", serve_args.enrollment_token_file,
                    "read enrollment tokens from FILE, one per line ('#' starts a comment)");
  serve->add_option("--factory-ca", serve_args.factory_cas,
                    "trust devices whose factory certificate this manufacturer CA (PEM) signed: "
                    "they enroll at once, as the id, type and revision it names (repeatable)");
  serve->add_flag("--debug", serve_args.debug, "log one JSON line per request on stderr");
  serve->add_option("--poll-interval", serve_args.poll_interval,
                    "when an idle device is told to check in again (default 30m): shorter is "
                    "quicker to start an update, longer is less load (docs/api/device.md)");
  serve->add_option("--busy-poll-interval", serve_args.busy_poll_interval,
                    "...and a device with an update under way (default 5m)");
  serve->add_option("--remediate-service", serve_args.remediate_service,
                    "the service a device that checks in but sends no telemetry is first asked "
                    "to restart, before a reboot and a person (docs/health.md)");
  serve->add_option("--remediation-rules", serve_args.remediation_rules,
                    "the remediation rules and limits from this JSON file instead of the "
                    "defaults (docs/health.md, \"Rules from a file\")");
  serve->add_flag("--no-remediation", serve_args.no_remediation,
                  "run no remediation rules: no alerts, no automatic commands");
  serve->add_option("--alert-webhook", serve_args.alert_webhook,
                    "POST every change of an alert to this URL, signed and retried "
                    "(docs/api/operator.md, \"Alert webhook\")");
  serve->add_option("--alert-webhook-secret-file", serve_args.alert_webhook_secret_file,
                    "the webhook's HMAC-SHA256 key, shared with its receiver (at least 16 bytes)");
  serve->add_option("--alert-webhook-ca", serve_args.alert_webhook_ca,
                    "an https webhook's certificate must chain to this CA (PEM); default: the "
                    "system's");
  serve->add_option("--max-artifact-bytes", serve_args.max_artifact_bytes,
                    "the largest artifact upload accepted");
  serve->add_option("--tls-cert", serve_args.tls_cert, "serve HTTPS: certificate chain (PEM)");
  serve->add_option("--tls-key", serve_args.tls_key, "serve HTTPS: private key (PEM)");
  serve->add_option("--client-ca", serve_args.client_ca,
                    "mutual TLS: clients must present a certificate this CA (PEM) signed");
  serve->add_option("--remote-write", serve_args.remote_write,
                    "also send every telemetry sample to this Prometheus remote write URL "
                    "(e.g. http://victoria:8428/api/v1/write), retried without loss");
  serve
      ->add_option("--remote-write-header", serve_args.remote_write_headers,
                   "a header for the remote write, 'Name: value' (repeatable; also from "
                   "DROVER_REMOTE_WRITE_HEADER, which keeps a secret out of the process list)")
      ->envname("DROVER_REMOTE_WRITE_HEADER");
  serve->add_option("--tick-interval", serve_args.tick_interval,
                    "how often rollouts are judged and advanced (default 60s)");
  serve->add_option("--remediation-interval", serve_args.remediation_interval,
                    "how often the remediation rules judge the fleet (default 60s)");
  serve->add_option("--device-token-lifetime", serve_args.device_token_lifetime,
                    "life of the bearer tokens devices log in for (default 15m)");
  serve
      ->add_option("--max-pending-devices", serve_args.max_pending_devices,
                   "devices that may wait for an operator at once, enrolled without a token "
                   "(default 10000); more are refused until some are accepted or rejected")
      ->check(CLI::Range(1, 10'000'000));
  serve->add_option("--pending-lifetime", serve_args.pending_lifetime,
                    "a device enrolled without a token that nobody accepts or rejects within "
                    "this long is removed and may enroll again (default 7d; 0 keeps it)");
  serve
      ->add_option("--enroll-rate", serve_args.enroll_per_minute,
                   "enrollments without a token per minute from one source address or IPv6 "
                   "/64 (default 12; loopback is not limited)")
      ->check(CLI::Range(0.01, 1e6));
  serve
      ->add_option("--enroll-burst", serve_args.enroll_burst,
                   "...of which this many at once, after a quiet spell (default 20)")
      ->check(CLI::Range(1, 1'000'000));
  serve
      ->add_option("--login-rate", serve_args.login_per_second,
                   "device logins per second from one source (default 5; a building's devices "
                   "share its NAT)")
      ->check(CLI::Range(0.01, 1e6));
  serve
      ->add_option("--login-burst", serve_args.login_burst,
                   "...of which this many at once, after a quiet spell (default 300)")
      ->check(CLI::Range(1, 1'000'000));

  drover::app::TokenCreateArgs token_args;
  auto* token = app.add_subcommand("token", "operator API tokens");
  token->require_subcommand(1);
  auto* token_create =
      token->add_subcommand("create", "create an API token in the data directory (prints it once)");
  token_create->add_option("--data", token_args.data, "data directory of the server");
  token_create->add_option("--name", token_args.name, "what the token is for")->required();
  token_create->add_option("--role", token_args.role, "admin, operator or viewer");
  token_create->add_option("--lifetime", token_args.lifetime, "e.g. 90d; default: no expiry");
  token_create->add_flag("--init", token_args.init,
                         "create the data directory's store when it has none (before the "
                         "server first ran)");
  token_create->add_flag("--json", token_args.json, "print the token and its record as JSON");

  drover::app::KeysArgs keys_args;
  auto* keys = app.add_subcommand("keys", "keys of the signed update metadata (TUF)");
  keys->require_subcommand(1);
  auto* keys_gen = keys->add_subcommand(
      "gen", "make root keys (offline), online keys and root version 1 in the data directory");
  auto* keys_list = keys->add_subcommand("list", "each role's keys, threshold and version");
  auto* keys_rotate = keys->add_subcommand(
      "rotate-root", "write the next root version, signed by old and new root keys");
  auto* keys_sign = keys->add_subcommand(
      "sign-targets", "sign the server's artifacts as the next targets version, offline keys");
  auto* keys_delegate = keys->add_subcommand(
      "delegate", "delegate the artifacts whose paths match patterns to a role with its own keys");
  auto* keys_undelegate = keys->add_subcommand("undelegate", "remove a delegated role");
  for (CLI::App* k : {keys_gen, keys_list, keys_rotate, keys_sign, keys_delegate, keys_undelegate})
    k->add_option("--data", keys_args.data, "data directory of the server (default drover-data)");
  for (CLI::App* k : {keys_gen, keys_rotate}) {
    k->add_option("--root-key-dir", keys_args.root_key_dir,
                  "where new root keys are written, away from the data directory (default "
                  "drover-root-keys)");
    k->add_option("--root-lifetime", keys_args.root_lifetime,
                  "how long the root is valid (default 365d)");
  }
  keys_gen->add_option("--root-keys", keys_args.root_keys, "root keys to make (default 1)")
      ->check(CLI::Range(1, 16));
  keys_gen
      ->add_option("--root-threshold", keys_args.root_threshold,
                   "root keys that must sign a root (default 1)")
      ->check(CLI::Range(1, 16));
  for (CLI::App* k : {keys_gen, keys_list, keys_rotate, keys_sign, keys_delegate, keys_undelegate})
    k->add_flag("--json", keys_args.json, "print what was done (or listed) as JSON");
  keys_rotate
      ->add_option("--root-key", keys_args.signing_keys,
                   "a root key file that signs (repeatable): enough of the old root's, and of "
                   "the new root's when they change")
      ->required();
  keys_rotate
      ->add_option("--new-root-keys", keys_args.new_root_keys,
                   "replace the root keys with this many new ones")
      ->check(CLI::Range(1, 16));
  keys_rotate
      ->add_option("--new-root-threshold", keys_args.new_root_threshold, "the new root threshold")
      ->check(CLI::Range(1, 16));
  keys_rotate
      ->add_option("--rotate", keys_args.rotate,
                   "give an online role new keys: timestamp, snapshot or targets (repeatable)")
      ->check(CLI::IsMember({"timestamp", "snapshot", "targets"}));

  keys_sign
      ->add_option("--targets-key", keys_args.targets_keys,
                   "a targets key file that signs (repeatable): enough for the root's targets "
                   "threshold")
      ->required();
  keys_sign->add_option("--lifetime", keys_args.targets_lifetime,
                        "how long the targets are valid (default 90d)");
  keys_sign->add_option("--role", keys_args.role,
                        "the role signed: targets (default) or a delegated role");
  keys_delegate->add_option("--role", keys_args.role, "the role's name (a-z, 0-9, -)")->required();
  keys_delegate
      ->add_option("--path", keys_args.paths,
                   "a pattern of the artifacts it signs, \"<name>/<version>\" with * and ? "
                   "(repeatable), e.g. 'thermostat-*/*'")
      ->required();
  keys_delegate->add_flag("--terminating", keys_args.terminating,
                          "devices look no further for the paths it matches");
  keys_delegate->add_option("--keys", keys_args.role_keys, "keys to make for it (default 1)")
      ->check(CLI::Range(1, 16));
  keys_delegate
      ->add_option("--threshold", keys_args.role_threshold, "of them needed to sign (default 1)")
      ->check(CLI::Range(1, 16));
  keys_delegate->add_option(
      "--key-dir", keys_args.key_dir,
      "write its keys here, away from the server, to sign offline (default: online, the "
      "server signs)");
  keys_delegate->add_flag("--replace", keys_args.replace,
                          "replace a role of that name: new keys and patterns");
  keys_undelegate->add_option("--role", keys_args.role, "the role to remove")->required();

  drover::app::RemoteCommands remote(app, *rollout, *token);

  drover::app::add_conventions(app, "drover", examples());
  if (const int rc = drover::app::parse_command_line(app, argc, argv); rc >= 0) return rc;
  // Global flags given before the verb, where the verb's own were not.
  if (globals.json) {
    for (bool* json :
         {&sim_args.json, &demo_args.json, &plan_args.json, &token_args.json, &keys_args.json})
      *json = true;
  }
  // (Only sim talks to a server; demo and rollout plan stay on the twin.)
  if (sim_args.server.empty()) sim_args.server = globals.server;
  if (sim_args.token.empty()) sim_args.token = globals.token;
  if (sim_args.ca_file.empty()) sim_args.ca_file = globals.ca_file;

  if (serve->parsed()) return drover::app::run_serve(serve_args);
  if (token_create->parsed()) return drover::app::run_token_create(token_args);
  if (keys_gen->parsed()) return drover::app::run_keys_gen(keys_args);
  if (keys_list->parsed()) return drover::app::run_keys_list(keys_args);
  if (keys_rotate->parsed()) return drover::app::run_keys_rotate_root(keys_args);
  if (keys_sign->parsed()) return drover::app::run_keys_sign_targets(keys_args);
  if (keys_delegate->parsed()) return drover::app::run_keys_delegate(keys_args);
  if (keys_undelegate->parsed()) return drover::app::run_keys_undelegate(keys_args);
  if (remote.parsed()) return remote.run(globals);

  if (maintenance->parsed()) {
    auto report = drover::sim::run_wear_twin(wear_args);
    if (!report.ok()) {
      std::cerr << "drover: wear twin: " << report.error().to_string() << "\n";
      return 1;
    }
    std::cout << (wear_json ? drover::sim::to_json(*report) : drover::sim::describe(*report));
    return 0;
  }
  if (field->parsed()) {
    auto with = drover::sim::run_field_twin(field_args);
    if (!with.ok()) {
      std::cerr << "drover: field twin: " << with.error().to_string() << "\n";
      return 1;
    }
    std::optional<drover::sim::FieldTwinReport> without;
    if (!field_only_with) {
      drover::sim::FieldTwinOptions off = field_args;
      off.remediation = false;
      off.store = "memory";
      auto run = drover::sim::run_field_twin(off);
      if (!run.ok()) {
        std::cerr << "drover: field twin: " << run.error().to_string() << "\n";
        return 1;
      }
      without = *run;
    }
    const drover::sim::FieldTwinReport* off = without ? &*without : nullptr;
    std::cout << (field_json ? drover::sim::to_json(*with, off)
                             : drover::sim::describe(*with, off));
    return 0;
  }
  if (sim->parsed() || plan->parsed()) {
    SimArgs& a = sim->parsed() ? sim_args : plan_args;
    auto scenario = drover::sim::load_scenario(a.scenario);
    if (!scenario.ok()) {
      std::cerr << "drover: " << scenario.error().to_string() << "\n";
      return 2;
    }
    return run(*scenario, a, plan->parsed());
  }
  if (demo->parsed()) {
    auto scenario = drover::sim::parse_scenario(drover::app::kDemoScenario);
    if (!scenario.ok()) {
      std::cerr << "drover: built-in demo scenario: " << scenario.error().to_string() << "\n";
      return 2;
    }
    if (!demo_args.json) std::cout << "Drover demo: " << drover::app::kDemoStory << "\n\n";
    const int rc = run(*scenario, demo_args, false);
    if (rc != 0 || demo_args.json) return rc;
    // The second chapter: what the devices report between check-ins.
    drover::sim::TelemetryTwinOptions t;
    if (demo_args.seed != 0) t.seed = demo_args.seed;
    auto telemetry = drover::sim::run_telemetry_twin(t);
    if (!telemetry.ok()) {
      std::cerr << "drover: telemetry twin: " << telemetry.error().to_string() << "\n";
      return 1;
    }
    std::cout << "\n" << drover::sim::describe(*telemetry);
    // The third: the farm's 90 days, with and without remediation (`drover field` runs it
    // at 10,000 sensors).
    drover::sim::FieldTwinOptions f;
    f.devices = 2'000;
    if (demo_args.seed != 0) f.seed = demo_args.seed;
    auto with = drover::sim::run_field_twin(f);
    f.remediation = false;
    auto without = with.ok() ? drover::sim::run_field_twin(f) : with;
    if (!without.ok()) {
      std::cerr << "drover: field twin: " << without.error().to_string() << "\n";
      return 1;
    }
    std::cout << "\n" << drover::sim::describe(*with, &*without);
    return 0;
  }
  return 0;
}
