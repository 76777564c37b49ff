// The `drover alert` verbs (docs/api/operator.md, "Alerts"): ls, show, ack and resolve — what
// the remediation rules found, what they did about it, and who has it now.
#include <cstdio>
#include <string>
#include <vector>

#include "app/remote_state.h"
#include "transport/http/client.h"

namespace drover::app {
namespace {

// One alert a row; the newest first.
void alerts_table(const json& alerts) {
  std::vector<std::vector<std::string>> rows = {
      {"ID", "DEVICE", "RULE", "STATE", "OPENED", "COMMANDS", "WHO HAS IT", "NOW"}};
  for (const json& a : alerts) {
    const bool resolved = a["state"] == "resolved";
    const bool person = a["escalated"].is_boolean() && a["escalated"].get<bool>();
    std::string now = resolved ? text_of(a["resolution"])
                      : person ? text_of(a["escalation"])
                               : text_of(a["summary"]);
    if (now.size() > 70) now = now.substr(0, 67) + "...";
    rows.push_back({text_of(a["id"]), text_of(a["device_id"]), text_of(a["rule"]),
                    text_of(a["state"]), time_of(a["opened_at"]),
                    std::to_string(a["commands"].size()),
                    resolved ? text_of(a["resolved_by"])
                    : person ? "a person"
                             : "drover",
                    now});
  }
  print_table(rows);
}

void alert_text(const json& a) {
  std::vector<std::vector<std::string>> rows = {
      {"id:", text_of(a["id"])},
      {"device:", text_of(a["device_id"])},
      {"rule:", text_of(a["rule"]) + " (" + text_of(a["condition"]) + ")"},
      {"state:", text_of(a["state"])},
      {"opened:", time_of(a["opened_at"])},
      {"seen:", text_of(a["summary"])}};
  std::string commands;
  for (const json& c : a["commands"]) commands += (commands.empty() ? "" : ", ") + text_of(c);
  rows.push_back({"commands:", commands.empty() ? "-" : commands});
  if (a["escalated"].is_boolean() && a["escalated"].get<bool>())
    rows.push_back({"escalated:", text_of(a["escalation"])});
  if (!a["acknowledged_at"].is_null()) {
    rows.push_back(
        {"acknowledged:", time_of(a["acknowledged_at"]) + " by " + text_of(a["acknowledged_by"])});
  }
  if (!a["resolved_at"].is_null()) {
    rows.push_back({"resolved:", time_of(a["resolved_at"]) + " by " + text_of(a["resolved_by"]) +
                                     ": " + text_of(a["resolution"])});
  }
  print_table(rows);
}

// The rules the server runs, one a row, then the device's budget.
void rules_table(const json& doc) {
  std::vector<std::vector<std::string>> rows = {
      {"RULE", "CONDITION", "AFTER", "LADDER", "VERIFY", "COMMAND LIFETIME"}};
  for (const json& r : doc["rules"]) {
    std::string ladder;
    for (const json& step : r["ladder"]) {
      if (!ladder.empty()) ladder += ", ";
      ladder += text_of(step["action"]);
      if (step.contains("argument")) ladder += " " + text_of(step["argument"]);
    }
    ladder += ladder.empty() ? "a person" : ", then a person";
    rows.push_back({text_of(r["name"]), text_of(r["condition"]), text_of(r["after"]), ladder,
                    text_of(r["verify"]), text_of(r["command_lifetime"])});
  }
  print_table(rows);
  const json& limits = doc["limits"];
  std::printf(
      "at most %s automatic actions a device a day; an episode without a step for %s "
      "goes to a person\n",
      text_of(limits["max_actions_per_day"]).c_str(), text_of(limits["stalled_after"]).c_str());
}

}  // namespace

void add_alert_verbs(CLI::App& app, RemoteCommands::State& s) {
  CLI::App* alert = app.add_subcommand("alert", "alerts the remediation rules opened");
  alert->require_subcommand(1);
  CLI::App* ls = s.verb(*alert, "ls", "alerts, newest first (unresolved unless --all)",
                        [](RemoteCommands::State& st) {
                          std::string target = "/api/v1/alerts?limit=" + std::to_string(st.limit);
                          if (!st.device.empty())
                            target += "&device=" + http::url_encode(st.device);
                          if (st.all) target += "&state=all";
                          return st.show(st.call("GET", target),
                                         [](const json& doc) { alerts_table(doc["alerts"]); });
                        });
  ls->add_option("--device", s.device, "one device's alerts");
  ls->add_flag("--all", s.all, "resolved ones too");
  ls->add_option("--limit", s.limit, "at most this many (1-1000)")->check(CLI::Range(1, 1000));
  s.verb(*alert, "show", "one alert: what was seen, what was done, who has it",
         [](RemoteCommands::State& st) {
           return st.show(st.call("GET", "/api/v1/alerts/" + http::url_encode(st.id)), &alert_text);
         })
      ->add_option("id", s.id, "alert id")
      ->required();
  s.verb(*alert, "ack", "say you have seen it (remediation goes on)",
         [](RemoteCommands::State& st) {
           return st.show(
               st.call("POST", "/api/v1/alerts/" + http::url_encode(st.id) + "/acknowledge"),
               &alert_text);
         })
      ->add_option("id", s.id, "alert id")
      ->required();
  CLI::App* resolve = s.verb(
      *alert, "resolve", "close it: nothing more is done for it", [](RemoteCommands::State& st) {
        const json body = {{"note", st.reason}};
        return st.show(st.call("POST", "/api/v1/alerts/" + http::url_encode(st.id) + "/resolve",
                               body.dump(), "application/json"),
                       &alert_text);
      });
  resolve->add_option("id", s.id, "alert id")->required();
  resolve->add_option("--note", s.reason, "what was done (kept as its resolution)");
  s.verb(*alert, "rules", "the remediation rules the server runs, and its limits",
         [](RemoteCommands::State& st) {
           return st.show(st.call("GET", "/api/v1/remediation/rules"), &rules_table);
         });
}

}  // namespace drover::app
