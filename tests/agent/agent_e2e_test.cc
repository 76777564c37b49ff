// The agent against the real device API on loopback (HttpServer, DeviceAuth, DeviceService,
// the rollout engine), on a ManualClock: an A/B update that commits; a trial boot that fails;
// a health check that fails; a corrupted download; and a crash (a new Agent over the same
// data directory) after every single step, which must always end on a committed image with
// the server agreeing.
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "../common/fleet_fixture.h"
#include "agent/agent.h"
#include "agent/bootloader.h"
#include "agent/server_link.h"
#include "agent/signed_offers.h"
#include "agent/tuf_fetcher.h"
#include "agent/update_module.h"
#include "fleet/artifact_service.h"
#include "fleet/command_queue.h"
#include "fleet/repository_keys.h"
#include "fleet/update_repository.h"
#include "transport/http/command_api.h"
#include "transport/http/device_api.h"
#include "transport/http/server.h"

namespace drover::agent {
namespace {

namespace fs = std::filesystem;
using drover::testing::Fleet;
using drover::testing::simple_plan;

std::string read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string image(size_t n, char seed) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>(seed + i * 7 + i / 997);
  return s;
}

// One device: its data directory, slots and bootloader file, and an Agent that can be
// "crashed" (destroyed) and started again over them. It requires signed update metadata,
// trusting first the root at `initial_root`.
class Device {
 public:
  Device(std::string dir, std::string server, Clock& clock, std::string initial_root)
      : dir_(std::move(dir)), clock_(clock), initial_root_(std::move(initial_root)) {
    fs::create_directories(dir_ + "/data");
    std::ofstream(dir_ + "/slot-a") << "image 1.0.0";
    options_.data_dir = dir_ + "/data";
    options_.component = "firmware";
    options_.default_poll = seconds(30);
    options_.backoff_initial = seconds(1);
    options_.backoff_max = seconds(30);
    options_.commit_timeout = minutes(5);
    options_.check_retry = seconds(5);
    link_options_.server = std::move(server);
    link_options_.device_id = "ctl-1";
    link_options_.device_type = "ctl";
    link_options_.hardware_revision = "rev-a";
    link_options_.enrollment_token = "factory";
    start();
  }

  // A crash: everything in memory is gone; what is on disk stays.
  void restart() {
    agent_.reset();
    signed_.reset();
    module_.reset();
    link_.reset();
    boot_.reset();
    start();
  }

  Agent& agent() { return *agent_; }
  FileBootloader& boot() { return *boot_; }
  AgentOptions& options() { return options_; }
  // Takes remote commands (every one its configuration allows) from the next start on.
  void take_commands() {
    RemoteCommandOptions r;
    r.enabled = true;
    commands_ = std::make_unique<RemoteCommands>(dir_ + "/data/commands.json", r, system_commands(),
                                                 clock_);
    options_.remote_commands = commands_.get();
    restart();
  }
  bool trial_boots = true;
  std::string slot(const char* s) const { return read(dir_ + "/slot-" + s); }

 private:
  void start() {
    boot_ = std::make_unique<FileBootloader>(real_file_system(), dir_ + "/boot.state");
    auto key = load_or_create_key(real_file_system(), dir_ + "/data/device.key");
    ASSERT_TRUE(key.ok()) << key.error().to_string();
    auto link = make_http_link(link_options_, std::move(*key), clock_);
    ASSERT_TRUE(link.ok()) << link.error().to_string();
    link_ = std::move(*link);
    AbSlotOptions ab{dir_ + "/slot-a", dir_ + "/slot-b",
                     [this] { return boot_->boot(trial_boots); }};
    module_ = make_ab_slot_module(ab, *boot_);
    auto checked = SignedOffers::open({dir_ + "/data/tuf", link_options_.server + "/tuf/metadata/",
                                       initial_root_, "ctl", "rev-a"},
                                      fetcher_, clock_);
    ASSERT_TRUE(checked.ok()) << checked.error().to_string();
    signed_ = std::move(*checked);
    options_.offer_check = signed_.get();
    agent_ = std::make_unique<Agent>(options_, *link_, *module_, system_commands(), clock_, 7);
    const Status st = agent_->start({{"firmware", "1.0.0"}});
    ASSERT_TRUE(st.ok()) << st.error().to_string();
  }

