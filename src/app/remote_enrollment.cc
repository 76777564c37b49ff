// The `drover enrollment-token` verbs (docs/api/operator.md, "Enrollment tokens"): create
// (the token is printed once), ls and revoke.
#include <string>
#include <vector>

#include "app/remote_state.h"

namespace drover::app {
namespace {

std::string scope_text(const json& names) {
  std::string out;
  for (const json& n : names) out += (out.empty() ? "" : ",") + text_of(n);
  return out.empty() ? "any" : out;
}

void tokens_table(const json& tokens) {
  std::vector<std::vector<std::string>> rows = {
      {"ID", "NAME", "TYPES", "REVISIONS", "SITES", "USES", "EXPIRES", "REVOKED", "CREATED BY"}};
  for (const json& t : tokens) {
    const std::string limit = t["max_uses"].is_null() ? "unlimited" : text_of(t["max_uses"]);
    rows.push_back({text_of(t["id"]), text_of(t["name"]), scope_text(t["device_types"]),
                    scope_text(t["hardware_revisions"]), scope_text(t["sites"]),
                    text_of(t["uses"]) + "/" + limit, time_of(t["expires_at"]),
                    time_of(t["revoked_at"]), text_of(t["created_by"])});
  }
  print_table(rows);
}

}  // namespace

void add_enrollment_token_verbs(CLI::App& app, RemoteCommands::State& s) {
  CLI::App* tokens = app.add_subcommand(
      "enrollment-token", "scoped enrollment tokens: what admits a device without an operator");
  tokens->require_subcommand(1);
  CLI::App* create = s.verb(*tokens, "create", "make a token (printed once; only its hash is kept)",
                            [](RemoteCommands::State& st) {
                              json body = {{"name", st.name},
                                           {"device_types", st.device_types},
                                           {"hardware_revisions", st.hardware_revisions},
                                           {"sites", st.sites}};
                              if (st.max_uses > 0) body["max_uses"] = st.max_uses;
                              if (!st.lifetime.empty()) body["lifetime"] = st.lifetime;
                              auto doc = st.call("POST", "/api/v1/enrollment-tokens", body.dump(),
                                                 "application/json");
                              return st.show(doc, [](const json& t) {
                                tokens_table(json::array({t}));
                                std::printf(
                                    "\n%s\n\nThe token is shown once: give it to the devices "
                                    "(\"enrollment_token\" in the agent's configuration).\n",
                                    text_of(t["token"]).c_str());
                              });
                            });
  create->add_option("--name", s.name, "what it is for, e.g. line-3-thermostats")->required();
  create->add_option("--device-type", s.device_types,
                     "a device type it admits (repeatable; default: any)");
  create->add_option("--hardware-revision", s.hardware_revisions,
                     "a hardware revision it admits (repeatable; default: any)");
  create->add_option("--site", s.sites,
                     "a site it admits (repeatable; default: any). Devices name their site "
                     "when they enroll; with one site given, that one is theirs");
  create->add_option("--max-uses", s.max_uses, "devices it may enroll (default: no limit)")
      ->check(CLI::Range(uint64_t{1}, uint64_t{UINT32_MAX}));
  create->add_option("--lifetime", s.lifetime, "e.g. 24h or 7d (default: never expires)");
  create->footer(
      "Example: drover enrollment-token create --name line-3 --device-type thermostat "
      "--hardware-revision rev-b --max-uses 50 --lifetime 24h");

  s.verb(*tokens, "ls", "list enrollment tokens", [](RemoteCommands::State& st) {
    return st.show(st.call("GET", "/api/v1/enrollment-tokens"),
                   [](const json& doc) { tokens_table(doc["enrollment_tokens"]); });
  });
  s.verb(*tokens, "revoke", "revoke a token at once",
         [](RemoteCommands::State& st) {
           return st.show(
               st.call("POST", "/api/v1/enrollment-tokens/" + http::url_encode(st.id) + "/revoke"),
               [](const json& t) { tokens_table(json::array({t})); });
         })
      ->add_option("id", s.id, "token id")
      ->required();
}

}  // namespace drover::app
