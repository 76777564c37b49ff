// The `drover health` verbs (docs/api/operator.md, "Health"): one device's health with its
// reasons and forecasts, and the fleet view — how many devices are healthy, the month's loss,
// the devices at risk and the failures predicted within N days.
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "app/remote_state.h"
#include "health/device_health.h"
#include "transport/http/client.h"

namespace drover::app {
namespace {

// A span in seconds as people read it; "-" for null.
std::string span_of(const json& seconds) {
  return seconds.is_number() ? health::format_span(seconds.get<double>()) : "-";
}

// A resource's level: bytes in MB, anything else as it is (percent, counts).
std::string level_of(const json& value, const json& metric) {
  if (!value.is_number()) return "-";
  const std::string name = metric.is_string() ? metric.get<std::string>() : "";
  const bool bytes = name.size() > 6 && name.compare(name.size() - 6, 6, "_bytes") == 0;
  char buf[32];
  std::snprintf(buf, sizeof buf, bytes ? "%.1f MB" : "%.1f",
                value.get<double>() / (bytes ? 1e6 : 1));
  return buf;
}

std::string when_text(const json& f) {
  return "in " + span_of(f["expected_s"]) + " (" + span_of(f["earliest_s"]) + " to " +
         (f["latest_s"].is_null() ? std::string("never") : span_of(f["latest_s"])) + ")";
}

void device_text(const json& d) {
  std::printf("%s (%s): %s, score %s\n", text_of(d["device"]).c_str(),
              text_of(d["device_type"]).c_str(), text_of(d["status"]).c_str(),
              text_of(d["score"]).c_str());
  if (d["reasons"].empty()) {
    std::printf("nothing found\n");
  } else {
    std::vector<std::vector<std::string>> rows = {{"SEVERITY", "POINTS", "KIND", "WHAT"}};
    for (const json& r : d["reasons"]) {
      rows.push_back({text_of(r["severity"]), "-" + text_of(r["points"]), text_of(r["kind"]),
                      text_of(r["text"])});
    }
    print_table(rows);
  }
  if (!d["forecasts"].empty()) {
    std::printf("\n");
    std::vector<std::vector<std::string>> rows = {{"RESOURCE", "RUNS OUT", "NOW", "LIMIT"}};
    for (const json& f : d["forecasts"]) {
      rows.push_back({text_of(f["resource"]), when_text(f), level_of(f["level_now"], f["metric"]),
                      level_of(f["limit"], f["metric"])});
    }
    print_table(rows);
  }
}

void fleet_text(const json& f) {
  const json& s = f["by_status"];
  std::printf("%s devices: %s healthy, %s degraded, %s critical, %s unknown",
              text_of(f["devices"]).c_str(), text_of(s["healthy"]).c_str(),
              text_of(s["degraded"]).c_str(), text_of(s["critical"]).c_str(),
              text_of(s["unknown"]).c_str());
  if (f["unreadable"].is_number() && f["unreadable"].get<int64_t>() > 0) {
    std::printf(" (%s of them unreadable: listed below)", text_of(f["unreadable"]).c_str());
  }
  std::printf("\n");
  const double rate =
      f["loss_rate_per_month"].is_number() ? f["loss_rate_per_month"].get<double>() : 0.0;
  std::printf(
      "lost (quiet %s or more): %s, %s of them became lost in the last 30 days (%.2f%% a month)\n",
      text_of(f["lost_after"]).c_str(), text_of(f["lost"]).c_str(),
      text_of(f["lost_last_30_days"]).c_str(), rate * 100);
  std::printf("\nat risk: %s\n", text_of(f["at_risk_total"]).c_str());
  if (!f["at_risk"].empty()) {
    std::vector<std::vector<std::string>> rows = {{"DEVICE", "STATUS", "SCORE", "WHY"}};
    for (const json& d : f["at_risk"]) {
      std::string why = d["reasons"].empty() ? "-" : text_of(d["reasons"][0]["text"]);
      if (d["reasons"].size() > 1) why += " (+" + std::to_string(d["reasons"].size() - 1) + ")";
      rows.push_back({text_of(d["device"]), text_of(d["status"]), text_of(d["score"]), why});
    }
    print_table(rows);
  }
  std::printf("\npredicted to run out within %s days: %s\n", text_of(f["days"]).c_str(),
              text_of(f["predicted_total"]).c_str());
  if (!f["predicted_failures"].empty()) {
    std::vector<std::vector<std::string>> rows = {{"DEVICE", "RESOURCE", "RUNS OUT"}};
    for (const json& p : f["predicted_failures"]) {
      rows.push_back({text_of(p["device"]), text_of(p["resource"]), when_text(p)});
    }
    print_table(rows);
  }
}

}  // namespace

void add_health_verbs(CLI::App& app, RemoteCommands::State& s) {
  CLI::App* health = app.add_subcommand("health", "device health and the fleet view");
  health->require_subcommand(1);
  s.verb(*health, "device", "one device: its score, the reasons and its resources' forecasts",
         [](RemoteCommands::State& st) {
           return st.show(st.call("GET", "/api/v1/devices/" + http::url_encode(st.id) + "/health"),
                          &device_text);
         })
      ->add_option("id", s.id, "device id")
      ->required();
  CLI::App* fleet =
      s.verb(*health, "fleet", "the fleet: health by status, the month's loss, devices at risk",
             [](RemoteCommands::State& st) {
               // --limit's field is every verb's (its default, 100, is another's): 20 here
               // unless given.
               std::string target = "/api/v1/fleet/health?days=" + std::to_string(st.days) +
                                    "&limit=" + std::to_string(st.given("--limit") ? st.limit : 20);
               const auto add = [&target](const char* key, const std::string& value) {
                 if (!value.empty())
                   target += "&" + std::string(key) + "=" + http::url_encode(value);
               };
               add("site", st.site);
               add("device_type", st.type);
               add("hardware_revision", st.revision);
               add("connectivity", st.connectivity);
               for (const std::string& tag : st.tags) add("tag", tag);
               add("component", st.component);
               add("version", st.version);
               return st.show(st.call("GET", target), &fleet_text);
             });
  fleet->add_option("--days", s.days, "resources predicted to run out within this many days")
      ->check(CLI::Range(1, 365));
  fleet
      ->add_option("--limit", s.limit,
                   "at most this many devices at risk and predictions listed (default 20)")
      ->check(CLI::Range(0, 1000));
  fleet->add_option("--site", s.site, "only the devices of this site");
  fleet->add_option("--type", s.type, "only devices of this type");
  fleet->add_option("--revision", s.revision, "only devices of this hardware revision");
  fleet->add_option("--connectivity", s.connectivity, "only devices of this connectivity class");
  fleet->add_option("--tag", s.tags, "only devices with this tag (repeat: with every one)");
  fleet->add_option("--component", s.component,
                    "only devices with this component installed (with --version: at that "
                    "version)");
  fleet->add_option("--version", s.version, "only devices running this version of --component")
      ->needs("--component");
}

}  // namespace drover::app
