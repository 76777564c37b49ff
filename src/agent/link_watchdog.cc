#include "agent/link_watchdog.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "base/json_reader.h"
#include "base/units.h"

namespace drover::agent {
namespace {

int64_t ms(Timestamp t) { return t.time_since_epoch().count(); }
Timestamp at_ms(uint64_t v) { return Timestamp(Duration(static_cast<int64_t>(v))); }

// How long after the last reboot the next one may come, the `reboots` since the last answer
// having not helped: reboot_after doubled for each, at most a week.
Duration reboot_wait(Duration reboot_after, uint32_t reboots) {
  Duration wait = reboot_after;
  for (uint32_t i = 0; i < reboots && wait < kMaxRebootBackoff; ++i) wait *= 2;
  return std::min(wait, kMaxRebootBackoff);
}

}  // namespace

LinkWatchdog::LinkWatchdog(std::string state_path, LinkWatchdogOptions options,
                           CommandRunner& runner, Clock& clock, std::function<Status()> reboot,
                           FileSystem& fs)
    : path_(std::move(state_path)),
      o_(std::move(options)),
      runner_(runner),
      clock_(clock),
      reboot_(std::move(reboot)),
      fs_(fs) {}

Status LinkWatchdog::start() {
  heard_ = saved_heard_ = clock_.now();  // nothing known: silence counts from now
  auto text = fs_.read(path_);
  if (!text.ok()) return text.error().code == ErrorCode::kNotFound ? ok_status() : text.error();
  struct Kept {
    Timestamp heard, reset, reboot;
    uint32_t reboots;
  };
  auto kept = parse_json_document<Kept>(*text, "link", [](const JsonReader& r) {
    r.allow_only({"last_answer", "last_reset", "last_reboot", "reboots"});
    return Kept{at_ms(r.uint_or("last_answer", 0, INT64_MAX)),
                at_ms(r.uint_or("last_reset", 0, INT64_MAX)),
                at_ms(r.uint_or("last_reboot", 0, INT64_MAX)),
                static_cast<uint32_t>(r.uint_or("reboots", 0, 64))};
  });
  if (!kept.ok()) return Error{ErrorCode::kCorruption, path_ + ": " + kept.error().message};
  if (kept->heard != Timestamp{}) heard_ = saved_heard_ = kept->heard;
  reset_at_ = kept->reset;
  reboot_at_ = kept->reboot;
  reboots_ = kept->reboots;
  return ok_status();
}

Status LinkWatchdog::save() {
  const nlohmann::json j{{"last_answer", ms(heard_)},
                         {"last_reset", ms(reset_at_)},
                         {"last_reboot", ms(reboot_at_)},
                         {"reboots", reboots_}};
  DROVER_TRY(write_atomically(fs_, path_, j.dump()));
  saved_heard_ = heard_;
  return ok_status();
}

bool LinkWatchdog::probe_says_up(std::string* why) {
  if (o_.probe.empty()) return false;
  auto r = runner_.run(o_.probe, o_.probe_timeout);
  if (r.ok() && r->ok()) return true;
  *why = r.ok() ? "exit " + std::to_string(r->exit_code) + (r->timed_out ? ", timed out" : "")
                : r.error().to_string();
  return false;
}

LinkWatchdog::Check LinkWatchdog::check(std::optional<Timestamp> last_answer) {
  Check out;
  const Timestamp now = clock_.now();
  if (last_answer && *last_answer > heard_) {
    const bool acted = reboots_ > 0 || reset_at_ > saved_heard_;
    heard_ = *last_answer;
    reboots_ = 0;
    // Written at most hourly while answers come, and at once after a silence it acted on:
    // a restart then counts from about the right time, with the right backoff.
    if (acted || heard_ - saved_heard_ >= hours(1)) {
      if (Status st = save(); !st.ok()) out.did = "link watchdog: " + st.error().to_string();
    }
  }
  const Timestamp never = Timestamp::max();
  const Timestamp reset_due =
      o_.reset_after > Duration{0} ? std::max(heard_, reset_at_) + o_.reset_after : never;
  const Timestamp reboot_due =
      o_.reboot_after > Duration{0}
          ? std::max(
                heard_ + o_.reboot_after,
                reboots_ == 0 ? Timestamp{} : reboot_at_ + reboot_wait(o_.reboot_after, reboots_))
          : never;
  const Timestamp due = std::min(reset_due, reboot_due);
  if (now < due) {
    out.next = due == never ? hours(1) : std::min(due - now, hours(1));
    return out;
  }
  const std::string silence = "no answer from the server for " + format_duration(now - heard_);
  std::string probe_failed;
  if (probe_says_up(&probe_failed)) {
    // The link is up: the server is what is missing, and no reset or reboot brings it back.
    // That counts as hearing the link; the next look comes a full interval later.
    heard_ = now;
    reboots_ = 0;
    if (Status st = save(); !st.ok()) {
      out.did = "link watchdog: " + st.error().to_string();
    } else {
      out.did = silence + ", but the probe reaches the network: nothing reset";
    }
    out.next = std::min(o_.reset_after > Duration{0} ? o_.reset_after : o_.reboot_after, hours(1));
    return out;
  }
  const std::string because = silence + (o_.probe.empty() ? "" : " (probe: " + probe_failed + ")");
  if (now >= reboot_due) {
    // Written before it is done: a reboot the agent does not live through still counts.
    ++reboots_;
    reboot_at_ = now;
    if (Status st = save(); !st.ok()) {
      --reboots_;
      out.did = because + "; not rebooting: " + st.error().to_string();
      out.next = minutes(1);
      return out;
    }
    Status st = reboot_();  // returns only when the device did not reboot
    out.did = because + "; the reboot failed: " +
              (st.ok() ? std::string("the device is still up") : st.error().to_string());
    out.next = minutes(1);
    return out;
  }
  reset_at_ = now;
  if (Status st = save(); !st.ok()) {
    out.did = because + "; not resetting: " + st.error().to_string();
    out.next = minutes(1);
    return out;
  }
  auto r = runner_.run(o_.reset, o_.reset_timeout);
  out.did = because + "; ran the reset (" + o_.reset.front() + "): " +
            (!r.ok()        ? r.error().to_string()
             : r->timed_out ? std::string("killed after its timeout")
                            : "exit " + std::to_string(r->exit_code));
  out.next = std::min(o_.reset_after, hours(1));
  return out;
}

}  // namespace drover::agent
