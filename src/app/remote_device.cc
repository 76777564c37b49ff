// The `drover device` verbs: list and show devices (with when each was last heard from and
// is next expected), register one, change its site, link and tags in place (PATCH), decide
// on enrollments, and read its update history across rollouts.
#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "app/remote_state.h"
#include "base/units.h"
#include "transport/http/client.h"

namespace drover::app {

std::string ago_text(const json& at_ms, int64_t now_ms) {
  if (!at_ms.is_number_integer()) return "-";
  const int64_t d = now_ms - at_ms.get<int64_t>();
  if (d < 0) return "in " + format_duration(Duration((-d + 999) / 1000 * 1000));
  return format_duration(Duration(d / 1000 * 1000)) + " ago";
}

std::string next_checkin_text(const json& at_ms, int64_t now_ms) {
  if (!at_ms.is_number_integer()) return "-";
  const int64_t d = at_ms.get<int64_t>() - now_ms;
  if (d >= 0) return "in " + format_duration(Duration((d + 999) / 1000 * 1000));
  return "overdue " + format_duration(Duration(-d / 1000 * 1000));
}

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

namespace {

// The printers take the device by value: a field an older server does not send reads as
// null (operator[] on a const json would assert instead).
std::string installed_text(const json& d) {
  std::string installed;
  const json components = d.value("installed", json::object());
  for (const auto& [component, version] : components.items()) {
    if (!installed.empty()) installed += " ";
    installed += component + "@" + version.get<std::string>();
  }
  return installed.empty() ? "-" : installed;
}

std::string enrollment_text(const json& d) {
  if (d.value("decommissioned", false)) return "decommissioned";
  return d.value("enrollment", "accepted");
}

std::string or_dash(const json& d, const char* key) {
  return d.value(key, "").empty() ? "-" : text_of(d[key]);
}

void device_table(const json& devices) {
  const int64_t now = now_ms();
  std::vector<std::vector<std::string>> rows = {{"ID", "TYPE", "REVISION", "SITE", "LINK",
                                                 "ENROLLMENT", "STATE", "INSTALLED", "LAST SEEN",
                                                 "NEXT CHECK-IN"}};
  for (json d : devices) {
    rows.push_back({text_of(d["id"]), text_of(d["device_type"]), text_of(d["hardware_revision"]),
                    or_dash(d, "site"), or_dash(d, "connectivity"), enrollment_text(d),
                    text_of(d["update_state"]), installed_text(d),
                    ago_text(d.value("last_seen", json()), now),
                    next_checkin_text(d.value("next_checkin", json()), now)});
  }
  print_table(rows);
}

void device_text(json d) {
  const int64_t now = now_ms();
  std::string tags;
  for (const json& t : d["tags"]) tags += (tags.empty() ? "" : ", ") + text_of(t);
  std::vector<std::vector<std::string>> rows = {
      {"device", text_of(d["id"])},
      {"type", text_of(d["device_type"])},
      {"revision", text_of(d["hardware_revision"])},
      {"site", or_dash(d, "site")},
      {"link", or_dash(d, "connectivity")},
      {"tags", tags.empty() ? "-" : tags},
      {"enrollment",
       enrollment_text(d) + (d.contains("enrolled_by") ? " (" + text_of(d["enrolled_by"]) + ", " +
                                                             time_of(d["enrolled_at"]) + ")"
                                                       : "")},
      {"state", text_of(d["update_state"])},
      {"installed", installed_text(d)},
      {"keeps previous", d.value("keeps_previous", false) ? "yes (A/B)" : "no"},
      {"last seen", d["last_seen"].is_null()
                        ? "not since the server started"
                        : time_of(d["last_seen"]) + " (" + ago_text(d["last_seen"], now) + ")"},
      {"next check-in",
       d["next_checkin"].is_null()
           ? "-"
           : time_of(d["next_checkin"]) + " (" + next_checkin_text(d["next_checkin"], now) + ")"}};
  // What it said of its configuration (docs/configuration.md): the document it runs, and why
  // not the one it was given.
  if (d.contains("config_sha256") || d.contains("config_error")) {
    const std::string sha = text_of(d.value("config_sha256", json("")));
    rows.push_back({"configuration", sha.empty() ? "none" : sha.substr(0, 12)});
    if (d.contains("config_error")) rows.push_back({"  not applied", text_of(d["config_error"])});
  }
  if (d.contains("attributes")) {
    for (const auto& [key, value] : d["attributes"].items())
      rows.push_back({"  " + key, text_of(value)});
  }
  for (auto& row : rows) row[0] += ":";
  print_table(rows);
}

// Every deployment of one device, newest rollout first.
void device_history_text(const json& doc) {
  if (doc["deployments"].empty()) {
    std::printf("%s has been in no rollout\n", text_of(doc["device_id"]).c_str());
    return;
  }
  bool first = true;
  for (const json& d : doc["deployments"]) {
    if (!first) std::printf("\n");
    first = false;
    const json& r = d["rollout"];
    std::printf("== %s (%s, %s, rollout %s)\n", text_of(r["id"]).c_str(),
                text_of(r["name"]).c_str(), text_of(r["artifact"]).c_str(),
                text_of(r["state"]).c_str());
    history_text(d);
  }
}

// Remote commands, one row each, newest first.
void commands_table(const json& commands) {
  std::vector<std::vector<std::string>> rows = {
      {"ID", "ACTION", "STATE", "CREATED", "FINISHED", "EXIT", "BY", "OUTPUT"}};
  for (const json& c : commands) {
    std::string action = text_of(c["action"]);
    if (!c["argument"].get<std::string>().empty()) action += " " + text_of(c["argument"]);
    // The output's last line says most (a refusal's reason, a failure's last words).
    std::string output = c["output"].get<std::string>();
    while (!output.empty() && output.back() == '\n') output.pop_back();
    if (const size_t nl = output.rfind('\n'); nl != std::string::npos) output.erase(0, nl + 1);
    if (output.size() > 60) output = output.substr(0, 57) + "...";
    rows.push_back({text_of(c["id"]), action, text_of(c["state"]), time_of(c["created_at"]),
                    time_of(c["finished_at"]), text_of(c["exit_code"]), text_of(c["requested_by"]),
                    output.empty() ? "-" : output});
  }
  print_table(rows);
}

// PATCH /api/v1/devices/{id} with `body`; prints the device as it now is.
int patch(RemoteCommands::State& st, const json& body) {
  return st.show(st.call("PATCH", "/api/v1/devices/" + http::url_encode(st.id), body.dump(),
                         "application/json"),
                 [](const json& d) { device_table(json::array({d})); });
}

}  // namespace

void add_device_verbs(CLI::App& app, RemoteCommands::State& s) {
  CLI::App* device = app.add_subcommand("device", "devices on the server");
  device->require_subcommand(1);
  CLI::App* ls = s.verb(*device, "ls", "list devices", [](RemoteCommands::State& st) {
    std::string target = "/api/v1/devices?limit=" + std::to_string(st.limit);
    auto add = [&](const char* key, const std::string& v) {
      if (!v.empty()) target += std::string("&") + key + "=" + http::url_encode(v);
    };
    add("device_type", st.type);
    add("hardware_revision", st.revision);
    add("site", st.site);
    add("connectivity", st.connectivity);
    for (const auto& t : st.tags) add("tag", t);
    add("enrollment", st.enrollment);
    add("decommissioned", st.decommissioned);
    json devices = json::array();
    json last;
    std::string after;
    do {
      auto page =
          st.call("GET", target + (after.empty() ? "" : "&after=" + http::url_encode(after)));
      if (!page) return 1;
      for (json& d : (*page)["devices"]) devices.push_back(std::move(d));
      last = std::move(*page);
      after = last["next"].is_string() ? last["next"].get<std::string>() : "";
    } while (st.all && !after.empty());
    if (st.json_out) {
      std::printf("%s\n",
                  json({{"devices", devices}, {"matched", last["matched"]}}).dump(2).c_str());
      return 0;
    }
    device_table(devices);
    if (!after.empty()) {
      std::printf("(%zu of %s shown; --all for every page)\n", devices.size(),
                  text_of(last["matched"]).c_str());
    }
    return 0;
  });
  ls->add_option("--type", s.type, "device type");
  ls->add_option("--revision", s.revision, "hardware revision");
  ls->add_option("--site", s.site, "site");
  ls->add_option("--connectivity", s.connectivity, "connectivity class");
  ls->add_option("--tag", s.tags, "tag (repeatable: all must match)");
  ls->add_option("--enrollment", s.enrollment, "pending, accepted or rejected");
  ls->add_option("--decommissioned", s.decommissioned, "true or false");
  ls->add_option("--limit", s.limit, "devices per page")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  ls->add_flag("--all", s.all, "fetch every page");

  s.verb(*device, "show", "one device: identity, inventory, last seen, next check-in",
         [](RemoteCommands::State& st) {
           return st.show(st.call("GET", "/api/v1/devices/" + http::url_encode(st.id)),
                          &device_text);
         })
      ->add_option("id", s.id, "device id")
      ->required();

  CLI::App* history =
      s.verb(*device, "history", "the device's deployments, newest rollout first, with every step",
             [](RemoteCommands::State& st) {
               return st.show(st.call("GET", "/api/v1/devices/" + http::url_encode(st.id) +
                                                 "/deployments?limit=" + std::to_string(st.limit)),
                              &device_history_text);
             });
  history->add_option("id", s.id, "device id")->required();
  history->add_option("--limit", s.limit, "at most this many rollouts (1-1000)")
      ->check(CLI::Range(1, 1000));

  CLI::App* command = s.verb(
      *device, "command",
      "ask a device to do something at its next check-in: restart_service NAME, reboot, "
      "clear_update, rotate_key, run NAME",
      [](RemoteCommands::State& st) {
        json body = {{"action", st.action}};
        if (!st.argument.empty()) body["argument"] = st.argument;
        if (!st.reason.empty()) body["reason"] = st.reason;
        if (!st.lifetime.empty()) body["expires_in"] = st.lifetime;
        if (!st.command_id.empty()) body["id"] = st.command_id;
        return st.show(st.call("POST", "/api/v1/devices/" + http::url_encode(st.id) + "/commands",
                               body.dump(), "application/json"),
                       [](const json& c) { commands_table(json::array({c})); });
      });
  command->add_option("id", s.id, "device id")->required();
  command
      ->add_option("action", s.action, "restart_service, reboot, clear_update, rotate_key or run")
      ->required();
  command->add_option("argument", s.argument,
                      "the service (restart_service) or the agent's command name (run)");
  command->add_option("--reason", s.reason, "why, kept in the device's command history");
  command->add_option("--expires", s.lifetime, "not sent after this long (default 24h)");
  command->add_option("--command-id", s.command_id,
                      "an id of your own: asking again with it does not queue a second");
  CLI::App* commands =
      s.verb(*device, "commands", "the device's remote commands, newest first, with their results",
             [](RemoteCommands::State& st) {
               return st.show(st.call("GET", "/api/v1/devices/" + http::url_encode(st.id) +
                                                 "/commands?limit=" + std::to_string(st.limit)),
                              [](const json& doc) { commands_table(doc["commands"]); });
             });
  commands->add_option("id", s.id, "device id")->required();
  commands->add_option("--limit", s.limit, "at most this many (1-1000)")
      ->check(CLI::Range(1, 1000));
  s.verb(*device, "cancel-command", "withdraw a command the device has not reported on",
         [](RemoteCommands::State& st) {
           return st.show(
               st.call("POST", "/api/v1/commands/" + http::url_encode(st.command_id) + "/cancel"),
               [](const json& c) { commands_table(json::array({c})); });
         })
      ->add_option("command_id", s.command_id, "the command's id")
      ->required();

  CLI::App* add =
      s.verb(*device, "add", "register a new device (set, tag, untag change one)",
             [](RemoteCommands::State& st) {
               json body = {{"id", st.id},
                            {"device_type", st.type},
                            {"hardware_revision", st.revision},
                            {"site", st.site},
                            {"connectivity", st.connectivity},
                            {"tags", st.tags}};
               return st.show(st.call("POST", "/api/v1/devices", body.dump(), "application/json"),
                              [](const json& d) { device_table(json::array({d})); });
             });
  add->add_option("id", s.id, "device id")->required();
  add->add_option("--type", s.type, "device type")->required();
  add->add_option("--revision", s.revision, "hardware revision")->required();
  add->add_option("--site", s.site, "site (it must exist: drover site put)");
  add->add_option("--connectivity", s.connectivity, "connectivity class");
  add->add_option("--tag", s.tags, "tag (repeatable)");

  // Partial changes: only what is given changes.
  CLI::App* set = s.verb(*device, "set", "change a device's site, link, type or revision",
                         [](RemoteCommands::State& st) {
                           json body = json::object();
                           if (st.given("--site")) body["site"] = st.site;
                           if (st.given("--connectivity")) body["connectivity"] = st.connectivity;
                           if (st.given("--type")) body["device_type"] = st.type;
                           if (st.given("--revision")) body["hardware_revision"] = st.revision;
                           if (body.empty()) {
                             std::fprintf(stderr,
                                          "drover: nothing to change: give --site, "
                                          "--connectivity, --type or --revision\n");
                             return 2;
                           }
                           return patch(st, body);
                         });
  set->add_option("id", s.id, "device id")->required();
  set->add_option("--site", s.site, "site (it must exist; \"\" for none)");
  set->add_option("--connectivity", s.connectivity, "connectivity class");
  set->add_option("--type", s.type, "device type (not of an enrolled device: fixed then)");
  set->add_option("--revision", s.revision,
                  "hardware revision (not of an enrolled device: fixed then)");
  CLI::App* set_site =
      s.verb(*device, "set-site", "move a device to a site", [](RemoteCommands::State& st) {
        return patch(st, {{"site", st.site}});
      });
  set_site->add_option("id", s.id, "device id")->required();
  set_site->add_option("site", s.site, "the site (it must exist; \"\" for none)")->required();
  for (const bool tag : {true, false}) {
    CLI::App* cmd = s.verb(*device, tag ? "tag" : "untag",
                           tag ? "add tags to a device" : "remove tags from a device",
                           [tag](RemoteCommands::State& st) {
                             return patch(st, {{tag ? "add_tags" : "remove_tags", st.tags}});
                           });
    cmd->add_option("id", s.id, "device id")->required();
    cmd->add_option("tags", s.tags, "the tags")->required();
  }

  for (const char* action : {"accept", "reject", "unreject", "decommission"}) {
    const std::string a = action;
    s.verb(*device, action,
           a == "accept"     ? "accept a pending device"
           : a == "reject"   ? "reject a pending device"
           : a == "unreject" ? "undo a rejection: the device is pending again (admin)"
                             : "take a device out of service for good",
           [action](RemoteCommands::State& st) {
             return st.show(
                 st.call("POST", "/api/v1/devices/" + http::url_encode(st.id) + "/" + action),
                 [](const json& d) { device_table(json::array({d})); });
           })
        ->add_option("id", s.id, "device id")
        ->required();
  }
}

}  // namespace drover::app
