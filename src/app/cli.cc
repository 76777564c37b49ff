#include "app/cli.h"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <iostream>
#include <numeric>
#include <string_view>
#include <vector>

#include "app/build_info.h"

namespace drover::app {
namespace {

std::vector<const CLI::App*> children(const CLI::App& a) {
  return a.get_subcommands([](const CLI::App*) { return true; });
}

std::vector<CLI::App*> children(CLI::App& a) {
  return a.get_subcommands([](CLI::App*) { return true; });
}

size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  std::iota(row.begin(), row.end(), 0);
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = up;
    }
  }
  return row[b.size()];
}

// The verbs a group offers, with their aliases: "ls (list), show (get), ...".
std::string verb_list(const CLI::App& group) {
  std::string out;
  for (const CLI::App* c : children(group)) {
    out += (out.empty() ? "" : ", ") + c->get_name();
    for (const std::string& alias : c->get_aliases()) out += "|" + alias;
  }
  return out;
}

// When the command line names a verb that does not exist, or stops at a group, what to say:
// the nearest verb and the group's verbs. "" when the error is of another kind.
std::string verb_hint(const CLI::App& app, int argc, const char* const* argv) {
  const CLI::App* at = &app;
  std::string path = app.get_name();
  for (int i = 1; i < argc; ++i) {
    const std::string token = argv[i];
    if (token == "--") return "";
    if (token.size() > 1 && token[0] == '-') {
      const size_t eq = token.find('=');
      const CLI::Option* opt = at->get_option_no_throw(token.substr(0, eq));
      if (opt != nullptr && opt->get_type_size() > 0 && eq == std::string::npos) ++i;
      continue;
    }
    const std::vector<const CLI::App*> verbs = children(*at);
    if (verbs.empty()) return "";  // a leaf's argument
    const auto match = std::find_if(verbs.begin(), verbs.end(),
                                    [&token](const CLI::App* c) { return c->check_name(token); });
    if (match != verbs.end()) {
      at = *match;
      path += " " + token;
      continue;
    }
    std::vector<std::string> names;
    for (const CLI::App* c : verbs) {
      names.push_back(c->get_name());
      names.insert(names.end(), c->get_aliases().begin(), c->get_aliases().end());
    }
    const std::string near = nearest(token, names);
    const std::string group = path.substr(std::min(path.size(), app.get_name().size() + 1));
    const std::string prefix = group.empty() ? "" : group + " ";
    std::string hint = app.get_name() + ": unknown command '" + prefix + token + "'";
    if (!near.empty()) hint += "; did you mean '" + prefix + near + "'?";
    return hint + "\n" + path + " offers: " + verb_list(*at) + "\n";
  }
  if (at->get_require_subcommand_min() > 0 && at->get_subcommands().empty()) {
    return path + ": which command? " + verb_list(*at) + " (" + path + " --help)\n";
  }
  return "";
}

// kubectl's habits: `list` for `ls`, `get` for `show`, `delete` for `rm`, and back.
void add_aliases(CLI::App& group) {
  static constexpr std::pair<std::string_view, std::string_view> kAliases[] = {
      {"ls", "list"}, {"list", "ls"}, {"show", "get"}, {"rm", "delete"}};
  const std::vector<CLI::App*> verbs = children(group);
  for (CLI::App* c : verbs) {
    for (const auto& [name, alias_view] : kAliases) {
      if (c->get_name() != name) continue;
      const std::string alias(alias_view);
      const bool taken = std::any_of(verbs.begin(), verbs.end(), [&](const CLI::App* other) {
        return other->check_name(alias);
      });
      if (!taken) c->alias(alias);
    }
  }
}

// Each option's default in its help, unless its description says it already, or it is
// empty, or 0 (which here means "none" or "the scenario's").
void show_defaults(CLI::App& cmd) {
  for (CLI::Option* opt : cmd.get_options()) {
    if (opt->get_type_size() == 0 || opt->get_required() || opt->get_positional()) continue;
    if (!opt->get_default_str().empty()) continue;
    if (opt->get_description().find("default") != std::string::npos) continue;
    opt->capture_default_str();
    const std::string& d = opt->get_default_str();
    if (d == "[]" || d == "0") opt->default_str("");
  }
}

void walk(CLI::App& at, const std::string& path, const std::string& program,
          const std::map<std::string, std::string>& examples) {
  add_aliases(at);
  for (CLI::App* c : children(at)) {
    const std::string here = path.empty() ? c->get_name() : path + " " + c->get_name();
    show_defaults(*c);
    if (auto it = examples.find(here); it != examples.end())
      c->footer("\nExample:\n  " + program + " " + it->second + "\n");
    walk(*c, here, program, examples);
  }
}

}  // namespace

std::string nearest(const std::string& word, const std::vector<std::string>& choices) {
  std::string best;
  size_t best_distance = SIZE_MAX;
  for (const std::string& c : choices) {
    // A prefix ("dev" for "device") is as near as it gets.
    const size_t d = c.rfind(word, 0) == 0 ? 0 : edit_distance(word, c);
    if (d < best_distance) {
      best = c;
      best_distance = d;
    }
  }
  const size_t allowed = std::max<size_t>(2, word.size() / 3);
  return best_distance <= allowed ? best : std::string();
}

void add_global_flags(CLI::App& app, GlobalFlags& flags) {
  const char* group = "Global flags (also after the verb)";
  app.add_option("--server", flags.server,
                 "the server's URL (default: $DROVER_SERVER, else http://127.0.0.1:8480)")
      ->group(group);
  app.add_option("--token", flags.token, "an operator API token (default: $DROVER_TOKEN)")
      ->group(group);
  app.add_option("--ca-file", flags.ca_file, "https: CA certificates (PEM) to trust")->group(group);
  app.add_flag("--json", flags.json, "print JSON instead of text")->group(group);
}

void add_conventions(CLI::App& app, const char* program,
                     const std::map<std::string, std::string>& examples) {
  app.set_version_flag("--version", version_text(program));
  walk(app, "", program, examples);
}

int parse_command_line(CLI::App& app, int argc, const char* const* argv) {
  try {
    app.parse(argc, argv);
    return -1;
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
    const std::string hint = verb_hint(app, argc, argv);
    if (!hint.empty()) {
      std::cerr << hint;
    } else {
      (void)app.exit(e);
    }
    return 2;
  }
}

}  // namespace drover::app
