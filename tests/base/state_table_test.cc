#include "base/state_table.h"

#include <gtest/gtest.h>

#include <cstdint>

namespace drover {
namespace {

enum class Light : uint8_t { kOff, kOn, kBroken, kCount };
enum class Press : uint8_t { kSwitch, kHammer, kCount };

constexpr Transition<Light, Press> kRows[] = {
    {Light::kOff, Press::kSwitch, Light::kOn},
    {Light::kOn, Press::kSwitch, Light::kOff},
    {Light::kOn, Press::kHammer, Light::kBroken},
};
constexpr StateTable<Light, Press> kLights{kRows};

// Built at compile time: the lookups are constant expressions too.
static_assert(kLights.next(Light::kOff, Press::kSwitch) == Light::kOn);
static_assert(!kLights.next(Light::kBroken, Press::kSwitch).has_value());

TEST(StateTable, EveryRowIsFoundAndEveryOtherPairRefused) {
  int found = 0;
  for (size_t s = 0; s < static_cast<size_t>(Light::kCount); ++s) {
    for (size_t e = 0; e < static_cast<size_t>(Press::kCount); ++e) {
      const auto got = kLights.next(static_cast<Light>(s), static_cast<Press>(e));
      bool listed = false;
      for (const auto& r : kRows) {
        if (static_cast<size_t>(r.from) != s || static_cast<size_t>(r.event) != e) continue;
        listed = true;
        ASSERT_TRUE(got.has_value());
        EXPECT_EQ(*got, r.to);
      }
      if (!listed) {
        EXPECT_FALSE(got.has_value()) << s << "," << e;
      }
      found += got.has_value() ? 1 : 0;
    }
  }
  EXPECT_EQ(found, 3);
}

TEST(StateTable, ValuesOutsideTheEnumAreRefused) {
  EXPECT_FALSE(kLights.next(static_cast<Light>(7), Press::kSwitch).has_value());
  EXPECT_FALSE(kLights.next(Light::kOn, static_cast<Press>(9)).has_value());
  EXPECT_FALSE(kLights.next(Light::kCount, Press::kSwitch).has_value());
}

}  // namespace
}  // namespace drover
