// Device configuration on the server (fleet/config_service.h): versions checked against the
// profile's envelope, the profile kept from refusing what devices are given, and check-ins
// answered with the configuration a device should run.
#include "fleet/config_service.h"

#include <gtest/gtest.h>

#include "../common/fleet_fixture.h"
#include "fleet/profile_service.h"
#include "model/codec.h"

namespace drover::testing {
namespace {

DeviceProfile ctl_profile(std::string_view envelope) {
  DeviceProfile p;
  p.device_type = "ctl";
  if (!envelope.empty()) {
    auto e = protocol::decode_config_envelope(envelope);
    EXPECT_TRUE(e.ok()) << e.error().to_string();
    if (e.ok()) p.config = *e;
  }
  return p;
}

constexpr std::string_view kEnvelope =
    R"({"fields": [{"name": "setpoint_c", "min": 10, "max": 28, "required": true},
                   {"name": "fan", "kind": "integer", "min": 0, "max": 5}]})";

struct Configs {
  Fleet f;
  ProfileService profiles{f.store()};
  ConfigService configs{f.store(), f.clock};
  Configs() {
    profiles.attach_configs(&configs);
    f.service->attach_configs(&configs);
  }
};

TEST(ConfigService, VersionsCountUpAreCheckedAgainstTheEnvelopeAndRefusalsWriteNothing) {
  Configs c;
  // No profile, then a profile without an envelope: nothing to check against.
  EXPECT_EQ(c.configs.put("ctl", R"({"setpoint_c": 20})", "ops", "").error().code,
            ErrorCode::kNotFound);
  ASSERT_TRUE(c.profiles.put(ctl_profile("")).ok());
  EXPECT_EQ(c.configs.put("ctl", R"({"setpoint_c": 20})", "ops", "").error().code,
            ErrorCode::kFailedPrecondition);
  ASSERT_TRUE(c.profiles.put(ctl_profile(kEnvelope)).ok());

  auto v1 = c.configs.put("ctl", R"({"setpoint_c": 20})", "ops", "first");
  ASSERT_TRUE(v1.ok()) << v1.error().to_string();
  EXPECT_EQ(v1->version, 1u);
  EXPECT_EQ(v1->author, "ops");
  EXPECT_EQ(v1->created_at, c.f.clock.now());
  EXPECT_EQ(v1->sha256, protocol::config_sha256(v1->values));
  // The same values again: the same version, nothing new written.
  auto same = c.configs.put("ctl", R"({"setpoint_c": 20.0})", "ops", "again");
  ASSERT_TRUE(same.ok());
  EXPECT_EQ(same->version, 1u);
  EXPECT_EQ(same->note, "first");
  auto bad = c.configs.put("ctl", R"({"setpoint_c": 35, "fan": 1})", "ops", "");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(bad.error().message,
            "outside the envelope of 'ctl': setpoint_c: 35.0 is above the envelope's maximum "
            "28.0");
  auto v2 = c.configs.put("ctl", R"({"setpoint_c": 21, "fan": 2})", "ops", "warmer");
  ASSERT_TRUE(v2.ok());
  EXPECT_EQ(v2->version, 2u);
  auto history = c.configs.history("ctl");
  ASSERT_TRUE(history.ok());
  ASSERT_EQ(history->size(), 2u);
  EXPECT_EQ((*history)[0], *v1);
  EXPECT_EQ((*history)[1], *v2);
  EXPECT_EQ(*c.configs.get("ctl", 1), *v1);
  EXPECT_EQ(c.configs.get("ctl", 9).error().code, ErrorCode::kNotFound);
  EXPECT_EQ(c.configs.target("ctl"), (ConfigTarget{2, v2->sha256}));
  EXPECT_FALSE(c.configs.target("meter").has_value());

  // What a device fetches: the newest with the envelope it was checked against.
  auto given = c.configs.for_device("ctl");
  ASSERT_TRUE(given.ok());
  EXPECT_EQ(given->version, 2u);
  EXPECT_EQ(given->sha256, v2->sha256);
  EXPECT_EQ(given->envelope, ctl_profile(kEnvelope).config);

  // A new service over the same store (a restart) knows the newest at once.
  ConfigService again(c.f.store(), c.f.clock);
  ASSERT_TRUE(again.load().ok());
  EXPECT_EQ(again.target("ctl"), (ConfigTarget{2, v2->sha256}));
}

