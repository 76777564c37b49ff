#include "app/remote.h"

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <functional>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "app/remote_state.h"
#include "base/file_system.h"
#include "base/units.h"
#include "protocol/device.h"
#include "security/crypto.h"
#include "transport/http/client.h"

namespace drover::app {

// Prints rows as aligned columns, the first row being the header.
void print_table(const std::vector<std::vector<std::string>>& rows) {
  if (rows.empty()) return;
  std::vector<size_t> width(rows.front().size(), 0);
  for (const auto& row : rows) {
    for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
  }
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(width[i] - row[i].size() + 2, ' ');
    }
    std::printf("%s\n", line.c_str());
  }
}

std::string text_of(const json& j) {
  if (j.is_null()) return "-";
  if (j.is_string()) return j.get<std::string>();
  return j.dump();
}

std::string time_of(const json& ms) {
  if (!ms.is_number_integer() || ms.get<int64_t>() == 0) return "-";
  return format_utc_timestamp(Timestamp(Duration(ms.get<int64_t>())));
}

std::string counts_text(const json& states) {
  std::string out;
  for (const auto& [state, n] : states.items()) {
    if (!out.empty()) out += " ";
    out += state + "=" + n.dump();
  }
  return out.empty() ? "-" : out;
}

// The file a verb sends; std::nullopt (the reason printed) when it cannot be read.
std::optional<std::string> read_input(const std::string& path) {
  auto content = real_file_system().read(path);
  if (content.ok()) return std::move(*content);
  std::fprintf(stderr, "drover: cannot read %s: %s\n", path.c_str(),
               content.error().message.c_str());
  return std::nullopt;
}

namespace {

// With signed update metadata on, a SIGNED column: "no" is an artifact no device is offered.
void artifact_table(const json& artifacts) {
  const bool signing = std::any_of(artifacts.begin(), artifacts.end(),
                                   [](const json& a) { return a.contains("signed"); });
  std::vector<std::vector<std::string>> rows = {
      {"NAME", "VERSION", "SIZE", "DEVICE TYPES", "REVISIONS", "SHA256"}};
  if (signing) rows[0].push_back("SIGNED");
  for (const json& a : artifacts) {
    auto join = [](const json& list) {
      std::string out;
      for (const json& v : list) out += (out.empty() ? "" : ",") + v.get<std::string>();
      return out.empty() ? std::string("any") : out;
    };
    rows.push_back({text_of(a["name"]), text_of(a["version"]),
                    format_bytes(a["size"].get<uint64_t>()), join(a["device_types"]),
                    join(a["hardware_revisions"]), text_of(a["sha256"]).substr(0, 12)});
    if (signing) rows.back().push_back(a.value("signed", false) ? "yes" : "no");
  }
  print_table(rows);
}

// What a rollback could do for a plan's targets (the preview's or the create answer's
// "rollback"), and which targets it could not send back and why.
void rollback_text(const json& rb) {
  if (!rb.is_object()) return;
  std::printf(
      "rollback: %s would switch back to the slot they keep, %s would download the "
      "previous version",
      text_of(rb["switch_back"]).c_str(), text_of(rb["download"]).c_str());
  if (rb["not_revertible"].get<uint64_t>() == 0) {
    std::printf("; every target can be sent back\n");
    return;
  }
  std::printf("; %s could NOT be sent back:\n", text_of(rb["not_revertible"]).c_str());
  for (const json& g : rb["gaps"]) {
    std::string examples;
    for (const json& e : g["examples"]) examples += (examples.empty() ? "" : ", ") + text_of(e);
    std::printf("  %s devices (%s%s) %s", text_of(g["devices"]).c_str(), examples.c_str(),
                g["devices"].get<uint64_t>() > g["examples"].size() ? ", ..." : "",
                text_of(g["reason"]).c_str());
    if (g["missing_artifact"].is_string())
      std::printf(": upload %s first", g["missing_artifact"].get<std::string>().c_str());
    std::printf("\n");
  }
}

}  // namespace

