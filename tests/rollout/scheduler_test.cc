#include "rollout/scheduler.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "base/units.h"

namespace drover {
namespace {

Timestamp at(std::string_view utc) {
  auto t = parse_utc_timestamp(utc);
  EXPECT_TRUE(t.ok()) << utc;
  return t.ok() ? *t : Timestamp{};
}

MaintenanceWindow window(uint8_t days, int start_minute, int length_minutes) {
  MaintenanceWindow w;
  w.days = days;
  w.start_minute = start_minute;
  w.length_minutes = length_minutes;
  return w;
}

Site site(std::string name, std::string zone, std::vector<MaintenanceWindow> windows) {
  Site s;
  s.name = std::move(name);
  s.time_zone = std::move(zone);
  s.windows = std::move(windows);
  EXPECT_TRUE(validate(s).ok()) << s.name;
  return s;
}

constexpr uint8_t kEveryDay = 0x7f;

// ---------------------------------------------------------------- WindowCache

TEST(WindowCache, AnUnknownSiteIsUnconstrained) {
  WindowCache cache;
  const Timestamp t = at("2026-07-15T12:00:00Z");
  EXPECT_FALSE(cache.has("nowhere"));
  EXPECT_EQ(cache.open_if_known("nowhere", t), std::nullopt);
  EXPECT_TRUE(cache.is_open("nowhere", t));
  EXPECT_EQ(cache.next_open("nowhere", t), t);
  EXPECT_EQ(cache.open_until("nowhere", t), Timestamp::max());

  // Knowing other sites changes nothing for it, and it is not registered by being asked.
  cache.put(site("closed-now", "UTC", {window(kEveryDay, 0, 60)}));
  EXPECT_FALSE(cache.has("nowhere"));
  EXPECT_EQ(cache.open_if_known("nowhere", t), std::nullopt);
  EXPECT_EQ(cache.open_until("nowhere", t), Timestamp::max());
  EXPECT_EQ(cache.next_open("nowhere", t), t);
  // A name that is a prefix of a known one is still unknown.
  EXPECT_EQ(cache.open_if_known("closed", t), std::nullopt);
}

TEST(WindowCache, AKnownSiteAnswersFromItsWindows) {
  WindowCache cache;
  cache.put(site("utc-night", "UTC", {window(kEveryDay, 0, 60)}));  // 00:00-01:00 UTC
  cache.put(site("anytime", "Asia/Tokyo", {}));
  const Timestamp noon = at("2026-07-15T12:00:00Z");
  EXPECT_TRUE(cache.has("utc-night"));
  EXPECT_EQ(cache.open_if_known("utc-night", noon), std::optional<bool>(false));
  EXPECT_FALSE(cache.is_open("utc-night", noon));
  EXPECT_EQ(cache.next_open("utc-night", noon), at("2026-07-16T00:00:00Z"));
  EXPECT_EQ(cache.open_until("utc-night", noon), noon);  // closed: t itself

  EXPECT_EQ(cache.open_if_known("anytime", noon), std::optional<bool>(true));
  EXPECT_EQ(cache.next_open("anytime", noon), noon);
  EXPECT_EQ(cache.open_until("anytime", noon), Timestamp::max());
}

TEST(WindowCache, ReplacingASiteDropsTheStateCachedForTheOldSchedule) {
  WindowCache cache;
  const Timestamp t = at("2026-07-15T12:30:00Z");
  // Open 12:00-14:00 UTC: the cache learns "open until 14:00".
  cache.put(site("depot", "UTC", {window(kEveryDay, 12 * 60, 120)}));
  ASSERT_EQ(cache.open_if_known("depot", t), std::optional<bool>(true));
  ASSERT_EQ(cache.open_until("depot", t), at("2026-07-15T14:00:00Z"));

  // Now 20:00-21:00 UTC only: closed at the same instant, inside the old cached interval.
  cache.put(site("depot", "UTC", {window(kEveryDay, 20 * 60, 60)}));
  EXPECT_TRUE(cache.has("depot"));
  EXPECT_EQ(cache.open_if_known("depot", t), std::optional<bool>(false));
  EXPECT_FALSE(cache.is_open("depot", t + minutes(1)));
  EXPECT_EQ(cache.next_open("depot", t), at("2026-07-15T20:00:00Z"));
  EXPECT_EQ(cache.open_until("depot", t), t);

  // And back the other way: the cached "closed until 20:00" must not survive either.
  cache.put(site("depot", "UTC", {window(kEveryDay, 12 * 60, 60)}));  // 12:00-13:00
  EXPECT_EQ(cache.open_if_known("depot", t), std::optional<bool>(true));
  EXPECT_EQ(cache.open_until("depot", t), at("2026-07-15T13:00:00Z"));
  EXPECT_EQ(cache.next_open("depot", t), t);

  // Replaced by an always-open schedule.
  cache.put(site("depot", "UTC", {}));
  EXPECT_EQ(cache.open_if_known("depot", at("2026-07-15T18:00:00Z")), std::optional<bool>(true));
  EXPECT_EQ(cache.open_until("depot", t), Timestamp::max());

  // Replaced by a closed schedule again, after having been always open.
  cache.put(site("depot", "Europe/Berlin", {window(kEveryDay, 2 * 60, 60)}));  // 00:00Z-01:00Z
  EXPECT_EQ(cache.open_if_known("depot", t), std::optional<bool>(false));
  EXPECT_EQ(cache.next_open("depot", t), at("2026-07-16T00:00:00Z"));
}

TEST(WindowCache, ReplacingOneSiteLeavesTheOthersAlone) {
  WindowCache cache;
  const Timestamp t = at("2026-07-15T12:30:00Z");
  cache.put(site("a", "UTC", {window(kEveryDay, 12 * 60, 60)}));  // open at t
  cache.put(site("b", "UTC", {window(kEveryDay, 20 * 60, 60)}));  // closed at t
  ASSERT_EQ(cache.open_if_known("a", t), std::optional<bool>(true));
  ASSERT_EQ(cache.open_if_known("b", t), std::optional<bool>(false));
  cache.put(site("a", "UTC", {window(kEveryDay, 20 * 60, 60)}));
  cache.put(site("b", "UTC", {window(kEveryDay, 12 * 60, 60)}));
  EXPECT_EQ(cache.open_if_known("a", t), std::optional<bool>(false));
  EXPECT_EQ(cache.open_if_known("b", t), std::optional<bool>(true));
  EXPECT_EQ(cache.open_until("b", t), at("2026-07-15T13:00:00Z"));
  EXPECT_EQ(cache.next_open("a", t), at("2026-07-15T20:00:00Z"));
}

TEST(WindowCache, ManySitesEachKeepTheirOwnState) {
  // Site i opens daily at 00:00 + i minutes UTC for one minute: at any minute of the first
  // 1000 of the day exactly one site is open.
  constexpr int kSites = 1000;
  auto name = [](int i) { return "site-" + std::to_string(i); };
  WindowCache cache;
  for (int i = 0; i < kSites; ++i) cache.put(site(name(i), "UTC", {window(kEveryDay, i, 1)}));
  const Timestamp midnight = at("2026-07-15T00:00:00Z");
  for (int i = 0; i < kSites; ++i) ASSERT_TRUE(cache.has(name(i))) << i;
  EXPECT_FALSE(cache.has(name(kSites)));

  // Every site's state cached at one instant, then each asked about its own minute.
  const Timestamp probe = midnight + minutes(500) + seconds(30);
  for (int i = 0; i < kSites; ++i) {
    ASSERT_EQ(cache.open_if_known(name(i), probe), std::optional<bool>(i == 500)) << i;
  }
  for (int i = 0; i < kSites; ++i) {
    const Timestamp opens = midnight + minutes(i);
    EXPECT_EQ(cache.next_open(name(i), probe),
              i == 500 ? probe : (i < 500 ? opens + hours(24) : opens))
        << i;
    EXPECT_EQ(cache.open_if_known(name(i), opens + seconds(30)), std::optional<bool>(true)) << i;
    EXPECT_EQ(cache.open_until(name(i), opens), opens + minutes(1)) << i;
    EXPECT_EQ(cache.open_if_known(name(i), opens + minutes(1)), std::optional<bool>(false)) << i;
  }
  // Backwards in time, after each site cached "closed from the end of its minute".
  for (int i = 0; i < kSites; ++i) {
    EXPECT_EQ(cache.open_if_known(name(i), midnight + minutes(i)), std::optional<bool>(true)) << i;
  }
}

// New York, nightly 22:00 local for 8 hours: 02:00Z-10:00Z in July (EDT).
class WindowCacheNewYork : public ::testing::Test {
 protected:
  void SetUp() override {
    cache_.put(site("nyc", "America/New_York", {window(kEveryDay, 22 * 60, 8 * 60)}));
  }
  WindowCache cache_;
};

TEST_F(WindowCacheNewYork, OpenUntilAndNextOpenAtTheEdges) {
  const Timestamp opens = at("2026-07-15T02:00:00Z");   // 22:00 EDT
  const Timestamp closes = at("2026-07-15T10:00:00Z");  // 06:00 EDT
  // One second before opening: closed, opening at 22:00 local.
  EXPECT_EQ(cache_.open_if_known("nyc", opens - seconds(1)), std::optional<bool>(false));
  EXPECT_EQ(cache_.open_until("nyc", opens - seconds(1)), opens - seconds(1));
  EXPECT_EQ(cache_.next_open("nyc", opens - seconds(1)), opens);
  // The opening instant is inside.
  EXPECT_EQ(cache_.open_if_known("nyc", opens), std::optional<bool>(true));
  EXPECT_EQ(cache_.open_until("nyc", opens), closes);
  EXPECT_EQ(cache_.next_open("nyc", opens), opens);
  // The last second inside.
  EXPECT_EQ(cache_.open_until("nyc", closes - seconds(1)), closes);
  // The closing instant is outside; the next opening is the next evening.
  EXPECT_EQ(cache_.open_if_known("nyc", closes), std::optional<bool>(false));
  EXPECT_EQ(cache_.open_until("nyc", closes), closes);
  EXPECT_EQ(cache_.next_open("nyc", closes), at("2026-07-16T02:00:00Z"));
}

TEST_F(WindowCacheNewYork, AnswersStayRightWhenAskedOutOfOrder) {
  // The cache holds one interval per site; asking before, inside and after it in any order
  // must give the schedule's answer every time.
  const Timestamp opens = at("2026-07-15T02:00:00Z");
  const Timestamp closes = at("2026-07-15T10:00:00Z");
  EXPECT_EQ(cache_.open_until("nyc", at("2026-07-15T03:00:00Z")), closes);  // caches [03:00, 10:00)
  EXPECT_EQ(cache_.open_until("nyc", opens), closes);                       // before valid_from
  EXPECT_EQ(cache_.open_if_known("nyc", opens - seconds(1)), std::optional<bool>(false));
  EXPECT_EQ(cache_.next_open("nyc", at("2026-07-14T12:00:00Z")), opens);  // a day back
  EXPECT_EQ(cache_.open_if_known("nyc", closes), std::optional<bool>(false));
  EXPECT_EQ(cache_.open_if_known("nyc", closes - seconds(1)), std::optional<bool>(true));
  EXPECT_EQ(cache_.next_open("nyc", at("2026-07-15T12:00:00Z")), at("2026-07-16T02:00:00Z"));
  EXPECT_EQ(cache_.open_if_known("nyc", at("2026-07-16T02:00:00Z")), std::optional<bool>(true));
  EXPECT_EQ(cache_.open_until("nyc", at("2026-07-16T02:00:00Z")), at("2026-07-16T10:00:00Z"));
}

TEST_F(WindowCacheNewYork, FollowsStandardTimeInWinter) {
  // 22:00 EST is 03:00Z; 06:00 EST is 11:00Z.
  EXPECT_EQ(cache_.next_open("nyc", at("2026-01-15T02:30:00Z")), at("2026-01-15T03:00:00Z"));
  EXPECT_EQ(cache_.open_until("nyc", at("2026-01-15T03:00:00Z")), at("2026-01-15T11:00:00Z"));
  EXPECT_EQ(cache_.open_if_known("nyc", at("2026-01-15T02:59:59Z")), std::optional<bool>(false));
}

TEST(WindowCache, DaylightSavingChangeMovesTheEdges) {
  // 2026-03-08 US spring forward: a 01:00 local window "for 4h" ends at 05:00 EDT, three
  // real hours after it opened at 01:00 EST.
  WindowCache cache;
  cache.put(site("nyc", "America/New_York", {window(kEveryDay, 60, 4 * 60)}));
  const Timestamp opens = at("2026-03-08T06:00:00Z");
  EXPECT_EQ(cache.next_open("nyc", opens - hours(2)), opens);
  EXPECT_EQ(cache.open_until("nyc", opens), at("2026-03-08T09:00:00Z"));
  EXPECT_EQ(cache.open_if_known("nyc", at("2026-03-08T09:00:00Z")), std::optional<bool>(false));
  // The day after, it opens an hour earlier in UTC.
  EXPECT_EQ(cache.next_open("nyc", at("2026-03-08T12:00:00Z")), at("2026-03-09T05:00:00Z"));
}

TEST(WindowCache, HalfHourOffsetZone) {
  // Kolkata is UTC+05:30: 01:00-03:00 local is 19:30Z-21:30Z the day before.
  WindowCache cache;
  cache.put(site("pune", "Asia/Kolkata", {window(kEveryDay, 60, 120)}));
  EXPECT_EQ(cache.next_open("pune", at("2026-07-15T12:00:00Z")), at("2026-07-15T19:30:00Z"));
  EXPECT_EQ(cache.open_if_known("pune", at("2026-07-15T19:29:59Z")), std::optional<bool>(false));
  EXPECT_EQ(cache.open_until("pune", at("2026-07-15T19:30:00Z")), at("2026-07-15T21:30:00Z"));
  EXPECT_EQ(cache.open_if_known("pune", at("2026-07-15T21:30:00Z")), std::optional<bool>(false));
}

TEST(WindowCache, OpenUntilFollowsBackToBackWindows) {
  WindowCache cache;
  // 20:00-22:00 and 22:00-23:00 UTC touch: one opening, closing at 23:00.
  cache.put(
      site("chain", "UTC", {window(kEveryDay, 20 * 60, 120), window(kEveryDay, 22 * 60, 60)}));
  EXPECT_EQ(cache.open_until("chain", at("2026-07-15T21:00:00Z")), at("2026-07-15T23:00:00Z"));
  // Berlin all day, every day: never closes, though it has windows.
  cache.put(site("berlin", "Europe/Berlin", {window(kEveryDay, 0, 24 * 60)}));
  const Timestamp t = at("2026-07-15T12:00:00Z");
  EXPECT_EQ(cache.open_if_known("berlin", t), std::optional<bool>(true));
  EXPECT_EQ(cache.open_until("berlin", t), Timestamp::max());
  EXPECT_EQ(cache.next_open("berlin", t + hours(24 * 30)), t + hours(24 * 30));
}

}  // namespace
}  // namespace drover
