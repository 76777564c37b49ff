// The remediator's held conditions (health/remediator.h): how long each condition has held,
// kept in the store so the counts outlive a restart — loaded at start, written as they
// change (docs/health.md, "Counts across a restart").
#include <algorithm>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "health/remediator.h"

namespace drover::health {
namespace {

// The remediator's own rows among the held conditions (device ""): its heartbeat, written
// every tick (how long the server was down is measured from it), and since when it has
// watched without a break.
constexpr std::string_view kAliveRow = "@alive";
constexpr std::string_view kWatchingRow = "@watching";

}  // namespace

void Remediator::load_held(std::vector<HeldCondition> rows, Timestamp now) {
  started_ = now;
  watching_since_ = now;
  std::optional<Timestamp> alive, watching;
  for (const HeldCondition& h : rows) {
    if (h.device_id.empty() && h.rule == kAliveRow) alive = h.since;
    if (h.device_id.empty() && h.rule == kWatchingRow) watching = h.since;
  }
  if (alive) resume_.gap = std::max(Duration{0}, now - *alive);
  resume_.resumed = resume_.gap && *resume_.gap <= options_.resume_gap;
  // The time the server was down is not counted (nor known). Down longer than resume_gap,
  // every count starts again (the first tick deletes their rows). A person's close is a fact,
  // not a count: kept whatever the gap, as it was (the first tick drops those of a device
  // gone or a rule no longer on health).
  const auto shifted = [&](Timestamp t) { return std::min(now, t + *resume_.gap); };
  if (resume_.resumed && watching) watching_since_ = shifted(*watching);
  for (HeldCondition& h : rows) {
    stored_.emplace(std::make_pair(h.device_id, h.rule), Kept{h.since, h.closed_by_person});
    if (h.device_id.empty()) continue;
    const RemediationRule* rule = rule_named(h.rule);
    if (h.closed_by_person) {
      if (rule != nullptr && is_health_condition(rule->condition)) {
        closed_by_person_.emplace(std::make_pair(std::move(h.device_id), std::move(h.rule)),
                                  h.since);
        ++resume_.closes;
      }
    } else if (resume_.resumed && rule != nullptr) {
      pending_[std::move(h.device_id)].emplace(std::move(h.rule), Kept{shifted(h.since)});
      ++resume_.conditions;
    }
  }
}

Timestamp Remediator::waited(Timestamp since, Timestamp now) const {
  return std::min(now, since + (now - started_));
}

Duration Remediator::persist_after(std::string_view rule) const {
  const RemediationRule* r = rule_named(rule);
  return r == nullptr ? options_.persist_after : std::min(options_.persist_after, r->after / 4);
}

Status Remediator::write_held(Timestamp now) {
  using Key = std::pair<std::string, std::string>;
  WriteBatch batch;
  const auto put = [&](const Key& key, Kept kept) REQUIRES(mu_) {
    if (auto it = stored_.find(key); it != stored_.end() && it->second == kept) return;
    batch.held_conditions.push_back({key.first, key.second, kept.since, kept.closed_by_person});
  };
  const auto held_long = [&](const Key& key) REQUIRES(mu_) {
    auto it = present_since_.find(key);
    return it != present_since_.end() && now - it->second >= persist_after(key.second);
  };
  for (const auto& [key, at] : closed_by_person_) put(key, {at, true});
  for (const auto& [key, since] : present_since_) {
    if (!closed_by_person_.contains(key) && held_long(key)) put(key, {since, false});
  }
  // Kept from before the start, not yet settled: as the count would stand if it were settled
  // now (the wait not counted), so a second restart before it settles does not count the
  // wait either (a write a tick for each, while it waits).
  for (const auto& [device, rules] : pending_) {
    for (const auto& [rule, kept] : rules) put({device, rule}, {waited(kept.since, now)});
  }
  for (const auto& [key, kept] : stored_) {
    bool wanted = false;
    if (key.first.empty()) {
      wanted = key.second == kAliveRow || key.second == kWatchingRow;
    } else if (closed_by_person_.contains(key) || held_long(key)) {
      wanted = true;
    } else if (auto device = pending_.find(key.first); device != pending_.end()) {
      wanted = device->second.contains(key.second);
    }
    if (!wanted) batch.removed_held_conditions.push_back(key);
  }
  put({"", std::string(kAliveRow)}, {now});
  put({"", std::string(kWatchingRow)}, {watching_since_});
  DROVER_TRY(store_.apply(batch));
  for (HeldCondition& h : batch.held_conditions) {
    stored_.insert_or_assign(std::make_pair(std::move(h.device_id), std::move(h.rule)),
                             Kept{h.since, h.closed_by_person});
  }
  for (const Key& key : batch.removed_held_conditions) stored_.erase(key);
  return ok_status();
}

}  // namespace drover::health
