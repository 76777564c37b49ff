// The CLI verbs' shared part (remote.cc, remote_telemetry.cc): the state every verb binds its
// arguments to and calls the operator API through, and the printing helpers.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdio>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "app/remote.h"
#include "protocol/device.h"
#include "transport/http/client.h"

namespace drover::app {

using nlohmann::json;

// Prints rows as aligned columns, the first row being the header.
void print_table(const std::vector<std::vector<std::string>>& rows);
std::string text_of(const json& j);           // a value as text; null: "-"
std::string time_of(const json& ms);          // ms since the epoch as UTC; 0 or absent: "-"
std::string counts_text(const json& states);  // {"a": 1, "b": 2} -> "a=1 b=2"
// The file a verb sends; std::nullopt (the reason printed) when it cannot be read.
std::optional<std::string> read_input(const std::string& path);
// One device's deployment (the API's deployment with its "history"), every step a row.
void history_text(const json& d);
// Now, in ms since the epoch (this machine's clock), and times relative to it: "4m ago" /
// "in 30s"; "in 4m" / "overdue 30s"; "-" for null.
int64_t now_ms();
std::string ago_text(const json& at_ms, int64_t now_ms);
std::string next_checkin_text(const json& at_ms, int64_t now_ms);

constexpr const char* kDefaultServer = "http://127.0.0.1:8480";

struct RemoteCommands::State {
  std::string server;  // --server, else DROVER_SERVER, else kDefaultServer
  std::string token;   // --token, else DROVER_TOKEN
  http::ClientOptions tls;
  bool json_out = false;

  struct Verb {
    CLI::App* cmd;
    std::function<int(State&)> run;
  };
  std::vector<Verb> verbs;

  // Verb arguments (only one verb runs per process, so they can share fields).
  std::string id, name, version, file, revision, site, connectivity, type, enrollment,
      decommissioned, device, state;
  std::vector<std::string> tags, device_types, hardware_revisions, depends, labels, sites;
  uint64_t max_uses = 0;
  std::string lifetime;
  std::string metric, from, until, resolution, data;
  std::string horizon, install_time, reboot_time, bandwidth;  // rollout predict
  std::string action, argument, reason, command_id;           // device command
  size_t limit = 100;
  size_t days = 30;       // health fleet: predicted failures within
  std::string component;  // health fleet: devices running `version` of it
  bool all = false, start = false, dry_run = false, watch = false;
  double interval = 2.0;  // seconds between looks (rollout status --watch)

  std::unique_ptr<http::HttpClient> client;
  std::function<void()> after_request;  // runs when a request is over, whatever came of it
  CLI::App* current = nullptr;          // the verb being run

  // Whether the running verb was given option `name` (a PATCH sends only what was).
  bool given(const char* option) const {
    const CLI::Option* o = current == nullptr ? nullptr : current->get_option_no_throw(option);
    return o != nullptr && o->count() > 0;
  }

  void add_common(CLI::App* cmd) {
    // Not CLI11's envname: every verb binds these same fields, and the environment would be
    // applied through the options of verbs that were not given, over the command line.
    cmd->add_option(
        "--server", server,
        "server URL (default: $DROVER_SERVER, else " + std::string(kDefaultServer) + ")");
    cmd->add_option("--token", token, "API token (default: $DROVER_TOKEN)");
    cmd->add_option("--ca-file", tls.ca_file, "https: CA certificates (PEM) to trust");
    cmd->add_option("--client-cert", tls.cert_file, "https: client certificate (PEM)");
    cmd->add_option("--client-key", tls.key_file, "https: client key (PEM)");
    cmd->add_flag("--json", json_out, "print the API's JSON");
  }
  CLI::App* verb(CLI::App& parent, const char* name_, const char* help,
                 std::function<int(State&)> run) {
    CLI::App* cmd = parent.add_subcommand(name_, help);
    add_common(cmd);
    verbs.push_back({cmd, std::move(run)});
    return cmd;
  }

  // Calls the API; prints the error and returns std::nullopt on failure.
  std::optional<json> call(const std::string& method, const std::string& target,
                           const std::string& body = {}, const std::string& content_type = {}) {
    if (!client) {
      auto made = http::HttpClient::create(server, tls);
      if (!made.ok()) {
        std::fprintf(stderr, "drover: %s\n", made.error().message.c_str());
        return std::nullopt;
      }
      client = std::move(*made);
    }
    http::Headers headers;
    if (!token.empty()) headers.emplace_back("Authorization", "Bearer " + token);
    if (!content_type.empty()) headers.emplace_back("Content-Type", content_type);
    auto response = client->request(method, target, body, headers);
    if (after_request) after_request();  // e.g. a progress bar ends its line before a message
    if (!response.ok()) {
      std::fprintf(stderr, "drover: %s (is the server at %s running?)\n",
                   response.error().message.c_str(), server.c_str());
      return std::nullopt;
    }
    json doc = response->body.empty() ? json(nullptr) : json::parse(response->body, nullptr, false);
    if (response->status >= 400) {
      std::string message = response->body;
      if (doc.is_object() && doc.contains(protocol::kErrorObject)) {
        const json& e = doc[protocol::kErrorObject];
        message = text_of(e.value(protocol::kErrorCode, json("error"))) + ": " +
                  text_of(e.value(protocol::kErrorMessage, json("")));
      }
      std::fprintf(stderr, "drover: %s (HTTP %d)\n", message.c_str(), response->status);
      if (response->status == 401 && token.empty())
        std::fprintf(stderr, "drover: give a token with --token or DROVER_TOKEN\n");
      return std::nullopt;
    }
    if (doc.is_discarded()) {
      std::fprintf(stderr, "drover: the server's answer is not JSON\n");
      return std::nullopt;
    }
    return doc;
  }

  // Prints `doc` as JSON when asked, else with `table`.
  int show(const std::optional<json>& doc, const std::function<void(const json&)>& table) {
    if (!doc) return 1;
    if (json_out) {
      std::printf("%s\n", doc->dump(2).c_str());
    } else {
      table(*doc);
    }
    return 0;
  }
};

// The verbs of remote_device.cc.
void add_device_verbs(CLI::App& app, RemoteCommands::State& s);
// The verbs of remote_telemetry.cc.
void add_profile_verbs(CLI::App& app, RemoteCommands::State& s);
// The verbs of remote_config.cc.
void add_config_verbs(CLI::App& app, RemoteCommands::State& s);
void add_telemetry_verbs(CLI::App& app, RemoteCommands::State& s);
// The verbs of remote_audit.cc.
void add_audit_verbs(CLI::App& app, RemoteCommands::State& s);
// The verbs of remote_alert.cc.
void add_alert_verbs(CLI::App& app, RemoteCommands::State& s);
// The verbs of remote_health.cc.
void add_health_verbs(CLI::App& app, RemoteCommands::State& s);
// The verbs of remote_enrollment.cc.
void add_enrollment_token_verbs(CLI::App& app, RemoteCommands::State& s);

}  // namespace drover::app
