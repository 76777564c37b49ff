// The `drover profile` and `drover telemetry` verbs (docs/api/operator.md, "The CLI").
#include <string>
#include <vector>

#include "app/remote_state.h"
#include "base/units.h"

namespace drover::app {
namespace {

// An age in seconds as "42s", "3m5s", "1h2m" (null: "-").
std::string age_of(const json& seconds) {
  if (!seconds.is_number()) return "-";
  return format_duration(Duration(static_cast<int64_t>(seconds.get<double>()) * 1000));
}

std::string labels_text(const json& labels) {
  std::string out;
  for (const auto& [k, v] : labels.items()) out += (out.empty() ? "" : ",") + k + "=" + text_of(v);
  return out.empty() ? "" : "{" + out + "}";
}

}  // namespace

void add_profile_verbs(CLI::App& app, RemoteCommands::State& s) {
  CLI::App* profile = app.add_subcommand(
      "profile", "device profiles: telemetry contracts, metric rules, health checks");
  profile->require_subcommand(1);
  auto print_profile = [](const json& p) {
    const json& t = p["telemetry"];
    std::printf("%s: report every %s, %s late allowed, stale after %s\n",
                text_of(p["device_type"]).c_str(), text_of(t["report_every"]).c_str(),
                text_of(t["late_after"]).c_str(), text_of(t["stale_after"]).c_str());
    for (const json& m : p["metrics"]) {
      std::string rule = m.contains("aggregates") ? "every " + text_of(m["every"]) + ":" : "raw";
      if (m.contains("aggregates")) {
        for (const json& a : m["aggregates"]) rule += " " + text_of(a);
      }
      std::printf("  %-32s %s\n", text_of(m["metric"]).c_str(), rule.c_str());
    }
    // What device health watches in its metrics: "health temp_c: above 60, frozen after 6h".
    for (const json& c : p.value("health", json::array())) {
      std::string what;
      const auto add = [&what](const std::string& part) {
        what += (what.empty() ? "" : ", ") + part;
      };
      char number[32];
      for (const char* side : {"above", "below"}) {
        if (!c.contains(side) || !c[side].is_number()) continue;
        std::snprintf(number, sizeof number, "%g", c[side].get<double>());
        add(std::string(side) + " " + number);
      }
      if (c.contains("frozen_after")) {
        std::string frozen = "frozen after " + text_of(c["frozen_after"]);
        if (c.contains("tolerance") && c["tolerance"].is_number()) {
          std::snprintf(number, sizeof number, "%g", c["tolerance"].get<double>());
          frozen += std::string(" (tolerance ") + number + ")";
        }
        add(frozen);
      }
      if (c.value("drift", false)) add("drift against its site's devices of the type");
      std::printf("  health %s: %s\n", text_of(c["metric"]).c_str(), what.c_str());
    }
  };
  s.verb(*profile, "ls", "list the profiles", [print_profile](RemoteCommands::State& st) {
    return st.show(st.call("GET", "/api/v1/profiles"), [&](const json& doc) {
      for (const json& p : doc["profiles"]) print_profile(p);
    });
  });
  s.verb(*profile, "show", "one device type's profile",
         [print_profile](RemoteCommands::State& st) {
           return st.show(st.call("GET", "/api/v1/profiles/" + http::url_encode(st.type)),
                          print_profile);
         })
      ->add_option("type", s.type, "device type")
      ->required();
  s.verb(
       *profile, "set", "create or replace a profile from a JSON file",
       [print_profile](RemoteCommands::State& st) {
         const std::optional<std::string> body = read_input(st.file);
         if (!body) return 1;
         json doc = json::parse(*body, nullptr, false);
         if (!doc.is_object() || !doc.contains("device_type") || !doc["device_type"].is_string()) {
           std::fprintf(stderr,
                        "drover: %s: a profile document with a \"device_type\" is expected\n",
                        st.file.c_str());
           return 1;
         }
         return st.show(
             st.call("PUT",
                     "/api/v1/profiles/" + http::url_encode(doc["device_type"].get<std::string>()),
                     *body, "application/json"),
             print_profile);
       })
      ->add_option("file", s.file,
                   "profile JSON (docs/formats.md, \"Device profile\"; - for stdin)")
      ->required();
}

void add_telemetry_verbs(CLI::App& app, RemoteCommands::State& s) {
  CLI::App* telemetry = app.add_subcommand("telemetry", "what devices report");
  telemetry->require_subcommand(1);
  s.verb(*telemetry, "latest", "a device's newest value of each series, with its age",
         [](RemoteCommands::State& st) {
           return st.show(
               st.call("GET", "/api/v1/devices/" + http::url_encode(st.device) + "/telemetry"),
               [](const json& doc) {
                 std::vector<std::vector<std::string>> rows = {{"SERIES", "VALUE", "AT", "AGE"}};
                 for (const json& v : doc["series"]) {
                   rows.push_back({text_of(v["metric"]) + labels_text(v["labels"]),
                                   text_of(v["value"]), time_of(v["t"]), age_of(v["age_s"])});
                 }
                 print_table(rows);
               });
         })
      ->add_option("device", s.device, "device id")
      ->required();
  CLI::App* range = s.verb(
      *telemetry, "range", "one series over a range (raw or rolled up)",
      [](RemoteCommands::State& st) {
        std::string target = "/api/v1/devices/" + http::url_encode(st.device) + "/telemetry/" +
                             http::url_encode(st.metric) + "?";
        if (!st.from.empty()) target += "from=" + http::url_encode(st.from) + "&";
        if (!st.until.empty()) target += "until=" + http::url_encode(st.until) + "&";
        if (!st.resolution.empty()) target += "resolution=" + http::url_encode(st.resolution) + "&";
        for (const std::string& l : st.labels) target += "label=" + http::url_encode(l) + "&";
        target.pop_back();
        return st.show(st.call("GET", target), [](const json& doc) {
          const bool raw = text_of(doc["resolution"]) == "raw";
          std::vector<std::vector<std::string>> rows;
          rows.push_back(raw ? std::vector<std::string>{"AT", "VALUE"}
                             : std::vector<std::string>{"AT", "MIN", "MEAN", "MAX", "COUNT"});
          for (const json& p : doc["points"]) {
            if (raw) {
              rows.push_back({time_of(p["t"]), text_of(p["value"])});
            } else {
              rows.push_back({time_of(p["t"]), text_of(p["min"]), text_of(p["mean"]),
                              text_of(p["max"]), text_of(p["count"])});
            }
          }
          std::printf("%s at %s resolution: %zu points\n", text_of(doc["metric"]).c_str(),
                      text_of(doc["resolution"]).c_str(), doc["points"].size());
          print_table(rows);
        });
      });
  range->add_option("device", s.device, "device id")->required();
  range->add_option("metric", s.metric, "metric name")->required();
  range->add_option("--from", s.from,
                    "start: ms, 2026-12-01T00:00:00Z, or a duration ago (6h); default 1h");
  range->add_option("--until", s.until, "end, the same forms (default: now)");
  range->add_option("--resolution", s.resolution, "raw, 5m or 1h (default: by the range)");
  range->add_option("--label", s.labels, "name:value, to pick one label set (repeatable)");
  CLI::App* freshness = s.verb(
      *telemetry, "freshness", "each device judged against its type's contract",
      [](RemoteCommands::State& st) {
        std::string target = "/api/v1/telemetry/freshness?";
        for (const auto& t : st.device_types) target += "device_type=" + http::url_encode(t) + "&";
        if (!st.site.empty()) target += "site=" + http::url_encode(st.site) + "&";
        if (!st.state.empty()) target += "state=" + http::url_encode(st.state) + "&";
        target.pop_back();
        return st.show(st.call("GET", target), [](const json& doc) {
          std::printf("%s\n", counts_text(doc["counts"]).c_str());
          std::vector<std::vector<std::string>> rows = {
              {"DEVICE", "TYPE", "STATE", "DATA AGE", "HEARD", "CONTRACT", "DROPPED"}};
          for (const json& d : doc["devices"]) {
            rows.push_back({text_of(d["device"]), text_of(d["device_type"]), text_of(d["state"]),
                            age_of(d["data_age_s"]), age_of(d["contact_age_s"]),
                            text_of(d["state"]) == "no_contract"
                                ? std::string("-")
                                : "every " + text_of(d["report_every"]),
                            text_of(d["dropped_on_device"])});
          }
          print_table(rows);
          if (doc.value("listed", 0) < doc.value("matched", 0)) {
            std::printf("(%s of %s devices listed; narrow with --type, --site, --state)\n",
                        text_of(doc["listed"]).c_str(), text_of(doc["matched"]).c_str());
          }
        });
      });
  freshness->add_option("--type", s.device_types, "only devices of this type (repeatable)");
  freshness->add_option("--site", s.site, "only devices at this site");
  freshness->add_option("--state", s.state, "only fresh, late, stale, offline or no_contract");
}

}  // namespace drover::app
