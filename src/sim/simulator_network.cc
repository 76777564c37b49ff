#include "sim/simulator_impl.h"

namespace drover::sim::detail {

// ---------------------------------------------------------------- network runs

Simulator::~Simulator() {
  net_.reset();  // the agents, then the plane they talk to
  plane_.reset();
  if (remove_net_dir_) {
    std::error_code ec;
    std::filesystem::remove_all(net_dir_, ec);
  }
}

Status Simulator::prepare_net_dir() {
  const NetworkSimOptions& no = *opt_.network;
  if (no.payload_bytes < kMinPayload)
    return invalid_argument("the payload must be at least " + std::to_string(kMinPayload) +
                            " bytes");
  namespace fs = std::filesystem;
  std::error_code ec;
  net_dir_ = no.dir;
  if (net_dir_.empty()) {
    // tmpfs when there is one: thousands of agents fsync their state at every step.
    const std::string base =
        ::access("/dev/shm", W_OK) == 0 ? "/dev/shm" : fs::temp_directory_path(ec).string();
    std::string tmpl = base + "/drover-sim-XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) return io_error("cannot make a directory in " + base);
    net_dir_ = tmpl;
    remove_net_dir_ = true;
  } else if (fs::exists(net_dir_, ec) && !fs::is_empty(net_dir_, ec)) {
    return invalid_argument("the network directory '" + net_dir_ + "' is not empty");
  }
  // Each agent may hold a connection open, and the server its other end.
  rlimit files{};
  if (::getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
    files.rlim_cur = files.rlim_max;
    (void)::setrlimit(RLIMIT_NOFILE, &files);
  }
  return ok_status();
}

Status Simulator::start_agents(const std::vector<Device>& fleet, const AgentAccess& server) {
  NetworkFleetOptions fo;
  fo.dir = net_dir_ + "/devices";
  fo.server = server.url;
  fo.enrollment_token = server.enrollment_token;
  fo.ca_file = server.ca_file;
  fo.timeout = plane_->answer_timeout();
  fo.component = sc_.rollout.artifact_name;
  for (const auto& c : sc_.installed) fo.installed[c.component] = c.version;
  fo.seed = seed_;
  net_ = std::make_unique<NetworkFleet>(std::move(fo), *this, clock_);
  for (size_t i = 0; i < fleet.size(); ++i) {
    const ConnectivitySpec& link = sc_.connectivity[devices_[i].connectivity];
    net_->add({fleet[i].id, fleet[i].device_type, fleet[i].hardware_revision, link.poll_interval,
               link.kind == LinkKind::kIntermittent});
  }
  net_unhealthy_.resize(fleet.size());
  return ok_status();
}

void Simulator::step_agent(uint32_t dev) {
  SimDevice& d = devices_[dev];
  // Once the fleet is done, devices only deliver the news they hold.
  if (draining_ && d.phase == Phase::kIdle && d.pending_report < 0) return;
  auto s = net_->step(dev);
  if (!s.ok()) {
    tell_device(dev, "its agent cannot start: " + s.error().to_string(), agent_failures_);
    return;  // the device falls silent
  }
  const Phase before = d.phase;
  const Timestamp now = clock_.now();
  switch (s->step) {
    case agent::UpdateStep::kIdle:
      if (before == Phase::kHolding) {
        tell_device(dev, "dropped its image of " + s->version + " before installing it",
                    withdrawn_);
      }
      d.phase = Phase::kIdle;
      break;
    case agent::UpdateStep::kDownloading:
    case agent::UpdateStep::kVerifying:
      d.phase = Phase::kDownloading;
      break;
    case agent::UpdateStep::kReady:
      // Counted once, when the agent first waits with the image (apply_at_ms marks it).
      if (s->wait > Duration(0) && d.apply_at_ms < 0) {
        ++windows_report_.held;
        d.apply_at_ms = 0;
      }
      d.phase = Phase::kHolding;
      break;
    case agent::UpdateStep::kInstalling:
      // The agent moved in (the install itself runs in its next step, right away).
      if (before != Phase::kInstalling && !in_window(dev, now)) ++windows_report_.installs_outside;
      d.phase = Phase::kInstalling;
      break;
    case agent::UpdateStep::kRebooting:
    case agent::UpdateStep::kCommitting:
      d.phase = Phase::kRebooting;
      if (!s->revert && s->rollout_id == rollout_id_) d.installed_new = true;
      break;
    case agent::UpdateStep::kRollingBack:
      d.phase = Phase::kRollingBack;
      break;
    case agent::UpdateStep::kCount:  // not a step
      break;
  }
  if (s->step != agent::UpdateStep::kReady) d.apply_at_ms = -1;
  d.pending_report = s->report_pending ? 0 : -1;
  const Timestamp done = clock_.now() + s->busy;
  if (s->rebooted && !in_window(dev, now)) ++windows_report_.reboots_outside;
  if (s->committed && !in_window(dev, done)) ++windows_report_.commits_outside;
  if (s->trial_failed) {
    tell_device(dev, "trial boot of " + s->version + " failed; back on the previous slot",
                self_rollbacks_);
  }
  if (s->committed) {
    if (!s->revert && s->rollout_id == rollout_id_) {
      d.committed_at_ms = (done - rollout_started_).count();
    } else {
      if (s->revert)
        tell_device(dev, "back on " + s->version + " after the fleet rollback", reverts_);
      d.committed_at_ms = -1;
    }
    UpdateOffer offer;
    offer.version = s->version;
    offer.revert = s->revert;
    Duration after{0};
    if (defect(dev, offer, DefectKind::kFailsAfter, &after)) {
      net_unhealthy_[dev] = {s->rollout_id, s->version};
      schedule(dev, done + after, EventKind::kUnhealthy);
    }
    if (defect(dev, offer, DefectKind::kGoesSilent, &after))
      schedule(dev, done + after, EventKind::kGoesDark);
  }
  Timestamp at = s->link_down ? next_online(dev, done) : done + s->wait;
  // Holding, it wakes for its window whether or not the link is up by then.
  if (s->step == agent::UpdateStep::kReady) at = std::min(at, done + s->wait);
  schedule(dev, at, EventKind::kCheckIn);
}

void Simulator::agent_unhealthy(uint32_t dev) {
  const auto& [rollout, version] = net_unhealthy_[dev];
  const Status st = net_->report_unhealthy(dev, rollout, version);
  if (!st.ok() && st.error().code == ErrorCode::kIo) {
    // The link is down: the monitor tells the server when it is back.
    schedule(dev, std::max(next_online(dev, clock_.now()), clock_.now() + minutes(1)),
             EventKind::kUnhealthy);
  }
}

uint64_t Simulator::bandwidth_bps(uint32_t dev) {
  return sc_.connectivity[devices_[dev].connectivity].bandwidth_bps;
}

uint64_t Simulator::declared_size(const std::string& component, const std::string& version) {
  for (const Artifact& a : sc_.artifacts) {
    if (a.name == component && a.version == version) return a.size_bytes;
  }
  return 0;
}

bool Simulator::defective(uint32_t dev, const std::string& version, bool revert, DefectKind kind) {
  UpdateOffer o;
  o.version = version;
  o.revert = revert;
  return defect(dev, o, kind);
}

Duration Simulator::next_poll(uint32_t dev) {
  return jittered(sc_.connectivity[devices_[dev].connectivity].poll_interval);
}

}  // namespace drover::sim::detail
