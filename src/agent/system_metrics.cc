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
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\t')) s.pop_back();
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

}  // namespace

SystemCollector::SystemCollector(CollectorOptions options, FileSystem& fs)
    : o_(std::move(options)), fs_(fs) {}

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

}  // namespace drover::agent
