// The agent's configuration file: the documented example parses to what it says, and every
// mistake is a clear error naming the field.
#include "agent/config.h"

#include <gtest/gtest.h>

#include <fstream>
#include <set>
#include <sstream>

#include "base/units.h"

namespace drover::agent {
namespace {

// The first ```json block of docs/agent.md.
std::string documented_example() {
  std::ifstream in(AGENT_MD);
  std::stringstream s;
  s << in.rdbuf();
  const std::string doc = s.str();
  const size_t start = doc.find("```json\n");
  const size_t end = doc.find("\n```", start + 8);
  return start == std::string::npos ? "" : doc.substr(start + 8, end - start - 8);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The configurations that ship: the quickstart's examples and the package's default.
TEST(AgentConfig, TheShippedConfigurationsParse) {
  const std::string source = SOURCE_DIR;
  for (const char* name :
       {"examples/agent-file-1.json", "examples/agent-file-2.json", "examples/agent-ab.json",
        "examples/agent-ab-failing.json", "packaging/agent.json"}) {
    const std::string text = read_file(source + "/" + name);
    ASSERT_FALSE(text.empty()) << name;
    auto c = parse_agent_config(text);
    ASSERT_TRUE(c.ok()) << name << ": " << c.error().to_string();
    EXPECT_FALSE(c->link.device_id.empty()) << name;
  }
  auto ab = parse_agent_config(read_file(source + "/examples/agent-ab-failing.json"));
  ASSERT_TRUE(ab.ok());
  EXPECT_EQ(ab->module.bootloader, "file");
  EXPECT_EQ(ab->module.trial_boot, "fails");
  auto packaged = parse_agent_config(read_file(source + "/packaging/agent.json"));
  ASSERT_TRUE(packaged.ok());
  EXPECT_EQ(packaged->agent.data_dir, "/var/lib/drover-agent");  // the unit's StateDirectory
}

TEST(AgentConfig, TheDocumentedExampleParses) {
  auto c = parse_agent_config(documented_example());
  ASSERT_TRUE(c.ok()) << c.error().to_string();
  EXPECT_EQ(c->link.server, "https://drover.example.net:8480");
  EXPECT_EQ(c->link.device_id, "ctl-00017");
  EXPECT_EQ(c->link.device_type, "bms-controller");
  EXPECT_EQ(c->link.hardware_revision, "rev-b");
  EXPECT_EQ(c->link.enrollment_token, "drover_enroll_5c1e0b7a93d2f416_…");
  EXPECT_EQ(c->link.site, "nyc-017");
  EXPECT_EQ(c->link.ca_file, "/etc/drover/ca.pem");
  EXPECT_EQ(c->agent.data_dir, "/var/lib/drover");
  EXPECT_EQ(c->agent.default_poll, minutes(30));
  EXPECT_EQ(c->agent.backoff_max, hours(1));
  EXPECT_EQ(c->agent.commit_timeout, minutes(10));
  ASSERT_EQ(c->agent.health_checks.size(), 1u);
  EXPECT_EQ(c->agent.health_checks[0].command,
            (std::vector<std::string>{"systemctl", "is-active", "bms"}));
  EXPECT_EQ(c->installed.at("firmware"), "4.2.0");
  EXPECT_EQ(c->initial_root, "/etc/drover/root.json");
  EXPECT_EQ(c->module.type, "ab-slot");
  EXPECT_EQ(c->module.slot_b, "/dev/mmcblk0p3");
  EXPECT_EQ(c->module.reboot, (std::vector<std::string>{"systemctl", "reboot"}));
  EXPECT_EQ(c->module.uboot_config, "");  // the tools' default
  ASSERT_TRUE(c->telemetry);
  EXPECT_EQ(c->telemetry->interval, seconds(60));
  EXPECT_TRUE(c->telemetry->collectors.battery);
  EXPECT_EQ(c->telemetry->collectors.disks, (std::vector<std::string>{"/", "/data"}));
  EXPECT_EQ(c->telemetry->statsd_socket, "/run/drover/statsd.sock");
  EXPECT_EQ(c->telemetry->queue.max_bytes, uint64_t{32} << 20);
  EXPECT_EQ(c->telemetry->queue.dir, "/var/lib/drover/telemetry");
  EXPECT_EQ(c->telemetry->collectors.boots_file, "/var/lib/drover/boots");
  EXPECT_EQ(c->telemetry->urgent, (std::set<std::string>{"door_open_total"}));
  EXPECT_EQ(c->telemetry->backoff_max, hours(1));
  EXPECT_FALSE(c->telemetry->collectors.modem) << "it runs a program: only when asked for";
  auto with_config = parse_agent_config(R"({"server": "http://s:1", "data_dir": "/d",
      "device": {"id": "a", "type": "t", "hardware_revision": "r"},
      "module": {"type": "ab-slot", "slot_a": "/a", "slot_b": "/b",
                 "uboot_config": "/etc/drover/fw_env.config"}})");
  ASSERT_TRUE(with_config.ok()) << with_config.error().to_string();
  EXPECT_EQ(with_config->module.uboot_config, "/etc/drover/fw_env.config");
}

TEST(AgentConfig, TheModemCollectorIsAskedForByName) {
  auto c = parse_agent_config(R"({"server": "http://s:1", "data_dir": "/d",
      "device": {"id": "a", "type": "t", "hardware_revision": "r"},
      "module": {"type": "ab-slot", "slot_a": "/a", "slot_b": "/b"},
      "telemetry": {"interval": "2m", "collect": ["modem", "link"]}})");
  ASSERT_TRUE(c.ok()) << c.error().to_string();
  const CollectorOptions& o = c->telemetry->collectors;
  EXPECT_TRUE(o.modem);
  EXPECT_TRUE(o.link);
  EXPECT_FALSE(o.cpu || o.memory || o.disk || o.temperature || o.uptime || o.reboots || o.battery);
  EXPECT_EQ(o.modem_signal_rate_s, 120) << "the modem measures as often as it is asked";
}

// A link that is up only at known times (UTC, daily): the agent knows when it next is.
TEST(AgentConfig, AScheduledLinkTellsWhenItIsNextUp) {
  const std::string base = R"("server": "http://s:1", "data_dir": "/d",
      "device": {"id": "a", "type": "t", "hardware_revision": "r"},
      "module": {"type": "ab-slot", "slot_a": "/a", "slot_b": "/b"})";
  auto c = parse_agent_config("{" + base + R"(, "apply_time": "5m", "link_online_utc": [
      {"start": "23:50", "length": "20m"}, {"start": "14:30", "length": "20m"}]})");
  ASSERT_TRUE(c.ok()) << c.error().to_string();
  EXPECT_EQ(c->agent.apply_time, minutes(5));
  ASSERT_TRUE(c->agent.link_up_at);
  const Timestamp day = parse_utc_timestamp("2026-06-01T00:00:00Z").value();
  EXPECT_EQ(c->agent.link_up_at(day + minutes(5)), day + minutes(5));  // yesterday's 23:50 pass
  EXPECT_EQ(c->agent.link_up_at(day + minutes(10)), day + hours(14) + minutes(30));
  EXPECT_EQ(c->agent.link_up_at(day + hours(15)), day + hours(23) + minutes(50));
  EXPECT_FALSE(parse_agent_config("{" + base + R"(, "apply_time": "5m"})")->agent.link_up_at);
  for (const char* bad : {R"([{"start": "25:00", "length": "20m"}])", R"([{"start": "01:00"}])",
                          R"([{"start": "01:00", "length": "25h"}])",
                          R"([{"start": "01:00", "length": "20m", "days": "mon"}])"}) {
    auto r = parse_agent_config("{" + base + R"(, "link_online_utc": )" + bad + "}");
    EXPECT_FALSE(r.ok()) << bad;
  }
}

