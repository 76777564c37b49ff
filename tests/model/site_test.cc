#include "model/site.h"

#include <gtest/gtest.h>

#include <string>

#include "base/units.h"

namespace drover {
namespace {

Timestamp at(std::string_view utc) {
  auto t = parse_utc_timestamp(utc);
  EXPECT_TRUE(t.ok()) << utc;
  return t.ok() ? *t : Timestamp{};
}

constexpr uint8_t kMonFri = 0x1f;
constexpr uint8_t kFri = 1 << 4;

MaintenanceWindow window(uint8_t days, int start_minute, int length_minutes) {
  MaintenanceWindow w;
  w.days = days;
  w.start_minute = start_minute;
  w.length_minutes = length_minutes;
  return w;
}

Site site(std::string zone, std::vector<MaintenanceWindow> windows) {
  Site s;
  s.name = "bldg-017";
  s.time_zone = std::move(zone);
  s.windows = std::move(windows);
  EXPECT_TRUE(validate(s).ok());
  return s;
}

// ---------------------------------------------------------------- validate

TEST(SiteValidate, AcceptsAGoodSite) {
  EXPECT_TRUE(validate(site("America/New_York", {window(0x7f, 22 * 60, 8 * 60)})).ok());
  Site utc;
  utc.name = "depot-1";
  EXPECT_TRUE(validate(utc).ok());  // UTC and no windows by default
}

TEST(SiteValidate, RejectsUnknownZone) {
  Site s;
  s.name = "bldg-017";
  s.time_zone = "Mars/Olympus_Mons";
  const Status st = validate(s);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(st.error().message.find("unknown time zone 'Mars/Olympus_Mons'"), std::string::npos)
      << st.error().message;
  EXPECT_NE(st.error().message.find("bldg-017"), std::string::npos);
  EXPECT_FALSE(locate_time_zone("").ok());
  EXPECT_TRUE(locate_time_zone("Europe/Berlin").ok());
}

TEST(SiteValidate, RejectsBadNameAndWindows) {
  Site bad_name;
  bad_name.name = "-bldg";
  EXPECT_FALSE(validate(bad_name).ok());

  auto rejects = [](MaintenanceWindow w, const char* why) {
    Site s;
    s.name = "bldg-017";
    s.windows = {w};
    const Status st = validate(s);
    ASSERT_FALSE(st.ok()) << why;
    EXPECT_NE(st.error().message.find(why), std::string::npos) << st.error().message;
  };
  rejects(window(0, 0, 60), "no days");
  rejects(window(0x80 | 1, 0, 60), "no days");
  rejects(window(1, -1, 60), "start must be");
  rejects(window(1, 24 * 60, 60), "start must be");
  rejects(window(1, 0, 0), "length must be");
  rejects(window(1, 0, 7 * 24 * 60 + 1), "length must be");
  Site longest;
  longest.name = "bldg-017";
  longest.windows = {window(1, 23 * 60 + 59, 7 * 24 * 60)};
  EXPECT_TRUE(validate(longest).ok());
}

// ---------------------------------------------------------------- WindowSchedule

// New York, nightly 22:00 local for 8 hours (ends 06:00 the next morning).
class NightlyNewYork : public ::testing::Test {
 protected:
  WindowSchedule sched_{site("America/New_York", {window(0x7f, 22 * 60, 8 * 60)})};
};

TEST_F(NightlyNewYork, OpenAtNightClosedInTheDaySummer) {
  EXPECT_FALSE(sched_.always_open());
  EXPECT_TRUE(sched_.is_open(at("2026-07-15T03:00:00Z")));   // 23:00 EDT
  EXPECT_FALSE(sched_.is_open(at("2026-07-15T12:00:00Z")));  // 08:00 EDT
  EXPECT_FALSE(sched_.is_open(at("2026-07-15T01:59:59Z")));  // 21:59:59 EDT
  EXPECT_TRUE(sched_.is_open(at("2026-07-15T02:00:00Z")));   // 22:00 EDT: start is inclusive
}

TEST_F(NightlyNewYork, WindowCrossesMidnight) {
  EXPECT_TRUE(sched_.is_open(at("2026-07-15T04:00:00Z")));   // 00:00 EDT
  EXPECT_TRUE(sched_.is_open(at("2026-07-15T09:59:59Z")));   // 05:59:59 EDT
  EXPECT_FALSE(sched_.is_open(at("2026-07-15T10:00:00Z")));  // 06:00 EDT: end is exclusive
}

TEST_F(NightlyNewYork, FollowsStandardTimeInWinter) {
  EXPECT_FALSE(sched_.is_open(at("2026-01-15T02:30:00Z")));  // 21:30 EST
  EXPECT_TRUE(sched_.is_open(at("2026-01-15T03:00:00Z")));   // 22:00 EST
  EXPECT_TRUE(sched_.is_open(at("2026-01-15T10:59:00Z")));   // 05:59 EST
  EXPECT_FALSE(sched_.is_open(at("2026-01-15T11:00:00Z")));  // 06:00 EST
}

TEST_F(NightlyNewYork, NextOpen) {
  EXPECT_EQ(sched_.next_open(at("2026-07-15T12:00:00Z")), at("2026-07-16T02:00:00Z"));
  EXPECT_EQ(sched_.next_open(at("2026-07-15T10:00:00Z")), at("2026-07-16T02:00:00Z"));
  // Already open: now.
  EXPECT_EQ(sched_.next_open(at("2026-07-15T03:00:00Z")), at("2026-07-15T03:00:00Z"));
}

TEST_F(NightlyNewYork, NextClose) {
  EXPECT_EQ(sched_.next_close(at("2026-07-15T03:00:00Z")), at("2026-07-15T10:00:00Z"));
  EXPECT_EQ(sched_.next_close(at("2026-07-15T02:00:00Z")), at("2026-07-15T10:00:00Z"));
  // Already closed: now.
  EXPECT_EQ(sched_.next_close(at("2026-07-15T12:00:00Z")), at("2026-07-15T12:00:00Z"));
}

TEST(WindowSchedule, WeekdayMask) {
  // Monday to Friday, 09:00 for 8 hours, New York.
  const WindowSchedule sched(site("America/New_York", {window(kMonFri, 9 * 60, 8 * 60)}));
  EXPECT_TRUE(sched.is_open(at("2026-07-17T14:00:00Z")));   // Friday 10:00 EDT
  EXPECT_FALSE(sched.is_open(at("2026-07-18T14:00:00Z")));  // Saturday 10:00 EDT
  EXPECT_FALSE(sched.is_open(at("2026-07-19T14:00:00Z")));  // Sunday 10:00 EDT
  EXPECT_TRUE(sched.is_open(at("2026-07-20T14:00:00Z")));   // Monday 10:00 EDT
  // From Saturday the next opening is Monday 09:00 EDT.
  EXPECT_EQ(sched.next_open(at("2026-07-18T14:00:00Z")), at("2026-07-20T13:00:00Z"));
  EXPECT_EQ(sched.next_close(at("2026-07-17T14:00:00Z")), at("2026-07-17T21:00:00Z"));
}

TEST(WindowSchedule, DaysNameTheStartDayOfAWindowPastMidnight) {
  // Fridays 22:00 for 8 hours: open into Saturday morning, not on Saturday night.
  const WindowSchedule sched(site("America/New_York", {window(kFri, 22 * 60, 8 * 60)}));
  EXPECT_FALSE(sched.is_open(at("2026-07-18T01:59:00Z")));  // Friday 21:59 EDT
  EXPECT_TRUE(sched.is_open(at("2026-07-18T09:00:00Z")));   // Saturday 05:00 EDT
  EXPECT_FALSE(sched.is_open(at("2026-07-19T02:30:00Z")));  // Saturday 22:30 EDT
  EXPECT_FALSE(sched.is_open(at("2026-07-16T03:00:00Z")));  // Wednesday 23:00 EDT
  EXPECT_EQ(sched.next_open(at("2026-07-19T02:30:00Z")), at("2026-07-25T02:00:00Z"));
}

TEST(WindowSchedule, SpringForwardShortensTheWindow) {
  // 2026-03-08: US clocks jump from 02:00 EST to 03:00 EDT. A 01:00 local window "for 4h"
  // ends at 05:00 local wall-clock time, which is only 3 real hours later.
  const WindowSchedule sched(site("America/New_York", {window(0x7f, 60, 4 * 60)}));
  const Timestamp start = at("2026-03-08T06:00:00Z");  // 01:00 EST
  EXPECT_FALSE(sched.is_open(start - seconds(1)));
  EXPECT_TRUE(sched.is_open(start));
  EXPECT_TRUE(sched.is_open(at("2026-03-08T08:59:59Z")));   // 04:59:59 EDT
  EXPECT_FALSE(sched.is_open(at("2026-03-08T09:00:00Z")));  // 05:00 EDT
  EXPECT_EQ(sched.next_close(start), at("2026-03-08T09:00:00Z"));
  EXPECT_EQ(sched.next_close(start) - start, hours(3));

  // The day before it is the full four hours.
  const Timestamp before = at("2026-03-07T06:00:00Z");
  EXPECT_EQ(sched.next_close(before) - before, hours(4));
  // The day after, the window opens an hour earlier in UTC.
  EXPECT_EQ(sched.next_open(at("2026-03-08T12:00:00Z")), at("2026-03-09T05:00:00Z"));
}

TEST(WindowSchedule, FallBackLengthensTheWindow) {
  // 2026-11-01: 02:00 EDT becomes 01:00 EST. 01:00 (the first one) to 05:00 EST is 5 hours.
  const WindowSchedule sched(site("America/New_York", {window(0x7f, 60, 4 * 60)}));
  const Timestamp start = at("2026-11-01T05:00:00Z");  // 01:00 EDT
  EXPECT_EQ(sched.next_open(start - hours(1)), start);
  EXPECT_EQ(sched.next_close(start), at("2026-11-01T10:00:00Z"));
}

TEST(WindowSchedule, AlwaysOpenWithoutWindows) {
  const WindowSchedule sched(site("Asia/Tokyo", {}));
  const Timestamp t = at("2026-07-15T12:00:00Z");
  EXPECT_TRUE(sched.always_open());
  EXPECT_TRUE(sched.is_open(t));
  EXPECT_EQ(sched.next_open(t), t);
  EXPECT_EQ(sched.next_close(t), Timestamp::max());
}

TEST(WindowSchedule, BackToBackWindowsNeverClose) {
  // Every day from 00:00 for 24 hours: the windows touch, so the site never closes.
  const WindowSchedule sched(site("Europe/Berlin", {window(0x7f, 0, 24 * 60)}));
  EXPECT_FALSE(sched.always_open());
  EXPECT_TRUE(sched.is_open(at("2026-07-15T12:00:00Z")));
  EXPECT_EQ(sched.next_close(at("2026-07-15T12:00:00Z")), Timestamp::max());
}

TEST(WindowSchedule, OverlappingWindowsChain) {
  // 20:00-23:00 and 22:00-02:00 UTC overlap: one closing at 02:00.
  const WindowSchedule sched(
      site("UTC", {window(0x7f, 20 * 60, 3 * 60), window(0x7f, 22 * 60, 4 * 60)}));
  EXPECT_EQ(sched.next_close(at("2026-07-15T20:30:00Z")), at("2026-07-16T02:00:00Z"));
  EXPECT_FALSE(sched.is_open(at("2026-07-16T02:00:00Z")));
  EXPECT_EQ(sched.next_open(at("2026-07-16T02:00:00Z")), at("2026-07-16T20:00:00Z"));
}

}  // namespace
}  // namespace drover
