#include "agent/agent.h"

#include <filesystem>
#include <nlohmann/json.hpp>

#include "agent/agent_internal.h"
#include "base/json_reader.h"
#include "base/units.h"
#include "model/version.h"
#include "security/crypto.h"

namespace drover::agent {
using internal::offer_key;
using internal::wire_state;

namespace {

// The server did not want this outcome any more (the rollout ended, the deployment is gone):
// delivering it again would not change that.
bool undeliverable(const Error& e) {
  return e.code == ErrorCode::kNotFound || e.code == ErrorCode::kConflict ||
         e.code == ErrorCode::kInvalidArgument;
}

}  // namespace

Agent::Agent(AgentOptions options, ServerLink& server, UpdateModule& module,
             CommandRunner& commands, Clock& clock, uint64_t seed, FileSystem& fs)
    : o_(std::move(options)),
      server_(server),
      module_(module),
      commands_(commands),
      clock_(clock),
      rng_(seed),
      fs_(fs),
      state_(fs, path("update.json")),
      poll_(o_.default_poll) {
  if (!o_.free_bytes) o_.free_bytes = free_bytes;
}

std::string Agent::path(const char* name) const {
  return (std::filesystem::path(o_.data_dir) / name).string();
}

Status Agent::start(const Inventory& initial) {
  // A journal that cannot be read turns remote commands off (never an empty history, which
  // could run a command twice) but not the agent: an update in its trial boot must commit.
  if (o_.remote_commands != nullptr) {
    if (Status st = o_.remote_commands->start(); !st.ok()) {
      last_error_ = "remote commands are off: " + st.error().to_string() +
                    " (move commands.json aside to take commands again)";
      o_.remote_commands = nullptr;
    }
  }
  auto loaded = state_.load();
  if (!loaded.ok()) return loaded.error();
  record_ = *loaded;
  if (record_.step != UpdateStep::kIdle) {
    ++record_.entries;  // restarted into this step: counted, so a step that kills us shows
    DROVER_TRY(state_.save(record_));
  }
  // What the other slot keeps. Losing this file costs a download at a revert, nothing more:
  // an unreadable one is forgotten (and said), not fatal.
  if (auto kept = fs_.read(path("kept.json")); kept.ok()) {
    auto parsed = parse_json_document<Kept>(*kept, "kept image", [](const JsonReader& r) {
      r.allow_only({"component", "version", "slot"});
      Kept k{r.str_or("component", ""), r.str_or("version", ""), r.str_or("slot", "")};
      if (!k.slot.empty() && k.slot != "A" && k.slot != "B") r.fail("slot", "must be A or B");
      return k;
    });
    if (parsed.ok()) {
      kept_ = *parsed;
    } else {
      last_error_ = "forgetting kept.json: " + parsed.error().message;
    }
  }
  // What ran before each component's last committed update: the one version a revert may
  // go back to when signed update metadata is required. Unreadable, it is forgotten (said):
  // reverts are then refused, never widened.
  if (auto before = fs_.read(path("previous.json")); before.ok()) {
    auto parsed =
        parse_json_document<Inventory>(*before, "previous versions", [](const JsonReader& r) {
          Inventory out;
          for (const auto& item : r.raw().items()) {
            if (!item.value().is_string()) r.fail(item.key().c_str(), "must be a version string");
            out[item.key()] = item.value().get<std::string>();
          }
          return out;
        });
    if (parsed.ok()) {
      previous_ = *parsed;
    } else {
      last_error_ = "forgetting previous.json: " + parsed.error().message;
    }
  }
  // A device updated before previous.json existed: what the other slot keeps is what ran
  // before its last commit.
  if (previous_.empty() && !kept_.component.empty() && !kept_.version.empty())
    previous_[kept_.component] = kept_.version;
  auto text = fs_.read(path("inventory.json"));
  if (!text.ok() && text.error().code != ErrorCode::kNotFound) return text.error();
  if (!text.ok()) {
    inventory_ = initial;
    return save_inventory();
  }
  auto parsed = parse_json_document<Inventory>(*text, "inventory", [](const JsonReader& r) {
    Inventory out;
    for (const auto& item : r.raw().items()) {
      if (!item.value().is_string()) r.fail(item.key().c_str(), "must be a version string");
      out[item.key()] = item.value().get<std::string>();
    }
    return out;
  });
  if (!parsed.ok()) return Error{ErrorCode::kCorruption, parsed.error().message};
  inventory_ = *parsed;
  return ok_status();
}

Status Agent::save_inventory() {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [component, version] : inventory_) j[component] = version;
  return write_atomically(fs_, path("inventory.json"), j.dump() + "\n");
}

