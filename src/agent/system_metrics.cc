#include "agent/system_metrics.h"

#include <sys/statvfs.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <sstream>

#include "agent/decimal.h"

namespace drover::agent {
namespace {

using Labels = std::vector<std::pair<std::string, std::string>>;

void add(std::vector<protocol::TelemetrySeries>& out, std::string metric, Labels labels, int64_t t,
         double v) {
  std::sort(labels.begin(), labels.end());
  for (auto& [name, value] : labels) {
    if (value.size() > protocol::kMaxLabelValueBytes) value.resize(protocol::kMaxLabelValueBytes);
  }
  out.push_back({std::move(metric), std::move(labels), {{t, v}}});
}

std::string trim(std::string s) {
  while (!s.empty() &&
         (s.back() == '\n' || s.back() == '\r' || s.back() == ' ' || s.back() == '\t'))
    s.pop_back();
  size_t i = 0;
  while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
  return s.substr(i);
}

bool to_double(std::string_view s, double& out) {
  while (!s.empty() && (s.back() == '.' || s.back() == '\n' || s.back() == ' '))
    s.remove_suffix(1);  // /proc/net/wireless writes "-56."
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  return parse_decimal(s, out);
}

// The entries of a directory, sorted; none when it is absent.
std::vector<std::string> entries(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    out.push_back(e.path().filename().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

bool exists(const std::string& p) {
  std::error_code ec;
  return std::filesystem::exists(p, ec);
}

// "MemAvailable:    123456 kB" -> bytes.
bool meminfo_field(const std::string& text, std::string_view name, double& bytes) {
  size_t at = 0;
  while (at < text.size()) {
    size_t nl = text.find('\n', at);
    if (nl == std::string::npos) nl = text.size();
    std::string_view line(text.data() + at, nl - at);
    at = nl + 1;
    if (line.substr(0, name.size()) != name || line.size() <= name.size() ||
        line[name.size()] != ':') {
      continue;
    }
    std::istringstream in{std::string(line.substr(name.size() + 1))};
    double v = 0;
    std::string unit;
    if (!(in >> v)) return false;
    in >> unit;
    bytes = unit == "kB" ? v * 1024 : v;
    return true;
  }
  return false;
}

// An access technology as a label: ModemManager's name ("lte", "lte-cat-m", "hspa-plus"),
// with "5gnr" as "5g" (the name --signal-get gives it); "unknown" for "--" or anything odd.
std::string tech_label(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, 24)) {
    if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-') {
      out += c;
    } else if (c >= 'A' && c <= 'Z') {
      out += static_cast<char>(c - 'A' + 'a');
    } else {
      return "unknown";
    }
  }
  if (out == "5gnr") return "5g";
  return out.empty() || out.size() > 16 || out.front() == '-' ? "unknown" : out;
}

// What to log of a failed mmcli: its "error: ..." line (GLib's warnings before it carry the
// process id, which would make every round's text new), or the first line, at most 200 bytes.
std::string first_error_line(std::string_view output) {
  std::string_view line = output.substr(0, output.find('\n'));
  if (size_t at = output.find("error:"); at != std::string_view::npos) {
    line = output.substr(at);
    line = line.substr(0, line.find('\n'));
  }
  return trim(std::string(line.substr(0, 200)));
}

// The fields of `mmcli --signal-get`, by what they become.
struct SignalField {
  std::string_view field, metric;
};
constexpr SignalField kSignalFields[] = {
    {"rssi", "cellular_rssi_dbm"}, {"rsrp", "cellular_rsrp_dbm"}, {"rscp", "cellular_rscp_dbm"},
    {"rsrq", "cellular_rsrq_db"},  {"snr", "cellular_snr_db"},    {"sinr", "cellular_snr_db"},
    {"ecio", "cellular_ecio_db"},
};
constexpr std::string_view kSignalTechs[] = {"cdma1x", "evdo", "gsm", "umts", "lte", "5g"};
constexpr int kModemRestRounds = 10;  // after mmcli could not run or hung

}  // namespace

