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
// having not helped: reboot_after doubled for each, at most a week (or reboot_after).
Duration reboot_wait(Duration reboot_after, uint32_t reboots) {
  const Duration cap = std::max(kMaxRebootBackoff, reboot_after);
  Duration wait = reboot_after;
  for (uint32_t i = 0; i < reboots && wait < cap; ++i) wait *= 2;
  return std::min(wait, cap);
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

Result<std::string> LinkWatchdog::start() {
  auto text = fs_.read(path_);
  if (!text.ok()) {
    if (text.error().code == ErrorCode::kNotFound) return std::string();
    return text.error();
  }
  struct Kept {
    Timestamp silent, reset, reboot;
    uint32_t reboots;
  };
  auto kept = parse_json_document<Kept>(*text, "link", [](const JsonReader& r) {
    r.allow_only({"silent_since", "last_reset", "last_reboot", "reboots"});
    return Kept{at_ms(r.uint_or("silent_since", 0, INT64_MAX)),
                at_ms(r.uint_or("last_reset", 0, INT64_MAX)),
                at_ms(r.uint_or("last_reboot", 0, INT64_MAX)),
                static_cast<uint32_t>(r.uint_or("reboots", 0, UINT32_MAX))};
  });
  if (!kept.ok()) {
    // Not a reason to leave the device without its watchdog: set aside for whoever looks,
    // and started afresh.
    DROVER_TRY(fs_.rename(path_, path_ + ".damaged"));
    return "link watchdog: " + path_ + " does not parse (" + kept.error().message +
           "); set aside as " + path_ + ".damaged, starting afresh";
  }
  // Times ahead of the clock by more than a day (a clock set back since, a damaged value)
  // are not trusted; a little ahead is taken as now.
  const Timestamp now = clock_.now();
  auto trusted = [&](Timestamp t) -> std::optional<Timestamp> {
    if (t == Timestamp{} || t > now + days(1)) return std::nullopt;
    return std::min(t, now);
  };
  silent_since_ = trusted(kept->silent);
  reset_at_ = trusted(kept->reset).value_or(Timestamp{});
  reboot_at_ = trusted(kept->reboot).value_or(Timestamp{});
  reboots_ = std::min(kept->reboots, kMaxCountedReboots);
  return std::string();
}

Status LinkWatchdog::save() {
  nlohmann::json j{
      {"last_reset", ms(reset_at_)}, {"last_reboot", ms(reboot_at_)}, {"reboots", reboots_}};
  if (silent_since_) j["silent_since"] = ms(*silent_since_);
  return write_atomically(fs_, path_, j.dump());
}

bool LinkWatchdog::probe_says_up(std::string* why) {
  if (o_.probe.empty()) return false;
  auto r = runner_.run(o_.probe, o_.probe_timeout);
  if (r.ok() && r->ok()) return true;
  *why = r.ok() ? "exit " + std::to_string(r->exit_code) + (r->timed_out ? ", timed out" : "")
                : r.error().to_string();
  return false;
}

LinkWatchdog::Check LinkWatchdog::check(const ServerLink::Reach& reach) {
  Check out;
  const Timestamp now = clock_.now();
  bool changed = false;
  // An answer since the silence began ends it.
  if (reach.last_answer && silent_since_ && *reach.last_answer >= *silent_since_) {
    silent_since_.reset();
    reboots_ = 0;
    changed = true;
  }
  if (reach.unanswered_since) {
    // Unanswered in this run since then; a silence that went on from before (a restart, a
    // reboot) counts from when it began.
    if (!silent_since_) {
      silent_since_ = *reach.unanswered_since;
      changed = true;
    }
  } else if (silent_since_ && !reach.last_answer) {
    // Nothing tried yet in this run: the silence may be over; the agent's first request says.
    out.next = minutes(1);
    return out;
  }
  if (changed) {
    if (Status st = save(); !st.ok()) out.did = "link watchdog: " + st.error().to_string();
  }
  if (!silent_since_ || !reach.unanswered_since) {
    out.next = hours(1);  // answered, or nothing tried yet: nothing to count
    return out;
  }
  const Timestamp never = Timestamp::max();
  const Timestamp reset_due =
      o_.reset_after > Duration{0} ? std::max(*silent_since_, reset_at_) + o_.reset_after : never;
  const Timestamp reboot_due =
      o_.reboot_after > Duration{0}
          ? std::max(
                *silent_since_ + o_.reboot_after,
                reboots_ == 0 ? Timestamp{} : reboot_at_ + reboot_wait(o_.reboot_after, reboots_))
          : never;
  const Timestamp due = std::min(reset_due, reboot_due);
  if (now < due) {
    out.next = std::min(due - now, hours(1));
    return out;
  }
  const std::string silence =
      "no answer from the server for " + format_duration(now - *silent_since_);
  std::string probe_failed;
  if (probe_says_up(&probe_failed)) {
    // The network is up: the server is what is missing, and no reset or reboot brings it
    // back. The silence counts from now; the reboots since the last answer still count.
    silent_since_ = now;
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
    // Written before it is done: a reboot the agent does not live through still counts. No
    // reset follows it at once: the reboot reset the link too.
    const uint32_t reboots_before = reboots_;
    const Timestamp reset_before = reset_at_, reboot_before = reboot_at_;
    reboots_ = std::min(reboots_ + 1, kMaxCountedReboots);
    reboot_at_ = reset_at_ = now;
    if (Status st = save(); !st.ok()) {
      reboots_ = reboots_before, reset_at_ = reset_before, reboot_at_ = reboot_before;
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
