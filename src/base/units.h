// Parsing and printing of the human units used in scenarios and plans:
// durations ("90s", "15m", "2h30m", "1d"), sizes ("48MB", "1.5GiB"), bit rates ("10Mbps"),
// times of day ("22:00") and weekday sets ("mon-fri", "sat,sun").
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/clock.h"
#include "base/result.h"

namespace drover {

inline constexpr uint64_t kKiB = 1024;
inline constexpr uint64_t kMiB = 1024 * kKiB;

// "1d2h", "15m", "90s", "250ms", "0". Each part is a non-negative integer and a unit.
Result<Duration> parse_duration(std::string_view text);
// "2h30m", "15m", "45s", "0s": the shortest exact form.
std::string format_duration(Duration d);

// "48MB" (10^6), "48MiB" (2^20), "1.5GB", "512KB", "100B" or a bare byte count.
Result<uint64_t> parse_bytes(std::string_view text);
// "512 B", "1.5 MiB", "3.0 GiB": a size for people to read.
std::string format_bytes(uint64_t n);

// Bits per second from "10Mbps", "256kbps", "1Gbps", "9600bps".
Result<uint64_t> parse_bitrate(std::string_view text);

// Minutes after midnight from "HH:MM" (00:00 to 24:00).
Result<int> parse_time_of_day(std::string_view text);
std::string format_time_of_day(int minutes);

// Weekday bit set (bit 0 = Monday ... bit 6 = Sunday) from "mon-fri", "sat,sun", "daily".
Result<uint8_t> parse_weekdays(std::string_view text);
std::string format_weekdays(uint8_t days);

// "2026-03-10T02:00:00Z" (UTC only).
Result<Timestamp> parse_utc_timestamp(std::string_view text);
std::string format_utc_timestamp(Timestamp t);

}  // namespace drover