std::map<std::string, std::string> parse_mmcli_keyvalue(std::string_view text) {
  std::map<std::string, std::string> out;
  while (!text.empty()) {
    const size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    const size_t colon = line.find(" : ");
    if (colon == std::string_view::npos) continue;
    std::string key = trim(std::string(line.substr(0, colon)));
    if (key.empty()) continue;
    out.try_emplace(std::move(key), trim(std::string(line.substr(colon + 3))));
  }
  return out;
}

SystemCollector::SystemCollector(CollectorOptions options, FileSystem& fs, CommandRunner& commands)
    : o_(std::move(options)), fs_(fs), commands_(commands) {}

Collected SystemCollector::collect(int64_t t) {
  Collected out;
  if (o_.cpu) cpu(t, out);
  if (o_.memory) memory(t, out);
  if (o_.disk) disk(t, out);
  if (o_.temperature) temperature(t, out);
  if (o_.uptime) uptime(t, out);
  if (o_.reboots) reboots(t, out);
  if (o_.link) link(t, out);
  if (o_.battery) battery(t, out);
  if (o_.modem) modem(t, out);
  return out;
}

void SystemCollector::cpu(int64_t t, Collected& out) {
  auto text = fs_.read(path("/proc/stat"));
  if (!text.ok()) return out.problems.push_back(text.error().message);
  std::istringstream in(*text);
  std::string label;
  in >> label;
  if (label != "cpu") return out.problems.push_back(path("/proc/stat") + ": no cpu line");
  uint64_t total = 0, idle = 0;
  for (int i = 0; i < 8; ++i) {
    uint64_t v = 0;
    if (!(in >> v)) break;
    total += v;
    if (i == 3 || i == 4) idle += v;  // idle, iowait
  }
  const uint64_t busy = total - idle;
  if (cpu_total_ != 0 && total > cpu_total_ && busy >= cpu_busy_) {
    add(out.routine, "cpu_usage_ratio", {}, t,
        static_cast<double>(busy - cpu_busy_) / static_cast<double>(total - cpu_total_));
  }
  cpu_busy_ = busy;
  cpu_total_ = total;
}

void SystemCollector::memory(int64_t t, Collected& out) {
  auto text = fs_.read(path("/proc/meminfo"));
  if (!text.ok()) return out.problems.push_back(text.error().message);
  double v = 0;
  if (meminfo_field(*text, "MemAvailable", v)) add(out.routine, "memory_available_bytes", {}, t, v);
  if (meminfo_field(*text, "MemTotal", v)) add(out.routine, "memory_total_bytes", {}, t, v);
  auto status = fs_.read(path("/proc/self/status"));
  if (status.ok() && meminfo_field(*status, "VmRSS", v))
    add(out.routine, "agent_rss_bytes", {}, t, v);
}

void SystemCollector::disk(int64_t t, Collected& out) {
  for (const std::string& mount : o_.disks) {
    struct statvfs st {};
    if (::statvfs(path(mount).c_str(), &st) != 0) {
      out.problems.push_back("statvfs " + path(mount) + " failed");
      continue;
    }
    const auto unit = static_cast<double>(st.f_frsize);
    add(out.routine, "disk_free_bytes", {{"mount", mount}}, t,
        static_cast<double>(st.f_bavail) * unit);
    add(out.routine, "disk_total_bytes", {{"mount", mount}}, t,
        static_cast<double>(st.f_blocks) * unit);
  }
}

void SystemCollector::temperature(int64_t t, Collected& out) {
  const std::string dir = path("/sys/class/thermal");
  for (const std::string& zone : entries(dir)) {
    if (zone.rfind("thermal_zone", 0) != 0) continue;
    auto temp = fs_.read(dir + "/" + zone + "/temp");
    double milli = 0;
    if (!temp.ok() || !to_double(*temp, milli)) continue;  // a zone may be switched off
    auto type = fs_.read(dir + "/" + zone + "/type");
    add(out.routine, "temperature_celsius",
        {{"zone", zone.substr(12)}, {"type", type.ok() ? trim(*type) : ""}}, t, milli / 1000);
  }
}

