// The command line's habits, on the real binaries: --version, usage errors that exit 2 and
// name the nearest verb, aliases, global flags before the verb, --help with defaults and an
// example; and against a real `drover serve`: devices changed in place (tag, untag,
// set-site, set), identities fixed at enrollment, unknown sites refused, when a device was
// last seen and is next expected (serve --poll-interval), and its history across rollouts.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "../common/device_requests.h"
#include "../common/serve_process.h"

namespace drover::testing {
namespace {

using nlohmann::json;

CommandOutcome drover(const std::string& args) {
  return run_command(std::string(DROVER_BIN) + " " + args);
}

bool has(const CommandOutcome& o, const std::string& text) {
  return o.out.find(text) != std::string::npos;
}

TEST(CliHabits, BothProgramsTellTheirVersionCommitAndBuildType) {
  for (const std::string& bin : {std::string(DROVER_BIN), std::string(DROVER_AGENT_BIN)}) {
    const CommandOutcome v = run_command(bin + " --version");
    EXPECT_EQ(v.code, 0) << v.out;
    const std::string program = bin.substr(bin.rfind('/') + 1);
    EXPECT_EQ(v.out.rfind(program + " 0.", 0), 0u) << v.out;
    EXPECT_TRUE(has(v, "(commit ")) << v.out;
    // Built from a git checkout, it names the commit.
    if (std::filesystem::exists(std::string(DROVER_SOURCE_DIR) + "/.git")) {
      EXPECT_FALSE(has(v, "commit unknown")) << v.out;
    }
  }
}

TEST(CliHabits, UsageErrorsExitTwoAndNameTheNearestVerb) {
  const CommandOutcome typo = drover("devcie ls");
  EXPECT_EQ(typo.code, 2);
  EXPECT_TRUE(has(typo, "unknown command 'devcie'; did you mean 'device'?")) << typo.out;
  const CommandOutcome deeper = drover("rollout stauts rollout-0001");
  EXPECT_EQ(deeper.code, 2);
  EXPECT_TRUE(has(deeper, "did you mean 'rollout status'?")) << deeper.out;
  // Far from every verb: no guess, but the list.
  const CommandOutcome far = drover("device zzzzzzzz");
  EXPECT_EQ(far.code, 2);
  EXPECT_FALSE(has(far, "did you mean")) << far.out;
  EXPECT_TRUE(has(far, "drover device offers: ls|list, show|get")) << far.out;
  const CommandOutcome group = drover("device");
  EXPECT_EQ(group.code, 2);
  EXPECT_TRUE(has(group, "drover device: which command?")) << group.out;
  // A missing argument, an unknown flag, a value out of range: 2 as well.
  EXPECT_EQ(drover("device show").code, 2);
  EXPECT_EQ(drover("device ls --no-such-flag").code, 2);
  EXPECT_EQ(drover("device ls --limit 0").code, 2);
  EXPECT_EQ(drover("").code, 2);
  // Asking for help is not an error.
  EXPECT_EQ(drover("--help").code, 0);
  EXPECT_EQ(drover("device ls --help").code, 0);
}

TEST(CliHabits, HelpShowsDefaultsAndAnExample) {
  const CommandOutcome ls = drover("device ls --help");
  ASSERT_EQ(ls.code, 0);
  EXPECT_TRUE(has(ls, "=100")) << ls.out;  // --limit's default
  EXPECT_TRUE(has(ls, "Example:\n  drover device ls ")) << ls.out;
  const CommandOutcome serve = drover("serve --help");
  EXPECT_TRUE(has(serve, "--poll-interval")) << serve.out;
  EXPECT_TRUE(has(serve, "Example:\n  drover serve ")) << serve.out;
  // The global flags, before the verb, are on the top page.
  const CommandOutcome top = drover("--help");
  EXPECT_TRUE(has(top, "Global flags")) << top.out;
  const CommandOutcome agent = run_command(std::string(DROVER_AGENT_BIN) + " --help");
  EXPECT_EQ(agent.code, 0);
  EXPECT_TRUE(has(agent, "Example:\n  drover-agent --config")) << agent.out;
}

// The verbs a --help page lists under "Subcommands:" (first names, before any alias).
std::vector<std::string> subcommands(const std::string& help) {
  std::vector<std::string> out;
  const size_t at = help.find("Subcommands:\n");
  if (at == std::string::npos) return out;
  std::istringstream lines(help.substr(at + 13));
  std::string line;
  while (std::getline(lines, line) && line.rfind("  ", 0) == 0) {
    const size_t start = line.find_first_not_of(' ');
    out.push_back(line.substr(start, line.find_first_of(", ", start) - start));
  }
  return out;
}

// Every verb, found by walking the --help pages down from the top: each page of a verb ends
// with an example that names the verb itself.
TEST(CliHabits, EveryVerbsHelpEndsWithAnExample) {
  std::vector<std::string> pending = {""};
  size_t verbs = 0;
  while (!pending.empty()) {
    const std::string path = pending.back();
    pending.pop_back();
    const CommandOutcome help = drover(path + " --help");
    ASSERT_EQ(help.code, 0) << path << "\n" << help.out;
    const std::vector<std::string> children = subcommands(help.out);
    for (const std::string& c : children) pending.push_back(path.empty() ? c : path + " " + c);
    if (!children.empty()) continue;
    ++verbs;
    EXPECT_TRUE(has(help, "Example:\n  drover " + path + " ") ||
                has(help, "Example:\n  drover " + path + "\n"))
        << "drover " << path << " --help has no example\n"
        << help.out;
  }
  EXPECT_GE(verbs, 50u);
}

// Commands that change the data directory print what they did as JSON too.
TEST(CliHabits, KeysCommandsPrintJson) {
  const std::string dir = temp_dir();
  const CommandOutcome gen = run_command(std::string(DROVER_BIN) + " keys gen --data " + dir +
                                             "/data --root-key-dir " + dir + "/root --json",
                                         false);
  ASSERT_EQ(gen.code, 0) << gen.out;
  const json g = json::parse(gen.out);
  ASSERT_EQ(g["root_keys"].size(), 1u);
  EXPECT_TRUE(std::filesystem::exists(g["root_keys"][0].get<std::string>()));
  EXPECT_TRUE(std::filesystem::exists(g["root"].get<std::string>()));
  const CommandOutcome delegated =
      run_command(std::string(DROVER_BIN) + " --json keys delegate --data " + dir +
                      "/data --role team --path 'team-*/*' --key-dir " + dir + "/team",
                  false);
  ASSERT_EQ(delegated.code, 0) << delegated.out;
  const json d = json::parse(delegated.out);
  EXPECT_EQ(d["role"], "team");
  EXPECT_EQ(d["online"], false);
  ASSERT_EQ(d["key_files"].size(), 1u);
  const CommandOutcome listed =
      run_command(std::string(DROVER_BIN) + " keys ls --json --data " + dir + "/data", false);
  ASSERT_EQ(listed.code, 0) << listed.out;
  EXPECT_NE(listed.out.find("\"team\""), std::string::npos) << listed.out;
  std::filesystem::remove_all(dir);
}

TEST(CliHabits, TokenCreateRefusesADirectoryWithoutAStoreUnlessInit) {
  const std::string dir = temp_dir();
  const CommandOutcome refused = drover("token create --data " + dir + "/typo --name me 2>&1");
  EXPECT_EQ(refused.code, 1);
  EXPECT_TRUE(has(refused, "no store in " + dir + "/typo")) << refused.out;
  EXPECT_FALSE(std::filesystem::exists(dir + "/typo"));  // nothing was made
  // --json before the verb, and --init.
  const CommandOutcome made = run_command(
      std::string(DROVER_BIN) + " --json token create --data " + dir + "/data --name me --init",
      false);
  ASSERT_EQ(made.code, 0) << made.out;
  const json t = json::parse(made.out);
  EXPECT_EQ(t["role"], "admin");
  EXPECT_EQ(t["name"], "me");
  EXPECT_EQ(t["token"].get<std::string>().rfind("drover_" + t["id"].get<std::string>(), 0), 0u);
  EXPECT_TRUE(std::filesystem::exists(dir + "/data/drover.db"));
  std::filesystem::remove_all(dir);
}

class CliDevicesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir = temp_dir();
    data = dir + "/data";
    serve = std::make_unique<ServeProcess>(
        data, "127.0.0.1:0", "t0ken", false,
        std::vector<std::string>{"--poll-interval", "7m", "--busy-poll-interval", "45s",
                                 "--tick-interval", "200ms"});
    ASSERT_TRUE(serve->wait_for("listening on")) << serve->output();
    token = create_token(data);
    ASSERT_FALSE(token.empty());
    server = "--server http://127.0.0.1:" + std::to_string(serve->port());
  }
  void TearDown() override { std::filesystem::remove_all(dir); }
  CommandOutcome cli(const std::string& args) {
    return drover(args + " " + server + " --token " + token);
  }
  json device(const std::string& id) {
    const CommandOutcome shown = cli("device show " + id + " --json");
    EXPECT_EQ(shown.code, 0) << shown.out;
    return shown.code == 0 ? json::parse(shown.out) : json();
  }
  std::string file(const std::string& name, const std::string& content) {
    const std::string path = dir + "/" + name;
    std::ofstream(path) << content;
    return path;
  }