Status Agent::save_kept(Kept k) {
  if (k == kept_) return ok_status();
  const nlohmann::json j{{"component", k.component}, {"version", k.version}, {"slot", k.slot}};
  DROVER_TRY(write_atomically(fs_, path("kept.json"), j.dump() + "\n"));
  kept_ = std::move(k);
  return ok_status();
}

Duration Agent::run_once() {
  last_error_.clear();
  switch (record_.step) {
    case UpdateStep::kIdle:
      return idle();
    case UpdateStep::kDownloading:
      return downloading();
    case UpdateStep::kVerifying:
      return verifying();
    case UpdateStep::kReady:
      return ready();
    case UpdateStep::kInstalling:
      return installing();
    case UpdateStep::kRebooting:
      return rebooting();
    case UpdateStep::kCommitting:
      return committing();
    case UpdateStep::kRollingBack:
      return rolling_back();
    case UpdateStep::kCount:  // not a step
      break;
  }
  return o_.default_poll;
}

bool Agent::advance(UpdateEvent event, const std::function<void(UpdateRecord&)>& change) {
  auto next = state_.advance(record_, event, change);
  if (!next.ok()) {
    last_error_ = "saving the update state: " + next.error().to_string();
    return false;
  }
  record_ = std::move(*next);
  return true;
}

Duration Agent::poll_after(const CheckInAnswer& answer) const {
  return answer.next_checkin > Duration(0) ? std::max(answer.next_checkin, kMinPoll)
                                           : o_.default_poll;
}

Duration Agent::retry_later(const Error& e) {
  last_error_ = e.to_string();
  return backoff(failures_++);
}

Duration Agent::backoff(uint32_t failures) {
  // Exponential backoff with full jitter: a fleet that lost its server does not come back
  // in one wave.
  const uint32_t shift = std::min<uint32_t>(failures, 30);
  const double ceiling =
      std::min(static_cast<double>(o_.backoff_max.count()),
               static_cast<double>(o_.backoff_initial.count()) * static_cast<double>(1u << shift));
  const double floor = static_cast<double>(o_.backoff_initial.count()) / 2;
  return Duration(static_cast<int64_t>(rng_.between(std::min(floor, ceiling), ceiling)));
}

void Agent::offer_failed(const std::string& key) {
  if (key != failed_offer_) offer_failures_ = 0;
  failed_offer_ = key;
  offer_retry_at_ = clock_.now() + backoff(offer_failures_++);
}

bool Agent::offer_backing_off(const std::string& key, Duration* wait) const {
  if (key != failed_offer_) return false;
  const Timestamp now = clock_.now();
  if (now >= offer_retry_at_) return false;
  *wait = offer_retry_at_ - now;
  return true;
}

Duration Agent::refuse_offer(const Offer& offer, const std::string& why) {
  last_error_ = "refusing " + offer.component + "@" + offer.version + ": " + why;
  (void)server_.report(offer.rollout_id, offer.version, protocol::Report::kInstallFailed, why, "");
  offer_failed(offer_key(offer.rollout_id, offer.component, offer.version, offer.sha256));
  return poll_;
}

Duration Agent::fail(const std::string& why) {
  last_error_ = why;
  offer_failed(offer_key(record_.rollout_id, record_.component, record_.version, record_.sha256));
  if (record_.step == UpdateStep::kDownloading || record_.step == UpdateStep::kVerifying ||
      record_.step == UpdateStep::kReady) {
    // The image will not be installed: its space is given back now.
    std::error_code ec;
    std::filesystem::remove(path("download.part"), ec);
  }
  // Before the inactive slot is touched, a failure just ends the attempt; from Installing on
  // it goes through RollingBack. The server hears "failed" while the device never left its
  // previous image, "rolled_back" once it had booted the new one.
  const bool booted_new =
      record_.step == UpdateStep::kRebooting || record_.step == UpdateStep::kCommitting;
  if (!advance(UpdateEvent::kFailed, [&](UpdateRecord& r) {
        r.report = booted_new ? protocol::Report::kRolledBack : protocol::Report::kInstallFailed;
        r.message = why;
      })) {
    return retry_later(Error{ErrorCode::kIo, last_error_});
  }
  return Duration(0);
}

