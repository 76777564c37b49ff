#include "sim/network_fleet.h"

#include <unistd.h>

#include <cmath>
#include <filesystem>

#include "agent/agent.h"
#include "agent/bootloader.h"
#include "agent/command.h"
#include "agent/signed_offers.h"
#include "agent/tuf_fetcher.h"
#include "agent/update_module.h"
#include "base/file_system.h"
#include "base/random.h"
#include "fleet/device_auth.h"
#include "security/crypto.h"

// The agent gives a held image up when the server's list of windows is not full and none
// fits (Agent::give_up_hold): "full" must mean the same on both sides.
static_assert(drover::agent::kWeekOfWindows == drover::kMaxOfferWindows);

namespace drover::sim {

namespace fs = std::filesystem;
using agent::UpdateStep;

// ---------------------------------------------------------------- the server

Result<std::unique_ptr<http::ServerStack>> start_loopback_server(
    Store& store, RolloutEngine& engine, DeviceService& service, Clock& clock,
    const std::string& dir, const std::string& enrollment_token, UpdateRepository* repository) {
  auto secret = security::random_bytes(32);
  if (!secret.ok()) return secret.error();
  http::StackOptions options;
  options.server.threads = 1;  // one step of one agent at a time: a second thread would idle
  options.server.max_connections = 1'000'000;  // bounded by the process's descriptors instead
  options.artifact_dir = dir;
  options.token_secret = std::move(*secret);
  options.auth.enrollment_tokens = {enrollment_token};
  options.repository = repository;
  // The simulator's stores are durable when apply() returns: no group commit to wait for.
  return http::ServerStack::start(store, nullptr, engine, service, clock, std::move(options));
}

std::string loopback_url(const http::ServerStack& server) {
  return "http://127.0.0.1:" + std::to_string(server.port());
}

std::string artifact_payload(const Artifact& a, uint64_t size) {
  std::string out(size, '\0');
  uint64_t state = stable_hash(a.key());
  for (uint64_t i = 0; i < size; i += 8) {
    state = mix64(state + i);
    for (uint64_t k = 0; k < 8 && i + k < size; ++k)
      out[i + k] = static_cast<char>(state >> (8 * k));
  }
  return out;
}

// ---------------------------------------------------------------- one device

// The agent's link to the server, through the device's link in the world: down while the
// world says so, and as slow as its bandwidth (in virtual time, added to the step's cost).
class NetworkFleet::SimLink final : public agent::ServerLink {
 public:
  SimLink(std::unique_ptr<agent::ServerLink> inner, NetworkFleet& fleet, uint32_t dev)
      : inner_(std::move(inner)), fleet_(fleet), dev_(dev) {}

  void begin_step() {
    cost_ = Duration(0);
    down_ = false;
  }
  Duration cost() const { return cost_; }
  bool down() const { return down_; }

  Status connect(const agent::Inventory& installed) override {
    if (!up()) return link_down();
    return inner_->connect(installed);
  }

  Result<agent::CheckInAnswer> check_in(const agent::Inventory& installed,
                                        protocol::UpdateState state, std::string_view holding,
                                        bool keeps_previous,
                                        const protocol::ConfigReport* config) override {
    if (!up()) return link_down();
    ++fleet_.checkins_;
    auto answer = inner_->check_in(installed, state, holding, keeps_previous, config);
    // The device polls as its link class does in the twin, whatever the server suggests.
    if (answer.ok()) answer->next_checkin = fleet_.world_.next_poll(dev_);
    return answer;
  }

  Status report(const std::string& rollout_id, const std::string& version, protocol::Report status,
                const std::string& message, const std::string& standby) override {
    if (!up()) return link_down();
    ++fleet_.reports_;
    return inner_->report(rollout_id, version, status, message, standby);
  }

  Result<uint64_t> download(const agent::UpdateRecord& update, const std::string& path,
                            uint64_t from, const std::function<void(uint64_t)>& progress) override {
    if (!up()) return link_down();
    DeviceWorld& w = fleet_.world_;
    const Timestamp start = now();
    // The time the rest takes at the device's bandwidth, for the size the scenario gives it.
    const double share = update.size == 0
                             ? 0
                             : static_cast<double>(update.size - std::min(from, update.size)) /
                                   static_cast<double>(update.size);
    const double bits =
        share * static_cast<double>(w.declared_size(update.component, update.version)) * 8;
    const auto need = Duration(static_cast<int64_t>(std::ceil(
        bits * 1000.0 / static_cast<double>(std::max<uint64_t>(1, w.bandwidth_bps(dev_))))));
    const Timestamp until = w.online_until(dev_, start);
    auto got = inner_->download(update, path, from, progress);
    if (!got.ok()) return got;
    if (until == Timestamp::max() || start + need <= until) {
      cost_ += need;
      return got;
    }
    // The link drops first: what arrived stays, and the agent resumes with a Range request.
    const double part = static_cast<double>((until - start).count()) /
                        static_cast<double>(std::max<int64_t>(1, need.count()));
    const uint64_t kept =
        std::min<uint64_t>(*got > 0 ? *got - 1 : 0,
                           from + static_cast<uint64_t>(part * static_cast<double>(*got - from)));
    if (::truncate(path.c_str(), static_cast<off_t>(kept)) != 0)
      return io_error("cannot cut " + path + " short");
    if (progress) progress(kept);
    cost_ += until - start;
    down_ = true;
    ++fleet_.downloads_cut_;
    return io_error("the link dropped during the download (simulated)");
  }