// One device's deployment, with every step of its history.
void history_text(const json& d) {
  std::printf("%s in %s: %s", text_of(d["device_id"]).c_str(), text_of(d["rollout_id"]).c_str(),
              text_of(d["state"]).c_str());
  if (!text_of(d["error"]).empty()) std::printf(" (%s)", text_of(d["error"]).c_str());
  std::printf("\n");
  if (d["offers"] == 0) {
    std::printf("  not offered yet\n");
  } else {
    const std::string from = text_of(d["from_version"]);
    std::printf("  ran %s before%s; %s offer(s)\n", from.empty() ? "nothing" : from.c_str(),
                d["switch_back"] == true ? " (kept in its other slot)" : "",
                text_of(d["offers"]).c_str());
  }
  if (d["history"].empty()) return;
  std::printf("\n");
  std::vector<std::vector<std::string>> rows = {{"AT", "EVENT", "STATE", "MESSAGE"}};
  for (const json& s : d["history"]) {
    rows.push_back(
        {time_of(s["at"]), text_of(s["event"]), text_of(s["state"]), text_of(s["message"])});
  }
  print_table(rows);
}

namespace {

// Where the rollout stands: "2 of 3, half: started 12:00, settled 12:20, soaking until
// 12:50 (in 30m)" — without the relative "(in 30m)" when `now` is 0 (a line that must not
// change while nothing happens). Fields the server left out read as absent.
std::string stage_text(json r, int64_t now) {
  const json stages = r["stages"];
  if (!stages.is_array() || stages.empty()) return "- (not started)";
  const auto ms_of = [](const json& j) { return j.is_number_integer() ? j.get<int64_t>() : 0; };
  const size_t i = std::min<size_t>(static_cast<size_t>(ms_of(r["stage"])), stages.size() - 1);
  json st = stages[i];
  const json plan_stages = r["plan"]["stages"].is_array() ? r["plan"]["stages"] : json::array();
  const size_t planned = std::max(stages.size(), plan_stages.size());
  std::string out = std::to_string(i + 1) + " of " + std::to_string(planned) + ", " +
                    text_of(st["name"]) + ": started " + time_of(st["started_at"]);
  if (ms_of(st["finished_at"]) != 0) return out + ", finished " + time_of(st["finished_at"]);
  if (ms_of(st["settled_at"]) == 0) return out + ", its devices updating";
  out += ", settled " + time_of(st["settled_at"]);
  if (i < plan_stages.size() && plan_stages[i].value("soak", json()).is_string()) {
    auto soak = parse_duration(plan_stages[i]["soak"].get<std::string>());
    if (soak.ok() && soak->count() > 0) {
      const json end = ms_of(st["settled_at"]) + soak->count();
      out += ", soaking until " + time_of(end);
      if (now != 0 && end.get<int64_t>() > now) out += " (" + next_checkin_text(end, now) + ")";
    }
  }
  return out;
}

void rollout_status_text(const json& r) {
  std::printf("rollout %s (%s): %s@%s\n", text_of(r["id"]).c_str(),
              text_of(r["plan"]["name"]).c_str(), text_of(r["plan"]["artifact"]["name"]).c_str(),
              text_of(r["plan"]["artifact"]["version"]).c_str());
  std::printf("  state     %s\n", text_of(r["state"]).c_str());
  std::printf("  targets   %s\n", text_of(r["targets"]).c_str());
  std::printf("  created   %s\n", time_of(r["created_at"]).c_str());
  std::printf("  started   %s\n", time_of(r["started_at"]).c_str());
  std::printf("  finished  %s\n", time_of(r["finished_at"]).c_str());
  std::printf("  stage     %s\n", stage_text(r, now_ms()).c_str());
  const json& p = r["progress"];
  if (p.is_object()) {
    std::printf("  progress  %s of %s finished, %s in flight  [%s]\n",
                text_of(p["finished"]).c_str(), text_of(p["devices"]).c_str(),
                text_of(p["in_flight"]).c_str(), counts_text(p["states"]).c_str());
    if (p.contains("outcome") && p["outcome"].is_object()) {
      const json& o = p["outcome"];
      std::printf(
          "  outcome   %s of %s updated; %s failed (install %s, trial boot fell back %s, "
          "unhealthy %s, unhealthy then sent back %s, went silent in the watch %s, failed then "
          "due a revert %s); %s sent back healthy; %s never offered; %s excluded by a rule\n",
          text_of(o["updated"]).c_str(), text_of(o["targets"]).c_str(),
          text_of(o["failed"]).c_str(), text_of(o["install_failed"]).c_str(),
          text_of(o["fell_back"]).c_str(), text_of(o["unhealthy"]).c_str(),
          text_of(o["unhealthy_reverted"]).c_str(), text_of(o.value("went_silent", json())).c_str(),
          text_of(o.value("failed_in_revert", json())).c_str(), text_of(o["reverted"]).c_str(),
          text_of(o["never_offered"]).c_str(), text_of(o["skipped"]).c_str());
      if (o.value("silent", 0) > 0 || o.value("went_silent", 0) > 0) {
        std::printf(
            "  silent    %s past their check-in contract (out of the counts until heard again); "
            "%s went silent within their watch (failures)\n",
            text_of(o["silent"]).c_str(), text_of(o["went_silent"]).c_str());
      }
      if (o.contains("never_offered_why")) {
        for (const json& w : o["never_offered_why"]) {
          std::printf("  not offered  %s: %s\n", text_of(w["reason"]).c_str(),
                      text_of(w["devices"]).c_str());
        }
      }
      for (const json& h : o["halted"]) {
        std::printf("  halted    %s: %s devices, %s never offered", text_of(h["group"]).c_str(),
                    text_of(h["devices"]).c_str(), text_of(h["never_offered"]).c_str());
        if (h.value("not_reverted", 0) > 0)
          std::printf(", %s could not be sent back", text_of(h["not_reverted"]).c_str());
        std::printf("\n");
      }
    }
    std::printf("\n");
    std::vector<std::vector<std::string>> stages = {{"STAGE", "DEVICES", "FINISHED", "STATES"}};
    for (const json& s : p["stages"]) {
      stages.push_back({text_of(s["name"]), text_of(s["devices"]), text_of(s["finished"]),
                        counts_text(s["states"])});
    }
    print_table(stages);
    std::printf("\n");
    std::vector<std::vector<std::string>> strata = {
        {"STRATUM", "DEVICES", "OK", "FAILED", "HALTED", "STATES"}};
    for (const json& s : p["strata"]) {
      strata.push_back({text_of(s["key"]), text_of(s["devices"]), text_of(s["successes"]),
                        text_of(s["failures"]), s["halted"].get<bool>() ? "HALTED" : "-",
                        counts_text(s["states"])});
    }
    print_table(strata);
    if (p.contains("health") && !p["health"].empty()) {
      // Health gates: the sign test's evidence per group against the threshold that halts it.
      std::printf("\n");
      std::vector<std::vector<std::string>> health = {
          {"HEALTH GATE", "METRIC", "PAIRS", "UPDATED WORSE", "TIED", "EVIDENCE", "HALTS AT"}};
      for (const json& h : p["health"]) {
        char evidence[32], threshold[32];
        std::snprintf(evidence, sizeof evidence, "%.2f", h["evidence"].get<double>());
        std::snprintf(threshold, sizeof threshold, "%.2f", h["threshold"].get<double>());
        health.push_back({text_of(h["group"]) + (h["halted"].get<bool>() ? " (halted)" : ""),
                          text_of(h["metric"]) + " (" + text_of(h["measure"]) + ")",
                          text_of(h["pairs"]), text_of(h["worse"]), text_of(h["ties"]), evidence,
                          threshold});
      }
      print_table(health);
      std::printf("%s updated device(s) waiting for their window after the commit to be paired\n",
                  text_of(p["health_waiting"]).c_str());
    }
  }
  for (const json& h : r["halted"]) {
    std::printf("  halted %s: %s\n", text_of(h["key"]).c_str(), text_of(h["reason"]).c_str());
  }
}

// A progress bar for an upload, redrawn on stderr as the body goes: "[#####   ] 40% of 1.2
// GiB". Ends with a newline once everything is sent.
// A progress bar on stderr for an upload, and what ends its line when the request is over
// before the bar reached 100% (a refused or cut upload), so that a message starts a line.
struct UploadBar {
  std::function<void(uint64_t, uint64_t)> progress;
  std::function<void()> done;
};

UploadBar upload_bar(const std::string& what) {
  auto open = std::make_shared<bool>(false);  // drawn, its line not yet ended
  UploadBar bar;
  bar.progress = [what, open, last = -1](uint64_t sent, uint64_t total) mutable {
    const int pct = total == 0 ? 100 : static_cast<int>(sent * 100 / total);
    if (pct == last) return;
    last = pct;
    std::fprintf(stderr, "\r%s [%-25s] %3d%% of %s", what.c_str(),
                 std::string(pct / 4, '#').c_str(), pct, format_bytes(total).c_str());
    *open = sent < total;
    if (!*open) std::fprintf(stderr, "\n");
  };
  bar.done = [open] {
    if (*open) std::fprintf(stderr, "\n");
    *open = false;
  };
  return bar;
}

// `rollout status --watch`: the status and the events since the last look, every
// --interval, until the rollout ends. On a terminal the screen is redrawn; piped, each new
// event is a line and the status line is printed when it changes; with --json, one JSON
// object per look ({"rollout", "events"}).
int watch_rollout(RemoteCommands::State& st) {
  const std::string base = "/api/v1/rollouts/" + http::url_encode(st.id);
  const bool redraw = isatty(STDOUT_FILENO) != 0 && !st.json_out;
  uint64_t after = 0;
  std::deque<std::string> recent;  // the newest events, for the redrawn screen
  std::string last_line;
  for (;;) {
    const std::optional<json> r = st.call("GET", base);
    if (!r) return 1;
    std::optional<json> ev =
        st.call("GET", base + "/events?after=" + std::to_string(after) + "&limit=1000");
    if (!ev) return 1;
    after = ev->value("last", after);
    std::vector<std::string> lines;
    if (ev->value("truncated", false)) {
      // An event line of its own, so that it stays among the recent ones on a redrawn screen.
      lines.emplace_back(
          "(some events were dropped before they were read: the server keeps the newest 256 "
          "of a rollout)");
    }
    const json events = ev->value("events", json::array());
    for (const json& e : events) {
      lines.push_back(time_of(e["at"]) + "  " + text_of(e["event"]) + "  " + text_of(e["text"]));
    }
    const std::string state = text_of((*r)["state"]);
    const bool over = state == "completed" || state == "completed_partial" || state == "failed" ||
                      state == "aborted" || state == "rolled_back" ||
                      state == "rollback_incomplete";
    if (st.json_out) {
      std::printf(
          "%s\n",
          json({{"rollout", *r}, {"events", events}, {"truncated", ev->value("truncated", false)}})
              .dump()
              .c_str());
    } else if (redraw) {
      for (std::string& l : lines) recent.push_back(std::move(l));
      while (recent.size() > 10) recent.pop_front();
      std::printf("\x1b[H\x1b[2J");
      rollout_status_text(*r);
      const json& p = (*r)["progress"];
      const uint64_t devices = p.is_object() ? p.value("devices", uint64_t{0}) : 0;
      if (devices > 0) {
        const uint64_t pct = p.value("finished", uint64_t{0}) * 100 / devices;
        std::printf("\n[%-40s] %3llu%% finished\n", std::string(pct * 40 / 100, '#').c_str(),
                    static_cast<unsigned long long>(pct));
      }
      std::printf("\nrecent events\n");
      for (const std::string& l : recent) std::printf("  %s\n", l.c_str());
      if (!over) std::printf("\n(every %gs; Ctrl-C to stop watching)\n", st.interval);
    } else {
      for (const std::string& l : lines) std::printf("%s\n", l.c_str());
      const json& p = (*r)["progress"];
      std::string line = state + "; stage " + stage_text(*r, 0);
      if (p.is_object()) {
        line += "; " + text_of(p["finished"]) + " of " + text_of(p["devices"]) + " finished, " +
                text_of(p["in_flight"]) + " in flight";
      }
      if (line != last_line) std::printf("%s\n", line.c_str());
      last_line = std::move(line);
    }
    std::fflush(stdout);
    if (over) return state == "completed" ? 0 : 1;
    std::this_thread::sleep_for(
        std::chrono::milliseconds(static_cast<int64_t>(st.interval * 1000)));
  }
}

void add_site_verbs(CLI::App& app, RemoteCommands::State& s) {
  CLI::App* site = app.add_subcommand("site", "sites and their maintenance windows");
  site->require_subcommand(1);
  s.verb(*site, "ls", "list sites", [](RemoteCommands::State& st) {
    return st.show(st.call("GET", "/api/v1/sites"), [](const json& doc) {
      std::vector<std::vector<std::string>> rows = {{"NAME", "TIME ZONE", "WINDOWS"}};
      for (const json& si : doc["sites"]) {
        std::string windows;
        for (const json& w : si["maintenance_windows"]) {
          windows += (windows.empty() ? "" : "; ") + text_of(w["days"]) + " " +
                     text_of(w["start"]) + " for " + text_of(w["length"]);
        }
        rows.push_back({text_of(si["name"]), text_of(si["time_zone"]),
                        windows.empty() ? "always open" : windows});
      }
      print_table(rows);
    });
  });
  s.verb(*site, "put", "create or replace a site from a JSON file",
         [](RemoteCommands::State& st) {
           const std::optional<std::string> body = read_input(st.file);
           if (!body) return 1;
           json doc = json::parse(*body, nullptr, false);
           if (!doc.is_object() || !doc.contains("name") || !doc["name"].is_string()) {
             std::fprintf(stderr, "drover: %s: a site document with a \"name\" is expected\n",
                          st.file.c_str());
             return 1;
           }
           return st.show(
               st.call("PUT", "/api/v1/sites/" + http::url_encode(doc["name"].get<std::string>()),
                       *body, "application/json"),
               [](const json& si) { std::printf("site %s saved\n", text_of(si["name"]).c_str()); });
         })
      ->add_option("file", s.file, "site JSON (docs/formats.md)")
      ->required();
}

void add_artifact_verbs(CLI::App& app, RemoteCommands::State& s) {
  CLI::App* artifact = app.add_subcommand("artifact", "update artifacts on the server");
  artifact->require_subcommand(1);
  CLI::App* upload =
      s.verb(*artifact, "upload", "upload an artifact file", [](RemoteCommands::State& st) {
        const std::optional<std::string> content = read_input(st.file);
        if (!content) return 1;
        // On a terminal, a progress bar on stderr (nothing when piped).
        if (isatty(STDERR_FILENO) != 0 && content->size() >= (1u << 20)) {
          UploadBar bar = upload_bar(st.file);
          st.tls.upload_progress = std::move(bar.progress);
          st.after_request = std::move(bar.done);
        }
        // The server checks the hash it receives against the one computed here.
        std::string target = "/api/v1/artifacts/" + http::url_encode(st.name) + "/" +
                             http::url_encode(st.version) +
                             "?sha256=" + security::to_hex(security::sha256(*content));
        for (const auto& t : st.device_types) target += "&device_type=" + http::url_encode(t);
        for (const auto& r : st.hardware_revisions)
          target += "&hardware_revision=" + http::url_encode(r);
        for (const auto& d : st.depends) target += "&depends=" + http::url_encode(d);
        return st.show(st.call("PUT", target, *content, "application/octet-stream"),
                       [](const json& a) { artifact_table(json::array({a})); });
      });
  upload->add_option("file", s.file, "the artifact's content")->required();
  upload->add_option("--name", s.name, "component it installs, e.g. firmware")->required();
  upload->add_option("--version", s.version, "semantic version")->required();
  upload->add_option("--device-type", s.device_types, "device type it is built for (repeatable)")
      ->required();
  upload->add_option("--hardware-revision", s.hardware_revisions,
                     "hardware revision (repeatable; default: every revision)");
  upload->add_option("--depends", s.depends, "COMPONENT:CONSTRAINT, e.g. bootloader:>=2.0.0");

  s.verb(*artifact, "ls", "list artifacts", [](RemoteCommands::State& st) {
    return st.show(st.call("GET", "/api/v1/artifacts"),
                   [](const json& doc) { artifact_table(doc["artifacts"]); });
  });
  for (const char* verb_name : {"show", "rm"}) {
    const bool remove = verb_name == std::string("rm");
    CLI::App* cmd = s.verb(
        *artifact, verb_name, remove ? "delete an artifact no rollout needs" : "one artifact",
        [remove](RemoteCommands::State& st) {
          const std::string target =
              "/api/v1/artifacts/" + http::url_encode(st.name) + "/" + http::url_encode(st.version);
          if (remove) {
            if (!st.call("DELETE", target)) return 1;
            if (!st.json_out) std::printf("deleted %s@%s\n", st.name.c_str(), st.version.c_str());
            return 0;
          }
          return st.show(st.call("GET", target),
                         [](const json& a) { std::printf("%s\n", a.dump(2).c_str()); });
        });
    cmd->add_option("name", s.name, "component")->required();
    cmd->add_option("version", s.version, "version")->required();
  }
}

// POST /rollouts/predict's answer (sim/live_fleet.h) for people.
void prediction_text(const json& answer) {
  json p = answer;  // a copy: a missing field reads as null rather than past the end
  json& r = p["report"];
  json& f = p["fleet"];
  json& a = p["assumptions"];
  auto took = [](const json& s) {
    if (!s.is_number()) return std::string("never");
    return format_duration(Duration(static_cast<int64_t>(s.get<double>()) * 1000));
  };
  std::printf(
      "prediction on the live fleet: %s devices in service (%s long overdue, taken as "
      "gone; %s not heard from since the server started)\n",
      text_of(f["devices"]).c_str(), text_of(f["dark"]).c_str(),
      text_of(f["unknown_schedule"]).c_str());
  std::printf("  targets %s; the rollout ends %s\n", text_of(r["devices_eligible"]).c_str(),
              text_of(r["rollout_state"]).c_str());
  std::printf("  time to 50%%: %s, 95%%: %s, 100%%: %s\n", took(r["time_to_50_percent_s"]).c_str(),
              took(r["time_to_95_percent_s"]).c_str(), took(r["time_to_100_percent_s"]).c_str());
  std::vector<std::vector<std::string>> rows = {
      {"STAGE", "DEVICES", "STARTS", "TAKES", "BOUND BY"}};
  for (json& st : r["stages"]) {
    const json& start = st["started_at_s"];
    const json& end = st["finished_at_s"];
    rows.push_back({text_of(st["name"]), text_of(st["devices"]), "+" + took(start),
                    end.is_number() && start.is_number()
                        ? took(json(end.get<double>() - start.get<double>()))
                        : "-",
                    text_of(st["bound_by"])});
  }
  print_table(rows);
  json& never = r["never_reached"];
  if (never.is_array() && !never.empty()) {
    std::printf("never reached within %s: %zu\n", text_of(a["horizon"]).c_str(), never.size());
    size_t shown = 0;
    for (json& u : never) {
      if (shown++ == 20) {
        std::printf("  ... and %zu more (--json for all)\n", never.size() - 20);
        break;
      }
      std::printf("  %s: %s\n", text_of(u["device_id"]).c_str(), text_of(u["reason"]).c_str());
    }
  }
  std::printf("assumed: poll %s, tick %s, install %s, reboot %s, %s bit/s; %s; %s\n",
              text_of(a["poll_interval"]).c_str(), text_of(a["engine_tick"]).c_str(),
              text_of(a["install_time"]).c_str(), text_of(a["reboot_time"]).c_str(),
              text_of(a["bandwidth_bps"]).c_str(), text_of(a["defects"]).c_str(),
              text_of(a["other_rollouts"]).c_str());
}

void add_rollout_verbs(CLI::App& rollout, RemoteCommands::State& s) {
  CLI::App* create =
      s.verb(rollout, "create", "create a rollout from a plan file", [](RemoteCommands::State& st) {
        const std::optional<std::string> plan = read_input(st.file);
        if (!plan) return 1;
        if (st.dry_run) {
          return st.show(st.call("POST", "/api/v1/rollouts/plan", *plan, "application/json"),
                         [](const json& p) {
                           std::printf("targets %s, already current %s, incompatible %s\n",
                                       text_of(p["targets"]).c_str(),
                                       text_of(p["already_current"]).c_str(),
                                       text_of(p["excluded_count"]).c_str());
                           std::vector<std::vector<std::string>> rows = {
                               {"STAGE", "ADDS", "CUMULATIVE", "ASKED", "WHY MORE"}};
                           for (const json& s2 : p["stages"]) {
                             rows.push_back({text_of(s2["name"]), text_of(s2["adds"]),
                                             text_of(s2["cumulative"]), text_of(s2["asked"]),
                                             text_of(s2["why"])});
                           }
                           print_table(rows);
                           std::printf("%zu strata\n", p["strata"].size());
                           rollback_text(p["rollback"]);
                         });
        }
        auto created = st.call("POST", "/api/v1/rollouts", *plan, "application/json");
        if (!created) return 1;
        const std::string id = (*created)["id"];
        if (!st.json_out) rollback_text((*created)["rollback"]);
        if (!st.start) {
          return st.show(created, [&](const json&) {
            std::printf("created %s (not started: drover rollout start %s)\n", id.c_str(),
                        id.c_str());
          });
        }
        return st.show(st.call("POST", "/api/v1/rollouts/" + http::url_encode(id) + "/start"),
                       &rollout_status_text);
      });
  create->add_option("plan", s.file, "rollout plan (JSON, docs/scenarios.md)")->required();
  create->add_flag("--start", s.start, "start it at once");
  create->add_flag("--dry-run", s.dry_run, "only show the plan: targets, stages, strata");

  CLI::App* predict = s.verb(
      rollout, "predict",
      "the digital twin's prediction of a plan on the live fleet: how long, and who it "
      "never reaches",
      [](RemoteCommands::State& st) {
        const std::optional<std::string> plan = read_input(st.file);
        if (!plan) return 1;
        std::string query;
        for (const auto& [key, value] :
             {std::pair{"horizon", &st.horizon}, std::pair{"install_time", &st.install_time},
              std::pair{"reboot_time", &st.reboot_time}, std::pair{"bandwidth", &st.bandwidth}}) {
          if (!value->empty())
            query +=
                (query.empty() ? "?" : "&") + std::string(key) + "=" + http::url_encode(*value);
        }
        return st.show(
            st.call("POST", "/api/v1/rollouts/predict" + query, *plan, "application/json"),
            &prediction_text);
      });
  predict->add_option("plan", s.file, "rollout plan (JSON, docs/scenarios.md)")->required();
  predict->add_option("--horizon", s.horizon, "look this far ahead at most (default 14d)");
  predict->add_option("--install-time", s.install_time,
                      "how long a device takes to install (default 2m)");
  predict->add_option("--reboot-time", s.reboot_time, "...and to reboot (default 90s)");
  predict->add_option("--bandwidth", s.bandwidth, "the devices' link speed (default 10Mbps)");

  s.verb(rollout, "ls", "list rollouts", [](RemoteCommands::State& st) {
    return st.show(st.call("GET", "/api/v1/rollouts"), [](const json& doc) {
      std::vector<std::vector<std::string>> rows = {
          {"ID", "NAME", "ARTIFACT", "STATE", "STAGE", "TARGETS", "CREATED"}};
      for (const json& r : doc["rollouts"]) {
        rows.push_back({text_of(r["id"]), text_of(r["name"]), text_of(r["artifact"]),
                        text_of(r["state"]), text_of(r["stage"]), text_of(r["targets"]),
                        time_of(r["created_at"])});
      }
      print_table(rows);
    });
  });
  CLI::App* status =
      s.verb(rollout, "status", "a rollout's stage, progress by stage and stratum (--watch: live)",
             [](RemoteCommands::State& st) {
               if (st.watch) return watch_rollout(st);
               return st.show(st.call("GET", "/api/v1/rollouts/" + http::url_encode(st.id)),
                              &rollout_status_text);
             });
  status->add_option("id", s.id, "rollout id")->required();
  status->add_flag("--watch", s.watch,
                   "follow it until it ends, with its recent events (exit 0 when it completed, "
                   "1 when it ended otherwise)");
  status->add_option("--interval", s.interval, "--watch: how often to ask")
      ->check(CLI::Range(0.2, 3600.0))
      ->capture_default_str();
  CLI::App* devices = s.verb(
      rollout, "devices", "a rollout's devices and their states (e.g. --state failed)",
      [](RemoteCommands::State& st) {
        std::string target = "/api/v1/rollouts/" + http::url_encode(st.id) +
                             "/devices?limit=" + std::to_string(st.limit);
        if (!st.state.empty()) target += "&state=" + http::url_encode(st.state);
        return st.show(st.call("GET", target), [](const json& doc) {
          std::vector<std::vector<std::string>> rows = {
              {"DEVICE", "STATE", "STAGE", "OFFERS", "UPDATED", "ERROR"}};
          for (const json& d : doc["deployments"]) {
            rows.push_back({text_of(d["device_id"]), text_of(d["state"]), text_of(d["stage"]),
                            text_of(d["offers"]), time_of(d["updated_at"]), text_of(d["error"])});
          }
          print_table(rows);
          std::printf("%s matched%s\n", text_of(doc["matched"]).c_str(),
                      doc["next"].is_null() ? "" : " (more: raise --limit)");
        });
      });
  devices->add_option("id", s.id, "rollout id")->required();
  devices->add_option("--state", s.state,
                      "only deployments in this state (failed, unhealthy, ...)");
  devices->add_option("--limit", s.limit, "at most this many (1-1000)")->capture_default_str();
  CLI::App* history =
      s.verb(rollout, "history", "one device's deployment: every step, with the device's messages",
             [](RemoteCommands::State& st) {
               return st.show(st.call("GET", "/api/v1/rollouts/" + http::url_encode(st.id) +
                                                 "/devices/" + http::url_encode(st.device)),
                              &history_text);
             });
  history->add_option("id", s.id, "rollout id")->required();
  history->add_option("device", s.device, "device id")->required();
  for (const char* action : {"start", "pause", "resume", "abort", "rollback"}) {
    s.verb(rollout, action, (std::string(action) + " a rollout").c_str(),
           [action](RemoteCommands::State& st) {
             return st.show(
                 st.call("POST", "/api/v1/rollouts/" + http::url_encode(st.id) + "/" + action),
                 &rollout_status_text);
           })
        ->add_option("id", s.id, "rollout id")
        ->required();
  }
}

void add_token_verbs(CLI::App& token, RemoteCommands::State& s) {
  s.verb(token, "ls", "list API tokens (admin)", [](RemoteCommands::State& st) {
    return st.show(st.call("GET", "/api/v1/tokens"), [](const json& doc) {
      std::vector<std::vector<std::string>> rows = {
          {"ID", "NAME", "ROLE", "CREATED", "EXPIRES", "REVOKED"}};
      for (const json& t : doc["tokens"]) {
        rows.push_back({text_of(t["id"]), text_of(t["name"]), text_of(t["role"]),
                        time_of(t["created_at"]), time_of(t["expires_at"]),
                        time_of(t["revoked_at"])});
      }
      print_table(rows);
    });
  });
  s.verb(token, "revoke", "revoke an API token (admin)",
         [](RemoteCommands::State& st) {
           return st.show(
               st.call("POST", "/api/v1/tokens/" + http::url_encode(st.id) + "/revoke"),
               [](const json& t) { std::printf("revoked %s\n", text_of(t["id"]).c_str()); });
         })
      ->add_option("id", s.id, "token id")
      ->required();
}

}  // namespace

