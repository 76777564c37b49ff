#include "agent/config.h"

#include <filesystem>

#include "base/json_reader.h"
#include "base/units.h"

namespace drover::agent {
namespace {

std::vector<std::string> command(const JsonReader& r, const char* key, bool required) {
  if (!r.has(key)) {
    if (required) r.fail(key, "is required: a command as an array of strings");
    return {};
  }
  std::vector<std::string> argv = r.strings_or_empty(key);
  if (required && argv.empty()) r.fail(key, "must name a command");
  return argv;
}

Duration positive(const JsonReader& r, const char* key, Duration fallback) {
  const Duration d = r.duration_or(key, fallback);
  if (d <= Duration(0)) r.fail(key, "must be a positive duration");
  return d;
}

TelemetryOptions read_telemetry(const JsonReader& t, const std::string& data_dir) {
  t.allow_only({"interval", "collect", "disks", "root", "statsd_socket", "statsd_flush",
                "send_every", "queue_max", "urgent"});
  TelemetryOptions o;
  o.interval = positive(t, "interval", o.interval);
  if (o.interval < seconds(1)) t.fail("interval", "must be at least 1s");
  if (t.has("collect")) {
    CollectorOptions& c = o.collectors;
    c.cpu = c.memory = c.disk = c.temperature = c.uptime = c.reboots = c.link = c.battery = false;
    for (const std::string& name : t.strings_or_empty("collect")) {
      bool* flag = name == "cpu"           ? &c.cpu
                   : name == "memory"      ? &c.memory
                   : name == "disk"        ? &c.disk
                   : name == "temperature" ? &c.temperature
                   : name == "uptime"      ? &c.uptime
                   : name == "reboots"     ? &c.reboots
                   : name == "link"        ? &c.link
                   : name == "battery"     ? &c.battery
                   : name == "modem"       ? &c.modem
                                           : nullptr;
      if (flag == nullptr) {
        t.fail("collect",
               "names cpu, memory, disk, temperature, uptime, reboots, link, battery "
               "or modem, not '" +
                   name + "'");
      }
      *flag = true;
    }
    o.system = !t.strings_or_empty("collect").empty();
  }
  if (t.has("disks")) o.collectors.disks = t.strings_or_empty("disks");
  for (const std::string& d : o.collectors.disks) {
    if (d.empty() || d.front() != '/') t.fail("disks", "are absolute mount points");
  }
  o.collectors.root = t.str_or("root", "");
  o.collectors.modem_signal_rate_s =
      std::chrono::duration_cast<std::chrono::seconds>(o.interval).count();
  o.collectors.boots_file = (std::filesystem::path(data_dir) / "boots").string();
  o.statsd_socket = t.str_or("statsd_socket", "");
  o.statsd_flush = positive(t, "statsd_flush", o.statsd_flush);
  o.send_every = positive(t, "send_every", o.send_every);
  o.queue.dir = (std::filesystem::path(data_dir) / "telemetry").string();
  if (t.has("queue_max")) {
    o.queue.max_bytes = t.take("queue_max", parse_bytes(t.str("queue_max")));
    if (o.queue.max_bytes < (uint64_t{1} << 20)) t.fail("queue_max", "must be at least 1MiB");
  }
  for (const std::string& m : t.strings_or_empty("urgent")) {
    if (!protocol::is_valid_metric_name(m)) t.fail("urgent", "'" + m + "' is not a metric name");
    o.urgent.insert(m);
  }
  return o;
}

// "remote_commands": {"reboot": [...], "restart_service": [...], "services": [...],
// "restart_timeout": "2m", "run": {"name": {"command": [...], "timeout": "5m"}}}
void read_remote_commands(const JsonReader& r, AgentConfig& c) {
  r.allow_only({"reboot", "restart_service", "services", "restart_timeout", "run"});
  RemoteCommandOptions& o = c.remote;
  o.enabled = true;
  if (r.has("reboot")) c.remote_reboot = command(r, "reboot", true);
  if (r.has("restart_service")) o.restart_service = command(r, "restart_service", true);
  o.services = r.strings_or_empty("services");
  for (const std::string& s : o.services) {
    const bool plain = !s.empty() && s.size() <= 128 && s.front() != '-' &&
                       std::all_of(s.begin(), s.end(), [](char ch) {
                         return std::isalnum(static_cast<unsigned char>(ch)) != 0 || ch == '.' ||
                                ch == '_' || ch == ':' || ch == '-' || ch == '@';
                       });
    if (!plain) r.fail("services", "'" + s + "' is not a service name");
  }
  o.restart_timeout = positive(r, "restart_timeout", o.restart_timeout);
  if (r.has("run")) {
    const JsonReader run = r.child("run");
    if (!run.raw().is_object()) r.fail("run", "must be an object of named commands");
    for (const auto& [name, value] : run.raw().items()) {
      const JsonReader named = run.child(name.c_str());
      named.allow_only({"command", "timeout"});
      o.named[name] = {command(named, "command", true), positive(named, "timeout", minutes(5))};
    }
  }
}

// "link_watchdog": {"reset_after": "2h", "reset": [...], "reset_timeout": "2m",
// "reboot_after": "24h", "reboot": [...], "probe": [...], "probe_timeout": "30s"}
void read_link_watchdog(const JsonReader& r, AgentConfig& c) {
  r.allow_only({"reset_after", "reset", "reset_timeout", "reboot_after", "reboot", "probe",
                "probe_timeout"});
  LinkWatchdogOptions o;
  // At least 10 minutes: a link that is down for a moment is not worth resetting.
  auto at_least = [&r](const char* key) {
    if (!r.has(key)) return Duration{0};
    const Duration d = r.duration(key);
    if (d < minutes(10) || d > days(30)) r.fail(key, "must be from 10m to 30d");
    return d;
  };
  o.reset_after = at_least("reset_after");
  o.reboot_after = at_least("reboot_after");
  if (o.reset_after == Duration{0} && o.reboot_after == Duration{0})
    r.fail("reset_after", "or reboot_after (or both) is required");
  o.reset = command(r, "reset", o.reset_after > Duration{0});
  if (o.reset_after == Duration{0} && !o.reset.empty()) r.fail("reset", "needs reset_after");
  o.reset_timeout = positive(r, "reset_timeout", o.reset_timeout);
  // The agent's loop waits for them (a stop signal too): minutes at most.
  if (o.reset_timeout > minutes(5)) r.fail("reset_timeout", "must be at most 5m");
  c.watchdog_reboot = command(r, "reboot", o.reboot_after > Duration{0});
  if (o.reboot_after == Duration{0} && !c.watchdog_reboot.empty())
    r.fail("reboot", "needs reboot_after");
  if (o.reset_after > Duration{0} && o.reboot_after > Duration{0} &&
      o.reboot_after <= o.reset_after) {
    r.fail("reboot_after", "must be longer than reset_after (the reset is tried first)");
  }
  o.probe = command(r, "probe", false);
  o.probe_timeout = positive(r, "probe_timeout", o.probe_timeout);
  if (o.probe_timeout > minutes(1)) r.fail("probe_timeout", "must be at most 1m");
  c.watchdog = std::move(o);
}

AgentConfig read_config(const JsonReader& r) {
  r.allow_only(
      {"server",          "data_dir",      "device",         "enrollment_token", "tls",
       "component",       "installed",     "poll",           "commit_timeout",   "apply_time",
       "link_online_utc", "health_checks", "state_scripts",  "max_download",     "min_free",
       "module",          "telemetry",     "signed_updates", "factory_identity", "remote_commands",
       "link_watchdog",   "configuration"});
  AgentConfig c;
  c.link.server = r.str("server");
  c.agent.data_dir = r.str("data_dir");
  const JsonReader device = r.child("device");
  device.allow_only({"id", "type", "hardware_revision", "site"});
  c.link.device_id = device.str("id");
  c.link.device_type = device.str("type");
  c.link.hardware_revision = device.str("hardware_revision");
  c.link.site = device.str_or("site", "");
  c.link.enrollment_token = r.str_or("enrollment_token", "");
  if (r.has("factory_identity")) {
    const JsonReader factory = r.child("factory_identity");
    factory.allow_only({"certificate", "key"});
    c.link.factory_certificate_file = factory.str("certificate");
    c.link.factory_key_file = factory.str("key");
  }
  if (r.has("tls")) {
    const JsonReader tls = r.child("tls");
    tls.allow_only({"ca_file", "cert_file", "key_file"});
    c.link.ca_file = tls.str_or("ca_file", "");
    c.link.cert_file = tls.str_or("cert_file", "");
    c.link.key_file = tls.str_or("key_file", "");
    if (c.link.cert_file.empty() != c.link.key_file.empty())
      tls.fail("cert_file", "a client certificate needs its key, and the key its certificate");
  }
  c.agent.component = r.str_or("component", "firmware");
  if (r.has("signed_updates")) {
    const JsonReader signed_updates = r.child("signed_updates");
    signed_updates.allow_only({"initial_root"});
    c.initial_root = signed_updates.str("initial_root");
    if (c.initial_root.empty()) signed_updates.fail("initial_root", "must name the root file");
  }
  if (r.has("installed")) {
    const auto& installed = r.raw().at("installed");
    if (!installed.is_object()) r.fail("installed", "must be an object of component: version");
    for (const auto& item : installed.items()) {
      if (!item.value().is_string()) r.fail("installed", "versions must be strings");
      c.installed[item.key()] = item.value().get<std::string>();
    }
  }
  if (r.has("poll")) {
    const JsonReader poll = r.child("poll");
    poll.allow_only({"default", "backoff_initial", "backoff_max"});
    c.agent.default_poll = positive(poll, "default", c.agent.default_poll);
    c.agent.backoff_initial = positive(poll, "backoff_initial", c.agent.backoff_initial);
    c.agent.backoff_max = positive(poll, "backoff_max", c.agent.backoff_max);
    if (c.agent.backoff_max < c.agent.backoff_initial)
      poll.fail("backoff_max", "must not be less than backoff_initial");
  }
  c.agent.commit_timeout = positive(r, "commit_timeout", c.agent.commit_timeout);
  c.agent.apply_time = positive(r, "apply_time", c.agent.apply_time);
  std::vector<std::pair<int, Duration>> online;  // daily, UTC: minute of the day, length
  for (const JsonReader& w : r.array("link_online_utc")) {
    w.allow_only({"start", "length"});
    const int start = w.take("start", parse_time_of_day(w.str("start")));
    const Duration length = positive(w, "length", Duration(0));
    if (length > hours(24)) w.fail("length", "must be at most 24h");
    online.emplace_back(start, length);
  }
  if (!online.empty()) {
    c.agent.link_up_at = [online](Timestamp t) {
      const auto day = std::chrono::floor<std::chrono::days>(t);
      Timestamp next = Timestamp::max();
      for (int offset = -1; offset <= 1; ++offset) {
        for (const auto& [start, length] : online) {
          const Timestamp from = day + std::chrono::days(offset) + minutes(start);
          if (from <= t && t < from + length) return t;
          if (from > t) next = std::min(next, from);
        }
      }
      return next;
    };
  }
  for (const JsonReader& check : r.array("health_checks")) {
    check.allow_only({"command", "timeout"});
    c.agent.health_checks.push_back(
        {command(check, "command", true), positive(check, "timeout", seconds(30))});
  }
  c.agent.state_scripts = r.str_or("state_scripts", "");
  if (r.has("max_download"))
    c.agent.max_download_bytes = r.take("max_download", parse_bytes(r.str("max_download")));
  if (r.has("min_free"))
    c.agent.min_free_bytes = r.take("min_free", parse_bytes(r.str("min_free")));
  if (r.has("telemetry")) {
    c.telemetry = read_telemetry(r.child("telemetry"), c.agent.data_dir);
    c.telemetry->backoff_initial = c.agent.backoff_initial;  // one backoff policy per agent
    c.telemetry->backoff_max = c.agent.backoff_max;
  }
  if (r.has("remote_commands")) read_remote_commands(r.child("remote_commands"), c);
  if (r.has("link_watchdog")) read_link_watchdog(r.child("link_watchdog"), c);
  if (r.has("configuration")) {
    // "configuration": {"path": FILE, "apply": [...], "apply_timeout": "2m",
    // "envelope": FILE, "retry_after": "1h"}
    const JsonReader k = r.child("configuration");
    k.allow_only({"path", "apply", "apply_timeout", "envelope", "retry_after"});
    ConfigApplyOptions o;
    o.path = k.str("path");
    if (o.path.empty()) k.fail("path", "must not be empty");
    o.apply = command(k, "apply", false);
    o.apply_timeout = positive(k, "apply_timeout", o.apply_timeout);
    if (o.apply_timeout > minutes(10)) k.fail("apply_timeout", "must be at most 10m");
    o.envelope_file = k.str_or("envelope", "");
    o.retry_after = positive(k, "retry_after", o.retry_after);
    if (o.retry_after < minutes(1)) k.fail("retry_after", "must be at least 1m");
    o.state_dir = c.agent.data_dir;
    c.configuration = std::move(o);
  }
  const JsonReader m = r.child("module");
  c.module.type = m.str("type");
  if (c.module.type == "file") {
    m.allow_only({"type", "target", "restart"});
    c.module.target = m.str("target");
    c.module.restart = command(m, "restart", false);
  } else if (c.module.type == "ab-slot") {
    m.allow_only({"type", "slot_a", "slot_b", "bootloader", "grub_env", "uboot_config",
                  "bootloader_file", "cmdline", "reboot", "trial_boot"});
    c.module.slot_a = m.str("slot_a");
    c.module.slot_b = m.str("slot_b");
    if (c.module.slot_a == c.module.slot_b) m.fail("slot_b", "must differ from slot_a");
    c.module.bootloader = m.str_or("bootloader", "uboot");
    if (c.module.bootloader != "uboot" && c.module.bootloader != "grub" &&
        c.module.bootloader != "file") {
      m.fail("bootloader", "must be uboot, grub or file");
    }
    c.module.grub_env = m.str_or("grub_env", c.module.grub_env);
    c.module.uboot_config = m.str_or("uboot_config", "");
    c.module.bootloader_file = m.str_or("bootloader_file", "");
    if (c.module.bootloader == "file" && c.module.bootloader_file.empty())
      m.fail("bootloader_file", "is required with bootloader \"file\"");
    c.module.cmdline = m.str_or("cmdline", c.module.cmdline);
    if (m.has("reboot")) {
      c.module.reboot = command(m, "reboot", true);
    } else if (c.module.bootloader == "file") {
      c.module.reboot.clear();  // a rehearsal on a laptop must not reboot the laptop
    }
    c.module.trial_boot = m.str_or("trial_boot", "boots");
    if (c.module.trial_boot != "boots" && c.module.trial_boot != "fails")
      m.fail("trial_boot", "must be boots or fails");
    if (c.module.trial_boot == "fails" && c.module.bootloader != "file")
      m.fail("trial_boot", "is for bootloader \"file\" (a real bootloader boots what it boots)");
  } else if (c.module.type == "script") {
    m.allow_only({"type", "install", "commit", "rollback"});
    c.module.install = command(m, "install", true);
    c.module.commit = command(m, "commit", false);
    c.module.rollback = command(m, "rollback", false);
  } else {
    m.fail("type", "must be file, ab-slot or script");
  }
  return c;
}

}  // namespace

Result<AgentConfig> parse_agent_config(std::string_view text) {
  return parse_json_document<AgentConfig>(text, "agent config", &read_config);
}

}  // namespace drover::agent
