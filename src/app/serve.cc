#include "app/serve.h"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <tuple>

#include "app/console_files.h"
#include "app/openapi.h"
#include "base/clock.h"
#include "base/file_system.h"
#include "base/units.h"
#include "fleet/audit_log.h"
#include "fleet/command_queue.h"
#include "fleet/device_auth.h"
#include "fleet/device_service.h"
#include "fleet/operator_tokens.h"
#include "fleet/update_repository.h"
#include "health/health_view.h"
#include "health/remediation_file.h"
#include "health/remediator.h"
#include "health/telemetry_health.h"
#include "rollout/engine.h"
#include "security/crypto.h"
#include "sim/live_fleet.h"
#include "store/group_commit.h"
#include "store/store.h"
#include "telemetry/remote_write.h"
#include "telemetry/telemetry_service.h"
#include "telemetry/time_series_store.h"
#include "transport/http/alert_webhook.h"
#include "transport/http/server.h"
#include "transport/http/stack.h"

namespace drover::app {
namespace {

// "host:port", "[v6]:port". false when malformed.
bool split_listen(const std::string& listen, std::string& host, uint16_t& port) {
  const size_t colon = listen.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == listen.size()) return false;
  host = listen.substr(0, colon);
  if (host.front() == '[') {
    if (host.back() != ']') return false;
    host = host.substr(1, host.size() - 2);
  }
  const std::string digits = listen.substr(colon + 1);
  if (digits.size() > 5 || digits.find_first_not_of("0123456789") != std::string::npos)
    return false;
  const unsigned long p = std::stoul(digits);
  if (p > 65535) return false;
  port = static_cast<uint16_t>(p);
  return !host.empty();
}

// The secret bearer tokens are signed with: made once, kept in the data directory (0600), so
// tokens survive a restart.
Result<std::string> token_secret(const std::string& data) {
  const std::string path = (std::filesystem::path(data) / "token-secret").string();
  auto existing = real_file_system().read(path);
  if (existing.ok()) {
    if (existing->size() < 32) return Error{ErrorCode::kCorruption, path + " is too short"};
    return existing;
  }
  if (existing.error().code != ErrorCode::kNotFound) return existing.error();
  auto fresh = security::random_bytes(32);
  if (!fresh.ok()) return fresh.error();
  DROVER_TRY(write_atomically(real_file_system(), path, *fresh));
  return fresh;
}

// One JSON object per line on stderr, written with one call so lines never interleave.
void log_line(const nlohmann::json& line) {
  const std::string text =
      line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  std::fwrite(text.data(), 1, text.size(), stderr);
}

// A line from a background worker (the remote writer, the alert webhook).
void log_message(const std::string& level, const std::string& message) {
  log_line({{"level", level}, {"msg", message}});
}

int fail(const std::string& what, const char* command = "serve") {
  std::fprintf(stderr, "drover %s: %s\n", command, what.c_str());
  return 1;
}

}  // namespace

// The data directory holds the device registry, tokens' hashes and the token secret: what the
// server creates there is readable by its owner only (umask 077), the directory included.
Result<std::unique_ptr<Store>> open_data_store(const std::string& data) {
  ::umask(077);
  std::error_code ec;
  std::filesystem::create_directories(data, ec);
  if (ec) return io_error("cannot create data directory " + data + ": " + ec.message());
  return open_sqlite_store((std::filesystem::path(data) / "drover.db").string());
}

// The audit log of the data directory: in its store, the checkpoint key and the newest
// checkpoint beside it.
Result<std::unique_ptr<AuditLog>> open_audit_log(Store& store, Clock& clock,
                                                 const std::string& data) {
  return AuditLog::open(
      store, real_file_system(), clock,
      {.key_path = (std::filesystem::path(data) / "audit.key").string(),
       .checkpoint_path = (std::filesystem::path(data) / "audit.checkpoint").string()});
}