  std::string dir, data, server, token;
  std::unique_ptr<ServeProcess> serve;
};

TEST_F(CliDevicesTest, DevicesChangeInPlaceAndOnlyToSitesThatExist) {
  const CommandOutcome unknown_site =
      cli("device add ctl-1 --type ctl --revision rev-a --site bldg-1 --tag north");
  EXPECT_EQ(unknown_site.code, 1);
  EXPECT_TRUE(has(unknown_site, "unknown site 'bldg-1'")) << unknown_site.out;
  EXPECT_EQ(cli("device get ctl-1").code, 1);  // nothing was registered

  ASSERT_EQ(cli("site put " + file("b1.json", R"({"name": "bldg-1", "time_zone": "UTC"})")).code,
            0);
  ASSERT_EQ(cli("site put " + file("b2.json", R"({"name": "bldg-2", "time_zone": "UTC"})")).code,
            0);
  const CommandOutcome added =
      cli("device add ctl-1 --type ctl --revision rev-a --site bldg-1 --tag north");
  ASSERT_EQ(added.code, 0) << added.out;
  // Adding it again does not replace it.
  const CommandOutcome again = cli("device add ctl-1 --type ctl --revision rev-b");
  EXPECT_EQ(again.code, 1);
  EXPECT_TRUE(has(again, "HTTP 409")) << again.out;
  EXPECT_EQ(device("ctl-1")["hardware_revision"], "rev-a");

  ASSERT_EQ(cli("device tag ctl-1 pilot east").code, 0);
  EXPECT_EQ(device("ctl-1")["tags"], json({"east", "north", "pilot"}));
  ASSERT_EQ(cli("device untag ctl-1 east").code, 0);
  ASSERT_EQ(cli("device set-site ctl-1 bldg-2").code, 0);
  ASSERT_EQ(cli("device set ctl-1 --connectivity lte").code, 0);
  json d = device("ctl-1");
  EXPECT_EQ(d["tags"], json({"north", "pilot"}));  // kept through the other changes
  EXPECT_EQ(d["site"], "bldg-2");
  EXPECT_EQ(d["connectivity"], "lte");
  const CommandOutcome nowhere = cli("device set-site ctl-1 bldg-404");
  EXPECT_EQ(nowhere.code, 1);
  EXPECT_TRUE(has(nowhere, "unknown site 'bldg-404'")) << nowhere.out;
  EXPECT_EQ(device("ctl-1")["site"], "bldg-2");
  EXPECT_EQ(cli("device set ctl-1").code, 2);  // nothing to change
  // Not enrolled yet: an operator may still correct its revision.
  ASSERT_EQ(cli("device set ctl-1 --revision rev-b").code, 0);
  EXPECT_EQ(device("ctl-1")["hardware_revision"], "rev-b");
  // list and get are ls and show.
  const CommandOutcome listed = cli("device list --json");
  ASSERT_EQ(listed.code, 0) << listed.out;
  EXPECT_EQ(json::parse(listed.out)["matched"], 1);
}