  std::string dir_;
  Clock& clock_;
  std::string initial_root_;
  HttpMetadataFetcher fetcher_;
  std::unique_ptr<SignedOffers> signed_;
  AgentOptions options_;
  HttpLinkOptions link_options_;
  std::unique_ptr<FileBootloader> boot_;
  std::unique_ptr<ServerLink> link_;
  std::unique_ptr<UpdateModule> module_;
  std::unique_ptr<RemoteCommands> commands_;
  std::unique_ptr<Agent> agent_;
};

// A device's clock `behind` the server's (a ManualClock) by a fixed amount.
class BehindClock final : public Clock {
 public:
  BehindClock(Clock& server, Duration behind) : server_(server), behind_(behind) {}
  Timestamp now() const override { return server_.now() - behind_; }
  TimerId schedule_at(Timestamp at, Callback cb) override {
    return server_.schedule_at(at + behind_, std::move(cb));
  }
  bool cancel(TimerId id) override { return server_.cancel(id); }

 private:
  Clock& server_;
  Duration behind_;
};

// A server (the real device API over loopback, on the fleet's ManualClock) with artifact
// firmware 3.0.0 published as a signed target, and one device, its clock `device_behind`
// the server's. An honest server offers only signed artifacts; a compromised one (`honest`
// false) offers whatever its store holds.
struct World {
  explicit World(bool honest = true, Duration device_behind = Duration{0})
      : device_clock(f.clock, device_behind) {
    char tmpl[] = "/tmp/drover-agent-e2e-XXXXXX";
    dir = ::mkdtemp(tmpl);
    EXPECT_TRUE(
        create_repository(real_file_system(), dir + "/tuf", dir + "/offline", {}, f.clock.now())
            .ok());
    repository =
        std::move(UpdateRepository::open(real_file_system(), dir + "/tuf", f.clock).value());
    if (honest) {
      f.engine_options.offerable = [this](const Artifact& a) { return repository->is_signed(a); };
      f.restart();
    }
    artifacts = std::make_unique<ArtifactService>(f.store(), *f.engine, dir + "/artifacts");
    artifacts->publish_to(repository.get());
    // The timestamp (a day) is signed again as the server's timer would.
    refresh = [this] {
      EXPECT_TRUE(repository->refresh().ok());
      f.clock.schedule_after(hours(1), refresh);
    };
    f.clock.schedule_after(hours(1), refresh);
    Artifact meta;
    meta.name = "firmware";
    meta.version = "3.0.0";
    meta.device_types = {"ctl"};
    content = image(3'000'000, 'x');
    EXPECT_TRUE(artifacts->upload(meta, content).ok());
    AuthOptions o;
    o.enrollment_tokens = {"factory"};
    auth = std::make_unique<DeviceAuth>(*f.service, f.clock,
                                        *security::TokenSigner::create(std::string(32, 'k')), o);
    http::add_device_api(router, *auth, *f.service, artifacts.get());
    http::add_update_metadata(router, *repository, *auth, *f.service, *artifacts);
    server = std::move(http::HttpServer::start({}, [this](const http::Request& r) {
                         // An artifact the server cannot serve for now (a storage fault).
                         if (unservable && r.target.starts_with("/api/device/v1/artifacts/")) {
                           ++refused_downloads;
                           return http::Response::error(503, "unavailable", "storage fault");
                         }
                         return router(r);
                       }).value());
    device = std::make_unique<Device>(dir + "/device",
                                      "http://127.0.0.1:" + std::to_string(server->port()),
                                      device_clock, dir + "/tuf/metadata/1.root.json");
  }
  ~World() {
    device.reset();
    server->stop();
    fs::remove_all(dir);
  }

  // Enrolls (the first check-in), then starts the rollout of 3.0.0 to every device.
  void enroll_and_start() {
    device->agent().run_once();
    EXPECT_TRUE(f.service->device("ctl-1").has_value()) << device->agent().last_error();
    RolloutPlan plan = simple_plan({{"all", 100, 0, Duration(0)}});
    plan.artifact_version = "3.0.0";
    rollout = f.start(plan);
  }

  // Runs the agent (waiting on the manual clock as it asks) until it is idle with nothing
  // left to deliver or take. `crash_after`: restart the agent after that many steps.
  void run_to_rest(int crash_after = -1) {
    for (int step = 0; step < 300; ++step) {
      if (step == crash_after) device->restart();
      const Duration wait = device->agent().run_once();
      const UpdateRecord& r = device->agent().record();
      if (r.step == UpdateStep::kIdle && !r.report && wait > Duration(0) &&
          state() != DeploymentState::kOffered) {
        return;
      }
      f.clock.advance(std::max(wait, Duration(1)));
    }
    ADD_FAILURE() << "the agent did not come to rest: " << to_string(device->agent().record().step)
                  << " " << device->agent().last_error();
  }
  DeploymentState state() { return f.state_of(rollout, "ctl-1"); }

