// The `drover config` verbs (docs/configuration.md, docs/api/operator.md "Configuration").
#include <string>
#include <vector>

#include "app/remote_state.h"

namespace drover::app {
namespace {

// One version: "bms-controller version 3 (9f2c41d07a3e) by token:… at …: note" and its values.
void print_document(const json& d) {
  std::printf("%s version %s (%s) written %s by %s%s\n", text_of(d["device_type"]).c_str(),
              text_of(d["version"]).c_str(), text_of(d["sha256"]).substr(0, 12).c_str(),
              time_of(d["created_at"]).c_str(), text_of(d.value("author", json("-"))).c_str(),
              d.contains("note") ? (": " + text_of(d["note"])).c_str() : "");
  for (const auto& [field, value] : d["values"].items())
    std::printf("  %-32s %s\n", field.c_str(), value.dump().c_str());
}

}  // namespace

void add_config_verbs(CLI::App& app, RemoteCommands::State& s) {
  CLI::App* config = app.add_subcommand(
      "config", "device configuration: versions per device type, checked against the envelope");
  config->require_subcommand(1);
  CLI::App* show = s.verb(
      *config, "show", "a type's newest configuration (or --version N) and which devices run it",
      [](RemoteCommands::State& st) {
        const std::string base = "/api/v1/configs/" + http::url_encode(st.type);
        if (!st.version.empty()) {
          return st.show(st.call("GET", base + "/versions/" + http::url_encode(st.version)),
                         print_document);
        }
        return st.show(st.call("GET", base), [](const json& d) {
          print_document(d);
          const json& n = d["devices"];
          std::printf("devices: %s run it, %s not yet, %s failed to apply it\n",
                      text_of(n["in_sync"]).c_str(), text_of(n["pending"]).c_str(),
                      text_of(n["failed"]).c_str());
          for (const json& id : n["some_failed"])
            std::printf("  failed: %s\n", text_of(id).c_str());
          for (const json& id : n["some_pending"])
            std::printf("  not yet: %s\n", text_of(id).c_str());
        });
      });
  show->add_option("type", s.type, "device type")->required();
  show->add_option("--version", s.version, "one version instead of the newest");
  s.verb(*config, "history", "every version of a type's configuration, oldest first",
         [](RemoteCommands::State& st) {
           return st.show(
               st.call("GET", "/api/v1/configs/" + http::url_encode(st.type) + "/versions"),
               [](const json& doc) {
                 for (const json& d : doc["versions"]) print_document(d);
               });
         })
      ->add_option("type", s.type, "device type")
      ->required();
  CLI::App* set = s.verb(
      *config, "set",
      "write a new version from a JSON object of field: value (checked against the envelope)",
      [](RemoteCommands::State& st) {
        const std::optional<std::string> body = read_input(st.file);
        if (!body) return 1;
        json values = json::parse(*body, nullptr, false);
        if (!values.is_object()) {
          std::fprintf(stderr, "drover: %s: a JSON object of field: value is expected\n",
                       st.file.c_str());
          return 1;
        }
        json request{{"values", values}};
        if (!st.reason.empty()) request["note"] = st.reason;
        return st.show(st.call("PUT", "/api/v1/configs/" + http::url_encode(st.type),
                               request.dump(), "application/json"),
                       print_document);
      });
  set->add_option("type", s.type, "device type")->required();
  set->add_option("file", s.file, "the values, a JSON object (- for stdin)")->required();
  set->add_option("--note", s.reason, "why (kept with the version)");
}

}  // namespace drover::app