void SystemCollector::uptime(int64_t t, Collected& out) {
  auto text = fs_.read(path("/proc/uptime"));
  if (!text.ok()) return out.problems.push_back(text.error().message);
  double seconds = 0;
  if (!to_double(text->substr(0, text->find(' ')), seconds))
    return out.problems.push_back(path("/proc/uptime") + ": not a number");
  add(out.routine, "uptime_seconds", {}, t, seconds);
}

// The boots file: "<boot id>\n<reboots>\n<clean stop 0|1>\n<pstore records seen>\n".
void SystemCollector::reboots(int64_t t, Collected& out) {
  if (!boot_recorded_) {
    auto id = fs_.read(path("/proc/sys/kernel/random/boot_id"));
    if (!id.ok()) return out.problems.push_back(id.error().message);
    boot_id_ = trim(*id);
    std::string saved_id, seen;
    uint64_t saved_boots = 0;
    int clean = 0;
    bool known = false;
    if (auto saved = fs_.read(o_.boots_file); saved.ok()) {
      std::istringstream in(*saved);
      known = static_cast<bool>(in >> saved_id >> saved_boots >> clean);
      if (!(in >> seen)) seen.clear();
      if (!known) out.problems.push_back(o_.boots_file + ": unreadable; counting afresh");
    }
    boots_ = known ? saved_boots : 0;
    // Panic records stay in pstore until something clears them: only a new one is blamed.
    std::string pstore;
    bool new_panic = false;
    for (const std::string& f : entries(path("/sys/fs/pstore"))) {
      if (f.rfind("dmesg-", 0) != 0) continue;
      pstore += (pstore.empty() ? "" : ",") + f;
      if (("," + seen + ",").find("," + f + ",") == std::string::npos) new_panic = true;
    }
    if (known && saved_id != boot_id_) {
      ++boots_;
      std::string reason = clean != 0 ? "shutdown" : "unclean";
      // What the platform says overrides the agent's guess.
      for (const std::string& w : entries(path("/sys/class/watchdog"))) {
        auto status = fs_.read(path("/sys/class/watchdog/") + w + "/bootstatus");
        double v = 0;
        if (status.ok() && to_double(*status, v) && v != 0) reason = "watchdog";
      }
      if (new_panic) reason = "kernel_panic";
      add(out.urgent, "reboot", {{"reason", reason}}, t, static_cast<double>(boots_));
    }
    boots_record_ =
        boot_id_ + "\n" + std::to_string(boots_) + "\n0\n" + (pstore.empty() ? "-" : pstore) + "\n";
    pstore_seen_ = pstore.empty() ? "-" : pstore;
  }
  if (!boot_id_.empty()) add(out.routine, "reboots_total", {}, t, static_cast<double>(boots_));
}

Status SystemCollector::boot_recorded() {
  if (boot_recorded_ || boots_record_.empty() || o_.boots_file.empty()) return ok_status();
  DROVER_TRY(write_atomically(fs_, o_.boots_file, boots_record_));
  boot_recorded_ = true;
  return ok_status();
}

Status SystemCollector::note_clean_stop() {
  if (!o_.reboots || !boot_recorded_ || o_.boots_file.empty()) return ok_status();
  return write_atomically(fs_, o_.boots_file,
                          boot_id_ + "\n" + std::to_string(boots_) + "\n1\n" + pstore_seen_ + "\n");
}

