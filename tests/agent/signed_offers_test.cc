// SignedOffers: an offer is judged by the signed target it names, fetched through the whole
// TUF client workflow from the repository drover serve publishes — its size, hash, version,
// device type and hardware revision — and a network failure is told from a refusal.
#include "agent/signed_offers.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "base/memory_file_system.h"
#include "base/units.h"
#include "fleet/repository_keys.h"
#include "fleet/update_repository.h"
#include "security/crypto.h"

namespace drover::agent {
namespace {

const std::string kUrl = "https://server/tuf/metadata/";

// The repository's files by URL; `down` makes every fetch a network failure.
class Fetcher final : public security::tuf::MetadataFetcher {
 public:
  explicit Fetcher(std::unique_ptr<UpdateRepository>& repo) : repo_(repo) {}
  bool down = false;
  Status fetch_to(const std::string& url, const Sink& sink) override {
    if (down) return Error{ErrorCode::kIo, "connection refused"};
    auto bytes = repo_->metadata(url.substr(kUrl.size()));
    if (!bytes.ok()) return bytes.error();
    return sink(*bytes);
  }

 private:
  std::unique_ptr<UpdateRepository>& repo_;  // the fixture's, made after this
};

class SignedOffersTest : public ::testing::Test {
 protected:
  SignedOffersTest() {
    EXPECT_TRUE(create_repository(server_fs, "/tuf", "/offline", {}, clock.now()).ok());
    repo = UpdateRepository::open(server_fs, "/tuf", clock).value();
    Artifact a;
    a.name = "firmware";
    a.version = "2.0.0";
    a.device_types = {"ctl", "gateway"};
    a.hardware_revisions = {"rev-a"};
    a.depends = {{"bootloader", ">=2.0.0"}};
    a.size_bytes = 5000;
    a.sha256 = security::to_hex(security::sha256("image 2.0.0"));
    artifact = a;
    EXPECT_TRUE(repo->publish({a}).ok());
    EXPECT_TRUE(device_fs.write("/factory/root.json", *repo->metadata("1.root.json")).ok());
  }
  std::unique_ptr<SignedOffers> open(const std::string& type, const std::string& revision) {
    auto opened = SignedOffers::open({"/device/tuf", kUrl, "/factory/root.json", type, revision},
                                     fetcher, clock, device_fs);
    EXPECT_TRUE(opened.ok()) << opened.error().to_string();
    return opened.ok() ? std::move(*opened) : nullptr;
  }
  Offer offer() const {
    Offer o;
    o.rollout_id = "rollout-0001";
    o.component = "firmware";
    o.version = "2.0.0";
    o.size = artifact.size_bytes;
    o.sha256 = artifact.sha256;
    return o;
  }

