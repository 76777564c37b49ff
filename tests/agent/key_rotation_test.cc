// The device's key rotation (the remote "rotate_key", a re-enrollment under the same id)
// against the real device API on loopback: the server holds the new key and the old one no
// longer logs in; and the power cut at every file operation of a rotation, after which the
// device, started again from what its disk kept, still logs in with the key the server holds.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

#include "../common/factory_pki.h"
#include "../common/fleet_fixture.h"
#include "../common/power_cut_file_system.h"
#include "agent/server_link.h"
#include "security/crypto.h"
#include "transport/http/device_api.h"
#include "transport/http/server.h"

namespace drover::agent {
namespace {

namespace fs = std::filesystem;
using drover::testing::FactoryPki;
using drover::testing::Fleet;
using drover::testing::PowerCutFileSystem;

std::string read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The real device API on loopback. With a manufacturer's CA to trust, on the wall clock
// (the certificates are valid from when they are made).
struct Server {
  explicit Server(std::optional<security::FactoryTrust> factory = std::nullopt)
      : f(factory ? std::chrono::time_point_cast<Duration>(std::chrono::system_clock::now()) +
                        minutes(5)
                  : drover::testing::at("2026-06-01T12:00:00Z")) {
    char tmpl[] = "/tmp/drover-key-rotation-XXXXXX";
    dir = ::mkdtemp(tmpl);
    AuthOptions o;
    o.enrollment_tokens = {"factory"};
    o.factory = std::move(factory);
    auth = std::make_unique<DeviceAuth>(*f.service, f.clock,
                                        *security::TokenSigner::create(std::string(32, 'k')), o);
    http::add_device_api(router, *auth, *f.service);
    server =
        std::move(http::HttpServer::start({}, [this](const http::Request& r) {
                    http::Response answer = router(r);
                    // The server did it, but its answer never reaches the device.
                    if (lose_rotation_answers > 0 && r.target == "/api/device/v1/auth/rotate") {
                      --lose_rotation_answers;
                      return http::Response::error(502, "bad_gateway", "answer lost");
                    }
                    return answer;
                  }).value());
  }
  ~Server() {
    server->stop();
    fs::remove_all(dir);
  }

  // A link for device `id` whose key is `data`/device.key (made if missing), through `files`.
  std::unique_ptr<ServerLink> link(const std::string& id, const std::string& data,
                                   FileSystem& files = real_file_system(),
                                   const FactoryPki* pki = nullptr) {
    fs::create_directories(data);
    HttpLinkOptions o;
    o.server = "http://127.0.0.1:" + std::to_string(server->port());
    o.device_id = id;
    o.device_type = "ctl";
    o.hardware_revision = "rev-a";
    if (pki != nullptr) {  // vouched for by its factory certificate alone
      o.factory_certificate_file = pki->pem(id + "-chain");
      o.factory_key_file = pki->key(id);
    } else {
      o.enrollment_token = "factory";
    }
    o.device_key_file = data + "/device.key";
    auto key = load_or_create_key(files, o.device_key_file);
    EXPECT_TRUE(key.ok()) << key.error().to_string();
    auto made = make_http_link(o, std::move(*key), f.clock, files);
    EXPECT_TRUE(made.ok()) << made.error().to_string();
    return std::move(*made);
  }

  // The key the server holds for `id` (base64url).
  std::string key_of(const std::string& id) { return f.service->device(id)->public_key; }