bool Agent::run_state_script(UpdateStep step) {
  if (o_.state_scripts.empty()) return true;
  const std::string script = (std::filesystem::path(o_.state_scripts) / to_string(step)).string();
  std::error_code ec;
  if (!std::filesystem::exists(script, ec)) return true;
  auto r = commands_.run({script}, minutes(5),
                         {{"DROVER_STEP", to_string(step)},
                          {"DROVER_COMPONENT", record_.component},
                          {"DROVER_VERSION", record_.version},
                          {"DROVER_FROM_VERSION", record_.from_version}});
  if (r.ok() && r->ok()) return true;
  last_error_ = "state script " + script + " failed" +
                (r.ok() ? ": exit " + std::to_string(r->exit_code) : ": " + r.error().message);
  return false;
}

void Agent::best_effort_report(protocol::Report status) {
  if (record_.entries != 1) return;  // said once already (or lost with a restart: no matter)
  (void)server_.report(record_.rollout_id, record_.version, status, "", "");
}

Duration Agent::idle() {
  if (record_.report) {
    // A success tells the server what the other slot keeps now: its next revert of this
    // device can switch back instead of downloading.
    const bool succeeded = record_.report == protocol::Report::kSucceeded;
    const std::string standby =
        succeeded && kept_.component == record_.component ? kept_.version : "";
    Status sent = server_.report(record_.rollout_id, record_.version, *record_.report,
                                 record_.message, standby);
    if (!sent.ok() && !undeliverable(sent.error())) return retry_later(sent.error());
    if (succeeded) {
      failed_offer_.clear();
      offer_failures_ = 0;
    }
    record_.report.reset();
    record_.message.clear();
    if (Status st = state_.save(record_); !st.ok()) return retry_later(st.error());
  }
  if (Status st = server_.connect(inventory_); !st.ok()) return retry_later(st.error());
  auto answer = check_in(wire_state(record_.step), "");
  if (!answer.ok()) return retry_later(answer.error());
  failures_ = 0;
  if (!answer->offer) return poll_;
  const Offer& offer = *answer->offer;
  if (Duration left{0}; offer_backing_off(
          offer_key(offer.rollout_id, offer.component, offer.version, offer.sha256), &left)) {
    last_error_ = "not taking " + offer.component + "@" + offer.version + " again for " +
                  format_duration(left) + ": it failed " + std::to_string(offer_failures_) +
                  " time(s) in a row";
    return std::min(poll_, std::max(left, kMinPoll));
  }
  if (offer.component != o_.component) {
    return refuse_offer(
        offer, "this device's agent installs " + o_.component + ", not " + offer.component);
  }
  // A switch back boots what the other slot keeps, if it still keeps that version; else the
  // image is downloaded like any other, when the server has it.
  const bool kept = offer.switch_back && module_.keeps_previous() && !kept_.slot.empty() &&
                    kept_.component == offer.component && kept_.version == offer.version;
  if (offer.switch_back && !kept && offer.sha256.empty()) {
    return refuse_offer(
        offer, "cannot switch back: the other slot does not keep " + offer.component + "@" +
                   offer.version +
                   (kept_.version.empty() ? "" : " (it keeps " + kept_.version + ")") +
                   ", and the server has no image of it to download");
  }
  if (o_.offer_check != nullptr) {
    if (const std::string why = rollback_refused(offer); !why.empty())
      return refuse_offer(offer, why);
    // Only the revert to what ran before may boot the kept slot unchecked (it was verified
    // when it was installed, and its target may be gone from the server since); anything
    // else, a switch forward to a kept image the operator reverted included, must be signed.
    const auto before = previous_.find(offer.component);
    const bool revert_to_kept =
        kept && offer.revert && before != previous_.end() && before->second == offer.version;
    if (!revert_to_kept) {
      if (Status st = o_.offer_check->check(offer, inventory_); !st.ok()) {
        if (st.error().code != ErrorCode::kIo) return refuse_offer(offer, st.error().message);
        // The metadata out of reach: not the offer's fault, so nothing is reported, but the
        // offer is not asked about again before its backoff (which grows) has passed.
        offer_failed(offer_key(offer.rollout_id, offer.component, offer.version, offer.sha256));
        last_error_ = "signed update metadata out of reach, offer of " + offer.component + "@" +
                      offer.version + " not taken yet: " + st.error().message;
        return std::max(poll_, kMinPoll);
      }
    }
  }
  if (!kept && offer.size > o_.max_download_bytes) {
    return refuse_offer(offer, "the image is " + format_bytes(offer.size) +
                                   ", more than this agent downloads (max_download_bytes " +
                                   format_bytes(o_.max_download_bytes) + ")");
  }
  const auto current = inventory_.find(offer.component);
  if (!advance(kept ? UpdateEvent::kOfferKept : UpdateEvent::kOffer, [&](UpdateRecord& r) {
        const UpdateStep step = r.step;  // set by the table; the rest starts afresh
        const uint32_t entries = r.entries;
        r = UpdateRecord();
        r.step = step;
        r.entries = entries;
        r.rollout_id = offer.rollout_id;
        r.component = offer.component;
        r.version = offer.version;
        r.size = offer.size;
        r.sha256 = offer.sha256;
        r.revert = offer.revert;
        r.switch_back = kept;
        // The slot to boot is the one kept.json names, saved before anything acts on it.
        if (kept) r.slot = kept_.slot;
        r.windows = offer.windows;
        r.from_version = current == inventory_.end() ? "" : current->second;
      })) {
    return retry_later(Error{ErrorCode::kIo, last_error_});
  }
  return Duration(0);
}