  Fleet f;
  BehindClock device_clock;
  std::string dir, content, rollout;
  std::unique_ptr<UpdateRepository> repository;
  std::function<void()> refresh;
  std::unique_ptr<ArtifactService> artifacts;
  std::unique_ptr<DeviceAuth> auth;
  http::Router router;
  std::atomic<bool> unservable{false};
  std::atomic<int> refused_downloads{0};
  std::unique_ptr<http::HttpServer> server;
  std::unique_ptr<Device> device;
};

TEST(AgentE2e, AnAbUpdateIsDownloadedVerifiedBootedCommittedAndReported) {
  World w;
  w.enroll_and_start();
  w.run_to_rest();
  EXPECT_EQ(w.state(), DeploymentState::kSucceeded);
  EXPECT_EQ(w.device->agent().inventory().at("firmware"), "3.0.0");
  EXPECT_EQ(*w.device->boot().booted(), Slot::kB);
  EXPECT_EQ(*w.device->boot().committed(), Slot::kB);
  EXPECT_FALSE(w.device->boot().trial()->has_value());
  EXPECT_TRUE(w.device->slot("b") == w.content);
  EXPECT_EQ(w.device->slot("a"), "image 1.0.0");  // the previous image, untouched
  EXPECT_EQ(*w.f.service->device("ctl-1")->installed_version("firmware"), "3.0.0");
  EXPECT_FALSE(fs::exists(w.dir + "/device/data/download.part"));
}

// A download that can never finish (every attempt refused) does not leave the device deaf: it
// checks in while it retries, so a clear_update reaches it and gives the download up; the
// deployment fails (a delivery nobody could make is what the rollout's gate must see).
TEST(AgentE2e, ADownloadStuckForGoodStillChecksInAndAClearUpdateGivesItUp) {
  World w;
  CommandQueue commands(w.f.store(), w.f.clock);
  ASSERT_TRUE(commands.load().ok());
  w.f.service->attach_commands(&commands);
  OperatorTokens tokens{w.f.store(), w.f.clock};
  http::add_command_api(w.router, tokens, *w.auth, *w.f.service, commands);  // results
  w.device->take_commands();
  w.unservable = true;
  w.enroll_and_start();
  const Timestamp stuck_since = w.f.clock.now();
  while (w.f.clock.now() - stuck_since < hours(2)) {
    const Duration wait = w.device->agent().run_once();
    w.f.clock.advance(std::max(wait, Duration(1)));
  }
  ASSERT_EQ(w.device->agent().record().step, UpdateStep::kDownloading)
      << w.device->agent().last_error();
  EXPECT_GE(w.refused_downloads.load(), 5);
  EXPECT_EQ(w.state(), DeploymentState::kDownloading);
  EXPECT_EQ(w.f.service->device("ctl-1")->update_state, protocol::UpdateState::kDownloading);

  CommandRequest clear;
  clear.device_id = "ctl-1";
  clear.action = protocol::CommandAction::kClearUpdate;
  clear.argument = "download";
  clear.requested_by = "test";
  clear.reason = "download stuck";
  auto queued = commands.queue(clear);
  ASSERT_TRUE(queued.ok()) << queued.error().to_string();
  w.run_to_rest();
  EXPECT_EQ(w.state(), DeploymentState::kFailed);
  EXPECT_EQ(w.device->agent().record().step, UpdateStep::kIdle);
  EXPECT_EQ(w.device->agent().inventory().at("firmware"), "1.0.0");
  EXPECT_FALSE(fs::exists(w.dir + "/device/data/download.part"));
  auto done = commands.get(queued->id);
  ASSERT_TRUE(done.ok() && done->has_value());
  EXPECT_EQ((*done)->state, CommandState::kSucceeded);
  EXPECT_NE((*done)->output.find("gave up the download of firmware@3.0.0"), std::string::npos)
      << (*done)->output;
  w.f.service->attach_commands(nullptr);
}

TEST(AgentE2e, AFailedTrialBootFallsBackAndIsReportedRolledBack) {
  World w;
  w.enroll_and_start();
  w.device->trial_boots = false;
  w.run_to_rest();
  EXPECT_EQ(w.state(), DeploymentState::kRolledBack);
  EXPECT_EQ(w.device->agent().inventory().at("firmware"), "1.0.0");
  EXPECT_EQ(*w.device->boot().booted(), Slot::kA);
  EXPECT_EQ(*w.device->boot().committed(), Slot::kA);
}

TEST(AgentE2e, AFailingHealthCheckRollsBackFromTheNewImage) {
  World w;
  w.device->options().health_checks = {{{"false"}, seconds(5)}};
  w.device->restart();
  w.enroll_and_start();
  w.run_to_rest();
  EXPECT_EQ(w.state(), DeploymentState::kRolledBack);
  EXPECT_EQ(*w.device->boot().booted(), Slot::kA) << "rebooted back into the previous image";
  EXPECT_EQ(*w.device->boot().committed(), Slot::kA);
  EXPECT_EQ(w.device->agent().inventory().at("firmware"), "1.0.0");
}

TEST(AgentE2e, ACorruptedDownloadIsRefusedBeforeAnythingIsInstalled) {
  World w;
  // The server's copy is damaged behind its back: same size, other bytes.
  const std::string stored = w.artifacts->path_of(*w.artifacts->get("firmware", "3.0.0"));
  std::string damaged = w.content;
  damaged[1'234'567] ^= 0x55;
  std::ofstream(stored, std::ios::binary | std::ios::trunc) << damaged;
  w.enroll_and_start();
  w.run_to_rest();
  EXPECT_EQ(w.state(), DeploymentState::kFailed);
  EXPECT_EQ(*w.device->boot().committed(), Slot::kA);
  EXPECT_FALSE(w.device->boot().trial()->has_value());
  EXPECT_FALSE(fs::exists(w.dir + "/device/slot-b")) << "nothing was written to the slot";
  EXPECT_FALSE(fs::exists(w.dir + "/device/data/download.part"));
}

// A crash after each step in turn (k = 1, 2, ...), for an update that commits and for one
// whose trial boot fails: the device always ends on a committed image, and the server's
// record of it agrees.
TEST(AgentE2e, ACrashAfterAnyStepEndsOnACommittedImageTheServerAgreesWith) {
  for (const bool boots : {true, false}) {
    for (int k = 1; k <= 14; ++k) {
      SCOPED_TRACE(std::string(boots ? "boots" : "fails to boot") + ", crash after step " +
                   std::to_string(k));
      World w;
      w.device->trial_boots = boots;
      w.enroll_and_start();
      w.run_to_rest(k);
      const Slot committed = *w.device->boot().committed();
      EXPECT_EQ(*w.device->boot().booted(), committed);
      EXPECT_FALSE(w.device->boot().trial()->has_value());
      if (boots) {
        EXPECT_EQ(committed, Slot::kB);
        EXPECT_EQ(w.state(), DeploymentState::kSucceeded);
        EXPECT_EQ(w.device->agent().inventory().at("firmware"), "3.0.0");
      } else {
        EXPECT_EQ(committed, Slot::kA);
        EXPECT_EQ(w.state(), DeploymentState::kRolledBack);
        EXPECT_EQ(w.device->agent().inventory().at("firmware"), "1.0.0");
      }
    }
  }
}

// The device may not be interrupted from 12:00 to 20:00 UTC (quiet hours; it has no site):
// it downloads and verifies the image at once, at 12:00, and holds it until 20:00.
void quiet_until_eight(World& w) {
  auto changed = w.f.service->update("ctl-1", [](drover::Device& d) {
    d.quiet_hours = {MaintenanceWindow{0x7f, 12 * 60, 8 * 60}};
    return ok_status();
  });
  ASSERT_TRUE(changed.ok()) << changed.error().to_string();
}

// Runs the agent until it holds the verified image (or gives up after 50 steps).
void run_until_ready(World& w) {
  for (int step = 0; step < 50 && w.device->agent().record().step != UpdateStep::kReady; ++step)
    w.f.clock.advance(std::max(w.device->agent().run_once(), Duration(1)));
  ASSERT_EQ(w.device->agent().record().step, UpdateStep::kReady) << w.device->agent().last_error();
}

TEST(AgentE2e, TheVerifiedImageWaitsForTheWindowAcrossARestartAndOnlyThenIsInstalled) {
  World w;
  w.device->agent().run_once();  // enrolls
  quiet_until_eight(w);
  w.enroll_and_start();
  run_until_ready(w);
  const Timestamp eight = drover::testing::at("2026-06-01T20:00:00Z");
  EXPECT_LT(w.f.clock.now(), eight);
  EXPECT_FALSE(w.device->agent().record().windows.empty());
  EXPECT_EQ(w.device->agent().record().windows.front().from, eight);
  EXPECT_TRUE(fs::exists(w.dir + "/device/data/download.part"));
  EXPECT_FALSE(fs::exists(w.dir + "/device/slot-b")) << "nothing installed before the window";
  // A power cut while holding: the agent comes back holding, with its windows.
  w.device->restart();
  EXPECT_EQ(w.device->agent().record().step, UpdateStep::kReady);
  EXPECT_EQ(w.device->agent().record().windows.front().from, eight);
  // From here every step that interrupts the device happens inside the window.
  for (int step = 0; step < 300; ++step) {
    const Duration wait = w.device->agent().run_once();
    const UpdateStep now = w.device->agent().record().step;
    if (now == UpdateStep::kInstalling || now == UpdateStep::kRebooting ||
        now == UpdateStep::kCommitting) {
      EXPECT_GE(w.f.clock.now(), eight) << to_string(now) << " before the window";
      EXPECT_LT(w.f.clock.now(), eight + hours(16)) << to_string(now) << " after the window";
    }
    if (now == UpdateStep::kIdle && !w.device->agent().record().report &&
        w.state() == DeploymentState::kSucceeded)
      break;
    w.f.clock.advance(std::max(wait, Duration(1)));
  }
  EXPECT_EQ(w.state(), DeploymentState::kSucceeded);
  EXPECT_EQ(w.device->agent().inventory().at("firmware"), "3.0.0");
  EXPECT_GE(w.f.clock.now(), eight);
}

// A device whose clock is 3 seconds behind the server's, holding the image until its quiet
// hours end: once the window is open on the server's clock it installs — the server sends a
// window open now as open since an hour before — rather than being told at each question
// that the window opens at the server's "now", a moment ahead on its own clock, and asking
// again every 3 seconds for good.
TEST(AgentE2e, ADeviceWhoseClockIsBehindTheServersInstallsOnceTheWindowIsOpen) {
  World w(true, seconds(3));
  w.device->agent().run_once();  // enrolls
  quiet_until_eight(w);
  w.enroll_and_start();
  run_until_ready(w);
  const Timestamp eight = drover::testing::at("2026-06-01T20:00:00Z");
  int asked_in_window = 0;  // passes that found the image still held, the window open
  for (int step = 0; step < 300 && w.state() != DeploymentState::kSucceeded; ++step) {
    const Duration wait = w.device->agent().run_once();
    const UpdateStep now = w.device->agent().record().step;
    if (now == UpdateStep::kInstalling) {
      EXPECT_GE(w.f.clock.now(), eight) << "before the window";
    }
    if (now == UpdateStep::kReady && w.f.clock.now() >= eight) ++asked_in_window;
    w.f.clock.advance(std::max(wait, Duration(1)));
  }
  EXPECT_EQ(w.state(), DeploymentState::kSucceeded) << w.device->agent().last_error();
  EXPECT_LE(asked_in_window, 2);
}

// The rollout is paused while the device holds the image: it keeps holding and does not
// install, even inside its window. Aborted: the device drops the image without installing
// it, and the server records the deployment as withdrawn (cancelled), not failed.
TEST(AgentE2e, APauseHoldsTheImageAndAnAbortDropsItUninstalled) {
  World w;
  w.device->agent().run_once();
  quiet_until_eight(w);
  w.enroll_and_start();
  run_until_ready(w);
  ASSERT_TRUE(w.f.engine->pause(w.rollout).ok());
  w.f.clock.advance_to(drover::testing::at("2026-06-01T20:30:00Z"));
  for (int step = 0; step < 5; ++step) {
    w.f.clock.advance(std::max(w.device->agent().run_once(), Duration(1)));
    EXPECT_EQ(w.device->agent().record().step, UpdateStep::kReady);
  }
  EXPECT_TRUE(w.device->agent().record().waiting);
  EXPECT_FALSE(fs::exists(w.dir + "/device/slot-b"));
  ASSERT_TRUE(w.f.engine->abort(w.rollout).ok());
  w.f.clock.advance(std::max(w.device->agent().run_once(), Duration(1)));
  EXPECT_EQ(w.device->agent().record().step, UpdateStep::kIdle);
  EXPECT_FALSE(fs::exists(w.dir + "/device/data/download.part")) << "the held image is deleted";
  EXPECT_FALSE(fs::exists(w.dir + "/device/slot-b"));
  EXPECT_EQ(w.device->agent().inventory().at("firmware"), "1.0.0");
  auto d = w.f.store().get_deployment(w.rollout, "ctl-1");
  ASSERT_TRUE(d.ok() && d->has_value());
  EXPECT_EQ((*d)->state, DeploymentState::kCancelled);
  EXPECT_NE((*d)->error.find("withdrawn before the install"), std::string::npos) << (*d)->error;
}

}  // namespace
}  // namespace drover::agent