TEST_F(CliDevicesTest, AnEnrolledDeviceShowsWhenItWasSeenAndIsExpectedAndKeepsItsIdentity) {
  auto key = std::move(security::SigningKey::generate()).value();
  ASSERT_EQ(status_of(enroll(serve->port(), "ctl-7", key, "t0ken")), 200);
  json d = device("ctl-7");
  EXPECT_TRUE(d["last_seen"].is_null()) << d;  // enrolled, not yet checked in
  const std::string device_token = string_field(log_in(serve->port(), "ctl-7", key), "token");
  ASSERT_FALSE(device_token.empty());
  const std::string answer = device_request(serve->port(), "/api/device/v1/checkin",
                                            R"({"installed":{"firmware":"1.0.0"}})", device_token);
  ASSERT_EQ(status_of(answer), 200) << answer;
  // serve --poll-interval 7m: what an idle device is told.
  EXPECT_EQ(json::parse(body_of(answer))["next_checkin_s"], 420) << answer;
  d = device("ctl-7");
  ASSERT_TRUE(d["last_seen"].is_number()) << d;
  EXPECT_EQ(d["next_checkin"].get<int64_t>() - d["last_seen"].get<int64_t>(), 420'000) << d;
  const CommandOutcome table = cli("device ls");
  ASSERT_EQ(table.code, 0) << table.out;
  EXPECT_TRUE(has(table, "LAST SEEN")) << table.out;
  EXPECT_TRUE(has(table, " ago")) << table.out;
  EXPECT_TRUE(has(table, "in 7m") || has(table, "in 6m")) << table.out;
  const CommandOutcome shown = cli("device show ctl-7");
  EXPECT_TRUE(has(shown, "next check-in:")) << shown.out;
  EXPECT_TRUE(has(shown, "enrollment:")) << shown.out;

  // What it enrolled as is fixed; its tags are the operator's.
  const CommandOutcome renamed = cli("device set ctl-7 --revision rev-z");
  EXPECT_EQ(renamed.code, 1);
  EXPECT_TRUE(has(renamed, "fixed at enrollment")) << renamed.out;
  EXPECT_EQ(device("ctl-7")["hardware_revision"], "rev-a");
  EXPECT_EQ(cli("device tag ctl-7 pilot").code, 0);
  EXPECT_EQ(device("ctl-7")["tags"], json({"pilot"}));

  // Its history across rollouts: in none yet; then in one, with the step it is at.
  const CommandOutcome none = cli("device history ctl-7");
  ASSERT_EQ(none.code, 0) << none.out;
  EXPECT_TRUE(has(none, "ctl-7 has been in no rollout")) << none.out;
  const std::string image = file("fw.bin", std::string(4096, 'x'));
  ASSERT_EQ(
      cli("artifact upload " + image + " --name firmware --version 2.0.0 --device-type ctl").code,
      0);
  const std::string plan = file("plan.json", R"({"name": "patch",
      "artifact": {"name": "firmware", "version": "2.0.0"},
      "stages": [{"name": "all", "count": 1}], "gate": {"min_sample": 1}})");
  ASSERT_EQ(cli("rollout create " + plan + " --start").code, 0);
  const std::string offered = device_request(serve->port(), "/api/device/v1/checkin",
                                             R"({"installed":{"firmware":"1.0.0"}})", device_token);
  ASSERT_NE(body_of(offered).find("\"offer\":{"), std::string::npos) << offered;
  // Busy now: --busy-poll-interval 45s.
  EXPECT_EQ(json::parse(body_of(offered))["next_checkin_s"], 45) << offered;
  const CommandOutcome history = cli("device history ctl-7");
  ASSERT_EQ(history.code, 0) << history.out;
  EXPECT_TRUE(has(history, "== rollout-0001 (patch, firmware@2.0.0, rollout running)"))
      << history.out;
  EXPECT_TRUE(has(history, "ctl-7 in rollout-0001: offered")) << history.out;
  const json h = json::parse(cli("device history ctl-7 --json").out);
  ASSERT_EQ(h["deployments"].size(), 1u) << h;
  EXPECT_EQ(h["deployments"][0]["rollout"]["id"], "rollout-0001");
  EXPECT_FALSE(h["deployments"][0]["history"].empty()) << h;
  EXPECT_EQ(cli("device history nobody").code, 1);
}

