#include "base/system_memory.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

namespace drover {
namespace {

class SystemMemory : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("drover-mem-" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) +
            "-" + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
    src_.meminfo = (dir_ / "meminfo").string();
    src_.cgroup_max = (dir_ / "memory.max").string();
    src_.cgroup_current = (dir_ / "memory.current").string();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  void write(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

  std::filesystem::path dir_;
  MemorySources src_;
};

TEST_F(SystemMemory, ReadsMemAvailable) {
  write(src_.meminfo,
        "MemTotal:       24000000 kB\nMemFree:  100 kB\nMemAvailable:   2000000 kB\n");
  EXPECT_EQ(available_memory_bytes(src_), 2'000'000ull * 1024);
}

TEST_F(SystemMemory, ACgroupLimitBelowItWins) {
  write(src_.meminfo, "MemAvailable:   2000000 kB\n");
  write(src_.cgroup_max, "1073741824\n");
  write(src_.cgroup_current, "73741824\n");
  EXPECT_EQ(available_memory_bytes(src_), 1'000'000'000ull);
  write(src_.cgroup_max, "max\n");  // no limit
  EXPECT_EQ(available_memory_bytes(src_), 2'000'000ull * 1024);
  write(src_.cgroup_current, "2000000000\n");  // over its limit: nothing left
  write(src_.cgroup_max, "1073741824\n");
  EXPECT_EQ(available_memory_bytes(src_), 0u);
}

TEST_F(SystemMemory, NothingReadableIsUnknown) {
  EXPECT_FALSE(available_memory_bytes(src_).has_value());
  write(src_.meminfo, "garbage\n");
  EXPECT_FALSE(available_memory_bytes(src_).has_value());
}

}  // namespace
}  // namespace drover
