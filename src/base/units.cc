#include "base/units.h"

#include <date/date.h>

#include <array>
#include <charconv>
#include <cmath>
#include <cstdio>

namespace drover {
namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// A non-negative number to the nearest integer, halves up (std::llround would bring libm
// into the agent for this alone).
uint64_t rounded(double v) {
  auto whole = static_cast<uint64_t>(v);
  if (v - static_cast<double>(whole) >= 0.5) ++whole;
  return whole;
}

// Reads a non-negative decimal number (digits with an optional fraction) from the front.
bool take_number(std::string_view& s, double& out, bool allow_fraction) {
  size_t i = 0;
  while (i < s.size() && is_digit(s[i])) ++i;
  if (allow_fraction && i < s.size() && s[i] == '.') {
    ++i;
    while (i < s.size() && is_digit(s[i])) ++i;
  }
  if (i == 0 || (i == 1 && s[0] == '.')) return false;
  std::string digits(s.substr(0, i));
  char* end = nullptr;
  out = std::strtod(digits.c_str(), &end);
  if (end != digits.c_str() + digits.size() || !std::isfinite(out)) return false;
  s.remove_prefix(i);
  return true;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

}  // namespace

Result<Duration> parse_duration(std::string_view text) {
  const std::string original(text);
  if (text == "0") return Duration(0);
  if (text.empty()) return invalid_argument("empty duration");
  double total_ms = 0;
  while (!text.empty()) {
    double n = 0;
    if (!take_number(text, n, false)) {
      return invalid_argument("bad duration '" + original + "': expected a number");
    }
    double unit_ms = 0;
    if (text.starts_with("ms")) {
      unit_ms = 1;
      text.remove_prefix(2);
    } else if (!text.empty() && text[0] == 's') {
      unit_ms = 1000;
      text.remove_prefix(1);
    } else if (!text.empty() && text[0] == 'm') {
      unit_ms = 60'000;
      text.remove_prefix(1);
    } else if (!text.empty() && text[0] == 'h') {
      unit_ms = 3'600'000;
      text.remove_prefix(1);
    } else if (!text.empty() && text[0] == 'd') {
      unit_ms = 86'400'000;
      text.remove_prefix(1);
    } else {
      return invalid_argument("bad duration '" + original + "': unit must be ms, s, m, h or d");
    }
    total_ms += n * unit_ms;
    if (total_ms > 1e15) return invalid_argument("duration '" + original + "' is too long");
  }
  return Duration(static_cast<int64_t>(total_ms));
}

std::string format_duration(Duration d) {
  int64_t ms = d.count();
  if (ms == 0) return "0s";
  std::string out;
  if (ms < 0) {
    out = "-";
    ms = -ms;
  }
  const std::array<std::pair<int64_t, const char*>, 5> units{
      {{86'400'000, "d"}, {3'600'000, "h"}, {60'000, "m"}, {1000, "s"}, {1, "ms"}}};
  for (auto [size, name] : units) {
    if (ms >= size) {
      out += std::to_string(ms / size) + name;
      ms %= size;
    }
  }
  return out;
}

Result<uint64_t> parse_bytes(std::string_view text) {
  const std::string original(text);
  double n = 0;
  if (!take_number(text, n, true)) return invalid_argument("bad size '" + original + "'");
  const std::string unit = lower(text);
  double mult = 0;
  if (unit.empty() || unit == "b") {
    mult = 1;
  } else if (unit == "kb") {
    mult = 1e3;
  } else if (unit == "mb") {
    mult = 1e6;
  } else if (unit == "gb") {
    mult = 1e9;
  } else if (unit == "kib") {
    mult = 1024.0;
  } else if (unit == "mib") {
    mult = 1024.0 * 1024;
  } else if (unit == "gib") {
    mult = 1024.0 * 1024 * 1024;
  } else {
    return invalid_argument("bad size '" + original +
                            "': unit must be B, KB, MB, GB, KiB, MiB or GiB");
  }
  const double bytes = n * mult;
  if (bytes > 1e15) return invalid_argument("size '" + original + "' is too large");
  return rounded(bytes);
}

Result<uint64_t> parse_bitrate(std::string_view text) {
  const std::string original(text);
  double n = 0;
  if (!take_number(text, n, true)) return invalid_argument("bad bit rate '" + original + "'");
  const std::string unit = lower(text);
  double mult = 0;
  if (unit == "bps") {
    mult = 1;
  } else if (unit == "kbps") {
    mult = 1e3;
  } else if (unit == "mbps") {
    mult = 1e6;
  } else if (unit == "gbps") {
    mult = 1e9;
  } else {
    return invalid_argument("bad bit rate '" + original +
                            "': unit must be bps, kbps, Mbps or Gbps");
  }
  const double bps = n * mult;
  if (bps < 1 || bps > 1e12) return invalid_argument("bit rate '" + original + "' is out of range");
  return rounded(bps);
}

Result<int> parse_time_of_day(std::string_view text) {
  const std::string original(text);
  if (text.size() != 5 || text[2] != ':' || !is_digit(text[0]) || !is_digit(text[1]) ||
      !is_digit(text[3]) || !is_digit(text[4])) {
    return invalid_argument("bad time of day '" + original + "': expected HH:MM");
  }
  const int h = (text[0] - '0') * 10 + (text[1] - '0');
  const int m = (text[3] - '0') * 10 + (text[4] - '0');
  if (m > 59 || h > 24 || (h == 24 && m != 0)) {
    return invalid_argument("bad time of day '" + original + "': out of range");
  }
  return h * 60 + m;
}

std::string format_time_of_day(int minutes) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%02d:%02d", (minutes / 60) % 100, minutes % 60);
  return buf;
}

namespace {
constexpr std::array<const char*, 7> kDayNames{"mon", "tue", "wed", "thu", "fri", "sat", "sun"};

int day_index(std::string_view name) {
  for (size_t i = 0; i < kDayNames.size(); ++i) {
    if (name == kDayNames[i]) return static_cast<int>(i);
  }
  return -1;
}
}  // namespace

Result<uint8_t> parse_weekdays(std::string_view text) {
  const std::string original(text);
  const std::string s = lower(text);
  if (s == "daily" || s == "all") return uint8_t{0x7f};
  uint8_t days = 0;
  std::string_view rest(s);
  while (!rest.empty()) {
    const size_t comma = rest.find(',');
    std::string_view part = rest.substr(0, comma);
    if (comma != std::string_view::npos && comma + 1 == rest.size()) {
      return invalid_argument("bad weekdays '" + original + "': trailing comma");
    }
    rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
    const size_t dash = part.find('-');
    const int from = day_index(part.substr(0, dash));
    const int to = dash == std::string_view::npos ? from : day_index(part.substr(dash + 1));
    if (from < 0 || to < 0) {
      return invalid_argument("bad weekdays '" + original +
                              "': use mon..sun, ranges like mon-fri, or daily");
    }
    // A range may wrap the week: fri-mon is fri, sat, sun, mon.
    for (int d = from;; d = (d + 1) % 7) {
      days = static_cast<uint8_t>(days | (1u << d));
      if (d == to) break;
    }
  }
  if (days == 0) return invalid_argument("bad weekdays '" + original + "': empty");
  return days;
}

std::string format_weekdays(uint8_t days) {
  if ((days & 0x7f) == 0x7f) return "daily";
  std::string out;
  for (size_t i = 0; i < 7; ++i) {
    if (days & (1u << i)) {
      if (!out.empty()) out += ',';
      out += kDayNames[i];
    }
  }
  return out;
}

Result<Timestamp> parse_utc_timestamp(std::string_view text) {
  const std::string original(text);
  int y = 0;
  unsigned mo = 0, d = 0, h = 0, mi = 0, s = 0;
  char z = 0;
  // Every field must be all digits: sscanf alone also takes signs and spaces, so it read
  // "-052-12-10T02:00:00Z" as year -52, which format_utc_timestamp cannot print back in
  // this form (found by fuzz/fuzz_units).
  bool digits_only = text.size() == 20;
  for (size_t i = 0; digits_only && i < 19; ++i) {
    const bool separator = i == 4 || i == 7 || i == 10 || i == 13 || i == 16;
    digits_only = separator || is_digit(text[i]);
  }
  if (!digits_only ||
      std::sscanf(original.c_str(), "%4d-%2u-%2uT%2u:%2u:%2u%c", &y, &mo, &d, &h, &mi, &s, &z) !=
          7 ||
      z != 'Z') {
    return invalid_argument("bad timestamp '" + original + "': expected YYYY-MM-DDTHH:MM:SSZ");
  }
  const date::year_month_day ymd{date::year{y}, date::month{mo}, date::day{d}};
  if (!ymd.ok() || h > 23 || mi > 59 || s > 59) {
    return invalid_argument("bad timestamp '" + original + "': no such date or time");
  }
  return Timestamp(date::sys_days(ymd).time_since_epoch() + std::chrono::hours(h) +
                   std::chrono::minutes(mi) + std::chrono::seconds(s));
}

std::string format_utc_timestamp(Timestamp t) {
  return date::format("%Y-%m-%dT%H:%M:%SZ", std::chrono::time_point_cast<std::chrono::seconds>(t));
}

std::string format_bytes(uint64_t n) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(n);
  size_t u = 0;
  while (v >= 1024 && u + 1 < std::size(units)) {
    v /= 1024;
    ++u;
  }
  char out[32];
  std::snprintf(out, sizeof out, u == 0 ? "%.0f %s" : "%.1f %s", v, units[u]);
  return out;
}

}  // namespace drover