namespace drover::agent {
namespace {

Deployment deployment(World& w) {
  auto d = w.f.store().get_deployment(w.rollout, "ctl-1");
  EXPECT_TRUE(d.ok() && d->has_value());
  return d.ok() && d->has_value() ? **d : Deployment{};
}

bool history_says(World& w, const std::string& words) {
  auto steps = w.f.store().list_deployment_steps(w.rollout, "ctl-1");
  EXPECT_TRUE(steps.ok());
  for (const DeploymentStep& s : *steps) {
    if (s.message.find(words) != std::string::npos) return true;
  }
  return false;
}

// After an A/B update the other slot keeps 1.0.0, and the agent says so: a fleet rollback
// switches back to that slot with no download — although 1.0.0 was never uploaded.
TEST(AgentE2e, AFleetRollbackSwitchesBackToTheKeptSlotWithoutADownload) {
  World w;
  ASSERT_TRUE(w.f.engine->remove_artifact("firmware", "1.0.0").ok());  // the fixture's record
  w.enroll_and_start();
  w.run_to_rest();
  ASSERT_EQ(w.state(), DeploymentState::kSucceeded);
  EXPECT_EQ(w.device->agent().kept(), (Agent::Kept{"firmware", "1.0.0", "A"}));
  EXPECT_TRUE(w.f.service->device("ctl-1")->keeps_previous);
  EXPECT_TRUE(deployment(w).switch_back) << "the success report named what the slot keeps";
  ASSERT_FALSE(w.f.store().get_artifact("firmware", "1.0.0")->has_value());

  ASSERT_TRUE(w.f.engine->rollback(w.rollout).ok());
  w.run_to_rest();
  EXPECT_EQ(w.state(), DeploymentState::kReverted);
  EXPECT_EQ(w.device->agent().inventory().at("firmware"), "1.0.0");
  EXPECT_EQ(*w.device->boot().booted(), Slot::kA);
  EXPECT_EQ(*w.device->boot().committed(), Slot::kA);
  EXPECT_TRUE(w.device->slot("b") == w.content) << "the slot left behind is untouched";
  EXPECT_EQ(w.device->slot("a"), "image 1.0.0");
  EXPECT_EQ(w.device->agent().record().bytes_done, 0u) << "nothing was downloaded";
  EXPECT_EQ(w.device->agent().kept(), (Agent::Kept{"firmware", "3.0.0", "B"}));
  EXPECT_TRUE(history_says(w, "switch back to 1.0.0 in the other slot"));
  EXPECT_TRUE(w.f.engine->tick().ok());
  EXPECT_EQ(w.f.engine->get(w.rollout)->state, RolloutState::kRolledBack);
}

// The kept image does not boot: the revert fails, and the rollout never reads rolled_back
// while the device runs 3.0.0. Once 1.0.0 is uploaded, a second rollback downloads it.
TEST(AgentE2e, AFailedSwitchBackEndsRollbackIncompleteAndARetryDownloads) {
  World w;
  ASSERT_TRUE(w.f.engine->remove_artifact("firmware", "1.0.0").ok());
  w.enroll_and_start();
  w.run_to_rest();
  ASSERT_EQ(w.state(), DeploymentState::kSucceeded);
  ASSERT_TRUE(w.f.engine->rollback(w.rollout).ok());
  w.device->trial_boots = false;
  w.run_to_rest();
  EXPECT_EQ(w.state(), DeploymentState::kRevertFailed);
  EXPECT_EQ(w.device->agent().inventory().at("firmware"), "3.0.0");
  EXPECT_EQ(w.device->agent().kept(), Agent::Kept{}) << "a kept image that did not boot";
  EXPECT_FALSE(deployment(w).switch_back);
  EXPECT_TRUE(w.f.engine->tick().ok());
  EXPECT_EQ(w.f.engine->get(w.rollout)->state, RolloutState::kRollbackIncomplete);
  // Nothing to switch to and nothing to download: the retry is refused, naming what is missing.
  auto refused = w.f.engine->rollback(w.rollout);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("firmware@1.0.0, which is not uploaded"),
            std::string::npos)
      << refused.error().message;

