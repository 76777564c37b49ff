#include "base/units.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace drover {
namespace {

// Asserts that `r` failed as kInvalidArgument and returns its message for further checks.
template <typename T>
std::string invalid(const Result<T>& r) {
  EXPECT_FALSE(r.ok());
  if (r.ok()) return {};
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
  return r.error().message;
}

// ---------------------------------------------------------------- durations

TEST(ParseDuration, CombinesParts) {
  auto d = parse_duration("1d2h30m");
  ASSERT_TRUE(d.ok()) << d.error().to_string();
  EXPECT_EQ(*d, hours(24) + hours(2) + minutes(30));
  EXPECT_EQ(d->count(), 95'400'000);
}

TEST(ParseDuration, SingleUnits) {
  EXPECT_EQ(parse_duration("250ms").value(), Duration(250));
  EXPECT_EQ(parse_duration("90s").value(), seconds(90));
  EXPECT_EQ(parse_duration("15m").value(), minutes(15));
  EXPECT_EQ(parse_duration("2h").value(), hours(2));
  EXPECT_EQ(parse_duration("1d").value(), hours(24));
  EXPECT_EQ(parse_duration("1m500ms").value(), Duration(60'500));
}

TEST(ParseDuration, ZeroForms) {
  EXPECT_EQ(parse_duration("0").value(), Duration(0));
  EXPECT_EQ(parse_duration("0s").value(), Duration(0));
  EXPECT_EQ(parse_duration("0h0m").value(), Duration(0));
}

TEST(ParseDuration, RejectsEmpty) {
  EXPECT_NE(invalid(parse_duration("")).find("empty"), std::string::npos);
}

TEST(ParseDuration, RejectsUnknownUnit) {
  const std::string msg = invalid(parse_duration("5x"));
  EXPECT_NE(msg.find("'5x'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("unit"), std::string::npos) << msg;
}

TEST(ParseDuration, RejectsUnitBeforeNumber) {
  const std::string msg = invalid(parse_duration("m5"));
  EXPECT_NE(msg.find("expected a number"), std::string::npos) << msg;
}

TEST(ParseDuration, RejectsMalformed) {
  for (const char* text : {"5", "-5m", "1.5h", " 5m", "5m ", "5 m", "5M", "h", "ms", "00", "1h-"}) {
    EXPECT_FALSE(parse_duration(text).ok()) << text;
  }
}

TEST(ParseDuration, RejectsOverflow) {
  EXPECT_NE(invalid(parse_duration("99999999999d")).find("too long"), std::string::npos);
  EXPECT_FALSE(parse_duration("100000000000000000000000000000ms").ok());
  // 400 digits do not fit a double at all.
  EXPECT_FALSE(parse_duration(std::string(400, '9') + "s").ok());
  // The limit is 10^15 ms, inclusive.
  EXPECT_EQ(parse_duration("1000000000000000ms").value(), Duration(1'000'000'000'000'000));
  EXPECT_FALSE(parse_duration("1000000000000001ms").ok());
}

TEST(FormatDuration, ShortestExactForm) {
  EXPECT_EQ(format_duration(Duration(0)), "0s");
  EXPECT_EQ(format_duration(hours(2) + minutes(30)), "2h30m");
  EXPECT_EQ(format_duration(seconds(90)), "1m30s");
  EXPECT_EQ(format_duration(Duration(250)), "250ms");
  EXPECT_EQ(format_duration(hours(24)), "1d");
  EXPECT_EQ(format_duration(hours(26) + Duration(5)), "1d2h5ms");
  EXPECT_EQ(format_duration(-minutes(15)), "-15m");
}

TEST(FormatDuration, RoundTripsThroughParse) {
  const std::vector<Duration> cases{Duration(0),
                                    Duration(1),
                                    Duration(999),
                                    seconds(1),
                                    seconds(59),
                                    minutes(1) + Duration(1),
                                    hours(23) + minutes(59) + seconds(59) + Duration(999),
                                    hours(24 * 90),
                                    Duration(123'456'789'012),
                                    Duration(1'000'000'000'000'000)};
  for (Duration d : cases) {
    const std::string text = format_duration(d);
    auto back = parse_duration(text);
    ASSERT_TRUE(back.ok()) << text << ": " << back.error().to_string();
    EXPECT_EQ(*back, d) << text;
  }
  for (const char* text : {"1d2h30m", "250ms", "45s", "2h30m", "3d1ms"}) {
    EXPECT_EQ(format_duration(parse_duration(text).value()), text);
  }
}

// ---------------------------------------------------------------- sizes

TEST(ParseBytes, DecimalAndBinaryUnits) {
  EXPECT_EQ(parse_bytes("48MB").value(), 48'000'000u);
  EXPECT_EQ(parse_bytes("48MiB").value(), 48u * 1024 * 1024);
  EXPECT_EQ(parse_bytes("512KB").value(), 512'000u);
  EXPECT_EQ(parse_bytes("512KiB").value(), 512u * 1024);
  EXPECT_EQ(parse_bytes("2GB").value(), 2'000'000'000u);
  EXPECT_EQ(parse_bytes("2GiB").value(), 2ull * 1024 * 1024 * 1024);
  EXPECT_EQ(parse_bytes("100B").value(), 100u);
  EXPECT_EQ(parse_bytes("1234").value(), 1234u);
}

TEST(ParseBytes, UnitsAreCaseInsensitive) {
  EXPECT_EQ(parse_bytes("48mb").value(), 48'000'000u);
  EXPECT_EQ(parse_bytes("1kib").value(), 1024u);
}

TEST(ParseBytes, Decimals) {
  EXPECT_EQ(parse_bytes("1.5GB").value(), 1'500'000'000u);
  EXPECT_EQ(parse_bytes("1.5GiB").value(), 1'610'612'736u);
  EXPECT_EQ(parse_bytes("0.5KiB").value(), 512u);
  EXPECT_EQ(parse_bytes("2.").value(), 2u);
  EXPECT_EQ(parse_bytes("1.4B").value(), 1u);  // rounded to whole bytes
}

TEST(ParseBytes, RejectsBadUnitsAndNumbers) {
  const std::string msg = invalid(parse_bytes("12XB"));
  EXPECT_NE(msg.find("unit must be"), std::string::npos) << msg;
  for (const char* text :
       {"", "MB", ".", ".MB", "-1MB", "1.2.3MB", "2 MB", "1e3", "12Mb/s", "1TB"}) {
    EXPECT_FALSE(parse_bytes(text).ok()) << text;
  }
}

TEST(ParseBytes, RejectsTooLarge) {
  EXPECT_EQ(parse_bytes("1000000GB").value(), 1'000'000'000'000'000u);
  EXPECT_NE(invalid(parse_bytes("2000000GB")).find("too large"), std::string::npos);
}

// ---------------------------------------------------------------- bit rates

TEST(ParseBitrate, Units) {
  EXPECT_EQ(parse_bitrate("10Mbps").value(), 10'000'000u);
  EXPECT_EQ(parse_bitrate("256kbps").value(), 256'000u);
  EXPECT_EQ(parse_bitrate("1Gbps").value(), 1'000'000'000u);
  EXPECT_EQ(parse_bitrate("9600bps").value(), 9600u);
  EXPECT_EQ(parse_bitrate("1.5Mbps").value(), 1'500'000u);
  EXPECT_EQ(parse_bitrate("2MBPS").value(), 2'000'000u);
}

TEST(ParseBitrate, RejectsBadInput) {
  for (const char* text : {"", "10", "10MB", "Mbps", "10 Mbps", "-1bps", "10Mbit"}) {
    EXPECT_FALSE(parse_bitrate(text).ok()) << text;
  }
}

TEST(ParseBitrate, RejectsOutOfRange) {
  EXPECT_NE(invalid(parse_bitrate("0bps")).find("out of range"), std::string::npos);
  EXPECT_FALSE(parse_bitrate("0.5bps").ok());
  EXPECT_EQ(parse_bitrate("1000Gbps").value(), 1'000'000'000'000u);
  EXPECT_FALSE(parse_bitrate("1001Gbps").ok());
}

// ---------------------------------------------------------------- times of day

TEST(ParseTimeOfDay, Valid) {
  EXPECT_EQ(parse_time_of_day("00:00").value(), 0);
  EXPECT_EQ(parse_time_of_day("06:05").value(), 6 * 60 + 5);
  EXPECT_EQ(parse_time_of_day("22:00").value(), 22 * 60);
  EXPECT_EQ(parse_time_of_day("23:59").value(), 23 * 60 + 59);
  EXPECT_EQ(parse_time_of_day("24:00").value(), 24 * 60);  // end of day
}

TEST(ParseTimeOfDay, RejectsOutOfRange) {
  EXPECT_NE(invalid(parse_time_of_day("24:01")).find("out of range"), std::string::npos);
  EXPECT_FALSE(parse_time_of_day("25:00").ok());
  EXPECT_FALSE(parse_time_of_day("12:60").ok());
}

TEST(ParseTimeOfDay, RejectsMalformed) {
  for (const char* text :
       {"", "7:00", "07:0", "0700", "07:00:00", "ab:cd", "07-00", " 7:00", "+7:00"}) {
    EXPECT_FALSE(parse_time_of_day(text).ok()) << text;
  }
}

TEST(FormatTimeOfDay, PadsAndRoundTrips) {
  EXPECT_EQ(format_time_of_day(0), "00:00");
  EXPECT_EQ(format_time_of_day(5), "00:05");
  EXPECT_EQ(format_time_of_day(22 * 60), "22:00");
  EXPECT_EQ(format_time_of_day(24 * 60), "24:00");
  for (int m = 0; m <= 24 * 60; m += 7) {
    EXPECT_EQ(parse_time_of_day(format_time_of_day(m)).value(), m);
  }
}

// ---------------------------------------------------------------- weekdays

constexpr uint8_t kMon = 1 << 0, kTue = 1 << 1, kWed = 1 << 2, kThu = 1 << 3, kFri = 1 << 4,
                  kSat = 1 << 5, kSun = 1 << 6;

TEST(ParseWeekdays, RangesListsAndDaily) {
  EXPECT_EQ(parse_weekdays("mon-fri").value(), kMon | kTue | kWed | kThu | kFri);
  EXPECT_EQ(parse_weekdays("sat,sun").value(), kSat | kSun);
  EXPECT_EQ(parse_weekdays("wed").value(), kWed);
  EXPECT_EQ(parse_weekdays("mon,wed-thu,sun").value(), kMon | kWed | kThu | kSun);
  EXPECT_EQ(parse_weekdays("daily").value(), 0x7f);
  EXPECT_EQ(parse_weekdays("all").value(), 0x7f);
  EXPECT_EQ(parse_weekdays("Sat,SUN").value(), kSat | kSun);
}

TEST(ParseWeekdays, RangeWrapsTheWeek) {
  EXPECT_EQ(parse_weekdays("fri-mon").value(), kFri | kSat | kSun | kMon);
  EXPECT_EQ(parse_weekdays("sun-tue").value(), kSun | kMon | kTue);
  EXPECT_EQ(parse_weekdays("tue-mon").value(), 0x7f);
}

TEST(ParseWeekdays, RejectsBadNames) {
  const std::string msg = invalid(parse_weekdays("funday"));
  EXPECT_NE(msg.find("'funday'"), std::string::npos) << msg;
  for (const char* text : {"", "monday", "mon-", "-fri", "mon,,tue", "mon-fri-sun", "mon fri", ",",
                           "mon,", "sat,sun,"}) {
    EXPECT_FALSE(parse_weekdays(text).ok()) << text;
  }
}

TEST(FormatWeekdays, ListsDaysOrCollapsesToDaily) {
  EXPECT_EQ(format_weekdays(kMon | kTue | kWed | kThu | kFri), "mon,tue,wed,thu,fri");
  EXPECT_EQ(format_weekdays(kSat | kSun), "sat,sun");
  EXPECT_EQ(format_weekdays(0x7f), "daily");
  for (unsigned days = 1; days < 0x80; ++days) {
    const auto d = static_cast<uint8_t>(days);
    EXPECT_EQ(parse_weekdays(format_weekdays(d)).value(), d) << days;
  }
}

// ---------------------------------------------------------------- timestamps

TEST(ParseUtcTimestamp, Valid) {
  EXPECT_EQ(epoch_seconds(parse_utc_timestamp("1970-01-01T00:00:00Z").value()), 0);
  EXPECT_EQ(epoch_seconds(parse_utc_timestamp("2026-03-10T02:00:00Z").value()), 1'773'108'000);
  EXPECT_EQ(epoch_seconds(parse_utc_timestamp("2024-02-29T23:59:59Z").value()), 1'709'251'199);
}

TEST(ParseUtcTimestamp, RejectsImpossibleDates) {
  EXPECT_NE(invalid(parse_utc_timestamp("2026-02-30T00:00:00Z")).find("no such date"),
            std::string::npos);
  EXPECT_FALSE(parse_utc_timestamp("2026-02-29T00:00:00Z").ok());  // 2026 is not a leap year
  EXPECT_FALSE(parse_utc_timestamp("2026-13-01T00:00:00Z").ok());
  EXPECT_FALSE(parse_utc_timestamp("2026-00-10T00:00:00Z").ok());
  EXPECT_FALSE(parse_utc_timestamp("2026-04-31T00:00:00Z").ok());
  EXPECT_FALSE(parse_utc_timestamp("2026-03-10T24:00:00Z").ok());
  EXPECT_FALSE(parse_utc_timestamp("2026-03-10T23:60:00Z").ok());
  EXPECT_FALSE(parse_utc_timestamp("2026-03-10T23:59:60Z").ok());
}

TEST(ParseUtcTimestamp, RejectsOtherFormats) {
  for (const char* text : {"", "2026-03-10", "2026-03-10T02:00:00", "2026-03-10 02:00:00Z",
                           "2026-03-10T02:00:00+01:00", "2026-03-10T02:00:00.000Z",
                           "2026-03-10T02:00:00z", "26-03-10T02:00:00Z"}) {
    EXPECT_FALSE(parse_utc_timestamp(text).ok()) << text;
  }
}

// Regression: sscanf took signs and spaces, so "-052-..." parsed as year -52 and did not
// survive format_utc_timestamp (found by fuzz/fuzz_units).
TEST(ParseUtcTimestamp, RejectsSignsAndSpacesInFields) {
  for (const char* text : {"-052-12-10T02:00:00Z", "+026-03-10T02:00:00Z", " 026-03-10T02:00:00Z",
                           "2026-+3-10T02:00:00Z", "2026-03- 1T02:00:00Z", "2026-03-10T-1:00:00Z",
                           "2026-03-10T02:+0:00Z", "2026-03-10T02:00: 0Z"}) {
    EXPECT_FALSE(parse_utc_timestamp(text).ok()) << text;
  }
  EXPECT_TRUE(parse_utc_timestamp("0000-01-01T00:00:00Z").ok());
}

TEST(FormatUtcTimestamp, RoundTrips) {
  for (const char* text : {"1970-01-01T00:00:00Z", "2026-03-10T02:00:00Z", "2024-02-29T23:59:59Z",
                           "2038-01-19T03:14:08Z", "1999-12-31T23:59:59Z"}) {
    auto t = parse_utc_timestamp(text);
    ASSERT_TRUE(t.ok()) << text;
    EXPECT_EQ(format_utc_timestamp(*t), text);
  }
  // Milliseconds are dropped, not rounded.
  EXPECT_EQ(format_utc_timestamp(Timestamp(seconds(1'773'108'000) + Duration(999))),
            "2026-03-10T02:00:00Z");
}

}  // namespace
}  // namespace drover