  ManualClock clock{parse_utc_timestamp("2027-01-01T00:00:00Z").value()};
  MemoryFileSystem server_fs, device_fs;
  std::unique_ptr<UpdateRepository> repo;
  Artifact artifact;
  Inventory runs = {{"firmware", "1.0.0"}, {"bootloader", "2.1.0"}};
  Fetcher fetcher{repo};
};

TEST_F(SignedOffersTest, AnOfferIsTakenOnlyAsTheSignedTargetDescribesIt) {
  auto check = open("gateway", "rev-a");
  ASSERT_NE(check, nullptr);
  EXPECT_TRUE(check->check(offer(), runs).ok());
  EXPECT_TRUE(device_fs.read("/device/tuf/root.json").ok()) << "the factory root is trusted";

  auto refused = [&](Offer o, const std::string& why) {
    const Status st = check->check(o, runs);
    ASSERT_FALSE(st.ok()) << why;
    EXPECT_EQ(st.error().code, ErrorCode::kFailedPrecondition) << st.error().to_string();
    EXPECT_NE(st.error().message.find(why), std::string::npos) << st.error().message;
  };
  Offer o = offer();
  o.size += 1;
  refused(o, "the offer's image is 4.9 KiB");
  o = offer();
  o.sha256 = security::to_hex(security::sha256("another image"));
  refused(o, "the offer's image hash is not the signed target firmware/2.0.0's");
  o = offer();
  o.version = "2.0.1";
  refused(o, "no signed target firmware/2.0.1");
  o = offer();
  o.component = "bootloader";
  refused(o, "no signed target bootloader/2.0.0");
}

TEST_F(SignedOffersTest, ASignedDependencyTheDeviceDoesNotMeetRefusesIt) {
  auto check = open("ctl", "rev-a");
  ASSERT_NE(check, nullptr);
  for (const auto& [bootloader, says] : std::vector<std::pair<std::string, std::string>>{
           {"1.9.0", "runs 1.9.0"}, {"", "runs none"}}) {
    Inventory old = runs;
    if (bootloader.empty()) {
      old.erase("bootloader");
    } else {
      old["bootloader"] = bootloader;
    }
    const Status st = check->check(offer(), old);
    ASSERT_FALSE(st.ok()) << says;
    EXPECT_NE(st.error().message.find("needs bootloader >=2.0.0, and this device " + says),
              std::string::npos)
        << st.error().message;
  }
}

TEST_F(SignedOffersTest, ADeviceTheTargetIsNotBuiltForRefusesIt) {
  auto other_type = open("inverter", "rev-a");
  ASSERT_NE(other_type, nullptr);
  const Status type = other_type->check(offer(), runs);
  ASSERT_FALSE(type.ok());
  EXPECT_NE(type.error().message.find("is not built for device type inverter"), std::string::npos)
      << type.error().message;
}

TEST_F(SignedOffersTest, AnotherRevisionRefusesItToo) {
  auto other_revision = open("ctl", "rev-b");
  ASSERT_NE(other_revision, nullptr);
  const Status revision = other_revision->check(offer(), runs);
  ASSERT_FALSE(revision.ok());
  EXPECT_NE(revision.error().message.find("is not built for hardware revision rev-b"),
            std::string::npos)
      << revision.error().message;
}

TEST_F(SignedOffersTest, NetworkFailuresAreRetriedAndStaleMetadataIsRefused) {
  auto check = open("ctl", "rev-a");
  ASSERT_NE(check, nullptr);
  fetcher.down = true;
  EXPECT_EQ(check->check(offer(), runs).error().code, ErrorCode::kIo);
  fetcher.down = false;
  EXPECT_TRUE(check->check(offer(), runs).ok());
  // A server that stops signing: once the timestamp has expired, nothing is taken.
  clock.advance_to(clock.now() + days(2));
  const Status stale = check->check(offer(), runs);
  ASSERT_FALSE(stale.ok());
  EXPECT_EQ(stale.error().code, ErrorCode::kFailedPrecondition);
  EXPECT_NE(stale.error().message.find("the signed update metadata does not verify"),
            std::string::npos)
      << stale.error().message;
  ASSERT_TRUE(repo->refresh().ok());
  EXPECT_TRUE(check->check(offer(), runs).ok());
}

TEST_F(SignedOffersTest, AnInitialRootThatIsMissingOrForgedIsAClearError) {
  auto missing = SignedOffers::open({"/d1/tuf", kUrl, "/nowhere/root.json", "ctl", "rev-a"},
                                    fetcher, clock, device_fs);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("the initial root /nowhere/root.json"), std::string::npos)
      << missing.error().message;
  std::string forged = *repo->metadata("1.root.json");
  forged[forged.find("\"expires\":\"") + 11] = '3';  // 2028 -> 3028: the signature breaks
  ASSERT_TRUE(device_fs.write("/factory/forged.json", forged).ok());
  auto refused = SignedOffers::open({"/d2/tuf", kUrl, "/factory/forged.json", "ctl", "rev-a"},
                                    fetcher, clock, device_fs);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::kUnauthenticated) << refused.error().to_string();
  EXPECT_FALSE(device_fs.read("/d2/tuf/root.json").ok()) << "nothing trusted";
}

}  // namespace
}  // namespace drover::agent