std::string Agent::rollback_refused(const Offer& offer) const {
  auto offered = Version::parse(offer.version);
  if (!offered.ok()) return "the offered version '" + offer.version + "' is not a semantic version";
  const auto running = inventory_.find(offer.component);
  if (running == inventory_.end()) return "";
  auto installed = Version::parse(running->second);
  if (!installed.ok()) return "";  // nothing to order against (a pre-release inventory)
  // Equal precedence under another name (other build metadata) is no step forward either.
  if (*offered > *installed || offer.version == running->second) return "";
  const auto before = previous_.find(offer.component);
  if (offer.revert && before != previous_.end() && before->second == offer.version) return "";
  return offer.component + " " + offer.version + " is older than the installed " + running->second +
         (offer.revert ? ", and not the version this device ran before its last update"
                       : ", and not offered as a revert");
}

Duration Agent::downloading() {
  if (!run_state_script(UpdateStep::kDownloading)) return fail(last_error_);
  best_effort_report(protocol::Report::kDownloading);
  const std::string part = path("download.part");
  if (record_.bytes_done == record_.size) {
    // Everything arrived before a restart, and only the transition was not saved.
    if (!advance(UpdateEvent::kDownloaded)) return retry_later(Error{ErrorCode::kIo, last_error_});
    return Duration(0);
  }
  // The rest of the image must fit, with room to spare, before a byte of it is fetched.
  const uint64_t rest = record_.size - std::min(record_.bytes_done, record_.size);
  auto free = o_.free_bytes(o_.data_dir);
  if (!free.ok()) return retry_later(free.error());
  if (*free < o_.min_free_bytes || *free - o_.min_free_bytes < rest) {
    return fail("download: " + format_bytes(rest) + " to fetch, but only " + format_bytes(*free) +
                " free in " + o_.data_dir + " (" + format_bytes(o_.min_free_bytes) +
                " of it kept free)");
  }
  const uint64_t before = record_.bytes_done;
  auto got = server_.download(record_, part, record_.bytes_done, [&](uint64_t bytes) {
    record_.bytes_done = std::min(bytes, record_.size);
    (void)state_.save(record_);  // a resume point; losing one costs a megabyte again
  });
  if (!got.ok()) {
    const ErrorCode c = got.error().code;
    if (c == ErrorCode::kNotFound || c == ErrorCode::kPermissionDenied ||
        c == ErrorCode::kInvalidArgument || c == ErrorCode::kResourceExhausted) {
      return fail("download: " + got.error().message);
    }
    return retry_download(got.error(), record_.bytes_done > before);
  }
  failures_ = 0;
  if (*got < record_.size) return retry_download(io_error("download cut short"), *got > before);
  if (!advance(UpdateEvent::kDownloaded, [&](UpdateRecord& r) { r.bytes_done = *got; })) {
    return retry_later(Error{ErrorCode::kIo, last_error_});
  }
  return Duration(0);
}

Duration Agent::verifying() {
  const std::string part = path("download.part");
  auto digest = security::sha256_file(part);
  if (!digest.ok()) return fail("verify: " + digest.error().message);
  if (digest->size != record_.size || security::to_hex(digest->sha256) != record_.sha256) {
    std::error_code ec;
    std::filesystem::remove(part, ec);
    return fail("verify: the download is " + std::to_string(digest->size) + " bytes with sha256 " +
                security::to_hex(digest->sha256) + ", not " + std::to_string(record_.size) +
                " bytes with " + record_.sha256);
  }
  if (!advance(UpdateEvent::kVerified)) return retry_later(Error{ErrorCode::kIo, last_error_});
  return Duration(0);
}