TEST(AgentConfig, MistakesAreClearErrorsNamingTheField) {
  const std::string base = R"("server": "http://s:1", "data_dir": "/d",
      "device": {"id": "a", "type": "t", "hardware_revision": "r"})";
  const std::string file_module = R"("module": {"type": "file", "target": "/x"})";
  ASSERT_TRUE(parse_agent_config("{" + base + ", " + file_module + "}").ok());
  auto sized = parse_agent_config("{" + base + ", " + file_module +
                                  R"(, "max_download": "2GiB", "min_free": "100MB"})");
  ASSERT_TRUE(sized.ok()) << sized.error().to_string();
  EXPECT_EQ(sized->agent.max_download_bytes, uint64_t{2} << 30);
  EXPECT_EQ(sized->agent.min_free_bytes, 100'000'000u);
  auto factory = parse_agent_config(
      "{" + base + ", " + file_module +
      R"(, "factory_identity": {"certificate": "/etc/chain.pem", "key": "/etc/dev.key"}})");
  ASSERT_TRUE(factory.ok()) << factory.error().to_string();
  EXPECT_EQ(factory->link.factory_certificate_file, "/etc/chain.pem");
  EXPECT_EQ(factory->link.factory_key_file, "/etc/dev.key");
  auto watched = parse_agent_config(
      "{" + base + ", " + file_module +
      R"(, "link_watchdog": {"reset_after": "2h", "reset": ["systemctl", "restart", "ModemManager"],
           "reboot_after": "1d", "reboot": ["systemctl", "reboot"], "probe": ["ping", "-c1", "gw"]}})");
  ASSERT_TRUE(watched.ok()) << watched.error().to_string();
  ASSERT_TRUE(watched->watchdog.has_value());
  EXPECT_EQ(watched->watchdog->reset_after, hours(2));
  EXPECT_EQ(watched->watchdog->reset.back(), "ModemManager");
  EXPECT_EQ(watched->watchdog->reboot_after, hours(24));
  EXPECT_EQ(watched->watchdog_reboot, (std::vector<std::string>{"systemctl", "reboot"}));
  EXPECT_EQ(watched->watchdog->probe.front(), "ping");
  EXPECT_FALSE(parse_agent_config("{" + base + ", " + file_module + "}")->watchdog.has_value());
  auto configured = parse_agent_config(
      "{" + base + ", " + file_module +
      R"(, "configuration": {"path": "/etc/c.json", "apply": ["systemctl", "reload", "c"],
           "envelope": "/usr/share/c/envelope.json", "retry_after": "10m"}})");
  ASSERT_TRUE(configured.ok()) << configured.error().to_string();
  ASSERT_TRUE(configured->configuration.has_value());
  EXPECT_EQ(configured->configuration->path, "/etc/c.json");
  EXPECT_EQ(configured->configuration->apply.back(), "c");
  EXPECT_EQ(configured->configuration->envelope_file, "/usr/share/c/envelope.json");
  EXPECT_EQ(configured->configuration->retry_after, minutes(10));
  EXPECT_EQ(configured->configuration->apply_timeout, minutes(2));
  EXPECT_FALSE(
      parse_agent_config("{" + base + ", " + file_module + "}")->configuration.has_value());
  // The file-backed bootloader: no reboot command unless one is given (a rehearsal on a
  // laptop must not reboot it); a trial boot that fails on request. A real bootloader
  // reboots with `reboot` by default.
  const std::string ab = R"("module": {"type": "ab-slot", "slot_a": "/a", "slot_b": "/b", )";
  auto fake = parse_agent_config("{" + base + ", " + ab +
                                 R"("bootloader": "file", "bootloader_file": "/f"}})");
  ASSERT_TRUE(fake.ok()) << fake.error().to_string();
  EXPECT_TRUE(fake->module.reboot.empty());
  EXPECT_EQ(fake->module.trial_boot, "boots");
  auto failing =
      parse_agent_config("{" + base + ", " + ab +
                         R"("bootloader": "file", "bootloader_file": "/f", "reboot": ["echo", "hi"],
          "trial_boot": "fails"}})");
  ASSERT_TRUE(failing.ok()) << failing.error().to_string();
  EXPECT_EQ(failing->module.reboot, (std::vector<std::string>{"echo", "hi"}));
  EXPECT_EQ(failing->module.trial_boot, "fails");
  auto uboot = parse_agent_config("{" + base + ", " + ab + R"("bootloader": "uboot"}})");
  ASSERT_TRUE(uboot.ok()) << uboot.error().to_string();
  EXPECT_EQ(uboot->module.reboot, (std::vector<std::string>{"reboot"}));
  struct Case {
    std::string json, mentions;
  };
  for (const Case& c : std::vector<Case>{
           {"{" + base + "}", "module"},
           {"{" + base + ", " + file_module + R"(, "pol": {}})", "pol"},
           {"{" + base + R"(, "module": {"type": "file"}})", "target"},
           {"{" + base + R"(, "module": {"type": "rsync", "target": "/x"}})", "type"},
           {"{" + base + R"(, "module": {"type": "ab-slot", "slot_a": "/a", "slot_b": "/a"}})",
            "slot_b"},
           {"{" + base + R"(, "module": {"type": "ab-slot", "slot_a": "/a", "slot_b": "/b",
                "bootloader": "file"}})",
            "bootloader_file"},
           {"{" + base + R"(, "module": {"type": "ab-slot", "slot_a": "/a", "slot_b": "/b",
                "bootloader": "lilo"}})",
            "bootloader"},
           {"{" + base + R"(, "module": {"type": "script"}})", "install"},
           {"{" + base + R"(, "module": {"type": "ab-slot", "slot_a": "/a", "slot_b": "/b",
                "bootloader": "file", "bootloader_file": "/f", "trial_boot": "maybe"}})",
            "trial_boot"},
           {"{" + base + R"(, "module": {"type": "ab-slot", "slot_a": "/a", "slot_b": "/b",
                "trial_boot": "fails"}})",
            "trial_boot"},
           {"{" + base + ", " + file_module +
                R"(, "poll": {"backoff_initial": "10m", "backoff_max": "1m"}})",
            "backoff_max"},
           {"{" + base + ", " + file_module + R"(, "commit_timeout": "-5m"})", "commit_timeout"},
           {"{" + base + ", " + file_module + R"(, "factory_identity": {"certificate": "/c"}})",
            "key"},
           {"{" + base + ", " + file_module + R"(, "tls": {"cert_file": "/c"}})", "cert_file"},
           {"{" + base + ", " + file_module + R"(, "health_checks": [{"command": []}]})",
            "command"},
           {"{" + base + ", " + file_module + R"(, "installed": {"firmware": 4}})", "installed"},
           {"{" + base + ", " + file_module + R"(, "max_download": "lots"})", "max_download"},
           {"{" + base + ", " + file_module + R"(, "min_free": -1})", "min_free"},
           {"{" + base + ", " + file_module + R"(, "signed_updates": {}})", "initial_root"},
           {"{" + base + ", " + file_module + R"(, "signed_updates": {"initial_root": ""}})",
            "initial_root"},
           {"{" + base + ", " + file_module +
                R"(, "signed_updates": {"initial_root": "/r", "url": "x"}})",
            "url"},
           {"{" + base + ", " + file_module + R"(, "telemetry": {"collect": ["gpu"]}})", "collect"},
           {"{" + base + ", " + file_module + R"(, "telemetry": {"interval": "10ms"}})",
            "interval"},
           {"{" + base + ", " + file_module + R"(, "telemetry": {"disks": ["data"]}})", "disks"},
           {"{" + base + ", " + file_module + R"(, "telemetry": {"queue_max": "10kB"}})",
            "queue_max"},
           {"{" + base + ", " + file_module + R"(, "telemetry": {"urgent": ["9x"]}})", "urgent"},
           {"{" + base + ", " + file_module + R"(, "link_watchdog": {}})", "reset_after"},
           {"{" + base + ", " + file_module + R"(, "link_watchdog": {"reset_after": "2h"}})",
            "link_watchdog.reset"},
           {"{" + base + ", " + file_module +
                R"(, "link_watchdog": {"reset_after": "5m", "reset": ["r"]}})",
            "from 10m to 30d"},
           {"{" + base + ", " + file_module +
                R"(, "link_watchdog": {"reset_after": "2h", "reset": ["r"],
                   "reboot_after": "1h", "reboot": ["reboot"]}})",
            "longer than reset_after"},
           {"{" + base + ", " + file_module + R"(, "link_watchdog": {"reboot_after": "1d"}})",
            "link_watchdog.reboot"},
           {"{" + base + ", " + file_module +
                R"(, "link_watchdog": {"reset_after": "2h", "reset": ["r"], "ping": ["p"]}})",
            "ping"},
           {"{" + base + ", " + file_module + R"(, "telemetry": {"statsd": "/s"}})", "statsd"},
           {"{" + base + ", " + file_module + R"(, "configuration": {}})", "configuration.path"},
           {"{" + base + ", " + file_module + R"(, "configuration": {"path": ""}})",
            "must not be empty"},
           {"{" + base + ", " + file_module +
                R"(, "configuration": {"path": "/c", "apply_timeout": "1h"}})",
            "at most 10m"},
           {"{" + base + ", " + file_module +
                R"(, "configuration": {"path": "/c", "retry_after": "5s"}})",
            "at least 1m"},
           {"{" + base + ", " + file_module + R"(, "configuration": {"path": "/c", "file": "/x"}})",
            "file"},
           {R"({"data_dir": "/d", )" + file_module + "}", "server"},
           {"[]", ""},
           {"{", ""},
       }) {
    auto r = parse_agent_config(c.json);
    ASSERT_FALSE(r.ok()) << c.json;
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument) << c.json;
    EXPECT_NE(r.error().message.find(c.mentions), std::string::npos)
        << c.json << " -> " << r.error().message;
  }
}

}  // namespace
}  // namespace drover::agent