void SystemCollector::link(int64_t t, Collected& out) {
  // The default route's interface: the first line of /proc/net/route with destination 0.
  std::string iface;
  if (auto routes = fs_.read(path("/proc/net/route")); routes.ok()) {
    std::istringstream in(*routes);
    std::string line;
    std::getline(in, line);  // the header
    while (std::getline(in, line)) {
      std::istringstream fields(line);
      std::string name, destination;
      if (fields >> name >> destination && destination == "00000000") {
        iface = name;
        break;
      }
    }
  } else {
    out.problems.push_back(routes.error().message);
  }
  if (iface.empty()) {
    add(out.routine, "link_up", {{"iface", ""}, {"type", "none"}}, t, 0);
  } else {
    const std::string dir = path("/sys/class/net/") + iface;
    std::string type = "other";
    auto uevent = fs_.read(dir + "/uevent");
    auto arp_type = fs_.read(dir + "/type");
    if (exists(dir + "/wireless") || exists(dir + "/phy80211")) {
      type = "wifi";
    } else if ((uevent.ok() && uevent->find("DEVTYPE=wwan") != std::string::npos) ||
               iface.rfind("wwan", 0) == 0 || iface.rfind("ppp", 0) == 0) {
      type = "cellular";
    } else if (arp_type.ok() && trim(*arp_type) == "1") {
      type = "ethernet";
    }
    auto state = fs_.read(dir + "/operstate");
    const bool up = state.ok() && (trim(*state) == "up" || trim(*state) == "unknown");
    add(out.routine, "link_up", {{"iface", iface}, {"type", type}}, t, up ? 1 : 0);
  }
  // Wi-Fi signal: "wlan0: 0000   54.  -56.  -256  ..." after two header lines.
  if (auto wireless = fs_.read(path("/proc/net/wireless")); wireless.ok()) {
    std::istringstream in(*wireless);
    std::string line;
    for (int header = 0; header < 2 && std::getline(in, line); ++header) {
    }
    while (std::getline(in, line)) {
      std::istringstream fields(line);
      std::string name, status, quality, level;
      if (!(fields >> name >> status >> quality >> level) || name.back() != ':') continue;
      name.pop_back();
      double q = 0, dbm = 0;
      if (to_double(quality, q)) add(out.routine, "wifi_link_quality", {{"iface", name}}, t, q);
      if (to_double(level, dbm)) add(out.routine, "wifi_signal_dbm", {{"iface", name}}, t, dbm);
    }
  }
}

void SystemCollector::battery(int64_t t, Collected& out) {
  const std::string dir = path("/sys/class/power_supply");
  for (const std::string& supply : entries(dir)) {
    const std::string base = dir + "/" + supply + "/";
    auto type = fs_.read(base + "type");
    if (!type.ok()) continue;
    const std::string kind = trim(*type);
    double v = 0;
    if (kind == "Battery") {
      if (auto f = fs_.read(base + "capacity"); f.ok() && to_double(*f, v))
        add(out.routine, "battery_level_percent", {{"supply", supply}}, t, v);
      if (auto f = fs_.read(base + "voltage_now"); f.ok() && to_double(*f, v))
        add(out.routine, "battery_voltage_volts", {{"supply", supply}}, t, v / 1e6);
      if (auto f = fs_.read(base + "temp"); f.ok() && to_double(*f, v))
        add(out.routine, "battery_temperature_celsius", {{"supply", supply}}, t, v / 10);
      if (auto f = fs_.read(base + "status"); f.ok()) {
        const std::string s = trim(*f);
        add(out.routine, "battery_charging", {{"supply", supply}}, t,
            s == "Charging" || s == "Full" ? 1 : 0);
      }
    } else if (kind == "Mains" || kind == "USB") {
      if (auto f = fs_.read(base + "online"); f.ok() && to_double(*f, v))
        add(out.routine, "power_online", {{"supply", supply}}, t, v);
    }
  }
}

void SystemCollector::modem_problem(std::string problem, Collected& out) {
  if (problem == modem_problem_) return;
  modem_problem_ = problem;
  out.problems.push_back(std::move(problem));
}