// `rollout status --watch` follows a rollout to its end: each event the engine decided, the
// stage and its soak, and an exit code that says how it ended.
TEST_F(CliDevicesTest, WatchingARolloutShowsItsEventsAndEndsWithIt) {
  auto key = std::move(security::SigningKey::generate()).value();
  ASSERT_EQ(status_of(enroll(serve->port(), "ctl-1", key, "t0ken")), 200);
  const std::string device_token = string_field(log_in(serve->port(), "ctl-1", key), "token");
  ASSERT_FALSE(device_token.empty());
  const std::string image = file("fw.bin", std::string(4096, 'x'));
  for (const char* version : {"2.0.0", "3.0.0"}) {
    ASSERT_EQ(cli("artifact upload " + image + " --name firmware --version " + version +
                  " --device-type ctl")
                  .code,
              0);
  }
  const std::string plan = file("plan.json", R"({"name": "patch",
      "artifact": {"name": "firmware", "version": "2.0.0"},
      "stages": [{"name": "all", "count": 1, "soak": "2s"}], "gate": {"min_sample": 1}})");
  ASSERT_EQ(cli("rollout create " + plan + " --start").code, 0);
  const std::string offered = device_request(serve->port(), "/api/device/v1/checkin",
                                             R"({"installed":{"firmware":"1.0.0"}})", device_token);
  ASSERT_NE(body_of(offered).find("\"offer\":{"), std::string::npos) << offered;
  for (const char* status : {"downloading", "installing", "rebooting", "succeeded"}) {
    const std::string r = device_request(
        serve->port(), "/api/device/v1/deployments/rollout-0001/status",
        std::string(R"({"version": "2.0.0", "status": ")") + status + "\"}", device_token);
    ASSERT_EQ(status_of(r), 200) << status << " " << r;
  }
  // Settled and soaking: the stage line says until when.
  ASSERT_TRUE(eventually([&] { return has(cli("rollout status rollout-0001"), "soaking until"); }))
      << cli("rollout status rollout-0001").out;
  const CommandOutcome watched = cli("rollout status rollout-0001 --watch --interval 0.2");
  EXPECT_EQ(watched.code, 0) << watched.out;
  for (const char* event :
       {"  started  ", "  stage_started  ", "  stage_settled  ", "  completed  "}) {
    EXPECT_TRUE(has(watched, event)) << event << "\n" << watched.out;
  }
  EXPECT_TRUE(has(watched, "completed; stage 1 of 1, all: started")) << watched.out;
  // The events, as the API gives them: numbered, oldest first, and nothing after the last.
  const json events = json::parse(
      body_of(device_get(serve->port(), "/api/v1/rollouts/rollout-0001/events", token)));
  ASSERT_GE(events["events"].size(), 4u) << events;
  EXPECT_EQ(events["events"][0]["event"], "started");
  const std::string after = std::to_string(events["last"].get<uint64_t>());
  const json none = json::parse(body_of(
      device_get(serve->port(), "/api/v1/rollouts/rollout-0001/events?after=" + after, token)));
  EXPECT_TRUE(none["events"].empty()) << none;

  // Ended otherwise: exit 1, saying how.
  const std::string plan3 = file("plan3.json", R"({"name": "next",
      "artifact": {"name": "firmware", "version": "3.0.0"},
      "stages": [{"name": "all", "count": 1}]})");
  ASSERT_EQ(cli("rollout create " + plan3 + " --start").code, 0);
  ASSERT_EQ(cli("rollout abort rollout-0002").code, 0);
  const CommandOutcome aborted = cli("rollout status rollout-0002 --watch --json");
  EXPECT_EQ(aborted.code, 1) << aborted.out;
  EXPECT_EQ(json::parse(aborted.out.substr(0, aborted.out.find('\n')))["rollout"]["state"],
            "aborted");
}