TEST(ConfigService, AProfileWhoseEnvelopeRefusesWhatDevicesAreGivenIsRefused) {
  Configs c;
  ASSERT_TRUE(c.profiles.put(ctl_profile(kEnvelope)).ok());
  ASSERT_TRUE(c.configs.put("ctl", R"({"setpoint_c": 26, "fan": 4})", "ops", "").ok());
  // Narrower: 26 would be outside it.
  auto narrower = c.profiles.put(ctl_profile(
      R"({"fields": [{"name": "setpoint_c", "min": 10, "max": 24, "required": true},
                     {"name": "fan", "kind": "integer", "min": 0, "max": 5}]})"));
  ASSERT_FALSE(narrower.ok());
  EXPECT_EQ(narrower.error().code, ErrorCode::kFailedPrecondition);
  EXPECT_NE(narrower.error().message.find("setpoint_c: 26.0 is above"), std::string::npos)
      << narrower.error().message;
  // No envelope at all: the document's fields are no longer allowed.
  EXPECT_EQ(c.profiles.put(ctl_profile("")).error().code, ErrorCode::kFailedPrecondition);
  auto kept = c.profiles.get("ctl");
  ASSERT_TRUE(kept.ok());
  EXPECT_EQ(kept->config, ctl_profile(kEnvelope).config);  // nothing written
  // Without the service attached (the simulator's profiles), the same check holds.
  ProfileService plain(c.f.store());
  EXPECT_EQ(plain.put(ctl_profile("")).error().code, ErrorCode::kFailedPrecondition);
  // A wider one is fine.
  EXPECT_TRUE(c.profiles
                  .put(ctl_profile(R"({"fields": [{"name": "setpoint_c", "min": 5, "max": 30},
                                                  {"name": "fan", "kind": "integer"}]})"))
                  .ok());
}

TEST(ConfigService, ACheckInIsToldTheConfigurationOnlyWhenItRunsAnotherAndItsWordIsKept) {
  Configs c;
  c.f.add_devices(3, "rev-a");
  ASSERT_TRUE(c.profiles.put(ctl_profile(kEnvelope)).ok());
  auto v1 = c.configs.put("ctl", R"({"setpoint_c": 20})", "ops", "");
  ASSERT_TRUE(v1.ok());
  const auto check_in = [&](size_t k, const protocol::ConfigReport* report) {
    auto r = c.f.service->check_in(
        {c.f.ids[k], c.f.installed(c.f.ids[k]), UpdateState::kIdle, {}, false, report});
    EXPECT_TRUE(r.ok()) << r.error().to_string();
    return r.ok() ? r->config : std::nullopt;
  };
  const protocol::ConfigReport none{"", ""};
  const protocol::ConfigReport running{v1->sha256, ""};
  const protocol::ConfigReport refused{std::string(64, 'a'), "outside this device's envelope"};
  EXPECT_EQ(check_in(0, &none), (ConfigTarget{1, v1->sha256}));
  EXPECT_EQ(check_in(1, &running), std::nullopt);
  EXPECT_EQ(check_in(2, &refused), (ConfigTarget{1, v1->sha256}));
  // A device that says nothing of configuration (an agent without it) is told nothing.
  EXPECT_EQ(check_in(0, nullptr), std::nullopt);
  // What each said is on its record, and written: a restart still knows it.
  c.f.restart();
  const Device d2 = *c.f.service->device(c.f.ids[2]);
  EXPECT_EQ(d2.config_sha256, std::string(64, 'a'));
  EXPECT_EQ(d2.config_error, "outside this device's envelope");
  const DeviceService::ConfigTally t = c.f.service->config_tally("ctl", v1->sha256);
  EXPECT_EQ(t.in_sync, 1u);
  EXPECT_EQ(t.pending, 1u);
  EXPECT_EQ(t.failed, 1u);
  EXPECT_EQ(t.some_failed, std::vector<std::string>{c.f.ids[2]});
  EXPECT_EQ(t.some_pending, std::vector<std::string>{c.f.ids[0]});
  // A malformed hash is the device's error, refused with a reason; nothing changes.
  c.f.service->attach_configs(&c.configs);
  const protocol::ConfigReport malformed{"not-a-hash", ""};
  auto r = c.f.service->check_in(
      {c.f.ids[1], c.f.installed(c.f.ids[1]), UpdateState::kIdle, {}, false, &malformed});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(c.f.service->device(c.f.ids[1])->config_sha256, v1->sha256);
}

}  // namespace
}  // namespace drover::testing