  Fleet f;
  std::string dir;
  std::unique_ptr<DeviceAuth> auth;
  http::Router router;
  std::atomic<int> lose_rotation_answers{0};
  std::unique_ptr<http::HttpServer> server;
};

// The public key (base64url) of the device key file at `path`.
std::string public_key_in(const std::string& path) {
  auto key = security::SigningKey::from_pem(read(path));
  EXPECT_TRUE(key.ok()) << path;
  return key.ok() ? security::to_base64url(key->public_key()) : "";
}

Status check_in(ServerLink& link) {
  DROVER_TRY(link.connect({{"firmware", "1.0.0"}}));
  auto answer =
      link.check_in({{"firmware", "1.0.0"}}, protocol::UpdateState::kIdle, "", false, nullptr);
  if (!answer.ok()) return answer.error();
  return ok_status();
}

TEST(KeyRotation, TheServerHoldsTheNewKeyTheDeviceKeepsItAndTheOldOneNoLongerLogsIn) {
  Server s;
  const std::string data = s.dir + "/device";
  auto link = s.link("ctl-1", data);
  ASSERT_TRUE(check_in(*link).ok());
  const std::string old_pem = read(data + "/device.key");
  const std::string old_key = s.key_of("ctl-1");
  ASSERT_EQ(public_key_in(data + "/device.key"), old_key);

  auto rotated = link->rotate_key();
  ASSERT_TRUE(rotated.ok()) << rotated.error().to_string();
  EXPECT_NE(*rotated, old_key);
  EXPECT_EQ(s.key_of("ctl-1"), *rotated);
  EXPECT_EQ(public_key_in(data + "/device.key"), *rotated);
  EXPECT_FALSE(fs::exists(data + "/device.key.next"));
  // The same link goes on with a session of the new key; a new one (a restart) logs in too.
  EXPECT_TRUE(check_in(*link).ok());
  EXPECT_TRUE(check_in(*s.link("ctl-1", data)).ok());

  // Whoever kept the old key cannot log in with it (nor enroll it again under the id).
  const std::string thief = s.dir + "/thief";
  fs::create_directories(thief);
  std::ofstream(thief + "/device.key") << old_pem;
  Status stolen = check_in(*s.link("ctl-1", thief));
  ASSERT_FALSE(stolen.ok());
  EXPECT_EQ(stolen.error().code, ErrorCode::kConflict) << stolen.error().to_string();
  EXPECT_EQ(s.key_of("ctl-1"), *rotated);

  // Rotating again goes on from the new key.
  auto again = link->rotate_key();
  ASSERT_TRUE(again.ok()) << again.error().to_string();
  EXPECT_NE(*again, *rotated);
  EXPECT_EQ(s.key_of("ctl-1"), *again);
  EXPECT_EQ(public_key_in(data + "/device.key"), *again);
}

TEST(KeyRotation, APowerCutAtAnyPointOfARotationLeavesADeviceThatLogsInWithTheKeyTheServerHolds) {
  Server s;
  int cuts = 0;
  int after_the_server_took_it = 0;  // cuts that fell after the server had the new key
  for (int64_t n = 0;; ++n) {
    const std::string id = "ctl-" + std::to_string(n);
    const std::string live = s.dir + "/" + id;
    const std::string after = s.dir + "/" + id + "-after";
    ASSERT_TRUE(check_in(*s.link(id, live)).ok());  // enrolled with its first key
    const std::string first = s.key_of(id);

    PowerCutFileSystem disk;
    auto link = s.link(id, live, disk);
    ASSERT_TRUE(check_in(*link).ok());
    disk.fail_after(n);
    auto rotated = link->rotate_key();
    // The power stayed on through the whole rotation when the disk still takes a write.
    const bool whole = disk.write(live + "/probe", "x").ok();
    disk.cut_power_into(live, after);
    link.reset();

    // Started again from what the disk kept: it logs in, with the key the server holds,
    // which is then the one in device.key.
    auto restarted = s.link(id, after);
    Status st = check_in(*restarted);
    ASSERT_TRUE(st.ok()) << "cut after " << n << " operations: " << st.error().to_string();
    EXPECT_EQ(public_key_in(after + "/device.key"), s.key_of(id)) << "cut after " << n;
    if (rotated.ok()) {
      EXPECT_EQ(s.key_of(id), *rotated) << "cut after " << n;
    }
    if (s.key_of(id) != first && !whole) ++after_the_server_took_it;
    // And rotates again from there.
    auto next = restarted->rotate_key();
    ASSERT_TRUE(next.ok()) << "cut after " << n << ": " << next.error().to_string();
    EXPECT_EQ(s.key_of(id), *next);
    EXPECT_EQ(public_key_in(after + "/device.key"), *next);
    EXPECT_FALSE(fs::exists(after + "/device.key.next")) << "cut after " << n;
    if (whole) {
      EXPECT_TRUE(rotated.ok()) << rotated.error().to_string();
      break;
    }
    ++cuts;
    ASSERT_LT(n, 50) << "the rotation never completed";
  }
  // The next key written (temporary file, sync, rename, directory), then device.key written
  // the same way, the next key's file removed and the directory synced: every one of them
  // was cut, six of them after the server had the key.
  EXPECT_GE(cuts, 10);
  EXPECT_GE(after_the_server_took_it, 6);
}

TEST(KeyRotation, ARotationWhoseAnswerIsLostEndsOnTheKeyTheServerTook) {
  Server s;
  const std::string data = s.dir + "/device";
  auto link = s.link("ctl-1", data);
  ASSERT_TRUE(check_in(*link).ok());
  const std::string first = s.key_of("ctl-1");

  // The server takes the new key; the device hears nothing back and keeps both files.
  s.lose_rotation_answers = 1;
  auto lost = link->rotate_key();
  ASSERT_FALSE(lost.ok());
  const std::string taken = s.key_of("ctl-1");
  EXPECT_NE(taken, first);
  EXPECT_EQ(public_key_in(data + "/device.key"), first);
  EXPECT_EQ(public_key_in(data + "/device.key.next"), taken);
  // The command tried again: its old session is refused, the old key no longer logs in, the
  // next key does — and the rotation counts as done, on the key the server took.
  auto again = link->rotate_key();
  ASSERT_TRUE(again.ok()) << again.error().to_string();
  EXPECT_EQ(*again, taken);
  EXPECT_EQ(s.key_of("ctl-1"), taken);
  EXPECT_EQ(public_key_in(data + "/device.key"), taken);
  EXPECT_FALSE(fs::exists(data + "/device.key.next"));
  EXPECT_TRUE(check_in(*link).ok());

  // Lost again, and this time the agent restarts before trying anything: its first login
  // finds the next key and puts it in place.
  s.lose_rotation_answers = 1;
  ASSERT_FALSE(link->rotate_key().ok());
  const std::string third = s.key_of("ctl-1");
  EXPECT_NE(third, taken);
  link.reset();
  EXPECT_TRUE(check_in(*s.link("ctl-1", data)).ok());
  EXPECT_EQ(public_key_in(data + "/device.key"), third);
  EXPECT_FALSE(fs::exists(data + "/device.key.next"));
}

TEST(KeyRotation, TheFactoryVouchesForTheRotatedKeyWhenTheDeviceEnrollsAgain) {
  FactoryPki pki;
  ASSERT_TRUE(pki.ok());
  ASSERT_TRUE(pki.device("ctl-f", "/CN=ctl-f/OU=type=ctl/OU=revision=rev-a"));
  auto trust = security::FactoryTrust::from_pem({FactoryPki::read(pki.pem("maker-ca"))});
  ASSERT_TRUE(trust.ok()) << trust.error().to_string();
  Server s(std::move(*trust));
  const std::string data = s.dir + "/device";
  auto link = s.link("ctl-f", data, real_file_system(), &pki);
  ASSERT_TRUE(check_in(*link).ok());  // enrolled on its certificate, no token
  auto rotated = link->rotate_key();
  ASSERT_TRUE(rotated.ok()) << rotated.error().to_string();
  link.reset();
  // A restart enrolls again (as every start does) with the rotated key, signed anew by the
  // factory key: the server finds the key it holds, and the device logs in.
  Status st = check_in(*s.link("ctl-f", data, real_file_system(), &pki));
  EXPECT_TRUE(st.ok()) << st.error().to_string();
  EXPECT_EQ(s.key_of("ctl-f"), *rotated);
}

}  // namespace
}  // namespace drover::agent