  void disconnect() override { inner_->disconnect(); }

 private:
  Timestamp now() const { return fleet_.clock_.now() + cost_; }
  bool up() { return fleet_.world_.online(dev_, now()); }
  Error link_down() {
    down_ = true;
    return io_error("no link (simulated)");
  }

  std::unique_ptr<agent::ServerLink> inner_;
  NetworkFleet& fleet_;
  uint32_t dev_;
  Duration cost_{0};
  bool down_ = false;
};

// The ab-slot module on hardware that may fail to install the image (a defect of the twin).
class NetworkFleet::SimModule final : public agent::UpdateModule {
 public:
  SimModule(std::unique_ptr<agent::UpdateModule> inner, NetworkFleet& fleet, uint32_t dev)
      : inner_(std::move(inner)), fleet_(fleet), dev_(dev) {}

  Status install(const std::string& artifact, agent::UpdateRecord& record) override {
    if (fleet_.world_.defective(dev_, record.version, record.revert, DefectKind::kInstallFails))
      return io_error("the image does not install on this hardware (simulated defect)");
    return inner_->install(artifact, record);
  }
  Result<agent::BootState> boot_state(const agent::UpdateRecord& record) override {
    return inner_->boot_state(record);
  }
  Status reboot() override { return inner_->reboot(); }
  Status commit(const agent::UpdateRecord& record) override { return inner_->commit(record); }
  Result<bool> roll_back(const agent::UpdateRecord& record) override {
    return inner_->roll_back(record);
  }
  bool keeps_previous() const override {
    return inner_->keeps_previous() && fleet_.world_.keeps_previous(dev_);
  }
  Status switch_to_kept(agent::UpdateRecord& record) override {
    return inner_->switch_to_kept(record);
  }

