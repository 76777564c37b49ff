// SiteService: a valid site is stored whole and listed; an invalid one is refused with
// nothing written.
#include "fleet/site_service.h"

#include <gtest/gtest.h>

#include "../common/fleet_fixture.h"

namespace drover {
namespace {

const Site* named(const std::vector<Site>& sites, const std::string& name) {
  for (const Site& s : sites) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

TEST(SiteService, PutStoresTheSiteWholeAndReplacesIt) {
  testing::Fleet f;
  SiteService sites(f.store(), *f.engine);
  Site chicago{"chicago", "America/Chicago", {MaintenanceWindow{0x7f, 60, 240}}};
  ASSERT_TRUE(sites.put(chicago).ok());
  auto listed = sites.list();
  ASSERT_TRUE(listed.ok());
  ASSERT_NE(named(*listed, "chicago"), nullptr);
  EXPECT_EQ(*named(*listed, "chicago"), chicago);

  chicago.windows.clear();  // a put replaces the site: no windows now means always open
  ASSERT_TRUE(sites.put(chicago).ok());
  EXPECT_TRUE(named(*sites.list(), "chicago")->windows.empty());
}

TEST(SiteService, AnInvalidSiteIsRefusedAndNothingIsWritten) {
  testing::Fleet f;
  SiteService sites(f.store(), *f.engine);
  const size_t before = sites.list()->size();
  auto zone = sites.put(Site{"mars", "Mars/Olympus_Mons", {}});
  ASSERT_FALSE(zone.ok());
  EXPECT_EQ(zone.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(zone.error().message.find("Mars/Olympus_Mons"), std::string::npos);
  auto window = sites.put(Site{"north", "UTC", {MaintenanceWindow{0x7f, 24 * 60, 30}}});
  EXPECT_EQ(window.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(sites.list()->size(), before);
  EXPECT_EQ(named(*sites.list(), "mars"), nullptr);
}

}  // namespace
}  // namespace drover
