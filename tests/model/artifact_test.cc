#include "model/artifact.h"

#include <gtest/gtest.h>

#include <string>

namespace drover {
namespace {

const std::string kSha(64, 'a');

Artifact firmware() {
  Artifact a;
  a.name = "firmware";
  a.version = "4.2.1";
  a.device_types = {"bms-controller"};
  a.depends = {{"bootloader", ">=2.0.0"}};
  a.size_bytes = 48'000'000;
  a.sha256 = kSha;
  return a;
}

Device controller() {
  Device d;
  d.id = "dev-0001";
  d.device_type = "bms-controller";
  d.hardware_revision = "rev-b";
  d.set_installed("bootloader", "2.1.0");
  d.set_installed("firmware", "4.2.0");
  return d;
}

// Validates `a` and expects an kInvalidArgument whose message contains `why`.
void expect_invalid(Artifact a, const std::string& why) {
  const Status st = validate(a);
  ASSERT_FALSE(st.ok()) << why;
  EXPECT_EQ(st.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(st.error().message.find(why), std::string::npos) << st.error().message;
}

TEST(ArtifactValidate, AcceptsAndSorts) {
  Artifact a = firmware();
  a.device_types = {"gateway", "bms-controller"};
  a.hardware_revisions = {"rev-c", "rev-a"};
  a.depends = {{"kernel", ">=5.10.0"}, {"bootloader", ">=2.0.0, <3.0.0"}};
  ASSERT_TRUE(validate(a).ok());
  EXPECT_EQ(a.device_types, (std::vector<std::string>{"bms-controller", "gateway"}));
  EXPECT_EQ(a.hardware_revisions, (std::vector<std::string>{"rev-a", "rev-c"}));
  ASSERT_EQ(a.depends.size(), 2u);
  EXPECT_EQ(a.depends[0].component, "bootloader");
  EXPECT_EQ(a.depends[1].component, "kernel");
  EXPECT_EQ(a.key(), "firmware@4.2.1");
}

TEST(ArtifactValidate, RejectsBadSha) {
  Artifact a = firmware();
  a.sha256 = std::string(63, 'a');
  expect_invalid(a, "sha256 must be 64 lowercase hex digits");
  a.sha256 = std::string(65, 'a');
  expect_invalid(a, "sha256");
  a.sha256 = std::string(63, 'a') + "A";  // uppercase
  expect_invalid(a, "sha256");
  a.sha256 = std::string(63, 'a') + "g";
  expect_invalid(a, "sha256");
  a.sha256 = "";
  expect_invalid(a, "sha256");
}

TEST(ArtifactValidate, RejectsEmptyDeviceTypes) {
  Artifact a = firmware();
  a.device_types.clear();
  expect_invalid(a, "device_types must not be empty");
}

TEST(ArtifactValidate, RejectsSelfDependency) {
  Artifact a = firmware();
  a.depends.push_back({"firmware", ">=4.0.0"});
  expect_invalid(a, "cannot depend on its own component");
}

TEST(ArtifactValidate, RejectsOtherBadFields) {
  Artifact a = firmware();
  a.name = "";
  expect_invalid(a, "bad artifact name");

  a = firmware();
  a.version = "4.2";
  expect_invalid(a, "bad version '4.2'");

  a = firmware();
  a.device_types = {"x", "x"};
  expect_invalid(a, "duplicate device type");

  a = firmware();
  a.hardware_revisions = {"rev a"};
  expect_invalid(a, "hardware revision");

  a = firmware();
  a.depends = {{"bootloader", "~2.0"}};
  expect_invalid(a, "bad version constraint");

  a = firmware();
  a.depends = {{"", ">=1.0.0"}};
  expect_invalid(a, "bad dependency component");

  a = firmware();
  a.size_bytes = 0;
  expect_invalid(a, "size must be positive");
}

// ---------------------------------------------------------------- check_compatible

void expect_refused(const Artifact& a, const Device& d, const std::string& why) {
  const Status st = check_compatible(a, d);
  ASSERT_FALSE(st.ok()) << why;
  EXPECT_EQ(st.error().code, ErrorCode::kFailedPrecondition);
  EXPECT_NE(st.error().message.find(why), std::string::npos) << st.error().message;
  EXPECT_NE(st.error().message.find("firmware@4.2.1"), std::string::npos);
  EXPECT_NE(st.error().message.find(d.id), std::string::npos);
}

TEST(CheckCompatible, AcceptsAMatchingDevice) {
  Artifact a = firmware();
  ASSERT_TRUE(validate(a).ok());
  EXPECT_TRUE(check_compatible(a, controller()).ok());
}

TEST(CheckCompatible, DeviceType) {
  Artifact a = firmware();
  ASSERT_TRUE(validate(a).ok());
  Device d = controller();
  d.device_type = "gateway";
  expect_refused(a, d, "device type gateway not supported");
}

TEST(CheckCompatible, HardwareRevision) {
  Artifact a = firmware();
  a.hardware_revisions = {"rev-c", "rev-a"};
  ASSERT_TRUE(validate(a).ok());
  Device d = controller();  // rev-b
  expect_refused(a, d, "hardware revision rev-b not supported");
  d.hardware_revision = "rev-c";
  EXPECT_TRUE(check_compatible(a, d).ok());
}

TEST(CheckCompatible, DependencySatisfied) {
  Artifact a = firmware();
  a.depends = {{"bootloader", ">=2.0.0, <3.0.0"}};
  ASSERT_TRUE(validate(a).ok());
  Device d = controller();
  d.set_installed("bootloader", "2.9.9");
  EXPECT_TRUE(check_compatible(a, d).ok());
}

TEST(CheckCompatible, DependencyUnsatisfied) {
  Artifact a = firmware();
  a.depends = {{"bootloader", ">=2.0.0, <3.0.0"}};
  ASSERT_TRUE(validate(a).ok());
  Device d = controller();
  d.set_installed("bootloader", "1.9.0");
  expect_refused(a, d, "needs bootloader >=2.0.0, <3.0.0, has 1.9.0");
  d.set_installed("bootloader", "3.0.0");
  expect_refused(a, d, "has 3.0.0");
}

TEST(CheckCompatible, DependencyComponentMissing) {
  Artifact a = firmware();
  a.depends = {{"kernel", ">=5.0.0"}};
  ASSERT_TRUE(validate(a).ok());
  expect_refused(a, controller(), "needs kernel >=5.0.0, not installed");
}

TEST(CheckCompatible, UnparsableInstalledVersionIsRefused) {
  Artifact a = firmware();
  ASSERT_TRUE(validate(a).ok());
  Device d = controller();
  d.set_installed("bootloader", "garbage");
  expect_refused(a, d, "has garbage");
}

}  // namespace
}  // namespace drover