Duration Agent::retry_download(const Error& e, bool progressed) {
  // A download that fails without getting anywhere — an artifact the server cannot serve, a
  // link that cuts every transfer at its start — must not leave the device deaf: after such
  // an attempt, once a poll interval has passed since the last check-in, it checks in (as
  // downloading), so a command reaches it; a clear_update then gives the download up. One
  // that moved forward goes on without asking: slow is not stuck.
  if (!progressed && clock_.now() - last_check_in_ >= poll_ && server_.connect(inventory_).ok()) {
    auto answer = check_in(protocol::UpdateState::kDownloading, "");
    if (answer.ok()) {
      if (record_.step != UpdateStep::kDownloading) return Duration(0);  // given up
    }
  }
  return retry_later(e);
}

bool Agent::ask_about_hold(bool* answered) {
  *answered = false;
  Status st = server_.connect(inventory_);
  Result<CheckInAnswer> answer = st.ok()
                                     ? check_in(protocol::UpdateState::kReady, record_.rollout_id)
                                     : Result<CheckInAnswer>(st.error());
  if (!answer.ok()) {
    // Out of reach (a link that is down by schedule, say): the windows already known hold.
    last_error_ = answer.error().to_string();
    return true;
  }
  failures_ = 0;
  if (record_.step != UpdateStep::kReady) return true;  // cleared by a command
  if (!answer->hold || answer->hold->rollout_id != record_.rollout_id) return true;
  *answered = true;
  const Hold& hold = *answer->hold;
  UpdateRecord next = record_;
  switch (hold.action) {
    case Hold::Action::kDrop: {
      if (!advance(UpdateEvent::kDropped, [&](UpdateRecord& r) {
            r.message = "called off before the install: " + hold.reason;
          })) {
        return false;
      }
      last_error_ = record_.message;
      std::error_code ec;
      std::filesystem::remove(path("download.part"), ec);
      return true;
    }
    case Hold::Action::kWait:
      next.waiting = true;
      last_error_ = "holding " + record_.version + " without installing it: " + hold.reason;
      break;
    case Hold::Action::kApply:
      next.waiting = false;
      next.windows = hold.windows;
      break;
  }
  if (next != record_) {
    if (Status saved = state_.save(next); !saved.ok()) {
      last_error_ = "saving the update state: " + saved.error().to_string();
      return false;
    }
    record_ = std::move(next);
  }
  return true;
}

Duration Agent::ready() {
  // With windows to wait for, or told to wait, the server is asked first: the update may
  // have been called off or its windows moved. Without, the install follows at once.
  bool answered = false;
  if (!record_.windows.empty() || record_.waiting) {
    if (!ask_about_hold(&answered)) return retry_later(Error{ErrorCode::kIo, last_error_});
    if (record_.step != UpdateStep::kReady) return Duration(0);  // dropped
  }
  const Timestamp now = clock_.now();
  const Duration span = o_.apply_time;
  Duration wait = poll_;
  if (!record_.waiting) {
    bool go = record_.windows.empty();
    bool found = go;
    for (const TimeRange& w : record_.windows) {
      const Timestamp start = std::max(now, w.from);
      if (w.until - start < span) continue;  // too short, or too little of it left
      // The commit needs the server: the link must come up in the window after the reboot.
      if (o_.link_up_at && o_.link_up_at(start + span) >= w.until) continue;
      found = true;
      if (start == now) {
        go = true;
      } else {
        wait = std::min(wait, start - now);
      }
      break;
    }
    if (go) {
      if (!advance(UpdateEvent::kWindowOpen))
        return retry_later(Error{ErrorCode::kIo, last_error_});
      return Duration(0);
    }
    // The server's fresh list covers the coming week (unless it is full): none fits.
    if (!found && answered && record_.windows.size() < kWeekOfWindows) return give_up_hold();
    if (!found && last_error_.empty()) {
      last_error_ = "no known window leaves " + format_duration(span) +
                    " for the install and reboot; asking the server again";
    }
  }
  return wait;
}

Duration Agent::give_up_hold() {
  const Timestamp now = clock_.now();
  Duration longest{0};
  for (const TimeRange& w : record_.windows)
    longest = std::max(longest, w.until - std::max(now, w.from));
  const std::string why =
      "no maintenance window fits the install: none in the coming week leaves " +
      format_duration(o_.apply_time) +
      " (apply_time) for the install, reboot and commit checks; the longest "
      "leaves " +
      format_duration(longest);
  if (!advance(UpdateEvent::kDropped, [&](UpdateRecord& r) {
        r.report = protocol::Report::kWithdraw;
        r.message = why;
      })) {
    return retry_later(Error{ErrorCode::kIo, last_error_});
  }
  last_error_ = why;
  std::error_code ec;
  std::filesystem::remove(path("download.part"), ec);
  return Duration(0);
}

}  // namespace drover::agent