  Artifact old;
  old.name = "firmware";
  old.version = "1.0.0";
  old.device_types = {"ctl"};
  const std::string old_image = image(200'000, 'o');
  ASSERT_TRUE(w.artifacts->upload(old, old_image).ok());
  w.device->trial_boots = true;
  ASSERT_TRUE(w.f.engine->rollback(w.rollout).ok());
  w.run_to_rest();
  EXPECT_EQ(w.state(), DeploymentState::kReverted);
  EXPECT_EQ(w.device->agent().inventory().at("firmware"), "1.0.0");
  EXPECT_TRUE(w.device->slot("a") == old_image) << "downloaded and written this time";
  EXPECT_TRUE(w.f.engine->tick().ok());
  EXPECT_EQ(w.f.engine->get(w.rollout)->state, RolloutState::kRolledBack);
}

// A failed health check tells the server how it failed: its exit code and the end of its
// output, in the deployment's error and its history.
TEST(AgentE2e, AFailedHealthCheckReportsItsExitCodeAndOutput) {
  World w;
  w.device->options().health_checks = {
      {{"/bin/sh", "-c", "echo starting; echo 'modbus port 502 refused' >&2; exit 3"}, seconds(5)}};
  w.device->restart();
  w.enroll_and_start();
  w.run_to_rest();
  EXPECT_EQ(w.state(), DeploymentState::kRolledBack);
  const std::string error = deployment(w).error;
  EXPECT_NE(error.find("health check '/bin/sh' failed: exit 3"), std::string::npos) << error;
  EXPECT_NE(error.find("modbus port 502 refused"), std::string::npos) << error;
  EXPECT_TRUE(history_says(w, "exit 3"));
}

// Every window of the coming week leaves an hour (quiet hours from 13:00 to 12:00) and the
// install needs two (apply_time): holding on would hold forever. The agent drops the
// verified image uninstalled and tells the server, which stops waiting for it and says why.
TEST(AgentE2e, WhenNoWindowFitsTheInstallTheImageIsDroppedAndTheServerTold) {
  World w;
  w.device->options().apply_time = hours(2);
  w.device->restart();
  w.device->agent().run_once();  // enrolls
  auto changed = w.f.service->update("ctl-1", [](drover::Device& d) {
    d.quiet_hours = {MaintenanceWindow{0x7f, 13 * 60, 23 * 60}};
    return ok_status();
  });
  ASSERT_TRUE(changed.ok()) << changed.error().to_string();
  w.enroll_and_start();
  w.run_to_rest();
  EXPECT_EQ(w.device->agent().record().step, UpdateStep::kIdle);
  EXPECT_FALSE(fs::exists(w.dir + "/device/data/download.part")) << "the held image is deleted";
  EXPECT_FALSE(fs::exists(w.dir + "/device/slot-b")) << "nothing was installed";
  EXPECT_EQ(w.device->agent().inventory().at("firmware"), "1.0.0");
  const Deployment d = deployment(w);
  EXPECT_EQ(d.state, DeploymentState::kCancelled);
  EXPECT_EQ(d.error, "withdrawn by the device: no maintenance window fits the install");
  EXPECT_TRUE(history_says(w, "leaves 2h (apply_time)"));
  EXPECT_TRUE(history_says(w, "the longest leaves 1h"));
  for (int tick = 0; tick < 3; ++tick) {  // settles, soaks (0s), ends
    w.f.clock.advance(minutes(1));
    EXPECT_TRUE(w.f.engine->tick().ok());
  }
  EXPECT_EQ(w.f.engine->get(w.rollout)->state, RolloutState::kCompletedPartial);
}

}  // namespace
}  // namespace drover::agent

