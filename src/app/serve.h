// `drover serve`: the control plane on the network, over the embedded SQLite store.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/clock.h"
#include "base/result.h"
#include "fleet/audit_log.h"
#include "store/store.h"

namespace drover::app {

struct ServeArgs {
  std::string data = "drover-data";       // the data directory (created when missing)
  std::string listen = "127.0.0.1:8480";  // HOST:PORT, or [IPv6]:PORT; port 0 picks a free one
  int threads = 2;
  std::vector<std::string> enrollment_tokens;  // pre-shared: devices that bring one are accepted
  std::string enrollment_token_file;           // more of them, one per line
  std::vector<std::string> factory_cas;      // manufacturer CAs (PEM): their devices enroll at once
  bool debug = false;                        // one JSON line per request on stderr
  uint64_t max_artifact_bytes = 1ull << 30;  // the largest artifact upload accepted
  std::string tick_interval = "60s";         // how often the engine judges gates and stages
  std::string remediation_interval = "60s";  // how often the remediation rules judge the fleet
  // When devices are told to check in again: an idle device, and one with an update under
  // way (offered, downloading, installing, in its trial). Load against latency.
  std::string poll_interval = "30m";
  std::string busy_poll_interval = "5m";
  // Remediation (docs/health.md): the service a device that checks in but sends no telemetry
  // is first asked to restart ("" : straight to a reboot); off: no rules run.
  std::string remediate_service;
  bool no_remediation = false;
  // The rules and limits from this file instead (health/remediation_file.h).
  std::string remediation_rules;
  // Every alert change POSTed here, signed with HMAC-SHA256 under the secret in the file
  // (docs/api/operator.md, "Alert webhook"); https is checked against the CA file, if given.
  std::string alert_webhook;
  std::string alert_webhook_secret_file;
  std::string alert_webhook_ca;
  std::string remote_write;                       // Prometheus remote write URL, when given
  std::vector<std::string> remote_write_headers;  // "Name: value"
  std::string device_token_lifetime = "15m";      // bearer tokens issued at device login
  std::string tls_cert, tls_key;                  // TLS when both are given (PEM)
  std::string client_ca;                          // mutual TLS: clients need a cert it signed
  // What an unauthenticated client may make the server do (docs/api/device.md, "Limits").
  size_t max_pending_devices = 10'000;  // waiting for an operator at once
  std::string pending_lifetime = "7d";  // a pending device nobody decided on is removed then
  double enroll_per_minute = 12;        // tokenless enrollments per source...
  double enroll_burst = 20;             // ...after a burst of this many
  double login_per_second = 5;          // device logins per source...
  double login_burst = 300;             // ...after a burst of this many
};

struct TokenCreateArgs {
  std::string data = "drover-data";
  std::string name;
  std::string role = "admin";
  std::string lifetime;  // e.g. "90d"; empty: never expires
  bool init = false;     // create the data directory's store when it has none
  bool json = false;     // print the token and its record as JSON
};

// `drover token create`: makes an operator API token directly in the data directory's store
// (no server needed, and a running server sees it at once) and prints it. This is how the
// first admin token comes to be.
int run_token_create(const TokenCreateArgs& args);

// Serves until SIGINT or SIGTERM, then stops gracefully (in-flight requests finish, state is
// flushed). Returns the process exit code; prints errors to stderr.
int run_serve(const ServeArgs& args);

// The data directory's store (created, owner-only, when absent), and the audit log in it:
// for the verbs that change the data directory beside a running server (token create,
// keys), which record what they do as the server does.
Result<std::unique_ptr<Store>> open_data_store(const std::string& data);
Result<std::unique_ptr<AuditLog>> open_audit_log(Store& store, Clock& clock,
                                                 const std::string& data);

}  // namespace drover::app