int run_serve(const ServeArgs& args) {
  http::ServerOptions options;
  if (!split_listen(args.listen, options.host, options.port))
    return fail("--listen must be HOST:PORT, got '" + args.listen + "'");
  options.threads = args.threads;
  options.tls_cert_file = args.tls_cert;
  options.tls_key_file = args.tls_key;
  options.tls_client_ca_file = args.client_ca;
  // The alert webhook's flags, checked before anything is opened.
  std::string webhook_secret;
  if (!args.alert_webhook.empty()) {
    if (args.no_remediation)
      return fail("--alert-webhook: there are no alerts with --no-remediation");
    if (auto url = http::parse_url(args.alert_webhook); !url.ok()) {
      return fail("--alert-webhook: " + url.error().message);
    }
    if (args.alert_webhook_secret_file.empty()) {
      return fail("--alert-webhook needs --alert-webhook-secret-file (the receiver's key)");
    }
    auto key = real_file_system().read(args.alert_webhook_secret_file);
    if (!key.ok()) return fail("--alert-webhook-secret-file: " + key.error().to_string());
    webhook_secret = std::move(*key);
    while (!webhook_secret.empty() &&
           std::isspace(static_cast<unsigned char>(webhook_secret.back()))) {
      webhook_secret.pop_back();
    }
    if (webhook_secret.size() < 16) {
      return fail("--alert-webhook-secret-file: the key must be at least 16 bytes");
    }
  }
  // The remediation rules: the file's, checked before anything is opened, or the defaults.
  health::RemediationPolicy remediation{health::default_rules(args.remediate_service), {}};
  if (!args.remediation_rules.empty()) {
    if (args.no_remediation) return fail("--remediation-rules: no rules run with --no-remediation");
    if (!args.remediate_service.empty()) {
      return fail(
          "--remediate-service names the default rules' service; a --remediation-rules file "
          "names its own");
    }
    auto text = real_file_system().read(args.remediation_rules);
    if (!text.ok()) return fail("--remediation-rules: " + text.error().to_string());
    auto policy = health::parse_remediation_policy(*text);
    if (!policy.ok()) {
      return fail("--remediation-rules " + args.remediation_rules + ": " + policy.error().message);
    }
    remediation = std::move(*policy);
  }
  // Signals are taken by sigwait below, never by a handler: block them before any thread
  // starts (the store's writer is the first), so that every thread inherits the mask.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  std::atomic<bool> store_failed{false};  // outlives the store, whose writer may set it
  auto opened = open_data_store(args.data);
  if (!opened.ok()) return fail(opened.error().to_string());
  // Every write goes through the group commit: requests share commits, and no I/O thread
  // waits on the disk (transport/http/durable.h answers each once its writes are durable).
  auto store = std::make_unique<GroupCommitStore>(std::move(*opened));

  EngineOptions engine_options;
  auto tick = parse_duration(args.tick_interval);
  if (!tick.ok() || *tick < Duration(100))
    return fail("--tick-interval must be a duration of at least 100ms, e.g. 60s");
  engine_options.tick_interval = *tick;
  auto remediation_interval = parse_duration(args.remediation_interval);
  if (!remediation_interval.ok() || *remediation_interval < Duration(100) ||
      *remediation_interval > hours(1)) {
    return fail("--remediation-interval must be a duration from 100ms to 1h, e.g. 60s");
  }
  FleetOptions fleet_options;
  for (auto [flag, text, into] :
       {std::tuple{"--poll-interval", &args.poll_interval, &fleet_options.poll_interval},
        std::tuple{"--busy-poll-interval", &args.busy_poll_interval,
                   &fleet_options.busy_poll_interval}}) {
    auto d = parse_duration(*text);
    if (!d.ok() || *d < seconds(1) || *d > days(1))
      return fail(std::string(flag) + " must be a duration from 1s to 1d, e.g. 30m");
    *into = *d;
  }

  // A failed commit leaves memory ahead of the disk: stop, so that a restart loads what was
  // durable — everything that was answered.
  store->set_on_failure([&store_failed](const Error& e) {
    log_line({{"level", "error"},
              {"msg", "store failed; stopping (restart to reload from the store)"},
              {"error", e.to_string()}});
    store_failed = true;
    kill(getpid(), SIGTERM);
  });

  // Signed update metadata (TUF), once `drover keys gen` has made its keys. Declared before
  // the clock whose timer refreshes it, so that the timer is gone first.
  std::unique_ptr<UpdateRepository> repository;
  SystemClock clock;
  if (auto tuf = UpdateRepository::open(real_file_system(),
                                        (std::filesystem::path(args.data) / "tuf").string(), clock);
      tuf.ok()) {
    repository = std::move(*tuf);
    // Only an artifact the signed targets list is offered.
    engine_options.offerable = [r = repository.get()](const Artifact& a) {
      return r->is_signed(a);
    };
  } else if (tuf.error().code != ErrorCode::kNotFound ||
             std::filesystem::exists(std::filesystem::path(args.data) / "tuf")) {
    // Keys were made, but the metadata cannot be read: never fall back to offering unsigned.
    return fail("signed update metadata: " + tuf.error().to_string());
  }
  // The audit log: in the store, its checkpoint key and newest checkpoint beside it. A log
  // that does not verify stops the start: signing on top of a tampered history would hide it.
  auto audit = open_audit_log(*store, clock, args.data);
  if (!audit.ok()) {
    return fail("audit log: " + audit.error().to_string() +
                " (drover audit verify --data shows what does not verify)");
  }
  engine_options.audit = [log = audit->get()](const Rollout& before, const Rollout& after) {
    return record_rollout_change(*log, before, after);
  };
  // Telemetry: its own store in the data directory (a write-ahead log, compressed chunks).
  const std::string telemetry_dir = (std::filesystem::path(args.data) / "telemetry").string();
  const std::string cursor_path = telemetry_dir + "/remote_write.cursor";
  telemetry::StoreOptions tsdb_options;
  if (!args.remote_write.empty()) {
    // The store holds its log for the remote writer from the start (not only once the
    // writer is back), so a checkpoint at start-up deletes nothing it has yet to send.
    auto saved = telemetry::RemoteWriter::saved_position(real_file_system(), cursor_path);
    if (!saved.ok()) return fail("--remote-write: " + saved.error().to_string());
    tsdb_options.log_hold = saved->value_or(telemetry::LogPosition{});
  }
  auto tsdb =
      telemetry::TimeSeriesStore::open(real_file_system(), telemetry_dir, clock, tsdb_options);
  if (!tsdb.ok()) return fail("telemetry store: " + tsdb.error().to_string());
  // Health gates judge rollouts on the devices' telemetry.
  health::TelemetryHealth health_data(**tsdb);
  engine_options.health = &health_data;
  RolloutEventLog events;  // before the engine, whose listener fills it
  RolloutEngine engine(*store, clock, engine_options);
  // What the engine decides, as it decides it: one JSON line per event, and kept for
  // GET /api/v1/rollouts/{id}/events.
  engine.set_listener([&events](const EngineEvent& e) {
    events.add(e);
    using K = EngineEvent::Kind;
    const bool bad = e.kind == K::kTickFailed || e.kind == K::kFailed ||
                     e.kind == K::kStratumHalted || e.kind == K::kRollbackIncomplete;
    log_line({{"level", bad ? "warn" : "info"},
              {"msg", "rollout event"},
              {"event", to_string(e.kind)},
              {"rollout", e.rollout_id},
              {"at", format_utc_timestamp(e.at)},
              {"text", e.text}});
  });
  if (auto st = engine.load(); !st.ok()) return fail(st.error().to_string());
  DeviceService service(*store, engine, fleet_options);
  if (auto st = service.load(); !st.ok()) return fail(st.error().to_string());
  // Remote commands: the open ones loaded, carried by check-ins, closed when they expire.
  CommandQueue commands(*store, clock);
  if (auto st = commands.load(); !st.ok()) return fail("commands: " + st.error().to_string());
  service.attach_commands(&commands);
  // Configuration: each type's newest document, given to the devices that run another.
  ConfigService configs(*store, clock);
  if (auto st = configs.load(); !st.ok()) return fail("configs: " + st.error().to_string());
  service.attach_configs(&configs);
  telemetry::TelemetryService telemetry_service(**tsdb, service, *store, clock);
  // Remediation: the rules judge the fleet every minute, open alerts, queue commands. Each
  // change of an alert is a log line (and a webhook delivery, when one is configured).
  const auto alert_log = [](const Alert& a) {
    log_line({{"level", a.escalated && a.state != AlertState::kResolved ? "warn" : "info"},
              {"msg", "alert"},
              {"alert", a.id},
              {"device", a.device_id},
              {"rule", a.rule},
              {"state", to_string(a.state)},
              {"escalated", a.escalated},
              {"commands", a.commands},
              {"text", a.state == AlertState::kResolved ? a.resolution
                       : a.escalated                    ? a.escalation
                                                        : a.summary}});
  };
  // What the rules on a device's health read (declared first: it outlives their ticks).
  std::unique_ptr<health::HealthView> remediation_health;
  std::unique_ptr<health::Remediator> remediator;
  if (!args.no_remediation) {
    health::RemediatorOptions remediator_options{remediation.rules, remediation.limits};
    // The counts go on across a restart within this of the last tick before it.
    remediator_options.resume_gap += *remediation_interval;
    auto made = health::Remediator::create(*store, clock, telemetry_service, commands,
                                           std::move(remediator_options));
    if (!made.ok()) return fail("remediation: " + made.error().to_string());
    const health::ResumeReport resumed = (*made)->resumed();
    log_line({{"level", "info"},
              {"msg", resumed.resumed ? "remediation goes on counting how long each condition "
                                        "has held from before the restart"
                      : resumed.gap   ? "remediation counts every condition from now: the "
                                        "server was down too long to know what happened"
                                      : "remediation counts every condition from now: first start"},
              {"down", resumed.gap ? format_duration(*resumed.gap) : std::string("-")},
              {"counts", resumed.conditions},
              {"closes_kept", resumed.closes}});
    nlohmann::json rules = nlohmann::json::array();
    for (const health::RemediationRule& r : remediation.rules) rules.push_back(r.name);
    log_line({{"level", "info"},
              {"msg", "remediation rules"},
              {"from", args.remediation_rules.empty() ? "the defaults" : args.remediation_rules},
              {"rules", rules},
              {"max_actions_per_day", remediation.limits.max_actions_per_day}});
    remediator = std::move(*made);
    remediator->set_listener(alert_log);
    remediation_health =
        std::make_unique<health::HealthView>(telemetry_service, remediator.get(), clock);
    remediator->set_health_source(remediation_health.get());
    remediator->set_update_states(&service);
  }
  std::unique_ptr<http::AlertWebhook> webhook;
  if (!args.alert_webhook.empty()) {
    http::AlertWebhookOptions wo;
    wo.url = args.alert_webhook;
    wo.secret = webhook_secret;
    wo.ca_file = args.alert_webhook_ca;
    auto started = http::AlertWebhook::start(*remediator, clock, std::move(wo), &log_message);
    if (!started.ok()) return fail("--alert-webhook: " + started.error().to_string());
    webhook = std::move(*started);
    remediator->set_listener([alert_log, hook = webhook.get()](const Alert& a) {
      alert_log(a);
      hook->notify(a);
    });
  }
  std::unique_ptr<telemetry::RemoteWriter> remote_writer;
  if (!args.remote_write.empty()) {
    telemetry::RemoteWriteOptions rw;
    rw.url = args.remote_write;
    rw.cursor_path = cursor_path;
    for (const std::string& h : args.remote_write_headers) {
      const size_t colon = h.find(':');
      if (colon == std::string::npos || colon == 0) {
        return fail("--remote-write-header must be 'Name: value', got '" + h + "'");
      }
      const size_t value = h.find_first_not_of(' ', colon + 1);
      rw.headers.emplace_back(h.substr(0, colon),
                              value == std::string::npos ? "" : h.substr(value));
    }
    remote_writer = std::make_unique<telemetry::RemoteWriter>(
        **tsdb, real_file_system(), clock, rw,
        [&telemetry_service](const std::string& key) {
          return telemetry_service.export_labels(key);
        },
        &log_message);
    if (auto st = remote_writer->start(); !st.ok())
      return fail("--remote-write: " + st.error().to_string());
  }
  auto secret = token_secret(args.data);
  if (!secret.ok()) return fail(secret.error().to_string());
  AuthOptions auth_options;
  auth_options.enrollment_tokens = args.enrollment_tokens;
  auth_options.store = store.get();
  if (!args.factory_cas.empty()) {
    std::vector<std::string> pems;
    for (const std::string& path : args.factory_cas) {
      auto pem = real_file_system().read(path);
      if (!pem.ok()) return fail("--factory-ca " + path + ": " + pem.error().message);
      pems.push_back(std::move(*pem));
    }
    auto trust = security::FactoryTrust::from_pem(pems);
    if (!trust.ok()) return fail("--factory-ca: " + trust.error().message);
    auth_options.factory = std::move(*trust);
  }
  if (!args.enrollment_token_file.empty()) {
    auto text = real_file_system().read(args.enrollment_token_file);
    if (!text.ok()) return fail("--enrollment-token-file: " + text.error().message);
    size_t found = 0;
    for (size_t at = 0; at < text->size();) {
      size_t end = text->find('\n', at);
      if (end == std::string::npos) end = text->size();
      std::string line = text->substr(at, end - at);
      at = end + 1;
      if (const size_t hash = line.find('#'); hash != std::string::npos) line.resize(hash);
      const size_t first = line.find_first_not_of(" \t\r");
      if (first == std::string::npos) continue;
      line = line.substr(first, line.find_last_not_of(" \t\r") - first + 1);
      auth_options.enrollment_tokens.push_back(line);
      ++found;
    }
    if (found == 0)
      return fail("--enrollment-token-file " + args.enrollment_token_file + " holds no token");
  }
  auto lifetime = parse_duration(args.device_token_lifetime);
  // The agent renews a token a minute before it expires: shorter than two would mean a login
  // for nearly every request.
  if (!lifetime.ok() || *lifetime < minutes(2) || *lifetime > days(7))
    return fail("--device-token-lifetime must be a duration from 2m to 7d, e.g. 15m");
  auth_options.token_lifetime = *lifetime;
  auth_options.max_pending = args.max_pending_devices;
  auto pending = args.pending_lifetime == "0" ? Result<Duration>(Duration(0))
                                              : parse_duration(args.pending_lifetime);
  if (!pending.ok() || (*pending != Duration(0) && *pending < minutes(1)))
    return fail("--pending-lifetime must be 0 or a duration of at least 1m, e.g. 7d");
  if (*pending > Duration(0)) {
    auth_options.pending_lifetime = *pending;
    auth_options.pending_sweep = std::clamp<Duration>(*pending / 16, seconds(1), minutes(10));
    auth_options.on_expiry = [text = args.pending_lifetime](const Result<size_t>& swept) {
      if (swept.ok()) {
        log_line({{"level", "info"},
                  {"msg", "removed devices left pending longer than --pending-lifetime"},
                  {"devices", *swept},
                  {"pending_lifetime", text}});
      } else {
        log_line({{"level", "error"},
                  {"msg", "removing expired pending devices failed; retried at the next sweep"},
                  {"error", swept.error().to_string()}});
      }
    };
  }

  // Every answered request feeds /metrics; with --debug it is also logged.
  options.access_log = [debug = args.debug](const http::AccessRecord& r) {
    // A 5xx is the server's failure (a store that failed, a handler that threw): always said,
    // with the request's id; --debug says every request.
    if (!debug && r.status < 500) return;
    log_line({{"level", r.status >= 500 ? "error" : "debug"},
              {"msg", "request"},
              {"request_id", r.request_id},
              {"remote", r.remote},
              {"method", r.method},
              {"path", r.path},
              {"status", r.status},
              {"request_bytes", r.request_bytes},
              {"response_bytes", r.response_bytes},
              {"handler_ms", r.handler_ms},
              {"wait_ms", r.wait_ms}});
  };
  options.error_log = [](std::string_view request_id, std::string_view what) {
    log_line({{"level", "error"},
              {"msg", "request handler failed"},
              {"request_id", request_id},
              {"error", what}});
  };

  const std::string host = options.host;
  http::StackOptions stack;
  stack.server = std::move(options);
  stack.artifact_dir = (std::filesystem::path(args.data) / "artifacts").string();
  stack.token_secret = std::move(*secret);
  stack.auth = std::move(auth_options);
  // What anyone may call is limited per source address (loopback exempt): enrollments
  // without a token, 12 a minute after a burst of 20 by default; logins, 5 a second after
  // 300 (a building's devices behind one NAT logging in after a restart).
  stack.enroll_limit = {args.enroll_per_minute / 60, args.enroll_burst, 100'000};
  stack.login_limit = {args.login_per_second, args.login_burst, 100'000};
  stack.max_artifact_bytes = args.max_artifact_bytes;
  stack.openapi_document = kOpenApiDocument;
  stack.telemetry = &telemetry_service;
  stack.configs = &configs;
  stack.repository = repository.get();
  stack.audit = audit->get();
  stack.auth.audit = audit->get();
  stack.events = &events;
  stack.commands = &commands;
  stack.remediator = remediator.get();
  stack.console = kConsoleFiles;
  stack.predict = [poll = fleet_options.poll_interval, tick = engine_options.tick_interval](
                      const RolloutPlan& plan, LiveFleet fleet, PredictionAssumptions assume) {
    assume.poll_interval = poll;
    // A tick under 10 s changes a prediction by seconds and would cost it millions of
    // judgements over its horizon.
    assume.engine_tick = std::max(tick, seconds(10));
    return sim::predict_on_live_fleet(plan, std::move(fleet), assume);
  };
  auto server =
      http::ServerStack::start(*store, store.get(), engine, service, clock, std::move(stack));
  if (!server.ok()) return fail(server.error().to_string());
  if (const auto swept = (*server)->swept(); swept.files > 0) {
    log_line({{"level", "info"},
              {"msg", "removed files left by an earlier run from the artifact directory"},
              {"files", swept.files},
              {"bytes", swept.bytes}});
  }
  // The timestamp and snapshot are signed again before they expire, a root that `drover
  // keys rotate-root` wrote is taken, and an upload whose publish failed is signed, at the
  // next of these refreshes (the artifacts read afresh from the store).
  // What the server cannot sign again itself — the root, and targets whose keys are offline —
  // is warned about from 30 days before it expires, once a day: once expired, devices refuse
  // every update.
  Timestamp last_expiry_warning{};
  const auto warn_of_expiry = [&] {
    const Timestamp now = clock.now();
    if (last_expiry_warning != Timestamp{} && now - last_expiry_warning < days(1)) return;
    for (const RepositoryState::Role& r : repository->state().roles) {
      if (!r.signed_offline() || r.version == 0 || r.expires - now > days(30)) continue;
      last_expiry_warning = now;
      log_line({{"level", "warning"},
                {"msg", r.name == "root"
                            ? "the root of the signed update metadata expires soon: sign the "
                              "next one (drover keys rotate-root)"
                            : "targets signed offline expire soon: sign them again (drover "
                              "keys sign-targets, with --role for a delegated role)"},
                {"role", r.name},
                {"version", r.version},
                {"expires", format_utc_timestamp(r.expires)},
                {"days_left",
                 std::chrono::duration_cast<std::chrono::hours>(r.expires - now).count() / 24}});
    }
  };
  std::function<void()> expire_commands = [&] {
    if (auto n = commands.expire_due(); !n.ok()) {
      log_line({{"level", "error"},
                {"msg", "closing expired commands failed; retried in a minute"},
                {"error", n.error().to_string()}});
    } else if (*n > 0) {
      log_line({{"level", "info"}, {"msg", "remote commands expired unsent"}, {"count", *n}});
    }
    clock.schedule_after(minutes(1), expire_commands);
  };
  clock.schedule_after(minutes(1), expire_commands);
  // Each of these reschedules itself: one chain each, for the life of run_serve.
  std::function<void()> remediate = [&] {
    CommitScope scope;  // its writes queued under its locks, waited for after them
    auto report = remediator->tick();
    Status durable = scope.wait();
    if (!report.ok() || !durable.ok()) {
      log_line({{"level", "error"},
                {"msg", "remediation tick failed; retried at the next tick"},
                {"error", (!report.ok() ? report.error() : durable.error()).to_string()}});
    } else if (!report->health_error.empty()) {
      log_line({{"level", "warn"},
                {"msg",
                 "reading device health for the rules failed; the rules on health wait, and "
                 "it is tried again in 5 minutes"},
                {"error", report->health_error}});
    }
    clock.schedule_after(*remediation_interval, remediate);
  };
  if (remediator) clock.schedule_after(*remediation_interval, remediate);
  std::function<void()> refresh_metadata = [&] {
    if (Status st = (*server)->artifacts().publish(); !st.ok()) {
      log_line({{"level", "error"},
                {"msg", "signing update metadata failed; retried in 10 minutes"},
                {"error", st.error().to_string()}});
    }
    warn_of_expiry();
    clock.schedule_after(minutes(10), refresh_metadata);
  };
  if (repository) {
    const RepositoryState state = repository->state();
    nlohmann::json versions = nlohmann::json::object();
    for (const RepositoryState::Role& r : state.roles) versions[r.name] = r.version;
    log_line({{"level", "info"},
              {"msg", "signed update metadata published under /tuf/metadata/"},
              {"versions", versions},
              {"signed_targets", state.signed_targets}});
    warn_of_expiry();
    clock.schedule_after(minutes(10), refresh_metadata);
  } else {
    log_line({{"level", "info"},
              {"msg",
               "signed update metadata is off: no keys in the data directory (drover keys "
               "gen makes them)"}});
  }
  std::printf("drover serve: listening on %s://%s:%u, data in %s\n",
              args.tls_cert.empty() ? "http" : "https", host.c_str(),
              static_cast<unsigned>((*server)->port()), args.data.c_str());
  if (kConsoleFiles.empty()) {
    std::printf(
        "drover serve: this drover was built without its web console (Node.js or the "
        "console's packages were missing at build time: docs/console.md)\n");
  } else {
    std::printf("drover serve: web console at %s://%s:%u/console/\n",
                args.tls_cert.empty() ? "http" : "https", host.c_str(),
                static_cast<unsigned>((*server)->port()));
  }
  std::fflush(stdout);

  int signal = 0;
  sigwait(&stop_signals, &signal);
  std::printf("drover serve: %s received, stopping\n", signal == SIGINT ? "SIGINT" : "SIGTERM");
  std::fflush(stdout);
  (*server)->stop();  // in-flight requests finish; every write they made is committed
  if (remote_writer) remote_writer->stop();  // it carries on from its cursor at the next start
  // What it has not delivered stays marked so in the store, for the next start. Before the
  // clock stops: its waits are the clock's timers.
  if (webhook) webhook->stop();
  clock.stop();  // no engine tick runs after this
  // Answers still parked on a slow commit (past the drain timeout) are released before the
  // server goes, and a failure from here on has nobody left to tell.
  (void)store->wait(store->tail());
  store->set_on_failure(nullptr);
  if (store_failed) {
    std::printf("drover serve: stopped: the store failed (see the log); restart to reload it\n");
    return 1;
  }
  std::printf("drover serve: stopped\n");
  return 0;
}

int run_token_create(const TokenCreateArgs& args) {
  auto role = parse_role(args.role);
  if (!role.ok()) return fail(role.error().message, "token create");
  Duration lifetime{0};
  if (!args.lifetime.empty()) {
    auto parsed = parse_duration(args.lifetime);
    if (!parsed.ok()) return fail("--lifetime: " + parsed.error().message, "token create");
    lifetime = *parsed;
  }
  // A token made in a directory no server uses would be refused by the server that does.
  if (!args.init && !std::filesystem::exists(std::filesystem::path(args.data) / "drover.db")) {
    return fail("no store in " + args.data +
                    ": give the data directory of drover serve (--data), or --init to "
                    "create a new one",
                "token create");
  }
  auto store = open_data_store(args.data);
  if (!store.ok()) return fail(store.error().to_string(), "token create");
  SystemClock clock;
  // Recorded before it is made, by whoever ran this on the server's machine.
  auto audit = open_audit_log(**store, clock, args.data);
  if (!audit.ok()) return fail("audit log: " + audit.error().to_string(), "token create");
  auto recorded = (*audit)->record(
      {.actor = "cli:uid " + std::to_string(::getuid()),
       .action = "token.create",
       .subject = args.name,
       .detail = {{"role", args.role},
                  {"lifetime", args.lifetime.empty() ? std::string("none") : args.lifetime}}});
  if (!recorded.ok()) return fail("audit log: " + recorded.error().to_string(), "token create");
  OperatorTokens tokens(**store, clock);
  auto created = tokens.create(args.name, *role, lifetime);
  clock.stop();
  if (!created.ok()) return fail(created.error().to_string(), "token create");
  if (args.json) {
    const ApiToken& t = created->record;
    nlohmann::json out = {{"token", created->text},
                          {"id", t.id},
                          {"name", t.name},
                          {"role", to_string(t.role)},
                          {"created_at", t.created_at.time_since_epoch().count()}};
    out["expires_at"] = t.expires_at == Timestamp{}
                            ? nlohmann::json(nullptr)
                            : nlohmann::json(t.expires_at.time_since_epoch().count());
    std::printf("%s\n", out.dump(2).c_str());
    return 0;
  }
  // The token alone on stdout (scripts capture it); what it is, on stderr.
  std::printf("%s\n", created->text.c_str());
  std::fprintf(stderr, "created %s token '%s' (id %s)%s; it is shown only this once\n",
               args.role.c_str(), args.name.c_str(), created->record.id.c_str(),
               args.lifetime.empty() ? "" : (", expires in " + args.lifetime).c_str());
  return 0;
}

}  // namespace drover::app