// ModemManager's view: `mmcli -m any` for the state, the technology and the signal quality
// it keeps up to date itself; `--signal-get` for the radio's measurements, which the modem
// reports only once asked to (`--signal-setup`, asked once for each modem object: a modem
// that is reset or plugged in again is a new object, with the report off again).
void SystemCollector::modem(int64_t t, Collected& out) {
  if (modem_rest_ > 0) {
    --modem_rest_;
    return;
  }
  // mmcli prints numbers in the locale's form ("-61,00" under de_DE): ask for the C one.
  const Environment c_locale = {{"LC_ALL", "C"}};
  auto status =
      commands_.run({"mmcli", "-m", "any", "--output-keyvalue"}, o_.modem_timeout, c_locale);
  if (!status.ok() || status->timed_out) {
    // Not installed, or ModemManager hangs: the agent's loop waits for mmcli, so it is not
    // asked again for a while rather than costing every round its timeout.
    modem_rest_ = kModemRestRounds;
    return modem_problem(
        "modem: " +
            (status.ok() ? std::string("mmcli took longer than its timeout")
                         : status.error().message + " (is ModemManager installed?)") +
            "; trying again in " + std::to_string(kModemRestRounds) + " rounds",
        out);
  }
  if (!status->ok()) {
    // No modem (yet): unplugged, not probed since ModemManager started, or ModemManager not
    // running. The next modem found is asked for its signal report afresh.
    modem_path_.clear();
    add(out.routine, "cellular_modem_present", {}, t, 0);
    add(out.routine, "cellular_registered", {}, t, 0);
    add(out.routine, "cellular_connected", {}, t, 0);
    return modem_problem("modem: none found: " + first_error_line(status->output), out);
  }
  auto kv = parse_mmcli_keyvalue(status->output);
  if (kv["modem.dbus-path"] != modem_path_) {
    modem_path_ = kv["modem.dbus-path"];
    signal_setup_asked_ = signal_unsupported_ = false;
  }
  // Every state from "registered" on is registered with a network.
  const std::string& state = kv["modem.generic.state"];
  const bool connected = state == "connected";
  const bool registered =
      connected || state == "registered" || state == "connecting" || state == "disconnecting";
  add(out.routine, "cellular_modem_present", {}, t, 1);
  add(out.routine, "cellular_registered", {}, t, registered ? 1 : 0);
  add(out.routine, "cellular_connected", {}, t, connected ? 1 : 0);
  std::string tech = kv["modem.generic.access-technologies.value[1]"];
  if (tech.empty()) tech = kv["modem.generic.access-technologies"];  // "--": none
  double quality = 0;
  if (kv["modem.generic.signal-quality.recent"] != "no" &&
      to_double(kv["modem.generic.signal-quality.value"], quality)) {
    add(out.routine, "cellular_signal_quality_percent", {{"tech", tech_label(tech)}}, t, quality);
  }
  modem_problem_.clear();  // a problem that comes back is told again
  if (!signal_unsupported_) modem_signal(t, c_locale, out);
}

void SystemCollector::modem_signal(int64_t t, const Environment& env, Collected& out) {
  auto got = commands_.run({"mmcli", "-m", "any", "--signal-get", "--output-keyvalue"},
                           o_.modem_timeout, env);
  if (!got.ok() || !got->ok()) {
    // A modem without the extended report: not asked again until another modem appears.
    signal_unsupported_ = true;
    out.problems.push_back("modem: no radio measurements: " +
                           (got.ok() ? (got->timed_out ? std::string("mmcli took too long")
                                                       : first_error_line(got->output))
                                     : got.error().message));
    return;
  }
  auto kv = parse_mmcli_keyvalue(got->output);
  double rate = 0;
  if (to_double(kv["modem.signal.refresh.rate"], rate) && rate == 0) {
    if (signal_setup_asked_) return;  // switched off again by someone else: left so
    signal_setup_asked_ = true;
    auto setup = commands_.run(
        {"mmcli", "-m", "any", "--signal-setup=" + std::to_string(o_.modem_signal_rate_s)},
        o_.modem_timeout, env);
    if (!setup.ok() || !setup->ok()) {
      out.problems.push_back("modem: --signal-setup failed: " +
                             (setup.ok() ? (setup->timed_out ? std::string("mmcli took too long")
                                                             : first_error_line(setup->output))
                                         : setup.error().message));
    }
    return;  // the first measurements come after the rate's first period
  }
  for (std::string_view tech : kSignalTechs) {
    const std::string prefix = "modem.signal." + std::string(tech) + ".";
    for (const SignalField& f : kSignalFields) {
      double v = 0;
      auto it = kv.find(prefix + std::string(f.field));
      if (it == kv.end() || !to_double(it->second, v)) continue;  // "--": not measured
      add(out.routine, std::string(f.metric), {{"tech", std::string(tech)}}, t, v);
    }
  }
}

}  // namespace drover::agent