// A large upload shows a progress bar on a terminal (here a pseudo-terminal made by
// script(1)), and nothing when piped.
TEST_F(CliDevicesTest, ALargeUploadShowsProgressOnATerminalOnly) {
  const std::string image = file("big.bin", std::string(3 << 20, 'x'));
  auto upload = [&](const std::string& version) {
    return std::string(DROVER_BIN) + " artifact upload " + image + " --name firmware --version " +
           version + " --device-type ctl " + server + " --token " + token;
  };
  const CommandOutcome piped = run_command(upload("2.0.0"));
  ASSERT_EQ(piped.code, 0) << piped.out;
  EXPECT_FALSE(has(piped, "% of")) << piped.out;
  const CommandOutcome on_terminal =
      run_command("script -qec '" + upload("2.0.1") + " 2>&1' /dev/null");
  ASSERT_EQ(on_terminal.code, 0) << on_terminal.out;
  EXPECT_TRUE(has(on_terminal, "] 100% of 3.0 MiB")) << on_terminal.out;
}

TEST(CliHabits, ServeRefusesPollIntervalsOutOfRange) {
  const std::string dir = temp_dir();
  for (const char* bad : {"0s", "2d", "soon"}) {
    ServeProcess serve(dir, "127.0.0.1:0", "t", false, {"--poll-interval", bad});
    EXPECT_EQ(serve.exit_code(), 1) << bad << serve.output();
    EXPECT_TRUE(serve.wait_for("--poll-interval must be a duration")) << serve.output();
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace drover::testing
