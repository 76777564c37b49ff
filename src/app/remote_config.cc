// The `drover config` verbs (docs/configuration.md, docs/api/operator.md "Configuration").
#include <string>
#include <vector>

#include "app/remote_state.h"

namespace drover::app {
namespace {

// One version: "bms-controller version 3 (9f2c41d07a3e) by token:… at …: note" and its values.
void print_document(const json& d) {
  const json none = json("-");
  const std::string note = d.contains("note") ? ": " + text_of(d.at("note")) : "";
  std::printf("%s version %s (%s) written %s by %s%s\n",
              text_of(d.value("device_type", none)).c_str(),
              text_of(d.value("version", none)).c_str(),
              text_of(d.value("sha256", none)).substr(0, 12).c_str(),
              time_of(d.value("created_at", json(0))).c_str(),
              text_of(d.value("author", none)).c_str(), note.c_str());
  const json values = d.value("values", json::object());
  for (const auto& [field, value] : values.items())
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
          const json n = d.value("devices", json::object());
          std::printf("devices: %s run it, %s not yet, %s failed to apply it\n",
                      text_of(n.value("in_sync", json(0))).c_str(),
                      text_of(n.value("pending", json(0))).c_str(),
                      text_of(n.value("failed", json(0))).c_str());
          const json failed = n.value("some_failed", json::array());
          const json pending = n.value("some_pending", json::array());
          for (const json& id : failed) std::printf("  failed: %s\n", text_of(id).c_str());
          for (const json& id : pending) std::printf("  not yet: %s\n", text_of(id).c_str());
        });
      });
  show->add_option("type", s.type, "device type")->required();
  show->add_option("--version", s.version, "one version instead of the newest");
  s.verb(*config, "history", "every version of a type's configuration, oldest first",
         [](RemoteCommands::State& st) {
           return st.show(
               st.call("GET", "/api/v1/configs/" + http::url_encode(st.type) + "/versions"),
               [](const json& doc) {
                 const json versions = doc.value("versions", json::array());
                 for (const json& d : versions) print_document(d);
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
        // A first look only (comments allowed): the server reads the bytes as they are,
        // strictly (a field twice is refused there, not settled here by whichever came last).
        const json values = json::parse(*body, nullptr, false, true);
        if (!values.is_object()) {
          std::fprintf(stderr, "drover: %s: a JSON object of field: value is expected\n",
                       st.file.c_str());
          return 1;
        }
        std::string request = "{\"values\": " + *body + "\n";
        if (!st.reason.empty()) request += ", \"note\": " + json(st.reason).dump();
        request += "}";
        return st.show(st.call("PUT", "/api/v1/configs/" + http::url_encode(st.type), request,
                               "application/json"),
                       print_document);
      });
  set->add_option("type", s.type, "device type")->required();
  set->add_option("file", s.file, "the values, a JSON object (- for stdin)")->required();
  set->add_option("--note", s.reason, "why (kept with the version)");
}

}  // namespace drover::app