RemoteCommands::RemoteCommands(CLI::App& app, CLI::App& rollout, CLI::App& token)
    : s_(std::make_unique<State>()) {
  add_device_verbs(app, *s_);
  add_site_verbs(app, *s_);
  add_artifact_verbs(app, *s_);
  add_profile_verbs(app, *s_);
  add_config_verbs(app, *s_);
  add_telemetry_verbs(app, *s_);
  add_audit_verbs(app, *s_);
  add_alert_verbs(app, *s_);
  add_health_verbs(app, *s_);
  add_enrollment_token_verbs(app, *s_);
  add_rollout_verbs(rollout, *s_);
  add_token_verbs(token, *s_);
}

RemoteCommands::~RemoteCommands() = default;

bool RemoteCommands::parsed() const {
  return std::any_of(s_->verbs.begin(), s_->verbs.end(),
                     [](const State::Verb& v) { return v.cmd->parsed(); });
}

int RemoteCommands::run(const GlobalFlags& globals) {
  if (s_->server.empty()) s_->server = globals.server;
  if (s_->token.empty()) s_->token = globals.token;
  if (s_->tls.ca_file.empty()) s_->tls.ca_file = globals.ca_file;
  s_->json_out = s_->json_out || globals.json;
  auto from_env = [](std::string& field, const char* name, const char* fallback) {
    if (!field.empty()) return;
    const char* value = std::getenv(name);
    field = value != nullptr && *value != '\0' ? value : fallback;
  };
  from_env(s_->server, "DROVER_SERVER", kDefaultServer);
  from_env(s_->token, "DROVER_TOKEN", "");
  for (const State::Verb& v : s_->verbs) {
    if (!v.cmd->parsed()) continue;
    s_->current = v.cmd;
    return v.run(*s_);
  }
  return 2;
}

}  // namespace drover::app