 private:
  std::unique_ptr<agent::UpdateModule> inner_;
  NetworkFleet& fleet_;
  uint32_t dev_;
};

struct NetworkFleet::Node {
  NetworkDevice identity;
  std::string dir;
  // The running agent and what it holds; all gone between a reboot and the next start.
  std::unique_ptr<agent::FileBootloader> boot;
  std::unique_ptr<SimLink> link;
  std::unique_ptr<agent::UpdateModule> module;
  std::unique_ptr<agent::HttpMetadataFetcher> fetcher;
  std::unique_ptr<agent::SignedOffers> signed_offers;
  std::unique_ptr<agent::Agent> agent;
  bool rebooted = false;
};

NetworkFleet::NetworkFleet(NetworkFleetOptions options, DeviceWorld& world, Clock& clock)
    : o_(std::move(options)), world_(world), clock_(clock) {}

NetworkFleet::~NetworkFleet() = default;

void NetworkFleet::add(NetworkDevice device) {
  auto n = std::make_unique<Node>();
  n->dir = (fs::path(o_.dir) / device.id).string();
  n->identity = std::move(device);
  nodes_.push_back(std::move(n));
}

uint64_t NetworkFleet::checkins() const { return checkins_; }
uint64_t NetworkFleet::reports() const { return reports_; }
uint64_t NetworkFleet::downloads_cut() const { return downloads_cut_; }

Status NetworkFleet::boot(Node& n, uint32_t dev) {
  if (n.agent) return ok_status();  // up already
  Status st = start_agent(n, dev);
  if (!st.ok()) n.agent.reset();  // down again: the next step tries anew
  return st;
}

Status NetworkFleet::start_agent(Node& n, uint32_t dev) {
  std::error_code ec;
  fs::create_directories(n.dir + "/data", ec);
  if (ec) return io_error("cannot create " + n.dir + ": " + ec.message());
  FileSystem& files = real_file_system();
  n.boot = std::make_unique<agent::FileBootloader>(files, n.dir + "/boot.state");
  agent::HttpLinkOptions lo;
  lo.device_key_file = n.dir + "/data/device.key";
  auto key = agent::load_or_create_key(files, lo.device_key_file);
  if (!key.ok()) return key.error();
  lo.server = o_.server;
  lo.device_id = n.identity.id;
  lo.device_type = n.identity.device_type;
  lo.hardware_revision = n.identity.hardware_revision;
  lo.enrollment_token = o_.enrollment_token;
  lo.ca_file = o_.ca_file;
  lo.timeout = o_.timeout;
  auto link = agent::make_http_link(lo, std::move(*key), clock_);
  if (!link.ok()) return link.error();
  n.link = std::make_unique<SimLink>(std::move(*link), *this, dev);
  // The reboot: the trial slot comes up unless this hardware cannot boot the new image.
  agent::AbSlotOptions ab{
      n.dir + "/slot-a", n.dir + "/slot-b", [this, &n, dev] {
        const agent::UpdateRecord& r = n.agent->record();
        n.rebooted = true;
        return n.boot->boot(!world_.defective(dev, r.version, r.revert, DefectKind::kBootFails));
      }};
  n.module = std::make_unique<SimModule>(agent::make_ab_slot_module(ab, *n.boot), *this, dev);
  agent::AgentOptions ao;
  ao.data_dir = n.dir + "/data";
  ao.component = o_.component;
  ao.default_poll = n.identity.poll_interval;
  ao.backoff_initial = seconds(5);
  ao.backoff_max = std::max(n.identity.poll_interval, seconds(5));
  // The new image commits once it reaches the server; a device whose link is up only in
  // windows waits for the next one rather than rolling back.
  if (n.identity.intermittent) ao.commit_timeout = hours(25);
  // A window must leave room for the install and the reboot (and a minute to commit), and
  // the device knows when its link is up, as a device on a scheduled link does.
  ao.apply_time = world_.install_time() + world_.reboot_time() + minutes(1);
  if (n.identity.intermittent)
    ao.link_up_at = [this, dev](Timestamp t) { return world_.link_up_at(dev, t); };
  if (!o_.initial_root.empty()) {
    n.fetcher = std::make_unique<agent::HttpMetadataFetcher>(agent::link_client_options(lo));
    auto checked = agent::SignedOffers::open(
        {n.dir + "/data/tuf", o_.server + "/tuf/metadata/", o_.initial_root, n.identity.device_type,
         n.identity.hardware_revision},
        *n.fetcher, clock_, files);
    if (!checked.ok()) return checked.error();
    n.signed_offers = std::move(*checked);
    ao.offer_check = n.signed_offers.get();
  }
  n.agent = std::make_unique<agent::Agent>(ao, *n.link, *n.module, agent::system_commands(), clock_,
                                           mix64(o_.seed ^ (dev + 1)), files);
  return n.agent->start(o_.installed);
}

Result<AgentStep> NetworkFleet::step(uint32_t dev) {
  Node& n = *nodes_[dev];
  DROVER_TRY(boot(n, dev));
  const UpdateStep before = n.agent->record().step;
  n.link->begin_step();
  n.rebooted = false;
  AgentStep out;
  out.wait = n.agent->run_once();
  out.busy = n.link->cost();
  const agent::UpdateRecord& r = n.agent->record();
  // Held up by the link (not, say, a best-effort report that did not go out on the way).
  out.link_down = n.link->down() && !n.rebooted && r.step == before;
  out.step = r.step;
  out.report_pending = r.report.has_value();
  out.rollout_id = r.rollout_id;
  out.version = r.version;
  out.revert = r.revert;
  if (before == UpdateStep::kInstalling && r.step != UpdateStep::kInstalling)
    out.busy += world_.install_time();  // done or failed, the install took its time
  if (before == UpdateStep::kRebooting && r.step == UpdateStep::kRollingBack &&
      r.report == protocol::Report::kRolledBack) {
    out.trial_failed = true;
    out.busy += world_.reboot_time();  // and back into the previous slot
  }
  out.committed = before == UpdateStep::kCommitting && r.step == UpdateStep::kIdle &&
                  r.report == protocol::Report::kSucceeded;
  out.rebooted = n.rebooted || out.trial_failed;
  if (n.rebooted) {
    // The machine restarts: this agent is gone; a new one comes up after the boot.
    out.busy += world_.reboot_time();
    out.wait = Duration(0);
    n.agent.reset();
    n.signed_offers.reset();
    n.fetcher.reset();
    n.module.reset();
    n.link.reset();
    n.boot.reset();
    return out;
  }
  // A device that sleeps for minutes does not hold a connection open meanwhile.
  if (out.wait > minutes(1)) n.link->disconnect();
  return out;
}

Status NetworkFleet::report_unhealthy(uint32_t dev, const std::string& rollout_id,
                                      const std::string& version) {
  Node& n = *nodes_[dev];
  DROVER_TRY(boot(n, dev));
  const auto& inventory = n.agent->inventory();
  const auto it = inventory.find(o_.component);
  if (n.agent->record().step != UpdateStep::kIdle || it == inventory.end() ||
      it->second != version) {
    return ok_status();
  }
  n.link->begin_step();
  DROVER_TRY(n.link->connect(inventory));
  return n.link->report(rollout_id, version, protocol::Report::kUnhealthy,
                        "the device's health monitor failed", "");
}

}  // namespace drover::sim
