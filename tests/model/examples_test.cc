// The example files that ship in examples/ (docs/quickstart.md) are documents the server
// takes: every plan and site parses and validates.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "model/codec.h"
#include "model/rollout.h"
#include "model/site.h"

namespace drover {
namespace {

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(Examples, EveryPlanAndSiteParses) {
  size_t plans = 0, sites = 0;
  for (const auto& entry : std::filesystem::directory_iterator(SOURCE_DIR "/examples")) {
    const std::string name = entry.path().filename().string();
    const std::string text = read_file(entry.path());
    if (name.rfind("plan", 0) == 0) {
      auto plan = plan_from_json(text);
      ASSERT_TRUE(plan.ok()) << name << ": " << plan.error().to_string();
      const Status valid = validate(*plan);
      EXPECT_TRUE(valid.ok()) << name << ": " << valid.error().to_string();
      ++plans;
    } else if (name.rfind("site", 0) == 0) {
      auto site = site_from_json(text);
      ASSERT_TRUE(site.ok()) << name << ": " << site.error().to_string();
      const Status valid = validate(*site);
      EXPECT_TRUE(valid.ok()) << name << ": " << valid.error().to_string();
      ++sites;
    }
  }
  EXPECT_GE(plans, 3u);
  EXPECT_GE(sites, 2u);
}

}  // namespace
}  // namespace drover