namespace drover::agent {
namespace {

// A compromised server (it offers whatever its store holds) starts a rollout; the device
// must refuse before a byte is downloaded, say why, and keep both slots as they were.
void expect_refused_untouched(World& w, const std::string& why) {
  w.run_to_rest();
  EXPECT_EQ(w.state(), DeploymentState::kFailed);
  EXPECT_NE(deployment(w).error.find(why), std::string::npos) << deployment(w).error;
  EXPECT_EQ(w.device->agent().inventory().at("firmware"), "1.0.0");
  EXPECT_EQ(*w.device->boot().committed(), Slot::kA);
  EXPECT_FALSE(fs::exists(w.dir + "/device/slot-b")) << "nothing was written to the slot";
  EXPECT_FALSE(fs::exists(w.dir + "/device/data/download.part")) << "nothing was downloaded";
}

TEST(AgentE2e, ACompromisedServerCannotOfferAnArtifactTheRepositoryNeverSigned) {
  World w(/*honest=*/false);
  w.artifacts->publish_to(nullptr);  // uploaded behind the repository's back
  Artifact evil;
  evil.name = "firmware";
  evil.version = "3.1.0";
  evil.device_types = {"ctl"};
  ASSERT_TRUE(w.artifacts->upload(evil, image(100'000, 'e')).ok());
  w.device->agent().run_once();  // enrolls
  RolloutPlan plan = simple_plan({{"all", 100, 0, Duration(0)}});
  plan.artifact_version = "3.1.0";
  w.rollout = w.f.start(plan);
  expect_refused_untouched(w, "no signed target firmware/3.1.0");
}

TEST(AgentE2e, ACompromisedServerCannotSwapTheImageBehindASignedVersion) {
  World w(/*honest=*/false);
  // The server's record of firmware@3.0.0 now names a tampered image, consistently: its
  // content, size and hash all agree — only the signed target does not.
  Artifact swapped = *w.artifacts->get("firmware", "3.0.0");
  const std::string tampered = image(3'000'000, 't');
  swapped.sha256 = security::to_hex(security::sha256(tampered));
  std::ofstream(w.artifacts->path_of(swapped), std::ios::binary) << tampered;
  WriteBatch b;
  b.artifacts.push_back(swapped);
  ASSERT_TRUE(w.f.store().apply(b).ok());
  w.enroll_and_start();
  expect_refused_untouched(w, "the offer's image hash is not the signed target firmware/3.0.0's");
}

// A team signs its own artifacts: firmware/* is delegated to a role of its own, and the
// device finds the image in that role's signed metadata, checks it and installs it.
TEST(AgentE2e, AnImageSignedByADelegatedRoleIsInstalled) {
  World w;
  TargetsDelegation team;
  team.role = "ctl-team";
  team.paths = {"firmware/*"};
  team.terminating = true;
  ASSERT_TRUE(delegate_targets(real_file_system(), w.dir + "/tuf", team).ok());
  ASSERT_TRUE(w.repository->refresh().ok());
  ASSERT_TRUE(w.repository->is_signed(*w.artifacts->get("firmware", "3.0.0")));
  w.enroll_and_start();
  w.run_to_rest();
  EXPECT_EQ(w.state(), DeploymentState::kSucceeded);
  EXPECT_TRUE(w.device->slot("b") == w.content);
  // The device looked the image up in the delegated role, and keeps what it trusted.
  const std::string role_file = w.dir + "/device/data/tuf/ctl-team.json";
  ASSERT_TRUE(fs::exists(role_file));
  EXPECT_NE(read(role_file).find("firmware/3.0.0"), std::string::npos);
  EXPECT_EQ(read(w.dir + "/device/data/tuf/targets.json").find("firmware/3.0.0"),
            std::string::npos);
}

// Rollback protection by version: a signed older image offered as an update is refused
// (the revert to what ran before is taken: the fleet rollback tests above run with signed
// metadata on).
TEST(AgentE2e, AnOlderSignedVersionOfferedAsAnUpdateIsRefused) {
  World w(/*honest=*/false);
  Artifact old;
  old.name = "firmware";
  old.version = "0.9.0";
  old.device_types = {"ctl"};
  ASSERT_TRUE(w.artifacts->upload(old, image(100'000, 'o')).ok());
  ASSERT_TRUE(w.repository->is_signed(*w.artifacts->get("firmware", "0.9.0")));
  w.device->agent().run_once();  // enrolls
  RolloutPlan plan = simple_plan({{"all", 100, 0, Duration(0)}});
  plan.artifact_version = "0.9.0";
  plan.allow_downgrade = true;
  w.rollout = w.f.start(plan);
  expect_refused_untouched(w, "firmware 0.9.0 is older than the installed 1.0.0");
}

}  // namespace
}  // namespace drover::agent
